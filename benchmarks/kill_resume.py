"""Kill -9 and resume: short runs killed with SIGKILL at a random (seeded) moment, resumed with
``xmarl run --resume`` until they finish, each compared with one uninterrupted run.

    python benchmarks/kill_resume.py                          # 20 runs, maddpg on target, torch
    python benchmarks/kill_resume.py --runs 2 --out /tmp/kr   # a quick check
    python benchmarks/kill_resume.py --case coma/target --backends torch tensorflow mindspore

Every run is ``xmarl run`` in its own process, as a user starts it, with a checkpoint every
``--checkpoint-interval`` steps. The kill lands uniformly between the moments the reference
run's folder and its ``result.json`` appeared, so it hits the end of start-up, training,
evaluation and checkpoint writes alike. A run killed before its first checkpoint
cannot be resumed and is started again (as ``xmarl compare`` does); otherwise it is resumed
(``xmarl run --resume``, not killed again) until its ``result.json`` exists. It is exact when
every non-timing metrics row, the final metrics and every final weight equal the uninterrupted
run's; the run folder is clean when no ``.partial`` folder, temporary file, lock or unnamed
replay file is left. Results: ``results/kill_resume.{json,md}`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "GLOG_v": "3"}


def settings(args: argparse.Namespace) -> dict[str, Any]:
    """The ``--set`` overrides of every run."""
    return {"train.steps": args.steps, "train.checkpoint_interval": args.checkpoint_interval,
            "train.log_interval": args.checkpoint_interval, "train.eval_interval": args.steps // 4,
            "train.tensorboard": False, "train.threads": 1}


def command(method: str, env: str, backend: str, out: Path, overrides: dict[str, Any]) -> list[str]:
    argv = [sys.executable, "-m", "xmarl", "run", "-m", method, "-e", env, "-b", backend, "--out-dir", str(out),
            "--no-progress", "--set=name=run"]
    return argv + [f"--set={k}={json.dumps(v)}" for k, v in overrides.items()]


def record(run_dir: Path) -> dict[str, Any]:
    """What must not depend on the kill: non-timing metrics rows, final metrics, final weights."""
    from xmarl.training.checkpoint import load_weights
    from xmarl.training.trainer import is_timing

    rows = [{k: v for k, v in json.loads(x).items() if not is_timing(k)}
            for x in (run_dir / "metrics.jsonl").read_text().splitlines() if x]
    result = json.loads((run_dir / "result.json").read_text())
    final = {k: v for k, v in result["final_metrics"].items() if not is_timing(k)}
    return {"rows": rows, "final": final, "weights": load_weights(run_dir)}


def same(a: dict[str, Any], b: dict[str, Any]) -> tuple[bool, str]:
    if a["rows"] != b["rows"]:
        k = next((i for i, (x, y) in enumerate(zip(a["rows"], b["rows"])) if x != y), min(len(a["rows"]),
                                                                                         len(b["rows"])))
        return False, f"metrics row {k} differs"
    if a["final"] != b["final"]:
        return False, "final metrics differ"
    bad = [k for k in a["weights"] if not np.array_equal(a["weights"][k], b["weights"].get(k))]
    return (False, f"{len(bad)} weights differ") if bad else (True, "")


def leftovers(run_dir: Path) -> list[str]:
    """Whatever a clean run folder must not hold."""
    out = [p.name for p in run_dir.rglob("*") if p.name.endswith((".partial", ".tmp"))]
    if (run_dir / ".lock").exists():
        out.append(".lock")
    named = set()
    for c in (run_dir / "checkpoints").glob("step_*"):
        if (c / "replay.json").is_file():
            named.update(json.loads((c / "replay.json").read_text())["files"])
    if (run_dir / "replay").is_dir():
        out += [f"replay/{p.name}" for p in (run_dir / "replay").iterdir() if p.name not in named]
    return out


def checkpoint_step(run_dir: Path) -> int | None:
    from xmarl.errors import XmarlError
    from xmarl.training.checkpoint import latest_checkpoint

    try:
        return json.loads((latest_checkpoint(run_dir) / "trainer.json").read_text())["step"]
    except (XmarlError, OSError, ValueError):
        return None


def last_logged(run_dir: Path) -> int:
    """The last step in ``metrics.jsonl`` (a line cut short by the kill is skipped)."""
    last = 0
    if (run_dir / "metrics.jsonl").is_file():
        for line in (run_dir / "metrics.jsonl").read_text().splitlines():
            try:
                last = max(last, json.loads(line)["step"])
            except (ValueError, KeyError):
                continue
    return last


def reference(method: str, env: str, backend: str, overrides: dict[str, Any], out: Path) -> dict[str, Any]:
    """The uninterrupted run, and its timeline: when its folder and its result.json appeared."""
    t0 = time.monotonic()
    proc = subprocess.Popen(command(method, env, backend, out, overrides), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=ENV)
    appeared = done = None
    while proc.poll() is None:
        if appeared is None and (out / "run").is_dir():
            appeared = time.monotonic() - t0
        if done is None and (out / "run" / "result.json").is_file():
            done = time.monotonic() - t0
        time.sleep(0.005)
    seconds = time.monotonic() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"the uninterrupted {backend} run failed: {proc.stderr.read()[-2000:]}")
    return {"record": record(out / "run"), "appeared": appeared or 0.0, "done": done or seconds, "seconds": seconds}


def one(k: int, seed: int, method: str, env: str, backend: str, overrides: dict[str, Any], ref: dict[str, Any],
        work: Path) -> dict[str, Any]:
    """Run ``k``: start, SIGKILL at a seeded random moment, resume until finished, compare."""
    kill_at = random.Random(f"{seed}-{backend}-{k}").uniform(ref["appeared"], ref["done"])
    out = work / f"run{k:03d}"
    run_dir = out / "run"
    t0 = time.monotonic()
    proc = subprocess.Popen(command(method, env, backend, out, overrides), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=ENV)
    while proc.poll() is None and time.monotonic() - t0 < kill_at:
        time.sleep(0.005)
    finished_first = proc.poll() is not None
    if not finished_first:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_step = checkpoint_step(run_dir) if not finished_first else None
    logged = last_logged(run_dir)
    if finished_first:
        outcome = "finished before the kill"
    elif (run_dir / "result.json").is_file():
        outcome = "killed while exiting, already finished"
    else:
        outcome = "resumed" if killed_step is not None else "killed before its first checkpoint: started again"
    resumes = 0
    while not (run_dir / "result.json").is_file():
        if checkpoint_step(run_dir) is None:  # nothing to resume: start again, as xmarl compare does
            shutil.rmtree(out, ignore_errors=True)
            argv = command(method, env, backend, out, overrides)
        else:
            argv = [sys.executable, "-m", "xmarl", "run", "--resume", str(run_dir), "--no-progress"]
            resumes += 1
        p = subprocess.run(argv, capture_output=True, text=True, env=ENV)
        if p.returncode != 0:
            return {"run": k, "kill_at_s": kill_at, "outcome": outcome, "exact": False, "clean": False,
                    "notes": f"status {p.returncode}: {p.stderr.strip().splitlines()[-1:]}"}
    ok, notes = same(record(run_dir), ref["record"])
    left = leftovers(run_dir)
    return {"run": k, "kill_at_s": round(kill_at, 3), "outcome": outcome, "checkpoint_at_kill": killed_step,
            "logged_at_kill": logged, "resumes": resumes, "exact": ok, "clean": not left,
            "notes": "; ".join(filter(None, [notes, f"left: {left[:3]}" if left else ""])),
            "seconds": round(time.monotonic() - t0, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=20, help="killed runs per backend (default 20)")
    ap.add_argument("--case", default="maddpg/target", help="method/env (default maddpg/target)")
    ap.add_argument("--backends", nargs="+", default=["torch"])
    ap.add_argument("--steps", type=int, default=2400)
    ap.add_argument("--checkpoint-interval", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    ap.add_argument("--jobs", type=int, default=1, help="runs at once (default 1)")
    ap.add_argument("--out", default=str(HERE / "results" / "kill_resume"), help="path of the .json/.md (no suffix)")
    args = ap.parse_args()
    method, env = args.case.split("/", 1)
    overrides = settings(args)
    out = Path(args.out)
    t_start = time.monotonic()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="xmarl-kill-resume-") as tmp:
        for backend in args.backends:
            work = Path(tmp) / backend
            ref = reference(method, env, backend, overrides, work / "reference")
            print(f"{backend}: uninterrupted run {ref['seconds']:.1f}s (folder after {ref['appeared']:.1f}s, "
                  f"result.json after {ref['done']:.1f}s)", flush=True)
            with ThreadPoolExecutor(args.jobs) as pool:
                runs = list(pool.map(lambda k, b=backend, r=ref, w=work: one(
                    k, args.seed, method, env, b, overrides, r, w), range(args.runs)))
            for r in runs:
                print(f"  run {r['run']:>2}: kill at {r['kill_at_s']:.2f}s, {r['outcome']}, "
                      f"{'exact' if r['exact'] else 'NOT EXACT'}, {'clean' if r['clean'] else 'NOT CLEAN'} "
                      f"{r['notes']}", flush=True)
            results[backend] = {"reference_seconds": round(ref["seconds"], 2),
                                "reference_final": ref["record"]["final"], "runs": runs}
    argv = ["python", "benchmarks/kill_resume.py"] + sys.argv[1:]
    meta = {"command": " ".join(shlex.quote(a) for a in argv), "case": args.case, "overrides": overrides,
            "runs": args.runs, "seed": args.seed, "jobs": args.jobs, "seconds": round(time.monotonic() - t_start, 1),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores", "python": platform.python_version()}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "results": results}, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(meta, results))
    bad = sum(not r["exact"] or not r["clean"] for res in results.values() for r in res["runs"])
    print(f"wrote {out.with_suffix('.md')}; {'all exact and clean' if not bad else f'{bad} runs NOT exact or clean'}")
    sys.exit(1 if bad else 0)


def markdown(meta: dict[str, Any], results: dict[str, Any]) -> str:
    lines = [f"Command: `{meta['command']}` ({meta['seconds']:.0f}s on {meta['machine']}, Python {meta['python']})",
             "",
             f"{meta['case']}, `--set` {', '.join(f'{k}={v}' for k, v in meta['overrides'].items())}: each run is "
             "`xmarl run` killed with SIGKILL at a seeded random moment, then `xmarl run --resume` until it "
             "finishes (started again when killed before its first checkpoint). Exact: every non-timing metrics "
             "row, the final metrics and every final weight equal one uninterrupted run's. Clean: no `.partial` "
             "folder, temporary file, lock or unnamed replay file left.", ""]
    for backend, res in results.items():
        runs = res["runs"]
        exact = sum(r["exact"] for r in runs)
        clean = sum(r["clean"] for r in runs)
        resumed = sum(r["outcome"] == "resumed" for r in runs)
        lines += [f"## {backend}: {exact}/{len(runs)} exact, {clean}/{len(runs)} clean "
                  f"({resumed} resumed from a checkpoint; uninterrupted run {res['reference_seconds']:.1f}s, final "
                  f"greedy return {res['reference_final'].get('eval_return', float('nan')):.3f})", "",
                  "| run | kill at (s) | outcome | checkpoint at kill | last logged step | resumes | exact | clean "
                  "| notes |", "|---:|---:|---|---:|---:|---:|---|---|---|"]
        for r in runs:
            yes = {True: "yes", False: "NO"}
            lines.append(f"| {r['run']} | {r['kill_at_s']:.2f} | {r['outcome']} | {r.get('checkpoint_at_kill') or '-'} "
                         f"| {r.get('logged_at_kill', '-')} | {r.get('resumes', '-')} | {yes[r['exact']]} "
                         f"| {yes[r['clean']]} | {r['notes']} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
