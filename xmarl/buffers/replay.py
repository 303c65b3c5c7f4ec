"""Numpy ring-buffer replay for off-policy methods (all agents and envs stored as arrays)."""

from __future__ import annotations

import numpy as np


class ReplayBuffer:
    """Transitions ``(obs, act, rew, next_obs, done)`` for ``A`` agents, stored ``[N, A, ...]``."""

    def __init__(self, capacity: int, n_agents: int, obs_dim: int, act_dim: int) -> None:
        self.capacity = int(capacity)
        A = n_agents
        self.obs = np.zeros((capacity, A, obs_dim), np.float32)
        self.next_obs = np.zeros((capacity, A, obs_dim), np.float32)
        self.act = np.zeros((capacity, A, act_dim), np.float32)
        self.rew = np.zeros((capacity, A), np.float32)
        self.done = np.zeros((capacity, A), np.float32)
        self.pos = 0
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(self, obs: np.ndarray, act: np.ndarray, rew: np.ndarray, next_obs: np.ndarray,
            done: np.ndarray) -> None:
        """Add ``E`` transitions at once (leading axis ``E``)."""
        n = obs.shape[0]
        idx = (self.pos + np.arange(n)) % self.capacity
        self.obs[idx] = obs
        self.act[idx] = act
        self.rew[idx] = rew
        self.next_obs[idx] = next_obs
        self.done[idx] = done
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
        }

    def state_dict(self) -> dict[str, np.ndarray]:
        n = self.size
        return {"obs": self.obs[:n], "next_obs": self.next_obs[:n], "act": self.act[:n],
                "rew": self.rew[:n], "done": self.done[:n], "pos": np.array(self.pos), "size": np.array(n)}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        n = int(state["size"])
        for k in ("obs", "next_obs", "act", "rew", "done"):
            getattr(self, k)[:n] = state[k]
        self.pos, self.size = int(state["pos"]), n

    def drop_in_progress(self) -> None:
        """Nothing to drop: transitions are stored whole (the episode buffer's counterpart keeps
        partial episodes)."""
