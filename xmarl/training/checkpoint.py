"""Atomic files and framework-neutral checkpoints.

Every file is written to a temporary name in the same folder and renamed into place, so a
crash or Ctrl-C never leaves a half-written file. Weights are canonical numpy arrays in an
``.npz``, so a checkpoint written by one backend loads into any other.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def _atomic(path: str | os.PathLike[str], write: Any, mode: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
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
    return _atomic(path, lambda f: f.write(text), "w")


def atomic_save_npz(path: str | os.PathLike[str], arrays: dict[str, np.ndarray]) -> Path:
    return _atomic(path, lambda f: np.savez(f, **arrays), "wb")


def save_checkpoint(folder: str | os.PathLike[str], weights: dict[str, np.ndarray],
                    optimizer: dict[str, np.ndarray], trainer_state: dict[str, Any]) -> Path:
    """Write ``weights.npz``, ``optimizer.npz`` and ``trainer.json`` into ``folder``.

    ``trainer.json`` is written last: a checkpoint is complete exactly when it exists and
    names the same step as the arrays.
    """
    folder = Path(folder)
    step = int(trainer_state["step"])
    atomic_save_npz(folder / "weights.npz", {**weights, "__step__": np.array(step)})
    atomic_save_npz(folder / "optimizer.npz", {**optimizer, "__step__": np.array(step)})
    atomic_write_text(folder / "trainer.json", json.dumps(trainer_state, indent=1))
    return folder


def load_weights(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Canonical weights from a checkpoint folder or a ``weights.npz`` file."""
    p = Path(path)
    if p.is_dir():
        p = p / "weights.npz"
    with np.load(p) as data:
        return {k: data[k] for k in data.files if k != "__step__"}
