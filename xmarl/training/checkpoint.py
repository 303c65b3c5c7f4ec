"""Framework-neutral checkpoints, the run folder's replay store and its lock.

Every file is written atomically (:mod:`xmarl.files`), and a checkpoint folder is filled under
a temporary name and renamed whole, so a crash or Ctrl-C never leaves a half-written file or
checkpoint. Weights are canonical numpy arrays in an ``.npz``, so a checkpoint written by one
backend loads into any other.

Layout of a run folder::

    checkpoints/step_<N>/   weights.npz, optimizer.npz, trainer.json, env.pkl, and either
                            buffer.npz (a small buffer, whole) or replay.json (see below)
    checkpoints/latest      the name of the newest complete checkpoint
    replay/                 the replay buffer's chunk files, shared by the checkpoints
    .lock                   held (``flock``) by the process training the run; holds its pid

A run that trains a learner per agent group keeps each group's buffer apart: ``buffer-<group>.npz``
or ``replay-<group>.json`` naming chunk files ``<group>-chunk_*`` (:func:`replay_json`).

A replay buffer is stored once per run, not once per checkpoint: it is cut into chunks of
consecutive ring rows, and a checkpoint writes only the chunks whose rows changed since the
previous one, each to a new file (never over a file an older checkpoint reads). Its
``replay.json`` names the file of every chunk, the ring position and the size. Files that no
kept checkpoint names are deleted once a newer checkpoint is complete, so the run folder holds
the replay once plus the rows rewritten between the two kept checkpoints.

A checkpoint that cannot be written (no space, a read-only folder, a file-size limit) leaves
the previous one as it was and raises a one-line :class:`~xmarl.errors.XmarlError`; one that
is damaged on disk is refused naming the file (:func:`load_arrays`, :func:`load_json`), and
:func:`checkpoint_candidates` lists the older ones a resume can fall back to.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from xmarl.errors import XmarlError, one_line
from xmarl.files import atomic_save_npz, atomic_write_text

try:
    import fcntl
except ImportError:  # Windows: the lock falls back to the pid in the lock file
    fcntl = None  # type: ignore[assignment]

CHECKPOINTS = "checkpoints"
REPLAY = "replay"
LOCK = ".lock"


@dataclass
class ReplayChunks:
    """A replay buffer's part of a checkpoint (see the module docstring).

    ``files[j]`` is the file (in ``replay/``) holding chunk ``j`` (rows ``j * chunk_rows`` on) as
    the previous checkpoint saved it, or None; ``new`` maps the chunks changed since then to
    their rows. :func:`save_checkpoint` writes those and, once the checkpoint is complete,
    updates ``files`` in place and empties ``new``.
    """

    chunk_rows: int
    pos: int
    size: int
    files: list[str | None]
    new: dict[int, dict[str, np.ndarray]]


def replay_json(name: str = "") -> str:
    """The file of a checkpoint that names replay ``name``'s chunks (``""``: the run's one replay)."""
    return f"replay-{name}.json" if name else "replay.json"


def save_checkpoint(run_dir: str | os.PathLike[str], step: int, arrays: dict[str, dict[str, np.ndarray]],
                    blobs: dict[str, bytes], state: dict[str, Any], keep: int = 2,
                    replay: ReplayChunks | dict[str, ReplayChunks] | None = None) -> Path:
    """Write ``checkpoints/step_<N>/`` under ``run_dir`` and point ``checkpoints/latest`` at it.

    The folder is filled under a ``.partial`` name and renamed into place whole, then the
    ``latest`` pointer is replaced atomically: a crash at any moment leaves the previous
    checkpoint intact and complete. Only the newest ``keep`` checkpoints are kept, and the
    replay chunk files none of them names are deleted.
    ``arrays`` maps file names (``weights.npz``) to arrays, ``blobs`` file names to bytes;
    ``replay`` (optional) is the replay buffer, stored in ``replay/`` as the module docstring says,
    or ``{name: replay}`` for several (each in :func:`replay_json` ``(name)``).
    A write that fails (no space, a read-only folder) removes what it wrote and raises a
    one-line :class:`XmarlError` naming the last good checkpoint.
    """
    run_dir = Path(run_dir)
    root = run_dir / CHECKPOINTS
    name = f"step_{int(step):012d}"
    final, tmp = root / name, root / f"{name}.partial"
    renamed = False
    replays = {"": replay} if isinstance(replay, ReplayChunks) else dict(replay or {})
    try:
        files = {k: _write_chunks(run_dir, step, r, k) for k, r in replays.items()}
        _clear_leftovers(root)
        tmp.mkdir(parents=True)
        for fname, arr in arrays.items():
            np.savez(tmp / fname, **arr)
        for fname, data in blobs.items():
            (tmp / fname).write_bytes(data)
        for k, r in replays.items():
            (tmp / replay_json(k)).write_text(json.dumps(
                {"chunk_rows": r.chunk_rows, "pos": r.pos, "size": r.size, "files": files[k]}))
        (tmp / "trainer.json").write_text(json.dumps(state))
        shutil.rmtree(final, ignore_errors=True)
        os.rename(tmp, final)
        renamed = True
        atomic_write_text(root / "latest", name)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if renamed and _pointer(root) != name:  # in place, but the pointer still names the previous one
            shutil.rmtree(final, ignore_errors=True)
        prune_replay(run_dir)
        if isinstance(exc, OSError):
            raise XmarlError(_write_error(final, exc)) from exc
        raise
    for k, r in replays.items():
        r.files, r.new = files[k], {}
    done = sorted(p for p in root.glob("step_*") if p.is_dir() and not p.name.endswith(".partial"))
    for old in done[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    prune_replay(run_dir)
    return final


def _clear_leftovers(root: Path) -> None:
    """Remove what a killed process left half-written in ``checkpoints/`` (``.partial`` folders,
    the pointer's temporary files); only the run's one writer (it holds the lock) gets here."""
    for left in root.glob("*.partial"):
        shutil.rmtree(left, ignore_errors=True)
    for left in root.glob(".latest.*.tmp"):
        left.unlink(missing_ok=True)


def _write_chunks(run_dir: Path, step: int, replay: ReplayChunks, name: str = "") -> list[str | None]:
    """Write ``replay.new``'s chunks to new files in ``replay/``; the chunk files of the checkpoint."""
    folder = run_dir / REPLAY
    folder.mkdir(parents=True, exist_ok=True)
    n_chunks = -(-replay.size // replay.chunk_rows)
    files = (list(replay.files) + [None] * n_chunks)[:n_chunks]
    token = secrets.token_hex(4)  # never the name of a file an existing checkpoint reads
    for j, rows in sorted(replay.new.items()):
        fname = f"{name + '-' if name else ''}chunk_{j:05d}_step_{int(step):012d}_{token}.npz"
        atomic_save_npz(folder / fname, rows)
        files[j] = fname
    missing = [j for j, f in enumerate(files) if f is None]
    if missing:
        raise ValueError(f"replay chunk {missing[0]} holds rows but was neither saved before nor passed as new")
    return files


def prune_replay(run_dir: str | os.PathLike[str]) -> None:
    """Delete the files in ``replay/`` that no complete checkpoint names (left by older
    checkpoints or by a checkpoint that failed). Deletes nothing when one of a checkpoint's
    ``replay*.json`` cannot be read (its files might be in use)."""
    folder = Path(run_dir) / REPLAY
    if not folder.is_dir():
        return
    used: set[str] = set()
    for ckpt in (Path(run_dir) / CHECKPOINTS).glob("step_*"):
        if ckpt.name.endswith(".partial"):
            continue
        for named in ckpt.glob("replay*.json"):
            try:
                used.update(f for f in json.loads(named.read_text())["files"] if f)
            except (OSError, ValueError, KeyError, TypeError):
                return
    for f in folder.iterdir():
        if f.name not in used:
            f.unlink(missing_ok=True)


def _pointer(root: Path) -> str | None:
    try:
        return (root / "latest").read_text().strip()
    except OSError:
        return None


def _write_error(final: Path, exc: OSError) -> str:
    run_dir = final.parent.parent
    reason = exc.strerror or str(exc)
    try:
        last: Path | None = latest_checkpoint(run_dir)
    except XmarlError:
        last = None
    if last is None:
        return (f"cannot write checkpoint {final}: {reason}; no checkpoint was written yet: free space (or pass "
                f"--out-dir on a disk with room) and start the run again")
    return (f"cannot write checkpoint {final}: {reason}; free space on that disk, then resume with: xmarl run "
            f"--resume {run_dir} (the last good checkpoint is {last})")


def checkpoint_candidates(path: str | os.PathLike[str]) -> list[Path]:
    """The checkpoint folders a resume from ``path`` may load, newest first: the one ``latest``
    names, then the other complete ``step_*`` folders. ``path`` is a run folder, its
    ``checkpoints`` folder, or one checkpoint folder (then only that one)."""
    p = Path(path)
    if (p / "trainer.json").is_file() or (p.name.startswith("step_") and p.parent.name == CHECKPOINTS):
        return [p]
    for root in (p / CHECKPOINTS, p):
        folders = sorted((q for q in root.glob("step_*") if q.is_dir() and not q.name.endswith(".partial")),
                         reverse=True)
        if folders:
            named = root / (_pointer(root) or "-")
            return sorted(folders, key=lambda q: q != named)  # stable: the rest stay newest first
    raise XmarlError(f"no checkpoint in '{p}'; pass a run folder or a checkpoints/step_* folder")


def latest_checkpoint(path: str | os.PathLike[str]) -> Path:
    """The newest complete checkpoint folder under a run folder, its ``checkpoints`` folder,
    or the checkpoint folder itself."""
    return checkpoint_candidates(path)[0]


def load_weights(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Canonical weights from a ``.npz`` file or the newest checkpoint under ``path``."""
    p = Path(path)
    if p.suffix != ".npz":
        return load_arrays(latest_checkpoint(p), "weights.npz")
    return load_arrays(p.parent, p.name)


def load_arrays(folder: Path, fname: str) -> dict[str, np.ndarray]:
    """Every array of ``folder/fname`` (an ``.npz``), read whole, so that a truncated or corrupt
    file (CRC) fails here, as a one-line :class:`XmarlError` naming the file."""
    path = Path(folder) / fname
    try:
        with np.load(path) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise damaged(path, exc) from exc


def load_json(folder: Path, fname: str) -> Any:
    """``folder/fname`` parsed as JSON; a one-line :class:`XmarlError` naming the file when it is
    missing or not JSON."""
    path = Path(folder) / fname
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise damaged(path, exc) from exc


def damaged(path: Path, reason: Exception | str) -> XmarlError:
    """The error for a checkpoint file that is missing, damaged or does not fit the run."""
    if isinstance(reason, OSError) and reason.strerror:
        reason = reason.strerror
    return XmarlError(f"checkpoint file {path} cannot be loaded ({one_line(reason)}); resume from another "
                      "checkpoints/step_* folder of that run, or start it again")


def replay_chunk(run_dir: Path, fname: str) -> dict[str, np.ndarray]:
    """The rows of one replay chunk file named by a checkpoint's ``replay.json``."""
    return load_arrays(Path(run_dir) / REPLAY, fname)


# -- the run folder's lock ---------------------------------------------------------------------

def _holder(f: IO[str]) -> tuple[int, str]:
    f.seek(0)
    parts = f.read().split()
    try:
        return int(parts[0]), parts[1] if len(parts) > 1 else "?"
    except (IndexError, ValueError):
        return 0, "?"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _busy(run_dir: Path, pid: int, host: str) -> XmarlError:
    return XmarlError(f"run folder {run_dir} is being trained by process {pid} on {host}; wait for it to finish or "
                      f"stop it (kill {pid}), then resume")


def acquire_lock(run_dir: str | os.PathLike[str]) -> IO[str]:
    """Lock ``run_dir`` for this process: ``run_dir/.lock`` holds this process's pid and host and
    an exclusive ``flock``, which the system releases when the process ends, however it ends (a
    lock left by a dead process is stale and taken over). Where ``flock`` is unavailable, a live
    pid in the file on this host holds the lock. Raises a one-line :class:`XmarlError` naming
    the live process that holds it. Release with :func:`release_lock`."""
    run_dir = Path(run_dir)
    path = run_dir / LOCK
    host = socket.gethostname()
    try:
        while True:
            f = open(path, "a+")  # held until release_lock
            locked = _flock(f)
            if not locked or _same_file(path, f):
                break
            f.close()  # the holder released and unlinked it in between: lock the new file
        pid, other = _holder(f)
        if not locked and pid and pid != os.getpid() and other == host and _alive(pid):
            f.close()
            raise _busy(run_dir, pid, other)
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()} {host}\n")
        f.flush()
    except BlockingIOError:
        pid, other = _holder(f)
        f.close()
        raise _busy(run_dir, pid, other) from None
    except OSError as exc:
        raise XmarlError(f"cannot lock run folder {run_dir} ({exc.strerror or exc}); check that the folder exists "
                         "and is writable") from exc
    return f


def _flock(f: IO[str]) -> bool:
    """Take ``f``'s exclusive lock: True once held, False where the system or the file system
    has no ``flock``; BlockingIOError when another process holds it."""
    if fcntl is None:
        return False
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise
    except OSError:  # a file system without locks: only the pid check is left
        return False
    return True


def _same_file(path: Path, f: IO[str]) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(f.fileno()).st_ino
    except FileNotFoundError:
        return False


def release_lock(lock: IO[str]) -> None:
    """Remove the lock file and release the lock taken by :func:`acquire_lock`."""
    if lock.closed:
        return
    Path(lock.name).unlink(missing_ok=True)
    lock.close()


def claim_run_dir(base: str | os.PathLike[str]) -> Path:
    """Create and return a new run folder: ``base``, or ``base-1``, ``base-2``, ... when taken.
    Each name is taken by an exclusive ``mkdir``, so runs started at the same moment with the
    same name never share a folder."""
    base = Path(base)
    base.parent.mkdir(parents=True, exist_ok=True)
    k = 0
    while True:
        folder = base if k == 0 else base.with_name(f"{base.name}-{k}")
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            k += 1
