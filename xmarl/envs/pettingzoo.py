"""Adapter from any PettingZoo ``ParallelEnv`` to xmarl's vectorised array interface.

``VectorEnv`` steps ``num_envs`` copies together and speaks arrays only:
observations ``[E, A, obs_dim]``, rewards ``[E, A]``, terminated ``[E, A]``. Episodes that end
are reset in place; the true last observation is returned separately (``final_obs``) so
that replay stores the right next state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from xmarl.core.spaces import AgentSpec
from xmarl.errors import EnvError


class VectorEnv:
    """``num_envs`` PettingZoo parallel environments stepped together as arrays."""

    def __init__(self, make: Callable[[], Any], num_envs: int, name: str = "env") -> None:
        if num_envs < 1:
            raise EnvError(f"{name}: num_envs must be >= 1, got {num_envs}")
        self.name = name
        self.envs = [make() for _ in range(num_envs)]
        e0 = self.envs[0]
        self.agents = list(e0.possible_agents)
        self.spec = AgentSpec.from_spaces(
            self.agents,
            {a: e0.observation_space(a) for a in self.agents},
            {a: e0.action_space(a) for a in self.agents},
            env_name=name,
        )
        self.num_envs = num_envs
        A, od = self.spec.n_agents, self.spec.obs_dim
        self._obs = np.zeros((num_envs, A, od), np.float32)
        self._ret = np.zeros((num_envs, A), np.float64)
        self._len = np.zeros(num_envs, np.int64)
        self._avail: np.ndarray | None = None  # [E, A, act_dim], once the env reports action masks
        self.completed_returns: list[float] = []  # per-agent mean return of each finished episode
        self.completed_lengths: list[int] = []

    # -- conversion -------------------------------------------------------------------------
    def _write_obs(self, out: np.ndarray, obs: dict[str, np.ndarray]) -> None:
        if set(obs) != set(self.agents):
            raise EnvError(
                f"{self.name}: step returned agents {sorted(obs)}, expected {sorted(self.agents)}; "
                "xmarl needs a fixed agent set for the whole episode"
            )
        for i, a in enumerate(self.agents):
            o = np.asarray(obs[a], np.float32).ravel()
            if o.shape[0] != self.spec.obs_dims[i]:
                raise EnvError(
                    f"{self.name}: agent '{a}' observation has {o.shape[0]} values, "
                    f"its space says {self.spec.obs_dims[i]}"
                )
            out[i, : o.shape[0]] = o

    def _write_avail(self, e: int, infos: dict[str, Any]) -> None:
        """Keep the available-action masks an env reports as ``infos[agent]["action_mask"]``."""
        if not self.spec.discrete or not any("action_mask" in (infos.get(a) or {}) for a in self.agents):
            return
        if self._avail is None:
            self._avail = np.broadcast_to(self.spec.act_mask, (self.num_envs,) + self.spec.act_mask.shape).copy()
        for i, a in enumerate(self.agents):
            m = (infos.get(a) or {}).get("action_mask")
            if m is not None:
                self._avail[e, i, : len(m)] = np.asarray(m, np.float32)

    def avail_actions(self) -> np.ndarray | None:
        """Available actions ``[E, A, act_dim]`` at the current observations, or ``None`` when
        the env reports none (every action of the agent's space is then available)."""
        avail = getattr(self, "_avail", None)  # natively batched subclasses may not report masks
        return None if avail is None else avail.copy()

    def _to_env_actions(self, actions: np.ndarray) -> list[dict[str, Any]]:
        if self.spec.discrete:
            return [{a: int(row[i]) for i, a in enumerate(self.agents)} for row in actions]
        dims = self.spec.act_dims
        if self.spec.hybrid:  # [one-hot (n_i), continuous (d_i), padding] -> (choice, offer)
            ns = self.spec.disc_dims
            return [
                {a: (int(np.argmax(row[i, : ns[i]])), np.asarray(row[i, ns[i]: dims[i]], np.float32))
                 for i, a in enumerate(self.agents)}
                for row in actions
            ]
        return [
            {a: np.asarray(row[i, : dims[i]], np.float32) for i, a in enumerate(self.agents)}
            for row in actions
        ]

    # -- gymnasium-like API ----------------------------------------------------------------
    def reset(self, seed: int | None = None) -> np.ndarray:
        """Reset every copy (copy ``i`` seeded with ``seed + i``); returns ``[E, A, obs_dim]``."""
        self._obs[:] = 0.0
        for e, env in enumerate(self.envs):
            obs, infos = env.reset(seed=None if seed is None else seed + e)
            self._write_obs(self._obs[e], obs)
            self._write_avail(e, infos)
        self._ret[:] = 0.0
        self._len[:] = 0
        return self._obs.copy()

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Step all copies.

        ``actions`` is ``[E, A]`` ints (discrete) or ``[E, A, act_dim]`` floats (continuous, or
        hybrid as ``[one-hot of the choice, continuous part]`` per agent; each agent then gets the
        tuple ``(int, float32 array)``), as :func:`xmarl.core.actions.select_actions` returns them.
        Returns ``(obs, final_obs, rewards, terminated, done)``: ``obs`` already reset where an
        episode ended, ``final_obs`` the true next observation, ``rewards``/``terminated``
        ``[E, A]``, ``done`` ``[E]`` (terminated or truncated).
        """
        E, A = self.num_envs, self.spec.n_agents
        final = np.zeros_like(self._obs)
        rew = np.zeros((E, A), np.float32)
        term = np.zeros((E, A), np.float32)
        done = np.zeros(E, bool)
        for e, (env, act) in enumerate(zip(self.envs, self._to_env_actions(actions))):
            obs, r, te, tr, infos = env.step(act)
            self._write_obs(final[e], obs)
            self._write_avail(e, infos)
            for i, a in enumerate(self.agents):
                rew[e, i] = r[a]
                term[e, i] = te[a]
            done[e] = all(te[a] or tr[a] for a in self.agents) or not env.agents
        self._ret += rew
        self._len += 1
        obs_next = final.copy()
        for e in np.flatnonzero(done):
            self.completed_returns.append(float(self._ret[e].mean()))
            self.completed_lengths.append(int(self._len[e]))
            self._ret[e] = 0.0
            self._len[e] = 0
            o, infos = self.envs[e].reset()
            obs_next[e] = 0.0
            self._write_obs(obs_next[e], o)
            self._write_avail(e, infos)
        self._obs = obs_next
        return obs_next.copy(), final, rew, term, done

    def sample_actions(self, rng: np.random.Generator) -> np.ndarray:
        """Uniform random actions for every copy and agent (for warm-up), laid out as in :meth:`step`."""
        E, A = self.num_envs, self.spec.n_agents
        if self.spec.discrete:
            n = np.asarray(self.spec.act_dims)
            return (rng.random((E, A)) * n).astype(np.int64)
        u = rng.random((E, A, self.spec.act_dim)).astype(np.float32)
        act = self.spec.low + u * (self.spec.high - self.spec.low)
        if self.spec.hybrid:
            choice = (rng.random((E, A)) * np.asarray(self.spec.disc_dims)).astype(np.int64)
            act = np.where(self.spec.disc_mask > 0, np.eye(self.spec.act_dim, dtype=np.float32)[choice], act)
        return act.astype(np.float32)

    def render(self, index: int = 0) -> Any:
        return self.envs[index].render()

    def close(self) -> None:
        for env in self.envs:
            env.close()
