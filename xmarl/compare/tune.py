"""``xmarl tune``: hyperparameter search on Ray Tune over a YAML space of config keys, with early
stopping (ASHA) on the greedy evaluation return.

The search space maps dotted config keys to a sampler (or a list, a grid)::

    maddpg.lr_actor: {loguniform: [1.0e-4, 1.0e-2]}
    maddpg.batch_size: [256, 1024]                 # a grid: every value, crossed with the others
    maddpg.hidden_sizes: {choice: [[64, 64], [128, 128]]}
    maddpg.tau: {uniform: [0.005, 0.05]}
    maddpg.update_every: {randint: [50, 200]}      # lower inclusive, upper exclusive

Every trial is an ``xmarl.run`` of the method, env and backend with the shared overrides and the
trial's values, in its own run folder (``<out_dir>/runs/<trial>``), reporting its evaluation
return to Tune after each evaluation. ASHA (asynchronous successive halving) stops the trials
that trail at each rung (``grace`` env steps, then ``reduction`` times more, up to
``train.steps``). Tune runs on an embedded local Ray by default, or on the cluster at
``address``; each trial asks for ``threads`` CPUs (and a GPU when ``device`` names one).

Resuming: running the same tune again (same ``out_dir``) restores the Tune experiment: finished
trials are kept, and unfinished ones continue from their run's newest checkpoint, so their
metrics are those of an uninterrupted trial. The report (``report.md``, ``trials.csv``,
``summary.json``, ``curves.png``) is written once the search ends, in the layout of
``xmarl compare``'s: the setup, the trial table (sorted by final return), the best trial's
overrides and every trial's learning curve.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from xmarl.config import load_config, save_config
from xmarl.core.device import parse_device
from xmarl.errors import ConfigError, XmarlError, did_you_mean
from xmarl.files import atomic_write_text

#: the samplers a search space may name, and the Ray Tune function each becomes
SAMPLERS = ("choice", "grid", "uniform", "loguniform", "randint")
METRIC = "eval_return"


@dataclass
class TuneResult:
    """What a finished search leaves: its folder, every trial, the best one."""

    root: Path
    report: Path
    trials: list[dict[str, Any]]
    best: dict[str, Any]


def load_space(path: str | os.PathLike[str]) -> dict[str, dict[str, list[Any]]]:
    """The search space in ``path`` as ``{dotted key: {sampler: values}}``; a one-line
    :class:`ConfigError` for a space that is not a mapping of keys to samplers."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"search space '{path}' cannot be read: {type(exc).__name__}") from None
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"search space '{path}' must map config keys to samplers, e.g. "
                          "'maddpg.lr_actor: {loguniform: [1.0e-4, 1.0e-2]}'")
    space: dict[str, dict[str, list[Any]]] = {}
    for key, spec in data.items():
        if isinstance(spec, list):
            spec = {"grid": spec}
        if not isinstance(spec, dict) or len(spec) != 1:
            raise ConfigError(f"search space key '{key}': give one sampler ({', '.join(SAMPLERS)}) or a list")
        (sampler, values), = spec.items()
        if sampler not in SAMPLERS:
            raise ConfigError(f"search space key '{key}': unknown sampler '{sampler}'"
                              f"{did_you_mean(str(sampler), SAMPLERS)} (valid: {', '.join(SAMPLERS)})")
        if not isinstance(values, list) or not values or sampler not in ("choice", "grid") and len(values) != 2:
            raise ConfigError(f"search space key '{key}': {sampler} takes "
                              f"{'a list of values' if sampler in ('choice', 'grid') else '[low, high]'}")
        space[str(key)] = {sampler: values}
    return space


def _domain(spec: dict[str, list[Any]]) -> Any:
    from ray import tune

    (sampler, values), = spec.items()
    if sampler == "grid":
        return tune.grid_search(values)
    if sampler == "choice":
        return tune.choice(values)
    return getattr(tune, sampler)(*values)


def _corners(space: dict[str, dict[str, list[Any]]]) -> list[dict[str, Any]]:
    """Values of every key to validate the space with: each listed value, or each bound."""
    return [{k: v} for k, spec in space.items() for v in next(iter(spec.values()))]


def _trial(params: dict[str, Any]) -> None:
    """One trial (runs in a Ray worker): an xmarl run with the trial's overrides, reporting each
    evaluation to Tune; continues its run folder's newest checkpoint when it has one."""
    from ray import tune

    from xmarl.compare.runner import _limit_threads
    from xmarl.training.checkpoint import CHECKPOINTS
    from xmarl.training.trainer import Trainer

    _limit_threads(params["threads"])
    name = f"trial_{tune.get_context().get_trial_id()}"
    run_dir = Path(params["runs_dir"]) / name
    overrides = {**params["overrides"], **params["values"], "out_dir": params["runs_dir"], "name": name,
                 "train.progress": False}
    cfg = load_config(params["method"], params["env"], params["backend"], params["config"], overrides)

    def report(step: int, metrics: dict[str, float]) -> None:
        if step < cfg.train.steps:  # the last one is reported once the run has written its result
            tune.report({"step": step, METRIC: metrics[METRIC]})

    resumable = (run_dir / CHECKPOINTS / "latest").is_file() and not (run_dir / "result.json").is_file()
    result = Trainer(cfg, resume=run_dir if resumable else None, on_evaluation=report).train()
    tune.report({"step": int(result.final_metrics["steps"]), METRIC: result.final_metrics[METRIC]})


