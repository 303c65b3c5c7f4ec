"""Device checks, for a machine with an accelerator: each backend on the device it sees against
the same backend on the CPU.

1. **Parity**: every parity case of every method (:mod:`xmarl.compare.parity`: forward outputs,
   losses, gradients, weights and optimiser state after 3 updates) on the accelerator against
   the CPU, within the parity tolerances (``|x - x_cpu| <= 1e-5 + 1e-5 |x_cpu|``); the largest
   differences are recorded either way.
2. **Training throughput**: each method x backend trains its shipped simple_spread config on
   ``mpe-fast/simple_spread_v3`` for ``--steps`` env steps, on the CPU and on the accelerator
   (env-steps/s over the whole run, and the time in updates).
3. **CommNet at scale**: the time of one update of the shipped levers network on a batch of
   ``--games`` lever games of 500 and of 5,000 agents each (the median of ``--reps`` updates
   after one untimed), on the CPU and on the accelerator.

Every (part, backend, device) runs in its own process: a framework fixes its device for the
life of a process. ``--accelerator`` picks the device (default: each backend's first non-CPU
device; ``cpu`` runs the whole check CPU against CPU, which is how the script is tested on a
machine without one). Results: ``benchmarks/results/device_check.{json,md}``; where no backend
sees an accelerator and none is forced, the record says the check has not been run.

    python benchmarks/device_check.py                                  # on the accelerator machine
    python benchmarks/device_check.py --accelerator cpu --quick --out /tmp/dc   # the script's own test
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
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BACKENDS = ["torch", "tensorflow", "mindspore"]
METHODS = ["maddpg", "coma", "commnet"]

CHILD = r"""
import json, statistics, sys, time
import numpy as np
from xmarl import registry
from xmarl.core.device import select_device

part, backend, device, out = sys.argv[1:5]
args = json.loads(sys.argv[5])
registry.get("runtime", "configure", backend)(args.get("threads", 1))
name = select_device(backend, device)
result = {"device": name}
if part == "parity":
    from xmarl.compare import parity as P
    arrays = {}
    for method in P.parity_methods([backend]):
        for case in P.cases(method):
            for k, v in P.run_case(backend, method, case).items():
                arrays[f"{case.name}|{k}"] = np.asarray(v, np.float64)
    np.savez(out + ".npz", **arrays)
elif part == "train":
    import tempfile as tf_
    import xmarl
    with tf_.TemporaryDirectory() as runs:
        r = xmarl.run(args["method"], backend, "mpe-fast/simple_spread_v3", out_dir=runs, progress=False,
                      overrides={"train.steps": args["steps"], "train.eval_interval": args["steps"],
                                 "train.eval_episodes": 2, "train.tensorboard": False, "device": device,
                                 "train.checkpoint_interval": 10 ** 9})
    m = r.final_metrics
    result.update(steps_per_sec=m["steps_per_sec"], time_update=m["time_update"], wall=m["wall_time"],
                  updates=m["updates"], run_device=r.device)
elif part == "levers":
    from xmarl.config import load_config
    from xmarl.core.commnet import COMMNET as core
    from xmarl.envs.levers import Levers
    A, games, reps = args["agents"], args["games"], args["reps"]
    cfg = load_config("commnet", "levers", backend, overrides={"commnet.n_ids": max(1000, A)}).commnet
    env = Levers(games, n_pool=max(1000, A), n_agents=A, n_levers=5)
    obs = env.reset(seed=0)
    learner = registry.get("learner", "commnet", backend)(env.spec, cfg, core.init_weights(env.spec, cfg, 0))
    rng = np.random.default_rng(0)
    actions, _ = learner.policy.act(obs, explore=True, rng=rng)
    _, final, rew, _, _ = env.step(actions)
    ep = {"obs": np.stack([obs, final], 1), "actions": np.stack([actions, actions], 1),
          "avail": np.ones((games, 2, A, env.spec.act_dim), np.float32), "rew": rew[:, None],
          "term": np.ones((games, 1)), "mask": np.ones((games, 1), np.float32)}
    batch = core.prepare_batch(env.spec, cfg, ep, rng, 0)
    learner.update(batch)  # compile / trace, not timed
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        learner.update(batch)
        times.append(time.perf_counter() - t0)
    result.update(agents=A, games=games, update_s=statistics.median(times))
