"""Rendering a schema entry as a numpy-style docstring (what Sphinx's napoleon reads)."""

from __future__ import annotations

import textwrap
from functools import cache

from xmarl.docschema.schema import (
    BACKEND_TITLES,
    FORWARD_HOOKS,
    REQUIRED,
    Method,
    Param,
    Schema,
    all_methods,
    class_entry,
    load,
)


def forward_note(backends: list[str] | None) -> str:
    """Which framework method a ``__call__`` entry stands for."""
    hooks = ", ".join(f"``{hook}`` in {BACKEND_TITLES[b]}" for b, hook in FORWARD_HOOKS.items()
                      if not backends or b in backends)
    return f"Runs as {hooks}; call the module itself, ``net(...)``."


def only(backends: list[str] | None) -> str:
    """``"TensorFlow only. "`` style prefix for members that some backends lack."""
    if not backends:
        return ""
    return " and ".join(BACKEND_TITLES.get(b, b) for b in backends) + " only. "


def _paragraph(text: str, indent: int) -> list[str]:
    pad = " " * indent
    return [pad + line if line.strip() else "" for line in textwrap.dedent(text).strip().splitlines()]


def _default_note(p: Param) -> str:
    if not p.backend_defaults:
        return ""
    notes = []
    for b, v in p.backend_defaults.items():
        title = BACKEND_TITLES.get(b, b)
        notes.append(f" Required in {title}." if v == REQUIRED else f" Default in {title}: ``{v}``.")
    return "".join(notes)


def _param_lines(p: Param) -> list[str]:
    head = f"{p.name} : {p.type}"
    if p.default is not None:
        head += f", default {p.default}"
    return [head, *_paragraph(only(p.backends) + p.meaning.strip() + _default_note(p), 4)]


def signature(name: str, m: Method) -> str:
    """``name(arg, kw=default)`` as the method is called."""
    args = [a.name if a.default is None else f"{a.name}={a.default}" for a in m.args]
    return f"{name}({', '.join(args)})"


def _method_lines(name: str, m: Method) -> list[str]:
    summary = only(m.backends) + m.summary.strip()
    if name == "__call__":
        summary += " " + forward_note(m.backends)
    lines = [signature(name, m), *_paragraph(summary, 4)]
    fields: list[str] = []
    for a in m.args:
        fields += [f":param {a.name}: {only(a.backends)}{' '.join(a.meaning.split())}{_default_note(a)}",
                   f":type {a.name}: {a.type}"]
    if m.returns is not None:
        fields += [f":returns: {' '.join(m.returns.meaning.split())}", f":rtype: {m.returns.type}"]
    if fields:
        lines += ["", *("    " + f for f in fields)]
    return lines


@cache
def render(name: str) -> str:
    """The docstring of the class described by schema entry ``name`` (identical for every backend)."""
    return render_entry(name, load())


def render_entry(name: str, schema: Schema) -> str:
    """:func:`render` for entry ``name`` of a given schema."""
    e = class_entry(name, schema)
    lines = _paragraph(e.summary, 0)
    if e.description.strip():
        lines += ["", *_paragraph(e.description, 0)]
    if e.params:
        lines += ["", "Parameters", "----------"]
        for p in e.params:
            lines += _param_lines(p)
    if e.attributes:
        lines += ["", "Attributes", "----------"]
        for a in e.attributes:
            lines += [f"{a.name} : {a.type}", *_paragraph(a.meaning, 4)]
    methods = all_methods(name, schema)
    if methods:
        lines += ["", "Methods", "-------"]
        for k, m in methods.items():
            lines += _method_lines(k, m)
    if e.paper:
        lines += ["", "References", "----------", *_paragraph(e.paper, 0)]
    return "\n".join(lines) + "\n"
