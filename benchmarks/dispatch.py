"""What one compiled call and one kernel cost in each backend, with no learning around them.

Times a chain of ``k`` ops called as each backend's policies act: numpy in, one compiled call
(torch: eager under ``no_grad``; TensorFlow: a ``tf.function``'s concrete function; MindSpore:
``jit`` in ``GRAPH_MODE``), numpy out. Two chains, each at k = 1 and k = 17: ``tanh`` on a
``[48, 64]`` tensor (an element-wise kernel that no graph optimiser folds away, as it may a
repeated ``relu``) and ``x @ w`` with ``w [64, 64]`` (a matmul of the size of an act step's layer:
16 envs x 3 agents, 64 hidden units). From them: the fixed cost of a call (the 1-tanh chain minus
one tanh), and the cost of each further element-wise kernel and of each further matmul. These
floors explain the throughput table: on mpe-fast, where the env costs little, a small act step is
almost all fixed cost and kernels. Each backend runs in its own process with 1 framework thread.

    python benchmarks/dispatch.py

Results: benchmarks/results/dispatch.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent


def _chain(k: int, op: Callable, *args: Any) -> Callable:
    """``a -> op(..op(a, *args).., *args)``, ``k`` times."""
    def f(a):
        for _ in range(k):
            a = op(a, *args)
        return a
    return f


def _calls(backend: str, x: np.ndarray, w: np.ndarray) -> dict[str, Callable[[], np.ndarray]]:
    """The four chains as each backend runs an act step: numpy in, one compiled call, numpy out."""
    chains = {}
    if backend == "torch":
        import torch
        torch.set_num_threads(1)

        def call(f: Callable) -> Callable[[], np.ndarray]:
            def run() -> np.ndarray:
                with torch.no_grad():
                    return f(torch.from_numpy(x)).numpy()
            return run
        tanh, matmul, wt = torch.tanh, torch.matmul, torch.from_numpy(w)
    elif backend == "tensorflow":
        import tensorflow as tf
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)

        def call(f: Callable) -> Callable[[], np.ndarray]:
            g = tf.function(f).get_concrete_function(tf.TensorSpec(x.shape, tf.float32))  # as xmarl's policies
            return lambda: g(tf.convert_to_tensor(x)).numpy()
        tanh, matmul, wt = tf.tanh, tf.matmul, tf.constant(w)
    elif backend == "mindspore":
        import mindspore as ms
        from mindspore import Tensor, ops
        ms.set_context(mode=ms.GRAPH_MODE)
        ms.set_device("CPU")
        ms.device_context.cpu.op_tuning.threads_num(1)

        def call(f: Callable) -> Callable[[], np.ndarray]:
            g = ms.jit(f)
            return lambda: g(Tensor.from_numpy(x)).asnumpy()
        tanh, matmul, wt = ops.tanh, ops.matmul, Tensor(w)
    else:
        raise SystemExit(f"unknown backend {backend!r}; choose torch, tensorflow or mindspore")
    for k in (1, 17):
        chains[f"tanh_{k}"] = call(_chain(k, tanh))
        chains[f"matmul_{k}"] = call(_chain(k, matmul, wt))
    return chains


def worker(backend: str, n_calls: int) -> dict[str, float]:
    """Microseconds per call of each chain in this process (median of 5 rounds of ``n_calls``)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((48, 64)).astype(np.float32)
    w = (rng.standard_normal((64, 64)) / 8).astype(np.float32)  # keeps 17 products finite
    us = {}
    for key, run in _calls(backend, x, w).items():
        for _ in range(100):  # compile and warm up
            run()
        rounds = []
        for _ in range(5):
            t = time.perf_counter()
            for _ in range(n_calls):
                run()
            rounds.append((time.perf_counter() - t) / n_calls * 1e6)
        us[key] = float(np.median(rounds))
    return us


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backends", nargs="+", default=["torch", "tensorflow", "mindspore"])
    ap.add_argument("--calls", type=int, default=2000, help="calls per timing round (5 rounds, median)")
    ap.add_argument("--out", default=str(HERE / "results" / "dispatch"))
    ap.add_argument("--worker", help=argparse.SUPPRESS)  # one backend's timings, in a process of its own
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.calls)))
        return
    rows = []
    for b in args.backends:
        p = subprocess.run([sys.executable, __file__, "--worker", b, "--calls", str(args.calls)],
                           capture_output=True, text=True,
                           env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "GLOG_v": "3"})
        if p.returncode != 0:
            raise SystemExit(f"{b} failed:\n{p.stderr[-3000:]}")
        us = json.loads(p.stdout.strip().splitlines()[-1])
        rows.append({"backend": b, **us, **floors(us)})
        print(b, {k: round(v, 1) for k, v in rows[-1].items() if k != "backend"}, flush=True)
    meta = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "python": platform.python_version(),
            "command": " ".join(["python benchmarks/dispatch.py", *sys.argv[1:]])}
    print(write_report(rows, meta, Path(args.out)))


def floors(us: dict[str, float]) -> dict[str, float]:
    """Per-kernel costs (the slope over 16 more kernels) and the fixed cost of a call."""
    per_ew = (us["tanh_17"] - us["tanh_1"]) / 16
    per_mm = (us["matmul_17"] - us["matmul_1"]) / 16
    return {"per_elementwise": per_ew, "per_matmul": per_mm, "fixed": us["tanh_1"] - per_ew}


def write_report(rows: list[dict], meta: dict, out: Path) -> str:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    md = [f"Command: `{meta['command']}`; machine: {meta['machine']}, Python {meta['python']}, CPU only, "
          "1 framework thread, one backend at a time. Microseconds per call, numpy in and out, median of 5 rounds.",
          "",
          "| backend | 1 tanh | 17 tanh | 1 matmul | 17 matmul | fixed cost of a call | each element-wise kernel | "
          "each matmul [48,64]x[64,64] |",
          "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        md.append(f"| {r['backend']} | {r['tanh_1']:.1f} | {r['tanh_17']:.1f} | {r['matmul_1']:.1f} | "
                  f"{r['matmul_17']:.1f} | {r['fixed']:.1f} | {r['per_elementwise']:.1f} | {r['per_matmul']:.1f} |")
    out.with_suffix(".md").write_text("\n".join(md) + "\n")
    return "\n".join(md)


if __name__ == "__main__":
    main()
