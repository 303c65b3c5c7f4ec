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
"""

from __future__ import annotations

import importlib
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


def config_twin(name: str) -> str | None:
    """The env whose shipped configs ``name`` shares when it has none of its own: the mpe2 task
    of an ``mpe-fast/<task>`` (the same transitions, bit for bit), else None."""
    prefix = "mpe-fast/"
    return f"mpe/{name[len(prefix):]}" if name.startswith(prefix) else None


def make_env(name: str, num_envs: int = 1, **kwargs: Any) -> VectorEnvBase:
    """Build ``num_envs`` copies of env ``name`` as one vectorised env: its native one (kind
    ``"vector_env"``) when registered, else the PettingZoo adapter :class:`VectorEnv`."""
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


__all__ = ["VectorEnvBase", "VectorEnv", "make_env", "config_twin", "MPE_TASKS"]
