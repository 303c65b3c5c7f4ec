"""Learning records of the shipped configs: every ``configs/<method>/<env>.yaml`` trained with
``xmarl.run`` as shipped, in each backend, over seeds, and recorded in
``benchmarks/results/learning/<method>/<env>.{json,md}`` (the same path as the config).

A record holds, per run: the final greedy return per agent over the config's evaluation episodes
(the trainer's last evaluation), the return of uniformly random actions (over the available
actions) on the same evaluation episodes, each agent's own return, the env's success measure where
it has one, the curve, the wall time and the env-steps/s; per backend the mean over seeds; and the
resolved config the runs used (``tests/test_learning_records.py`` fails when a shipped config has
no record or differs from the one recorded). A config learns when its mean beats random in every
backend; some tasks also have a bar (``BARS``) with a time limit.

A config with agent groups (teams that compete, e.g. predators and prey) is judged per group: each
learning group, acting with its final greedy policy while every other group acts uniformly at
random, must beat the return that group gets when everyone acts at random (the mean over both
sides of a game says nothing). The record also holds each group's return in the final self-play
and the env's success measures (e.g. predator-prey touches) in each of those settings.

    python benchmarks/learning.py commnet/mpe/simple_spread_v3 --jobs 2
    python benchmarks/learning.py coma/mpe/simple_spread_v3 --on mpe-fast/simple_spread_v3
    python benchmarks/learning.py --stale --jobs 2       # every config whose record is missing or stale
    python benchmarks/learning.py --budgets              # each config's "# Budget:" line from its record

A run steps what a user's run of the config steps: the config's env, or by default its
transition-identical twin where xmarl ships one (``mpe-fast/<task>`` for ``mpe/<task>``, tested
step by step in tests/test_mpe_fast.py; ``env_impl: auto``); ``--reference`` trains on the env's
own package instead, ``--on`` on a named twin when it reads the same config. The record says
which env stepped. Each run is a separate process with one framework thread.
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from xmarl.files import atomic_write_text

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "learning"
CONFIGS = ROOT / "configs"
BACKENDS = ["torch", "tensorflow", "mindspore"]

#: tasks with a stated bar: (greedy return per agent to reach, minutes allowed per run, where it comes from)
BARS: dict[str, tuple[float, float, str]] = {
    "mpe/simple_spread_v3": (-19.0, 30, "random -27.3, walk-to-own-landmark heuristic -15.5"),
    "mpe-fast/simple_spread_v3": (-19.0, 30, "as mpe/simple_spread_v3"),
    "levers": (0.97, 15, "the paper's CommNet 0.94, independent agents 0.59"),
}

#: the env's own success measure, from the mean greedy return per agent and the env kwargs
SUCCESS: dict[str, tuple[str, str, Callable[[float, dict[str, Any]], float]]] = {
    "target": ("hit rate", "fraction of agent-steps whose action hits the agent's target",
               lambda ret, kw: ret / kw.get("episode_len", 5)),
    "median": ("deal quality", "mean per-round reward, 1 - 2 |offer - median| with a quorum (1 = exact median)",
               lambda ret, kw: ret / kw.get("rounds", 3)),
    "levers": ("distinct levers", "fraction of distinct levers pulled per game (1 = every agent its own lever)",
               lambda ret, kw: ret),
}

ONE_RUN = r"""
import json, sys
import numpy as np
import xmarl
from xmarl.envs import make_env
from xmarl.training.trainer import EVAL_SEED_OFFSET, episode_returns


from xmarl.training.groups import UniformPolicy as Random  # uniformly random (available) actions


class AgainstRandom:
    '''policy's actions for the agents mine ([A] bool), uniformly random ones for the others.'''

    def __init__(self, policy, rand, mine):
        self.policy, self.rand, self.mine = policy, rand, mine

    def act(self, obs, state=None, explore=False, **kw):
        ours, state = self.policy.act(obs, state, explore=False, **kw)
        theirs, _ = self.rand.act(obs, None, **kw)
        keep = self.mine.reshape((1, -1) + (1,) * (ours.ndim - 2))
        return np.where(keep, ours, theirs.astype(ours.dtype)), state


