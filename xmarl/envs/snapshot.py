"""Snapshots of live environments, for exact resume.

Gymnasium/PettingZoo environments pickle through ``EzPickle``, which rebuilds a *fresh*
environment from its constructor arguments and so loses the episode in progress. A snapshot
instead keeps every attribute (world state, RNGs, step counters). Pygame render caches are
recreated blank (a surface of the same size, the same font file), since they hold no state.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

from gymnasium.utils import EzPickle


def _new(cls: type) -> Any:
    return cls.__new__(cls)


def _set_dict(obj: Any, state: dict[str, Any]) -> None:
    obj.__dict__.update(state)


class _StatePickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, EzPickle) and not isinstance(obj, type):
            return _new, (type(obj),), obj.__dict__, None, None, _set_dict
        module = type(obj).__module__
        if module.startswith("pygame"):
            import pygame
            import pygame.freetype

            if isinstance(obj, pygame.Surface):
                return pygame.Surface, (obj.get_size(),)
            if isinstance(obj, pygame.freetype.Font):
                return pygame.freetype.Font, (obj.path, obj.size)
        return NotImplemented


def snapshot(obj: Any) -> bytes:
    """Bytes from which :func:`restore` rebuilds ``obj`` exactly as it is now."""
    buf = io.BytesIO()
    _StatePickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buf.getvalue()


def restore(data: bytes) -> Any:
    return pickle.loads(data)
