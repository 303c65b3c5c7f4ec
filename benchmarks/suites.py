"""The benchmark suites' learning table: every task x method x backend x seed of the suites
researchers report on (LBF, RWARE, VMAS, MAgent2) trained with ``xmarl.run`` from candidate
settings, with the final greedy return, uniformly random play on the same episodes beside it, the
curve, the budget, the wall time and what could be found of the published figure.

    python benchmarks/suites.py --list                                   # the cells and their settings
    python benchmarks/suites.py --backends torch --seeds 0 1 2 --jobs 2  # record (or resume) every cell
    python benchmarks/suites.py --tasks vmas/navigation --backends torch tensorflow mindspore --jobs 2
    python benchmarks/suites.py --report                                 # rewrite the .md from the .json

Tasks (:data:`TASKS`) and methods:

* ``lbf/Foraging-8x8-2p-3f`` and ``lbf/Foraging-10x10-3p-3f`` (50-step episodes), COMA and MADDPG;
* ``rware/rware-tiny-2ag`` (500-step episodes), COMA and MADDPG;
* ``vmas/navigation`` (3 agents, ``shared_rew=False``) and ``vmas/balance`` (4 agents), 100-step
  episodes, BenchMARL's task settings, MADDPG with continuous actions;
* ``magent/battle_v4``: the red team learns, with a learner of its own (CommNet on the 20x20 map,
  twelve agents a team; MADDPG on the 12x12 map, two a team, as its critic reads every agent's
  845-value view), against a blue team acting uniformly at random; kills per episode and win rate
  beside the return.

Returns: LBF and RWARE report the episode return **summed over agents**, as EPyMARL does (it sums
the agents' rewards into one common reward); VMAS reports the **mean over agents** of each agent's
episode return (VMAS's rewards are per agent; no published number is compared); MAgent2 reports the
learning team's mean per agent, with its kills (enemies killed per episode) and win rate (episodes
it ends with more agents alive). The final greedy return is the trainer's last evaluation (greedy
policy, ``train.eval_episodes`` episodes); "random" is uniformly random actions for every agent on
the same episodes (same env seeds); for MAgent2 the random row is both teams random.

The candidate settings of each cell (:data:`CANDIDATES`) are not shipped configs: they become
``configs/<method>/<env>.yaml`` only with a recorded result (``tests/test_learning_records.py``).
Each setting says where it comes from: EPyMARL's shipped algorithm configs (``src/config/algs/
coma.yaml``, ``maddpg.yaml``, ``default.yaml``, ``envs/gymma.yaml``), pymarl's COMA
(``src/config/algs/coma.yaml``), BenchMARL's fine-tuned VMAS experiment (``fine_tuned/vmas/conf/
config.yaml``) and its ``algorithm/maddpg.yaml``, or xmarl's own defaults. The published figures
beside ours are what ``benchmarks/published.md`` says could be read on this offline machine: no COMA or MADDPG cell of
EPyMARL's tables, no BenchMARL number (its results are figures), no MAgent2 battle win rate, so the
column says what is missing and where it would be; no number is invented. Budgets fit 30 minutes
per run on the 2-core development machine (``benchmarks/results/suite_speed.md``), far below the
published budgets (EPyMARL: 2M-4M steps off-policy, 20M-40M on-policy; BenchMARL: 10M frames).

Each finished run is written into ``<out>.json`` at once (atomically); a later invocation keeps
every run whose settings are unchanged and runs only the others, so an interrupted recording
resumes where it stopped. ``--steps``, ``--horizon`` and ``--set`` change the settings (a smoke
test, e.g. ``--steps 600 --horizon 20 --set maddpg.warmup_steps=100``) and therefore need an
``--out`` away from the recorded table. Each run is a separate process with one framework thread.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xmarl.files import atomic_write_text

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DEFAULT_OUT = RESULTS / "suites"
BACKENDS = ["torch", "tensorflow", "mindspore"]
RESEARCH = "benchmarks/published.md"


@dataclass(frozen=True)
class Task:
    """One benchmark task: the xmarl env, its env kwargs, how returns over agents are reported
    (``"sum"`` or ``"mean"``), the learning team (MAgent2: the other team acts at random) and, per
    method, what is known of the published figure."""

    env: str
    env_kwargs: dict[str, Any]
    returns: str
    published: dict[str, str]
    horizon_key: str
    team: str | None = None
    note: str = ""


_EPYMARL_MISSING = ("EPyMARL (Papoudakis et al. 2021) Table 3 (max returns, shared parameters; Tables 7/8 without "
                    "sharing) has this task, but its {m} cell was not retrievable offline (" + RESEARCH + ", EPyMARL); "
                    "their protocol: 5 seeds, max over evaluations of the seed mean, returns summed over agents")
_EPYMARL_NOT_A_TASK = ("none: Foraging-8x8-2p-3f is not one of EPyMARL's benchmark tasks (its README uses it only in "
                       "an example command; " + RESEARCH + ", EPyMARL)")
_BENCHMARL = ("none retrievable: BenchMARL reports VMAS results only as figures and a W&B report, and the VMAS paper "
              "benchmarks PPO variants only, no MADDPG (" + RESEARCH + ", BenchMARL)")
_MAGENT = ("none: no published win rate or kill count of learned agents against random or built-in opponents "
           "(" + RESEARCH + ", MAgent)")

#: every task of the table, in order
TASKS: dict[str, Task] = {
    "lbf/Foraging-8x8-2p-3f": Task(
        "lbf/Foraging-8x8-2p-3f", {"max_episode_steps": 50}, "sum",  # EPyMARL: env_args.time_limit=50 for LBF
        {"coma": _EPYMARL_NOT_A_TASK, "maddpg": _EPYMARL_NOT_A_TASK}, "max_episode_steps"),
    "lbf/Foraging-10x10-3p-3f": Task(
        "lbf/Foraging-10x10-3p-3f", {"max_episode_steps": 50}, "sum",
        {m: _EPYMARL_MISSING.format(m=m.upper()) for m in ("coma", "maddpg")}, "max_episode_steps",
        note="EPyMARL's task 10x10-3p-3f (lbforaging:Foraging-10x10-3p-3f-v3 in its README)"),
    "rware/rware-tiny-2ag": Task(
        "rware/rware-tiny-2ag", {"max_steps": 500}, "sum",  # EPyMARL: env_args.time_limit=500 for RWARE
        {m: _EPYMARL_MISSING.format(m=m.upper()) for m in ("coma", "maddpg")}, "max_steps",
        note="EPyMARL's task tiny 2p (rware:rware-tiny-2ag-v2 in its README)"),
    "vmas/navigation": Task(
        "vmas/navigation", {"n_agents": 3, "shared_rew": False, "max_steps": 100}, "mean",  # BenchMARL task config
        {"maddpg": _BENCHMARL}, "max_steps"),
    "vmas/balance": Task(
        "vmas/balance", {"n_agents": 4, "max_steps": 100}, "mean", {"maddpg": _BENCHMARL}, "max_steps"),
    "magent/battle_v4": Task(
        # map 20: twelve agents a team, the largest whose CommNet run fits the budget (12: two, 16: six, 45:
        # magent2's default, 81; BenchMARL's battle task); 200 cycles (magent2's default: 1000)
        "magent/battle_v4", {"map_size": 20, "max_cycles": 200}, "mean",
        {"commnet": _MAGENT, "maddpg": _MAGENT}, "max_cycles", team="red",
        note="red learns, blue acts uniformly at random in training and evaluation"),
}


@dataclass(frozen=True)
class Candidate:
    """The candidate settings of one task x method: the budget (env steps), the overrides of xmarl's
    defaults and where they come from."""

    steps: int
    overrides: dict[str, Any]
    source: str
    groups: dict[str, Any] = field(default_factory=dict)


def epymarl_coma(eval_episodes: int, eval_interval: int) -> dict[str, Any]:
    """COMA as EPyMARL ships it (``src/config/algs/coma.yaml`` over ``default.yaml``), where xmarl's
    COMA has the same knob."""
    return {
        "train.num_envs": 10,  # coma.yaml: runner parallel, batch_size_run 10
        "coma.batch_episodes": 10,  # coma.yaml: batch_size 10 (episodes per update)
        "coma.lr_actor": 5e-4, "coma.lr_critic": 5e-4,  # coma.yaml: lr 0.0005 (one rate for actor and critic)
        "coma.target_update_interval": 200,  # coma.yaml: target_update_interval_or_tau 200 (updates)
        "coma.gamma": 0.99, "coma.grad_clip": 10.0,  # default.yaml: gamma 0.99, grad_norm_clip 10
        "coma.hidden_sizes": [64, 64],  # default.yaml: hidden_dim 64; use_rnn False: two 64-unit layers
        "coma.recurrent": False,  # coma.yaml: use_rnn False
        "coma.critic_hidden_sizes": [128, 128],  # pymarl src/modules/critics/coma.py: 128-128 (xmarl's default)
        "coma.td_lambda": 0.8,  # pymarl coma.yaml td_lambda 0.8 (EPyMARL's q_nstep 5 has no xmarl knob)
        # EPyMARL samples the policy with an entropy bonus (entropy_coef 0.01), which xmarl's COMA has
        # not: pymarl's COMA exploration floor instead (epsilon 0.5 -> 0.01 over 100000 steps)
        "coma.epsilon_start": 0.5, "coma.epsilon_finish": 0.01, "coma.epsilon_anneal_steps": 100_000,
        "train.eval_episodes": eval_episodes, "train.eval_interval": eval_interval,
        "train.log_interval": eval_interval, "train.checkpoint_interval": 10 * eval_interval,
    }


def epymarl_maddpg(episode_len: int, buffer: int, eval_episodes: int, eval_interval: int) -> dict[str, Any]:
    """MADDPG as EPyMARL ships it (``src/config/algs/maddpg.yaml`` over ``default.yaml``). EPyMARL
    counts its replay and batch in episodes and trains once per episode: here in transitions, one
    update per ``episode_len`` env steps on 16 episodes' worth of transitions."""
    return {
        # maddpg.yaml runs one env (runner episode); ten copies here for speed, the same updates per env step
        "train.num_envs": 10,
        "maddpg.update_every": episode_len, "maddpg.updates_per_round": 1,  # one update per episode
        "maddpg.batch_size": 16 * episode_len,  # maddpg.yaml: batch_size 16 (episodes)
        "maddpg.warmup_steps": 16 * episode_len,  # training starts once the replay holds one batch
        # maddpg.yaml: buffer_size 50000 episodes, more than any budget here; capped in memory
        "maddpg.buffer_size": buffer,
        "maddpg.lr_actor": 5e-4, "maddpg.lr_critic": 5e-4,  # maddpg.yaml: lr 0.0005
        "maddpg.tau": 0.01,  # maddpg.yaml: target_update_interval_or_tau 0.01 (soft)
        "maddpg.policy_reg": 0.001,  # maddpg.yaml: reg 0.001
        "maddpg.hidden_sizes": [128, 128],  # maddpg.yaml: hidden_dim 128 (actor and critic)
        "maddpg.gamma": 0.99, "maddpg.grad_clip": 10.0,  # default.yaml: gamma 0.99, grad_norm_clip 10
        "maddpg.share_parameters": True,  # EPyMARL's shared-parameter configs (the _ns files: per agent)
        # (standardise_rewards True has no xmarl knob; discrete actions through Gumbel-softmax, temperature 1)
        "train.eval_episodes": eval_episodes, "train.eval_interval": eval_interval,
        "train.log_interval": eval_interval, "train.checkpoint_interval": 10 * eval_interval,
    }