print(json.dumps(result))
"""


def child(part: str, backend: str, device: str, out: str, args: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run one part in a fresh process; its JSON line, or ``{"error": ...}``."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    try:
        p = subprocess.run([sys.executable, "-c", CHILD, part, backend, device, out, json.dumps(args)],
                           capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f}s"}
    if p.returncode != 0:
        return {"error": (p.stderr.strip().splitlines() or [f"exit {p.returncode}"])[-1][:300]}
    return json.loads(p.stdout.strip().splitlines()[-1])


def accelerator_of(backend: str, forced: str | None) -> str | None:
    """The device to check ``backend`` on: ``forced``, else its first accelerator (None: it sees none)."""
    if forced is not None:
        return forced
    p = subprocess.run([sys.executable, "-c", f"from xmarl import registry; print(','.join(registry.devices("
                                              f"{backend!r})))"], capture_output=True, text=True,
                       env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    visible = p.stdout.strip().split(",") if p.returncode == 0 else ["cpu"]
    return next((v for v in visible if v != "cpu"), None)


def parity_rows(backend: str, cpu_file: str, acc_file: str, acc: str) -> dict[str, Any]:
    """The accelerator's parity quantities against the CPU's: per case, the worst quantity."""
    import numpy as np

    from xmarl.compare.parity import ATOL, RTOL, compare_quantities

    with np.load(cpu_file) as a, np.load(acc_file) as b:
        cpu, other = {k: a[k] for k in a.files}, {k: b[k] for k in b.files}
    rows = compare_quantities({"cpu": cpu, "accelerator": other}, ATOL, RTOL)
    cases: dict[str, dict[str, Any]] = {}
    for row in rows:
        case, quantity = row["quantity"].split("|", 1)
        c = cases.setdefault(case, {"quantities": 0, "failed": 0, "max_abs": 0.0, "max_rel": 0.0, "worst": ""})
        c["quantities"] += 1
        c["failed"] += not row["ok"]
        if row["max_abs"] > c["max_abs"]:
            c["worst"] = quantity
        c["max_abs"] = max(c["max_abs"], row["max_abs"])
        c["max_rel"] = max(c["max_rel"], row["max_rel"])
    return {"backend": backend, "device": acc, "cases": cases, "ok": all(r["ok"] for r in rows) and bool(rows)}


def report(record: dict[str, Any]) -> str:
    lines = ["# Device checks: each backend on an accelerator against the CPU", "",
             f"Command: `{record['command']}`."]
    if not record.get("ran"):
        return "\n".join(lines + ["", f"**Not run yet**: {record['why']}. The script is tested on the CPU "
                                  "(`tests/test_device.py` runs it CPU against CPU); run it on a machine with an "
                                  "accelerator to fill this record.", ""])
    lines += [f"Machine: {record['machine']}; Python {record['python']}; {record['date']}.", "",
              "## Parity on the accelerator against the CPU", "",
              "Tolerance `|x - x_cpu| <= 1e-5 + 1e-5 |x_cpu|` for every quantity of every parity case.", "",
              "| backend | device | case | quantities | failed | max abs diff | max rel diff | worst quantity |",
              "|---|---|---|---:|---:|---:|---:|---|"]
    for p in record["parity"]:
        if "error" in p:
            lines.append(f"| {p['backend']} | {p.get('device', '-')} | - | - | - | - | - | error: {p['error']} |")
            continue
        for case, c in p["cases"].items():
            lines.append(f"| {p['backend']} | {p['device']} | {case} | {c['quantities']} | {c['failed']} | "
                         f"{c['max_abs']:.2e} | {c['max_rel']:.2e} | {c['worst'] or '-'} |")
    lines += ["", "## Training throughput (mpe-fast simple_spread, the shipped configs)", "",
              "| method | backend | device | env-steps/s | update s | wall s | vs CPU |",
              "|---|---|---|---:|---:|---:|---:|"]
    for t in record["train"]:
        if "error" in t:
            lines.append(f"| {t['method']} | {t['backend']} | {t['device']} | error: {t['error']} | | | |")
            continue
        base = next((u for u in record["train"] if u["method"] == t["method"] and u["backend"] == t["backend"]
                     and u["device"] == "cpu" and "error" not in u), None)
        ratio = f"{t['steps_per_sec'] / base['steps_per_sec']:.2f}x" if base else "-"
        lines.append(f"| {t['method']} | {t['backend']} | {t['device']} | {t['steps_per_sec']:.0f} | "
                     f"{t['time_update']:.1f} | {t['wall']:.1f} | {ratio} |")
    lines += ["", "## CommNet levers: one update of a batch of games", "",
              "| backend | device | agents per game | games | update s |", "|---|---|---:|---:|---:|"]
    for lv in record["levers"]:
        cell = f"error: {lv['error']}" if "error" in lv else f"{lv['update_s']:.4f}"
        lines.append(f"| {lv['backend']} | {lv['device']} | {lv['agents']} | {lv['games']} | {cell} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backends", nargs="+", default=BACKENDS)
    ap.add_argument("--accelerator", default=None, help="device to check (default: each backend's first accelerator)")
    ap.add_argument("--steps", type=int, default=20000, help="env steps of each training run")
    ap.add_argument("--agents", nargs="+", type=int, default=[500, 5000])
    ap.add_argument("--games", type=int, default=32)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="tiny sizes: the script's own test")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per process")
    ap.add_argument("--out", default=str(HERE / "results" / "device_check"))
    args = ap.parse_args()
    if args.quick:
        args.steps, args.agents, args.games, args.reps = 1200, [50], 4, 2
    from xmarl import registry

    backends = [b for b in args.backends if registry.backend_installed(b)]
    record: dict[str, Any] = {"command": " ".join(["python benchmarks/device_check.py", *sys.argv[1:]]),
                              "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                              "python": platform.python_version(),
                              "date": time.strftime("%Y-%m-%d"), "parity": [], "train": [], "levers": []}
    devices = {b: accelerator_of(b, args.accelerator) for b in backends}
    if not any(devices.values()):
        record.update(ran=False, why=f"no backend sees an accelerator on this machine ({record['machine']}; "
                                      f"backends {', '.join(backends)})")
    else:
        record["ran"] = True
        with tempfile.TemporaryDirectory() as tmp:
            for b in backends:
                acc = devices[b]
                if acc is None:
                    record["parity"].append({"backend": b, "error": "sees no accelerator"})
                    continue
                cpu = child("parity", b, "cpu", f"{tmp}/{b}-cpu", {}, args.timeout)
                other = child("parity", b, acc, f"{tmp}/{b}-acc", {}, args.timeout)
                bad = cpu.get("error") or other.get("error")
                record["parity"].append(
                    {"backend": b, "device": other.get("device", acc), "error": bad} if bad
                    else parity_rows(b, f"{tmp}/{b}-cpu.npz", f"{tmp}/{b}-acc.npz", other["device"]))
            for method in METHODS:
                for b in backends:
                    for dev in dict.fromkeys(["cpu", devices[b] or "cpu"]):
                        r = child("train", b, dev, "", {"method": method, "steps": args.steps}, args.timeout)
                        record["train"].append({"method": method, "backend": b, "device": r.get("device", dev), **r})
            for A in args.agents:
                for b in backends:
                    for dev in dict.fromkeys(["cpu", devices[b] or "cpu"]):
                        r = child("levers", b, dev, "", {"agents": A, "games": args.games, "reps": args.reps},
                                  args.timeout)
                        record["levers"].append({"backend": b, "agents": A, "games": args.games,
                                                 **r, "device": r.get("device", dev)})
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    out.with_suffix(".md").write_text(report(record))
    print(report(record))


if __name__ == "__main__":
    main()
