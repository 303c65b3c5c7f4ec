"""The schema check behind ``xmarl docs-schema --check``: every way the code and the schema can
disagree, one line per problem.

* a class registered (kind, name, backend) by xmarl with no schema entry, or registered under
  another key than its entry says;
* a schema entry whose class no longer exists in an installed backend, or is not decorated;
* a constructor or public-method argument that is undocumented, documented but gone, in
  another order, or with another default or annotation than the schema says; an undocumented
  public method, a documented method that is gone, a return value that disagrees;
* a shipped method (a section of ``configs/defaults.yaml`` that is registered) with no
  algorithm entry, or an algorithm entry for no registered method;
* placeholder text (a run of x's, to-do or fix-me markers, Latin filler) or an empty meaning
  in any rendered docstring.
"""

from __future__ import annotations

import importlib
import inspect
import re
from typing import Any

from xmarl.docschema.rendering import render_entry
from xmarl.docschema.schema import FORWARD_HOOKS, REQUIRED, Method, Param, Schema, all_methods, load, schema_key

PLACEHOLDER = re.compile(r"(?i:\bx{3,}\b)|\bTODO\b|\bFIXME\b|\bTBD\b|(?i:lorem ipsum)")

#: methods defined by these packages are the framework's API, not xmarl's
FRAMEWORK_PACKAGES = ("builtins", "abc", "typing", "torch", "tensorflow", "keras", "mindspore")


def placeholders(text: str) -> list[str]:
    """Placeholder words found in ``text``."""
    return [m.group(0) for m in PLACEHOLDER.finditer(text)]


def backend_of(cls: type) -> str | None:
    """``"torch"`` for ``xmarl.backends.torch....`` classes, None for core classes."""
    parts = cls.__module__.split(".")
    return parts[2] if parts[:2] == ["xmarl", "backends"] and len(parts) > 2 else None


def _ann(a: Any) -> str | None:
    if a is inspect.Parameter.empty or a is inspect.Signature.empty:
        return None
    return a if isinstance(a, str) else inspect.formatannotation(a)


def _norm(t: str) -> str:
    """An annotation without spaces or module prefixes (``commnet.CommNetConfig`` = ``CommNetConfig``)."""
    return re.sub(r"\b[A-Za-z_]\w*\.", "", re.sub(r"\s+", "", t))


def public_methods(cls: type, backend: str | None) -> dict[str, Any]:
    """Public methods of ``cls`` written in xmarl (own or inherited), keyed as the schema names
    them: the backend's forward hook (``forward``, ``construct``, ``__call__``) is ``__call__``."""
    hook = FORWARD_HOOKS.get(backend or "")
    out: dict[str, Any] = {}
    for name in dir(cls):
        if name.startswith("_") and name != hook:
            continue
        owner = next((k for k in cls.__mro__ if name in k.__dict__), None)
        if owner is None or owner.__module__.split(".")[0] in FRAMEWORK_PACKAGES:
            continue
        raw = owner.__dict__[name]
        if isinstance(raw, (staticmethod, classmethod)):
            raw = raw.__func__
        if not inspect.isfunction(raw):
            continue  # attributes, properties, nested classes
        if (getattr(raw, "__module__", None) or "").split(".")[0] in FRAMEWORK_PACKAGES:
            continue  # framework code patched onto an xmarl class (torch wraps Optimizer.step on first use)
        out["__call__" if name == hook else name] = raw
    return out


def _display(p: inspect.Parameter) -> str:
    return {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "") + p.name


