"""The recorded benchmark results as the docs show them: figures (SVG, drawn with matplotlib's Agg
canvas) and tables, built from ``benchmarks/results/*.json`` at every docs build. No number on a
results page is typed by hand: each comes from one of these files, which the scripts in
``benchmarks/`` wrote.

Used by ``xmarl_docs.py`` for the benchmarks page, each method page and the landing page's figure.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

BACKENDS = ("torch", "tensorflow", "mindspore")
TITLES = {"torch": "torch", "tensorflow": "TensorFlow", "mindspore": "MindSpore"}
COLOURS = {"torch": "#ee4c2c", "tensorflow": "#1f77b4", "mindspore": "#2ca02c"}
STYLES = {"torch": "-", "tensorflow": "--", "mindspore": ":"}
MARKERS = {"torch": "o", "tensorflow": "s", "mindspore": "^"}
METHOD_TITLES = {"maddpg": "MADDPG", "coma": "COMA", "commnet": "CommNet"}


def results_dir(root: Path) -> Path:
    return root / "benchmarks" / "results"


def load(root: Path, rel: str) -> Any:
    """A recorded result file (``benchmarks/results/<rel>``), or None when it is not there."""
    path = results_dir(root) / rel
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def src(rel: str) -> str:
    """The sentence naming a section's source file."""
    return f"Source: ``benchmarks/results/{rel}``."


def _f(x: float, digits: int = 3) -> str:
    return f"{x:.{digits}f}"


def _table(header: list[str], rows: list[list[str]], widths: list[int] | None = None) -> list[str]:
    out = [".. list-table::", "   :header-rows: 1", "   :class: xmarl-results"]
    if widths:
        out.append("   :widths: " + " ".join(map(str, widths)))
    out.append("")
    for row in [header, *rows]:
        for i, cell in enumerate(row):
            cell = str(cell).strip() or "\\-"
            if re.match(r"^[-+]", cell):
                cell = "\\" + cell  # a leading '-' would start a list
            out.append(("   * - " if i == 0 else "     - ") + cell)
    return out + [""]


