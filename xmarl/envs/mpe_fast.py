"""Vectorised numpy MPE tasks: ``B`` copies of an mpe2 world stepped as one array computation.

Three tasks, each transition-equivalent to its mpe2 1.1 ``parallel_env`` (``tests/test_mpe_fast.py``
copies mpe2's world state into them and compares every observation, reward, termination and
truncation against mpe2 itself):

* :class:`FastSpread`, ``mpe-fast/simple_spread_v3``;
* :class:`FastSpeakerListener`, ``mpe-fast/simple_speaker_listener_v4``;
* :class:`FastReference`, ``mpe-fast/simple_reference_v3``.

They share :class:`FastMPE`, an implementation of :class:`~xmarl.envs.base.VectorEnvBase` (the
same array interface as the PettingZoo adapter :class:`~xmarl.envs.pettingzoo.VectorEnv`), so the
trainer uses them unchanged, but keeps the whole world in arrays and never builds a PettingZoo
environment:

* ``p_pos``, ``p_vel``: ``[B, A + L, 2]`` float64, entities ordered agents then landmarks, as in
  mpe2's ``world.entities``;
* ``c``: ``[B, A, dim_c]`` float64, each agent's communication state (what it said last step;
  always zero for silent agents);
* ``goal``: ``[B, G]`` int64, the goal landmark of each goal-holding agent (``G = 0`` for spread);
* ``steps``: ``[B]`` cycles taken in the current episode.

The shared world (mpe2's ``World``, ``Agent`` and ``SimpleEnv``):

* action -> force and word (``SimpleEnv._execute_world_step``/``_set_action``). A movable
  agent's movement is ``0..4`` = no-op, -x, +x, -y, +y (discrete) or ``a[0:5]`` giving
  ``u = (a2 - a1, a4 - a3)`` (continuous, clipped to ``[0, 1]`` like PettingZoo's
  ``ClipOutOfBoundsWrapper``), times the sensitivity 5; an agent that can speak says a word of
  ``dim_c``. Discrete actions compose both as ``Discrete(5 * dim_c)`` with movement
  ``a % 5`` and word ``a // 5`` (``Discrete(dim_c)`` for an agent that cannot move, ``Discrete(5)``
  for a silent one); the word becomes the one-hot communication state. Continuous actions are
  ``Box(0, 1, (5 + dim_c,))``, movement first, and the communication state is the clipped
  float32 ``a[5:]`` itself (``Box(0, 1, (dim_c,))`` for an agent that cannot move);
* contact forces (simple_spread only: agents of the other tasks and all landmarks do not
  collide) between every pair of agents: ``100 * delta / dist * k * log(1 + exp(-(dist - 2
  size) / k))`` with ``k = 1e-3``, even for agents far apart, summed in mpe2's order;
* integration of movable agents with ``dt = 0.1``, damping 0.25, mass 1, no speed limit:
  position moves with the old velocity, then ``v = 0.75 v + 0.1 F``; then the communication
  state is updated (zero for silent agents);
* observations cast to float32 and zero-padded to the largest agent's size (as ``VectorEnv``);
* rewards cast to float32; no task terminates; all truncate after ``max_cycles`` cycles;
* reset: agent and landmark positions uniform in ``[-1, 1)^2``, velocities and communication
  zero, goal landmarks uniform (the random stream is numpy's ``default_rng(seed)`` for all
  copies, not mpe2's per-copy stream).

Task specifics are described on each class.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from xmarl.core.spaces import AgentSpec
from xmarl.envs.base import VectorEnvBase
from xmarl.errors import BackendNotInstalledError, EnvError

NAME = "mpe-fast/simple_spread_v3"
NAME_SPEAKER_LISTENER = "mpe-fast/simple_speaker_listener_v4"
NAME_REFERENCE = "mpe-fast/simple_reference_v3"

# mpe2 constants (World, Agent, SimpleEnv._set_action)
DT = 0.1
DAMPING = 0.25
CONTACT_FORCE = 1e2
CONTACT_MARGIN = 1e-3
SENSITIVITY = 5.0
MASS = 1.0
N_MOVES = 5  # no_action, left, right, down, up
# simple_spread's Scenario.make_world
DIM_C = 2  # communication channel size, observed as zeros (agents are silent)
AGENT_SIZE = 0.15
# reset_world colours of the three landmarks
SPEAKER_LISTENER_COLORS = np.array([[0.65, 0.15, 0.15], [0.15, 0.65, 0.15], [0.15, 0.15, 0.65]])
REFERENCE_COLORS = np.array([[0.75, 0.25, 0.25], [0.25, 0.75, 0.25], [0.25, 0.25, 0.75]])


class FastMPE(VectorEnvBase):
    """The batched mpe2 world shared by the ``mpe-fast`` tasks (see the module docstring).

    A subclass fixes the task's agents (``movable``/``silent``), landmarks, communication size,
    goals and observation sizes through ``__init__``, and writes :meth:`_observe` and
    :meth:`_rewards` (and extends :meth:`_geometry` when it needs more pairwise quantities).
    Everything else (actions, physics, communication, auto-reset, state copy, rendering,
    pickling) lives here; returns bookkeeping, uniform random actions and the (absent) action
    masks come from :class:`~xmarl.envs.base.VectorEnvBase`.
    """

    #: mpe2 module whose ``raw_env`` draws the frames of :meth:`render`
    MPE2_MODULE: str = ""
    #: ``[L, 3]`` landmark colours (observed by goal holders, used when rendering)
    LANDMARK_COLORS: np.ndarray = np.zeros((0, 3))
    #: added to the goal landmark's colour to paint the agent that must reach it (rendering)
    GOAL_TINT: float = 0.0

    def __init__(
        self,
        num_envs: int,
        *,
        agents: Sequence[str],
        n_landmarks: int,
        movable: Sequence[bool],
        silent: Sequence[bool],
        dim_c: int,
        obs_dims: Sequence[int],
        max_cycles: int,
        continuous_actions: bool,
        name: str,
        collide: bool = False,
        agent_size: float = 0.05,
        goals: Sequence[tuple[int, int]] = (),
    ) -> None:
        """Lay out the world; ``goals`` lists ``(holder, mover)`` agent pairs: ``holder`` knows
        (and observes the colour of) a goal landmark that ``mover`` must reach (mpe2's
        ``holder.goal_b`` and ``holder.goal_a``). ``collide`` makes every pair of agents exchange
        contact forces (all agents must then be movable)."""
        if int(num_envs) != num_envs or num_envs < 1:
            raise EnvError(f"{name}: num_envs must be an integer >= 1, got {num_envs}")
        if int(max_cycles) != max_cycles or max_cycles < 1:
            raise EnvError(f"{name}: max_cycles must be an integer >= 1, got {max_cycles}")
        B = int(num_envs)
        self.max_cycles = int(max_cycles)
        self.continuous_actions = bool(continuous_actions)
        self.n_agents = A = len(agents)
        self.n_landmarks = L = int(n_landmarks)
        self.dim_c = int(dim_c)
        self.movable = np.array(movable, bool)
        self.silent = np.array(silent, bool)
        self.collide = bool(collide)
        self.agent_size = float(agent_size)
        mov = np.flatnonzero(self.movable)
        if len(mov) and len(mov) != mov[-1] - mov[0] + 1:
            raise EnvError(f"{name}: the movable agents must be consecutive, got {mov.tolist()}")
        if self.collide and not self.movable.all():
            raise EnvError(f"{name}: colliding agents must all be movable")
        # integration works on a view of the movable agents
        self._mov = slice(int(mov[0]), int(mov[-1]) + 1) if len(mov) else slice(0, 0)
        self._n_mov = len(mov)

        # action spaces, as mpe2's SimpleEnv.__init__ composes them
        act_spaces: dict[str, spaces.Space] = {}
        act_n = []
        for a, m, s in zip(agents, self.movable, self.silent):
            if self.continuous_actions:
                d = (N_MOVES if m else 0) + (0 if s else self.dim_c)
                act_spaces[a] = spaces.Box(0.0, 1.0, (d,))
            else:
                d = (N_MOVES if m else 1) * (1 if s else self.dim_c)
                act_spaces[a] = spaces.Discrete(d)
            act_n.append(d)
        obs_spaces = {
            a: spaces.Box(-np.float32(np.inf), np.float32(np.inf), (int(d),), np.float32)
            for a, d in zip(agents, obs_dims)
        }
        super().__init__(name, AgentSpec.from_spaces(list(agents), obs_spaces, act_spaces, env_name=name), B)
        self.obs_dim = self.spec.obs_dim
        self._act_n = np.array(act_n, np.int64)  # discrete choices per agent
        self._act_n_min = int(self._act_n.min())
        # speaking agents: their word is a // 5 (movable) or a (immobile) in the discrete case, and
        # the columns _c_cols of the continuous action (after the 5 movement entries if movable)
        self._spk = np.flatnonzero(~self.silent)
        self._mov_speak = bool((self.movable & ~self.silent).any())  # discrete actions need % 5
        self._mdiv = np.where(self.movable[self._spk], N_MOVES, 1)
        self._c_cols = np.where(self.movable[self._spk], N_MOVES, 0)[:, None] + np.arange(self.dim_c)
        self._eye_c = np.eye(self.dim_c)
        # others[i] = indices of the other agents in increasing order (mpe2's observation order)
        self._others = np.array([[j for j in range(A) if j != i] for i in range(A)], np.int64).reshape(A, A - 1)
        self._goal_holder = np.array([h for h, _ in goals], np.int64)
        self._goal_mover = np.array([m for _, m in goals], np.int64)
        self._bidx = np.arange(B)[:, None]

        self.p_pos = np.zeros((B, A + L, 2))
        self.p_vel = np.zeros((B, A + L, 2))
        self.c = np.zeros((B, A, self.dim_c))
        self.goal = np.zeros((B, len(goals)), np.int64)
        self.steps = np.zeros(B, np.int64)
        self._cam0 = np.ones(B)  # camera range at episode start (mpe2's original_cam_range, for render)
        self._rng = np.random.default_rng()
        self._render_env: Any = None
        self._draw(np.ones(B, bool))
        self._geometry()

    # -- task hooks -------------------------------------------------------------------------
    def _observe(self) -> np.ndarray:
        """``[B, A, obs_dim]`` float32 observations of the current state (padding zero)."""
        raise NotImplementedError

    def _rewards(self) -> np.ndarray:
        """``[B, A]`` float64 rewards of the current state."""
        raise NotImplementedError

    def _render_kwargs(self) -> dict[str, Any]:
        """Extra keyword arguments of the mpe2 ``raw_env`` that renders."""
        return {}

    # -- state ------------------------------------------------------------------------------
    def _draw(self, mask: np.ndarray) -> None:
        """New episodes for the copies in ``mask``: uniform positions and goals, zero velocities and words."""
        k = int(mask.sum())
        if k == 0:
            return
        pos = self._rng.uniform(-1.0, 1.0, (k, self.n_agents + self.n_landmarks, 2))
        self.p_pos[mask] = pos
        self.p_vel[mask] = 0.0
        self.c[mask] = 0.0
        if self.goal.shape[1]:
            self.goal[mask] = self._rng.integers(self.n_landmarks, size=(k, self.goal.shape[1]))
        self.steps[mask] = 0
        self._cam0[mask] = np.abs(pos).max(axis=(1, 2))

    def _geometry(self) -> None:
        """Offsets and distances of the current positions that observations, rewards and forces use.

        ``_rel_lm[b, i, l] = landmark_l - p_i``; with contacts also ``_rel_other[b, i, k] =
        p_(others[i, k]) - p_i`` and its norm ``_d_other``; with goals ``_goal_d2[b, g]``, the
        squared distance from goal ``g``'s mover to its landmark.
        """
        A = self.n_agents
        agent = self.p_pos[:, :A]
        self._rel_lm = self.p_pos[:, None, A:] - agent[:, :, None]
        if self.collide:
            self._rel_other = agent[:, self._others] - agent[:, :, None]
            self._d_other = np.sqrt(np.sum(np.square(self._rel_other), axis=-1))
        if self.goal.shape[1]:
            to_goal = self._rel_lm[self._bidx, self._goal_mover, self.goal]  # [B, G, 2]
            self._goal_d2 = np.sum(np.square(to_goal), axis=-1)

    def set_state(
        self,
        p_pos: np.ndarray,
        p_vel: np.ndarray | None = None,
        steps: int | np.ndarray = 0,
        c: np.ndarray | None = None,
        goal: np.ndarray | None = None,
    ) -> np.ndarray:
        """Put every copy in a given world state; returns its observations ``[B, A, obs_dim]``.

        ``p_pos``/``p_vel`` are ``[B, A + L, 2]`` (agents then landmarks, like mpe2's
        ``world.entities``; velocities of landmarks and immobile agents are kept but never used).
        ``p_vel`` defaults to zeros; ``steps`` (scalar or ``[B]``) is the number of cycles already
        taken in the episode; ``c`` (``[B, A, dim_c]``, default zeros; zero for silent agents) is
        what each agent said last; ``goal`` (``[B, G]`` landmark indices) is required when the task
        has goals. Running returns and lengths restart at zero.
        """
        B, A, L, G = self.num_envs, self.n_agents, self.n_landmarks, self.goal.shape[1]
        shape = (B, A + L, 2)
        p_pos = np.asarray(p_pos, np.float64)
        p_vel = np.zeros(shape) if p_vel is None else np.asarray(p_vel, np.float64)
        if p_pos.shape != shape or p_vel.shape != shape:
            raise EnvError(
                f"{self.name}: set_state needs p_pos and p_vel of shape {shape}, got {p_pos.shape} and {p_vel.shape}"
            )
        c = np.zeros((B, A, self.dim_c)) if c is None else np.asarray(c, np.float64)
        if c.shape != (B, A, self.dim_c):
            raise EnvError(f"{self.name}: set_state needs c of shape {(B, A, self.dim_c)}, got {c.shape}")
        if np.any(c[:, self.silent] != 0):
            raise EnvError(f"{self.name}: silent agents say nothing: their c must be zero")
        if G and goal is None:
            raise EnvError(f"{self.name}: set_state needs goal, the goal landmark indices [{B}, {G}]")
        if goal is not None:
            goal = np.asarray(goal)
            if goal.shape != (B, G) or (G and (goal.min() < 0 or goal.max() >= L)):
                raise EnvError(
                    f"{self.name}: set_state needs goal of shape {(B, G)} with values in 0..{L - 1}, "
                    f"got shape {goal.shape}"
                )
            self.goal = goal.astype(np.int64)
        self.p_pos = p_pos.copy()
        self.p_vel = p_vel.copy()
        self.c = c.copy()
        self.steps = np.broadcast_to(np.asarray(steps, np.int64), (B,)).copy()
        self._cam0 = np.abs(self.p_pos).max(axis=(1, 2))
        self._ret[:] = 0.0
        self._len[:] = self.steps
        self._geometry()
        return self._observe()

    def get_state(self) -> dict[str, np.ndarray]:
        """Copies of ``p_pos``, ``p_vel`` (``[B, A + L, 2]``), ``c`` (``[B, A, dim_c]``),
        ``steps`` (``[B]``) and, for tasks with goals, ``goal`` (``[B, G]``)."""
        state = {"p_pos": self.p_pos.copy(), "p_vel": self.p_vel.copy(), "c": self.c.copy(),
                 "steps": self.steps.copy()}
        if self.goal.shape[1]:
            state["goal"] = self.goal.copy()
        return state

    def set_state_from_mpe2(self, envs: Sequence[Any]) -> np.ndarray:
        """Copy the world state (positions, velocities, words, goals, step count) of ``num_envs``
        mpe2 envs of the same task (AEC or parallel); returns the observations."""
        if len(envs) != self.num_envs:
            raise EnvError(f"{self.name}: set_state_from_mpe2 got {len(envs)} envs for {self.num_envs} copies")
        p_pos, p_vel, steps = mpe2_world_state(envs)
        if p_pos.shape[1] != self.n_agents + self.n_landmarks:
            raise EnvError(f"{self.name}: the mpe2 envs have {p_pos.shape[1]} entities, expected "
                           f"{self.n_agents + self.n_landmarks}")
        c = mpe2_comm_state(envs)
        goal = None
        if self.goal.shape[1]:
            goal = np.zeros((self.num_envs, self.goal.shape[1]), np.int64)
            for b, env in enumerate(envs):
                world = env.unwrapped.world
                for g, (h, m) in enumerate(zip(self._goal_holder, self._goal_mover)):
                    holder = world.agents[h]
                    if holder.goal_a is not world.agents[m]:
                        raise EnvError(f"{self.name}: mpe2 agent '{holder.name}' has an unexpected goal agent")
                    goal[b, g] = next(i for i, lm in enumerate(world.landmarks) if lm is holder.goal_b)
        return self.set_state(p_pos, p_vel, steps, c=c, goal=goal)

    # -- array API --------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> np.ndarray:
        """New episodes in every copy; ``seed`` restarts the random stream. Returns ``[B, A, obs_dim]``."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._draw(np.ones(self.num_envs, bool))
        self._geometry()
        self._restart_episodes()
        return self._observe()

    def _decode(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """``(u, words)``: ``[B, M, 2]`` float64 action forces of the movable agents (before the
        sensitivity) and ``[B, S, dim_c]`` communication of the speaking agents (``None`` if none)."""
        B, A = self.num_envs, self.n_agents
        mov = self._mov
        words: np.ndarray | None = None
        u = np.empty((B, self._n_mov, 2))
        if self.continuous_actions:
            a = np.asarray(actions, np.float32)
            shape = (B, A, self.spec.act_dim)
            if a.shape != shape:
                raise EnvError(f"{self.name}: continuous actions must have shape {shape}, got {a.shape}")
            a = np.clip(a, 0.0, 1.0)  # what PettingZoo's ClipOutOfBoundsWrapper does
            m = a[:, mov]
            u[..., 0] = m[..., 2] - m[..., 1]  # float32 difference, as in mpe2
            u[..., 1] = m[..., 4] - m[..., 3]
            if len(self._spk):
                words = a[:, self._spk[:, None], self._c_cols] + 0.0  # mpe2 adds the (zero) noise
        else:
            a = np.asarray(actions)
            if a.shape != (B, A):
                raise EnvError(f"{self.name}: discrete actions must have shape {(B, A)}, got {a.shape}")
            a = a.astype(np.int64)
            if a.min() < 0 or (a.max() >= self._act_n_min and (a >= self._act_n).any()):
                b, i = np.argwhere((a < 0) | (a >= self._act_n))[0]
                raise EnvError(f"{self.name}: discrete actions of agent '{self.agents[i]}' must be in "
                               f"0..{self._act_n[i] - 1}, got {a[b, i]}")
            move = a[:, mov] % N_MOVES if self._mov_speak else a[:, mov]
            u[..., 0] = (move == 2).astype(np.float64) - (move == 1)
            u[..., 1] = (move == 4).astype(np.float64) - (move == 3)
            if len(self._spk):
                words = self._eye_c[a[:, self._spk] // self._mdiv]
        return u, words

    def _force(self, u: np.ndarray) -> np.ndarray:
        """``[B, M, 2]`` total force on each movable agent: its action plus contacts with the others."""
        u *= SENSITIVITY
        if not self.collide or self.n_agents == 1:
            return u
        # contact with every other agent j, delta = p_i - p_j (pre-step geometry)
        k = CONTACT_MARGIN
        pen = np.logaddexp(0.0, -(self._d_other - 2 * self.agent_size) / k) * k
        contact = CONTACT_FORCE * -self._rel_other / self._d_other[..., None] * pen[..., None]
        # mpe2 adds to u the contacts with j = 0, 1, ... in turn; a reduction over a leading axis
        # of [u, contact_0, contact_1, ...] adds in exactly that order
        return np.concatenate([u[:, :, None], contact], axis=2).sum(axis=2)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Step all copies.

        ``actions`` is ``[B, A]`` ints (discrete) or ``[B, A, act_dim]`` floats (continuous, each
        agent's entries first, padding ignored). Returns ``(obs, final_obs, rewards, terminated,
        done)`` exactly as :meth:`VectorEnvBase.step`: ``obs`` already reset where an episode ended,
        ``final_obs`` the true next observation, ``rewards``/``terminated`` ``[B, A]`` float32,
        ``done`` ``[B]``.
        """
        u, words = self._decode(actions)
        force = self._force(u)
        pos, vel = self.p_pos[:, self._mov], self.p_vel[:, self._mov]  # views: the movable agents
        pos += vel * DT
        vel[:] = vel * (1 - DAMPING) + (force / MASS) * DT
        if words is not None:
            self.c[:, self._spk] = words  # silent agents' c stays zero
        self.steps += 1
        self._geometry()
        final = self._observe()
        rew = self._rewards().astype(np.float32)
        if not np.all(np.isfinite(rew)):
            bad = np.argwhere(~np.isfinite(rew))[0]
            raise EnvError(f"{self.name}: reward of agent '{self.agents[bad[1]]}' is {rew[tuple(bad)]}")
        term = np.zeros((self.num_envs, self.n_agents), np.float32)  # these tasks never terminate
        done = self.steps >= self.max_cycles  # truncation
        self._track(rew, done)
        obs = final
        if done.any():
            self._draw(done)
            self._geometry()
            obs = self._observe()
        return obs.copy() if obs is final else obs, final, rew, term, done

    def render(self, index: int = 0) -> Any:
        """RGB frame ``[700, 700, 3]`` of copy ``index``, drawn by mpe2's renderer (needs mpe2)."""
        if self._render_env is None:
            try:
                mod = importlib.import_module(self.MPE2_MODULE)
            except ModuleNotFoundError:
                raise BackendNotInstalledError(
                    f"{self.name}: render draws with mpe2, which is not installed: pip install 'xmarl[mpe]'"
                ) from None
            self._render_env = mod.raw_env(
                max_cycles=self.max_cycles, continuous_actions=self.continuous_actions,
                render_mode="rgb_array", **self._render_kwargs(),
            )
        env = self._render_env
        world = env.world
        for e, entity in enumerate(world.entities):
            entity.state.p_pos = self.p_pos[index, e].copy()
            entity.state.p_vel = self.p_vel[index, e].copy()
        for i, agent in enumerate(world.agents):
            agent.state.c = self.c[index, i].copy()  # the word each agent shows
        for g, (h, m) in enumerate(zip(self._goal_holder, self._goal_mover)):
            landmark = world.landmarks[self.goal[index, g]]
            world.agents[h].goal_b = landmark
            world.agents[m].color = landmark.color + self.GOAL_TINT  # as mpe2's reset_world paints it
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


class FastSpread(FastMPE):
    """``num_envs`` copies of mpe2's ``simple_spread_v3`` stepped together in numpy.

    Keyword arguments are mpe2's ``parallel_env`` ones: ``N`` agents and landmarks,
    ``local_ratio`` (weight of the collision term), ``max_cycles`` (episode length) and
    ``continuous_actions`` (``Box(0, 1, (5,))`` instead of ``Discrete(5)``).

    * agents ``agent_0..N-1``, all movable, silent, colliding (size 0.15);
    * observation of agent ``i``: ``[v_i, p_i, landmark_l - p_i for every l, p_j - p_i for every
      other agent j, c_j for every other agent j]`` where ``c`` is always zero (agents are silent);
    * reward: ``(1 - local_ratio) * -(sum over landmarks of the distance to its nearest agent)
      + local_ratio * -(number of other agents closer than 0.3)``.
    """

    MPE2_MODULE = "mpe2.simple_spread.simple_spread"

    def __init__(
        self,
        num_envs: int,
        N: int = 3,
        local_ratio: float = 0.5,
        max_cycles: int = 25,
        continuous_actions: bool = False,
        name: str = NAME,
    ) -> None:
        if int(N) != N or N < 1:
            raise EnvError(f"{name}: N must be an integer >= 1, got {N}")
        if not 0.0 <= local_ratio <= 1.0:
            raise EnvError(f"{name}: local_ratio is a proportion in [0, 1], got {local_ratio}")
        self.n = n = int(N)
        self.local_ratio = float(local_ratio)
        super().__init__(
            num_envs, agents=[f"agent_{i}" for i in range(n)], n_landmarks=n, movable=[True] * n,
            silent=[True] * n, dim_c=DIM_C, obs_dims=[4 + 2 * n + 2 * (n - 1) + DIM_C * (n - 1)] * n,
            max_cycles=max_cycles, continuous_actions=continuous_actions, name=name, collide=True,
            agent_size=AGENT_SIZE,
        )

    def _geometry(self) -> None:
        """The shared offsets plus ``_d_lm[b, i, l]``, agent ``i``'s distance to landmark ``l``."""
        super()._geometry()
        self._d_lm = np.sqrt(np.sum(np.square(self._rel_lm), axis=-1))

    def _observe(self) -> np.ndarray:
        B, n = self.num_envs, self.n
        obs = np.zeros((B, n, self.obs_dim), np.float32)
        obs[:, :, 0:2] = self.p_vel[:, :n]
        obs[:, :, 2:4] = self.p_pos[:, :n]
        obs[:, :, 4 : 4 + 2 * n] = self._rel_lm.reshape(B, n, 2 * n)
        obs[:, :, 4 + 2 * n : 2 + 4 * n] = self._rel_other.reshape(B, n, 2 * (n - 1))
        # the last DIM_C * (N - 1) entries are the other agents' communication: always zero
        return obs

    def _rewards(self) -> np.ndarray:
        nearest = self._d_lm.min(axis=1)  # [B, landmarks]: distance to the closest agent
        # sum landmarks in order (as mpe2's loop does) by reducing over a leading axis
        global_rew = -np.ascontiguousarray(nearest.T).sum(axis=0)
        local_rew = -(self._d_other < 2 * AGENT_SIZE).sum(axis=-1).astype(np.float64)
        return global_rew[:, None] * (1 - self.local_ratio) + local_rew * self.local_ratio

    def _render_kwargs(self) -> dict[str, Any]:
        return {"N": self.n}


class FastSpeakerListener(FastMPE):
    """``num_envs`` copies of mpe2's ``simple_speaker_listener_v4`` stepped together in numpy.

    Keyword arguments are mpe2's ``parallel_env`` ones: ``max_cycles`` and ``continuous_actions``.

    * agents ``speaker_0`` (cannot move; says one of 3 words: ``Discrete(3)`` / ``Box(0, 1, (3,))``)
      and ``listener_0`` (silent; moves: ``Discrete(5)`` / ``Box(0, 1, (5,))``); 3 landmarks of
      colours red, green, blue (``SPEAKER_LISTENER_COLORS``); nothing collides;
    * the speaker knows the goal landmark ``goal[:, 0]``; its observation (3 values, padded to
      11) is that landmark's colour;
    * the listener observes ``[v, landmark_l - p for every l, speaker's c]`` (11 values): it never
      sees the goal itself, only what the speaker said;
    * both agents get ``-|p_listener - goal landmark|^2``.
    """

    MPE2_MODULE = "mpe2.simple_speaker_listener.simple_speaker_listener"
    LANDMARK_COLORS = SPEAKER_LISTENER_COLORS
    GOAL_TINT = 0.45

    def __init__(
        self, num_envs: int, max_cycles: int = 25, continuous_actions: bool = False,
        name: str = NAME_SPEAKER_LISTENER,
    ) -> None:
        super().__init__(
            num_envs, agents=["speaker_0", "listener_0"], n_landmarks=3, movable=[False, True],
            silent=[False, True], dim_c=3, obs_dims=[3, 11], max_cycles=max_cycles,
            continuous_actions=continuous_actions, name=name, agent_size=0.075, goals=[(0, 1)],
        )

    def _observe(self) -> np.ndarray:
        B = self.num_envs
        obs = np.zeros((B, 2, 11), np.float32)
        obs[:, 0, 0:3] = self.LANDMARK_COLORS[self.goal[:, 0]]  # the speaker sees the goal colour
        obs[:, 1, 0:2] = self.p_vel[:, 1]
        obs[:, 1, 2:8] = self._rel_lm[:, 1].reshape(B, 6)
        obs[:, 1, 8:11] = self.c[:, 0]  # what the speaker said
        return obs

    def _rewards(self) -> np.ndarray:
        return np.repeat(-self._goal_d2, 2, axis=1)  # one shared reward (no local_ratio)


class FastReference(FastMPE):
    """``num_envs`` copies of mpe2's ``simple_reference_v3`` stepped together in numpy.

    Keyword arguments are mpe2's ``parallel_env`` ones: ``local_ratio``, ``max_cycles`` and
    ``continuous_actions``.

    * agents ``agent_0`` and ``agent_1``, both move and speak one of 10 words:
      ``Discrete(50)`` (movement ``a % 5``, word ``a // 5``) / ``Box(0, 1, (15,))`` (movement
      ``a[0:5]``, communication ``a[5:15]``); 3 landmarks (``REFERENCE_COLORS``); nothing collides;
    * agent ``i`` knows ``goal[:, i]``, the landmark the *other* agent must reach;
    * observation of agent ``i`` (21 values): ``[v_i, landmark_l - p_i for every l, colour of
      goal[:, i], the other agent's c]``;
    * reward of agent ``i``: with ``d_i = |p_other - landmark goal[:, i]|``,
      ``(1 - local_ratio) * -(d_0 + d_1) / 2 + local_ratio * -d_i``.
    """

    MPE2_MODULE = "mpe2.simple_reference.simple_reference"
    LANDMARK_COLORS = REFERENCE_COLORS
    GOAL_TINT = 0.0

    def __init__(
        self, num_envs: int, local_ratio: float = 0.5, max_cycles: int = 25, continuous_actions: bool = False,
        name: str = NAME_REFERENCE,
    ) -> None:
        if not 0.0 <= local_ratio <= 1.0:
            raise EnvError(f"{name}: local_ratio is a proportion in [0, 1], got {local_ratio}")
        self.local_ratio = float(local_ratio)
        super().__init__(
            num_envs, agents=["agent_0", "agent_1"], n_landmarks=3, movable=[True, True], silent=[False, False],
            dim_c=10, obs_dims=[21, 21], max_cycles=max_cycles, continuous_actions=continuous_actions,
            name=name, goals=[(0, 1), (1, 0)],
        )

    def _observe(self) -> np.ndarray:
        B = self.num_envs
        obs = np.empty((B, 2, 21), np.float32)
        obs[:, :, 0:2] = self.p_vel[:, :2]
        obs[:, :, 2:8] = self._rel_lm.reshape(B, 2, 6)
        obs[:, :, 8:11] = self.LANDMARK_COLORS[self.goal]
        obs[:, :, 11:21] = self.c[:, self._others[:, 0]]  # the other agent's words
        return obs

    def _rewards(self) -> np.ndarray:
        local = -np.sqrt(self._goal_d2)  # [B, 2]
        glob = local.sum(axis=1) / 2  # mpe2: mean over the agents of their own reward
        return glob[:, None] * (1 - self.local_ratio) + local * self.local_ratio


def mpe2_world_state(envs: Sequence[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(p_pos, p_vel, steps)`` of mpe2 envs: ``[B, entities, 2]`` float64 twice and ``[B]``."""
    worlds = [env.unwrapped for env in envs]
    p_pos = np.array([[ent.state.p_pos for ent in w.world.entities] for w in worlds], np.float64)
    p_vel = np.array([[ent.state.p_vel for ent in w.world.entities] for w in worlds], np.float64)
    steps = np.array([w.steps for w in worlds], np.int64)
    return p_pos, p_vel, steps


def mpe2_comm_state(envs: Sequence[Any]) -> np.ndarray:
    """``[B, agents, dim_c]`` float64 communication state ``c`` of mpe2 envs' agents."""
    return np.array([[a.state.c for a in env.unwrapped.world.agents] for env in envs], np.float64)


def _factory(cls: Callable[..., FastMPE], name: str) -> Callable[..., FastMPE]:
    def make(num_envs: int = 1, **kwargs: Any) -> FastMPE:
        try:
            return cls(num_envs, **kwargs)
        except TypeError as exc:
            raise EnvError(f"env '{name}': bad env kwargs {sorted(kwargs)}: {exc}") from None

    make.__doc__ = f"Registry factory: ``{cls.__name__}(num_envs, **kwargs)``, a one-line error for unknown kwargs."
    return make


make_fast_spread = _factory(FastSpread, NAME)
make_fast_speaker_listener = _factory(FastSpeakerListener, NAME_SPEAKER_LISTENER)
make_fast_reference = _factory(FastReference, NAME_REFERENCE)


__all__ = [
    "FastMPE",
    "FastSpread",
    "FastSpeakerListener",
    "FastReference",
    "make_fast_spread",
    "make_fast_speaker_listener",
    "make_fast_reference",
    "mpe2_world_state",
    "mpe2_comm_state",
    "NAME",
    "NAME_SPEAKER_LISTENER",
    "NAME_REFERENCE",
]
