"""Env workers: training env-steps/s on mpe2's own simple_spread (the PettingZoo env, stepped in
the training process or in ``train.env_workers`` worker processes) for each method x backend,
with each method's shipped config and ``--steps`` env steps.

Each (method, backend) runs with 1 worker and with ``--workers K`` in turn, ``--repeats`` times,
each run in its own process with one framework thread, and the median env-steps/s of each is
reported with their ratio (the runs of one pair are minutes apart at most, so the machine's
drift affects both alike). A run with workers steps the same episodes as one without (tested in
tests/test_env_workers.py), so the ratio is a pure speed comparison.

    python benchmarks/env_workers_speed.py --workers 2 --steps 40000 --repeats 3

Results: benchmarks/results/env_workers_speed.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
METHODS = ["coma", "commnet", "maddpg"]
BACKENDS = ["torch", "tensorflow", "mindspore"]

ONE = r"""
import json, sys, tempfile
import xmarl
method, backend, steps, workers = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
with tempfile.TemporaryDirectory() as out:
    r = xmarl.run(method, backend, "mpe/simple_spread_v3", out_dir=out, progress=False,
                  overrides={"train.steps": steps, "train.env_workers": workers, "train.eval_interval": 10**9,
                             "train.eval_episodes": 1, "train.checkpoint_interval": 10**9,
                             "train.tensorboard": False, "env_impl": "reference"})  # mpe2, not its twin
m = r.final_metrics
print(json.dumps({"steps_per_sec": m["steps_per_sec"], "time_env": m["time_env"], "time_update": m["time_update"],
                  "wall": m["wall_time"]}))
"""


def one(method: str, backend: str, steps: int, workers: int) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    p = subprocess.run([sys.executable, "-c", ONE, method, backend, str(steps), str(workers)], capture_output=True,
                       text=True, env=env)
    if p.returncode != 0:
        raise SystemExit(f"{method} {backend} workers={workers} failed:\n{p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--methods", nargs="+", default=METHODS)
    ap.add_argument("--backends", nargs="+", default=BACKENDS)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--steps", type=int, default=40000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(HERE / "results" / "env_workers_speed"))
    args = ap.parse_args()
    rows = []
    for method in args.methods:
        for backend in args.backends:
            runs: dict[int, list[dict]] = {1: [], args.workers: []}
            for _ in range(args.repeats):
                for k in runs:
                    runs[k].append(one(method, backend, args.steps, k))
            med = {k: statistics.median(r["steps_per_sec"] for r in v) for k, v in runs.items()}
            row = {"method": method, "backend": backend, "in_process": med[1], "workers": med[args.workers],
                   "ratio": med[args.workers] / med[1], "runs": runs}
            rows.append(row)
            print(f"{method} {backend}: {med[1]:.0f} -> {med[args.workers]:.0f} env-steps/s ({row['ratio']:.2f}x)",
                  flush=True)
    command = " ".join(["python benchmarks/env_workers_speed.py", *sys.argv[1:]])
    meta = {"command": command, "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "python": platform.python_version(), "date": time.strftime("%Y-%m-%d"), "workers": args.workers,
            "steps": args.steps, "repeats": args.repeats}
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    lines = ["# Env workers: training env-steps/s on mpe2 simple_spread", "",
             f"Command: `{command}` ({meta['machine']}, Python {meta['python']}, {meta['date']}). Each method's "
             f"shipped config, {args.steps} env steps per run, one framework thread; the median of {args.repeats} "
             "runs each way, run in turn.", "",
             f"| method | backend | in the training process | {args.workers} env workers | ratio |",
             "|---|---|---:|---:|---:|"]
    lines += [f"| {r['method']} | {r['backend']} | {r['in_process']:.0f} | {r['workers']:.0f} | {r['ratio']:.2f}x |"
              for r in rows]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
