"""Throughput of the benchmark suites' adapters: env-steps/s of each adapter alone (random actions,
``num_envs`` 1, 16 and 64) beside the package stepped directly, and in training (a short
``xmarl.run`` with torch per method that fits the env, with the candidate settings of
``benchmarks/suites.py``), with the share of time in the env, acting, updates and glue.

    python benchmarks/suite_speed.py --part alone
    python benchmarks/suite_speed.py --part train
    python benchmarks/suite_speed.py --part alone --tasks vmas/navigation   # re-measure some rows, keep the rest

One env-step is one transition of one environment (all agents act). Alone: actions are drawn
before timing (uniformly over each agent's actions), episodes end at the task's horizon and are
reset (included); each configuration steps for ``--seconds`` per repeat, ``--repeats`` times
interleaved, and the median is reported. "Directly" is the package's own env without xmarl: one
gymnasium env (LBF, RWARE) or one magent2 ``parallel_env`` stepped in a Python loop, or one VMAS
env of the same number of worlds stepped with torch tensors; "vs directly" compares with it.

Training: each (task, method) of :data:`suites.CANDIDATES` trains with its candidate settings for
the steps in :data:`TRAIN_STEPS` (evaluation only at the end, on 2 episodes), in its own process with
one torch thread, one run at a time; env-steps/s is the steady state (from the first log row past
30% of the steps to the end: imports, tracing and MADDPG's warm-up fall before it) and the whole
run's. Results: ``benchmarks/results/suite_speed.{json,md}``, with the command and the machine; each
``--part`` keeps the other part's rows, and ``--tasks`` keeps the other tasks' rows.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from xmarl.files import atomic_write_text

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "suite_speed"


def _suites() -> Any:
    """``benchmarks/suites.py`` as a module (its tasks and candidate settings)."""
    spec = importlib.util.spec_from_file_location("suites_benchmark", HERE / "suites.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


S = _suites()
NUM_ENVS = (1, 16, 64)
#: env steps of each training measurement (MADDPG's warm-up and first update rounds within the first 30%)
TRAIN_STEPS: dict[tuple[str, str], int] = {
    ("lbf/Foraging-8x8-2p-3f", "coma"): 20_000, ("lbf/Foraging-8x8-2p-3f", "maddpg"): 10_000,
    ("lbf/Foraging-10x10-3p-3f", "coma"): 20_000, ("lbf/Foraging-10x10-3p-3f", "maddpg"): 10_000,
    ("rware/rware-tiny-2ag", "coma"): 20_000, ("rware/rware-tiny-2ag", "maddpg"): 30_000,
    ("vmas/navigation", "maddpg"): 18_000, ("vmas/balance", "maddpg"): 18_000,
    ("magent/battle_v4", "commnet"): 16_000, ("magent/battle_v4", "maddpg"): 12_000,
}


# -- alone ---------------------------------------------------------------------------------------

def _timed(step: Callable[[int], int], seconds: float) -> float:
    """Call ``step(t)`` (returning the env-steps it made) until ``seconds`` have passed; env-steps/s."""
    n, t = 0, 0
    start = time.perf_counter()
    while True:
        n += step(t)
        t += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n / elapsed


def time_adapter(task: str, num_envs: int, seconds: float, seed: int) -> float:
    """env-steps/s of ``make_env(task, num_envs)`` with the task's env kwargs, random actions."""
    from xmarl.envs import make_env

    env = make_env(S.TASKS[task].env, num_envs, **S.TASKS[task].env_kwargs)
    rng = np.random.default_rng(seed)
    plans = [env.sample_actions(rng) for _ in range(200)]
    env.reset(seed=seed)

    def step(t: int) -> int:
        env.step(plans[t % len(plans)])
        return num_envs

    rate = _timed(step, seconds)
    env.close()
    return rate


