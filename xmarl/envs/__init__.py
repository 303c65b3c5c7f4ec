"""Environments: the PettingZoo adapter, MPE tasks and small built-in games.

Every vectorised env implements :class:`VectorEnvBase` (``xmarl.envs.base``); the PettingZoo
adapter :class:`VectorEnv` is one of them. ``make_env(name, num_envs, **kwargs)`` builds one.
Names are registered under kind ``"env"``: ``mpe/<task>`` for the mpe2 tasks and built-in games
by name.
Natively vectorised envs (``mpe-fast/simple_spread_v3``, ``mpe-fast/simple_speaker_listener_v4``,
``mpe-fast/simple_reference_v3``, ``levers``) also register a factory
``(num_envs, **kwargs) -> env`` under kind ``"vector_env"``, which ``make_env`` prefers; their
``"env"`` entry is the equivalent PettingZoo env (mpe2's; one levers game for ``levers``), so
every name is listed in one place.

The benchmark suites, each an extra: ``lbf/<id>`` and ``rware/<id>`` (gymnasium tuple-space envs,
:mod:`xmarl.envs.gym_tuple`), ``vmas/<scenario>`` (batched VMAS worlds, :mod:`xmarl.envs.vmas`)
and ``magent/<env>`` (MAgent2 through the PettingZoo adapter, :mod:`xmarl.envs.magent`). Their
``"vector_env"`` entries exist while the package is installed; their ``"env"`` entries always do
and, without the package, raise :class:`~xmarl.errors.BackendNotInstalledError` naming the extra
(with it: MAgent2's is its PettingZoo env; the others, not PettingZoo envs, say so).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
from typing import Any

from xmarl import registry
from xmarl.envs.base import VectorEnvBase
from xmarl.envs.pettingzoo import VectorEnv
from xmarl.errors import BackendNotInstalledError, EnvError, XmarlError, one_line

MPE_TASKS = (
    "simple_spread_v3",
    "simple_speaker_listener_v4",
    "simple_reference_v3",
    "simple_adversary_v3",
    "simple_tag_v3",
    "simple_push_v3",
    "simple_crypto_v3",
    "simple_world_comm_v3",
    "simple_v3",
)


def _mpe_factory(task: str):
    def factory(**kwargs: Any):
        try:
            mod = importlib.import_module(f"mpe2.{task}")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("mpe2"):
                raise BackendNotInstalledError(
                    f"env 'mpe/{task}' needs the mpe2 package: pip install 'xmarl[mpe]'"
                ) from None
            raise
        kwargs.setdefault("max_cycles", 25)
        try:
            return mod.parallel_env(**kwargs)
        except TypeError as exc:
            raise EnvError(f"env 'mpe/{task}': bad env kwargs {sorted(kwargs)}: {exc}") from None

    return factory


for _task in MPE_TASKS:
    registry.add("env", f"mpe/{_task}", _mpe_factory(_task))

from xmarl.envs import games, median  # noqa: E402,F401  (registers the built-in games)
from xmarl.envs.mpe_fast import NAME as _FAST_SPREAD  # noqa: E402
from xmarl.envs.mpe_fast import (  # noqa: E402
    NAME_ADVERSARY,
    NAME_PUSH,
    NAME_TAG,
    make_fast_adversary,
    make_fast_push,
    make_fast_reference,
    make_fast_speaker_listener,
    make_fast_spread,
    make_fast_tag,
)
from xmarl.envs.mpe_fast import NAME_REFERENCE as _FAST_REFERENCE  # noqa: E402
from xmarl.envs.mpe_fast import NAME_SPEAKER_LISTENER as _FAST_SPEAKER_LISTENER  # noqa: E402

# each mpe-fast task, and under kind "env" its transition-equivalent PettingZoo env (mpe2's own)
for _fast, _make, _task in [(_FAST_SPREAD, make_fast_spread, "simple_spread_v3"),
                            (_FAST_SPEAKER_LISTENER, make_fast_speaker_listener, "simple_speaker_listener_v4"),
                            (_FAST_REFERENCE, make_fast_reference, "simple_reference_v3"),
                            (NAME_TAG, make_fast_tag, "simple_tag_v3"),
                            (NAME_ADVERSARY, make_fast_adversary, "simple_adversary_v3"),
                            (NAME_PUSH, make_fast_push, "simple_push_v3")]:
    registry.add("vector_env", _fast, _make)
    registry.add("env", _fast, _mpe_factory(_task))

from xmarl.envs.levers import NAME as _LEVERS  # noqa: E402
from xmarl.envs.levers import LeversParallel, make_levers  # noqa: E402

registry.add("vector_env", _LEVERS, make_levers)  # the lever-pulling game, batched in numpy
registry.add("env", _LEVERS, LeversParallel)

# the benchmark suites, each an extra: their kind "vector_env" entry is there only while the package
# is installed (so that every registered vector env builds); their kind "env" entry always is, and
# names the extra to install when the package is missing
from xmarl.envs import gym_tuple as _gym_tuple  # noqa: E402
from xmarl.envs import magent as _magent  # noqa: E402
from xmarl.envs import vmas as _vmas  # noqa: E402


@functools.cache
def _installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


for _prefix, (_package, _extra, _ids, _version, _limit, _off) in _gym_tuple.SUITES.items():
    for _id in _ids:  # lbf/<id> and rware/<id>, with and without the version suffix
        for _name in (f"{_prefix}/{_id}", f"{_prefix}/{_id.removesuffix(_version)}"):
            if _installed(_package):
                _make = _gym_tuple.gym_tuple_factory(_name, _id, _package, _extra, _limit, _off)
                registry.add("vector_env", _name, _make)
            registry.add("env", _name, _gym_tuple.gym_tuple_env_entry(_name, _package, _extra))
for _scenario in _vmas.VMAS_SCENARIOS:  # vmas/<scenario>: VMAS's batched worlds
    if _installed("vmas"):
        registry.add("vector_env", f"vmas/{_scenario}", _vmas.make_vmas_factory(_scenario))
    registry.add("env", f"vmas/{_scenario}", _vmas.vmas_env_entry(_scenario))
for _env in _magent.MAGENT_ENVS:  # magent/<env>: the PettingZoo env, and the vector env with team measures
    if _installed("magent2"):
        registry.add("vector_env", f"magent/{_env}", _magent.make_magent_vector_factory(_env))
    registry.add("env", f"magent/{_env}", _magent.make_magent_factory(_env))


#: (the fast twin's prefix, its reference's): ``mpe-fast/<task>`` steps mpe2's ``mpe/<task>`` bit for bit
_TWIN, _REFERENCE = "mpe-fast/", "mpe/"


def config_twin(name: str) -> str | None:
    """The env whose shipped configs ``name`` shares when it has none of its own: the mpe2 task
    of an ``mpe-fast/<task>`` (the same transitions, bit for bit), else None."""
    return f"{_REFERENCE}{name[len(_TWIN):]}" if name.startswith(_TWIN) else None


def fast_twin(name: str, env_kwargs: dict[str, Any] | None = None) -> str | None:
    """The transition-identical vectorised twin that a run of env ``name`` steps by default
    (``env_impl: auto``): ``mpe-fast/<task>`` for ``mpe/<task>`` (mpe2's transitions bit for bit,
    tens of times its env-steps/s), when xmarl ships that task and the twin takes every key of
    ``env_kwargs`` (it does not take e.g. mpe2's ``render_mode`` or ``dynamic_rescaling``); else None."""
    if not name.startswith(_REFERENCE):
        return None
    fast = f"{_TWIN}{name[len(_REFERENCE):]}"
    if fast not in registry.names("vector_env"):
        return None
    try:
        inspect.signature(registry.get("vector_env", fast)).bind(1, **(env_kwargs or {}))
    except TypeError:
        return None
    return fast


def run_env(name: str, env_impl: str = "auto", env_kwargs: dict[str, Any] | None = None) -> str:
    """The env a run of config env ``name`` steps: with ``env_impl`` ``"auto"`` its
    :func:`fast_twin` when it has one, else (and with ``"reference"``) ``name`` itself."""
    if env_impl not in ("auto", "reference"):
        raise EnvError(f"env_impl '{env_impl}' is not one of auto, reference")
    return (fast_twin(name, env_kwargs) if env_impl == "auto" else None) or name


def make_env(name: str, num_envs: int = 1, workers: int = 1, **kwargs: Any) -> VectorEnvBase:
    """Build ``num_envs`` copies of env ``name`` as one vectorised env: its native one (kind
    ``"vector_env"``) when registered, else the PettingZoo adapter :class:`VectorEnv`. With
    ``workers > 1`` the copies are stepped in that many worker processes
    (:class:`~xmarl.envs.workers.WorkerVectorEnv`; the env must be one ``xmarl`` registers on
    import, or a plugin's, so that a worker can build it by name)."""
    if workers > 1:
        from xmarl.envs.workers import WorkerVectorEnv

        probe = make_env(name, 1, **kwargs)  # the spec, and a bad name or kwargs fail here, in one line
        spec = probe.spec
        probe.close()
        return WorkerVectorEnv(functools.partial(make_env, name, **kwargs), num_envs, workers, name, spec)
    try:
        if name in registry.names("vector_env"):
            return registry.get("vector_env", name)(num_envs, **kwargs)
        factory = registry.get("env", name)
        return VectorEnv(lambda: factory(**kwargs), num_envs, name=name)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, XmarlError):
            raise
        raise EnvError(f"env '{name}' cannot be built with env_kwargs {kwargs}: {one_line(exc)}; "
                       "fix env_kwargs") from exc


__all__ = ["VectorEnvBase", "VectorEnv", "make_env", "config_twin", "fast_twin", "run_env", "MPE_TASKS"]
