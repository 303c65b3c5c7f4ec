"""Sphinx extension that generates xmarl's reference pages from the code, never by hand.

On ``builder-inited`` it writes reStructuredText (and SVG figures) into ``docs/_generated/``
(ignored by git, rewritten only when its content changes):

* ``methods/<name>.rst``: one page per shipped method (a registered method with a section in
  ``configs/defaults.yaml``, or an ``algorithms`` entry of the docstring schema): the paper,
  the update in a few equations (schema), the config reference (the method's pydantic model's
  field descriptions and constraints, with the defaults from ``configs/defaults.yaml``), its
  classes with one tab per backend (autodoc of each backend's class, whose docstring is
  rendered from the schema for that backend), and its own recorded results;
* ``config.rst``: the run-level, ``train`` and ``groups`` config reference, with valid values;
* ``benchmarks.rst`` and ``figures/*.svg``: every recorded result, as tables and figures drawn
  from ``benchmarks/results/*.json`` (``xmarl_results.py``);
* ``readme/<block>.inc``: the README's commands, pulled from ``README.md``, for ``.. include::``;
* ``methods-table.inc``, ``envs-table.inc``: what is registered, for the landing and env pages;
* ``cli.rst``: ``xmarl <command> --help`` for every subcommand;
* ``api/*.rst``: one page per public module (internal ones are listed in :data:`INTERNAL`), its
  pydantic config models as tables of their fields; backend modules with a tab per backend;
* ``changelog.rst``, ``citation.rst``: from ``CHANGELOG.md`` and ``CITATION.cff``.

At autodoc time it gives every schema-documented class the signature and docstring the schema
states for its backend (whether or not that framework is installed), and skips the members that
the rendered ``Methods`` section lists already. It imports no deep-learning framework itself.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import os
import re
import sys
import typing
from pathlib import Path
from typing import Any

import xmarl_results
import yaml

BACKENDS = ("torch", "tensorflow", "mindspore")
MODULE_ORDER = ("learners", "policies", "representations", "optimizers")

#: modules left out of the API reference: entry points, the plumbing between the documented
#: pieces, and verification code that the comparison pages describe (tests/test_docs.py fails
#: when a name here no longer exists)
INTERNAL = (
    "xmarl.__main__", "xmarl.cli", "xmarl.files", "xmarl.core.methods", "xmarl.core.value_norm",
    "xmarl.envs.snapshot", "xmarl.training.parts", "xmarl.training.logger",
)


# -- small rST helpers ----------------------------------------------------------------------
def heading(text: str, char: str) -> list[str]:
    return [text, char * len(text), ""]


def indent(lines: list[str], n: int) -> list[str]:
    return [(" " * n + line) if line.strip() else "" for line in lines]


def escape(text: str) -> str:
    """Plain text as rST inline text (no markup)."""
    return re.sub(r"([\\*_`|])", r"\\\1", text)


def list_table(header: list[str], rows: list[list[str]], widths: list[int] | None = None,
               cls: str | None = None) -> list[str]:
    """A ``list-table`` whose cells are rST inline text."""
    out = [".. list-table::", "   :header-rows: 1"]
    if widths:
        out.append("   :widths: " + " ".join(str(w) for w in widths))
    if cls:
        out.append(f"   :class: {cls}")
    out.append("")
    for row in [header, *rows]:
        row = row + [""] * (len(header) - len(row))
        for i, cell in enumerate(row):
            cell = cell.strip()
            if re.match(r"^([-+*]|#\.|\d+[.)])(\s|$)|^[-+]\S", cell):
                cell = "\\" + cell  # not a nested list
            out.append(("   * - " if i == 0 else "     - ") + (cell or "\\"))
    return out + [""]


# -- Markdown (the subset benchmarks/ uses) to rST -------------------------------------------
def md_inline(text: str) -> str:
    out = []
    for k, part in enumerate(re.split(r"(`[^`]+`)", text)):
        if k % 2:  # rST inline literals cannot start or end with a space
            out.append(f"``{part[1:-1].strip()}``")
            continue
        for j, piece in enumerate(re.split(r"(\*\*[^*]+\*\*)", part)):
            if j % 2:
                out.append(f"**{escape(piece[2:-2])}**")
            else:
                piece = re.sub(r"\[([^\]]+)\]\(([^)]+)\)", lambda m: f"\0{m.group(1)} <{m.group(2)}>\0", piece)
                segs = piece.split("\0")
                out.append("".join(f"`{s}`__" if i % 2 else escape(s) for i, s in enumerate(segs)))
    return "".join(out)


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def md_to_rst(text: str, keep_row: Any = None) -> list[str]:
    """Headings (as rubrics), paragraphs, bullets, fenced code and pipe tables. ``keep_row(header,
    cells)`` filters table rows."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            lang = line[3:].strip() or "text"
            j = i + 1
            body = []
            while j < len(lines) and not lines[j].startswith("```"):
                body.append(lines[j])
                j += 1
            out += [f".. code-block:: {lang}", "", *indent(body, 3), ""]
            i = j + 1
        elif line.startswith("|") and i + 1 < len(lines) and re.match(r"^\|?\s*:?-{3,}", lines[i + 1]):
            header = _cells(line)
            rows = []
            i += 2
            while i < len(lines) and lines[i].startswith("|"):
                cells = _cells(lines[i])
                if keep_row is None or keep_row(header, cells):
                    rows.append(cells)
                i += 1
            if rows:
                out += list_table([md_inline(c) for c in header], [[md_inline(c) for c in r] for r in rows])
        elif m := re.match(r"^(#+)\s+(.*)", line):
            out += [f".. rubric:: {md_inline(m.group(2))}", ""]
            i += 1
        elif re.match(r"^\s*[-*]\s+", line):
            items = []
            while i < len(lines) and lines[i].strip():
                if re.match(r"^\s*[-*]\s+", lines[i]):
                    items.append(re.sub(r"^\s*[-*]\s+", "", lines[i]))
                else:
                    items[-1] += " " + lines[i].strip()
                i += 1
            out += [f"- {md_inline(t)}" for t in items] + [""]
        elif line.strip():
            para = []
            while i < len(lines) and lines[i].strip() and not re.match(r"^(```|\||#|\s*[-*]\s)", lines[i]):
                para.append(lines[i].strip())
                i += 1
            out += [md_inline(" ".join(para)), ""]
        else:
            i += 1
    return out