def benchmarl_maddpg(eval_interval: int) -> dict[str, Any]:
    """MADDPG as BenchMARL's fine-tuned VMAS benchmark runs it (``fine_tuned/vmas/conf/config.yaml``
    at commit 85de91b, ``benchmarl/conf/algorithm/maddpg.yaml``), where xmarl has the knob."""
    return {
        "env_kwargs": {"continuous_actions": True},  # experiment: prefer_continuous_actions True
        "train.num_envs": 60,  # off_policy_n_envs_per_worker 60
        # off_policy_collected_frames_per_batch 6000, off_policy_n_optimizer_steps 1000: 1000 updates per 6000 frames
        "maddpg.update_every": 6000, "maddpg.updates_per_round": 1000,
        "maddpg.batch_size": 128,  # off_policy_train_batch_size 128
        "maddpg.buffer_size": 1_000_000,  # off_policy_memory_size 1_000_000
        "maddpg.warmup_steps": 0,  # off_policy_init_random_frames 0 (the first round comes after 6000 frames)
        "maddpg.gamma": 0.9, "maddpg.lr_actor": 5e-5, "maddpg.lr_critic": 5e-5,  # gamma 0.9, lr 0.00005
        "maddpg.grad_clip": 5.0,  # clip_grad_norm True, clip_grad_val 5
        "maddpg.tau": 0.005,  # soft_target_update True, polyak_tau 0.005
        "maddpg.hidden_sizes": [256, 256],  # model layers/mlp: num_cells [256, 256] (Tanh there, xmarl's ReLU here)
        "maddpg.share_parameters": True,  # share_policy_params True; maddpg.yaml share_param_critic True
        # BenchMARL anneals additive Gaussian noise from 0.8 to 0.01 over 1M frames; xmarl's noise is fixed
        "maddpg.exploration_noise": 0.1,
        "maddpg.policy_reg": 0.0,  # BenchMARL's DDPG loss has no pre-activation penalty
        "train.eval_episodes": 200,  # evaluation_episodes 200
        "train.eval_interval": eval_interval,  # evaluation_interval 120_000 frames (scaled to the budget)
        "train.log_interval": eval_interval, "train.checkpoint_interval": 10 * eval_interval,
    }


