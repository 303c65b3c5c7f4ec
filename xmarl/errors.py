"""Exceptions raised by xmarl. Every message is one line that names the fix.

Anything a user can cause (a config, a YAML file, a path, an env id, a checkpoint, a plugin, a
full disk) raises a subclass of :class:`XmarlError`; the ``xmarl`` command prints its message on
one line (``--debug`` or ``XMARL_DEBUG=1`` adds the traceback). Other exceptions are bugs.
"""

from __future__ import annotations

import contextlib
import difflib
import os
from collections.abc import Iterable, Iterator

#: how many names an error lists before it lists only the closest ones
MAX_LISTED = 8


def did_you_mean(word: str, options: Iterable[str], cutoff: float = 0.6, prefix: str = "") -> str:
    """``"; did you mean '<prefix>x'?"`` with the closest of ``options`` to ``word``, or ``""``:
    the hint every unknown-name error ends with."""
    match = difflib.get_close_matches(str(word), list(options), n=1, cutoff=cutoff)
    return f"; did you mean '{prefix}{match[0]}'?" if match else ""


def choices(word: str, options: Iterable[str], listing: str = "xmarl list") -> str:
    """``" (valid: a, b, c)"``, or for long lists ``" (closest: a, b, c; see `xmarl list`)"``: the
    tail of every unknown-name error, kept to one short line."""
    options = sorted(options)
    if len(options) <= MAX_LISTED:
        return f" (valid: {', '.join(options) or 'none'})"
    close = difflib.get_close_matches(str(word), options, n=3, cutoff=0.0)
    return f" (closest: {', '.join(close)}; see `{listing}`)"


def env_flag(name: str) -> bool:
    """Whether environment variable ``name`` is set to something other than empty, 0, false or no."""
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def debug_enabled() -> bool:
    """Whether errors show their traceback (``--debug`` or ``XMARL_DEBUG=1``)."""
    return env_flag("XMARL_DEBUG")


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


class PathError(XmarlError, OSError):
    """A path given to xmarl is missing, of the wrong kind, or cannot be written (no space,
    no permission, read-only)."""


class WeightsError(XmarlError, ValueError):
    """Weights (given or read from a checkpoint) do not fit the networks."""


class PluginError(XmarlError, ImportError):
    """An installed ``xmarl.plugins`` entry point failed to load."""


def one_line(exc: BaseException | str) -> str:
    """An exception's message (or a text) on one line, whitespace collapsed; the type name when empty."""
    text = " ".join(str(exc).split())
    return text or (type(exc).__name__ if isinstance(exc, BaseException) else "")


def os_error_message(exc: OSError) -> str:
    """One line for an error of the disk or a path (full, read-only, missing, a file where a folder goes)."""
    where = f" '{exc.filename}'" if exc.filename else ""
    return f"{exc.strerror or exc}{where}; check the path, its permissions and free space"


@contextlib.contextmanager
def path_errors() -> Iterator[None]:
    """Turn an ``OSError`` (not already an :class:`XmarlError`) into a :class:`PathError`."""
    try:
        yield
    except XmarlError:
        raise
    except OSError as exc:
        raise PathError(os_error_message(exc)) from exc
