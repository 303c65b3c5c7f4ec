"""Framework-neutral checkpoints.

Every file is written atomically (:mod:`xmarl.files`), and a checkpoint folder is filled under
a temporary name and renamed whole, so a crash or Ctrl-C never leaves a half-written file or
checkpoint. Weights are canonical numpy arrays in an ``.npz``, so a checkpoint written by one
backend loads into any other.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from xmarl.errors import XmarlError
from xmarl.files import atomic_write_text

CHECKPOINTS = "checkpoints"


def save_checkpoint(run_dir: str | os.PathLike[str], step: int, arrays: dict[str, dict[str, np.ndarray]],
                    blobs: dict[str, bytes], state: dict[str, Any], keep: int = 2) -> Path:
    """Write ``checkpoints/step_<N>/`` under ``run_dir`` and point ``checkpoints/latest`` at it.

    The folder is filled under a ``.partial`` name and renamed into place whole, then the
    ``latest`` pointer is replaced atomically: a crash at any moment leaves the previous
    checkpoint intact and complete. Only the newest ``keep`` checkpoints are kept.
    ``arrays`` maps file names (``weights.npz``) to arrays, ``blobs`` file names to bytes.
    """
    root = Path(run_dir) / CHECKPOINTS
    name = f"step_{int(step):012d}"
    final, tmp = root / name, root / f"{name}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for fname, arr in arrays.items():
        np.savez(tmp / fname, **arr)
    for fname, data in blobs.items():
        (tmp / fname).write_bytes(data)
    (tmp / "trainer.json").write_text(json.dumps(state))
    shutil.rmtree(final, ignore_errors=True)
    os.rename(tmp, final)
    atomic_write_text(root / "latest", name)
    done = sorted(p for p in root.glob("step_*") if p.is_dir() and not p.name.endswith(".partial"))
    for old in done[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(path: str | os.PathLike[str]) -> Path:
    """The newest complete checkpoint folder under a run folder, its ``checkpoints`` folder,
    or the checkpoint folder itself."""
    p = Path(path)
    for root in (p / CHECKPOINTS, p):
        pointer = root / "latest"
        if pointer.is_file():
            return root / pointer.read_text().strip()
    if (p / "trainer.json").is_file():
        return p
    raise XmarlError(f"no checkpoint in '{p}'; pass a run folder or a checkpoints/step_* folder")


def load_weights(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Canonical weights from a ``.npz`` file or the newest checkpoint under ``path``."""
    p = Path(path)
    if p.suffix != ".npz":
        p = latest_checkpoint(p) / "weights.npz"
    with np.load(p) as data:
        return {k: data[k] for k in data.files}


def load_arrays(folder: Path, fname: str) -> dict[str, np.ndarray]:
    with np.load(folder / fname) as data:
        return {k: data[k] for k in data.files}
