"""CommNet learning benchmark: the lever-pulling game (Sukhbaatar et al. 2016, section 4.1) with
a pool of N = 500 agents, m = 5 drawn per game and 5 levers, trained by ``xmarl.run`` with the
shipped config (``configs/commnet/levers.yaml``) in each backend, over seeds; plus the same
network with communication switched off (``commnet.communicate: false``).

Bar (issue 4): mean greedy reward >= 0.97 in each backend within 15 minutes on the 2-core
machine. The paper: independent agents 0.59, CommNet 0.94 trained by RL. Without communication
an agent cannot know which other agents it plays with, so the ablation's policy should stay near
the 0.59 of independent random levers. Both the greedy reward (arg-max levers) and the reward of
the trained stochastic policy (levers sampled from it) are reported: without communication the
policy stays spread over the levers, and its arg-max can be worse than sampling it.

    python benchmarks/commnet_levers.py --backends torch tensorflow mindspore --seeds 0 1 2 --ablation-seeds 0

Each run is a separate process (one framework per process, one thread). The greedy reward is
measured during training every ``train.eval_interval`` steps on 1000 fresh games and, after
training, on 10000 fresh games (the number reported, with the sampled policy's reward on the same
games). The time to the bar is the run's wall
time at the first evaluation >= 0.97. Results go to benchmarks/results/commnet_levers.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BAR = 0.97
LIMIT_S = 15 * 60
ONE_RUN = r"""
import json, sys, time
import numpy as np
import xmarl
from xmarl.envs.levers import Levers, random_reward

backend, seed, out, steps = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
communicate = sys.argv[5] == "1"
t0 = time.perf_counter()
r = xmarl.run("commnet", backend, "levers", seed=seed, out_dir=out, progress=False,
              overrides={"train.steps": steps, "commnet.communicate": communicate, "train.tensorboard": False})
wall = time.perf_counter() - t0
games = Levers(10000, n_pool=500, n_agents=5)
obs = games.reset(seed=10_000 + seed)
greedy = float(games.reward(r.learner.policy.act(obs)[0]).mean())
sampled = float(games.reward(r.learner.policy.act(obs, explore=True, rng=np.random.default_rng(seed))[0]).mean())
print(json.dumps({"final": r.final_metrics, "curve": r.curve, "greedy_10k": greedy, "sampled_10k": sampled,
                  "run_wall_s": wall,
                  "random": random_reward(5)}))
"""


def one(backend: str, seed: int, communicate: bool, steps: int, out: str) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", ONE_RUN, backend, str(seed), out, str(steps), str(int(communicate))],
                       capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise RuntimeError(f"{backend} seed {seed} failed:\n{p.stderr[-3000:]}")
    res = json.loads(p.stdout.strip().splitlines()[-1])
    res.update(backend=backend, seed=seed, communicate=communicate, process_wall_s=time.perf_counter() - t0)
    total = res["final"]["steps"]
    first = next((s for s, v in res["curve"] if v >= BAR), None)
    res["first_step_at_bar"] = first
    # the loop's cost per step is constant (one act, one update per 512 games): wall time scales with steps
    res["time_at_bar_s"] = None if first is None else res["final"]["wall_time"] * first / total
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backends", nargs="+", default=["torch", "tensorflow", "mindspore"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--ablation-seeds", nargs="*", type=int, default=[0])
    ap.add_argument("--steps", type=int, default=None, help="env steps per run (default: the shipped config's)")
    ap.add_argument("--out", default=str(HERE / "results" / "commnet_levers"))
    ap.add_argument("--merge", action="store_true", help="keep runs of other backends already recorded in --out")
    args = ap.parse_args()

    from xmarl.config import load_config

    steps = args.steps or load_config("commnet", "levers").train.steps
    runs_dir = Path(os.environ.get("TMPDIR", "/tmp")) / "xmarl-commnet-levers"
    runs: list[dict] = []
    if args.merge and Path(args.out + ".json").is_file():
        old = json.loads(Path(args.out + ".json").read_text())["runs"]
        runs = [r for r in old if r["backend"] not in args.backends]
    jobs = [(b, s, True) for b in args.backends for s in args.seeds]
    jobs += [(b, s, False) for b in args.backends for s in args.ablation_seeds]
    for b, s, comm in jobs:
        r = one(b, s, comm, steps, str(runs_dir))
        runs.append(r)
        at = "-" if r["time_at_bar_s"] is None else f"{r['time_at_bar_s']:.0f}s"
        print(f"{b} seed {s} {'comm' if comm else 'no-comm'}: greedy {r['greedy_10k']:.4f}, sampled "
              f"{r['sampled_10k']:.4f}, bar at {at}, "
              f"run {r['run_wall_s']:.0f}s", flush=True)

    record = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
              "bar": BAR, "limit_s": LIMIT_S, "steps": steps, "runs": runs}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out + ".json").write_text(json.dumps(record, indent=1))
    lines = [
        "# CommNet on levers (N = 500, m = 5)",
        "",
        f"Command: `python benchmarks/commnet_levers.py --backends {' '.join(args.backends)} --seeds "
        f"{' '.join(map(str, args.seeds))} --ablation-seeds {' '.join(map(str, args.ablation_seeds))}` "
        f"({record['machine']}; one run at a time, one framework thread per run). Shipped config, {steps} env steps "
        f"({steps // 512} updates of 512 games). Greedy reward on 10000 fresh games after training; bar {BAR} within "
        f"{LIMIT_S // 60} minutes; independent random levers score {runs[0]['random']:.3f}.",
        "",
        "| backend | seed | communication | greedy reward | sampled-policy reward | first eval >= 0.97 (step) "
        "| time to bar (s) | run time (s) | bar met |",
        "|---|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in runs:
        ok = r["communicate"] and r["greedy_10k"] >= BAR and r["time_at_bar_s"] is not None \
            and r["time_at_bar_s"] <= LIMIT_S
        at = "-" if r["time_at_bar_s"] is None else f"{r['time_at_bar_s']:.0f}"
        first = "-" if r["first_step_at_bar"] is None else str(r["first_step_at_bar"])
        lines.append(f"| {r['backend']} | {r['seed']} | {'on' if r['communicate'] else 'off'} | {r['greedy_10k']:.4f} "
                     f"| {r['sampled_10k']:.4f} | {first} | {at} | {r['run_wall_s']:.0f} | "
                     f"{('yes' if ok else 'NO') if r['communicate'] else 'n/a (ablation)'} |")
    Path(args.out + ".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