# -- the README ---------------------------------------------------------------------------------
def readme_blocks(readme: str) -> dict[str, tuple[str, str]]:
    """Fenced blocks of README.md: ``{marker: (lang, code)}`` for blocks after an
    ``<!-- marker -->`` comment, plus ``python`` and ``use`` (the first python block and the
    block under "## Use")."""
    out: dict[str, tuple[str, str]] = {}
    for m in re.finditer(r"<!--\s*([\w-]+)\s*-->\s*\n```(\w*)\n(.*?)\n```", readme, re.S):
        out[m.group(1)] = (m.group(2) or "text", m.group(3))
    if m := re.search(r"```python\n(.*?)\n```", readme, re.S):
        out["python"] = ("python", m.group(1))
    if m := re.search(r"^## Use\s*\n+```(\w*)\n(.*?)\n```", readme, re.S | re.M):
        out["use"] = (m.group(1) or "text", m.group(2))
    return out


def readme_includes(root: Path) -> dict[str, list[str]]:
    """``readme/<key>.inc``: each README block as a code block, for ``.. include::``."""
    blocks = readme_blocks((root / "README.md").read_text(encoding="utf-8"))
    return {f"readme/{key}.inc": [f".. code-block:: {lang}", "", *indent(code.splitlines(), 3), ""]
            for key, (lang, code) in blocks.items()}


# -- config reference ---------------------------------------------------------------------------
def _constraints(metadata: list[Any]) -> list[str]:
    ops = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}
    out = []
    for m in metadata:
        for attr, op in ops.items():
            v = getattr(m, attr, None)
            if v is not None:
                out.append(f"{op} {v}")
    return out


def type_text(ann: Any) -> str:
    """A pydantic field annotation, readable: ``float (> 0) or None``."""
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin is typing.Annotated:
        inner, *meta = args
        cons = _constraints(meta)
        return type_text(inner) + (f" ({', '.join(cons)})" if cons else "")
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " or ".join(type_text(a) for a in args)
    if origin is typing.Literal:
        return " or ".join(repr(a) for a in args)
    if ann is type(None):
        return "None"
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{', '.join('...' if a is Ellipsis else type_text(a) for a in args)}]"
    if ann is Any:
        return "Any"
    return getattr(ann, "__name__", str(ann))


def _yaml_value(v: Any) -> str:
    text = yaml.safe_dump(v, default_flow_style=True, width=10_000).strip()
    return text[: -len("...")].strip() if text.endswith("...") else text


def _pydantic_default(field: Any) -> str | None:
    from pydantic_core import PydanticUndefined

    if field.default is not PydanticUndefined:
        return f"``{_yaml_value(field.default)}``"
    if field.default_factory is not None:
        return f"``{_yaml_value(field.default_factory())}``"
    return None


def config_rows(model: Any, defaults: dict[str, Any] | None, prefix: str,
                values: dict[str, str] | None = None, skip: tuple[str, ...] = ()) -> list[list[str]]:
    """One row per leaf field of a pydantic model: key, type, default, description. Nested
    sections are flattened (``adam.eps``) unless named in ``skip``; ``values`` adds a sentence of
    valid values to a field's meaning."""
    from pydantic import BaseModel

    rows = []
    defaults = defaults or {}
    for name, field in model.model_fields.items():
        if name in skip:
            continue
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            rows += config_rows(ann, defaults.get(name), f"{prefix}{name}.", values)
            continue
        t = type_text(ann)
        cons = _constraints(field.metadata)
        if cons:
            t += f" ({', '.join(cons)})"
        if name in defaults:
            default = f"``{_yaml_value(defaults[name])}``"
        else:
            default = _pydantic_default(field) or "required"
        meaning = escape(field.description or "")
        if values and f"{prefix}{name}" in values:
            meaning += " " + values[f"{prefix}{name}"]
        rows.append([f"``{prefix}{name}``", escape(t), default, meaning])
    return rows


def config_table(model: Any, defaults: dict[str, Any] | None, prefix: str, skip: tuple[str, ...] = (),
                 values: dict[str, str] | None = None) -> list[str]:
    rows = config_rows(model, defaults, prefix, values, skip)
    return list_table(["key", "type", "default", "meaning"], rows, widths=[22, 18, 16, 44], cls="xmarl-config")