def _gym_direct(task: str, seconds: float, seed: int) -> float:
    """One of the package's gymnasium envs (its own registration and time limit) in a Python loop."""
    import gymnasium

    from xmarl.envs.gym_tuple import SUITES

    prefix, name = task.split("/", 1)
    package, _, ids, version, limit_key, _ = SUITES[prefix]
    importlib.import_module(package)
    kwargs = dict(S.TASKS[task].env_kwargs)
    limit = kwargs.pop(limit_key)
    if prefix == "lbf":  # LBF's limit is max_episode_steps; RWARE's is its own max_steps
        env = gymnasium.make(name + version, disable_env_checker=True, max_episode_steps=limit, **kwargs)
    else:
        env = gymnasium.make(name + version, disable_env_checker=True, **{limit_key: limit}, **kwargs)
    rng = np.random.default_rng(seed)
    n = [sp.n for sp in env.action_space.spaces]
    plans = [tuple(int(rng.integers(k)) for k in n) for _ in range(200)]
    env.reset(seed=seed)

    def step(t: int) -> int:
        _, _, term, trunc, _ = env.step(plans[t % len(plans)])
        if (all(term) if isinstance(term, (list, tuple)) else term) or trunc:
            env.reset()
        return 1

    return _timed(step, seconds)


def _vmas_direct(task: str, num_envs: int, seconds: float, seed: int) -> float:
    """One VMAS env of ``num_envs`` worlds stepped with torch tensors (a batched reset at the horizon)."""
    import torch
    import vmas

    kwargs = dict(S.TASKS[task].env_kwargs)
    env = vmas.make_env(task.split("/", 1)[1], num_envs=num_envs, device="cpu", continuous_actions=True,
                        seed=seed, terminated_truncated=True, **kwargs)
    gen = torch.Generator().manual_seed(seed)
    plans = [[torch.rand((num_envs, 2), generator=gen) * 2 - 1 for _ in env.agents] for _ in range(200)]

    def step(t: int) -> int:
        _, _, term, trunc, _ = env.step(plans[t % len(plans)])
        done = term | trunc
        if bool(done.all()):
            env.reset()
        elif bool(done.any()):
            for i in torch.nonzero(done).flatten().tolist():
                env.reset_at(i)
        return num_envs

    return _timed(step, seconds)


def _magent_direct(task: str, seconds: float, seed: int) -> float:
    """One magent2 ``parallel_env`` stepped with a dict of actions in a Python loop."""
    mod = importlib.import_module(f"magent2.environments.{task.split('/', 1)[1]}")
    env = mod.parallel_env(**S.TASKS[task].env_kwargs)
    rng = np.random.default_rng(seed)
    agents = list(env.possible_agents)
    n = env.action_space(agents[0]).n
    plans = [dict(zip(agents, rng.integers(0, n, len(agents)).tolist())) for _ in range(200)]
    env.reset(seed=seed)

    def step(t: int) -> int:
        plan = plans[t % len(plans)]
        env.step({a: plan[a] for a in env.agents})
        if not env.agents:
            env.reset()
        return 1

    return _timed(step, seconds)


def alone_configs(tasks: list[str], seconds: float) -> dict[tuple[str, str, int], Callable[[int], float]]:
    """``(task, "xmarl" | "directly", num_envs) -> timer(seed)`` for every alone measurement."""
    out: dict[tuple[str, str, int], Callable[[int], float]] = {}
    for task in tasks:
        suite = task.split("/", 1)[0]
        for E in NUM_ENVS:
            if suite == "vmas":
                out[(task, "directly", E)] = lambda s, task=task, E=E: _vmas_direct(task, E, seconds, s)
            elif E == 1:
                fn = _magent_direct if suite == "magent" else _gym_direct
                out[(task, "directly", E)] = lambda s, task=task, fn=fn: fn(task, seconds, s)
            out[(task, "xmarl", E)] = lambda s, task=task, E=E: time_adapter(task, E, seconds, s)
    return out


def measure_alone(tasks: list[str], seconds: float, repeats: int) -> list[dict[str, Any]]:
    """The alone rows: median env-steps/s of ``repeats`` interleaved repeats per configuration."""
    import torch

    torch.set_num_threads(1)  # as the trainer runs VMAS (train.threads 1)
    configs = alone_configs(tasks, seconds)
    runs: dict[tuple[str, str, int], list[float]] = {k: [] for k in configs}
    for r in range(repeats):  # interleaved, so a slow spell of the machine hits every configuration alike
        for key, fn in configs.items():
            runs[key].append(fn(r))
            print(*key, f"{runs[key][-1]:,.0f} env-steps/s", flush=True)
    rows = []
    for (task, how, E), v in runs.items():
        rows.append({"part": "alone", "task": task, "how": how, "num_envs": E, "steps_per_sec": statistics.median(v),
                     "runs": v, "env_kwargs": S.TASKS[task].env_kwargs})
    return rows


