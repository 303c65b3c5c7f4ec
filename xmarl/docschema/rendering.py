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

#: type names the docs link to (a class of xmarl's API reference); other types are shown as code
TYPE_LINKS = {"AgentSpec": "xmarl.core.spaces.AgentSpec", "Policy": "xmarl.core.interfaces.Policy",
              "Learner": "xmarl.core.interfaces.Learner", "LearnerBase": "xmarl.core.learner.LearnerBase",
              "Representation": "xmarl.core.interfaces.Representation"}


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


class _Style:
    """How one rendering reads: for every backend (``backend`` None: the ``__doc__`` all backends
    share, with "TensorFlow only." notes and per-backend defaults spelled out) or for one backend
    (the docs' tab of that backend: its members only, its defaults), with plain type names or
    with Sphinx markup (types as links or code, so that nothing is an unresolved reference)."""

    def __init__(self, backend: str | None, markup: bool) -> None:
        self.backend, self.markup = backend, markup

    def has(self, backends: list[str] | None) -> bool:
        return self.backend is None or not backends or self.backend in backends

    def only(self, backends: list[str] | None) -> str:
        return only(backends) if self.backend is None else ""

    def type(self, text: str) -> str:
        if not self.markup:
            return text
        if text in TYPE_LINKS:
            return f":class:`~{TYPE_LINKS[text]}`"
        return f"``{text}``"

    def default(self, p: Param) -> str | None:
        """The default shown (None: required); for one backend, that backend's own."""
        if self.backend is not None and self.backend in p.backend_defaults:
            v = p.backend_defaults[self.backend]
            return None if v == REQUIRED else v
        return p.default

    def default_note(self, p: Param) -> str:
        if self.backend is not None or not p.backend_defaults:
            return ""
        notes = []
        for b, v in p.backend_defaults.items():
            title = BACKEND_TITLES.get(b, b)
            notes.append(f" Required in {title}." if v == REQUIRED else f" Default in {title}: ``{v}``.")
        return "".join(notes)


PLAIN = _Style(None, markup=False)


def _param_lines(p: Param, style: _Style = PLAIN) -> list[str]:
    default = style.default(p)
    if style.markup:  # a default in the type line would be read as a type name
        head = f"{p.name} : {style.type(p.type)}"
        tail = "" if default is None else f" Default: ``{default}``."
    else:
        head = f"{p.name} : {p.type}" + ("" if default is None else f", default {default}")
        tail = ""
    return [head, *_paragraph(style.only(p.backends) + p.meaning.strip() + tail + style.default_note(p), 4)]


def signature(name: str, m: Method, backend: str | None = None) -> str:
    """``name(arg, kw=default)`` as the method is called (in ``backend``: its arguments only)."""
    style = _Style(backend, markup=False)
    args = []
    for a in m.args:
        if not style.has(a.backends):
            continue
        default = style.default(a)
        args.append(a.name if default is None else f"{a.name}={default}")
    return f"{name}({', '.join(args)})"


def _method_lines(name: str, m: Method, style: _Style = PLAIN) -> list[str]:
    summary = style.only(m.backends) + m.summary.strip()
    if name == "__call__":
        summary += " " + forward_note(m.backends if style.backend is None else [style.backend])
    lines = [signature(name, m, style.backend), *_paragraph(summary, 4)]
    fields: list[str] = []
    for a in m.args:
        if not style.has(a.backends):
            continue
        fields += [f":param {a.name}: {style.only(a.backends)}{' '.join(a.meaning.split())}{style.default_note(a)}",
                   f":type {a.name}: {style.type(a.type)}"]
    if m.returns is not None:
        fields += [f":returns: {' '.join(m.returns.meaning.split())}", f":rtype: {style.type(m.returns.type)}"]
    if fields:
        lines += ["", *("    " + f for f in fields)]
    return lines


@cache
def render(name: str) -> str:
    """The docstring of the class described by schema entry ``name`` (identical for every backend)."""
    return render_entry(name, load())


def render_entry(name: str, schema: Schema, backend: str | None = None, markup: bool = False) -> str:
    """:func:`render` for entry ``name`` of a given schema. ``backend``: the text of that backend's
    class alone (its own members and defaults, no "... only." notes), as its tab of the docs
    shows it; ``markup``: types as Sphinx links or code (the docs' rendering)."""
    style = _Style(backend, markup)
    e = class_entry(name, schema)
    lines = _paragraph(e.summary, 0)
    if e.description.strip():
        lines += ["", *_paragraph(e.description, 0)]
    params = [p for p in e.params if style.has(p.backends)]
    if params:
        lines += ["", "Parameters", "----------"]
        for p in params:
            lines += _param_lines(p, style)
    if e.attributes:
        lines += ["", "Attributes", "----------"]
        for a in e.attributes:
            lines += [f"{a.name} : {style.type(a.type)}", *_paragraph(a.meaning, 4)]
    methods = {k: m for k, m in all_methods(name, schema).items() if style.has(m.backends)}
    if methods:
        lines += ["", "Methods", "-------"]
        for k, m in methods.items():
            lines += _method_lines(k, m, style)
    if e.paper:
        lines += ["", "References", "----------", *_paragraph(e.paper, 0)]
    return "\n".join(lines) + "\n"


def signature_of(name: str, schema: Schema, backend: str | None) -> str:
    """The constructor's signature as documented for ``backend``: ``(spec, config, weights)``."""
    style = _Style(backend, markup=False)
    args = []
    for p in class_entry(name, schema).params:
        if not style.has(p.backends):
            continue
        default = style.default(p)
        args.append(p.name if default is None else f"{p.name}={default}")
    return f"({', '.join(args)})"