def _own(obj: Any) -> bool:
    """Registered by xmarl itself (not by an installed plugin)."""
    return (getattr(obj, "__module__", None) or "").startswith("xmarl.")


def config_values(root: Path) -> dict[str, str]:
    """Valid values of the run-level keys that name registered things."""
    from xmarl import registry

    methods = [m for m in shipped_methods(root)]
    return {"method": "One of " + ", ".join(f"``{m}``" for m in methods) + " (and any plugin's method).",
            "backend": "One of " + ", ".join(f"``{b}``" for b in BACKENDS) + " (and any plugin's backend).",
            "env": f"Any of the {len([n for n in registry.names('env') if _own(registry.get('env', n))])} "
                   "registered names (:doc:`../environments`), or a plugin's."}


def config_page(root: Path) -> list[str]:
    from xmarl.config.schema import GroupConfig, RunBase, TrainConfig

    defaults = yaml.safe_load((root / "configs" / "defaults.yaml").read_text())
    out = [".. This file is generated by docs/_ext/xmarl_docs.py from xmarl/config/schema.py and "
           "configs/defaults.yaml.", "", *heading("Configuration", "="),
           "A run's config is merged as ``configs/defaults.yaml`` < ``configs/<method>/<env>.yaml`` < a user",
           "YAML file (``-c``) < overrides (``--set a.b=c``, or ``overrides={...}`` in Python) and validated",
           "by the typed schema in ``xmarl/config/schema.py``: an unknown key names the closest valid key, a",
           "wrong value names the key, the file and the line. The resolved config is saved as ``config.yaml``",
           "beside the run's results. Each method's own section is on its page (:doc:`methods/index`).", "",
           ".. code-block:: yaml", "   :caption: a config file of your own (``xmarl run -c my.yaml``)", "",
           "   method: coma", "   env: mpe/simple_spread_v3", "   train: {steps: 200000, num_envs: 8}",
           "   coma: {lr_actor: 0.0005, recurrent: true}", "",
           *heading("Run", "-"),
           *config_table(RunBase, {k: v for k, v in defaults.items() if not isinstance(v, dict) or k == "env_kwargs"},
                         "", skip=("train", "groups"), values=config_values(root)),
           *heading("Training loop (``train``)", "-"),
           *config_table(TrainConfig, defaults.get("train"), "train."),
           *heading("Agent groups (``groups``)", "-"),
           "``groups`` maps a group name to these keys (default: no groups, every agent in one learning group);",
           "see :doc:`../teams`.", "",
           *config_table(GroupConfig, None, "groups.<name>.")]
    return out


# -- shipped methods and the schema --------------------------------------------------------------
def shipped_methods(root: Path) -> dict[str, Any]:
    """Method specs of the methods xmarl ships: registered and given defaults in defaults.yaml,
    plus any that only the schema knows so far (value None)."""
    from xmarl import docschema, registry

    defaults = yaml.safe_load((root / "configs" / "defaults.yaml").read_text())
    out: dict[str, Any] = {m: registry.get("method", m) for m in registry.names("method") if m in defaults}
    for name in docschema.algorithms():
        out.setdefault(name, None)
    return dict(sorted(out.items()))


def class_in_backend(root: Path, backend: str, module: str, name: str) -> bool:
    """Whether ``xmarl/backends/<backend>/<module>.py`` defines class ``name`` (read, not imported)."""
    path = root / "xmarl" / "backends" / backend / (module.replace(".", "/") + ".py")
    if not path.exists():
        return False
    return any(isinstance(n, ast.ClassDef) and n.name == name for n in ast.parse(path.read_text()).body)


def classes_of(method: str) -> list[tuple[str, Any]]:
    from xmarl import docschema

    entries = [(k, e) for k, e in docschema.classes().items() if method in e.used_by]
    order = {m: i for i, m in enumerate(MODULE_ORDER)}
    return sorted(entries, key=lambda ke: order.get(ke[1].module.split(".")[0], len(order)))


def backend_tabs(root: Path, key: str, entry: Any) -> list[str]:
    from xmarl.docschema.schema import BACKEND_TITLES

    out = [".. tab-set::", "   :class: xmarl-backends", ""]
    for b in BACKENDS:
        title = BACKEND_TITLES[b]
        out += [f"   .. tab-item:: {title}", f"      :sync: {b}", ""]
        if class_in_backend(root, b, entry.module, key):
            out += [f"      .. autoclass:: {entry.qualname(key, b)}", "         :no-index:", ""]
        else:
            out += [f"      Not implemented in {title} yet.", ""]
    return out


def shipped_configs(root: Path, method: str) -> list[str]:
    """The method's ``configs/<method>/<env>.yaml`` files and the keys each sets, by section."""
    folder = root / "configs" / method
    files = sorted(folder.rglob("*.yaml")) if folder.exists() else []
    if not files:
        return []
    rows = []
    for f in files:
        data = yaml.safe_load(f.read_text()) or {}
        parts = []
        for k, v in data.items():
            if isinstance(v, dict) and k != "env_kwargs":
                parts.append(f"``{k}``: " + ", ".join(escape(kk) for kk in v))
            else:
                parts.append(f"``{k}``")
        rows.append([f"``{f.relative_to(folder).with_suffix('')}``", "; ".join(parts)])
    return [f"Shipped configs, ``configs/{method}/<env>.yaml`` (``xmarl run -m {method} -e <env>`` merges the",
            "one for the env over the defaults):", "",
            *list_table(["env", "keys it sets"], rows, widths=[30, 70])]


