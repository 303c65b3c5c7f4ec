"""A vectorised numpy ``simple_spread_v3``: ``B`` copies stepped as one array computation.

:class:`FastSpread` speaks the same array interface as :class:`~xmarl.envs.pettingzoo.VectorEnv`
(``reset``/``step``/``sample_actions``/``render``/``close``, ``spec``, ``completed_returns``), so
the trainer uses it unchanged, but it keeps the whole world in arrays and never builds a
PettingZoo environment:

* ``p_pos``, ``p_vel``: ``[B, 2N, 2]`` float64, entities ordered agents then landmarks, as in
  mpe2's ``world.entities``;
* ``steps``: ``[B]`` cycles taken in the current episode.

It reproduces mpe2 1.1's ``simple_spread_v3.parallel_env(N, local_ratio, max_cycles,
continuous_actions)`` transition for transition (``tests/test_mpe_fast.py`` checks this against
mpe2 itself):

* action -> force: discrete ``0..4`` = no-op, -x, +x, -y, +y; continuous ``a`` (clipped to
  ``[0, 1]`` like PettingZoo's ``ClipOutOfBoundsWrapper``) gives ``u = (a2 - a1, a4 - a3)``;
  either is multiplied by the sensitivity 5 (agents have no ``accel``);
* contact forces between every pair of agents (landmarks do not collide):
  ``100 * delta / dist * k * log(1 + exp(-(dist - 0.3) / k))`` with ``k = 1e-3``, even for
  agents far apart, summed in mpe2's order;
* integration with ``dt = 0.1``, damping 0.25, mass 1, no speed limit: position moves with the
  old velocity, then ``v = 0.75 v + 0.1 F``;
* observation of agent ``i``: ``[v_i, p_i, landmark_l - p_i for every l, p_j - p_i for every
  other agent j, c_j for every other agent j]`` where the communication state ``c`` is always
  zero (agents are silent), cast to float32;
* reward: ``(1 - local_ratio) * -(sum over landmarks of the distance to its nearest agent)
  + local_ratio * -(number of other agents closer than 0.3)``;
* never terminates; truncates every agent after ``max_cycles`` cycles;
* reset: agent and landmark positions uniform in ``[-1, 1)^2``, velocities zero (the random
  stream is numpy's ``default_rng(seed)`` for all copies, not mpe2's per-copy stream).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from xmarl.core.spaces import AgentSpec
from xmarl.envs.pettingzoo import VectorEnv
from xmarl.errors import BackendNotInstalledError, EnvError

NAME = "mpe-fast/simple_spread_v3"

# mpe2 constants (World, Agent and simple_spread's Scenario.make_world)
DIM_C = 2  # communication channel size, observed as zeros
AGENT_SIZE = 0.15
DT = 0.1
DAMPING = 0.25
CONTACT_FORCE = 1e2
CONTACT_MARGIN = 1e-3
SENSITIVITY = 5.0
MASS = 1.0
N_MOVES = 5  # no_action, left, right, down, up


class FastSpread(VectorEnv):
    """``num_envs`` copies of mpe2's ``simple_spread_v3`` stepped together in numpy.

    Keyword arguments are mpe2's ``parallel_env`` ones: ``N`` agents and landmarks,
    ``local_ratio`` (weight of the collision term), ``max_cycles`` (episode length) and
    ``continuous_actions`` (``Box(0, 1, (5,))`` instead of ``Discrete(5)``).

    This class shares :class:`VectorEnv`'s public contract (so it is accepted wherever a
    ``VectorEnv`` is) but none of its PettingZoo machinery: ``__init__`` and every public
    method are its own.
    """

    def __init__(
        self,
        num_envs: int,
        N: int = 3,
        local_ratio: float = 0.5,
        max_cycles: int = 25,
        continuous_actions: bool = False,
        name: str = NAME,
    ) -> None:
        if int(num_envs) != num_envs or num_envs < 1:
            raise EnvError(f"{name}: num_envs must be an integer >= 1, got {num_envs}")
        if int(N) != N or N < 1:
            raise EnvError(f"{name}: N must be an integer >= 1, got {N}")
        if not 0.0 <= local_ratio <= 1.0:
            raise EnvError(f"{name}: local_ratio is a proportion in [0, 1], got {local_ratio}")
        if int(max_cycles) != max_cycles or max_cycles < 1:
            raise EnvError(f"{name}: max_cycles must be an integer >= 1, got {max_cycles}")
        self.name = name
        self.num_envs = B = int(num_envs)
        self.n = n = int(N)
        self.local_ratio = float(local_ratio)
        self.max_cycles = int(max_cycles)
        self.continuous_actions = bool(continuous_actions)
        self.agents = [f"agent_{i}" for i in range(n)]
        self.obs_dim = 4 + 2 * n + 2 * (n - 1) + DIM_C * (n - 1)
        obs_space = spaces.Box(-np.float32(np.inf), np.float32(np.inf), (self.obs_dim,), np.float32)
        act_space: spaces.Space = (
            spaces.Box(0.0, 1.0, (N_MOVES,)) if self.continuous_actions else spaces.Discrete(N_MOVES)
        )
        self.spec = AgentSpec.from_spaces(
            self.agents, dict.fromkeys(self.agents, obs_space), dict.fromkeys(self.agents, act_space), env_name=name
        )
        # others[i] = indices of the other agents in increasing order (mpe2's observation order)
        self._others = np.array([[j for j in range(n) if j != i] for i in range(n)], np.int64).reshape(n, n - 1)
        self.p_pos = np.zeros((B, 2 * n, 2))
        self.p_vel = np.zeros((B, 2 * n, 2))
        self.steps = np.zeros(B, np.int64)
        self._cam0 = np.ones(B)  # camera range at episode start (mpe2's original_cam_range, for render)
        self._ret = np.zeros((B, n), np.float64)
        self._len = np.zeros(B, np.int64)
        self.completed_returns: list[float] = []  # per-agent mean return of each finished episode
        self.completed_lengths: list[int] = []
        self._rng = np.random.default_rng()
        self._render_env: Any = None
        self._draw(np.ones(B, bool))
        self._geometry()

    # -- state ------------------------------------------------------------------------------
    def _draw(self, mask: np.ndarray) -> None:
        """New episodes for the copies in ``mask``: uniform positions, zero velocities."""
        k = int(mask.sum())
        if k == 0:
            return
        pos = self._rng.uniform(-1.0, 1.0, (k, 2 * self.n, 2))
        self.p_pos[mask] = pos
        self.p_vel[mask] = 0.0
        self.steps[mask] = 0
        self._cam0[mask] = np.abs(pos).max(axis=(1, 2))

    def _geometry(self) -> None:
        """Pairwise offsets and distances of the current positions (used by obs, reward, force)."""
        n = self.n
        agent = self.p_pos[:, :n]
        # rel_other[b, i, k] = p_(others[i, k]) - p_i ; rel_lm[b, i, l] = landmark_l - p_i
        self._rel_other = agent[:, self._others] - agent[:, :, None]
        self._rel_lm = self.p_pos[:, None, n:] - agent[:, :, None]
        self._d_other = np.sqrt(np.sum(np.square(self._rel_other), axis=-1))
        self._d_lm = np.sqrt(np.sum(np.square(self._rel_lm), axis=-1))

    def _observe(self) -> np.ndarray:
        """``[B, N, obs_dim]`` float32 observations of the current geometry."""
        B, n = self.num_envs, self.n
        obs = np.zeros((B, n, self.obs_dim), np.float32)
        obs[:, :, 0:2] = self.p_vel[:, :n]
        obs[:, :, 2:4] = self.p_pos[:, :n]
        obs[:, :, 4 : 4 + 2 * n] = self._rel_lm.reshape(B, n, 2 * n)
        obs[:, :, 4 + 2 * n : 2 + 4 * n] = self._rel_other.reshape(B, n, 2 * (n - 1))
        # the last DIM_C * (N - 1) entries are the other agents' communication: always zero
        return obs

    def _rewards(self) -> np.ndarray:
        """``[B, N]`` float64 rewards of the current geometry."""
        nearest = self._d_lm.min(axis=1)  # [B, landmarks]: distance to the closest agent
        # sum landmarks in order (as mpe2's loop does) by reducing over a leading axis
        global_rew = -np.ascontiguousarray(nearest.T).sum(axis=0)
        local_rew = -(self._d_other < 2 * AGENT_SIZE).sum(axis=-1).astype(np.float64)
        return global_rew[:, None] * (1 - self.local_ratio) + local_rew * self.local_ratio

    def set_state(
        self, p_pos: np.ndarray, p_vel: np.ndarray | None = None, steps: int | np.ndarray = 0
    ) -> np.ndarray:
        """Put every copy in a given world state; returns its observations ``[B, N, obs_dim]``.

        ``p_pos``/``p_vel`` are ``[B, 2N, 2]`` (agents then landmarks, like mpe2's
        ``world.entities``; landmark velocities are kept but never used, landmarks do not move).
        ``p_vel`` defaults to zeros; ``steps`` (scalar or ``[B]``) is the number of cycles already
        taken in the episode. Running returns and lengths restart at zero.
        """
        shape = (self.num_envs, 2 * self.n, 2)
        p_pos = np.asarray(p_pos, np.float64)
        p_vel = np.zeros(shape) if p_vel is None else np.asarray(p_vel, np.float64)
        if p_pos.shape != shape or p_vel.shape != shape:
            raise EnvError(
                f"{self.name}: set_state needs p_pos and p_vel of shape {shape}, got {p_pos.shape} and {p_vel.shape}"
            )
        self.p_pos = p_pos.copy()
        self.p_vel = p_vel.copy()
        self.steps = np.broadcast_to(np.asarray(steps, np.int64), (self.num_envs,)).copy()
        self._cam0 = np.abs(self.p_pos).max(axis=(1, 2))
        self._ret[:] = 0.0
        self._len[:] = self.steps
        self._geometry()
        return self._observe()

    def get_state(self) -> dict[str, np.ndarray]:
        """Copies of ``p_pos``, ``p_vel`` (``[B, 2N, 2]``) and ``steps`` (``[B]``)."""
        return {"p_pos": self.p_pos.copy(), "p_vel": self.p_vel.copy(), "steps": self.steps.copy()}

    def set_state_from_mpe2(self, envs: Sequence[Any]) -> np.ndarray:
        """Copy the world state of ``num_envs`` mpe2 ``simple_spread`` envs (AEC or parallel)."""
        if len(envs) != self.num_envs:
            raise EnvError(f"{self.name}: set_state_from_mpe2 got {len(envs)} envs for {self.num_envs} copies")
        p_pos, p_vel, steps = mpe2_world_state(envs)
        return self.set_state(p_pos, p_vel, steps)

    # -- array API --------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> np.ndarray:
        """New episodes in every copy; ``seed`` restarts the random stream. Returns ``[B, N, obs_dim]``."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._draw(np.ones(self.num_envs, bool))
        self._geometry()
        self._ret[:] = 0.0
        self._len[:] = 0
        return self._observe()

    def _force(self, actions: np.ndarray) -> np.ndarray:
        """``[B, N, 2]`` total force on each agent: its action plus contacts with the others."""
        B, n = self.num_envs, self.n
        u = np.zeros((B, n, 2))
        if self.continuous_actions:
            a = np.asarray(actions, np.float32)
            if a.shape != (B, n, N_MOVES):
                raise EnvError(f"{self.name}: continuous actions must have shape {(B, n, N_MOVES)}, got {a.shape}")
            a = np.clip(a, 0.0, 1.0)  # what PettingZoo's ClipOutOfBoundsWrapper does
            u[..., 0] = a[..., 2] - a[..., 1]  # float32 difference, as in mpe2
            u[..., 1] = a[..., 4] - a[..., 3]
        else:
            a = np.asarray(actions)
            if a.shape != (B, n):
                raise EnvError(f"{self.name}: discrete actions must have shape {(B, n)}, got {a.shape}")
            a = a.astype(np.int64)
            if a.min() < 0 or a.max() >= N_MOVES:
                raise EnvError(f"{self.name}: discrete actions must be in 0..{N_MOVES - 1}, got {a.min()}..{a.max()}")
            u[..., 0] = (a == 2).astype(np.float64) - (a == 1)
            u[..., 1] = (a == 4).astype(np.float64) - (a == 3)
        u *= SENSITIVITY
        if n == 1:
            return u
        # contact with every other agent j, delta = p_i - p_j (pre-step geometry)
        k = CONTACT_MARGIN
        pen = np.logaddexp(0.0, -(self._d_other - 2 * AGENT_SIZE) / k) * k
        contact = CONTACT_FORCE * -self._rel_other / self._d_other[..., None] * pen[..., None]
        # mpe2 adds to u the contacts with j = 0, 1, ... in turn; a reduction over a leading axis
        # of [u, contact_0, contact_1, ...] adds in exactly that order
        return np.concatenate([u[:, :, None], contact], axis=2).sum(axis=2)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Step all copies.

        ``actions`` is ``[B, N]`` ints (discrete) or ``[B, N, 5]`` floats (continuous).
        Returns ``(obs, final_obs, rewards, terminated, done)`` exactly as
        :meth:`VectorEnv.step`: ``obs`` already reset where an episode ended, ``final_obs`` the
        true next observation, ``rewards``/``terminated`` ``[B, N]`` float32, ``done`` ``[B]``.
        """
        n = self.n
        force = self._force(actions)
        pos, vel = self.p_pos[:, :n], self.p_vel[:, :n]  # views: landmarks are not movable
        pos += vel * DT
        vel[:] = vel * (1 - DAMPING) + (force / MASS) * DT
        self.steps += 1
        self._geometry()
        final = self._observe()
        rew = self._rewards().astype(np.float32)
        if not np.all(np.isfinite(rew)):
            bad = np.argwhere(~np.isfinite(rew))[0]
            raise EnvError(f"{self.name}: reward of agent '{self.agents[bad[1]]}' is {rew[tuple(bad)]}")
        term = np.zeros((self.num_envs, n), np.float32)  # simple_spread never terminates
        done = self.steps >= self.max_cycles  # truncation
        self._ret += rew
        self._len += 1
        obs = final
        if done.any():
            idx = np.flatnonzero(done)
            self.completed_returns.extend(self._ret[idx].mean(axis=1).tolist())
            self.completed_lengths.extend(self._len[idx].tolist())
            self._ret[idx] = 0.0
            self._len[idx] = 0
            self._draw(done)
            self._geometry()
            obs = self._observe()
        return obs.copy() if obs is final else obs, final, rew, term, done

    def sample_actions(self, rng: np.random.Generator) -> np.ndarray:
        """Uniform random actions for every copy and agent (for warm-up)."""
        B, n = self.num_envs, self.n
        if self.spec.discrete:
            return (rng.random((B, n)) * N_MOVES).astype(np.int64)
        u = rng.random((B, n, N_MOVES)).astype(np.float32)
        return self.spec.low + u * (self.spec.high - self.spec.low)

    def render(self, index: int = 0) -> Any:
        """RGB frame ``[700, 700, 3]`` of copy ``index``, drawn by mpe2's renderer (needs mpe2)."""
        if self._render_env is None:
            try:
                from mpe2.simple_spread.simple_spread import raw_env
            except ModuleNotFoundError:
                raise BackendNotInstalledError(
                    f"{self.name}: render draws with mpe2, which is not installed: pip install 'xmarl[mpe]'"
                ) from None
            self._render_env = raw_env(N=self.n, max_cycles=self.max_cycles, render_mode="rgb_array")
        env = self._render_env
        for e, entity in enumerate(env.world.entities):
            entity.state.p_pos = self.p_pos[index, e].copy()
            entity.state.p_vel = self.p_vel[index, e].copy()
        env.original_cam_range = self._cam0[index]
        return env.render()

    def __getstate__(self) -> dict[str, Any]:
        """Pickle everything (world arrays, RNG, running returns) except the renderer."""
        state = self.__dict__.copy()
        state["_render_env"] = None
        return state

    def close(self) -> None:
        """Release the renderer, if one was made."""
        if self._render_env is not None:
            self._render_env.close()
            self._render_env = None


def mpe2_world_state(envs: Sequence[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(p_pos, p_vel, steps)`` of mpe2 envs: ``[B, entities, 2]`` float64 twice and ``[B]``."""
    worlds = [env.unwrapped for env in envs]
    p_pos = np.array([[ent.state.p_pos for ent in w.world.entities] for w in worlds], np.float64)
    p_vel = np.array([[ent.state.p_vel for ent in w.world.entities] for w in worlds], np.float64)
    steps = np.array([w.steps for w in worlds], np.int64)
    return p_pos, p_vel, steps


def make_fast_spread(num_envs: int = 1, **kwargs: Any) -> FastSpread:
    """Registry factory: ``FastSpread(num_envs, **kwargs)``, a one-line error for unknown kwargs."""
    try:
        return FastSpread(num_envs, **kwargs)
    except TypeError as exc:
        raise EnvError(f"env '{NAME}': bad env kwargs {sorted(kwargs)}: {exc}") from None


__all__ = ["FastSpread", "make_fast_spread", "mpe2_world_state", "NAME"]
