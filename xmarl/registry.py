"""The registry: ``(kind, name, backend) -> factory``.

Backends register their classes with :func:`register` in their own modules. Those modules
are imported only when a backend is first asked for, so ``import xmarl`` never imports a
deep-learning framework. Third-party packages add methods, environments, or whole backends
through the ``xmarl.plugins`` entry-point group: each entry point names a module or a
callable; loading the module (or calling the callable with this module) registers its
entries.

Backend-neutral entries (methods, environments) use ``backend=None``.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, TypeVar

from xmarl.errors import BackendNotInstalledError, PluginError, RegistryError, choices, did_you_mean, env_flag, one_line

F = TypeVar("F", bound=Callable[..., Any])

PLUGIN_GROUP = "xmarl.plugins"


@dataclass(frozen=True)
class BackendInfo:
    """How to load a backend: the framework module it needs and the pip extra that installs it."""

    name: str
    framework: str
    module: str
    extra: str


_BACKENDS: dict[str, BackendInfo] = {}
_ENTRIES: dict[tuple[str, str, str | None], Any] = {}
_LOADED_BACKENDS: set[str] = set()
_PLUGINS_LOADED = False


def register_backend(name: str, framework: str, module: str, extra: str | None = None) -> None:
    """Declare a backend: ``module`` is imported on first use and registers its classes."""
    _BACKENDS[name] = BackendInfo(name, framework, module, extra or name)


register_backend("torch", "torch", "xmarl.backends.torch")
register_backend("tensorflow", "tensorflow", "xmarl.backends.tensorflow")
register_backend("mindspore", "mindspore", "xmarl.backends.mindspore")


def register(kind: str, name: str, backend: str | None = None) -> Callable[[F], F]:
    """Class/function decorator adding ``obj`` under ``(kind, name, backend)``."""

    def deco(obj: F) -> F:
        _ENTRIES[(kind, name, backend)] = obj
        return obj

    return deco


def add(kind: str, name: str, obj: Any, backend: str | None = None) -> None:
    """Register ``obj`` without a decorator."""
    _ENTRIES[(kind, name, backend)] = obj


def backends() -> list[str]:
    """Names of every declared backend, installed or not."""
    load_plugins()
    return sorted(_BACKENDS)


def backend_installed(name: str) -> bool:
    """Whether the framework behind backend ``name`` can be imported."""
    info = _backend_info(name)
    return importlib.util.find_spec(info.framework) is not None


def _backend_info(name: str) -> BackendInfo:
    load_plugins()
    if name not in _BACKENDS:
        valid = sorted(_BACKENDS)
        raise RegistryError(f"unknown backend '{name}'{did_you_mean(name, valid, cutoff=0.5)}{choices(name, valid)}")
    return _BACKENDS[name]


def load_backend(name: str) -> None:
    """Import backend ``name`` so that it registers its classes; explain a missing framework."""
    info = _backend_info(name)
    if name in _LOADED_BACKENDS:
        return
    if not backend_installed(name):
        raise BackendNotInstalledError(
            f"backend '{name}' needs {info.framework}, which is not installed: "
            f"pip install 'xmarl[{info.extra}]'"
        )
    with _quiet_native_stderr():
        importlib.import_module(info.module)
    _LOADED_BACKENDS.add(name)


def verbose() -> bool:
    """Whether frameworks may print their own log lines (``--verbose`` or ``XMARL_VERBOSE=1``)."""
    return env_flag("XMARL_VERBOSE")


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Send what native code writes to stderr while a framework is imported (TensorFlow's
    oneDNN and absl notices, MindSpore's start-up warnings) to /dev/null, unless verbose. Python
    errors are unaffected: an exception is raised after stderr is restored."""
    if verbose():
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable stderr (e.g. a closed descriptor): nothing to hide
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def load_plugins() -> None:
    """Load every ``xmarl.plugins`` entry point once."""
    global _PLUGINS_LOADED
    if _PLUGINS_LOADED:
        return
    _PLUGINS_LOADED = True
    for ep in entry_points(group=PLUGIN_GROUP):
        try:
            obj = ep.load()
            if callable(obj):
                obj(importlib.import_module(__name__))
        except Exception as exc:  # a broken third-party plugin must not look like an xmarl bug
            dist = getattr(getattr(ep, "dist", None), "name", None) or ep.value.split(":")[0].split(".")[0]
            problem = one_line(f"{type(exc).__name__}: {exc}")
            raise PluginError(f"plugin '{ep.name}' ({ep.value}) failed to load: {problem}; "
                              f"fix it or remove it with: pip uninstall {dist}") from exc


def names(kind: str, backend: str | None = None) -> list[str]:
    """Registered names of ``kind`` (for ``backend``; backend-neutral entries when None)."""
    load_plugins()
    if backend is not None and backend_installed(backend):
        load_backend(backend)
    return sorted({n for (k, n, b) in _ENTRIES if k == kind and b == backend})


def get(kind: str, name: str, backend: str | None = None) -> Any:
    """The object registered under ``(kind, name, backend)``; loads the backend on first use."""
    load_plugins()
    if backend is not None:
        load_backend(backend)
    key = (kind, name, backend)
    if key not in _ENTRIES:
        valid = sorted({n for (k, n, b) in _ENTRIES if k == kind and b == backend})
        where = f" for backend '{backend}'" if backend else ""
        hint = did_you_mean(name, valid, cutoff=0.5) + choices(name, valid)
        raise RegistryError(f"unknown {kind} '{name}'{where}{hint}")
    return _ENTRIES[key]


def find(kind: str, name: str, backend: str | None = None) -> Any | None:
    """The object registered under ``(kind, name, backend)``, or None (no error, no backend import)."""
    load_plugins()
    return _ENTRIES.get((kind, name, backend))


def entries() -> list[tuple[str, str, str | None]]:
    """Every registered key, after loading plugins and every installed backend."""
    load_plugins()
    for b in list(_BACKENDS):
        if backend_installed(b):
            load_backend(b)
    return sorted(_ENTRIES, key=lambda k: (k[0], k[1], k[2] or ""))


def devices(backend: str) -> list[str]:
    """The devices backend ``backend`` sees, in canonical names (``cpu``, ``gpu:0``, ``ascend:0``;
    the CPU first); loads the backend. A backend without a ``("runtime", "devices")`` entry
    runs on the CPU only."""
    load_backend(backend)
    listing = _ENTRIES.get(("runtime", "devices", backend))
    return ["cpu"] if listing is None else list(listing())


def table() -> str:
    """Methods × backends, as printed by ``xmarl list``."""
    entries()
    methods = names("method")
    cols = backends()
    installed = {b: backend_installed(b) for b in cols}
    header = ["method"] + [f"{b}{'' if installed[b] else ' (not installed)'}" for b in cols]
    rows = [header]
    for m in methods:
        row = [m]
        for b in cols:
            if not installed[b]:
                row.append("-")
            else:
                row.append("yes" if ("learner", m, b) in _ENTRIES else "no")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.append("")
    lines.append("devices: " + "; ".join(f"{b}: {', '.join(devices(b))}" for b in cols if installed[b]))
    envs = names("env")
    lines.append("environments: " + ", ".join(envs))
    return "\n".join(lines)