def shipped_records(root: Path) -> set[str]:
    """Names (``maddpg/mpe/simple_spread_v3``) of the shipped configs."""
    return {str(p.relative_to(root / "configs").with_suffix("")) for p in (root / "configs").rglob("*.yaml")
            if p.parent != root / "configs"}


def method_page(root: Path, name: str, spec: Any) -> list[str]:
    from xmarl import docschema

    alg = docschema.algorithms().get(name)
    title = alg.title if alg else name
    out = [f".. This page is generated by docs/_ext/xmarl_docs.py for method '{name}'.", "",
           f".. _method-{name}:", "", *heading(title, "=")]
    paper = alg.paper if alg else (spec.paper if spec else "")
    out += [paper_link(paper), ""]
    if spec is not None:
        kinds = ", ".join(spec.action_kinds)
        trainer = spec.trainer.replace("_", "-")
        out += [f"Run it with ``xmarl run -m {name}`` or ``xmarl.run(method=\"{name}\", ...)``; "
                f"{trainer} training; action spaces: {kinds}.", ""]
    if alg:
        out += [*alg.summary.strip().splitlines(), "", *heading("The update", "-"), *alg.equations.strip().splitlines(),
                ""]
    out += heading("Configuration", "-")
    if spec is not None:
        defaults = yaml.safe_load((root / "configs" / "defaults.yaml").read_text()).get(name) or spec.defaults
        out += [f"The ``{name}:`` section of the run config (see :doc:`../config` for the keys every run has).",
                "Defaults come from ``configs/defaults.yaml``; the descriptions from the config schema",
                f"``{spec.config_model.__module__}.{spec.config_model.__name__}``.", "",
                *config_table(spec.config_model, defaults, f"{name}."), *shipped_configs(root, name)]
    else:
        out += ["Not registered yet.", ""]
    out += heading("Classes", "-")
    classes = classes_of(name)
    if classes:
        out += ["Each backend implements these classes under the same name; every tab shows that backend's",
                "class, whose docstring is rendered from the shared schema (``xmarl/docschema/schema.yaml``).", ""]
    for key, entry in classes:
        out += heading(key, "~")
        out += backend_tabs(root, key, entry)
    if not classes:
        out += ["No class of this method has a docstring schema entry yet.", ""]
    out += heading("Recorded results", "-")
    section = xmarl_results.method_sections(root, root / "docs" / "_generated", root / "docs", name)
    if section:
        out += [f"Results of {title} alone, recorded on the 2-core development machine by the scripts in",
                "``benchmarks/`` (:doc:`../benchmarks` has every result).", "", *section]
    else:
        out += ["No recorded results yet.", ""]
    return out


def methods_index(names: list[str]) -> list[str]:
    return [".. This file is generated by docs/_ext/xmarl_docs.py.", "", *heading("Methods", "="),
            "One page per shipped method, generated from the registry, the config schema, the docstring",
            "schema and the recorded benchmarks.", "", ".. toctree::", "   :maxdepth: 1", "",
            *[f"   {n}" for n in names], ""]


#: recorded results shown from their Markdown record: file, heading, what it measures
MARKDOWN_RESULTS = (
    ("mpe_fast_speed.md", "Batched MPE against mpe2",
     "Env steps per second of random play in mpe2's own environment and in ``mpe-fast`` with 64 copies stepped "
     "as one numpy computation (transitions bit-identical to mpe2's)."),
    ("suite_speed.md", "Benchmark-suite environments",
     "Env steps per second of the LBF, RWARE, VMAS and MAgent2 adapters alone, beside the package stepped "
     "directly, and in a short training run per method."),
    ("dispatch.md", "What one compiled call costs",
     "Per backend, the fixed cost of one compiled call (numpy in, numpy out, as the policies act) and the cost of "
     "each further element-wise kernel and matrix product: why MindSpore's acting is slower on small networks."),
    ("soak.md", "Memory and files over long runs",
     "Resident memory and file sizes of a 2M-step MADDPG run and a long CommNet run."),
    ("kill_resume.md", "Runs killed and resumed",
     "Runs killed with SIGKILL at random moments and resumed with ``--resume`` until done, against one "
     "uninterrupted run."),
)


def markdown_result(root: Path, name: str, title: str, intro: str) -> list[str]:
    path = root / "benchmarks" / "results" / name
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"\A# .*\n", "", text)  # the record's own title: the section has a heading
    return [*heading(title, "-"), intro, "", *md_to_rst(text), f"Source: ``benchmarks/results/{name}``.", ""]


def benchmarks_page(root: Path) -> list[str]:
    gen, src = root / "docs" / "_generated", root / "docs"
    out = [".. This file is generated by docs/_ext/xmarl_docs.py from benchmarks/results/.", "",
           *heading("Benchmarks", "="),
           "Every speed or learning claim in xmarl is a script in ``benchmarks/`` with its recorded result in",
           "``benchmarks/results/``; the tables and figures below are drawn from those files when the docs are",
           "built. They were recorded on a 2-core x86_64 machine, CPU only, one framework thread per process;",
           "``benchmarks/README.md`` lists each script's command. Each method's page repeats its own results.", "",
           *xmarl_results.learning_section(root, gen, src, None),
           *xmarl_results.mpe2_coma_section(root),
           *xmarl_results.throughput_section(root, gen, src, None),
           *xmarl_results.scaling_section(root, gen, src),
           *xmarl_results.levers_section(root),
           *xmarl_results.leaving_section(root),
           *xmarl_results.mixed_section(root)]
    for name, title, intro in MARKDOWN_RESULTS:
        out += markdown_result(root, name, title, intro)
    out += xmarl_results.device_section(root)
    return out


