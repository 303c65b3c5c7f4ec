"""Behaviour freeze: short training runs of every method x backend whose metrics and final
weights are recorded, so that a change meant to move code (not behaviour) can prove it did not
change a number.

    python benchmarks/behaviour.py record      # before the change: writes results/behaviour.json
    python benchmarks/behaviour.py check       # after it: re-runs, compares, writes results/behaviour.md

Each case is the method's shipped config (seed 0) cut to a few dozen updates. A run's record is
every non-timing entry of its ``metrics.jsonl``, the SHA-256 of each final weight and optimiser
array (bitwise equality) and, kept outside the repository with ``--arrays DIR``, the arrays
themselves, so that a mismatch can be measured. Every run is its own process, one framework
thread.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RECORD = HERE / "results" / "behaviour"
BACKENDS = ["torch", "tensorflow", "mindspore"]

#: name -> (method, env, overrides): each shipped config, seed 0, a few dozen updates
CASES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "maddpg-spread": ("maddpg", "mpe-fast/simple_spread_v3", {"train.steps": 40000}),
    "coma-spread": ("coma", "mpe-fast/simple_spread_v3", {"train.steps": 20000}),
    "coma-recurrent-spread": ("coma", "mpe-fast/simple_spread_v3", {"train.steps": 20000, "coma.recurrent": True}),
    "commnet-spread": ("commnet", "mpe-fast/simple_spread_v3", {"train.steps": 20000}),
    "commnet-levers": ("commnet", "levers", {"train.steps": 20480}),
}
SHORT = {"train.eval_interval": 10000, "train.eval_episodes": 10, "train.log_interval": 5000,
         "train.checkpoint_interval": 10**9, "train.tensorboard": False}

ONE_RUN = r"""
import json, sys, tempfile
import numpy as np
import xmarl
from xmarl.training.trainer import is_timing

method, backend, env, overrides, arrays = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), sys.argv[5]
with tempfile.TemporaryDirectory() as out:
    r = xmarl.run(method, backend, env, seed=0, out_dir=out, progress=False, overrides=overrides)
    rows = [{k: v for k, v in json.loads(line).items() if not is_timing(k)}
            for line in r.metrics_path.read_text().splitlines() if line]
state = {**{f"weights/{k}": v for k, v in r.learner.get_weights().items()},
         **{f"optimizer/{k}": np.asarray(v) for k, v in r.learner.get_optimizer_state().items()}}
if arrays != "-":
    np.savez(arrays, **state)
import hashlib
print(json.dumps({"metrics": rows, "hashes": {k: hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest()
                                             for k, v in sorted(state.items())}}))
"""


def run(case: str, backend: str, arrays: Path | None) -> dict[str, Any]:
    method, env, over = CASES[case]
    overrides = {**SHORT, **over}
    p = subprocess.run([sys.executable, "-c", ONE_RUN, method, backend, env, json.dumps(overrides),
                        str(arrays) if arrays else "-"],
                       capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    if p.returncode != 0:
        raise RuntimeError(f"{case} {backend} failed:\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def compare(before: dict[str, Any], after: dict[str, Any], arrays: Path | None) -> tuple[bool, str]:
    """(equal, what differs) between two runs' records."""
    notes = []
    # metrics added since the record (new evaluation entries) are not a change of behaviour: compare the
    # entries the record has, and the number of rows
    known = {k for row in before["metrics"] for k in row}
    rows = [{k: v for k, v in row.items() if k in known} for row in after["metrics"]]
    if len(rows) != len(before["metrics"]):
        notes.append(f"{len(rows)} metrics rows, {len(before['metrics'])} recorded")
    elif before["metrics"] != rows:
        n = sum(a != b for a, b in zip(before["metrics"], rows))
        notes.append(f"{n} metrics rows differ")
    diff = sorted(k for k in set(before["hashes"]) | set(after["hashes"])
                  if before["hashes"].get(k) != after["hashes"].get(k))
    if diff:
        notes.append(f"{len(diff)} arrays differ (e.g. {diff[0]})")
        if arrays is not None and arrays.is_file():
            import numpy as np

            old = np.load(arrays)
            new = np.load(str(arrays) + ".after.npz")
            worst = max(float(np.abs(old[k].astype(np.float64) - new[k]).max()) for k in diff if k in old and k in new)
            notes.append(f"max abs diff {worst:.3g}")
    return not notes, "; ".join(notes)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["record", "check"])
    ap.add_argument("--cases", nargs="+", default=list(CASES))
    ap.add_argument("--backends", nargs="+", default=BACKENDS)
    ap.add_argument("--arrays", default=None, help="folder for the arrays (outside the repository)")
    args = ap.parse_args()
    arrays = Path(args.arrays) if args.arrays else None
    if arrays:
        arrays.mkdir(parents=True, exist_ok=True)
    path = RECORD.with_suffix(".json")
    if args.mode == "record":
        runs = {}
        for case in args.cases:
            for b in args.backends:
                runs[f"{case}/{b}"] = run(case, b, arrays / f"{case}-{b}.npz" if arrays else None)
                print(f"recorded {case}/{b}: {len(runs[f'{case}/{b}']['metrics'])} metrics rows", flush=True)
        meta = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "python": platform.python_version(),
                "cases": {k: [m, e, {**SHORT, **o}] for k, (m, e, o) in CASES.items()}}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"meta": meta, "runs": runs}, indent=1, sort_keys=True) + "\n")
        return
    recorded = json.loads(path.read_text())["runs"]
    rows = ["| case | backend | metrics rows | arrays | identical | notes |", "|---|---|---:|---:|---|---|"]
    ok_all = True
    for case in args.cases:
        for b in args.backends:
            key = f"{case}/{b}"
            a_path = arrays / f"{case}-{b}.npz" if arrays else None
            after = run(case, b, Path(str(a_path) + ".after.npz") if a_path else None)
            ok, notes = compare(recorded[key], after, a_path)
            ok_all &= ok
            rows.append(f"| {case} | {b} | {len(after['metrics'])} | {len(after['hashes'])} | "
                        f"{'yes' if ok else 'NO'} | {notes} |")
            print(rows[-1], flush=True)
    text = ("Command: `python benchmarks/behaviour.py check` against `results/behaviour.json` (recorded before the "
            "change). Identical: every non-timing metrics entry equal, and every final weight and optimiser array "
            "bitwise equal (SHA-256).\n\n" + "\n".join(rows) + "\n")
    RECORD.with_suffix(".md").write_text(text)
    print("all identical" if ok_all else "DIFFERENCES")
    sys.exit(0 if ok_all else 1)


if __name__ == "__main__":
    main()
