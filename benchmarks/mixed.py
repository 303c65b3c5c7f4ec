"""MADDPG on the mixed cooperative-competitive tasks of Lowe et al. (2017), on mpe-fast (the
batched numpy twin of mpe2): predator-prey (``simple_tag_v3``: 3 predators, 1 prey, 2 obstacles)
with MADDPG predators against MADDPG prey, against a prey that acts at random and against the
env's scripted prey (flees the nearest predator, keeps off the edge), and physical
deception (``simple_adversary_v3``: 2 good agents, 1 adversary) with MADDPG on both sides; and
one match of two methods, COMA predators (one learner of the three, shared weights, default
``coma`` settings) against a MADDPG prey (a learner of its own).

Measures, as the reference code's ``benchmark_data`` defines them (the env reports them through
``step_measures``; evaluation sums them over each episode):

* predator-prey: ``touches``, predator-prey contacts per episode (a predator touching the prey
  at a step counts once at that step), and each group's return;
* physical deception: at the last step of an episode, whether the good agent closest to the
  goal touches it (``good_success``) and whether the adversary does (``adversary_success``;
  touching: distance < agent size + landmark size), and each group's return.

Every run: the settings of the shipped mpe-fast simple_spread config (64 envs, batch 1024, 25600
warm-up steps, an update every 100 steps, 25-step episodes, discrete actions) with ``--steps`` env
steps, per-agent weights and the groups below; final greedy evaluation on 200 episodes; uniformly
random play on the same episodes beside it. Results: benchmarks/results/mixed.{json,md}.

    python benchmarks/mixed.py --backends torch tensorflow mindspore --seeds 0 1 2 --jobs 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

#: name: (env, groups)
VARIANTS: dict[str, tuple[str, dict]] = {
    "tag: MADDPG vs MADDPG": ("mpe-fast/simple_tag_v3", {"predators": {"agents": ["adversary_*"]},
                                                        "prey": {"agents": ["agent_*"]}}),
    "tag: MADDPG vs random prey": ("mpe-fast/simple_tag_v3", {"predators": {"agents": ["adversary_*"]},
                                                             "prey": {"agents": ["agent_*"], "policy": "random"}}),
    "tag: MADDPG vs heuristic prey": ("mpe-fast/simple_tag_v3", {"predators": {"agents": ["adversary_*"]},
                                                                "prey": {"agents": ["agent_*"],
                                                                         "policy": "heuristic"}}),
    "deception: MADDPG vs MADDPG": ("mpe-fast/simple_adversary_v3", {"adversary": {"agents": ["adversary_*"]},
                                                                    "good": {"agents": ["agent_*"]}}),
    # a method per group: COMA's counterfactual credit assignment for the cooperating predators
    "tag: COMA predators vs MADDPG prey": ("mpe-fast/simple_tag_v3", {"predators": {"agents": ["adversary_*"],
                                                                                   "method": "coma"},
                                                                     "prey": {"agents": ["agent_*"]}}),
}

ONE_RUN = r"""
import json, sys, time
import numpy as np
import xmarl
from xmarl.envs import make_env
from xmarl.training.trainer import EVAL_SEED_OFFSET, episode_stats