def measures(stats, slots):
    rets, _, meas = stats
    return {**{g: float(rets[:, idx].mean()) for g, idx in slots.items()},
            **{f"eval_{k}": float(v.mean()) for k, v in meas.items()}}


method, backend, env_name, seed, out, env_impl = sys.argv[1:7]
seed = int(seed)
r = xmarl.run(method, backend, env_name, seed=seed, out_dir=out, progress=False,
              overrides={"train.tensorboard": False, "env_impl": env_impl})
assert r.run_env == env_name, (r.run_env, env_name)  # the record says which env stepped
cfg = xmarl.load_config(method, env_name)
env = make_env(env_name, cfg.train.eval_episodes, **cfg.env_kwargs)
rec = {"final": r.final_metrics, "curve": r.curve, "agents": env.agents}
if not cfg.groups:
    greedy = episode_returns(r.learner.policy, env, seed + EVAL_SEED_OFFSET)
    rand = episode_returns(Random(env, seed), env, seed + EVAL_SEED_OFFSET)
else:  # teams: each learning group against random opponents too
    from xmarl.training.checkpoint import load_weights
    from xmarl.training.groups import AgentGroups
    from xmarl.training.render import build_policy
    from xmarl.training.trainer import episode_stats

    policy = build_policy(xmarl.load_config(config=r.config_path), load_weights(r.run_dir), env)
    slots = AgentGroups.resolve(cfg.groups, env.agents).slots
    stats = episode_stats(policy, env, seed + EVAL_SEED_OFFSET)
    rand_stats = episode_stats(Random(env, seed), env, seed + EVAL_SEED_OFFSET)
    greedy, rand = stats[0], rand_stats[0]
    rec.update(group_returns=measures(stats, slots), random_group_returns=measures(rand_stats, slots), vs_random={})
    for g, idx in slots.items():
        if cfg.groups[g].policy == "learn":
            mine = np.isin(np.arange(len(env.agents)), idx)
            rec["vs_random"][g] = measures(episode_stats(AgainstRandom(policy, Random(env, seed + 1), mine), env,
                                                         seed + EVAL_SEED_OFFSET), slots)
rec.update(agent_returns=greedy.mean(0).tolist(), random_return=float(rand.mean()),
           random_agent_returns=rand.mean(0).tolist())