# -- command line ---------------------------------------------------------------------------------
def cli_page() -> list[str]:
    from xmarl.cli import _parser

    parser = _parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {a.dest: a.help for a in sub._choices_actions}
    out = [".. This file is generated by docs/_ext/xmarl_docs.py from xmarl/cli.py.", "",
           *heading("Command line", "="), "``xmarl <command> --help`` prints each command's options:", ""]
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    try:
        for name, p in sub.choices.items():
            out += heading(f"xmarl {name}", "-")
            out += [escape(helps.get(name) or ""), "", ".. code-block:: text", "",
                    *indent(p.format_help().rstrip().splitlines(), 3), ""]
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old
    return out


# -- API reference ---------------------------------------------------------------------------------
API_SECTIONS = (
    ("Running and loading", ("xmarl.api", "xmarl.config", "xmarl.registry", "xmarl.errors")),
    ("Core", ("xmarl.core",)),
    ("Environments", ("xmarl.envs",)),
    ("Buffers", ("xmarl.buffers",)),
    ("Training", ("xmarl.training",)),
    ("Comparison", ("xmarl.compare",)),
    ("Docstring schema", ("xmarl.docschema",)),
)


def modules_under(root: Path, package: str, exclude: tuple[str, ...] = ()) -> list[str]:
    base = root / package.replace(".", "/")
    mods = []
    for path in sorted(base.rglob("*.py")) if base.is_dir() else [base.with_suffix(".py")]:
        rel = path.relative_to(root).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        name = ".".join(parts)
        if parts[-1] == "__main__" or any(name == e or name.startswith(e + ".") for e in exclude):
            continue
        mods.append(name)
    return mods


def _module_path(root: Path, module: str) -> Path:
    base = root / module.replace(".", "/")
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def own_members(root: Path, module: str) -> list[str] | None:
    """The module's public names that it defines itself, in ``__all__`` order; None when it has
    no ``__all__`` (then every documented public name is shown). Re-exports are documented
    where they are defined."""
    tree = ast.parse(_module_path(root, module).read_text(encoding="utf-8"))
    defined: set[str] = set()
    names: list[str] | None = None
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            defined.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Name):
                    defined.add(t.id)
                    if t.id == "__all__" and isinstance(node.value, (ast.List, ast.Tuple)):
                        names = [e.value for e in node.value.elts if isinstance(e, ast.Constant)]
    if names is None:
        return None
    return [n for n in names if n in defined and n != "__all__"]


def _pydantic_models(module: str) -> list[tuple[str, Any]]:
    """Pydantic models defined in a (framework-free) module, in definition order."""
    import importlib

    from pydantic import BaseModel

    mod = importlib.import_module(module)
    return [(k, v) for k, v in vars(mod).items() if isinstance(v, type) and issubclass(v, BaseModel)
            and v.__module__ == module and not k.startswith("_")]


def _model_section(root: Path, module: str, name: str, model: Any) -> list[str]:
    """A config model as the fields a config file sets, with its defaults where xmarl has them."""
    from xmarl import registry

    defaults = yaml.safe_load((root / "configs" / "defaults.yaml").read_text())
    section = next((m for m in registry.names("method") if registry.get("method", m).config_model is model), None)
    section = section or {"TrainConfig": "train"}.get(name)
    where = f" (the run config's ``{section}:`` section)" if section else ""
    doc = (model.__doc__ or "").strip().split("\n\n")[0]
    out = [f".. py:class:: {name}", f"   :module: {module}", "", *indent([" ".join(doc.split()) + where, ""], 3)]
    if model.model_fields:
        out += indent(config_table(model, defaults.get(section) if section else None, ""), 3)
    return out


def api_module_page(root: Path, module: str) -> list[str]:
    out = [".. This file is generated by docs/_ext/xmarl_docs.py.", "", *heading(f"``{module}``", "=")]
    models = _pydantic_models(module)
    skip = [k for k, _ in models]
    members = own_members(root, module)
    out.append(f".. automodule:: {module}")
    if members is None:
        out += ["   :members:", "   :ignore-module-all:"]
    elif [m for m in members if m not in skip]:
        out.append(f"   :members: {', '.join(m for m in members if m not in skip)}")
    if skip:
        out.append(f"   :exclude-members: {', '.join(skip)}")
    out.append("")
    if models:
        out += heading("Config sections" if module in ("xmarl.core.config", "xmarl.config.schema") else "Models", "-")
        for k, model in models:
            out += _model_section(root, module, k, model)
    return out


