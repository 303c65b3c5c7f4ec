"""Files xmarl writes and ships: atomic writes (a temporary name in the same folder, renamed
into place, so a crash or Ctrl-C never leaves a half-written file) and the folder of the
shipped YAML configs. Imports nothing else of xmarl, so every package may use it."""

from __future__ import annotations

import os
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np


def configs_dir() -> Path:
    """Folder of the shipped YAML configs (``configs/`` of the source tree)."""
    return Path(str(resources.files("xmarl._configs")))


def _umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _atomic(path: str | os.PathLike[str], write: Any, mode: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file private (0600); a written file gets the permissions any new file would
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    return _atomic(path, lambda f: f.write(text), "w")


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return _atomic(path, lambda f: f.write(data), "wb")


def atomic_save_npz(path: str | os.PathLike[str], arrays: dict[str, np.ndarray]) -> Path:
    """Save ``arrays`` as an ``.npz`` at ``path`` atomically."""
    return _atomic(path, lambda f: np.savez(f, **arrays), "wb")
