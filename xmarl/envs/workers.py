"""Env workers: the copies of an env stepped in ``K`` worker processes (``train.env_workers: K``).

:class:`WorkerVectorEnv` implements :class:`~xmarl.envs.base.VectorEnvBase` over ``K`` processes,
each holding a slice of the ``E`` copies as an ordinary vectorised env (``make_env(name, E_k)``:
the PettingZoo adapter, the gymnasium tuple adapter, MAgent2, ...). Observations, rewards, masks
and actions travel through shared memory: per step the training process writes the actions,
sends each worker one byte, and reads the arrays the workers wrote; only finished episodes'
returns come back through the pipes. Worker ``k`` owns copies ``s_k..s_{k+1}`` and seeds them
``seed + s_k + i``, as the in-process env seeds copy ``i`` with ``seed + i``, so a run with env
workers steps exactly the same episodes as one without (and the same ``K`` and seed reproduce
it bit for bit).

A worker that raises or dies ends the step with a one-line :class:`~xmarl.errors.EnvError`
naming it (the trainer then writes a checkpoint without the env and stops; resuming restarts
the episodes). Checkpoints hold each worker's env (pickled in the worker), so a resumed run
continues its episodes exactly. Workers are fresh processes (the frameworks do
not survive ``fork``; each is a fresh ``python -c`` that imports xmarl, never the user's script, so
no ``if __name__ == "__main__"`` guard is needed) and stop with the env
(:meth:`WorkerVectorEnv.close`, or when the training process exits).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import secrets
import shutil
import subprocess
import sys
import tempfile
import traceback
from multiprocessing import resource_tracker, shared_memory
from multiprocessing.connection import Listener
from typing import Any

import numpy as np

from xmarl.envs.base import VectorEnvBase
from xmarl.envs.snapshot import snapshot
from xmarl.errors import EnvError, one_line

#: seconds a worker may take to start, or to answer one step, before it counts as hung
TIMEOUT = 600.0


def _slices(num_envs: int, workers: int) -> list[tuple[int, int]]:
    """``[start, stop)`` of each worker's copies: as even as possible, the first ones one larger."""
    base, extra = divmod(num_envs, workers)
    out, start = [], 0
    for k in range(workers):
        stop = start + base + (k < extra)
        out.append((start, stop))
        start = stop
    return out


class _Shared:
    """The arrays every worker writes its slice of and the training process reads (one shared
    memory block each, named so that a spawned worker attaches to the same memory)."""

    FIELDS = ("obs", "final_obs", "rew", "term", "done", "alive", "final_alive", "avail", "actions")

    def __init__(self, spec: Any, num_envs: int, names: dict[str, str] | None = None) -> None:
        E, A, D, n = num_envs, spec.n_agents, spec.obs_dim, spec.act_dim
        shapes = {"obs": ((E, A, D), np.float32), "final_obs": ((E, A, D), np.float32),
                  "rew": ((E, A), np.float32), "term": ((E, A), np.float32), "done": ((E,), np.bool_),
                  "alive": ((E, A), np.float32), "final_alive": ((E, A), np.float32),
                  "avail": ((E, A, n), np.float32),
                  "actions": ((E, A), np.int64) if spec.discrete else ((E, A, n), np.float32)}
        self.owner = names is None
        self.blocks: dict[str, shared_memory.SharedMemory] = {}
        self.arrays: dict[str, np.ndarray] = {}
        for k, (shape, dtype) in shapes.items():
            size = max(1, int(np.prod(shape)) * np.dtype(dtype).itemsize)
            if names is None:
                block = shared_memory.SharedMemory(create=True, size=size)
            else:  # attached, not owned: this process's resource tracker must not remove it when it exits
                block = shared_memory.SharedMemory(name=names[k])
                resource_tracker.unregister(block._name, "shared_memory")  # (Python < 3.13 has no track=False)
            self.blocks[k] = block
            self.arrays[k] = np.ndarray(shape, dtype, buffer=block.buf)

    @property
    def names(self) -> dict[str, str]:
        return {k: b.name for k, b in self.blocks.items()}

    def close(self) -> None:
        self.arrays = {}
        for block in self.blocks.values():
            block.close()
            if self.owner:
                with contextlib.suppress(FileNotFoundError):
                    block.unlink()
        self.blocks = {}


def _serve(address: str, authkey: bytes) -> None:
    """A worker process's main (``python -c``, so that no user script is imported again): connects
    to the training process, receives its job and serves it."""
    from multiprocessing.connection import Client

    conn = Client(address, family="AF_UNIX", authkey=authkey)
    try:
        _worker(conn, *conn.recv())
    finally:
        conn.close()


