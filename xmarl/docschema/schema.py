"""Loading the schema and the :func:`documented` decorator that applies it."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, TypeVar, overload

import yaml
from pydantic import BaseModel, ConfigDict, Field

SCHEMA_PATH = Path(__file__).with_name("schema.yaml")

#: the framework method that runs a module's forward pass; the schema calls it ``__call__``
FORWARD_HOOKS = {"torch": "forward", "tensorflow": "__call__", "mindspore": "construct"}
#: a ``backend_defaults`` value: the argument has no default in that backend
REQUIRED = "required"
#: how backends are named in rendered text
BACKEND_TITLES = {"torch": "torch", "tensorflow": "TensorFlow", "mindspore": "MindSpore"}

C = TypeVar("C", bound=type)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Param(_Strict):
    """One argument of a constructor or method."""

    name: str
    type: str = Field(description="The annotation as written in the code (compared), or prose when per_backend_type.")
    meaning: str
    default: str | None = Field(None, description="repr() of the default; absent when the argument is required.")
    backend_defaults: dict[str, str] = Field(default_factory=dict, description="backend -> repr() where it differs "
                                                                            "('required': no default there).")
    per_backend_type: bool = Field(False, description="The annotation differs by backend (framework types).")
    backends: list[str] | None = Field(None, description="Only these backends have the argument.")


class Returns(_Strict):
    type: str
    meaning: str
    per_backend_type: bool = False


class Method(_Strict):
    """A public method; ``__call__`` stands for the framework's forward hook (see FORWARD_HOOKS)."""

    summary: str
    args: list[Param] = Field(default_factory=list)
    returns: Returns | None = None
    backends: list[str] | None = None


class Attribute(_Strict):
    name: str
    type: str
    meaning: str


class ClassEntry(_Strict):
    """One class, shared by every backend that implements it (or one core class)."""

    module: str = Field(description="Backend-relative module ('policies', 'learners.maddpg') or a full "
                                    "'xmarl.' module for a core class.")
    summary: str
    description: str = ""
    registry: tuple[str, str] | None = Field(None, description="(kind, name) it is registered under per backend.")
    used_by: list[str] = Field(default_factory=list, description="Algorithms whose page shows this class.")
    inherits: str | None = Field(None, description="A schema entry whose methods this class also has.")
    params: list[Param] = Field(default_factory=list)
    attributes: list[Attribute] = Field(default_factory=list)
    methods: dict[str, Method] = Field(default_factory=dict)
    paper: str | None = None

    @property
    def core(self) -> bool:
        return self.module.startswith("xmarl.")

    def qualname(self, name: str, backend: str | None) -> str:
        """Import path of the class named ``name`` in ``backend`` (None for a core class). A
        plugin's entry names its full module with a ``{backend}`` field
        (``"my_plugin.backends.{backend}"``)."""
        if "{backend}" in self.module:
            return f"{self.module.format(backend=backend)}.{name}"
        if self.core:
            return f"{self.module}.{name}"
        return f"xmarl.backends.{backend}.{self.module}.{name}"


class Algorithm(_Strict):
    """A shipped method's page: its paper and its update in a few equations (reStructuredText)."""

    title: str
    paper: str
    summary: str
    equations: str


class Schema(_Strict):
    classes: dict[str, ClassEntry]
    algorithms: dict[str, Algorithm]


def _parse(path: str | Path) -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(Path(path).read_text(encoding="utf-8"), Loader=loader) or {}


@cache
def load(path: str | None = None) -> Schema:
    """The parsed schema, validated; cached. Without ``path``, xmarl's own ``schema.yaml``;
    with one, a plugin's schema file laid over xmarl's (its entries may inherit xmarl's, e.g.
    ``inherits: LearnerBase``, and its own entries win)."""
    if path is None or Path(path).resolve() == SCHEMA_PATH.resolve():
        return Schema.model_validate(_parse(SCHEMA_PATH))
    base, own = _parse(SCHEMA_PATH), _parse(path)
    return Schema.model_validate({part: {**base.get(part, {}), **(own.get(part) or {})}
                                  for part in ("classes", "algorithms")})


def classes() -> dict[str, ClassEntry]:
    return load().classes


def algorithms() -> dict[str, Algorithm]:
    return load().algorithms


def class_entry(name: str, schema: Schema | None = None) -> ClassEntry:
    entries = (schema or load()).classes
    if name not in entries:
        raise KeyError(f"no docstring schema entry for class '{name}' (add it to {SCHEMA_PATH.name})")
    return entries[name]


def algorithm_entry(name: str) -> Algorithm:
    entries = algorithms()
    if name not in entries:
        raise KeyError(f"no docstring schema entry for algorithm '{name}' (add it to {SCHEMA_PATH.name})")
    return entries[name]


def all_methods(name: str, schema: Schema | None = None) -> dict[str, Method]:
    """The class's methods, its own first, then those of the entries it inherits from."""
    entry = class_entry(name, schema)
    methods = dict(entry.methods)
    if entry.inherits:
        for k, m in all_methods(entry.inherits, schema).items():
            methods.setdefault(k, m)
    return methods


def schema_key(cls: type) -> str | None:
    """The schema entry a class was documented with, or None (inherited marks do not count)."""
    return cls.__dict__.get("__xmarl_doc__")


@overload
def documented(target: C) -> C: ...
@overload
def documented(target: str | None = None, *, schema: str | None = None) -> Callable[[C], C]: ...


def documented(target: Any = None, *, schema: str | None = None) -> Any:
    """Class decorator: render the schema entry into ``cls.__doc__``.

    ``@documented`` uses the class name as the key; ``@documented("Key")`` names another.
    ``schema`` is the path of a plugin's own schema file (see :func:`load`); the class then
    remembers it (``__xmarl_schema__``) for :func:`schema_of`. A class with no entry keeps its
    docstring; ``xmarl docs-schema --check`` reports it.
    """

    def apply(cls: C, key: str | None) -> C:
        from xmarl.docschema.rendering import render, render_entry

        key = key or cls.__name__
        cls.__xmarl_doc__ = key  # type: ignore[attr-defined]
        if schema is not None:
            cls.__xmarl_schema__ = str(schema)  # type: ignore[attr-defined]
        entries = load(schema).classes if schema is not None else classes()
        if key in entries:
            if cls.__dict__.get("__doc__"):  # text the schema would silently replace: the check reports it
                cls.__xmarl_inline_doc__ = cls.__doc__  # type: ignore[attr-defined]
            cls.__doc__ = render(key) if schema is None else render_entry(key, load(schema))
        return cls

    if isinstance(target, type):
        return apply(target, None)
    return lambda cls: apply(cls, target)


def schema_of(cls: type) -> Schema:
    """The schema a class was documented from: a plugin's (``@documented(schema=...)``) or xmarl's."""
    return load(cls.__dict__.get("__xmarl_schema__"))