print(json.dumps(rec))
"""


def shipped_configs() -> list[str]:
    """``<method>/<env>`` of every shipped config file (defaults.yaml excluded)."""
    return sorted(str(p.relative_to(CONFIGS).with_suffix("")) for p in CONFIGS.rglob("*.yaml")
                  if p.name != "defaults.yaml")


def resolved(method: str, env: str) -> dict[str, Any]:
    """The config a shipped pairing resolves to, as plain data, without the keys that only say
    where and how a run is shown (env name, backend, seed, output folders, progress, logging)."""
    from xmarl.config import load_config

    cfg = load_config(method=method, env=env).model_dump(mode="json")
    return comparable(cfg)


def comparable(cfg: dict[str, Any]) -> dict[str, Any]:
    """Keys of a resolved config that decide what a run learns."""
    train = {k: v for k, v in cfg["train"].items() if k in ("steps", "num_envs", "eval_interval", "eval_episodes")}
    out = {"method": cfg["method"], "env_kwargs": cfg["env_kwargs"], "train": train, cfg["method"]: cfg[cfg["method"]]}
    if cfg.get("groups"):  # a random group changes what is learned (no groups: every agent learns)
        out["groups"] = cfg["groups"]
        for g in cfg["groups"].values():  # and a group's own method reads that method's section
            if g.get("method") and g["method"] != cfg["method"]:
                out[g["method"]] = cfg[g["method"]]
    return out


BUDGET = "# Budget: "  # the line of each shipped config's comment that states its budget in minutes
FRAMEWORKS = {"torch": "torch", "tensorflow": "TensorFlow", "mindspore": "MindSpore"}


def budget_line(record: dict[str, Any]) -> str:
    """The comment line stating a record's budget in minutes per run on this machine, per backend
    (the range over its seeds), and the env that stepped."""
    minutes: dict[str, list[float]] = {}
    for run in record["runs"]:
        minutes.setdefault(run["backend"], []).append(run["process_wall_s"] / 60)

    def span(v: list[float]) -> str:
        lo, hi = f"{min(v):.1f}", f"{max(v):.1f}"
        return lo if lo == hi else f"{lo}-{hi}"

    meta = record["meta"]
    per = ", ".join(f"{FRAMEWORKS.get(b, b)} {span(v)}" for b, v in minutes.items())
    return (f"{BUDGET}{meta['config']['train']['steps']:,} env steps, {per} minutes per run on {meta['run_env']} "
            f"(learning record, {meta['jobs_in_parallel']} runs at a time on {meta['machine']}).")


def write_budget(config: str) -> bool:
    """Put the budget line of ``config``'s record at the end of its opening comment, in place of an
    older one; True when the file changed."""
    path = CONFIGS / f"{config}.yaml"
    line = budget_line(json.loads(record_path(config).with_suffix(".json").read_text()))
    lines = [x for x in path.read_text().splitlines() if not x.startswith(BUDGET)]
    at = next((k for k, x in enumerate(lines) if not x.startswith("#")), len(lines))  # the comment's end
    text = "\n".join([*lines[:at], line, *lines[at:]]) + "\n"
    if text == path.read_text():
        return False
    atomic_write_text(path, text)
    return True


def record_path(config: str) -> Path:
    return RESULTS / config


def is_stale(config: str) -> bool:
    """Whether ``config`` has no record, or its record ran a different resolved config."""
    path = record_path(config).with_suffix(".json")
    if not path.is_file():
        return True
    method, env = config.split("/", 1)
    return json.loads(path.read_text())["meta"]["config"] != resolved(method, env)


def partial_path(config: str, backend: str, seed: int) -> Path:
    """Where a finished run waits for the rest of its record (a crash or restart keeps it)."""
    return RESULTS / ".runs" / config / f"{backend}-{seed}.json"


def one(method: str, backend: str, run_env: str, seed: int, out: str, config: str,
        want: dict[str, Any]) -> dict[str, Any]:
    done = partial_path(config, backend, seed)
    if done.is_file():
        kept = json.loads(done.read_text())
        if kept["config"] == want and kept["run"]["run_env"] == run_env:
            print(f"{method} {backend} {run_env} seed {seed}: kept from {done}", flush=True)
            return kept["run"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    t0 = time.perf_counter()
    impl = "reference" if run_env == config.split("/", 1)[1] else "auto"  # the named env itself, or its twin
    p = subprocess.run([sys.executable, "-c", ONE_RUN, method, backend, run_env, str(seed), out, impl],
                       capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise RuntimeError(f"{method} {backend} {run_env} seed {seed} failed:\n{p.stderr[-3000:]}")
    res = json.loads(p.stdout.strip().splitlines()[-1])
    res.update(backend=backend, seed=seed, run_env=run_env, process_wall_s=time.perf_counter() - t0)
    atomic_write_text(done, json.dumps({"config": want, "run": res}))
    print(f"{method} {backend} {run_env} seed {seed}: {res['final']['eval_return']:.3f} "
          f"(random {res['random_return']:.3f}) in {res['final']['wall_time']:.0f}s", flush=True)
    return res


def run_config(config: str, on: str | None, backends: list[str], seeds: list[int], jobs: int, merge: bool,
               command: str, reference: bool = False) -> None:
    from xmarl.envs import config_twin, fast_twin

    method, env = config.split("/", 1)
    want = resolved(method, env)
    # by default what a user's run of the config steps: the env's transition-identical twin when it has one
    run_env = on or (env if reference else fast_twin(env, want["env_kwargs"]) or env)
    if run_env != env and config_twin(run_env) != env:
        sys.exit(f"--on {run_env}: not a transition-identical twin of {env}")
    if run_env != env and resolved(method, run_env) != want:
        sys.exit(f"--on {run_env}: {method} on {run_env} reads another config than {config}; run it on {env}")
    import tempfile

    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(jobs) as pool:
        futures = [pool.submit(one, method, b, run_env, s, tmp, config, want) for b in backends for s in seeds]
        runs = [f.result() for f in futures]
    meta = {"config": want, "method": method, "env": env, "run_env": run_env,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores", "python": platform.python_version(),
            "jobs_in_parallel": jobs, "command": command, "date": time.strftime("%Y-%m-%d")}
    write_record(config, runs, meta, merge)
    for b in backends:
        for s in seeds:
            partial_path(config, b, s).unlink(missing_ok=True)


def write_record(config: str, runs: list[dict[str, Any]], meta: dict[str, Any], merge: bool = False) -> None:
    """``<config>.json`` (everything) and ``<config>.md`` (the tables); with ``merge``, runs of
    other backends already recorded under the same config are kept."""
    out = record_path(config)
    if merge and out.with_suffix(".json").is_file():
        old = json.loads(out.with_suffix(".json").read_text())
        if old["meta"]["config"] == meta["config"]:
            new = {r["backend"] for r in runs}
            runs = [r for r in old["runs"] if r["backend"] not in new] + runs
            meta = {**meta, "command": f"{old['meta']['command']}`, then `{meta['command']}"}
    runs = sorted(runs, key=lambda r: (BACKENDS.index(r["backend"]) if r["backend"] in BACKENDS else 9, r["seed"]))
    atomic_write_text(out.with_suffix(".json"), json.dumps({"meta": meta, "runs": runs}, indent=1) + "\n")
    atomic_write_text(out.with_suffix(".md"), markdown(config, runs, meta))
    print(markdown(config, runs, meta))


def summary(runs: list[dict[str, Any]], env: str) -> dict[str, dict[str, Any]]:
    """Per backend: mean final return, mean random return, whether it beats random and the bar."""
    bar = BARS.get(env)
    out = {}
    for b in dict.fromkeys(r["backend"] for r in runs):
        rs = [r for r in runs if r["backend"] == b]
        mean = sum(r["final"]["eval_return"] for r in rs) / len(rs)
        rand = sum(r["random_return"] for r in rs) / len(rs)
        worst = max(r["final"]["wall_time"] for r in rs)
        row = {"seeds": len(rs), "mean": mean, "random": rand, "beats_random": mean > rand, "max_wall_s": worst}
        if "vs_random" in rs[0]:  # teams: every learning group beats random play against random opponents
            row["groups"] = {g: {"vs_random": sum(r["vs_random"][g][g] for r in rs) / len(rs),
                                 "random": sum(r["random_group_returns"][g] for r in rs) / len(rs),
                                 "self_play": sum(r["group_returns"][g] for r in rs) / len(rs)}
                             for g in rs[0]["vs_random"]}
            row["beats_random"] = all(v["vs_random"] > v["random"] for v in row["groups"].values())
        if bar is not None:
            row["bar_met"] = mean >= bar[0] and worst <= bar[1] * 60
        out[b] = row
    return out


def markdown(config: str, runs: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    env, run_env = meta["env"], meta["run_env"]
    bar = BARS.get(env)
    succ = SUCCESS.get(env)
    kw = meta["config"]["env_kwargs"]
    steps = meta["config"]["train"]["steps"]
    lines = [f"# {meta['method']} on {env}: learning record of `configs/{config}.yaml`", "",
             f"Command: `{meta['command']}` ({meta['machine']}, Python {meta['python']}, "
             f"{meta['jobs_in_parallel']} run(s) at a time, one framework thread per run, {meta['date']}).",
             f"Budget: the shipped config as it is, {steps} env steps per run"
             + (f", trained on `{run_env}` (transition-identical to `{env}`)" if run_env != env else "") + ".",
             "Return: greedy return per agent (episode sum, mean over agents) of the final policy over the config's "
             f"{meta['config']['train']['eval_episodes']} evaluation episodes; random: uniformly random (available) "
             "actions on the same episodes."]
    if bar is not None:
        lines.append(f"Bar: mean of the seeds >= {bar[0]} within {bar[1]:.0f} minutes per run ({bar[2]}).")
    teams = "vs_random" in runs[0]
    if teams:
        lines.append("Teams: the mean over every agent (the tables' final return) mixes opposing sides; each learning "
                     "group is judged below, against random opponents, with the env's own success measures.")
    elif succ is not None:
        lines.append(f"Success measure ({succ[0]}): {succ[1]}.")
    else:
        lines.append("Success measure: the env has none of its own; the return is the measure.")
    lines += ["", "| backend | seed | final return | random | " + (f"{succ[0]} | " if succ else "")
              + ("first step at bar | " if bar else "") + "wall (s) | env-steps/s |",
              "|---|---:|---:|---:|" + ("---:|" if succ else "") + ("---:|" if bar else "") + "---:|---:|"]
    for r in runs:
        f = r["final"]
        first = next((s for s, v in r["curve"] if v >= bar[0]), None) if bar else None
        cells = [r["backend"], str(r["seed"]), f"{f['eval_return']:.3f}", f"{r['random_return']:.3f}"]
        if succ:
            cells.append(f"{succ[2](f['eval_return'], kw):.3f}")
        if bar:
            cells.append("-" if first is None else str(first))
        cells += [f"{f['wall_time']:.0f}", f"{f['steps_per_sec']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "| backend | seeds | mean final return | mean random | beats random |"
              + (" bar met |" if bar else "") + " slowest run (s) |",
              "|---|---:|---:|---:|---|" + ("---|" if bar else "") + "---:|"]
    for b, s in summary(runs, env).items():
        lines.append(f"| {b} | {s['seeds']} | **{s['mean']:.3f}** | {s['random']:.3f} | "
                     f"{'yes' if s['beats_random'] else 'NO'} |"
                     + ((" yes |" if s["bar_met"] else " NO |") if bar else "") + f" {s['max_wall_s']:.0f} |")
    rows = summary(runs, env)
    if any("groups" in row for row in rows.values()):
        lines += ["", "Each learning group (mean over seeds): its return with its final greedy policy against "
                  "uniformly random opponents, the return it gets when everyone acts at random, and its return in the "
                  "final self-play. A group learned when the first beats the second.", "",
                  "| backend | group | vs random opponents | all random | beats random | self-play |",
                  "|---|---|---:|---:|---|---:|"]
        for b, row in rows.items():
            for g, v in row.get("groups", {}).items():
                lines.append(f"| {b} | {g} | **{v['vs_random']:.3f}** | {v['random']:.3f} | "
                             f"{'yes' if v['vs_random'] > v['random'] else 'NO'} | {v['self_play']:.3f} |")
        meas = sorted(k for k in runs[0]["random_group_returns"] if k.startswith("eval_"))
        if meas:
            lines += ["", "The env's success measures per episode (mean over seeds): in the final self-play, with "
                      "each learning group against random opponents, and with everyone random.", "",
                      "| backend | measure | self-play | " + " | ".join(f"{g} vs random" for g in runs[0]["vs_random"])
                      + " | all random |", "|---|---|---:|" + "---:|" * len(runs[0]["vs_random"]) + "---:|"]
            for b in rows:
                rs = [r for r in runs if r["backend"] == b]
                for k in meas:
                    cells = [sum(r["group_returns"][k] for r in rs) / len(rs)]
                    cells += [sum(r["vs_random"][g][k] for r in rs) / len(rs) for g in runs[0]["vs_random"]]
                    cells.append(sum(r["random_group_returns"][k] for r in rs) / len(rs))
                    lines.append(f"| {b} | {k.removeprefix('eval_')} | " + " | ".join(f"{c:.3f}" for c in cells) + " |")
    agents = runs[0]["agents"]
    if len(set(tuple(r["agents"]) for r in runs)) == 1 and len(agents) > 1:
        lines += ["", "Each agent's return (mean over every run of the backend; random in brackets):", "",
                  "| backend | " + " | ".join(agents) + " |", "|---|" + "---:|" * len(agents)]
        for b in dict.fromkeys(r["backend"] for r in runs):
            rs = [r for r in runs if r["backend"] == b]
            cells = []
            for i in range(len(agents)):
                g = sum(r["agent_returns"][i] for r in rs) / len(rs)
                x = sum(r["random_agent_returns"][i] for r in rs) / len(rs)
                cells.append(f"{g:.2f} ({x:.2f})")
            lines.append(f"| {b} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def summary_table() -> str:
    """One row per recorded config: budget, each backend's mean over seeds, random, and the bar."""
    lines = ["| config | env steps | torch | tensorflow | mindspore | random | beats random | bar |",
             "|---|---:|---:|---:|---:|---:|---|---|"]
    for path in sorted(RESULTS.rglob("*.json")):
        if ".runs" in path.parts:
            continue
        record = json.loads(path.read_text())
        meta, runs = record["meta"], record["runs"]
        rows = summary(runs, meta["env"])
        bar = BARS.get(meta["env"])
        cells = [f"{rows[b]['mean']:.3f}" if b in rows else "-" for b in BACKENDS]
        rand = sum(r["random"] for r in rows.values()) / len(rows)
        beats = "yes" if all(r["beats_random"] for r in rows.values()) else "NO"
        met = "-" if bar is None else (f">= {bar[0]} in {bar[1]:.0f} min: "
                                       + ("met" if all(r["bar_met"] for r in rows.values()) else "NOT met"))
        config = path.relative_to(RESULTS).with_suffix("")
        on = f" (on `{meta['run_env']}`)" if meta["run_env"] != meta["env"] else ""
        lines.append(f"| [`{config}`](results/learning/{config}.md){on} | {meta['config']['train']['steps']} | "
                     + " | ".join(cells) + f" | {rand:.3f} | {beats} | {met} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("configs", nargs="*", help="<method>/<env> of shipped configs, e.g. commnet/mpe/simple_spread_v3")
    ap.add_argument("--stale", action="store_true", help="every shipped config whose record is missing or stale")
    ap.add_argument("--on", default=None, help="train on this transition-identical twin of the config's env")
    ap.add_argument("--reference", action="store_true",
                    help="train on the config's env itself (env_impl: reference), not its transition-identical twin")
    ap.add_argument("--backends", nargs="+", default=BACKENDS)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--merge", action="store_true", help="keep other backends' runs of the same config")
    ap.add_argument("--list", action="store_true", help="list shipped configs and whether their record is current")
    ap.add_argument("--render", action="store_true", help="rewrite every record's .md from its .json (no runs)")
    ap.add_argument("--budgets", action="store_true",
                    help="rewrite the '# Budget:' comment line of every shipped config from its record (no runs)")
    ap.add_argument("--summary", action="store_true",
                    help="one markdown row per record, printed and written into RESULTS.md between its markers")
    args = ap.parse_args()
    configs = list(args.configs)
    if args.render:
        for path in sorted(RESULTS.rglob("*.json")):
            if ".runs" in path.parts:
                continue
            record = json.loads(path.read_text())
            path.with_suffix(".md").write_text(markdown(str(path.relative_to(RESULTS).with_suffix("")),
                                                        record["runs"], record["meta"]))
        return
    if args.budgets:
        for c in shipped_configs():
            if record_path(c).with_suffix(".json").is_file() and write_budget(c):
                print(f"configs/{c}.yaml: budget line rewritten")
        return
    if args.summary:
        table = summary_table()
        results_md = HERE / "RESULTS.md"
        start = "<!-- learning summary: python benchmarks/learning.py --summary -->"
        end = "<!-- end learning summary -->"
        text = results_md.read_text()
        if start in text and end in text:
            head, rest = text.split(start, 1)
            atomic_write_text(results_md, f"{head}{start}\n{table}{end}{rest.split(end, 1)[1]}")
        print(table, end="")
        return
    if args.list:
        for c in shipped_configs():
            print(f"{c}: {'missing or stale' if is_stale(c) else 'recorded'}")
        return
    if args.stale:
        configs += [c for c in shipped_configs() if is_stale(c) and c not in configs]
    unknown = [c for c in configs if c not in shipped_configs()]
    if unknown:
        sys.exit(f"not shipped configs: {unknown}; see --list")
    command = " ".join(["python benchmarks/learning.py", *sys.argv[1:]])
    for c in configs:
        run_config(c, args.on, args.backends, args.seeds, args.jobs, args.merge, command, args.reference)


if __name__ == "__main__":
    main()