def backend_module_page(root: Path, rel: str) -> list[str]:
    from xmarl.docschema.schema import BACKEND_TITLES

    out = [".. This file is generated by docs/_ext/xmarl_docs.py.", "",
           *heading(f"``xmarl.backends.<backend>.{rel}``", "="),
           f"The same file, ``xmarl/backends/<backend>/{rel.replace('.', '/')}.py``, and the same class names in",
           "every backend; one tab per backend.", "", ".. tab-set::", "   :class: xmarl-backends", ""]
    for b in BACKENDS:
        mod = f"xmarl.backends.{b}.{rel}"
        out += [f"   .. tab-item:: {BACKEND_TITLES[b]}", f"      :sync: {b}", ""]
        if _module_path(root, mod).exists():
            out += [f"      .. automodule:: {mod}", "         :members:", "         :ignore-module-all:", ""]
        else:
            out += [f"      {BACKEND_TITLES[b]} has no such module.", ""]
    return out


def api_pages(root: Path) -> dict[str, list[str]]:
    pages: dict[str, list[str]] = {}
    index = [".. This file is generated by docs/_ext/xmarl_docs.py.", "", *heading("API reference", "="),
             "One page per module. The top-level functions are ``xmarl.run``, ``xmarl.load`` and",
             "``xmarl.load_config`` (:doc:`xmarl.api`), ``xmarl.compare`` (:doc:`xmarl.compare.runner`) and",
             "``xmarl.parity`` (:doc:`xmarl.compare.parity`). The command line is on :doc:`../cli`.", ""]
    for title, packages in API_SECTIONS:
        mods = [m for pkg in packages for m in modules_under(root, pkg, exclude=INTERNAL)]
        for m in mods:
            pages[m] = api_module_page(root, m)
        index += [*heading(title, "-"), ".. toctree::", "   :maxdepth: 1", "", *[f"   {m}" for m in mods], ""]
    rels = sorted({m.split(".", 3)[3] for b in BACKENDS for m in modules_under(root, f"xmarl.backends.{b}")
                   if m.count(".") >= 3 and not m.endswith(".learners")},
                  key=lambda r: (MODULE_ORDER.index(r.split(".")[0]) if r.split(".")[0] in MODULE_ORDER else 9, r))
    for rel in rels:
        pages[f"backends.{rel}"] = backend_module_page(root, rel)
    index += [*heading("Backends", "-"),
              "Each backend has the same files and class names; each page shows a module in every backend.", "",
              ".. toctree::", "   :maxdepth: 1", "", *[f"   backends.{r}" for r in rels], ""]
    pages["index"] = index
    return pages


# -- writing ---------------------------------------------------------------------------------------
def write(path: Path, lines: list[str]) -> None:
    """Write ``path`` only when its content changes (Sphinx then rebuilds only what changed)."""
    text = "\n".join(lines).rstrip() + "\n"
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def short_paper(paper: str) -> str:
    """``Lowe et al., NeurIPS 2017`` (linked to arXiv when the reference gives an id) from a
    schema paper reference ``Authors, *Title*, Venue Year, arXiv:id.``."""
    text = " ".join(paper.split())
    first = re.split(r",| and ", text, maxsplit=1)[0].strip()
    many = text.count(",") > 1 or " and " in text.split("*")[0]
    after = [part.strip(" .") for part in text.split("*")[-1].split(",")]
    venue = next((part for part in after if part and not part.startswith("arXiv")), "")
    m = ARXIV.search(text)
    label = f"{first}{' et al.' if many else ''}" + (f", {venue}" if venue else "")
    return f"`{label} <https://arxiv.org/abs/{m.group(1)}>`__" if m else escape(label)


def methods_table(root: Path, methods: dict[str, Any]) -> list[str]:
    """Shipped methods x backends: each method's paper and whether each backend implements its learner."""
    from xmarl import docschema

    rows = []
    for name, spec in methods.items():
        alg = docschema.algorithms().get(name)
        has = [(root / "xmarl" / "backends" / b / "learners" / f"{name}.py").exists() for b in BACKENDS]
        kinds = ", ".join(spec.action_kinds) if spec is not None else ""
        title = alg.title.split(" (")[0] if alg else name
        rows.append([f":doc:`{title} </_generated/methods/{name}>`", short_paper(alg.paper) if alg else "", kinds,
                     *("yes" if h else "not yet" for h in has)])
    return list_table(["method", "paper", "actions", "torch", "TensorFlow", "MindSpore"], rows,
                      widths=[14, 34, 22, 10, 10, 10], cls="xmarl-methods")


ARXIV = re.compile(r"arXiv:(\d{4}\.\d{4,5})")


def paper_link(paper: str) -> str:
    """A paper reference with its arXiv id as a link."""
    text = " ".join(paper.split())
    m = ARXIV.search(text)
    if not m:
        return text
    return text[:m.start()] + f"`arXiv:{m.group(1)} <https://arxiv.org/abs/{m.group(1)}>`__" + text[m.end():]


ENV_FAMILIES = (
    ("mpe/", "MPE tasks of the ``mpe2`` package through the PettingZoo adapter", "``xmarl[mpe]``"),
    ("mpe-fast/", "the same MPE tasks, many copies stepped as one numpy computation", "``xmarl[mpe]``"),
    ("lbf/", "Level-Based Foraging (gymnasium tuple spaces)", "``xmarl[lbf]``"),
    ("rware/", "Multi-Robot Warehouse (gymnasium tuple spaces)", "``xmarl[rware]``"),
    ("vmas/", "VMAS scenarios, batched torch worlds", "``xmarl[vmas]``"),
    ("magent/", "MAgent2 battles through the PettingZoo adapter", "``xmarl[magent]``"),
)


