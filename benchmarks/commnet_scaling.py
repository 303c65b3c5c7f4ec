"""CommNet scaling benchmark: the time of one update (forward, backward through every
communication step, clipping, Adam) on a batch of 512 lever-pulling games, per backend, as the
number of agents communicating in each game grows: 64, 128, 256, 500 and 1000.

The network is the shipped levers config (``configs/commnet/levers.yaml``: embedding encoder,
hidden size and communication steps as shipped); the pool holds 1000 agent ids and there are
5 levers whatever the number of agents (more levers would grow the policy head with the number of
agents, which is not what this measures). Bar (issue 7): time(1000) / time(500) <= 2.3, i.e.
linear in agents: the mean over the other agents is a sum minus self, not an [A, A] product.

    python benchmarks/commnet_scaling.py --backends torch tensorflow mindspore

Each (backend, size) runs in its own process with one framework thread; the first update of each
size (tracing/compiling) is not timed; the median of ``--reps`` timed updates is reported. Results
go to benchmarks/results/commnet_scaling.{json,md}.

MindSpore's CPU runtime keeps every intermediate tensor of the update graph alive until the
graph ends (about 70 KB per agent row here, against about 7 KB in torch), so its learner splits
a batch of more than ``CommNetLearner.max_rows`` agent rows into chunks of games whose gradients
add up (one update of 512 games of 1000 agents is 8 graph runs of 64 games and one Adam step).
A second run with ``--games 64`` measures every size with one graph run in every backend:

    python benchmarks/commnet_scaling.py
    python benchmarks/commnet_scaling.py --games 64 --out benchmarks/results/commnet_scaling_64games
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
AGENTS = (64, 128, 256, 500, 1000)
BAR = 2.3

ONE_BACKEND = r"""
import json, resource, statistics, sys, time
import numpy as np
from xmarl import registry
from xmarl.config import load_config
from xmarl.core.commnet import COMMNET as core
from xmarl.envs.levers import Levers