#: the learning red team with a learner of its own (a group config of its own gives the group its own
#: learner, over its own agents, shared weights), the blue team acting uniformly at random
BATTLE_GROUPS = {"red": {"agents": ["red_*"], "config": {"share_parameters": True}},
                 "blue": {"agents": ["blue_*"], "policy": "random"}}

#: candidate settings per task and method
CANDIDATES: dict[str, dict[str, Candidate]] = {
    "lbf/Foraging-8x8-2p-3f": {
        "coma": Candidate(3_000_000, epymarl_coma(100, 50_000),
                          "EPyMARL coma.yaml/default.yaml, pymarl COMA exploration; EPyMARL gymma.yaml evaluation "
                          "(test_nepisode 100, test_interval 50000)"),
        "maddpg": Candidate(1_500_000, epymarl_maddpg(50, 1_000_000, 100, 50_000),
                            "EPyMARL maddpg.yaml/default.yaml (replay capped at 1000000 transitions); EPyMARL "
                            "gymma.yaml evaluation"),
    },
    "lbf/Foraging-10x10-3p-3f": {
        "coma": Candidate(3_000_000, epymarl_coma(100, 50_000),
                          "EPyMARL coma.yaml/default.yaml, pymarl COMA exploration; EPyMARL gymma.yaml evaluation"),
        "maddpg": Candidate(1_500_000, epymarl_maddpg(50, 1_000_000, 100, 50_000),
                            "EPyMARL maddpg.yaml/default.yaml (replay capped at 1000000 transitions); EPyMARL "
                            "gymma.yaml evaluation"),
    },
    "rware/rware-tiny-2ag": {
        # 500-step episodes: 20 evaluation episodes (pymarl's default test_nepisode) every 100000 steps,
        # so that evaluation stays a small share of a run (EPyMARL: 100 every 50000)
        "coma": Candidate(2_500_000, epymarl_coma(20, 100_000),
                          "EPyMARL coma.yaml/default.yaml, pymarl COMA exploration; 20 evaluation episodes"),
        "maddpg": Candidate(1_500_000, epymarl_maddpg(500, 500_000, 20, 100_000),
                            "EPyMARL maddpg.yaml/default.yaml (replay capped at 500000 transitions); 20 evaluation "
                            "episodes"),
    },
    "vmas/navigation": {
        "maddpg": Candidate(600_000, benchmarl_maddpg(60_000),
                            "BenchMARL fine_tuned/vmas config.yaml (off-policy) and algorithm/maddpg.yaml"),
    },
    "vmas/balance": {
        # 80 rounds of 1000 updates (navigation: 100): balance's four agents train ~30% slower
        "maddpg": Candidate(480_000, benchmarl_maddpg(60_000),
                            "BenchMARL fine_tuned/vmas config.yaml (off-policy) and algorithm/maddpg.yaml"),
    },
    "magent/battle_v4": {
        # xmarl's CommNet defaults (the CommNet paper's: hidden 128, K=2, lr 0.003, tanh, value_coef 0.03), on
        # the task's map 20 (twelve agents a team), 16 episodes of 200 steps per update
        "commnet": Candidate(1_000_000, {
            "train.num_envs": 8, "commnet.batch_episodes": 16, "commnet.gamma": 0.99,
            "train.eval_episodes": 20, "train.eval_interval": 50_000, "train.log_interval": 50_000,
            "train.checkpoint_interval": 500_000,
        }, "xmarl's CommNet defaults (Sukhbaatar et al. 2016: hidden 128, K=2, lr 0.003); red team's own "
           "learner vs random blue", BATTLE_GROUPS),
        # EPyMARL's MADDPG, one update per 200-step episode, but on the smallest map (two agents a team) and
        # on 1024 transitions (openai/maddpg's batch, xmarl's default): MADDPG's critic reads every agent's
        # 845-value view, and 16 episodes' worth (3200) of six agents ran 69 env-steps/s here
        # (benchmarks/results/suite_speed.md)
        "maddpg": Candidate(1_000_000, {**epymarl_maddpg(200, 50_000, 20, 50_000), "train.num_envs": 8,
                                      "maddpg.batch_size": 1024, "env_kwargs": {"map_size": 12}},
                            "EPyMARL maddpg.yaml/default.yaml, batch 1024 transitions (openai/maddpg's), replay "
                            "capped at 50000 transitions, map 12 (2 a team); red team's "
                            "own learner vs random blue", BATTLE_GROUPS),
    },
}