# -- in training ---------------------------------------------------------------------------------

TRAIN_ONE = r"""
import json, sys
import xmarl
job = json.loads(sys.argv[1])
r = xmarl.run(job["method"], "torch", job["env"], seed=0, out_dir=job["out"], progress=False,
              overrides=job["overrides"])
rows = [json.loads(x) for x in r.metrics_path.read_text().splitlines()]
out = dict(r.final_metrics)
steps = out["steps"]
out["whole_run_steps_per_sec"] = out["steps_per_sec"]
mark = next(x for x in rows if "wall_time" in x and x["step"] >= 0.3 * steps)
out["window_from_step"], out["window_from_s"] = mark["step"], mark["wall_time"]
for k in [k for k in out if k.startswith("time_") and k != "time_glue"] + ["wall_time"]:
    out[k] -= mark[k]
out["time_glue"] = out["wall_time"] - sum(out[k] for k in out if k.startswith("time_") and k != "time_glue")
out["steps_per_sec"] = (steps - mark["step"]) / out["wall_time"]
out["num_envs"] = xmarl.load_config(config=r.config_path).train.num_envs
print(json.dumps(out))
"""


def train_overrides(task: str, method: str, steps: int) -> dict[str, Any]:
    """The candidate settings with ``steps`` env steps, logs every tenth of them and one evaluation
    (2 episodes) at the end."""
    ov = S.settings(task, method)
    ov.update({"train.steps": steps, "train.eval_interval": 10**9, "train.eval_episodes": 2,
               "train.log_interval": steps // 10, "train.checkpoint_interval": 10**9})
    return ov


def measure_train(tasks: list[str]) -> list[dict[str, Any]]:
    """The training rows, one run per (task, method), one at a time."""
    import tempfile

    rows = []
    for task, method in S.cells(tasks):
        steps = TRAIN_STEPS[(task, method)]
        with tempfile.TemporaryDirectory() as tmp:
            job = {"method": method, "env": S.TASKS[task].env, "out": tmp,
                   "overrides": train_overrides(task, method, steps)}
            p = subprocess.run([sys.executable, "-c", TRAIN_ONE, json.dumps(job)], capture_output=True, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
        if p.returncode != 0:
            raise SystemExit(f"{task} {method} failed:\n{p.stderr[-3000:]}")
        res = json.loads(p.stdout.strip().splitlines()[-1])
        rows.append({"part": "train", "task": task, "method": method, "env_kwargs": job["overrides"]["env_kwargs"],
                     **res})
        print(task, method, f"{res['steps_per_sec']:,.0f} env-steps/s "
              f"(whole run {res['whole_run_steps_per_sec']:,.0f})", flush=True)
    return rows


# -- report --------------------------------------------------------------------------------------

def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    """The two tables, with each part's command, machine and load."""
    lines = ["# Benchmark-suite adapters: env-steps/s alone and in training", ""]
    for part in ("alone", "train"):
        m = meta.get(part)
        if m:
            loaded = (" (other runs were using the 2 cores meanwhile: these numbers are lower than on an idle "
                      "machine)") if max(m["load_start"], m["load_end"]) > 1.5 else ""
            lines.append(f"{part.capitalize()}: `{m['command']}` ({m['machine']}, Python {m['python']}, "
                         f"{m['packages']}; CPU only, one torch thread; {m['date']}; 1-minute load average "
                         f"{m['load_start']:.1f} at the start of the last command, {m['load_end']:.1f} at its end"
                         f"{loaded}).")
            lines.append("")
    alone = [r for r in rows if r["part"] == "alone"]
    if alone:
        reps = len(alone[0]["runs"])
        lines += [f"Alone: random actions, env-steps/s (median of {reps} interleaved repeats, min .. max); the "
                  "task's env kwargs and horizon, resets included. \"directly\": the package's env without xmarl (one "
                  "env in a Python loop; VMAS: one env of that many worlds); \"vs directly\" compares with it, for "
                  "LBF, RWARE and MAgent2 with the one env (their copies step one after another, so the rate per "
                  "env-step is what copies can add).", "",
                  "| task | env kwargs | env | num envs | env-steps/s | min .. max | vs directly |",
                  "|---|---|---|---:|---:|---:|---:|"]
        direct = {(r["task"], r["num_envs"]): r["steps_per_sec"] for r in alone if r["how"] == "directly"}
        for r in alone:
            base = direct.get((r["task"], r["num_envs"]), direct.get((r["task"], 1)))
            what = "xmarl `make_env`" if r["how"] == "xmarl" else "package directly"
            ratio = f"{r['steps_per_sec'] / base:.2f}x" if base and r["how"] == "xmarl" else "-"
            kw = ", ".join(f"{k}={v}" for k, v in r.get("env_kwargs", {}).items())
            lines.append(f"| {r['task']} | {kw} | {what} | {r['num_envs']} | {r['steps_per_sec']:,.0f} | "
                         f"{min(r['runs']):,.0f} .. {max(r['runs']):,.0f} | {ratio} |")
        lines.append("")
    train = [r for r in rows if r["part"] == "train"]
    if train:
        lines += ["In training: torch, the candidate settings of `benchmarks/suites.py` (`--list` prints them) for the "
                  "steps shown; steady-state env-steps/s from the first log row past 30% of the steps, the share of "
                  "that window's wall time in the env, acting, updates and glue (buffer, batching, logging, the final "
                  "2-episode evaluation), and the whole run's env-steps/s. VMAS's MADDPG updates in rounds of 1000 "
                  "every 6000 env steps (BenchMARL's schedule): its whole-run figure (one round per 6000 steps) is the "
                  "one to read.", "",
                  "| task | env kwargs | method | num envs | steps | env-steps/s | env % | act % | update % | glue % | "
                  "whole run env-steps/s | updates |", "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in train:
            w = r["wall_time"]
            glue = r["time_glue"] + r.get("time_eval", 0.0) + r.get("time_checkpoint", 0.0)
            kw = ", ".join(f"{k}={v}" for k, v in r.get("env_kwargs", {}).items())
            lines.append(f"| {r['task']} | {kw} | {r['method']} | {r['num_envs']} | {r['steps']:.0f} | "
                         f"{r['steps_per_sec']:,.0f} | {100 * r['time_env'] / w:.0f} | {100 * r['time_act'] / w:.0f} | "
                         f"{100 * r['time_update'] / w:.0f} | {100 * glue / w:.0f} | "
                         f"{r['whole_run_steps_per_sec']:,.0f} | {r['updates']:.0f} |")
        lines.append("")
    return "\n".join(lines)


def _packages() -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for p in ("lbforaging", "rware", "vmas", "magent2", "torch"):
        try:
            out.append(f"{p} {version(p)}")
        except PackageNotFoundError:
            out.append(f"{p} missing")
    return ", ".join(out)


def main(argv: list[str] | None = None) -> None:
    """Measure a part and write ``--out``.json and .md (keeping the rows not re-measured)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", choices=["alone", "train"], required=True)
    ap.add_argument("--tasks", nargs="+", choices=list(S.TASKS), default=list(S.TASKS))
    ap.add_argument("--seconds", type=float, default=1.0, help="stepping time per alone configuration and repeat")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    out = Path(args.out)
    load_start = os.getloadavg()[0]
    new = measure_alone(args.tasks, args.seconds, args.repeats) if args.part == "alone" else measure_train(args.tasks)
    old = json.loads(out.with_suffix(".json").read_text()) if out.with_suffix(".json").is_file() else {}
    rows = [r for r in old.get("rows", []) if r["part"] != args.part or r["task"] not in args.tasks] + new
    order = {t: i for i, t in enumerate(S.TASKS)}
    rows.sort(key=lambda r: (r["part"] != "alone", order[r["task"]], r.get("how", "") != "directly",
                             r.get("num_envs", 0), r.get("method", "")))
    meta = old.get("meta", {})
    command = " ".join(["python benchmarks/suite_speed.py", *(sys.argv[1:] if argv is None else argv)])
    if args.tasks != list(S.TASKS) and args.part in meta:
        command = f"{meta[args.part]['command']}`, then `{command}"
    meta[args.part] = {"command": command, "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                       "python": platform.python_version(), "packages": _packages(), "date": time.strftime("%Y-%m-%d"),
                       "load_start": load_start, "load_end": os.getloadavg()[0]}
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out.with_suffix(".json"), json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    text = markdown(rows, meta)
    atomic_write_text(out.with_suffix(".md"), text)
    print(text)


if __name__ == "__main__":
    main()