def compare_args(where: str, documented: list[Param], func: Any, backend: str | None) -> list[str]:
    """Disagreements between documented arguments and ``func``'s signature (``self`` dropped)."""
    real = list(inspect.signature(func).parameters.values()) if func is not None else []
    if real and real[0].name in ("self", "cls"):
        real = real[1:]
    doc = [d for d in documented if not d.backends or backend in d.backends]
    real_by = {_display(p): p for p in real}
    doc_by = {d.name: d for d in doc}
    problems = [f"{where}: parameter '{n}' is not documented" for n in real_by if n not in doc_by]
    problems += [f"{where}: documented parameter '{n}' does not exist" for n in doc_by if n not in real_by]
    common_real = [n for n in real_by if n in doc_by]
    common_doc = [n for n in doc_by if n in real_by]
    if common_real != common_doc:
        problems.append(f"{where}: parameters documented in the order {common_doc}, the code has {common_real}")
    for n in common_real:
        p, d = real_by[n], doc_by[n]
        want = d.backend_defaults.get(backend or "", d.default)
        if want == REQUIRED:
            want = None
        if p.default is inspect.Parameter.empty:
            if want is not None:
                problems.append(f"{where}: parameter '{n}' is required but documented with default {want}")
        elif want is None:
            problems.append(f"{where}: parameter '{n}' has default {p.default!r}, which is not documented")
        elif repr(p.default) != want:
            problems.append(f"{where}: parameter '{n}' has default {p.default!r}, documented {want}")
        ann = _ann(p.annotation)
        if ann is not None and not d.per_backend_type and _norm(ann) != _norm(d.type):
            problems.append(f"{where}: parameter '{n}' is annotated '{ann}', documented '{d.type}'")
    return problems


def compare_method(where: str, m: Method, func: Any, backend: str | None) -> list[str]:
    problems = compare_args(where, m.args, func, backend)
    ann = _ann(inspect.signature(func).return_annotation)
    if m.returns is None:
        if ann not in (None, "None"):
            problems.append(f"{where}: returns '{ann}', but no return value is documented")
    elif ann == "None":
        problems.append(f"{where}: returns None, but a return value '{m.returns.type}' is documented")
    elif ann is not None and not m.returns.per_backend_type and _norm(ann) != _norm(m.returns.type):
        problems.append(f"{where}: returns '{ann}', documented '{m.returns.type}'")
    return problems


def check_class(cls: type, key: str | None = None, schema: Schema | None = None,
                backend: str | None = None) -> list[str]:
    """Disagreements between class ``cls`` (of ``backend``, default: from its module) and schema
    entry ``key`` (default: the one it was decorated with)."""
    schema = schema or load()
    backend = backend if backend is not None else backend_of(cls)
    where = f"{cls.__module__}.{cls.__qualname__}"
    key = key or schema_key(cls) or cls.__name__
    if key not in schema.classes:
        return [f"{where}: no schema entry '{key}'"]
    entry = schema.classes[key]
    init_owner = next(k for k in cls.__mro__ if "__init__" in k.__dict__)
    own_init = init_owner.__module__.split(".")[0] not in FRAMEWORK_PACKAGES  # else: no xmarl arguments
    problems = compare_args(f"{where}.__init__", entry.params, cls.__init__ if own_init else None, backend)
    documented = {k: m for k, m in all_methods(key, schema).items() if not m.backends or backend in m.backends}
    real = public_methods(cls, backend)
    problems += [f"{where}: public method '{k}' is not documented" for k in real if k not in documented]
    problems += [f"{where}: documented method '{k}' does not exist" for k in documented if k not in real]
    for k in real:
        if k in documented:
            problems += compare_method(f"{where}.{k}", documented[k], real[k], backend)
    if cls.__dict__.get("__xmarl_inline_doc__"):
        problems.append(f"{where}: has its own docstring, which the schema entry '{key}' replaces; move its text "
                        f"into the schema (xmarl/docschema/schema.yaml) and delete it")
    if (cls.__doc__ or "") != render_entry(key, schema):
        problems.append(f"{where}: docstring is not the one rendered from schema entry '{key}' "
                        f"(decorate the class with @documented)")
    return problems