def tune(method: str, backend: str, env: str | None, space: str | os.PathLike[str], *, samples: int = 1,
         steps: int | None = None, overrides: dict[str, Any] | None = None, config: str | None = None,
         out_dir: str | os.PathLike[str] | None = None, address: str | None = None, workers: int | None = None,
         threads: int = 1, grace: int | None = None, reduction: float = 2.0, seed: int = 0,
         progress: bool = True) -> TuneResult:
    """Search ``space`` (a YAML file, see the module docstring) for ``method`` in ``backend`` on
    ``env``: ``samples`` draws of the samplers (each crossed with every grid), each trial trained
    for ``steps`` (``train.steps``) env steps with ``overrides``, ASHA stopping trials from
    ``grace`` steps on (default: a quarter of the steps). Returns a :class:`TuneResult`."""
    try:
        import ray
        from ray import tune as rtune
        from ray.tune.schedulers import ASHAScheduler
    except ImportError:
        raise XmarlError("xmarl tune needs ray[tune], which is not installed: pip install 'xmarl[ray]'") from None
    shared = dict(overrides or {})
    if steps is not None:
        shared["train.steps"] = steps
    shared.setdefault("seed", seed)
    shared.setdefault("train.threads", threads)
    base = load_config(method, env, backend, config, shared)  # a bad key or value fails here, before any file
    grid = load_space(space)
    for values in _corners(grid):
        load_config(method, base.env, backend, config, {**shared, **values})
    if samples < 1:
        raise ConfigError(f"samples={samples}: pass a number of draws >= 1")
    max_t = base.train.steps
    grace = grace or max(base.train.eval_interval, max_t // 4)
    if not 0 < grace <= max_t:
        raise ConfigError(f"grace={grace}: pass a number of env steps between 1 and train.steps ({max_t})")
    root = Path(out_dir or Path("tune") / f"{method}-{base.env.replace('/', '_')}-{backend}").resolve()
    runs_dir = root / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    save_config(base, root / "base_config.yaml")
    atomic_write_text(root / "space.yaml", yaml.safe_dump(grid, sort_keys=False))
    started = False
    if not ray.is_initialized():
        quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
        if address:
            ray.init(address=address, **quiet)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, **quiet)
        started = True
    gpus = int(parse_device(base.device).kind == "gpu")
    trainable = rtune.with_resources(_trial, {"cpu": base.train.threads, "gpu": gpus})
    params = {"method": method, "backend": backend, "env": base.env, "config": config, "overrides": shared,
              "runs_dir": str(runs_dir), "threads": base.train.threads,
              "values": {k: _domain(v) for k, v in grid.items()}}
    experiment = str(root / "ray")
    t0 = time.perf_counter()
    try:
        if rtune.Tuner.can_restore(os.path.join(experiment, "search")):
            tuner = rtune.Tuner.restore(os.path.join(experiment, "search"), trainable, resume_unfinished=True,
                                        resume_errored=True)
        else:
            asha = ASHAScheduler(time_attr="step", metric=METRIC, mode="max", max_t=max_t, grace_period=grace,
                                 reduction_factor=reduction)
            tuner = rtune.Tuner(trainable, param_space=params,
                                tune_config=rtune.TuneConfig(scheduler=asha, num_samples=samples,
                                                             max_concurrent_trials=workers),
                                run_config=rtune.RunConfig(name="search", storage_path=experiment,
                                                           verbose=1 if progress else 0))
        grid_result = tuner.fit()
    finally:
        if started:
            ray.shutdown()
    trials = [_trial_row(r, runs_dir, max_t) for r in grid_result]
    errors = [t for t in trials if t["error"]]
    if errors:
        raise XmarlError(f"{len(errors)} trial(s) failed, e.g. {errors[0]['trial']}: {errors[0]['error']}; fix it and "
                         "run the same tune again to continue")
    trials.sort(key=lambda t: -t["final_return"])
    summary = {"method": method, "backend": backend, "env": base.env, "space": grid, "samples": samples,
               "overrides": shared, "steps": max_t, "grace": grace, "reduction": reduction,
               "address": address, "wall_s": time.perf_counter() - t0, "trials": trials, "best": trials[0]}
    report = write_report(root, summary, runs_dir)
    if progress:
        print(f"xmarl tune: best of {len(trials)} trials {trials[0]['trial']}: {trials[0]['final_return']:.3f} with "
              f"{trials[0]['values']}; report: {report}", file=sys.stderr)
    return TuneResult(root, report, trials, trials[0])