# -- figures ----------------------------------------------------------------------------------
def _figure(width: float, height: float) -> Any:
    import matplotlib

    matplotlib.rcParams["svg.hashsalt"] = "xmarl-docs"  # the same SVG for the same data
    matplotlib.rcParams["font.size"] = 9
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _svg(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
    return buf.getvalue()


def _write(path: Path, data: bytes) -> None:
    """Write ``path`` only when its bytes change (Sphinx then copies only what changed)."""
    if path.exists() and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def curve_band(runs: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Mean and 95% bootstrap interval of the mean over the runs at every step all of them evaluated."""
    from xmarl.compare.stats import curve_band as band

    return band([[c[0] for c in r["curve"]] for r in runs], [[c[1] for c in r["curve"]] for r in runs])


def _learning_axes(ax: Any, record: dict[str, Any], legend: bool) -> None:
    by_backend = _runs_by_backend(record)
    for b, runs in by_backend.items():
        band = curve_band(runs)
        if not band["steps"]:
            continue
        ax.plot(band["steps"], band["mean"], color=COLOURS[b], ls=STYLES[b], marker=MARKERS[b], ms=3, lw=1.6,
                label=f"{TITLES[b]} ({len(runs)} seeds)")
        ax.fill_between(band["steps"], band["lo"], band["hi"], color=COLOURS[b], alpha=0.18, lw=0)
    randoms = [r["random_return"] for r in record["runs"] if r.get("random_return") is not None]
    if randoms:
        ax.axhline(float(np.mean(randoms)), color="#777777", lw=1.0, ls="-.", label="uniformly random")
    ax.set_xlabel("environment steps")
    ax.grid(alpha=0.3)
    ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 4))
    if legend:
        ax.legend(fontsize="small", loc="lower right")


def _runs_by_backend(record: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in record["runs"]:
        out.setdefault(r["backend"], []).append(r)
    return {b: out[b] for b in BACKENDS if b in out}


def learning_records(root: Path, method: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    """``(config name, record)`` of every learning record (of ``method``), in name order."""
    base = results_dir(root) / "learning"
    out = []
    for path in sorted(base.rglob("*.json")):
        rel = path.relative_to(base)
        if rel.parts[0].startswith(".") or (method is not None and rel.parts[0] != method):
            continue
        if not (root / "configs" / rel.with_suffix(".yaml")).exists():
            continue  # a record of a config that is no longer shipped
        record = json.loads(path.read_text(encoding="utf-8"))
        if record.get("runs"):
            out.append((str(rel.with_suffix("")), record))
    return out


def record_title(name: str, record: dict[str, Any]) -> str:
    meta = record["meta"]
    title = f"{METHOD_TITLES.get(meta['method'], meta['method'])} on {meta['env']}"
    if meta.get("run_env") and meta["run_env"] != meta["env"]:
        title += f" (run on {meta['run_env']})"
    return title


def learning_figure(root: Path, out: Path, name: str, record: dict[str, Any], width: float = 6.4,
                    height: float = 3.4) -> Path:
    """One record's learning curves, mean and 95% CI per backend, random play beside them."""
    fig = _figure(width, height)
    ax = fig.add_subplot(1, 1, 1)
    _learning_axes(ax, record, legend=True)
    ax.set_ylabel("greedy return per agent")
    ax.set_title(record_title(name, record), fontsize=10)
    path = out / "figures" / f"learning-{name.replace('/', '-')}.svg"
    _write(path, _svg(fig))
    return path


def learning_table(root: Path, records: list[tuple[str, dict[str, Any]]]) -> list[str]:
    rows = []
    for name, rec in records:
        by = _runs_by_backend(rec)
        steps = int(rec["meta"]["config"]["train"]["steps"])
        cells = []
        for b in BACKENDS:
            vals = [r["final"]["eval_return"] for r in by.get(b, [])]
            cells.append(f"{np.mean(vals):.3f}" if vals else "")
        randoms = [r["random_return"] for r in rec["runs"] if r.get("random_return") is not None]
        run_env = rec["meta"].get("run_env")
        where = f" (on ``{run_env.split('/')[0]}``)" if run_env not in (None, rec["meta"]["env"]) else ""
        rows.append([f"``{name}``{where}", f"{steps:,}", *cells, f"{np.mean(randoms):.3f}" if randoms else ""])
    return _table(["config", "env steps", "torch", "TensorFlow", "MindSpore", "random"], rows, [40, 12, 12, 12, 12, 12])


# -- throughput ----------------------------------------------------------------------------------
def throughput_figure(out: Path, data: dict[str, Any]) -> Path:
    envs = data["meta"]["envs"]
    methods = data["meta"]["methods"]
    fig = _figure(7.2, 3.0)
    for k, env in enumerate(envs):
        ax = fig.add_subplot(1, len(envs), k + 1)
        x = np.arange(len(methods))
        for j, b in enumerate(BACKENDS):
            vals = [next((r["steps_per_sec"] for r in data["rows"] if r["method"] == m and r["backend"] == b
                          and r["env"] == env), 0.0) for m in methods]
            ax.bar(x + (j - 1) * 0.27, vals, 0.27, color=COLOURS[b], label=TITLES[b])
        ax.set_xticks(x, [METHOD_TITLES.get(m, m) for m in methods])
        ax.set_title(env, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        if k == 0:
            ax.set_ylabel("training env-steps/s")
            ax.legend(fontsize="small")
    path = out / "figures" / "throughput.svg"
    _write(path, _svg(fig))
    return path


def throughput_table(data: dict[str, Any], method: str | None = None) -> list[str]:
    rows = []
    for r in data["rows"]:
        if method is not None and r["method"] != method:
            continue
        shares = {k: 100 * r[f"time_{k}"] / r["wall_time"] for k in ("env", "act", "update", "glue")}
        rows.append([METHOD_TITLES.get(r["method"], r["method"]), TITLES[r["backend"]], r["env"], str(r["num_envs"]),
                     f"{r['steps_per_sec']:,.0f}", *(f"{shares[k]:.0f}" for k in ("env", "act", "update", "glue")),
                     f"{r['update_ms']:.2f}", f"{r['act_ms']:.3f}"])
    if not rows:
        return []
    return _table(["method", "backend", "env", "envs", "env-steps/s", "env %", "act %", "update %", "glue %",
                   "update (ms)", "act (ms)"], rows)


# -- CommNet scaling -----------------------------------------------------------------------------------
def scaling_figure(out: Path, runs: Sequence[tuple[str, dict[str, Any]]]) -> Path:
    fig = _figure(7.2, 3.0)
    for k, (label, data) in enumerate(runs):
        ax = fig.add_subplot(1, len(runs), k + 1)
        for b in BACKENDS:
            pts = data["results"].get(b, [])
            if pts:
                ax.plot([p["agents"] for p in pts], [p["update_s"] for p in pts], color=COLOURS[b], ls=STYLES[b],
                        marker=MARKERS[b], ms=4, label=TITLES[b])
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("agents per game")
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3, which="both")
        if k == 0:
            ax.set_ylabel("one update (s)")
            ax.legend(fontsize="small")
    path = out / "figures" / "commnet-scaling.svg"
    _write(path, _svg(fig))
    return path


def scaling_table(data: dict[str, Any]) -> list[str]:
    agents = sorted({p["agents"] for pts in data["results"].values() for p in pts})
    rows = []
    for b in BACKENDS:
        pts = {p["agents"]: p for p in data["results"].get(b, [])}
        if pts:
            rows.append([TITLES[b], *(f"{pts[a]['update_s']:.2f}" if a in pts else "" for a in agents),
                         f"{data['ratio_1000_500'][b]:.2f}" if b in data.get("ratio_1000_500", {}) else "",
                         f"{max(p['peak_rss_gb'] for p in pts.values()):.1f}"])
    return _table(["backend", *(f"{a} agents (s)" for a in agents), "time(1000) / time(500)", "peak memory (GB)"], rows)


# -- the sections ----------------------------------------------------------------------------------
def section(title: str, char: str = "-") -> list[str]:
    return [title, char * len(title), ""]


def image(path: Path, srcdir: Path, alt: str, width: str | None = None) -> list[str]:
    rel = "/" + str(path.relative_to(srcdir))
    out = [f".. figure:: {rel}", f"   :alt: {alt}", "   :class: xmarl-figure"]
    if width:
        out.append(f"   :width: {width}")
    return out + [""]


def learning_section(root: Path, out: Path, srcdir: Path, method: str | None, char: str = "-") -> list[str]:
    records = learning_records(root, method)
    if not records:
        return []
    lines = [*section("Learning curves of the shipped configs", char),
             "Each shipped config (``configs/<method>/<env>.yaml``) trained as shipped, with seeds 0, 1 and 2 in "
             "each backend, by ``benchmarks/learning.py``. Curves show the greedy evaluation return per agent "
             "(the mean over seeds, with a 95% bootstrap interval of the mean); the dash-dotted line is uniformly "
             "random play on the same evaluation episodes. The table gives the final return, the mean over the "
             "seeds; a config marked *on mpe-fast* trained on the batched twin of its mpe2 task.", "",
             *learning_table(root, records)]
    lines += [".. grid:: 1 1 2 2", "   :gutter: 2", ""]
    for name, rec in records:
        fig = learning_figure(root, out, name, rec)
        lines += ["   .. grid-item::", ""]
        alt = f"learning curves of {record_title(name, rec)}, per backend"
        lines += ["      " + x if x else "" for x in image(fig, srcdir, alt)]
    lines += ["Sources: " + ", ".join(f"``benchmarks/results/learning/{n}.json``" for n, _ in records) + ".", ""]
    return lines


def throughput_section(root: Path, out: Path, srcdir: Path, method: str | None, char: str = "-") -> list[str]:
    data = load(root, "throughput.json")
    if not data or (method is not None and not any(r["method"] == method for r in data["rows"])):
        return []
    lines = [*section("Training speed", char),
             f"Env steps per second of a whole training run on simple_spread with the shipped configs, on mpe2's "
             f"environment and on the batched ``mpe-fast`` twin (``{data['meta']['command']}``; "
             f"{data['meta']['machine']}, Python {data['meta']['python']}, CPU only, one framework thread). Each cell "
             f"ran {data['meta']['repeats']} times and shows its median run; the shares say where the wall time "
             "went (the environment, acting, updates, everything else). ``update`` is one update on a batch, "
             "``act`` one acting step for 8 environments.", ""]
    if method is None:
        lines += image(throughput_figure(out, data), srcdir, "training env-steps per second per method and backend")
    lines += throughput_table(data, method) + [src("throughput.json"), ""]
    return lines


def scaling_section(root: Path, out: Path, srcdir: Path, char: str = "-") -> list[str]:
    big, small = load(root, "commnet_scaling.json"), load(root, "commnet_scaling_64games.json")
    if not big:
        return []
    runs = [(f"{big['games']} games per update", big)] + ([(f"{small['games']} games per update", small)]
                                                           if small else [])
    lines = [*section("CommNet: update time against agents per game", char),
             "One CommNet update on the levers game (forward through every communication step, backward, "
             "clipping and Adam) as the number of agents per game grows. Communication is a mean over the other "
             "agents, computed as one sum minus self, so the cost grows linearly with the agents: doubling them "
             "from 500 to 1000 roughly doubles the time.", "",
             *image(scaling_figure(out, runs), srcdir, "CommNet update time per backend against agents per game")]
    for label, data in runs:
        lines += [f"**{label}** ({data['machine']}):", "", *scaling_table(data)]
    lines += ["Sources: ``benchmarks/results/commnet_scaling.json``"
              + (", ``benchmarks/results/commnet_scaling_64games.json``." if small else "."), ""]
    return lines


def levers_section(root: Path, char: str = "-") -> list[str]:
    data = load(root, "commnet_levers.json")
    if not data:
        return []
    rows = []
    for comm in (True, False):
        for b in BACKENDS:
            runs = [r for r in data["runs"] if r["backend"] == b and r["communicate"] == comm]
            if runs:
                rows.append([TITLES[b], "yes" if comm else "no", str(len(runs)),
                             _f(np.mean([r["greedy_10k"] for r in runs]), 4),
                             _f(np.mean([r["sampled_10k"] for r in runs]), 4),
                             _f(np.mean([r["random"] for r in runs]), 4),
                             f"{np.mean([r['run_wall_s'] for r in runs]):.0f}"])
    return [*section("CommNet on the lever game, with and without communication", char),
            f"The CommNet paper's lever game (a pool of 500 agents, 5 drawn per game, reward: the share of distinct "
            f"levers pulled), {data['steps']:,} env steps per run with the shipped config. Reward of the greedy and "
            "of the sampled policy on 10,000 fresh games (means over seeds); without communication the same "
            "network cannot beat random levers. This record was made before baseline targets were normalised by "
            "default; the learning curves above use the current default.", "",
            *_table(["backend", "communication", "seeds", "greedy", "sampled", "random levers", "run (s)"], rows),
            src("commnet_levers.json"), ""]


def leaving_section(root: Path, char: str = "-") -> list[str]:
    data = load(root, "commnet_leaving.json")
    if not data:
        return []
    rows = [[TITLES[s["backend"]], _f(s["leaving"]), _f(s["random_leaving"]), _f(s["fixed"]), _f(s["random_fixed"])]
            for s in data["summary"]]
    seeds = sorted({r["seed"] for r in data["rows"]})
    return [*section("CommNet when agents leave mid-episode", char),
            "Levers played for two rounds by the same agents; after round 1 each agent leaves with probability "
            "0.5 and those left must agree again who pulls which lever, talking only among themselves (alive "
            f"masks). Greedy team reward per round on 10,000 games, mean over seeds {seeds}, against the same game "
            "with a fixed set of agents.", "",
            *_table(["backend", "agents leave", "random", "fixed agents", "random"], rows),
            src("commnet_leaving.json"), ""]


MIXED_MEASURES = {"tag": [("eval_return/predators", "return, predators"), ("eval_return/prey", "return, prey"),
                          ("eval_touches", "touches per episode")],
                  "deception": [("eval_return/good", "return, good team"), ("eval_return/adversary",
                                                                           "return, adversary"),
                                ("eval_good_success", "good team reaches the goal"),
                                ("eval_adversary_success", "adversary reaches the goal")]}


def mixed_section(root: Path, char: str = "-") -> list[str]:
    data = load(root, "mixed.json")
    if not data:
        return []
    lines = [*section("MADDPG on the MADDPG paper's mixed games", char),
             f"Predator-prey (simple_tag: three predators, one prey) and physical deception (simple_adversary) on "
             f"``mpe-fast``, {data['steps']:,} env steps per run, per-agent weights, one agent group per team. Final "
             "greedy evaluation on 200 episodes, mean over seeds; uniformly random play on the same episodes in "
             "brackets.", ""]
    for variant in sorted({r["variant"] for r in data["rows"]}):
        kind = variant.split(":")[0]
        measures = MIXED_MEASURES.get(kind, [])
        rows = []
        for b in BACKENDS:
            runs = [r for r in data["rows"] if r["variant"] == variant and r["backend"] == b]
            if runs:
                rows.append([TITLES[b], str(len(runs)), *(
                    f"{np.mean([r['final'][k] for r in runs]):.3f} ({np.mean([r['random'][k] for r in runs]):.3f})"
                    for k, _ in measures)])
        lines += [f"**{variant}**", "", *_table(["backend", "seeds", *(t for _, t in measures)], rows)]
    return lines + [src("mixed.json"), ""]


def mpe2_coma_section(root: Path, char: str = "-") -> list[str]:
    data = load(root, "coma_spread_learning_mpe2.json")
    if not data:
        return []
    runs = data["runs"]
    rows = [[str(r.get("seed", i)), f"{r['final']['eval_return']:.3f}", f"{r['final']['wall_time']:.0f}",
             f"{r['final']['steps_per_sec']:,.0f}"] for i, r in enumerate(runs)]
    mean = np.mean([r["final"]["eval_return"] for r in runs])
    return [*section("COMA on mpe2's simple_spread itself", char),
            "The shipped COMA config trains on ``mpe-fast``, whose transitions are bit-identical to mpe2's; the "
            f"same config on mpe2's own environment (torch, {int(runs[0]['final']['steps']):,} env steps, two runs "
            f"at a time), final greedy return per agent, mean {mean:.3f}:",
            "", *_table(["seed", "final return", "run (s)", "env-steps/s"], rows),
            src("coma_spread_learning_mpe2.json"), ""]


def device_section(root: Path, char: str = "-") -> list[str]:
    data = load(root, "device_check.json")
    if not data:
        return []
    if data.get("ran"):
        return []  # a recorded accelerator run is shown from its Markdown record
    return [*section("Accelerators", char),
            "``benchmarks/device_check.py`` compares each backend on a GPU or Ascend device with the CPU "
            "(parity, throughput, CommNet at 5,000 agents). It has not been recorded on an accelerator yet: "
            f"{data['why']}.", "", src("device_check.json"), ""]


def method_sections(root: Path, out: Path, srcdir: Path, method: str) -> list[str]:
    """The results of ``method`` alone, for its page."""
    lines = learning_section(root, out, srcdir, method, "~")
    lines += throughput_section(root, out, srcdir, method, "~")
    extra: dict[str, list[Callable[..., list[str]]]] = {
        "commnet": [lambda: scaling_section(root, out, srcdir, "~"), lambda: levers_section(root, "~"),
                    lambda: leaving_section(root, "~")],
        "maddpg": [lambda: mixed_section(root, "~")],
        "coma": [lambda: mpe2_coma_section(root, "~")],
    }
    for fn in extra.get(method, []):
        lines += fn()
    return lines


def landing_figure(root: Path, out: Path) -> Path | None:
    """The learning curves of MADDPG on mpe2's simple_spread (the main command's config)."""
    for name, rec in learning_records(root, "maddpg"):
        if name == "maddpg/mpe/simple_spread_v3":
            fig = _figure(5.2, 3.3)
            ax = fig.add_subplot(1, 1, 1)
            _learning_axes(ax, rec, legend=True)
            ax.set_ylabel("greedy return per agent")
            ax.set_title("MADDPG on MPE simple_spread, one config in three frameworks", fontsize=10)
            path = out / "figures" / "landing-maddpg-spread.svg"
            _write(path, _svg(fig))
            return path
    return None
