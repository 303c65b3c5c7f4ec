"""Adapter from any PettingZoo ``ParallelEnv`` to xmarl's vectorised array interface.

``VectorEnv`` steps ``num_envs`` copies together in-process and implements
:class:`~xmarl.envs.base.VectorEnvBase`: observations ``[E, A, obs_dim]``, rewards ``[E, A]``,
terminated ``[E, A]``. Episodes that end are reset in place; the true last observation is
returned separately (``final_obs``) so that replay stores the right next state.

Agents of ``possible_agents`` that a copy leaves out (PettingZoo envs remove an agent from their
dicts once it terminates, and may add agents later) keep their slot: a zero observation, a zero
reward, no action sent, and 0 in :meth:`VectorEnv.alive`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from xmarl.core.spaces import AgentSpec
from xmarl.envs.base import VectorEnvBase
from xmarl.errors import EnvError


class VectorEnv(VectorEnvBase):
    """``num_envs`` PettingZoo parallel environments stepped together as arrays."""

    def __init__(self, make: Callable[[], Any], num_envs: int, name: str = "env") -> None:
        if num_envs < 1:
            raise EnvError(f"{name}: num_envs must be >= 1, got {num_envs}")
        self.envs = [make() for _ in range(num_envs)]
        e0 = self.envs[0]
        agents = list(e0.possible_agents)
        spec = AgentSpec.from_spaces(
            agents,
            {a: e0.observation_space(a) for a in agents},
            {a: e0.action_space(a) for a in agents},
            env_name=name,
        )
        super().__init__(name, spec, num_envs)
        self._obs = np.zeros((num_envs, spec.n_agents, spec.obs_dim), np.float32)
        self._avail: np.ndarray | None = None  # [E, A, act_dim], once the env reports action masks
        self._index = {a: i for i, a in enumerate(agents)}
        # [E, A] which agents act on the current / the last final observations, once one has left
        self._alive: np.ndarray | None = None
        self._final_alive: np.ndarray | None = None

    # -- conversion -------------------------------------------------------------------------
    def _write_obs(self, out: np.ndarray, obs: dict[str, np.ndarray]) -> None:
        unknown = set(obs) - self._index.keys()
        if unknown:
            raise EnvError(
                f"{self.name}: step returned agents {sorted(unknown)} that are not in possible_agents "
                f"{self.agents}; an env must list every agent it may have in possible_agents"
            )
        for a, ob in obs.items():
            i = self._index[a]
            o = np.asarray(ob, np.float32).ravel()
            if o.shape[0] != self.spec.obs_dims[i]:
                raise EnvError(
                    f"{self.name}: agent '{a}' observation has {o.shape[0]} values, "
                    f"its space says {self.spec.obs_dims[i]}"
                )
            out[i, : o.shape[0]] = o

    def _present(self, agents: Any) -> np.ndarray:
        """``[A]`` float32: 1 for the slots of ``agents``."""
        row = np.zeros(self.spec.n_agents, np.float32)
        row[[self._index[a] for a in agents if a in self._index]] = 1.0
        return row

    def _set_alive(self, e: int, row: np.ndarray, final: bool = False) -> None:
        """Record copy ``e``'s alive row; the arrays exist once some agent has been missing."""
        name = "_final_alive" if final else "_alive"
        arr = getattr(self, name)
        if arr is None:
            if row.all():
                return
            arr = np.ones((self.num_envs, self.spec.n_agents), np.float32)
            setattr(self, name, arr)
        arr[e] = row

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
        return None if self._avail is None else self._avail.copy()

    def alive(self) -> np.ndarray | None:
        """``[E, A]``: 1 for the agents in each copy's ``agents`` (they act next), ``None`` while
        every copy has had all of ``possible_agents`` in every step."""
        return None if self._alive is None else self._alive.copy()

    def final_alive(self) -> np.ndarray | None:
        """``[E, A]``: 1 for the agents the last step returned an observation for and did not
        terminate (truncated ones count), ``None`` while no agent has been missing."""
        return None if self._final_alive is None else self._final_alive.copy()

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
        self._alive = self._final_alive = None
        for e, env in enumerate(self.envs):
            obs, infos = env.reset(seed=None if seed is None else seed + e)
            self._write_obs(self._obs[e], obs)
            self._write_avail(e, infos)
            self._set_alive(e, self._present(env.agents))
        self._restart_episodes()
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
            if len(env.agents) != A:  # send actions to the agents in the episode only
                act = {a: act[a] for a in env.agents}
            obs, r, te, tr, infos = env.step(act)
            if len(obs) < len(env.agents) and not set(env.agents) <= obs.keys():
                raise EnvError(f"{self.name}: step returned no observation for agents "
                               f"{sorted(set(env.agents) - obs.keys())}, which are still in its agents; an env "
                               "drops an agent from every dict at once (observations included)")
            self._write_obs(final[e], obs)
            self._write_avail(e, infos)
            for a, v in r.items():
                rew[e, self._index[a]] = v
            for a, v in te.items():
                term[e, self._index[a]] = v
            done[e] = all(te[a] or tr[a] for a in te) or not env.agents
            self._set_alive(e, self._present(a for a in obs if not te.get(a, False)), final=True)
            self._set_alive(e, self._present(env.agents))
        self._track(rew, done)
        obs_next = final.copy()
        if self._alive is not None:  # an agent that left at this step observed its last state; it acts no more
            obs_next *= self._alive[..., None]
        for e in np.flatnonzero(done):
            o, infos = self.envs[e].reset()
            obs_next[e] = 0.0
            self._write_obs(obs_next[e], o)
            self._write_avail(e, infos)
            self._set_alive(e, self._present(self.envs[e].agents))
        self._obs = obs_next
        return obs_next.copy(), final, rew, term, done

    def render(self, index: int = 0) -> Any:
        """Copy ``index``'s own ``render()`` (its ``render_mode`` decides what it returns)."""
        return self.envs[index].render()

    def close(self) -> None:
        """Close every copy."""
        for env in self.envs:
            env.close()
