"""Exceptions raised by xmarl. Every message is one line that names the fix."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(word: str, options: Iterable[str], cutoff: float = 0.6, prefix: str = "") -> str:
    """``"; did you mean '<prefix>x'?"`` with the closest of ``options`` to ``word``, or ``""``:
    the hint every unknown-name error ends with."""
    match = difflib.get_close_matches(str(word), list(options), n=1, cutoff=cutoff)
    return f"; did you mean '{prefix}{match[0]}'?" if match else ""


class XmarlError(Exception):
    """Base class of every error xmarl raises on purpose."""


class ConfigError(XmarlError, ValueError):
    """A config file, key or value is invalid."""


class RegistryError(XmarlError, KeyError):
    """An unknown (kind, name, backend) was asked for."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class BackendNotInstalledError(XmarlError, ImportError):
    """The deep-learning framework behind a backend is not importable."""


class EnvError(XmarlError, ValueError):
    """An environment is unknown or does not fit the method."""


class TrainingError(XmarlError, RuntimeError):
    """Training cannot go on (a non-finite loss, weight or observation)."""