def _trial_row(result: Any, runs_dir: Path, max_t: int) -> dict[str, Any]:
    """One trial's row: its values, the last evaluation it reached and whether ASHA stopped it."""
    trial_id = (result.metrics or {}).get("trial_id")
    if trial_id is None:  # a trial that never reported: its id is in the name of Tune's folder for it
        trial_id = next((f.name[len("trial_"):] for f in runs_dir.glob("trial_*")
                         if f.name[len("trial_"):] in Path(result.path).name), Path(result.path).name)
    name = f"trial_{trial_id}"
    folder = runs_dir / name
    evals = _curve(folder)
    values = dict(result.config.get("values", {})) if result.config else {}
    last = evals[-1] if evals else (0, float("nan"))
    return {"trial": name, "values": values, "steps": last[0], "final_return": last[1],
            "stopped_early": bool(evals) and last[0] < max_t, "curve": evals,
            "error": None if result.error is None else str(result.error).strip().splitlines()[-1][:300]}


def _curve(folder: Path) -> list[tuple[int, float]]:
    path = folder / "metrics.jsonl"
    if not path.is_file():
        return []
    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    return [(int(r["step"]), float(r[METRIC])) for r in rows if METRIC in r]


def write_report(root: Path, summary: dict[str, Any], runs_dir: Path) -> Path:
    """``report.md``, ``trials.csv``, ``summary.json`` and ``curves.png`` of a finished search."""
    from xmarl.compare.report import plot_curves, write_runs_csv, write_summary

    trials = summary["trials"]
    keys = list(summary["space"])
    bands = {f"{t['trial']}: " + ", ".join(f"{k.split('.')[-1]}={t['values'].get(k)}" for k in keys):
             {"steps": [s for s, _ in t["curve"]], "mean": [v for _, v in t["curve"]],
              "lo": [v for _, v in t["curve"]], "hi": [v for _, v in t["curve"]], "n": 1} for t in trials}
    plot_curves(bands, f"xmarl tune: {summary['method']} ({summary['backend']}) on {summary['env']}",
                root / "curves.png")
    write_runs_csv([{"trial": t["trial"], **{k: t["values"].get(k) for k in keys}, "steps": t["steps"],
                     "final_return": t["final_return"], "stopped_early": t["stopped_early"]} for t in trials],
                   root / "trials.csv")
    write_summary({k: v for k, v in summary.items() if k != "trials"} | {"trials": [
        {k: v for k, v in t.items() if k != "curve"} for t in trials]}, root / "summary.json")
    space = "; ".join(f"`{k}`: {next(iter(v))} {next(iter(v.values()))}" for k, v in summary["space"].items())
    lines = [f"# xmarl tune: {summary['method']} ({summary['backend']}) on {summary['env']}", "",
             f"Search space: {space}; {summary['samples']} draw(s) of the samplers, crossed with every grid: "
             f"{len(trials)} trials. Each trial: `xmarl.run` with overrides `{summary['overrides']}` and the trial's "
             f"values, {summary['steps']} env steps at most.",
             f"Early stopping: ASHA on the greedy evaluation return ({METRIC}), from {summary['grace']} env steps, "
             f"reduction factor {summary['reduction']}. Ray: "
             f"{summary['address'] or 'an embedded local Ray'}; {summary['wall_s']:.0f} s in all.", "",
             "| trial | " + " | ".join(f"`{k}`" for k in keys) + " | env steps | final return | stopped early |",
             "|---|" + "---|" * len(keys) + "---:|---:|---|"]
    for t in trials:
        lines.append(f"| {t['trial']} | " + " | ".join(str(t["values"].get(k)) for k in keys)
                     + f" | {t['steps']} | {t['final_return']:.3f} | {'yes' if t['stopped_early'] else 'no'} |")
    best = summary["best"]
    lines += ["", f"Best: **{best['trial']}**, final return {best['final_return']:.3f}, with "
              + ", ".join(f"`--set {k}={json.dumps(v)}`" for k, v in best["values"].items()) + ".", "",
              "![every trial's greedy evaluation return](curves.png)", "",
              f"Files: `summary.json`, `trials.csv`, each trial's run folder in `{runs_dir.name}/`, Tune's own in "
              "`ray/`.", ""]
    return atomic_write_text(root / "report.md", "\n".join(lines))


def main_args(args: Any) -> int:
    """``xmarl tune`` from parsed CLI arguments."""
    from xmarl.config import parse_overrides

    tune(args.method, args.backend, args.env, args.space, samples=args.samples, steps=args.steps,
         overrides=parse_overrides(args.overrides), config=args.config, out_dir=args.out_dir, address=args.address,
         workers=args.workers, threads=args.threads, grace=args.grace, reduction=args.reduction,
         progress=not args.no_progress)
    return 0


__all__ = ["tune", "load_space", "TuneResult", "write_report", "SAMPLERS"]
