"""The report folder of a comparison: Markdown, learning-curve PNGs, ``summary.json`` and
``runs.csv``. Every file is written atomically. matplotlib is imported on first use and
drawn through its Agg canvas directly (no pyplot, no global state)."""

from __future__ import annotations

import csv
import html
import io
import json
import math
from pathlib import Path
from typing import Any

from xmarl.files import atomic_write_bytes, atomic_write_text

#: line colour, style and marker per curve, in order (backends that agree draw on top of each
#: other, so styles and markers keep every line visible)
COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"]
STYLES = ["-", "--", ":", "-."]
MARKERS = ["o", "s", "^", "D", "v", "P", "X"]


def plot_curves(bands: dict[str, dict[str, list[float]]], title: str, path: Path,
                ylabel: str = "greedy evaluation return (per agent)", xlabel: str = "environment steps") -> Path:
    """One line per label (mean over seeds) with its 95% CI band; written as a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, 4.2), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for i, (label, band) in enumerate(bands.items()):
        if not band["steps"]:
            continue
        colour = COLOURS[i % len(COLOURS)]
        ax.plot(band["steps"], band["mean"], color=colour, ls=STYLES[i % len(STYLES)], marker=MARKERS[i % len(MARKERS)],
                ms=4, label=f"{label} (n={band.get('n', '?')})", lw=1.8)
        ax.fill_between(band["steps"], band["lo"], band["hi"], color=colour, alpha=0.2, lw=0)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small", title="mean, 95% bootstrap CI", title_fontsize="small")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return atomic_write_bytes(path, buf.getvalue())


def _f(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{digits}f}"


def _ci(pair: list[float]) -> str:
    return f"[{_f(pair[0])}, {_f(pair[1])}]"


def _sd(mean: float, std: float | None, digits: int = 1) -> str:
    """``mean ± sd``; just the mean when there is no spread to report (one run)."""
    return f"{mean:.{digits}f}" + ("" if std is None or math.isnan(std) else f" ± {std:.{digits}f}")


def markdown(summary: dict[str, Any]) -> str:
    """The report as Markdown, from the dict written to ``summary.json``."""
    s = summary
    seeds = s["seeds"]
    lines = [f"# xmarl compare: {', '.join(s['methods'])} on {', '.join(s['envs'])}", ""]
    lines += [
        f"Backends {', '.join(s['backends'])} × {len(seeds)} seeds ({', '.join(map(str, seeds))}); "
        f"{s['steps']} environment steps per run.",
        "",
        "- Executed: " + "; ".join(f"{how} ({n} runs)" for how, n in s["execution"].items()) + ".",
        f"- Versions: {', '.join(f'{k} {v}' for k, v in s['versions'].items())}.",
        f"- Reproduce: `{s['command']}`",
        "- Final return: the greedy evaluation return (per agent) at the last step of each run. "
        f"Intervals are {int(100 * s['confidence'])}% percentile bootstrap CIs over seeds; "
        "IQM is the interquartile mean (middle 50% of seeds).",
        "",
    ]
    for task in s["tasks"]:
        lines += [f"## {task['method']} on {task['env']}", "",
                  "| backend | runs | mean final return | 95% CI | IQM | 95% CI |", "|---|---:|---:|---|---:|---|"]
        for b, d in task["final_return"].items():
            lines.append(f"| {b} | {d['n']} | {_f(d['mean'])} | {_ci(d['mean_ci'])} | {_f(d['iqm'])} | "
                         f"{_ci(d['iqm_ci'])} |")
        evals = task.get("eval") or {}
        if evals:  # per-group returns, episode length and the env's success measures at the last evaluation
            lines += ["", "| final evaluation (mean ± sd over seeds) | " + " | ".join(task["final_return"]) + " |",
                      "|---|" + "---:|" * len(task["final_return"])]
            for k, per in evals.items():
                lines.append(f"| {k.removeprefix('eval_')} | "
                             + " | ".join(_sd(per[b]["mean"], per[b]["std"], 3) if b in per else "-"
                                          for b in task["final_return"]) + " |")
        test = task["test"]
        lines += ["", f"**Verdict:** {test['verdict']}.", ""]
        pairs = [q for q in test.get("pairwise", [])]
        if pairs:
            lines += ["Pairwise Welch's t-tests on final return (p Holm-adjusted):", "",
                      "| pair | mean difference | t | p (Holm) |", "|---|---:|---:|---:|"]
            for q in pairs:
                lines.append(f"| {q['a']} − {q['b']} | {_f(q['mean_diff'])} | {_f(q['t'], 2)} | "
                             f"{_f(q['pvalue_holm'], 4)} |")
            lines.append("")
        improvement = task.get("improvement") or []
        if improvement:
            lines += ["Probability of improvement: the chance that a run of the first backend ends above a run of the "
                      "second (ties count half; 0.5: neither tends to be better), with its 95% bootstrap CI:", "",
                      "| pair | P(first > second) | 95% CI |", "|---|---:|---|"]
            lines += [f"| {q['a']} > {q['b']} | {_f(q['p'])} | {_ci(q['ci'])} |" for q in improvement]
            lines.append("")
        if task.get("profile_figure"):
            lines += [f"![performance profiles: {task['method']} on {task['env']}]({task['profile_figure']})", "",
                      "Performance profile: the fraction of each backend's runs whose final return is above each "
                      "threshold, with 95% bootstrap bands; a backend whose profile lies above another's does better "
                      "at every level.", ""]
        lines += [f"![learning curves: {task['method']} on {task['env']}]({task['figure']})", "",
                  "| backend | wall-clock s per run (mean ± sd) | env-steps/s (mean ± sd) |", "|---|---:|---:|"]
        for b, t in task["throughput"].items():
            lines.append(f"| {b} | {_sd(t['wall_time'], t['wall_time_sd'])} | "
                         f"{_sd(t['steps_per_sec'], t['steps_per_sec_sd'], 0)} |")
        lines += ["", "Parallel runs shared the machine (see Executed above), so throughput compares the backends "
                  "of this report with each other, not with runs made alone; a run resumed from a checkpoint "
                  "counts only the time after resuming.", ""]
    lines += ["## Runs", "", "| method | env | backend | seed | final return | wall-clock s | env-steps/s | folder |",
              "|---|---|---|---:|---:|---:|---:|---|"]
    for r in s["runs"]:
        lines.append(f"| {r['method']} | {r['env']} | {r['backend']} | {r['seed']} | {_f(r['final_return'])} | "
                     f"{r['wall_time']:.1f} | {r['steps_per_sec']:.0f} | [{r['name']}]({r['folder']}/) |")
    lines += ["", "Per-run metrics: `metrics.jsonl`, `result.json` and `config.yaml` in each run folder; "
              "all numbers of this report: `summary.json`, `runs.csv`.", ""]
    return "\n".join(lines)


def write_runs_csv(runs: list[dict[str, Any]], path: Path) -> Path:
    extra = list(dict.fromkeys(k for r in runs for k in r.get("eval", {})))  # per group, length, success measures
    cols = ["method", "env", "backend", "seed", "final_return", "train_return", "steps", "updates", "wall_time",
            "steps_per_sec", *extra, "folder"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in runs:
        w.writerow({**r, **r.get("eval", {})})
    return atomic_write_text(path, buf.getvalue())


def write_summary(summary: dict[str, Any], path: Path) -> Path:
    return atomic_write_text(path, json.dumps(summary, indent=1, allow_nan=True))


HTML_STYLE = ("body{font-family:system-ui,sans-serif;max-width:70em;margin:2em auto;padding:0 1em;line-height:1.45}"
              "table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:.25em .6em}"
              "td{text-align:right}td:first-child,th:first-child{text-align:left}img{max-width:100%}"
              "code{background:#f4f4f4;padding:0 .2em}")


def write_html(md_path: Path, title: str) -> Path:
    """``report.html`` beside ``report.md``: the same text, tables and figures, rendered with
    markdown-it (CommonMark plus tables), in one self-contained page."""
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark").enable("table").render(Path(md_path).read_text())
    page = (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{HTML_STYLE}</style></head>\n<body>\n{body}</body></html>\n")
    return atomic_write_text(Path(md_path).with_suffix(".html"), page)


def run_report(run_dir: Path) -> Path:
    """``report.md`` / ``report.html`` of one run folder from its saved files (no training): the
    learning curve of the greedy evaluation return (and each group's), the last evaluation's
    numbers, and where the time went."""
    run_dir = Path(run_dir)
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines() if x.strip()]
    evals = [r for r in rows if "eval_return" in r]
    result = json.loads((run_dir / "result.json").read_text()) if (run_dir / "result.json").is_file() else {}
    final = result.get("final_metrics", {})
    keys = ["eval_return"] + sorted({k for r in evals for k in r if k.startswith("eval_return/")})
    bands = {k.removeprefix("eval_return/") if "/" in k else "all agents":
             {"steps": [r["step"] for r in evals if k in r], "mean": [r[k] for r in evals if k in r],
              "lo": [r[k] for r in evals if k in r], "hi": [r[k] for r in evals if k in r], "n": 1} for k in keys}
    plot_curves(bands, f"{run_dir.name}: greedy evaluation return", run_dir / "curve.png",
                ylabel="greedy evaluation return (per agent)")
    last = evals[-1] if evals else {}
    lines = [f"# xmarl run {run_dir.name}", "",
             ("Finished" if result else "Not finished (no result.json)") + f": {_f(final.get('steps'), 0)} env steps, "
             f"{_f(final.get('updates'), 0)} updates, {_f(final.get('wall_time'), 0)} s "
             f"({_f(final.get('steps_per_sec'), 0)} env-steps/s).", "",
             "![greedy evaluation return](curve.png)", "",
             f"## Last evaluation (step {last.get('step', '-')})", "", "| metric | value |", "|---|---:|"]
    lines += [f"| {k} | {_f(v)} |" for k, v in last.items() if k != "step" and isinstance(v, (int, float))]
    times = {k.removeprefix("time_"): v for k, v in final.items() if k.startswith("time_")}
    if times:
        total = sum(times.values()) or 1.0
        lines += ["", "## Where the time went", "", "| phase | seconds | share |", "|---|---:|---:|"]
        lines += [f"| {k} | {v:.1f} | {100 * v / total:.0f}% |" for k, v in times.items()]
    path = atomic_write_text(run_dir / "report.md", "\n".join(lines) + "\n")
    write_html(path, f"xmarl run {run_dir.name}")
    return path


def marl_eval(summary: dict[str, Any]) -> dict[str, Any]:
    """The compare's runs in the JSON layout of the standard MARL evaluation protocol (Gorsane et
    al. 2022; InstaDeep's ``marl-eval`` reads it): ``{env: {task: {algorithm: {run: {step_k:
    {step_count, return: [...]}, ..., absolute_metrics: {return: [...]}}}}}}``. The env is the
    name's family (``mpe`` of ``mpe/simple_spread_v3``), the task the rest, the algorithm
    ``<method>_<backend>``, the run ``seed_<seed>``; each evaluation is one step entry (its greedy
    return per agent, the mean over its episodes) and the final evaluation is the absolute metric."""
    out: dict[str, Any] = {}
    for r in summary["runs"]:
        family, _, task = r["env"].partition("/")
        steps = {f"step_{k}": {"step_count": int(step), "return": [float(value)]}
                 for k, (step, value) in enumerate(r.get("curve", []))}
        steps["absolute_metrics"] = {"return": [float(r["final_return"])]}
        out.setdefault(family, {}).setdefault(task or family, {}).setdefault(
            f"{r['method']}_{r['backend']}", {})[f"seed_{r['seed']}"] = steps
    return out


def write_marl_eval(summary: dict[str, Any], path: Path) -> Path:
    return atomic_write_text(path, json.dumps(marl_eval(summary), indent=1))