def envs_table() -> list[str]:
    """Every environment xmarl registers, by family."""
    from xmarl import registry

    names = [n for n in registry.names("env") if _own(registry.get("env", n))]
    rows = []
    for prefix, what, extra in ENV_FAMILIES:
        fam = [n for n in names if n.startswith(prefix)]
        if fam:
            rows.append([f"``{prefix}<task>``", what, extra, ", ".join(f"``{n[len(prefix):]}``" for n in fam)])
    built_in = [n for n in names if "/" not in n]
    rows.append(["built-in games", "``target``, ``median``, ``levers`` (below)", "none",
                 ", ".join(f"``{n}``" for n in built_in)])
    return list_table(["names", "what", "install", "registered"], rows, widths=[14, 30, 12, 44], cls="xmarl-envs")


def changelog_page(root: Path) -> list[str]:
    path = root / "CHANGELOG.md"
    text = re.sub(r"\A# .*\n", "", path.read_text(encoding="utf-8")) if path.exists() else ""
    out = [".. This file is generated by docs/_ext/xmarl_docs.py from CHANGELOG.md.", "", *heading("Changelog", "=")]
    for block in re.split(r"^## ", text, flags=re.M):
        if not block.strip():
            continue
        title, _, body = block.partition("\n")
        if title.startswith("["):
            title = title  # "## [0.1.0] - date"
        out += [*heading(title.strip(), "-"), *md_to_rst(body)] if body.strip() else []
    return out


def citation_page(root: Path) -> list[str]:
    cff = yaml.safe_load((root / "CITATION.cff").read_text(encoding="utf-8"))
    authors = " and ".join(a.get("name") or f"{a.get('given-names', '')} {a.get('family-names', '')}".strip()
                           for a in cff.get("authors", []))
    key = f"xmarl{str(cff.get('date-released', ''))[:4]}"
    bib = [f"@software{{{key},", f"  title = {{{cff['title']}}},", f"  author = {{{authors}}},",
           f"  version = {{{cff['version']}}},"]
    if cff.get("date-released"):
        bib.append(f"  year = {{{str(cff['date-released'])[:4]}}},")
    if cff.get("url") or cff.get("repository-code"):
        bib.append(f"  url = {{{cff.get('repository-code') or cff.get('url')}}},")
    bib.append(f"  license = {{{cff.get('license', '')}}}")
    bib.append("}")
    return [".. This file is generated by docs/_ext/xmarl_docs.py from CITATION.cff.", "",
            *heading("Citing xmarl", "="),
            escape(" ".join(cff.get("message", "").split())), "", ".. code-block:: bibtex", "", *indent(bib, 3), "",
            "Please also cite the paper of each method you use (on its page):", "",
            *[f"- {paper_link(a.paper)}" for a in _algorithms()], "",
            f"xmarl is released under the {cff.get('license', '')} license (``LICENSE`` in the repository).", ""]


def _algorithms() -> list[Any]:
    from xmarl import docschema

    return list(docschema.algorithms().values())


def generate(root: Path, out: Path) -> list[Path]:
    """Write every generated page under ``out``; returns their paths."""
    with contextlib.redirect_stdout(io.StringIO()):  # plugins may print while loading
        methods = shipped_methods(root)
    pages: dict[str, list[str]] = {
        "config.rst": config_page(root),
        "cli.rst": cli_page(),
        "benchmarks.rst": benchmarks_page(root),
        "methods/index.rst": methods_index(list(methods)),
        "methods-table.inc": methods_table(root, methods),
        "envs-table.inc": envs_table(),
        "changelog.rst": changelog_page(root),
        "citation.rst": citation_page(root),
    }
    report = root / "docs" / "examples" / "compare" / "report.md"
    if report.exists():  # the recorded example report, without its title, figure link and run list
        text = re.sub(r"\A# .*\n", "", report.read_text(encoding="utf-8")).split("\n## Runs")[0]
        pages["compare-report.inc"] = md_to_rst(re.sub(r"^!\[.*\n", "", text, flags=re.M))
    figure = xmarl_results.landing_figure(root, out)
    pages["landing-figure.inc"] = (xmarl_results.image(figure, root / "docs", "MADDPG learning curves in torch, "
                                                       "TensorFlow and MindSpore") if figure else [""])
    pages.update(readme_includes(root))
    for name, spec in methods.items():
        pages[f"methods/{name}.rst"] = method_page(root, name, spec)
    for name, lines in api_pages(root).items():
        pages[f"api/{name}.rst"] = lines
    keep = set(pages) | {str(p.relative_to(out)) for p in (out / "figures").glob("*.svg")} if out.exists() else set()
    for old in out.rglob("*.*") if out.exists() else []:
        if old.suffix in (".rst", ".inc") and str(old.relative_to(out)) not in keep:
            old.unlink()  # a page whose method or module is gone
    for rel, lines in pages.items():
        write(out / rel, lines)
    return [out / rel for rel in pages]


# -- autodoc: schema-documented classes -----------------------------------------------------------
def _schema_entry(obj: Any) -> tuple[str, Any] | None:
    """``(key, schema)`` of a class documented from a docstring schema, else None."""
    if not isinstance(obj, type):
        return None
    from xmarl.docschema.schema import schema_key, schema_of

    key = schema_key(obj)
    if key is None:
        return None
    schema = schema_of(obj)
    return (key, schema) if key in schema.classes else None