def check_entry(key: str, schema: Schema | None = None) -> list[str]:
    """Problems of the entry itself: placeholder text, empty text, unknown references."""
    schema = schema or load()
    entry = schema.classes[key]
    where = f"schema entry '{key}'"
    problems = [f"{where}: placeholder text '{w}' in the rendered docstring"
                for w in placeholders(render_entry(key, schema))]
    texts = {"summary": entry.summary}
    for p in entry.params:
        texts[f"parameter '{p.name}'"] = p.meaning
    for k, m in entry.methods.items():
        texts[f"method '{k}'"] = m.summary
        for a in m.args:
            texts[f"method '{k}' argument '{a.name}'"] = a.meaning
    problems += [f"{where}: {what} has no text" for what, text in texts.items() if not text.strip()]
    if entry.inherits and entry.inherits not in schema.classes:
        problems.append(f"{where}: inherits unknown entry '{entry.inherits}'")
    problems += [f"{where}: used_by unknown algorithm '{a}'" for a in entry.used_by if a not in schema.algorithms]
    return problems


def shipped_methods() -> list[str]:
    """Registered methods that xmarl ships (those with a section in ``configs/defaults.yaml``)."""
    import yaml

    from xmarl import registry
    from xmarl.files import configs_dir

    defaults = yaml.safe_load((configs_dir() / "defaults.yaml").read_text())
    return [m for m in registry.names("method") if m in defaults]


def installed_backends() -> list[str]:
    """xmarl's own backends whose framework is installed."""
    from xmarl import registry

    return [b for b in FORWARD_HOOKS if registry.backend_installed(b)]


def check(schema: Schema | None = None) -> list[str]:
    """Every disagreement between the code (all installed backends) and the schema."""
    from xmarl import registry

    schema = schema or load()
    problems: list[str] = []
    for key in schema.classes:
        problems += check_entry(key, schema)

    for kind, name, backend in registry.entries():
        obj = registry.get(kind, name, backend)
        if backend is None or not isinstance(obj, type) or not obj.__module__.startswith("xmarl."):
            continue
        key = schema_key(obj)
        where = f"{obj.__module__}.{obj.__qualname__}"
        if key is None and obj.__name__ in schema.classes:
            problems.append(f"{where}: has schema entry '{obj.__name__}' but is not decorated with @documented")
        elif key is None or key not in schema.classes:
            problems.append(f"{where}: registered as ({kind}, {name}, {backend}) but has no schema entry")
        elif schema.classes[key].registry != (kind, name):
            problems.append(f"{where}: registered as ({kind}, {name}, {backend}) but schema entry '{key}' "
                            f"says {schema.classes[key].registry}")

    backends = installed_backends()
    for key, entry in schema.classes.items():
        for backend in [None] if entry.core else backends:
            path = entry.qualname(key, backend)
            module, _, name = path.rpartition(".")
            try:
                cls = getattr(importlib.import_module(module), name, None)
            except ModuleNotFoundError:
                cls = None
            if not isinstance(cls, type):
                problems.append(f"schema entry '{key}': class {path} does not exist")
                continue
            problems += check_class(cls, key, schema, backend)
            if entry.registry is not None:
                kind, rname = entry.registry
                try:
                    found = registry.get(kind, rname, backend)
                except Exception:  # noqa: BLE001 - reported as a problem line
                    found = None
                if found is not cls:
                    problems.append(f"{path}: schema entry '{key}' says it is registered as "
                                    f"({kind}, {rname}, {backend}), but that key holds {found!r}")

    shipped = shipped_methods()
    problems += [f"method '{m}' is shipped but has no algorithm entry in the schema"
                 for m in shipped if m not in schema.algorithms]
    registered = set(registry.names("method"))
    problems += [f"schema algorithm '{a}' is not a registered method" for a in schema.algorithms if a not in registered]
    for a, alg in schema.algorithms.items():
        problems += [f"schema algorithm '{a}': placeholder text '{w}'"
                     for w in placeholders(" ".join((alg.title, alg.summary, alg.paper, alg.equations)))]
    return problems
