"""Training throughput per method x backend x env, with where the time goes.

For each cell, trains with the shipped config for ``--steps`` env steps (no evaluation until the
end) and reports steady-state env-steps/s (over the last 70% of the steps: graph compilation,
tracing and warm-up fall in the first 30%, reported apart as "warm-up s") and the share of that
window's wall time spent in the env, in acting, in updates, and in glue (everything else: buffer,
batching, logging, the final checkpoint and evaluation).
Each cell runs in its own process with 1 framework thread, one cell at a time; with ``--repeats R``
every cell runs R times, round-robin, and its run of median env-steps/s is reported (the machine's
speed drifts over minutes, and the bars compare cells run minutes apart).

    python benchmarks/throughput.py --steps 100000 --repeats 3

Also times one update (MADDPG: a replay batch of ``batch_size`` transitions; COMA and CommNet: one
batch of ``batch_episodes`` 25-step episodes) and one act step (8 envs) per backend.

Bars (issue 7), checked in the summary: mpe-fast trains >= 3x faster than mpe2 for every
method x backend, glue <= 30% of wall time in every row, and MindSpore within 2x of torch's
env-steps/s for every method (on each env).
Results: benchmarks/results/throughput.{json,md}.
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
WARM = 0.3  # share of the steps left out of the steady-state window
ONE = f"WARM = {WARM}\n" + """
import json, sys, tempfile, time
import numpy as np
import xmarl
from xmarl import registry
from xmarl.envs import make_env
from xmarl.compare.reference.data import synthetic_episodes

method, backend, env_name, steps = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
with tempfile.TemporaryDirectory() as tmp:
    r = xmarl.run(method, backend, env_name, out_dir=tmp, progress=False,
                  overrides={"train.steps": steps, "train.eval_interval": 10**9, "train.tensorboard": False,
                             "train.checkpoint_interval": 10**9, "train.log_interval": steps // 10,
                             "env_impl": "reference"})  # the env named, not its twin
    rows = [json.loads(x) for x in r.metrics_path.read_text().splitlines()]
out = dict(r.final_metrics)
# steady state: from the first log row past WARM of the steps (graph compilation, tracing and the
# first updates fall before it) to the end; the window's times are the final totals minus that row's
out["whole_run_steps_per_sec"] = out["steps_per_sec"]
mark = next(x for x in rows if "wall_time" in x and x["step"] >= WARM * steps)
out["warmup_steps"], out["warmup_s"] = mark["step"], mark["wall_time"]
for k in [k for k in out if k.startswith("time_") and k != "time_glue"] + ["wall_time"]:
    out[k] -= mark[k]
out["time_glue"] = out["wall_time"] - sum(out[k] for k in out if k.startswith("time_") and k != "time_glue")
out["steps_per_sec"] = (out["steps"] - mark["step"]) / out["wall_time"]
cfg = xmarl.load_config(method, env_name, backend)
mcfg = getattr(cfg, method)
out["num_envs"] = cfg.train.num_envs
spec = make_env(env_name, 1, **cfg.env_kwargs).spec
core = registry.get("method", method).core
learner = registry.get("learner", method, backend)(spec, mcfg, core.init_weights(spec, mcfg, 0))
rng = np.random.default_rng(0)
A = spec.n_agents
if method == "maddpg":  # one replay batch of batch_size transitions
    B = mcfg.batch_size
    batch = {"obs": rng.standard_normal((A, B, spec.obs_dim)).astype(np.float32),
             "act": np.eye(spec.act_dim, dtype=np.float32)[rng.integers(0, spec.act_dim, (A, B))],
             "rew": rng.standard_normal((A, B)).astype(np.float32),
             "next_obs": rng.standard_normal((A, B, spec.obs_dim)).astype(np.float32),
             "done": np.zeros((A, B), np.float32)}
    batch = core.prepare_batch(spec, mcfg, batch, rng, 0)
    out["update_batch"] = f"{B} transitions"
else:  # on-policy: one batch of batch_episodes full 25-step episodes
    episodes = synthetic_episodes(spec, mcfg.batch_episodes, 25, rng)
    episodes["mask"][:] = 1.0
    batch = core.prepare_batch(spec, mcfg, episodes, rng, 0)
    out["update_batch"] = f"{mcfg.batch_episodes} x 25-step episodes"
obs = rng.standard_normal((8, A, spec.obs_dim)).astype(np.float32)
for _ in range(5):
    learner.update(batch); learner.policy.act(obs, explore=True, rng=rng)
t = time.perf_counter()
for _ in range(50):
    learner.update(batch)
out["update_ms"] = (time.perf_counter() - t) / 50 * 1e3
t = time.perf_counter()
for _ in range(500):
    learner.policy.act(obs, explore=True, rng=rng)
