"""The call users start with, ``xmarl.run(method=m, backend=b)`` with every default (simple_spread
with the method's shipped config), for each method x backend: how long it takes on this machine,
which env stepped, and what it learned, beside the config's learning record.

Each run is its own process with one framework thread, ``--jobs`` at a time (2 on this 2-core
machine, as the learning records ran), so a time here is what a user sees with one other run
beside it; alone a run is somewhat faster.

    python benchmarks/default_runs.py --jobs 2
    python benchmarks/default_runs.py --render --note "..."   # add a note to the record

Results: benchmarks/results/default_runs.{json,md}.
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from xmarl.files import atomic_write_text

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
METHODS = ["coma", "maddpg", "commnet", "bicnet"]
BACKENDS = ["torch", "tensorflow", "mindspore"]
MINUTES = 5.0  # what a first run should take here (#21)

ONE = r"""
import json, sys, tempfile, time
import xmarl
method, backend = sys.argv[1:3]
with tempfile.TemporaryDirectory() as out:
    t0 = time.perf_counter()
    r = xmarl.run(method=method, backend=backend, out_dir=out, progress=False)
    wall = time.perf_counter() - t0
m = r.final_metrics
print(json.dumps({"env": r.env, "run_env": r.run_env, "wall_s": wall, "steps": m["steps"],
                  "steps_per_sec": m["steps_per_sec"], "eval_return": m["eval_return"], "curve": r.curve}))
"""


def one(method: str, backend: str) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", ONE, method, backend], capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise SystemExit(f"{method} {backend} failed:\n{p.stderr[-2000:]}")
    rec = json.loads(p.stdout.strip().splitlines()[-1])
    rec.update(method=method, backend=backend, process_wall_s=time.perf_counter() - t0)
    print(f"{method} {backend}: {rec['process_wall_s'] / 60:.1f} min, {rec['steps']:.0f} steps on {rec['run_env']}, "
          f"greedy {rec['eval_return']:.2f}", flush=True)
    return rec


def learning_record(method: str, env: str, backend: str) -> dict | None:
    """Mean final greedy return and run time of the config's recorded seeds in ``backend``."""
    path = RESULTS / "learning" / method / f"{env}.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    runs = [r for r in data["runs"] if r["backend"] == backend]
    if not runs:
        return None
    return {"mean_return": statistics.mean(r["final"]["eval_return"] for r in runs), "seeds": len(runs),
            "run_env": data["meta"]["run_env"], "minutes": statistics.mean(r["process_wall_s"] for r in runs) / 60}


def render(data: dict) -> str:
    lines = ["# `xmarl.run(method=m, backend=b)` with defaults: time and result", "",
             f"Command: `{data['command']}` ({data['machine']}, {data['jobs']} runs at a time, one framework "
             f"thread each; {data['date']}). Each run is the call users start with: the method's shipped "
             "simple_spread config, seed 0, every default (TensorBoard on, checkpoints, evaluations).", "",
             f"Goal: within {MINUTES:.0f} minutes. Greedy return: per agent, the run's final evaluation "
             "(the config's evaluation episodes); record: the mean over the config's learning record's seeds.", "",
             "| method | backend | env stepped | env steps | minutes | within 5 min | env-steps/s | greedy return "
             "| record (seeds, env) | record minutes |",
             "|---|---|---|---:|---:|---|---:|---:|---|---:|"]
    for r in data["runs"]:
        rec = r["record"]
        rec_text = f"{rec['mean_return']:.2f} ({rec['seeds']}, {rec['run_env']})" if rec else "none"
        rec_minutes = f"{rec['minutes']:.1f}" if rec else "-"
        minutes = r["process_wall_s"] / 60
        lines.append(f"| {r['method']} | {r['backend']} | {r['run_env']} | {r['steps']:.0f} | {minutes:.1f} | "
                     f"{'yes' if minutes <= MINUTES else 'no'} | {r['steps_per_sec']:.0f} | {r['eval_return']:.2f} | "
                     f"{rec_text} | {rec_minutes} |")
    for note in data.get("notes", []):
        lines += ["", note]
    over = [r for r in data["runs"] if r["process_wall_s"] / 60 > MINUTES]
    lines += ["", f"{len(data['runs']) - len(over)} of {len(data['runs'])} runs finish within {MINUTES:.0f} minutes."]
    if over:
        lines.append("Over it: " + ", ".join(f"{r['method']} {r['backend']} ({r['process_wall_s'] / 60:.1f} min)"
                                             for r in over) + ".")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--methods", nargs="+", default=METHODS)
    ap.add_argument("--backends", nargs="+", default=BACKENDS)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--render", action="store_true", help="rewrite the .md from the recorded .json (no runs)")
    ap.add_argument("--note", action="append", default=[], help="a line of notes for the record (repeatable)")
    args = ap.parse_args()
    out = RESULTS / "default_runs"
    if args.render:
        data = json.loads(out.with_suffix(".json").read_text())
        data["notes"] = data.get("notes", []) + args.note
        atomic_write_text(out.with_suffix(".json"), json.dumps(data, indent=1))
        atomic_write_text(out.with_suffix(".md"), render(data))
        return
    pairs = [(m, b) for m in args.methods for b in args.backends]
    # the slowest first, so that two jobs end close together
    pairs.sort(key=lambda p: (p[1] != "mindspore", p[0] not in ("coma", "commnet")))
    with ThreadPoolExecutor(args.jobs) as pool:
        runs = list(pool.map(lambda p: one(*p), pairs))
    for r in runs:
        r["record"] = learning_record(r["method"], r["env"], r["backend"])
    order = {(m, b): k for k, (m, b) in enumerate((m, b) for m in args.methods for b in args.backends)}
    runs.sort(key=lambda r: order[(r["method"], r["backend"])])
    data = {"command": "python benchmarks/default_runs.py " + " ".join(sys.argv[1:]),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores", "jobs": args.jobs,
            "date": time.strftime("%Y-%m-%d"), "runs": runs}
    atomic_write_text(out.with_suffix(".json"), json.dumps(data, indent=1))
    atomic_write_text(out.with_suffix(".md"), render(data))
    print(render(data))


if __name__ == "__main__":
    main()
