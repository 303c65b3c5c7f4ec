"""The cost of a method in xmarl, measured: lines of code (no blank lines, comments or
docstrings) of one method per backend (its learner file and its network classes) and in the
core (its core module, its config section and its registration), with its verification code
(numpy reference and parity cases) and its tests beside.

BiCNet (the first method written on the method contract) is counted in the working tree, COMA
both as it is now and at the commit before the architecture change (``--before``, default
b428fb4, the parent of 0635056 "One method contract, backend primitives written once"), so the
counting rule can be checked against the issue's figures for COMA before the redesign (torch
122, TF 165, MS 169 lines learner + networks; core/coma.py 189).

What counts as a method's code in a shared file: the top-level classes and functions it
defines there (by name), each from its first line (decorators included) to its last. Shared
representations a method reuses (MLP, GRU) are not counted for it; the BiCNet representation,
written for BiCNet, is.

    python benchmarks/method_cost.py                       # prints the table
    python benchmarks/method_cost.py --out benchmarks/results/method_cost.md
"""

from __future__ import annotations

import argparse
import ast
import io
import subprocess
import sys
import tokenize
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ("torch", "tensorflow", "mindspore")

#: per method: files counted whole, and (file, top-level names) counted by definition
BICNET = {
    "backend": lambda b: [(f"xmarl/backends/{b}/learners/bicnet.py", None),
                          (f"xmarl/backends/{b}/policies.py", ("_BiCNetNet", "BiCNetActor", "BiCNetCritic")),
                          (f"xmarl/backends/{b}/representations.py", ("BiCNet", "_sweep"))],
    "core": [("xmarl/core/bicnet.py", None), ("xmarl/core/config.py", ("BiCNetConfig",)),
             ("xmarl/core/methods.py", ("registry.add:bicnet",))],
    "verification": [("xmarl/compare/reference/bicnet.py", None)],
    "tests": [("tests/test_bicnet.py", None)],
}
COMA = {
    "backend": lambda b: [(f"xmarl/backends/{b}/learners/coma.py", None),
                          (f"xmarl/backends/{b}/policies.py", ("COMAActor", "COMACritic"))],
    "core": [("xmarl/core/coma.py", None), ("xmarl/core/config.py", ("COMAConfig",)),
             ("xmarl/core/methods.py", ("registry.add:coma",))],
    "verification": [("xmarl/compare/reference/coma.py", None)],
    "tests": [("tests/test_coma.py", None)],
}


def source(path: str, rev: str | None) -> str | None:
    """The file's text in the working tree, or at git revision ``rev`` (None when absent)."""
    if rev is None:
        p = ROOT / path
        return p.read_text() if p.is_file() else None
    done = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:{path}"], capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else None


def docstring_lines(tree: ast.AST) -> set[int]:
    """Line numbers of every module, class and function docstring."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                out.update(range(first.lineno, first.end_lineno + 1))
    return out


def code_lines(text: str) -> set[int]:
    """Line numbers holding code: some token other than comments and line ends, docstrings
    left out (a multi-line token, e.g. a string that is not a docstring, counts every line)."""
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
            tokenize.ENCODING, tokenize.ENDMARKER}
    lines: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type not in skip:
            lines.update(range(tok.start[0], tok.end[0] + 1))
    return lines - docstring_lines(ast.parse(text))


def spans(tree: ast.Module, names: Iterable[str]) -> list[tuple[int, int]]:
    """Line spans of the named top-level definitions; ``registry.add:<name>`` is the top-level
    ``registry.add("method", "<name>", ...)`` statement."""
    wanted, out = set(names), []
    for node in tree.body:
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and node.name in wanted:
            out.append((start, node.end_lineno))
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            call = node.value
            if ast.unparse(call.func) == "registry.add" and len(call.args) > 1 \
                    and isinstance(call.args[1], ast.Constant) and f"registry.add:{call.args[1].value}" in wanted:
                out.append((start, node.end_lineno))
    return out


def count(path: str, names: tuple[str, ...] | None, rev: str | None) -> int | None:
    """Code lines of a file, or of the named definitions in it (None: the file is absent)."""
    text = source(path, rev)
    if text is None:
        return None
    lines = code_lines(text)
    if names is None:
        return len(lines)
    keep = set()
    for a, b in spans(ast.parse(text), names):
        keep.update(range(a, b + 1))
    return len(lines & keep)


def total(entries: list[tuple[str, tuple[str, ...] | None]], rev: str | None) -> tuple[int, list[str]]:
    n, parts = 0, []
    for path, names in entries:
        c = count(path, names, rev)
        if c is None:
            continue
        n += c
        what = path if names is None else f"{path} ({', '.join(names)})"
        parts.append(f"{what}: {c}")
    return n, parts


NOTES = [
    "The rule reproduces the issue's figures for COMA before the redesign exactly (torch 122, TF 165, MS 169 "
    "learner + networks; core/coma.py 189). Before the redesign COMA's config section lived in xmarl/config and "
    "its parity cases and numpy references inside core/coma.py, so its core column there holds verification code too.",
    "",
    "BiCNet reuses, uncounted: MADDPG's method core (batch preparation with the Gumbel noise, exploration, stored "
    "actions, alive-mask defaults; BiCNetCore subclasses MADDPGCore), MADDPG's learner in each backend (critic step, "
    "actor step through the new critic, soft targets, gradients for parity, the Gumbel-softmax/tanh action and the "
    "masked means; BiCNetLearner subclasses MADDPGLearner, and in MindSpore builds MADDPG's _UpdateStep, _Gradients "
    "and _Action cells around its own loss cells), the shared MLP and GRU representations, Adam and LearnerBase. "
    "What is counted is what BiCNet had to write: its representation (the agent-axis recurrence with alive masks), "
    "its two networks, its losses and its core (layouts, init, alive masks in acting, the recurrence-first order).",
]


def table(before: str) -> str:
    rows, detail = [], []
    for label, spec, rev in (("BiCNet (now)", BICNET, None), ("COMA (now)", COMA, None),
                             (f"COMA (before the redesign, {before})", COMA, before)):
        cells = []
        for b in BACKENDS:
            n, parts = total(spec["backend"](b), rev)
            cells.append(n)
            detail.append(f"- {label}, {b}: " + "; ".join(parts))
        core, parts = total(spec["core"], rev)
        detail.append(f"- {label}, core: " + "; ".join(parts))
        ver, parts_v = total(spec["verification"], rev)
        tests, parts_t = total(spec["tests"], rev)
        detail.append(f"- {label}, verification and tests: " + "; ".join(parts_v + parts_t))
        rows.append(f"| {label} | {cells[0]} | {cells[1]} | {cells[2]} | {sum(cells)} | {core} | "
                    f"{ver if parts_v else '-'} | {tests if parts_t else '-'} |")
    head = ["| method | torch | tensorflow | mindspore | three backends | core | numpy reference + parity cases "
            "| tests |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    return "\n".join(["# The cost of a method", "", "Command: `python benchmarks/method_cost.py --out "
                      "benchmarks/results/method_cost.md`. Code lines: no blank lines, comments or docstrings.",
                      "", *head, *rows, "", *NOTES, "", "What was counted (code lines per file or definition):", "",
                      *detail])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", default="b428fb4", help="git revision of COMA before the architecture change")
    ap.add_argument("--out", help="also write the table as Markdown to this file")
    args = ap.parse_args(argv)
    text = table(args.before)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