def _worker(conn: Any, build: bytes, spec: Any, num_envs: int, names: dict[str, str], start: int,
            stop: int) -> None:
    """A worker: builds (or unpickles) its env, then answers the training process's commands."""
    shared = None
    try:
        env = pickle.loads(build)
        if not isinstance(env, VectorEnvBase):  # a factory, not a snapshot
            env = env()
        shared = _Shared(spec, num_envs, names)
        a, sl = shared.arrays, slice(start, stop)

        def masks() -> tuple[bool, bool, bool]:
            """Write this worker's masks (all ones, or every action available, where its env has
            none: another worker's may have one) and say which it has."""
            alive, final, avail = env.alive(), env.final_alive(), env.avail_actions()
            a["alive"][sl] = 1.0 if alive is None else alive
            a["final_alive"][sl] = 1.0 if final is None else final
            a["avail"][sl] = spec.act_mask if avail is None else avail
            return alive is not None, final is not None, avail is not None

        conn.send(("ready", None))
        while True:
            cmd, arg = conn.recv()
            if cmd == "step":
                before = len(env.completed_returns)
                obs, final, rew, term, done = env.step(a["actions"][sl])
                a["obs"][sl], a["final_obs"][sl], a["rew"][sl], a["term"][sl], a["done"][sl] = (
                    obs, final, rew, term, done)
                ended = (env.completed_returns[before:], env.completed_lengths[before:]) if done.any() else None
                conn.send(("ok", (masks(), ended)))
            elif cmd == "reset":
                a["obs"][sl] = env.reset(seed=arg)
                conn.send(("ok", masks()))
            elif cmd == "call":  # heuristic_actions, step_measures, render
                conn.send(("ok", getattr(env, arg[0])(*arg[1])))
            elif cmd == "pickle":
                conn.send(("ok", snapshot(env)))
            elif cmd == "close":
                env.close()
                conn.send(("ok", None))
                return
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group: the training process decides
        return
    except BaseException as exc:  # report it, in one line, to the training process
        try:
            conn.send(("error", f"{type(exc).__name__}: {one_line(exc)} "
                                f"(at {traceback.extract_tb(exc.__traceback__)[-1].name})"))
        except (OSError, ValueError):
            pass
    finally:
        if shared is not None:
            shared.close()


class EnvWorkerError(EnvError):
    """An env worker raised, died or hung (a one-line message naming it)."""


