"""Numpy episode buffer for on-policy methods (COMA, CommNet).

``E`` environments write one step each per call, into their own in-progress episode; an
episode that ends is moved, whole, to the completed store. :meth:`EpisodeBuffer.take` hands
the completed episodes to the learner as one zero-padded batch and empties the store, so
every update sees only episodes played by the current policy (an env mid-episode keeps its
partial episode for the next batch). All moves are array operations over the envs that
finished; nothing loops over environments or agents.

The batch (batch-major, ``B`` episodes padded to the longest length ``T``):

* ``obs`` ``[B, T+1, A, obs_dim]``: index ``L`` of an episode of length ``L`` holds its final
  observation (the one the env returned with ``done``); later indices are zero;
* ``actions`` ``[B, T+1, A]`` int64, ``avail`` ``[B, T+1, A, n]`` (available actions; the
  action at the final observation is sampled by the policy too, for bootstrapped targets);
* ``agent_mask`` ``[B, T+1, A]``: 1 where the agent is in the episode at that observation, 0
  where it has left (or not yet joined) and on padding;
* ``rew`` ``[B, T, A]``, ``term`` ``[B, T]`` (1 where the episode terminated rather than
  being truncated), ``mask`` ``[B, T]`` (1 on the ``L`` real steps).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    pass

STEP_KEYS = ("obs", "actions", "avail", "agent_mask")  # one entry per step plus the final one ([.., T+1, ..])
REWARD_KEYS = ("rew", "term")  # one entry per step ([.., T, ..])


class EpisodeBuffer:
    """In-progress episodes of ``num_envs`` envs plus the completed episodes not yet taken."""

    def __init__(self, num_envs: int, n_agents: int, obs_dim: int, n_actions: int, max_len: int = 32) -> None:
        self.num_envs, self.n_agents, self.obs_dim, self.n_actions = num_envs, n_agents, obs_dim, n_actions
        self.t = np.zeros(num_envs, np.int64)  # steps written so far per in-progress episode
        self.work = self._alloc(num_envs, max_len)
        self.done = self._alloc(num_envs, max_len)
        self.lengths = np.zeros(num_envs, np.int64)
        self.n_done = 0

    def _alloc(self, n: int, T: int) -> dict[str, np.ndarray]:
        A = self.n_agents
        return {
            "obs": np.zeros((n, T + 1, A, self.obs_dim), np.float32),
            "actions": np.zeros((n, T + 1, A), np.int64),
            "avail": np.zeros((n, T + 1, A, self.n_actions), np.float32),
            "agent_mask": np.zeros((n, T + 1, A), np.float32),
            "rew": np.zeros((n, T, A), np.float32),
            "term": np.zeros((n, T), np.float32),
        }

    @property
    def capacity(self) -> int:
        """Longest episode the arrays hold now (they grow by doubling)."""
        return self.work["rew"].shape[1]

    def __len__(self) -> int:
        """Completed episodes waiting to be taken."""
        return self.n_done

    @staticmethod
    def _grow_time(arrays: dict[str, np.ndarray], T: int) -> dict[str, np.ndarray]:
        out = {}
        for k, v in arrays.items():
            extra = T + (1 if k in STEP_KEYS else 0) - v.shape[1]
            out[k] = np.concatenate([v, np.zeros((v.shape[0], extra) + v.shape[2:], v.dtype)], axis=1)
        return out

    def add(self, obs: np.ndarray, actions: np.ndarray, avail: np.ndarray, rew: np.ndarray,
            term: np.ndarray, agent_mask: np.ndarray | None = None) -> None:
        """One step of every env: what the agents saw and did, and what they got for it;
        ``agent_mask`` ``[E, A]`` (default ones) says which agents were in the episode."""
        if int(self.t.max()) >= self.capacity:
            T = 2 * self.capacity
            self.work, self.done = self._grow_time(self.work, T), self._grow_time(self.done, T)
        e, t = np.arange(self.num_envs), self.t
        self.work["obs"][e, t] = obs
        self.work["actions"][e, t] = actions
        self.work["avail"][e, t] = avail
        self.work["rew"][e, t] = rew
        self.work["term"][e, t] = term
        self.work["agent_mask"][e, t] = 1.0 if agent_mask is None else agent_mask
        self.t += 1

    def finish(self, done: np.ndarray, final_obs: np.ndarray, final_actions: np.ndarray,
               final_avail: np.ndarray, final_agent_mask: np.ndarray | None = None) -> None:
        """Close the episodes of the envs in ``done`` (``[E]`` bool) with their final step and
        move them to the completed store; those envs start empty episodes."""
        idx = np.flatnonzero(done)
        if not len(idx):
            return
        t = self.t[idx]
        self.work["obs"][idx, t] = final_obs[idx]
        self.work["actions"][idx, t] = final_actions[idx]
        self.work["avail"][idx, t] = final_avail[idx]
        self.work["agent_mask"][idx, t] = 1.0 if final_agent_mask is None else final_agent_mask[idx]
        n, k = self.n_done, len(idx)
        if n + k > self.done["rew"].shape[0]:
            grow = max(n + k, 2 * self.done["rew"].shape[0])
            self.done = {key: np.concatenate([v, np.zeros((grow - v.shape[0],) + v.shape[1:], v.dtype)])
                         for key, v in self.done.items()}
            self.lengths = np.concatenate([self.lengths, np.zeros(grow - len(self.lengths), np.int64)])
        for key, v in self.work.items():
            self.done[key][n:n + k] = v[idx]
            v[idx] = 0  # the next episode of these envs starts from zeros (padding stays zero)
        self.lengths[n:n + k] = t
        self.n_done += k
        self.t[idx] = 0

    def take(self) -> dict[str, np.ndarray]:
        """The completed episodes as one padded batch (see the module docstring); empties the store."""
        n = self.n_done
        if n == 0:
            raise ValueError("EpisodeBuffer.take: no completed episode yet")
        lengths = self.lengths[:n].copy()
        T = int(lengths.max())
        batch = {k: v[:n, : T + (1 if k in STEP_KEYS else 0)].copy() for k, v in self.done.items()}
        batch["mask"] = (np.arange(T)[None, :] < lengths[:, None]).astype(np.float32)
        for v in self.done.values():
            v[:n] = 0
        self.n_done = 0
        return batch

    # -- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        out = {f"work/{k}": v for k, v in self.work.items()}
        out.update({f"done/{k}": v[: self.n_done] for k, v in self.done.items()})
        out.update({"t": self.t, "lengths": self.lengths[: self.n_done], "n_done": np.array(self.n_done)})
        return out

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        if "work/agent_mask" not in state:  # saved before agents could leave: every agent was in
            state = {**state, "work/agent_mask": np.ones(state["work/actions"].shape, np.float32),
                     "done/agent_mask": np.ones(state["done/actions"].shape, np.float32)}
        self.work = {k: np.array(state[f"work/{k}"]) for k in self.work}
        T = self.capacity
        n = int(state["n_done"])
        self.done = self._alloc(max(n, self.num_envs), T)
        for k in self.done:
            self.done[k][:n] = state[f"done/{k}"]
        self.lengths = np.zeros(self.done["rew"].shape[0], np.int64)
        self.lengths[:n] = state["lengths"]
        self.t, self.n_done = np.array(state["t"], np.int64), n

    def drop_in_progress(self) -> None:
        """Forget the unfinished episodes (their envs restart; completed ones are kept)."""
        for v in self.work.values():
            v[:] = 0
        self.t[:] = 0
