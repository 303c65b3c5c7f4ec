"""Sphinx extension that generates xmarl's reference pages from the code, never by hand.

On ``builder-inited`` it writes reStructuredText into ``docs/_generated/`` (ignored by git,
rewritten only when its content changes):

* ``methods/<name>.rst``: one page per shipped method (a registered method with a section in
  ``configs/defaults.yaml``, or an ``algorithms`` entry of the docstring schema): the paper,
  the update in a few equations (schema), the config reference (the method's pydantic model's
  field descriptions and constraints, with the defaults from ``configs/defaults.yaml``), its
  classes with one tab per backend (autodoc of each backend's class, whose docstring is
  rendered from the schema), and its recorded benchmark results (``benchmarks/results``);
* ``config.rst``: the run-level and ``train`` config reference;
* ``readme/<block>.inc``: the README's commands, pulled from ``README.md``, for ``.. include::``;
* ``cli.rst``: ``xmarl <command> --help`` for every subcommand;
* ``benchmarks.rst``: every recorded result;
* ``api/*.rst``: autodoc of every module of the core and of each backend.

It also skips autodoc members of schema-documented classes (their public methods are in the
rendered ``Methods`` section already) and imports no deep-learning framework itself.
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

import yaml

BACKENDS = ("torch", "tensorflow", "mindspore")
MODULE_ORDER = ("learners", "policies", "representations", "optimizers")


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


def config_rows(model: Any, defaults: dict[str, Any] | None, prefix: str) -> list[list[str]]:
    """One row per leaf field of a pydantic model: key, type, default, description."""
    from pydantic import BaseModel

    rows = []
    defaults = defaults or {}
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            rows += config_rows(ann, defaults.get(name), f"{prefix}{name}.")
            continue
        t = type_text(ann)
        cons = _constraints(field.metadata)
        if cons:
            t += f" ({', '.join(cons)})"
        default = f"``{_yaml_value(defaults[name])}``" if name in defaults else "required"
        rows.append([f"``{prefix}{name}``", escape(t), default, escape(field.description or "")])
    return rows


def config_table(model: Any, defaults: dict[str, Any] | None, prefix: str, skip: tuple[str, ...] = ()) -> list[str]:
    rows = [r for r in config_rows(model, defaults, prefix) if r[0].strip("`").split(".")[-1] not in skip
            and r[0].strip("`") not in skip]
    return list_table(["key", "type", "default", "meaning"], rows, widths=[22, 18, 16, 44], cls="xmarl-config")


def config_page(root: Path) -> list[str]:
    from xmarl.config.schema import RunBase, TrainConfig

    defaults = yaml.safe_load((root / "configs" / "defaults.yaml").read_text())
    top = [n for n in RunBase.model_fields if n != "train"]
    out = [".. This file is generated by docs/_ext/xmarl_docs.py from xmarl/config/schema.py and "
           "configs/defaults.yaml.", "", *heading("Configuration", "="),
           "A run's config is merged as ``configs/defaults.yaml`` < ``configs/<method>/<env>.yaml`` < a user",
           "YAML file (``-c``) < overrides (``--set a.b=c``, or ``overrides={...}`` in Python) and validated",
           "by the typed schema in ``xmarl/config/schema.py``: an unknown key names the closest valid key.",
           "The resolved config is saved as ``config.yaml`` beside the run's results. Each method's own",
           "section is on its page (:doc:`methods/index`).", "",
           *heading("Run", "-"),
           *config_table(RunBase, {k: defaults.get(k) for k in top if k in defaults}, "", skip=("train",)),
           *heading("Training loop (``train``)", "-"),
           *config_table(TrainConfig, defaults.get("train"), "train.")]
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


def result_files(root: Path) -> list[Path]:
    """Every recorded result: ``benchmarks/results/*.md`` and the learning records of the shipped
    configs, ``benchmarks/results/learning/<method>/<env>.md``."""
    results = root / "benchmarks" / "results"
    return sorted(results.glob("*.md")) + sorted((results / "learning").rglob("*.md"))


def _result_key(root: Path, path: Path) -> str:
    """How benchmarks/README.md names a result file: ``throughput.md``, or
    ``learning/<method>/<env>.md`` for every learning record."""
    rel = path.relative_to(root / "benchmarks" / "results")
    return "learning/<method>/<env>.md" if rel.parts[0] == "learning" else str(rel)


def benchmark_index(root: Path) -> dict[str, tuple[str, str, list[str]]]:
    """Result file key (see :func:`_result_key`) -> (script, what it measures, commands), from
    benchmarks/README.md."""
    readme = root / "benchmarks" / "README.md"
    if not readme.exists():
        return {}
    text = readme.read_text(encoding="utf-8")
    commands = [line for block in re.findall(r"```bash\n(.*?)\n```", text, re.S) for line in block.splitlines()]
    out = {}
    for line in text.splitlines():
        cells = _cells(line) if line.startswith("|") else []
        if len(cells) >= 3:
            script = cells[0].strip("`")
            for m in re.finditer(r"results/([\w.<>/-]+\.md)", cells[-1]):
                out[m.group(1)] = (script, cells[1], [c for c in commands if script in c])
    return out


def _of_method(root: Path, path: Path, method: str) -> bool:
    """Whether a result file is about ``method`` alone (its name or its folder says so)."""
    rel = path.relative_to(root / "benchmarks" / "results")
    return path.name.startswith(f"{method}_") or rel.parts[:2] == ("learning", method)


def benchmark_section(root: Path, path: Path, method: str | None) -> list[str]:
    """One results file as rST (rows of other methods left out when ``method`` is given)."""
    index = benchmark_index(root)
    text = path.read_text(encoding="utf-8")
    keep = None
    if method is not None and not _of_method(root, path, method):
        def keep(header: list[str], cells: list[str]) -> bool:
            col = header.index("method") if "method" in header else None
            return col is None or cells[col].strip("`* ") == method

        others = [m for m in shipped_methods(root) if m != method]
        text = "\n".join(line for line in text.splitlines()
                         if not any(re.match(rf"^\s*[-*]\s+\**{re.escape(o)}/", line) for o in others))
    rel = path.relative_to(root / "benchmarks" / "results")
    out = [f"From ``benchmarks/results/{rel}``"]
    key = _result_key(root, path)
    if key in index:
        script, what, commands = index[key]
        out[0] += f" (``benchmarks/{script}``): {md_inline(what)}."
        if key.startswith("learning/"):
            commands = []  # each learning record states its own command
        out += ["", *md_to_rst("\n".join(f"```bash\n{c}\n```" for c in commands))] if commands else [""]
    else:
        out += [""]
    return out + md_to_rst(text, keep)


def method_results(root: Path, method: str) -> list[Path]:
    """Result files of ``method``: ``<method>_*.md``, its learning records, and tables with a
    ``method`` column naming it."""
    out = []
    for path in result_files(root):
        text = path.read_text(encoding="utf-8")
        if _of_method(root, path, method) or re.search(rf"^\|\s*`?{re.escape(method)}`?\s*\|", text, re.M):
            out.append(path)
    return out


def method_page(root: Path, name: str, spec: Any) -> list[str]:
    from xmarl import docschema

    alg = docschema.algorithms().get(name)
    title = alg.title if alg else name
    out = [f".. This page is generated by docs/_ext/xmarl_docs.py for method '{name}'.", "",
           f".. _method-{name}:", "", *heading(title, "=")]
    paper = alg.paper if alg else (spec.paper if spec else "")
    out += [" ".join(paper.split()), ""]
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
    results = method_results(root, name)
    out += heading("Benchmarks", "-")
    if results:
        out += ["Recorded on the 2-core development machine; the scripts are in ``benchmarks/``.", ""]
        for path in results:
            out += benchmark_section(root, path, name)
    else:
        out += ["No recorded results yet.", ""]
    return out


def methods_index(names: list[str]) -> list[str]:
    return [".. This file is generated by docs/_ext/xmarl_docs.py.", "", *heading("Methods", "="),
            "One page per shipped method, generated from the registry, the config schema, the docstring",
            "schema and the recorded benchmarks.", "", ".. toctree::", "   :maxdepth: 1", "",
            *[f"   {n}" for n in names], ""]


def benchmarks_page(root: Path) -> list[str]:
    out = [".. This file is generated by docs/_ext/xmarl_docs.py from benchmarks/.", "",
           *heading("Benchmarks", "="),
           "Every speed or learning claim in xmarl is a script in ``benchmarks/`` with its recorded result",
           "in ``benchmarks/results/``; the method pages show the results of their method.", ""]
    for path in result_files(root):
        rel = path.relative_to(root / "benchmarks" / "results").with_suffix("")
        out += heading(str(rel).replace("_", " "), "-")
        out += benchmark_section(root, path, None)
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
def modules_under(root: Path, package: str, exclude: tuple[str, ...] = ()) -> list[str]:
    base = root / package.replace(".", "/")
    mods = []
    for path in sorted(base.rglob("*.py")):
        rel = path.relative_to(root).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        name = ".".join(parts)
        if parts[-1] == "__main__" or any(name == e or name.startswith(e + ".") for e in exclude):
            continue
        mods.append(name)
    return mods


def api_page(title: str, intro: str, modules: list[str]) -> list[str]:
    out = [".. This file is generated by docs/_ext/xmarl_docs.py.", "", *heading(title, "="), intro, ""]
    for m in modules:
        out += heading(f"``{m}``", "-")
        # each object once, under the module that defines it (packages' __all__ re-exports are skipped)
        out += [f".. automodule:: {m}", "   :members:", "   :ignore-module-all:", ""]
    return out


def api_pages(root: Path) -> dict[str, list[str]]:
    from xmarl.docschema.schema import BACKEND_TITLES

    pages = {"core": api_page("Core", "The backend-neutral core: it imports no deep-learning framework.",
                              modules_under(root, "xmarl", exclude=("xmarl.backends",)))}
    for b in BACKENDS:
        pages[b] = api_page(f"{BACKEND_TITLES[b]} backend",
                            f"``xmarl/backends/{b}/``: the same files and class names as the other backends.",
                            modules_under(root, f"xmarl.backends.{b}"))
    pages["index"] = [".. This file is generated by docs/_ext/xmarl_docs.py.", "", *heading("API reference", "="),
                      ".. toctree::", "   :maxdepth: 1", "", *[f"   {p}" for p in ["core", *BACKENDS]], ""]
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


def generate(root: Path, out: Path) -> list[Path]:
    """Write every generated page under ``out``; returns their paths."""
    with contextlib.redirect_stdout(io.StringIO()):  # plugins may print while loading
        methods = shipped_methods(root)
    pages: dict[str, list[str]] = {
        "config.rst": config_page(root),
        "cli.rst": cli_page(),
        "benchmarks.rst": benchmarks_page(root),
        "methods/index.rst": methods_index(list(methods)),
    }
    pages.update(readme_includes(root))
    for name, spec in methods.items():
        pages[f"methods/{name}.rst"] = method_page(root, name, spec)
    for name, lines in api_pages(root).items():
        pages[f"api/{name}.rst"] = lines
    for old in out.rglob("*.*") if out.exists() else []:
        if old.suffix in (".rst", ".inc") and str(old.relative_to(out)) not in pages:
            old.unlink()  # a page whose method or module is gone
    for rel, lines in pages.items():
        write(out / rel, lines)
    return [out / rel for rel in pages]


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


def _on_builder_inited(app: Any) -> None:
    srcdir = Path(app.srcdir)
    generate(srcdir.parent, srcdir / "_generated")


def setup(app: Any) -> dict[str, Any]:
    app.connect("builder-inited", _on_builder_inited)
    app.connect("autodoc-skip-member", _skip_schema_members)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
