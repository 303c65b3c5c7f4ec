"""Long-run soak: resident memory and file growth of long training runs.

Each run trains in a child process (``xmarl run``) while this script samples the child's resident
memory (``/proc/<pid>/status``, VmRSS) every second and reads the step from its ``metrics.jsonl``;
it records the memory at every ``--every`` env steps, the size of ``metrics.jsonl`` and of the
TensorBoard folder against the number of logged rows, and the run folder's size (checkpoints and
replay) against the replay buffer's own size.

Checks (each recorded as yes/no):

- memory is flat once the replay buffer is full (MADDPG) or from the first update on (CommNet):
  the largest sample after that point (before the run's last step) within 5 % of the first;
- metrics.jsonl and TensorBoard grow linearly with logged rows: bytes per row of the last half
  within 10 % of bytes per row of the first half;
- the run folder stays within 1.2x the replay's own size plus the weights (MADDPG).

    python benchmarks/soak.py                                # MADDPG mpe-fast 2M steps, CommNet levers 5k updates
    python benchmarks/soak.py --scale 0.01 --out /tmp/soak   # a quick check of the script itself
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from xmarl.buffers.replay import row_bytes

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

#: name: (method, env, env steps, sample every, overrides, steps from which memory must be flat)
RUNS: dict[str, tuple[str, str, int, int, list[str], str]] = {
    "maddpg-spread": ("maddpg", "mpe-fast/simple_spread_v3", 2_000_000, 50_000,
                      ["train.log_interval=10000", "train.eval_interval=250000", "maddpg.buffer_size=1000000"],
                      "buffer_full"),
    # levers: one update per 512 one-step games, so 5000 updates are 2,560,000 env steps
    "commnet-levers": ("commnet", "levers", 5000 * 512, 51_200,
                       ["train.log_interval=25600", "train.eval_interval=512000"], "first_update"),
}


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def last_step(metrics: Path) -> int:
    try:
        lines = metrics.read_text().splitlines()
    except OSError:
        return 0
    for line in reversed(lines):
        try:
            return int(json.loads(line)["step"])
        except (ValueError, KeyError):
            continue
    return 0


def soak(name: str, backend: str, scale: float, out: Path) -> dict[str, Any]:
    method, env, steps, every, overrides, flat_from = RUNS[name]
    steps, every = max(int(steps * scale), 1), max(int(every * scale), 1)
    run_dir = out / f"{name}-{backend}"
    cmd = [sys.executable, "-m", "xmarl.cli", "run", "-m", method, "-b", backend, "-e", env, "--steps", str(steps),
           "--out-dir", str(out), "--no-progress", "--set", f"name={run_dir.name}", "--set", "train.tensorboard=true",
           *[a for o in overrides for a in ("--set", o if scale == 1 else _scaled(o, scale))]]
    t0 = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    samples: list[tuple[int, float, float]] = []  # (step, rss MB, seconds)
    peak = [0.0]

    def watch() -> None:
        next_at = every
        while child.poll() is None:
            mb = rss_mb(child.pid)
            if mb is not None:
                peak[0] = max(peak[0], mb)
                step = last_step(run_dir / "metrics.jsonl")
                if step >= next_at:
                    samples.append((step, mb, time.perf_counter() - t0))
                    next_at = (step // every + 1) * every
            time.sleep(1.0)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    _, err = child.communicate()
    thread.join()
    if child.returncode != 0:
        raise RuntimeError(f"{name} {backend} failed ({child.returncode}): {err[-2000:]}")
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line]
    cfg_replay = None
    if method == "maddpg":
        n_agents, obs_dim, act_dim = 3, 18, 5  # simple_spread N=3: what the replay stores per transition
        per_row = row_bytes(n_agents, obs_dim, act_dim)
        capacity = next(int(o.split("=")[1]) for o in overrides if o.startswith("maddpg.buffer_size="))
        cfg_replay = per_row * min(max(int(capacity * scale), 1), steps)
    start = _flat_start(flat_from, rows, steps)
    # the sample at the last step can fall after training, while the process frees its memory: left out
    flat = [s for s in samples if start <= s[0] < steps]
    growth = (max(s[1] for s in flat) / flat[0][1] - 1) if len(flat) >= 2 else None
    return {"name": name, "backend": backend, "method": method, "env": env, "steps": steps, "every": every,
            "command": " ".join(cmd[1:]).replace(str(out), "<out>"), "samples": samples, "peak_rss_mb": peak[0],
            "flat_from_step": start, "rss_growth_after": growth,
            "metrics_bytes_per_row": _per_row(run_dir / "metrics.jsonl", rows),
            "tensorboard_bytes": folder_bytes(run_dir / "tensorboard"), "logged_rows": len(rows),
            "run_folder_bytes": folder_bytes(run_dir), "replay_bytes": cfg_replay,
            "wall_s": time.perf_counter() - t0}


def _scaled(override: str, scale: float) -> str:
    key, _, val = override.partition("=")
    if key.endswith(("_interval", "buffer_size")):
        return f"{key}={max(int(int(val) * scale), 1)}"
    return override


def _flat_start(flat_from: str, rows: list[dict[str, Any]], steps: int) -> int:
    if flat_from == "buffer_full":
        return min(1_000_000, steps) if steps >= 1_000_000 else steps // 2
    first = next((r["step"] for r in rows if "updates" in r and r["updates"] > 0), 0)
    return int(first)


def _per_row(path: Path, rows: list[dict[str, Any]]) -> tuple[float, float]:
    """Bytes per logged row in the first and the second half of metrics.jsonl."""
    lines = path.read_text().splitlines(keepends=True)
    half = len(lines) // 2 or 1
    first = sum(len(x.encode()) for x in lines[:half]) / half
    second = sum(len(x.encode()) for x in lines[half:]) / max(len(lines) - half, 1)
    return first, second


def markdown(results: list[dict[str, Any]], command: str) -> str:
    lines = ["# Soak: memory and file growth of long runs", "",
             f"Command: `{command}` ({platform.machine()}, {os.cpu_count()} cores, Python "
             f"{platform.python_version()}, {time.strftime('%Y-%m-%d')}). Resident memory (VmRSS) of the training "
             "process every sampling interval; flat = the largest sample once the replay is full (MADDPG) or updates "
             "run (CommNet), before the run's last step, within 5 % of the first such sample.", "",
             "| run | backend | env steps | peak RSS (MB) | RSS growth once full | flat | metrics bytes/row "
             "(1st half, 2nd half) | linear | run folder / replay | wall (s) |",
             "|---|---|---:|---:|---:|---|---|---|---:|---:|"]
    for r in results:
        g = r["rss_growth_after"]
        a, b = r["metrics_bytes_per_row"]
        ratio = r["run_folder_bytes"] / r["replay_bytes"] if r["replay_bytes"] else None
        lines.append(f"| {r['name']} | {r['backend']} | {r['steps']} | {r['peak_rss_mb']:.0f} | "
                     f"{'-' if g is None else f'{100 * g:+.1f} %'} | {'yes' if g is not None and g < 0.05 else 'NO'} | "
                     f"{a:.0f}, {b:.0f} | {'yes' if abs(b / a - 1) < 0.1 else 'NO'} | "
                     f"{'-' if ratio is None else f'{ratio:.2f}'} | {r['wall_s']:.0f} |")
    lines += ["", "Memory per sample (step: MB):", ""]
    for r in results:
        pts = ", ".join(f"{s}: {mb:.0f}" for s, mb, _ in r["samples"])
        lines.append(f"- {r['name']} {r['backend']}: {pts}")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    ap.add_argument("--backends", nargs="+", default=["torch"])
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of each run's steps (a quick check: 0.01)")
    ap.add_argument("--out", default=None, help="record path without suffix (default: benchmarks/results/soak)")
    args = ap.parse_args()
    command = " ".join(["python benchmarks/soak.py", *sys.argv[1:]])
    with tempfile.TemporaryDirectory() as tmp:
        results = [soak(n, b, args.scale, Path(tmp)) for n in args.runs for b in args.backends]
    out = Path(args.out) if args.out else RESULTS / "soak"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"command": command, "results": results}, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(results, command))
    print(markdown(results, command))


if __name__ == "__main__":
    main()