class WorkerVectorEnv(VectorEnvBase):
    """``num_envs`` copies of env ``name`` stepped in ``workers`` processes (see the module
    docstring). ``make(n)`` builds one worker's env of ``n`` copies (picklable: it is sent to
    the worker); ``spec`` is the env's :class:`~xmarl.core.spaces.AgentSpec`."""

    def __init__(self, make: Any, num_envs: int, workers: int, name: str, spec: Any,
                 snapshots: list[bytes] | None = None) -> None:
        if not 1 <= workers <= num_envs:
            raise EnvError(f"{name}: env_workers must be between 1 and num_envs ({num_envs}), got {workers}; "
                           "lower train.env_workers or raise train.num_envs")
        super().__init__(name, spec, num_envs)
        self._make, self.workers = make, workers
        self._slices = _slices(num_envs, workers)
        self._shared = _Shared(spec, num_envs)
        self._flags = (False, False, False)
        self._conns: list[Any] = []
        self._procs: list[subprocess.Popen] = []
        authkey = secrets.token_bytes(16)
        folder = tempfile.mkdtemp(prefix="xmarl-env-")
        listener = Listener(os.path.join(folder, "s"), family="AF_UNIX", authkey=authkey)
        try:
            code = f"from xmarl.envs.workers import _serve; _serve({listener.address!r}, {authkey!r})"
            for k, (start, stop) in enumerate(self._slices):
                self._procs.append(subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL))
                conn = listener.accept()
                build = snapshots[k] if snapshots is not None else pickle.dumps(_Factory(make, stop - start))
                conn.send((build, spec, num_envs, self._shared.names, start, stop))
                self._conns.append(conn)
        finally:
            listener.close()
            shutil.rmtree(folder, ignore_errors=True)
        for k in range(workers):
            self._answer(k)

    # -- talking to the workers ---------------------------------------------------------------
    def _answer(self, k: int) -> Any:
        conn, proc = self._conns[k], self._procs[k]
        try:
            if not conn.poll(TIMEOUT):
                raise EnvWorkerError(f"{self.name}: env worker {k} (pid {proc.pid}) did not answer in "
                                     f"{TIMEOUT:.0f}s")
            status, value = conn.recv()
        except (EOFError, OSError):
            raise self._died(k) from None
        if status == "error":
            raise EnvWorkerError(f"{self.name}: env worker {k} failed: {value}")
        return value

    def _died(self, k: int) -> EnvWorkerError:
        proc = self._procs[k]
        try:
            code = proc.wait(1.0)
        except subprocess.TimeoutExpired:
            code = None
        return EnvWorkerError(f"{self.name}: env worker {k} (pid {proc.pid}) died (exit code {code})")

    def _send(self, k: int, message: Any) -> None:
        """Send to worker ``k``; a worker that has died (broken pipe) is one line, like a silent one."""
        try:
            self._conns[k].send(message)
        except OSError:
            raise self._died(k) from None

    def _all(self, cmd: str, args: list[Any] | None = None) -> list[Any]:
        for k in range(self.workers):
            self._send(k, (cmd, None if args is None else args[k]))
        return [self._answer(k) for k in range(self.workers)]

    # -- the interface ------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> np.ndarray:
        flags = self._all("reset", [None if seed is None else seed + start for start, _ in self._slices])
        self._flags = tuple(any(f[i] for f in flags) for i in range(3))  # type: ignore[assignment]
        self._restart_episodes()
        return self._shared.arrays["obs"].copy()

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        a = self._shared.arrays
        a["actions"][...] = actions
        replies = self._all("step")
        self._flags = tuple(any(r[0][i] for r in replies) for i in range(3))  # type: ignore[assignment]
        for _, ended in replies:  # finished episodes, in worker (= copy) order
            if ended is not None:
                self._record(np.asarray(ended[0], np.float64), np.asarray(ended[1], np.int64))
        return a["obs"].copy(), a["final_obs"].copy(), a["rew"].copy(), a["term"].copy(), a["done"].copy()

    def _mask(self, key: str, flag: int) -> np.ndarray | None:
        """A mask the workers report, or None when none of them has one (then every slot is 1)."""
        if not self._flags[flag]:
            return None
        return self._shared.arrays[key].copy()

    def alive(self) -> np.ndarray | None:
        return self._mask("alive", 0)

    def final_alive(self) -> np.ndarray | None:
        return self._mask("final_alive", 1)

    def avail_actions(self) -> np.ndarray | None:
        return self._mask("avail", 2)

    def _gather(self, method: str) -> Any:
        parts = self._all("call", [(method, ())] * self.workers)
        if all(p is None for p in parts):
            return None
        if isinstance(parts[0], dict):
            return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        return np.concatenate(parts)

    def heuristic_actions(self) -> np.ndarray | None:
        return self._gather("heuristic_actions")

    def step_measures(self) -> dict[str, np.ndarray]:
        return self._gather("step_measures") or {}

    def render(self, index: int = 0) -> Any:
        k = next(k for k, (start, stop) in enumerate(self._slices) if start <= index < stop)
        self._send(k, ("call", ("render", (index - self._slices[k][0],))))
        return self._answer(k)

    def close(self) -> None:
        for k, conn in enumerate(self._conns):
            try:
                conn.send(("close", None))
                self._answer(k)
            except (EnvError, OSError, BrokenPipeError):
                pass
        for proc in self._procs:
            try:
                proc.wait(5.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for conn in self._conns:
            conn.close()
        self._conns, self._procs = [], []
        if self._shared is not None:
            self._shared.close()
            self._shared = None  # type: ignore[assignment]

    def __del__(self) -> None:
        if getattr(self, "_procs", None):
            self.close()

    # -- checkpoints: each worker pickles its own env --------------------------------------------
    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        snapshots = self._all("pickle")
        state = {"completed_returns": list(self.completed_returns), "completed_lengths": list(self.completed_lengths),
                 "_flags": self._flags, "_ret": self._ret, "_len": self._len,
                 "arrays": {k: v.copy() for k, v in self._shared.arrays.items()}}  # the masks at this step too
        return _restore, (self._make, self.num_envs, self.workers, self.name, self.spec, snapshots, state)


class _Factory:
    """``make(n)`` as a picklable zero-argument callable for one worker."""

    def __init__(self, make: Any, n: int) -> None:
        self.make, self.n = make, n

    def __call__(self) -> VectorEnvBase:
        return self.make(self.n)


def _restore(make: Any, num_envs: int, workers: int, name: str, spec: Any, snapshots: list[bytes],
             state: dict[str, Any]) -> WorkerVectorEnv:
    env = WorkerVectorEnv(make, num_envs, workers, name, spec, snapshots)
    env.completed_returns, env.completed_lengths = state["completed_returns"], state["completed_lengths"]
    env._flags, env._ret, env._len = state["_flags"], state["_ret"], state["_len"]
    for k, v in state["arrays"].items():
        env._shared.arrays[k][...] = v
    return env


__all__ = ["WorkerVectorEnv", "EnvWorkerError", "TIMEOUT"]