def cells(tasks: list[str] | None = None, methods: list[str] | None = None) -> list[tuple[str, str]]:
    """``(task, method)`` of every candidate, in table order, filtered by ``tasks`` and ``methods``."""
    return [(t, m) for t, by in CANDIDATES.items() for m in by
            if (not tasks or t in tasks) and (not methods or m in methods)]


def settings(task: str, method: str, steps: int | None = None, sets: dict[str, Any] | None = None,
             horizon: int | None = None) -> dict[str, Any]:
    """The overrides a run of ``task`` x ``method`` trains with: the candidate's, the task's env
    kwargs (``horizon``: another episode length), its groups, its budget (or ``steps``, which also
    caps the evaluation and log intervals) and ``sets`` (``--set`` keys) last."""
    c = CANDIDATES[task][method]
    ov = copy.deepcopy(c.overrides)
    ov["env_kwargs"] = {**TASKS[task].env_kwargs, **ov.get("env_kwargs", {})}
    if horizon is not None:
        ov["env_kwargs"][TASKS[task].horizon_key] = int(horizon)
    if c.groups:
        ov["groups"] = copy.deepcopy(c.groups)
    ov["train.steps"] = c.steps if steps is None else int(steps)
    if steps is not None:
        for k in ("train.eval_interval", "train.log_interval", "train.checkpoint_interval"):
            ov[k] = min(ov.get(k, steps), int(steps))
    ov.update(sets or {})
    ov.update({"train.tensorboard": False, "train.progress": False})
    return ov


