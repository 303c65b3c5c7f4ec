"""Learning benchmark: a method (MADDPG or COMA) on mpe/simple_spread_v3 (N=3, 25-step
episodes, mpe2 defaults) with its shipped config, in each backend, over seeds.

Bar (issues 2 and 3): mean greedy evaluation return per agent (episode sum, averaged over
agents and the config's evaluation episodes) of at least -19 within 30 minutes on a 2-core machine.
For scale on this task: uniform-random actions -27.3, walk-to-own-landmark heuristic -15.5.

    python benchmarks/learning_spread.py --method maddpg --backends torch tensorflow mindspore --seeds 0 1 2
    python benchmarks/learning_spread.py --method coma

Each run is a separate process (one framework per process, 1 thread each); ``--jobs`` runs
that many at once. Results go to benchmarks/results/<method>_spread_learning.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
BAR = -19.0
ONE_RUN = """
import json, sys, xmarl
r = xmarl.run(sys.argv[4], sys.argv[1], sys.argv[5], seed=int(sys.argv[2]), out_dir=sys.argv[3],
              progress=False, overrides={"train.tensorboard": False})
print(json.dumps({"final": r.final_metrics, "curve": r.curve}))
"""


def one(method: str, backend: str, seed: int, out: str, env_name: str) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", ONE_RUN, backend, str(seed), out, method, env_name],
                       capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise RuntimeError(f"{backend} seed {seed} failed:\n{p.stderr[-3000:]}")
    res = json.loads(p.stdout.strip().splitlines()[-1])
    res.update(method=method, env=env_name, backend=backend, seed=seed, process_wall_s=time.perf_counter() - t0)
    first = next((s for s, r in res["curve"] if r >= BAR), None)
    res["first_step_at_bar"] = first
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", default="maddpg", choices=["maddpg", "coma"])
    ap.add_argument("--env", default="mpe/simple_spread_v3",
                    help="or mpe-fast/simple_spread_v3, its transition-identical batched twin (issue 7)")
    ap.add_argument("--backends", nargs="+", default=["torch", "tensorflow", "mindspore"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--out", default=None, help="default: results/<method>_spread_learning")
    ap.add_argument("--merge", action="store_true", help="keep other backends' runs already recorded in --out")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(args.jobs) as pool:
        jobs = [pool.submit(one, args.method, b, s, tmp, args.env) for b in args.backends for s in args.seeds]
        runs = [j.result() for j in jobs]
    meta = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "python": platform.python_version(),
            "jobs_in_parallel": args.jobs, "bar": BAR, "method": args.method, "env": args.env,
            "command": " ".join(["python benchmarks/learning_spread.py", *sys.argv[1:]])}
    out = Path(args.out) if args.out else HERE / "results" / f"{args.method}_spread_learning"
    write_report(runs, meta, out, args.merge)


def write_report(runs: list[dict], meta: dict, out: Path, merge: bool = False) -> None:
    """Write ``out``.json and ``out``.md; with ``merge``, runs of other backends already in
    ``out``.json are kept (to re-run one backend without re-running the others)."""
    if merge and out.with_suffix(".json").is_file():
        new = {r["backend"] for r in runs}
        recorded = json.loads(out.with_suffix(".json").read_text())
        runs = [r for r in recorded["runs"] if r["backend"] not in new] + runs
        first = recorded["meta"].get("command")
        if first:  # the kept runs came from an earlier command
            meta = {**meta, "command": f"{first}`, then `{meta['command']}"}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "runs": runs}, indent=1))
    lines = []
    if "command" in meta:
        lines += [f"Command: `{meta['command']}` ({meta['machine']}, Python {meta['python']}, "
                  f"{meta['jobs_in_parallel']} run(s) at a time, one framework thread per run). Final eval return: "
                  "greedy return per agent of the final policy over the config's evaluation episodes; "
                  f"bar {BAR} as the mean of the seeds within 30 minutes per run.", ""]
    lines += ["| env | backend | seed | steps | final eval return | first step at >= -19 | wall (s) | env-steps/s |",
             "|---|---|---|---|---|---|---|---|"]
    for r in runs:
        f = r["final"]
        lines.append(f"| {r.get('env', 'mpe/simple_spread_v3')} | {r['backend']} | {r['seed']} | {f['steps']:.0f} | "
                     f"{f['eval_return']:.2f} | "
                     f"{r['first_step_at_bar']} | {f['wall_time']:.0f} | {f['steps_per_sec']:.0f} |")
    for b in dict.fromkeys(r["backend"] for r in runs):
        rs = [r for r in runs if r["backend"] == b]
        mean = sum(r["final"]["eval_return"] for r in rs) / len(rs)
        worst_wall = max(r["final"]["wall_time"] for r in rs)
        lines.append(f"| | **{b}** | mean of {len(rs)} | | **{mean:.2f}** | | max {worst_wall:.0f} | |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