def _backend(obj: Any) -> str | None:
    parts = (getattr(obj, "__module__", "") or "").split(".")
    return parts[2] if parts[:2] == ["xmarl", "backends"] and len(parts) > 2 else None


def _signature(app: Any, what: str, name: str, obj: Any, options: Any, signature: str | None,
               return_annotation: str | None) -> tuple[str, str | None] | None:
    """A schema-documented class's constructor signature, as its schema states it for its backend
    (autodoc would read a framework's ``__new__``, or a mock's, instead)."""
    if what != "class" or (found := _schema_entry(obj)) is None:
        return None
    from xmarl.docschema.rendering import signature_of

    return signature_of(found[0], found[1], _backend(obj)), None


def _docstring(app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    """A schema-documented class's docstring rendered for its backend: its own members and defaults."""
    if what != "class" or (found := _schema_entry(obj)) is None:
        return
    from xmarl.docschema.rendering import render_entry

    lines[:] = render_entry(found[0], found[1], backend=_backend(obj), markup=True).splitlines()


def _skip_schema_members(app: Any, what: str, name: str, obj: Any, skip: bool, options: Any) -> bool | None:
    """Members of a schema-documented class are listed by its rendered ``Methods`` section."""
    if what != "class" or skip:
        return None
    qual = getattr(obj, "__qualname__", "")
    owner_name = qual.rsplit(".", 1)[0] if "." in qual else None
    module = sys.modules.get(getattr(obj, "__module__", "") or "")
    owner = getattr(module, owner_name, None) if module and owner_name else None
    if isinstance(owner, type) and "__xmarl_doc__" in owner.__dict__:
        return True
    return None


# -- cross-references ---------------------------------------------------------------------------------
def _lookup(path: str) -> Any:
    """The object at dotted ``path`` (a module, or an attribute of one), or raise LookupError."""
    import importlib

    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            if not hasattr(obj, attr):
                raise LookupError(path)
            obj = getattr(obj, attr)
        return obj
    raise LookupError(path)


def _candidates(node: Any) -> list[str]:
    target = node["reftarget"].lstrip("~.")
    module, cls = node.get("py:module"), node.get("py:class")
    out = [target]
    if module:
        out.append(f"{module}.{target}")
        if cls:
            out.append(f"{module}.{cls}.{target}")
    return out


def _missing_reference(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    """Resolve the references Sphinx's Python domain cannot: a name given without its module
    (``ConfigError``) when one documented xmarl object has it, and a re-export (``xmarl.run``) by the
    object it names. A reference to something that exists in xmarl's code but is left out of the
    reference (a private helper, an internal module, an undocumented constant) is shown as code;
    one to a name that exists nowhere still fails the build."""
    if node.get("refdomain") != "py":
        return None
    from sphinx.util.nodes import make_refnode

    objects = env.get_domain("py").objects
    candidates = _candidates(node)
    for name in candidates:  # a re-export: the documented object it is
        try:
            obj = _lookup(name)
        except (LookupError, Exception):  # noqa: BLE001 - importing may fail in many ways; then it is not there
            continue
        full = f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', '')}"
        if isinstance(obj, type(sys)):
            full = obj.__name__
        if full in objects:
            entry = objects[full]
            return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, full)
    target = node["reftarget"].lstrip("~.")
    if "[" in target or "]" in target:
        return contnode  # part of an annotation Sphinx could not parse (a mocked framework's type): code
    found = {full for full in objects if full.startswith("xmarl.") and full.endswith("." + target)}
    if len(found) == 1:  # a name without its module, unique among the documented objects
        entry = objects[found.pop()]
        return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, target)
    if found:
        return contnode  # several documented objects have this name: code rather than a guess
    if node.get("reftype") == "attr" and node.get("py:class"):
        return contnode  # an instance attribute of the class documented here
    for name in candidates:
        if name.startswith("xmarl") or node.get("py:module"):
            try:
                _lookup(name)
            except (LookupError, Exception):  # noqa: BLE001
                continue
            return contnode  # it exists, but the reference leaves it out: code, not a link
    return None


_ORIGINAL: dict[str, list[str]] = {}


def _keep_attribute_text(app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    """Before napoleon: remember a data or attribute docstring (see :func:`_restore_attribute_text`)."""
    if what in ("data", "attribute", "property"):
        _ORIGINAL[name] = list(lines)


def _restore_attribute_text(app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    """After napoleon: its inline-attribute rule reads ``#: what it is: details`` as a type named
    "what it is"; such a docstring is prose and is shown as written."""
    if what in ("data", "attribute", "property") and name in _ORIGINAL:
        if any(line.startswith(":type: ") and " " in line[len(":type: "):].strip() for line in lines):
            lines[:] = _ORIGINAL[name]
        _ORIGINAL.pop(name, None)


def _on_builder_inited(app: Any) -> None:
    srcdir = Path(app.srcdir)
    generate(srcdir.parent, srcdir / "_generated")


def setup(app: Any) -> dict[str, Any]:
    app.connect("builder-inited", _on_builder_inited)
    app.connect("autodoc-skip-member", _skip_schema_members)
    app.connect("autodoc-process-signature", _signature)
    app.connect("autodoc-process-docstring", _keep_attribute_text, priority=100)
    app.connect("autodoc-process-docstring", _docstring, priority=400)
    app.connect("autodoc-process-docstring", _restore_attribute_text, priority=900)
    app.connect("missing-reference", _missing_reference)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