backend, games, reps, agents = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), [int(a) for a in sys.argv[4:]]
registry.get("runtime", "configure", backend)(1)
out = []
for A in agents:
    cfg = load_config("commnet", "levers", backend, overrides={"commnet.n_ids": 1000}).commnet
    env = Levers(games, n_pool=1000, n_agents=A, n_levers=5)
    env.reset(seed=0)
    learner = registry.get("learner", "commnet", backend)(env.spec, cfg, core.init_weights(env.spec, cfg, 0))
    rng = np.random.default_rng(0)
    obs = env.reset()
    actions, _ = learner.policy.act(obs, explore=True, rng=rng)
    _, final, rew, _, _ = env.step(actions)
    ep = {"obs": np.stack([obs, final], 1), "actions": np.stack([actions, actions], 1),
          "avail": np.ones((games, 2, A, 5), np.float32), "rew": rew[:, None], "term": np.ones((games, 1)),
          "mask": np.ones((games, 1), np.float32)}
    batch = core.prepare_batch(env.spec, cfg, ep, rng, 0)
    t0 = time.perf_counter()
    learner.update(batch)  # traces / compiles
    first = time.perf_counter() - t0
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        learner.update(batch)
        times.append(time.perf_counter() - t0)
    out.append({"agents": A, "update_s": statistics.median(times), "min_s": min(times), "first_s": first,
                "rows": games * A, "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6})
    print(json.dumps(out[-1]), file=sys.stderr, flush=True)
    del learner, batch
print(json.dumps(out))
"""


def run_one(backend: str, games: int, reps: int, agents: int) -> dict:
    """One size in a fresh process (so that one size's memory never carries over to the next)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    p = subprocess.run([sys.executable, "-c", ONE_BACKEND, backend, str(games), str(reps), str(agents)],
                       capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise RuntimeError(f"{backend} with {agents} agents failed:\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backends", nargs="*", default=["torch", "tensorflow", "mindspore"])
    ap.add_argument("--agents", nargs="+", type=int, default=list(AGENTS))
    ap.add_argument("--games", type=int, default=512)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--skip", nargs="*", default=[], help="backend:agents pairs not to run (e.g. mindspore:1000)")
    ap.add_argument("--out", default=str(HERE / "results" / "commnet_scaling"))
    ap.add_argument("--merge", action="store_true", help="keep the other backends already recorded in --out")
    ap.add_argument("--report-only", action="store_true", help="rewrite the Markdown of --out from its JSON")
    args = ap.parse_args()
    if args.report_only:
        args.merge, args.backends = True, []

    results: dict[str, list[dict]] = {}
    if args.merge and Path(args.out + ".json").is_file():
        old = json.loads(Path(args.out + ".json").read_text())
        rerun = list(args.backends)
        order = ("torch", "tensorflow", "mindspore")
        args.backends = sorted({*old["results"], *rerun}, key=lambda b: (order.index(b) if b in order else 3, b))
        args.games, args.reps = old["games"], old["reps"]
        results = {b: r for b, r in old["results"].items() if b not in rerun}
        args.skip = sorted(set(args.skip) | {x for x in old.get("skip", []) if x.split(":")[0] not in rerun})
    for b in args.backends:
        if b in results:
            continue
        results[b] = []
        for A in args.agents:
            if f"{b}:{A}" in args.skip:
                results[b].append({"agents": A, "update_s": None, "skipped": True})
                continue
            t0 = time.perf_counter()
            results[b].append({**run_one(b, args.games, args.reps, A), "reps": args.reps})
            print(f"{b} {A} agents: {results[b][-1]['update_s']:.3f}s ({time.perf_counter() - t0:.0f}s)", flush=True)

    def ratio(rows: list[dict]) -> float | None:
        t = {r["agents"]: r["update_s"] for r in rows if r["update_s"] is not None}
        return t[1000] / t[500] if 1000 in t and 500 in t else None

    record = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
              "games": args.games, "reps": args.reps, "skip": args.skip, "bar_ratio_1000_500": BAR, "results": results,
              "ratio_1000_500": {b: ratio(results[b]) for b in args.backends}}
    reps = ", ".join(f"{b} {max(r.get('reps', args.reps) for r in results[b])}" for b in args.backends)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out + ".json").write_text(json.dumps(record, indent=1))
    lines = [
        "# CommNet scaling: one levers update vs agents per game",
        "",
        f"Command: `python benchmarks/commnet_scaling.py --backends {' '.join(args.backends)} --games {args.games}"
        f"{' --skip ' + ' '.join(args.skip) if args.skip else ''}` "
        f"({args.games} games per batch, median of timed updates ({reps}) after one untimed, one thread per "
        f"process; {record['machine']}). One update = forward through every communication step, backward, "
        "clipping and Adam, on the shipped levers network with a 1000-id pool and 5 levers. MindSpore runs "
        "an update of more than 65536 agent rows as chunks of games whose gradients add up "
        "(`CommNetLearner.max_rows`: its CPU runtime keeps every intermediate of a graph alive); peak RSS "
        "includes the acting forward pass that builds the batch.",
        "",
        "| agents per game | rows (games x agents) | " + " | ".join(f"{b}: s (peak RSS)" for b in args.backends) + " |",
        "|---:|---:|" + "---:|" * len(args.backends),
    ]
    for i, A in enumerate(args.agents):
        cells = " | ".join("skipped (memory)" if results[b][i]["update_s"] is None
                           else f"{results[b][i]['update_s']:.3f} ({results[b][i]['peak_rss_gb']:.1f} GB)"
                           for b in args.backends)
        lines.append(f"| {A} | {args.games * A} | {cells} |")
    lines += ["", f"time(1000) / time(500), bar <= {BAR}:", ""]
    for b, r in record["ratio_1000_500"].items():
        lines.append(f"- {b}: {r:.2f} ({'pass' if r is not None and r <= BAR else 'FAIL'})" if r else f"- {b}: n/a")
    Path(args.out + ".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
