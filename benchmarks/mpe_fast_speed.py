"""Env speed benchmark: random-action env-steps/s of mpe2's ``parallel_env`` (one env, stepped in
a Python loop) against the ``mpe-fast`` array envs (64 envs stepped as arrays), measured in the
same process, for ``simple_spread_v3`` (``FastSpread``), ``simple_speaker_listener_v4``
(``FastSpeakerListener``), ``simple_reference_v3`` (``FastReference``), ``simple_tag_v3``
(``FastTag``), ``simple_adversary_v3`` (``FastAdversary``) and ``simple_push_v3`` (``FastPush``),
all with mpe2's default kwargs; plus, for simple_spread, xmarl's PettingZoo ``VectorEnv`` over 64
mpe2 envs (the path ``mpe/<task>`` takes) for reference.

    python benchmarks/mpe_fast_speed.py --out benchmarks/results/mpe_fast_speed.md
    python benchmarks/mpe_fast_speed.py --tasks simple_tag_v3 --out benchmarks/results/mpe_fast_speed.md

``--tasks`` measures only those tasks; with ``--out`` naming an existing table, their rows replace
(or join) that table's rows and the other tasks' rows are kept, with both commands recorded.

One env-step is one transition of one environment (all agents act). Actions are drawn
uniformly before timing; episodes reset when they end (every ``max_cycles`` steps), and the
reset time is included. Each configuration is timed ``--repeats`` times, interleaved, and the
median is reported; "vs mpe2" compares with mpe2's single env of the same task.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from xmarl.envs import make_env
from xmarl.envs.mpe_fast import FastAdversary, FastPush, FastReference, FastSpeakerListener, FastSpread, FastTag

#: every task this benchmark measures, in table order (simple_spread first: it has the VectorEnv row)
TASKS = {"simple_spread_v3": FastSpread, "simple_speaker_listener_v4": FastSpeakerListener,
         "simple_reference_v3": FastReference, "simple_tag_v3": FastTag, "simple_adversary_v3": FastAdversary,
         "simple_push_v3": FastPush}


def time_mpe2(task: str, steps: int, continuous: bool, seed: int, **kwargs: int) -> float:
    """env-steps/s of one mpe2 ``task`` parallel_env stepped ``steps`` times."""
    import importlib

    env = importlib.import_module(f"mpe2.{task}").parallel_env(max_cycles=25, continuous_actions=continuous, **kwargs)
    agents = list(env.possible_agents)
    rng = np.random.default_rng(seed)
    spaces = [env.action_space(a) for a in agents]
    if continuous:
        acts = [rng.random((steps, sp.shape[0])).astype(np.float32) for sp in spaces]
        plans = [{a: acts[i][t] for i, a in enumerate(agents)} for t in range(steps)]
    else:
        acts = [rng.integers(0, sp.n, steps) for sp in spaces]
        plans = [{a: int(acts[i][t]) for i, a in enumerate(agents)} for t in range(steps)]
    env.reset(seed=seed)
    start = time.perf_counter()
    for plan in plans:
        env.step(plan)
        if not env.agents:
            env.reset()
    elapsed = time.perf_counter() - start
    env.close()
    return steps / elapsed


def time_vector(make: Callable[[], object], steps: int, seed: int) -> float:
    """env-steps/s of an xmarl array env (``FastMPE`` or ``VectorEnv``) over ``steps`` rounds."""
    env = make()
    rng = np.random.default_rng(seed)
    plans = [env.sample_actions(rng) for _ in range(min(steps, 250))]
    env.reset(seed=seed)
    start = time.perf_counter()
    for t in range(steps):
        env.step(plans[t % len(plans)])
    elapsed = time.perf_counter() - start
    env.close()
    return steps * env.num_envs / elapsed


def main() -> None:
    """Run the benchmark and print (and optionally write) a Markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--N", type=int, default=3, help="agents and landmarks of simple_spread")
    ap.add_argument("--num-envs", type=int, default=64, help="mpe-fast / VectorEnv copies")
    ap.add_argument("--mpe2-steps", type=int, default=5000, help="steps of the single mpe2 env per repeat")
    ap.add_argument("--fast-rounds", type=int, default=2000, help="array steps of an mpe-fast env per repeat")
    ap.add_argument("--vector-rounds", type=int, default=100, help="array steps of VectorEnv per repeat")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--continuous", action="store_true", help="Box(0, 1) actions instead of Discrete")
    ap.add_argument("--tasks", nargs="+", choices=list(TASKS), default=list(TASKS),
                    help="measure only these tasks (default: all); --out then keeps the other tasks' rows")
    ap.add_argument("--out", default=None, help="also write the table (with the command) to this .md file")
    args = ap.parse_args()
    N, E, cont = args.N, args.num_envs, args.continuous
    # (task, environment) -> timer; the first row of each task is its mpe2 single env
    configs: dict[tuple[str, str], Callable[[int], float]] = {}
    if "simple_spread_v3" in args.tasks:
        configs.update({
            ("simple_spread_v3", "mpe2 `simple_spread_v3.parallel_env`, 1 env (Python loop)"): lambda s: time_mpe2(
                "simple_spread_v3", args.mpe2_steps, cont, s, N=N),
            ("simple_spread_v3", f"xmarl `VectorEnv` over mpe2 (`mpe/simple_spread_v3`), {E} envs"):
                lambda s: time_vector(
                    lambda: make_env("mpe/simple_spread_v3", E, N=N, continuous_actions=cont), args.vector_rounds, s),
            ("simple_spread_v3", f"`FastSpread` (`mpe-fast/simple_spread_v3`), {E} envs"): lambda s: time_vector(
                lambda: FastSpread(E, N=N, continuous_actions=cont), args.fast_rounds, s),
        })
    for task, cls in TASKS.items():
        if task == "simple_spread_v3" or task not in args.tasks:
            continue
        configs[(task, f"mpe2 `{task}.parallel_env`, 1 env (Python loop)")] = (
            lambda s, task=task: time_mpe2(task, args.mpe2_steps, cont, s))
        configs[(task, f"`{cls.__name__}` (`mpe-fast/{task}`), {E} envs")] = (
            lambda s, cls=cls: time_vector(lambda: cls(E, continuous_actions=cont), args.fast_rounds, s))
    results: dict[tuple[str, str], list[float]] = {k: [] for k in configs}
    load_start = os.getloadavg()[0]
    for r in range(args.repeats):  # interleaved, so background load hits every configuration alike
        for key, fn in configs.items():
            results[key].append(fn(r))
    med = {k: statistics.median(v) for k, v in results.items()}
    base: dict[str, float] = {}
    for task, name in configs:
        base.setdefault(task, med[(task, name)])
    lines = [
        f"Random-action env-steps/s, {'continuous' if cont else 'discrete'} actions, 25-step episodes "
        f"(resets included), simple_spread with N={N}; median of {args.repeats} interleaved repeats. "
        "\"vs mpe2\" is against mpe2's single env of the same task.",
        "",
        "| task | environment | env-steps/s (median) | min .. max | vs mpe2 |",
        "|---|---|---|---|---|",
    ]
    for (task, name), v in results.items():
        m = med[(task, name)]
        lines.append(f"| {task} | {name} | {m:,.0f} | {min(v):,.0f} .. {max(v):,.0f} | {m / base[task]:.1f}x |")
    cmd = " ".join(["python benchmarks/mpe_fast_speed.py", *sys.argv[1:]])
    meta = (
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"numpy {np.__version__}, CPU only, single process; 1-minute load average {load_start:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end."
    )
    table = "\n".join(lines)
    print(table)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        command = f"Command: `{cmd.strip()}`"
        if set(args.tasks) != set(TASKS) and out.is_file():
            command, meta, table = _merge(out.read_text(), command, f"{meta} Median of {args.repeats} repeats.",
                                          lines, args.tasks)
        out.write_text(f"# mpe-fast vs mpe2 speed\n\n{command}\n\n{meta}\n\n{table}\n")