ONE_RUN = r"""
import json, sys
import numpy as np
import xmarl
from xmarl.envs import make_env
from xmarl.training.trainer import EVAL_SEED_OFFSET, episode_stats


from xmarl.training.groups import UniformPolicy as Random  # uniformly random (available) actions


job = json.loads(sys.argv[1])
method, backend, env_name, seed, ov = job["method"], job["backend"], job["env"], job["seed"], job["overrides"]
r = xmarl.run(method, backend, env_name, seed=seed, out_dir=job["out"], progress=False, overrides=ov)
rows = [json.loads(x) for x in r.metrics_path.read_text().splitlines()]
cfg = xmarl.load_config(config=r.config_path)
env = make_env(env_name, cfg.train.eval_episodes, **cfg.env_kwargs)
rets, lengths, measures = episode_stats(Random(env, seed), env, seed + EVAL_SEED_OFFSET)
print(json.dumps({"final": r.final_metrics, "evals": [x for x in rows if "eval_return" in x], "agents": env.agents,
                  "random_agent_returns": dict(zip(env.agents, rets.mean(0).tolist())),
                  "random_measures": {k: float(v.mean()) for k, v in measures.items()},
                  "random_length": float(lengths.mean())}))
"""


def team_agents(task: Task, agents: list[str]) -> list[str]:
    """The agents whose returns a task reports: its learning team's, else every agent."""
    return [a for a in agents if task.team is None or a.rsplit("_", 1)[0] == task.team]


def aggregate(task: Task, per_agent: dict[str, float]) -> float:
    """A task's return from each agent's episode return: the sum or the mean over its agents."""
    values = [per_agent[a] for a in team_agents(task, list(per_agent))]
    return float(sum(values) if task.returns == "sum" else sum(values) / len(values))


def aggregate_row(task: Task, row: dict[str, Any], agents: list[str]) -> float:
    """A task's return from an evaluation's metrics: the mean per agent over the task's agents
    (``eval_return``, or the team's ``eval_return/<team>``), times their number for a sum."""
    mean = float(row["eval_return"] if task.team is None else row[f"eval_return/{task.team}"])
    return mean * len(team_agents(task, agents)) if task.returns == "sum" else mean