backend, seed, out, steps, env_name = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
groups = json.loads(sys.argv[6])
kinds = "-".join(g.get("method", "") + g.get("policy", "learn") for g in groups.values())
t0 = time.perf_counter()
r = xmarl.run("maddpg", backend, env_name, seed=seed, out_dir=out, progress=False,
              overrides={"train.steps": steps, "train.tensorboard": False, "train.eval_episodes": 200,
                         "train.num_envs": 64, "train.eval_interval": max(steps // 4, 1),
                         "train.log_interval": 25000, "train.checkpoint_interval": steps,
                         "env_kwargs": {"max_cycles": 25, "continuous_actions": False},
                         "maddpg.batch_size": 1024, "maddpg.warmup_steps": 25600, "maddpg.update_every": 100,
                         "maddpg.share_parameters": False, "groups": groups,
                         "name": f"{env_name.replace('/', '_')}-{kinds}-{backend}-s{seed}"})
wall = time.perf_counter() - t0


class Random:
    def __init__(self, env, seed):
        self.env, self.rng = env, np.random.default_rng(seed)

    def act(self, obs, state=None, explore=False, **_):
        return self.env.sample_actions(self.rng), state


cfg = r.run_dir / "config.yaml"
import yaml
kwargs = yaml.safe_load(cfg.read_text())["env_kwargs"]
env = make_env(env_name, 200, **kwargs)
rets, lengths, measures = episode_stats(Random(env, seed), env, seed + EVAL_SEED_OFFSET)
slots = {g: [i for i, a in enumerate(env.agents) if any(__import__('fnmatch').fnmatchcase(a, p) for p in c["agents"])]
         for g, c in groups.items()}
random = {f"eval_return/{g}": float(rets[:, s].mean()) for g, s in slots.items()}
random.update({f"eval_{k}": float(v.mean()) for k, v in measures.items()})
print(json.dumps({"final": r.final_metrics, "random": random, "wall_s": wall}))
"""


def _partial(variant: str, backend: str, seed: int, steps: int) -> Path:
    """Where a finished run waits for the rest of the recording (a failure elsewhere keeps it)."""
    name = f"{variant}-{backend}-{seed}-{steps}".replace(":", "").replace(" ", "_")
    return RESULTS / ".mixed-runs" / f"{name}.json"


def one(variant: str, backend: str, seed: int, steps: int, out: str) -> dict | None:
    """One run (or the one a previous recording finished); None when it failed (said on stderr)."""
    done = _partial(variant, backend, seed, steps)
    if done.is_file():
        print(f"{variant} {backend} seed {seed}: kept from {done}", flush=True)
        return json.loads(done.read_text())
    env_name, groups = VARIANTS[variant]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", ONE_RUN, backend, str(seed), out, str(steps), env_name,
                           json.dumps(groups)], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        print(f"{variant} {backend} seed {seed} failed:\n{proc.stderr[-3000:]}", file=sys.stderr, flush=True)
        return None
    rec = json.loads(proc.stdout.strip().splitlines()[-1])
    shown = {k: round(v, 3) for k, v in rec["final"].items() if k.startswith("eval_")}
    print(f"{variant} {backend} seed {seed}: {shown} in {rec['wall_s']:.0f}s", flush=True)
    row = {"variant": variant, "backend": backend, "seed": seed, **rec}
    done.parent.mkdir(parents=True, exist_ok=True)
    done.write_text(json.dumps(row))
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backends", nargs="+", default=["torch"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--steps", type=int, default=500_000)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--out", default="/tmp/xmarl-mixed")
    ap.add_argument("--report", action="store_true", help="only rewrite results/mixed.md from results/mixed.json")
    args = ap.parse_args()
    cells = [(v, b, s) for v in args.variants for b in args.backends for s in args.seeds]
    if args.report:  # rewrite the Markdown from the recorded runs, running nothing
        cells = []
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda c: one(*c, args.steps, args.out), cells))
    rows = [r for r in results if r is not None]
    failed = [c for c, r in zip(cells, results) if r is None]
    command = "python benchmarks/mixed.py " + " ".join(sys.argv[1:])
    RESULTS.mkdir(exist_ok=True)
    old = RESULTS / "mixed.json"
    commands = [command]
    if old.is_file():  # keep the recorded runs of other backends, seeds or variants at the same budget
        before = json.loads(old.read_text())
        if before.get("steps") == args.steps:
            done = {(r["variant"], r["backend"], r["seed"]) for r in rows}
            rows = [r for r in before["rows"] if (r["variant"], r["backend"], r["seed"]) not in done] + rows
            commands = [c for c in before.get("commands", [before.get("command")]) if c != command] + commands
            if args.report:
                commands = commands[:-1]
    order = {v: i for i, v in enumerate(VARIANTS)}
    rows.sort(key=lambda r: (order[r["variant"]], ["torch", "tensorflow", "mindspore"].index(r["backend"]), r["seed"]))
    variants = [v for v in VARIANTS if any(r["variant"] == v for r in rows)]
    backends = [b for b in ("torch", "tensorflow", "mindspore") if any(r["backend"] == b for r in rows)]
    old.write_text(json.dumps({"commands": commands, "steps": args.steps, "rows": rows}, indent=1))
    command = "`, `".join(commands)
    lines = ["# MADDPG on the MADDPG paper's mixed tasks (mpe-fast)", "",
             f"Commands: `{command}` ({platform.machine()}, 2 cores, Python {platform.python_version()}, "
             f"{'2' if args.report else args.jobs} run(s) at a time, {time.strftime('%Y-%m-%d')}).",
             f"Budget: {args.steps} env steps per run ({args.steps // 25} episodes of 25 steps), the settings of the "
             "shipped mpe-fast simple_spread config otherwise, per-agent weights. Final greedy evaluation on 200 "
             "episodes; uniformly random play on the same episodes in brackets.",
             "Measures: touches = predator-prey contacts per episode (simple_tag's benchmark_data summed over the "
             "episode); success = the goal touched at the episode's last step (closest good agent, or the "
             "adversary).",
             "Published figures: Lowe et al. (2017) report these measures for their own training; their tables "
             "could not be read on this offline machine, so they are not quoted here (what they report, and "
             "where: benchmarks/published.md).", ""]
    for variant in variants:
        mine = [r for r in rows if r["variant"] == variant]
        # each group's return and the task's measures (the mean over both sides of a game says nothing)
        keys = sorted(k for k in mine[0]["final"] if k.startswith("eval_") and not k.startswith("eval_agent/")
                      and k not in ("eval_length", "eval_return"))  # (each agent's return: in mixed.json)
        lines += [f"## {variant}", "", "| backend | seed | " + " | ".join(k.removeprefix("eval_") for k in keys)
                  + " | wall (s) |", "|---|---:|" + "---:|" * len(keys) + "---:|"]
        for r in mine:
            row_cells = [f"{r['final'][k]:.3f} ({r['random'].get(k, float('nan')):.3f})" for k in keys]
            lines.append(f"| {r['backend']} | {r['seed']} | " + " | ".join(row_cells) + f" | {r['wall_s']:.0f} |")
        lines += ["", "| backend | " + " | ".join(f"mean {k.removeprefix('eval_')}" for k in keys) + " |",
                  "|---|" + "---:|" * len(keys)]
        for b in backends:
            rs = [r for r in mine if r["backend"] == b]
            if rs:
                lines.append(f"| {b} | " + " | ".join(f"{sum(r['final'][k] for r in rs) / len(rs):.3f}" for k in keys)
                             + " |")
        lines.append("")
    (RESULTS / "mixed.md").write_text("\n".join(lines))
    print("\n".join(lines))
    for cell in cells:
        if cell not in failed:
            _partial(*cell, args.steps).unlink(missing_ok=True)
    if failed:
        sys.exit(f"{len(failed)} run(s) failed (the others are recorded): {failed}")


if __name__ == "__main__":
    main()
