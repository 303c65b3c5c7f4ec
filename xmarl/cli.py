"""Command line: ``xmarl run | list | render``."""

from __future__ import annotations

import argparse
import sys

from xmarl.errors import XmarlError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="xmarl", description="Multi-agent RL in torch, TensorFlow and MindSpore.")
    sub = p.add_subparsers(dest="command", required=True)
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
    d = sub.add_parser("docs-schema", help="check (or show) the docstring schema shared by every backend")
    d.add_argument("--check", action="store_true",
                   help="compare every registered class's signatures with the schema; exit 1 on any problem")
    d.add_argument("--show", metavar="CLASS", help="print the docstring rendered for CLASS")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "list":
            from xmarl import registry

            print(registry.table())
            return 0
        if args.command == "docs-schema":
            return _docs_schema(args.check, args.show)
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
    except XmarlError as exc:
        print(f"xmarl: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 1


def _docs_schema(check: bool, show: str | None) -> int:
    """``xmarl docs-schema``: one line per disagreement between the code and the schema."""
    from xmarl import docschema

    if show:
        if show not in docschema.classes():
            print(f"xmarl: error: no docstring schema entry '{show}' (known: {', '.join(sorted(docschema.classes()))})",
                  file=sys.stderr)
            return 2
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


if __name__ == "__main__":
    sys.exit(main())
