"""Command line: ``xmarl run | list | render | parity | compare | report | tune | docs-schema``."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import traceback
from typing import Any

from xmarl.errors import XmarlError, choices, debug_enabled, did_you_mean, one_line, os_error_message


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the traceback of an error (also XMARL_DEBUG=1)")
    common.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="let the frameworks print their own log lines (also XMARL_VERBOSE=1)")
    p = argparse.ArgumentParser(prog="xmarl", description="Multi-agent RL in torch, TensorFlow and MindSpore.",
                                parents=[common])
    sub = p.add_subparsers(dest="command", required=True)
    _add = sub.add_parser

    def add_parser(name: str, **kw: Any) -> argparse.ArgumentParser:
        return _add(name, parents=[common], **kw)

    sub.add_parser = add_parser  # type: ignore[method-assign]  # --debug/--verbose after the command too
    r = sub.add_parser("run", help="train a method on an env in a backend")
    r.add_argument("--method", "-m", help="e.g. maddpg")
    r.add_argument("--backend", "-b", help="torch, tensorflow or mindspore")
    r.add_argument("--env", "-e", help="e.g. mpe/simple_spread_v3")
    r.add_argument("--config", "-c", help="a YAML file merged over the shipped configs")
    r.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set train.steps=20000 (repeatable)")
    r.add_argument("--steps", type=int, help="shorthand for --set train.steps=N")
    r.add_argument("--seed", type=int, help="shorthand for --set seed=N")
    r.add_argument("--out-dir", help="folder for run results (default: runs)")
    r.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    r.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its newest checkpoint")
    sub.add_parser("list", help="show methods x backends, installed backends and environments")
    g = sub.add_parser("render", help="render a greedy episode of a checkpoint to a GIF")
    g.add_argument("--checkpoint", required=True, help="a run folder or a checkpoints/step_* folder")
    g.add_argument("--out", default="episode.gif", help="output .gif path (default: episode.gif)")
    g.add_argument("--backend", "-b", help="backend to run the policy in (default: the one that trained it)")
    g.add_argument("--seed", type=int, help="episode seed (default: that of the run's evaluations)")
    _add_parity_and_compare(sub)
    d = sub.add_parser("docs-schema", help="check (or show) the docstring schema shared by every backend")
    d.add_argument("--check", action="store_true",
                   help="compare every registered class's signatures with the schema; exit 1 on any problem")
    d.add_argument("--show", metavar="CLASS", help="print the docstring rendered for CLASS")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one ``xmarl`` command; return its exit status. Errors a user can cause print one line
    (status 2), an interrupt exits 130 (Ctrl-C) or 128 + the signal (SIGTERM: 143) after the
    run's checkpoint, and anything else is a bug: one line asking for a report (status 1)."""
    args = _parser().parse_args(argv)
    flags = {"XMARL_DEBUG": getattr(args, "debug", False), "XMARL_VERBOSE": getattr(args, "verbose", False)}
    saved = {k: os.environ.get(k) for k in flags}
    os.environ.update({k: "1" for k, on in flags.items() if on})  # seen by workers too
    try:
        return _boundary(args)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _boundary(args: argparse.Namespace) -> int:
    try:
        return _command(args)
    except XmarlError as exc:
        return _fail(f"xmarl: error: {one_line(exc)}", 2)
    except KeyboardInterrupt as exc:
        if debug_enabled():
            traceback.print_exc()
        return 128 + int(getattr(exc, "signum", signal.SIGINT))
    except OSError as exc:  # the disk or a path: full, read-only, missing, a file where a folder goes
        return _fail(f"xmarl: error: {os_error_message(exc)}", 2)
    except Exception as exc:
        return _fail(f"xmarl: internal error: {type(exc).__name__}: {one_line(exc)}; rerun with --debug for "
                     "the traceback and report it", 1)


def _fail(message: str, status: int) -> int:
    if debug_enabled():
        traceback.print_exc()
    print(message, file=sys.stderr)
    return status