def _merge(old: str, command: str, meta: str, lines: list[str], tasks: list[str]) -> tuple[str, str, str]:
    """The command, machine and table lines of results file ``old`` with its rows of ``tasks``
    replaced by the new table ``lines`` (the other tasks' rows kept, ordered as :data:`TASKS`);
    the new run's command and machine line are added to the old ones."""

    def task_of(row: str) -> str:
        return row.split("|")[1].strip()

    old_lines = old.splitlines()
    kept = [ln for ln in old_lines if ln.startswith("| ") and not ln.startswith("| task") and task_of(ln) not in tasks]
    rows = sorted(kept + lines[4:], key=lambda ln: list(TASKS).index(task_of(ln)))  # stable: rows keep their order
    previous = next((ln for ln in old_lines if ln.startswith("Command")), None)
    machine = [ln for ln in old_lines if ln.startswith(("Machine", "Rows of"))]
    caption = next((ln for ln in old_lines if ln.startswith("Random-action")), lines[0])
    rows_of = f"the rows of {', '.join(tasks)}"
    if previous is not None:
        earlier = previous.split(": ", 1)[1]
        command = f"Commands: {earlier}; then `{command.split('`')[1]}` for {rows_of}"
        meta = "\n\n".join([*machine, f"Rows of {', '.join(tasks)}: {meta}"])
    return command, meta, "\n".join([caption] + lines[1:4] + rows)

if __name__ == "__main__":
    main()