out["act_ms"] = (time.perf_counter() - t) / 500 * 1e3
print(json.dumps(out))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--methods", nargs="+", default=["maddpg", "coma", "commnet"])
    ap.add_argument("--backends", nargs="+", default=["torch", "tensorflow", "mindspore"])
    ap.add_argument("--envs", nargs="+", default=["mpe/simple_spread_v3", "mpe-fast/simple_spread_v3"])
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--out", default=str(HERE / "results" / "throughput"))
    ap.add_argument("--merge", action="store_true",
                    help="re-run only the given cells and keep the other rows already recorded in --out")
    ap.add_argument("--repeats", type=int, default=1,
                    help="run every cell this many times, round-robin (so a slow spell of the machine hits every "
                         "cell alike), and keep each cell's run of median env-steps/s")
    args = ap.parse_args()
    cells = [(m, b, e) for m in args.methods for b in args.backends for e in args.envs]
    rows, kept, meta = [], [], None
    if args.merge:
        recorded = json.loads(Path(args.out).with_suffix(".json").read_text())
        meta = recorded["meta"]
        kept = [r for r in recorded["rows"] if (r["method"], r["backend"], r["env"]) not in set(cells)]
    runs: dict[tuple[str, str, str], list[dict]] = {c: [] for c in cells}
    for _ in range(args.repeats):
        for method, b, env in cells:
            p = subprocess.run([sys.executable, "-c", ONE, method, b, env, str(args.steps)], capture_output=True,
                               text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
            if p.returncode != 0:
                raise SystemExit(f"{method}/{b}/{env} failed:\n{p.stderr[-3000:]}")
            runs[method, b, env].append(json.loads(p.stdout.strip().splitlines()[-1]))
            print(method, b, env, f"{runs[method, b, env][-1]['steps_per_sec']:.0f} env-steps/s", flush=True)
    for (method, b, env), rs in runs.items():
        median = sorted(rs, key=lambda r: r["steps_per_sec"])[(len(rs) - 1) // 2]
        rows.append({"method": method, "backend": b, "env": env, **median,
                     "steps_per_sec_runs": [r["steps_per_sec"] for r in rs]})
    command = " ".join(["python benchmarks/throughput.py", *sys.argv[1:]])
    if meta is None:
        meta = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "python": platform.python_version(),
                "command": command, "methods": args.methods, "backends": args.backends, "envs": args.envs,
                "repeats": args.repeats}
    else:  # merged: the table keeps the recorded order, the re-run cells replace theirs
        meta["command"] += f"; then `{command}`"
        order = {(r["method"], r["backend"], r["env"]): i for i, r in enumerate(recorded["rows"])}
        rows = sorted(kept + rows, key=lambda r: order.get((r["method"], r["backend"], r["env"]), len(order)))
    print(write_report(rows, meta, Path(args.out)))


def write_report(rows: list[dict], meta: dict, out: Path) -> str:
    """``out``.json (rows and meta) and ``out``.md (table and the bars' summary); returns the markdown."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    md = [f"Command: `{meta['command']}`; machine: {meta['machine']}, Python {meta['python']}, CPU only, "
          "1 framework thread, one run at a time" + (f"; every cell run {meta['repeats']} times round-robin, each row "
                                                     "is its run of median env-steps/s (range in brackets)"
                                                     if meta.get("repeats", 1) > 1 else "") + ".", "",
          "| method | backend | env | num envs | env-steps/s | env % | act % | update % | glue % | "
          "update ms (batch) | act (8 envs) ms | whole run env-steps/s | warm-up s |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        w, glue = r["wall_time"], glue_share(r) * r["wall_time"]
        runs = r.get("steps_per_sec_runs", [r["steps_per_sec"]])
        rate = f"{r['steps_per_sec']:.0f}" + (f" ({min(runs):.0f}-{max(runs):.0f})" if len(runs) > 1 else "")
        md.append(f"| {r['method']} | {r['backend']} | {r['env']} | {r['num_envs']} | {rate} | "
                  f"{100 * r['time_env'] / w:.0f} | {100 * r['time_act'] / w:.0f} | {100 * r['time_update'] / w:.0f} | "
                  f"{100 * glue / w:.0f} | {r['update_ms']:.2f} ({r['update_batch']}) | {r['act_ms']:.3f} | "
                  f"{r['whole_run_steps_per_sec']:.0f} | {r['warmup_s']:.1f} (first {r['warmup_steps']} steps) |")
    md.append("")
    md += summary(rows, meta["methods"], meta["backends"], meta["envs"])
    out.with_suffix(".md").write_text("\n".join(md) + "\n")
    return "\n".join(md)


def glue_share(row: dict) -> float:
    """Share of a row's wall time outside env, acting and updates (evaluation and checkpoints count)."""
    return (row["time_glue"] + row["time_eval"] + row["time_checkpoint"]) / row["wall_time"]


def summary(rows: list[dict], methods: list[str], backends: list[str], envs: list[str]) -> list[str]:
    """One line per bar of issue 7, each ending in pass/fail."""
    def verdict(ok: bool) -> str:
        return "pass" if ok else "FAIL"

    cell = {(r["method"], r["backend"], r["env"]): r for r in rows}
    lines = []
    for method in methods:
        for b in backends:
            if len(envs) == 2 and all((method, b, e) in cell for e in envs):
                slow, fast = (cell[method, b, e]["steps_per_sec"] for e in envs)
                lines.append(f"- {method}/{b}: {envs[1]} trains {fast / slow:.2f}x faster than {envs[0]} "
                             f"(bar 3x: {verdict(fast >= 3 * slow)})")
    for method in methods:
        for env in envs:
            if (method, "torch", env) in cell and (method, "mindspore", env) in cell:
                torch_sps, ms_sps = (cell[method, b, env]["steps_per_sec"] for b in ("torch", "mindspore"))
                lines.append(f"- {method}: torch / mindspore env-steps/s on {env} = {torch_sps / ms_sps:.2f} "
                             f"(bar 2: {verdict(torch_sps <= 2 * ms_sps)})")
    glue = {(r["method"], r["backend"], r["env"]): glue_share(r) for r in rows}
    worst = max(glue, key=glue.get)
    lines.append(f"- glue: at most {100 * glue[worst]:.0f}% of wall time ({'/'.join(worst)}; bar 30%: "
                 f"{verdict(glue[worst] <= 0.3)})")
    return lines


if __name__ == "__main__":
    main()
