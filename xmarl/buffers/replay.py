"""Numpy ring-buffer replay for off-policy methods (all agents and envs stored as arrays).

For checkpoints the ring is cut into chunks of ``chunk_rows`` consecutive rows (about
:data:`CHUNKS` of them, none under :data:`MIN_CHUNK_BYTES` unless the buffer is smaller), and
the buffer remembers which chunks :meth:`ReplayBuffer.add` wrote since :meth:`ReplayBuffer.mark_saved`:
a checkpoint stores only those (:mod:`xmarl.training.checkpoint` keeps one copy of the replay
per run folder, not one per checkpoint).
"""

from __future__ import annotations

import numpy as np

FIELDS = ("obs", "next_obs", "act", "rew", "done", "agent_mask", "next_agent_mask")
#: fields a checkpoint written before agents could leave lacks: every agent was in the episode
MASKS = ("agent_mask", "next_agent_mask")
#: the ring is cut into about this many chunks for checkpoints
CHUNKS = 64
#: ... each of at least this many bytes (fewer, larger files for small buffers)
MIN_CHUNK_BYTES = 1 << 18


def row_bytes(n_agents: int, obs_dim: int, act_dim: int) -> int:
    """Bytes one transition takes in the replay (float32 ``obs``, ``next_obs``, ``act``, ``rew``,
    ``done`` and the two masks)."""
    return 4 * n_agents * (2 * obs_dim + act_dim + 4)


def available_memory() -> int | None:
    """Bytes of memory the system can still give (Linux ``MemAvailable``), or None where unknown."""
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class ReplayBuffer:
    """Transitions ``(obs, act, rew, next_obs, done)`` for ``A`` agents, stored ``[N, A, ...]``,
    with the agents' alive masks at ``obs`` and ``next_obs`` (``agent_mask``, ``next_agent_mask``
    ``[N, A]``, 1 = the agent is in the episode)."""

    def __init__(self, capacity: int, n_agents: int, obs_dim: int, act_dim: int) -> None:
        self.capacity = int(capacity)
        A = n_agents
        self.obs = np.zeros((capacity, A, obs_dim), np.float32)
        self.next_obs = np.zeros((capacity, A, obs_dim), np.float32)
        self.act = np.zeros((capacity, A, act_dim), np.float32)
        self.rew = np.zeros((capacity, A), np.float32)
        self.done = np.zeros((capacity, A), np.float32)
        self.agent_mask = np.zeros((capacity, A), np.float32)
        self.next_agent_mask = np.zeros((capacity, A), np.float32)
        self.pos = 0
        self.size = 0
        per_row = row_bytes(n_agents, obs_dim, act_dim)
        self.chunk_rows = max(1, min(self.capacity, max(-(-self.capacity // CHUNKS), -(-MIN_CHUNK_BYTES // per_row))))
        self._changed = np.zeros(-(-self.capacity // self.chunk_rows), bool)

    def __len__(self) -> int:
        return self.size

    @property
    def nbytes(self) -> int:
        """Bytes of the rows held (``len(self)`` of them)."""
        return sum(getattr(self, k)[: self.size].nbytes for k in FIELDS)

    def add(self, obs: np.ndarray, act: np.ndarray, rew: np.ndarray, next_obs: np.ndarray,
            done: np.ndarray, agent_mask: np.ndarray | None = None, next_agent_mask: np.ndarray | None = None) -> None:
        """Add ``E`` transitions at once (leading axis ``E``); the masks default to ones (every
        agent in the episode)."""
        n = obs.shape[0]
        idx = (self.pos + np.arange(n)) % self.capacity
        self.obs[idx] = obs
        self.act[idx] = act
        self.rew[idx] = rew
        self.next_obs[idx] = next_obs
        self.done[idx] = done
        self.agent_mask[idx] = 1.0 if agent_mask is None else agent_mask
        self.next_agent_mask[idx] = 1.0 if next_agent_mask is None else next_agent_mask
        self._changed[idx // self.chunk_rows] = True
        self.pos = int((self.pos + n) % self.capacity)
        self.size = int(min(self.size + n, self.capacity))

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """A uniform batch, laid out agent-major ``[A, B, ...]`` as learners take it."""
        idx = rng.integers(0, self.size, batch_size)
        return {
            "obs": np.ascontiguousarray(self.obs[idx].swapaxes(0, 1)),
            "act": np.ascontiguousarray(self.act[idx].swapaxes(0, 1)),
            "rew": np.ascontiguousarray(self.rew[idx].T),
            "next_obs": np.ascontiguousarray(self.next_obs[idx].swapaxes(0, 1)),
            "done": np.ascontiguousarray(self.done[idx].T),
            "agent_mask": np.ascontiguousarray(self.agent_mask[idx].T),
            "next_agent_mask": np.ascontiguousarray(self.next_agent_mask[idx].T),
        }

    # -- checkpoints: whole (small buffers, tests) ----------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        n = self.size
        return {**{k: getattr(self, k)[:n] for k in FIELDS}, "pos": np.array(self.pos), "size": np.array(n)}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        n = int(state["size"])
        self._check_rows(0, n)
        for k in FIELDS:
            getattr(self, k)[:n] = state[k] if k in state or k not in MASKS else 1.0
        self.set_position(int(state["pos"]), n)
        self.mark_unsaved()

    # -- checkpoints: by chunk ------------------------------------------------------------------
    def changed_chunks(self) -> list[int]:
        """The chunks :meth:`add` wrote since :meth:`mark_saved` (all written ones, at first)."""
        return np.flatnonzero(self._changed).tolist()

    def chunk(self, j: int) -> dict[str, np.ndarray]:
        """The held rows of chunk ``j`` (rows ``j * chunk_rows`` on), one array per field."""
        lo = j * self.chunk_rows
        hi = min(lo + self.chunk_rows, self.size)
        return {k: getattr(self, k)[lo:hi] for k in FIELDS}

    def mark_saved(self) -> None:
        """Forget the changes: a checkpoint holds every chunk as it is now."""
        self._changed[:] = False

    def mark_unsaved(self) -> None:
        """Count every chunk that holds rows as changed (no checkpoint holds them yet)."""
        self._changed[:] = False
        self._changed[: -(-self.size // self.chunk_rows)] = True

    def load_chunk(self, start: int, rows: dict[str, np.ndarray]) -> None:
        """Put a saved chunk's rows back at ring rows ``start`` on; ValueError when they do not fit
        this buffer (another capacity, another env)."""
        n = len(rows["obs"])
        self._check_rows(start, start + n)
        for k in FIELDS:
            dst = getattr(self, k)[start:start + n]
            if k in MASKS and k not in rows:  # saved before agents could leave: all were in the episode
                dst[...] = 1.0
                continue
            if rows[k].shape != dst.shape:
                raise ValueError(f"'{k}' rows have shape {rows[k].shape}, this buffer's {dst.shape}")
            dst[...] = rows[k]

    def set_position(self, pos: int, size: int) -> None:
        """The ring's write position and number of held rows, as a checkpoint saved them."""
        if not (0 <= size <= self.capacity and 0 <= pos < max(self.capacity, 1)):
            raise ValueError(f"ring position {pos} with {size} rows does not fit a buffer of {self.capacity} rows")
        self.pos, self.size = int(pos), int(size)

    def _check_rows(self, lo: int, hi: int) -> None:
        if hi > self.capacity:
            raise ValueError(f"rows {lo}..{hi} do not fit a buffer of {self.capacity} rows (another buffer_size?)")

    def drop_in_progress(self) -> None:
        """Nothing to drop: transitions are stored whole (the episode buffer's counterpart keeps
        partial episodes)."""