def summarise(task_name: str, method: str, backend: str, seed: int, want: dict[str, Any],
              raw: dict[str, Any], wall: float) -> dict[str, Any]:
    """One run's record from the subprocess's output: the final greedy return and random return
    (aggregated as the task says), each agent's (where the trainer logs them: at most a few
    agents), the curve, the team measures and the times."""
    task = TASKS[task_name]
    agents = raw["agents"]
    final = raw["final"]
    per_agent = {a: float(final[f"eval_agent/{a}"]) for a in agents if f"eval_agent/{a}" in final}
    curve = [[int(row["step"]), aggregate_row(task, row, agents)] for row in raw["evals"]]
    rec = {"task": task_name, "method": method, "backend": backend, "seed": seed, "settings": want,
           "return": aggregate_row(task, final, agents), "random_return": aggregate(task, raw["random_agent_returns"]),
           "agent_returns": per_agent, "random_agent_returns": raw["random_agent_returns"], "curve": curve,
           "steps": int(final["steps"]), "wall_s": float(final["wall_time"]), "process_wall_s": wall,
           "steps_per_sec": float(final["steps_per_sec"]), "eval_length": float(final["eval_length"]),
           "team_size": len(team_agents(task, agents)),
           "random_length": raw["random_length"], "final": final}
    if task.team is not None:  # kills and win rate of the learning team, per episode
        rec["measures"] = {k: float(final[f"eval_{k}_{task.team}"]) for k in ("kills", "wins", "deaths")}
        rec["random_measures"] = {k: raw["random_measures"][f"{k}_{task.team}"] for k in ("kills", "wins", "deaths")}
        team = task.team
        rec["measure_curve"] = [[int(row["step"]), row.get(f"eval_kills_{team}"), row.get(f"eval_wins_{team}")]
                                for row in raw["evals"]]
    return rec


