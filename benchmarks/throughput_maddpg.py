"""Throughput benchmark: MADDPG training env-steps/s per backend on mpe/simple_spread_v3 with
the shipped config (8 envs, one update of batch 1024 per 100 env steps), plus the time of one
update (batch 1024) and of one act step (8 envs) in each backend.

    python benchmarks/throughput_maddpg.py --steps 100000

Each backend runs in its own process with 1 framework thread. Results go to
benchmarks/results/maddpg_throughput.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ONE = """
import json, sys, tempfile, time
import numpy as np
import xmarl
from xmarl import registry
from xmarl.core import maddpg as core
from xmarl.envs import make_env

backend, steps = sys.argv[1], int(sys.argv[2])
with tempfile.TemporaryDirectory() as tmp:
    r = xmarl.run("maddpg", backend, "mpe/simple_spread_v3", out_dir=tmp, progress=False,
                  overrides={"train.steps": steps, "train.eval_interval": 10**9, "train.tensorboard": False})
cfg = xmarl.load_config("maddpg", "mpe/simple_spread_v3", backend)
spec = make_env("mpe/simple_spread_v3", 1, **cfg.env_kwargs).spec
learner = registry.get("learner", "maddpg", backend)(spec, cfg.maddpg, core.init_weights(spec, cfg.maddpg, 0))
rng = np.random.default_rng(0)
A, B = spec.n_agents, cfg.maddpg.batch_size
batch = {"obs": rng.standard_normal((A, B, spec.obs_dim)).astype(np.float32),
         "act": np.eye(spec.act_dim, dtype=np.float32)[rng.integers(0, spec.act_dim, (A, B))],
         "rew": rng.standard_normal((A, B)).astype(np.float32),
         "next_obs": rng.standard_normal((A, B, spec.obs_dim)).astype(np.float32),
         "done": np.zeros((A, B), np.float32)}
batch = core.prepare_batch(spec, batch, rng)
obs = rng.standard_normal((8, A, spec.obs_dim)).astype(np.float32)
for _ in range(5):
    learner.update(batch); learner.policy.act(obs, explore=True, rng=rng)
t = time.perf_counter(); n = 50
for _ in range(n):
    learner.update(batch)
upd = (time.perf_counter() - t) / n
t = time.perf_counter(); n = 500
for _ in range(n):
    learner.policy.act(obs, explore=True, rng=rng)
act = (time.perf_counter() - t) / n
print(json.dumps({"steps": r.final_metrics["steps"], "wall_s": r.final_metrics["wall_time"],
                  "env_steps_per_s": r.final_metrics["steps_per_sec"], "update_ms": upd * 1e3, "act_ms": act * 1e3}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backends", nargs="+", default=["torch", "tensorflow", "mindspore"])
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--out", default=str(HERE / "results" / "maddpg_throughput"))
    args = ap.parse_args()
    rows = []
    for b in args.backends:
        p = subprocess.run([sys.executable, "-c", ONE, b, str(args.steps)], capture_output=True, text=True,
                           env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        if p.returncode != 0:
            raise SystemExit(f"{b} failed:\n{p.stderr[-3000:]}")
        rows.append({"backend": b, **json.loads(p.stdout.strip().splitlines()[-1])})
        print(rows[-1], flush=True)
    meta = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "python": platform.python_version(),
            "command": "python benchmarks/throughput_maddpg.py " + " ".join(sys.argv[1:])}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    md = ["| backend | env steps | training env-steps/s | update (batch 1024) ms | act (8 envs) ms |",
          "|---|---|---|---|---|"]
    md += [f"| {r['backend']} | {r['steps']:.0f} | {r['env_steps_per_s']:.0f} | {r['update_ms']:.2f} | "
           f"{r['act_ms']:.3f} |" for r in rows]
    out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