def _command(args: argparse.Namespace) -> int:
    if args.command == "list":
        from xmarl import registry

        print(registry.table())
        return 0
    if args.command == "docs-schema":
        return _docs_schema(args.check, args.show)
    if args.command == "parity":
        return _parity(args)
    if args.command == "compare":
        return _compare(args)
    if args.command == "report":
        return _report(args.folder)
    if args.command == "tune":
        from xmarl.compare.tune import main_args

        return main_args(args)
    if args.command == "render":
        from xmarl.training.render import render_checkpoint

        out = render_checkpoint(args.checkpoint, args.out, backend=args.backend, seed=args.seed)
        print(f"wrote {out}")
        return 0
    if args.command == "run":
        from xmarl.api import run
        from xmarl.config import parse_overrides

        result = run(args.method, args.backend, args.env, args.config, parse_overrides(args.overrides),
                     steps=args.steps, seed=args.seed, out_dir=args.out_dir,
                     progress=False if args.no_progress else None, resume=args.resume)
        print(result.summary())
        return 0
    return 1


def _docs_schema(check: bool, show: str | None) -> int:
    """``xmarl docs-schema``: one line per disagreement between the code and the schema."""
    from xmarl import docschema

    if show:
        if show not in docschema.classes():
            known = docschema.classes()
            hint = did_you_mean(show, known) + choices(show, known, "xmarl docs-schema")
            raise XmarlError(f"no docstring schema entry '{show}'{hint}")
        print(docschema.render(show), end="")
        return 0
    if not check:
        print("\n".join(sorted(docschema.classes())))
        return 0
    from xmarl.docschema.check import check as run_check

    problems = run_check()
    for line in problems:
        print(line)
    if problems:
        print(f"docs-schema: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"docs-schema: {len(docschema.classes())} classes match the schema")
    return 0


def _add_parity_and_compare(sub: argparse._SubParsersAction) -> None:
    q = sub.add_parser("parity", help="feed the same weights and batches to every backend and compare the numbers")
    q.add_argument("--method", "-m", action="append",
                   help="method (repeatable; default: every method with parity cases)")
    q.add_argument("--backend", "-b", action="append",
                   help="backend, repeatable or comma-separated (default: every installed one; the first is the "
                        "reference)")
    q.add_argument("--case", help="only the cases whose name contains this text, e.g. discrete-shared")
    q.add_argument("--updates", type=int, default=3, help="updates before weights are compared (default: 3)")
    q.add_argument("--seed", type=int, default=0, help="seed of the weights and batches (default: 0)")
    q.add_argument("--atol", type=float, help="absolute tolerance for every case (default: each case's, 1e-5)")
    q.add_argument("--rtol", type=float, help="relative tolerance for every case (default: each case's, 1e-5)")
    q.add_argument("--json", metavar="PATH", help="also write every quantity's differences as JSON")
    c = sub.add_parser("compare", help="run methods x backends x seeds and write a statistical report")
    c.add_argument("--method", "-m", action="append", required=True, help="method (repeatable)")
    c.add_argument("--env", "-e", action="append", help="env (repeatable; default: the method's configured env)")
    c.add_argument("--backend", "-b", action="append",
                   help="backend, repeatable or comma-separated (default: every installed one)")
    c.add_argument("--seeds", default="3", help="number of seeds N (seeds 0..N-1) or a comma list, e.g. 3,7,11 "
                                                "(default: 3)")
    c.add_argument("--steps", type=int, help="shorthand for --set train.steps=N")
    c.add_argument("--config", "-c", help="a YAML file merged over the shipped configs of every run")
    c.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key of every run (repeatable)")
    c.add_argument("--out-dir", help="report folder (default: compare/<methods>-<envs>); finished runs in it are "
                                     "reused")
    c.add_argument("--executor", default="local", help="local (process pool, default) or ray")
    c.add_argument("--workers", type=int, help="parallel runs (default: cores / threads)")
    c.add_argument("--address", help="Ray cluster address for --executor ray (default: start a local Ray)")
    c.add_argument("--threads", type=int, default=1, help="framework threads per run (default: 1)")
    c.add_argument("--no-progress", action="store_true", help="print nothing while runs finish")
    rp = sub.add_parser("report", help="write a compare's or a run's report again from its saved files")
    rp.add_argument("folder", help="the out_dir of an xmarl compare, or a run folder")
    t = sub.add_parser("tune", help="hyperparameter search on Ray Tune with early stopping (ASHA)")
    t.add_argument("--method", "-m", required=True, help="e.g. maddpg")
    t.add_argument("--backend", "-b", default="torch", help="torch, tensorflow or mindspore (default: torch)")
    t.add_argument("--env", "-e", help="env (default: the method's configured env)")
    t.add_argument("--space", "-s", required=True, help="a YAML search space: config keys to samplers or lists")
    t.add_argument("--samples", type=int, default=1, help="draws of the samplers, each crossed with every grid")
    t.add_argument("--steps", type=int, help="env steps per trial (train.steps)")
    t.add_argument("--grace", type=int, help="env steps before ASHA may stop a trial (default: a quarter)")
    t.add_argument("--reduction", type=float, default=2.0, help="ASHA's reduction factor (default: 2)")
    t.add_argument("--config", "-c", help="a YAML file merged over the shipped config of every trial")
    t.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key of every trial (repeatable)")
    t.add_argument("--out-dir", help="search folder (default: tune/<method>-<env>-<backend>); the same folder "
                                     "again resumes the search")
    t.add_argument("--address", help="Ray cluster address (default: an embedded local Ray)")
    t.add_argument("--workers", type=int, help="trials at once (default: as many as the CPUs allow)")
    t.add_argument("--threads", type=int, default=1, help="framework threads per trial (default: 1)")
    t.add_argument("--no-progress", action="store_true", help="print nothing while trials run")


def _split(values: list[str] | None) -> list[str] | None:
    return None if not values else [v.strip() for item in values for v in item.split(",") if v.strip()]


def _parity(args: argparse.Namespace) -> int:
    """``xmarl parity``: the grouped table, a PASS/FAIL line; exit status 1 on failure."""
    from xmarl.compare.parity import parity

    report = parity(args.method, _split(args.backend), case=args.case, updates=args.updates, seed=args.seed,
                    atol=args.atol, rtol=args.rtol, out=args.json)
    print(report.table())
    print(report.summary())
    return 0 if report.ok else 1


def _compare(args: argparse.Namespace) -> int:
    """``xmarl compare``: the summary table and the report's path."""
    from xmarl.compare.runner import compare
    from xmarl.config import parse_overrides
    from xmarl.errors import ConfigError

    try:
        seeds: int | list[int] = [int(s) for s in args.seeds.split(",") if s.strip()] if "," in args.seeds \
            else int(args.seeds)
    except ValueError:
        raise ConfigError(f"--seeds {args.seeds}: pass a number of seeds or a comma list such as 0,1,2") from None
    result = compare(args.method, _split(args.backend), args.env, seeds, args.steps, parse_overrides(args.overrides),
                     config=args.config, out_dir=args.out_dir, executor=args.executor, workers=args.workers,
                     address=args.address, threads=args.threads, progress=not args.no_progress)
    print(result.summary_text())
    return 0


def _report(folder: str) -> int:
    """``xmarl report``: a compare folder's report, or a run folder's, made again without training."""
    from pathlib import Path

    from xmarl.compare.report import run_report
    from xmarl.compare.runner import rewrite_report

    path = Path(folder)
    if (path / "compare.json").is_file():
        result = rewrite_report(path)
        print(result.table())
        print(f"report: {result.report} (and {result.report.with_suffix('.html').name})")
        return 0
    if (path / "metrics.jsonl").is_file():
        report = run_report(path)
        print(f"report: {report} (and {report.with_suffix('.html').name})")
        return 0
    raise XmarlError(f"'{folder}' is neither a compare folder (compare.json) nor a run folder (metrics.jsonl); "
                     "pass one of those")


if __name__ == "__main__":
    sys.exit(main())