class Record:
    """``<out>.json``: every finished run, written atomically after each one (thread-safe), and
    ``<out>.md``, rendered from it."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.lock = threading.Lock()
        path = out.with_suffix(".json")
        data = json.loads(path.read_text()) if path.is_file() else {"meta": {}, "runs": []}
        self.meta: dict[str, Any] = data["meta"]
        self.runs: list[dict[str, Any]] = data["runs"]

    def kept(self, task: str, method: str, backend: str, seed: int, want: dict[str, Any]) -> dict[str, Any] | None:
        """The recorded run of this cell and seed, if it ran with the settings ``want``."""
        for r in self.runs:
            if (r["task"], r["method"], r["backend"], r["seed"]) == (task, method, backend, seed) \
                    and r["settings"] == want:
                return r
        return None

    def add(self, rec: dict[str, Any]) -> None:
        """Keep ``rec`` (replacing the same cell and seed's older run) and write the JSON."""
        key = (rec["task"], rec["method"], rec["backend"], rec["seed"])
        with self.lock:
            self.runs = [r for r in self.runs if (r["task"], r["method"], r["backend"], r["seed"]) != key] + [rec]
            self.save()

    def save(self) -> None:
        order = {c: i for i, c in enumerate(cells())}
        self.runs.sort(key=lambda r: (order.get((r["task"], r["method"]), len(order)),
                                      BACKENDS.index(r["backend"]) if r["backend"] in BACKENDS else 9, r["seed"]))
        atomic_write_text(self.out.with_suffix(".json"), json.dumps({"meta": self.meta, "runs": self.runs},
                                                                    indent=1) + "\n")


def one(record: Record, task: str, method: str, backend: str, seed: int, want: dict[str, Any],
        tmp: str) -> dict[str, Any]:
    """Run one cell and seed in its own process (or keep its recorded run) and record it."""
    kept = record.kept(task, method, backend, seed, want)
    if kept is not None:
        print(f"{task} {method} {backend} seed {seed}: kept ({kept['return']:.3f})", flush=True)
        return kept
    job = {"method": method, "backend": backend, "env": TASKS[task].env, "seed": seed, "overrides": want,
           "out": str(Path(tmp) / f"{task.replace('/', '_')}-{method}-{backend}-s{seed}")}
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", ONE_RUN, json.dumps(job)], capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise RuntimeError(f"{task} {method} {backend} seed {seed} failed:\n{p.stderr[-3000:]}")
    rec = summarise(task, method, backend, seed, want, json.loads(p.stdout.strip().splitlines()[-1]),
                    time.perf_counter() - t0)
    record.add(rec)
    print(f"{task} {method} {backend} seed {seed}: {rec['return']:.3f} (random {rec['random_return']:.3f}) "
          f"in {rec['wall_s'] / 60:.1f} min", flush=True)
    return rec


def _mean_std(xs: list[float]) -> tuple[float, float]:
    m = sum(xs) / len(xs)
    return m, (math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0)


def late_gain(curve: list[list[float]]) -> float | None:
    """The curve's change over the last quarter of the run: the final evaluation minus the last one
    at or before 75% of the final step (None with fewer than two evaluations)."""
    if len(curve) < 2:
        return None
    last = curve[-1][0]
    before = [v for s, v in curve if s <= 0.75 * last] or [curve[0][1]]
    return curve[-1][1] - before[-1]


def markdown(record: Record, stale_check: bool = True) -> str:
    """The table: one row per task x method x backend (mean over seeds), the MAgent2 team measures,
    then each run, the settings the runs used and the published notes. With ``stale_check``, runs
    whose settings are not the current candidates' are flagged."""
    meta, runs = record.meta, record.runs
    load = ""
    if "load_at_start" in meta:
        load = (f"; 1-minute load average {meta['load_at_start']} at the start of the last command, "
                f"{meta.get('load_at_end', '?')} at its end")
    lines = ["# The benchmark suites: LBF, RWARE, VMAS, MAgent2", "",
             f"Commands: {'; '.join(f'`{c}`' for c in meta.get('commands', []))} "
             f"({meta.get('machine', '?')}, Python {meta.get('python', '?')}, CPU only, one framework thread per run, "
             f"{meta.get('jobs', '?')} run(s) at a time, {meta.get('date', '?')}{load}).",
             "",
             "Return: the final greedy return (the trainer's last evaluation) of the task's agents, **summed over "
             "agents** for LBF and RWARE (as EPyMARL reports them), the **mean over agents** for VMAS and for the "
             "learning MAgent2 team; random: uniformly random actions on the same episodes. Budget: env steps per "
             "run (summed over parallel envs). Late gain: the curve's change over the run's last quarter (a rising "
             "curve: the budget, not the method, bounds the figure). Published: what could be read on this "
             f"offline machine (`{RESEARCH}`), in the notes below the table; no number is invented.", ""]
    if not runs:
        return "\n".join(lines + ["No run recorded yet."]) + "\n"
    lines += ["| task | method | backend | seeds | budget (env steps) | final return (mean ± sd) | random | "
              "late gain | slowest run (min) | published |", "|---|---|---|---:|---:|---:|---:|---:|---:|---|"]
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault((r["task"], r["method"], r["backend"]), []).append(r)
    notes: dict[str, int] = {}
    for (task, method, backend), rs in groups.items():
        m, sd = _mean_std([r["return"] for r in rs])
        rand = sum(r["random_return"] for r in rs) / len(rs)
        gains = [g for g in (late_gain(r["curve"]) for r in rs) if g is not None]
        gain = f"{sum(gains) / len(gains):+.3f}" if gains else "-"
        budget = ", ".join(str(b) for b in sorted({r["steps"] for r in rs}))
        text = TASKS[task].published.get(method) if task in TASKS else None
        published = "-" if text is None else f"none [{notes.setdefault(text, len(notes) + 1)}]"
        lines.append(f"| {task} | {method} | {backend} | {len(rs)} | {budget} | **{m:.3f}** ± {sd:.3f} | {rand:.3f} | "
                     f"{gain} | {max(r['wall_s'] for r in rs) / 60:.1f} | {published} |")
    lines += [""] + [f"[{i}] {text}." for text, i in notes.items()]
    teams = [r for r in runs if "measures" in r]
    if teams:
        lines += ["", "MAgent2 battle, the learning team (mean over seeds): kills (enemies killed per episode), win "
                  "rate (episodes ended with more agents alive), deaths; random: both teams random.", "",
                  "| task | method | backend | team size | seeds | kills | win rate | deaths | random kills | "
                  "random win rate |", "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        for (task, method, backend), rs in groups.items():
            rs = [r for r in rs if "measures" in r]
            if rs:
                def avg(key: str, k: str, rs: list[dict[str, Any]] = rs) -> float:
                    return sum(r[key][k] for r in rs) / len(rs)
                lines.append(f"| {task} | {method} | {backend} | {rs[0]['team_size']} | {len(rs)} | "
                             f"{avg('measures', 'kills'):.2f} | {avg('measures', 'wins'):.2f} | "
                             f"{avg('measures', 'deaths'):.2f} | {avg('random_measures', 'kills'):.2f} | "
                             f"{avg('random_measures', 'wins'):.2f} |")
    lines += ["", "Each run:", "", "| task | method | backend | seed | final return | random | best evaluation | "
              "wall (min) | env-steps/s |", "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in runs:
        best = max((v for _, v in r["curve"]), default=float("nan"))
        lines.append(f"| {r['task']} | {r['method']} | {r['backend']} | {r['seed']} | {r['return']:.3f} | "
                     f"{r['random_return']:.3f} | {best:.3f} | {r['wall_s'] / 60:.1f} | {r['steps_per_sec']:.0f} |")
    lines += ["", "Settings the runs used (candidates of `benchmarks/suites.py`, not shipped configs) and where they "
              "come from:", ""]
    stale = 0
    shown: set[tuple[str, str]] = set()
    for r in runs:
        cell = (r["task"], r["method"])
        current = cell[0] in CANDIDATES and cell[1] in CANDIDATES[cell[0]]
        if stale_check:
            stale += current and r["settings"] != settings(*cell)
        if cell in shown:
            continue
        shown.add(cell)
        source = CANDIDATES[cell[0]][cell[1]].source if current else "no current candidate"
        note = f" ({TASKS[cell[0]].note})" if cell[0] in TASKS and TASKS[cell[0]].note else ""
        lines.append(f"- {cell[0]} {cell[1]}{note}: {source}; `{json.dumps(r['settings'])}`")
    if stale:
        lines += ["", f"**Stale**: {stale} run(s) above ran other settings than the current candidates "
                  "(`python benchmarks/suites.py` re-runs them and keeps the others)."]
    return "\n".join(lines) + "\n"


def parse_set(items: list[str]) -> dict[str, Any]:
    """``--set key=value`` pairs, values read as JSON where they parse (numbers, lists, bools)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set {item}: expected key=value")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def main(argv: list[str] | None = None) -> None:
    """Run (or resume) the chosen cells and write ``<out>.json`` and ``<out>.md``."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", nargs="+", choices=list(TASKS), default=None)
    ap.add_argument("--methods", nargs="+", choices=["coma", "maddpg", "commnet"], default=None)
    ap.add_argument("--backends", nargs="+", default=["torch"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--steps", type=int, default=None, help="env steps of every run instead of the candidate's budget")
    ap.add_argument("--horizon", type=int, default=None, help="episode length of every task instead of its own")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config key of every run (after the candidate's)")
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="results prefix: <out>.json and <out>.md")
    ap.add_argument("--list", action="store_true", help="print each cell's settings and source, run nothing")
    ap.add_argument("--report", action="store_true", help="only rewrite <out>.md from <out>.json")
    args = ap.parse_args(argv)
    sets = parse_set(args.sets)
    out = Path(args.out)
    changed = args.steps is not None or args.horizon is not None or bool(sets)
    if changed and out.resolve() == DEFAULT_OUT.resolve():
        raise SystemExit("--steps, --horizon and --set change the candidates' settings: give an --out away from the "
                         "recorded table")
    chosen = cells(args.tasks, args.methods)
    if args.list:
        speed = RESULTS / "suite_speed.json"
        rates = {}
        if speed.is_file():  # the recorded training speed, for an estimate of each run's time
            rates = {(r["task"], r["method"]): r["whole_run_steps_per_sec"]
                     for r in json.loads(speed.read_text())["rows"] if r["part"] == "train"}
        for task, method in chosen:
            c = CANDIDATES[task][method]
            eta = f" (~{c.steps / rates[task, method] / 60:.0f} min at the recorded training speed)" \
                if (task, method) in rates else ""
            print(f"{task} {method}: {c.steps} env steps{eta}; {c.source}\n  {json.dumps(settings(task, method))}")
        return
    record = Record(out)
    if not args.report:
        command = " ".join(["python benchmarks/suites.py", *(sys.argv[1:] if argv is None else argv)])
        record.meta.update(machine=f"{platform.machine()}, {os.cpu_count()} cores", python=platform.python_version(),
                           jobs=args.jobs, date=time.strftime("%Y-%m-%d"),
                           load_at_start=round(os.getloadavg()[0], 1),
                           commands=[c for c in record.meta.get("commands", []) if c != command] + [command])
        import tempfile

        jobs = [(t, m, b, s) for t, m in chosen for b in args.backends for s in args.seeds]
        with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(args.jobs) as pool:
            futures = [pool.submit(one, record, t, m, b, s, settings(t, m, args.steps, sets, args.horizon), tmp)
                       for t, m, b, s in jobs]
            for f in futures:
                f.result()
        record.meta["load_at_end"] = round(os.getloadavg()[0], 1)
        record.save()
    text = markdown(record, stale_check=not changed)
    atomic_write_text(out.with_suffix(".md"), text)
    print(text)


if __name__ == "__main__":
    main()
