"""Vectorised numpy MPE tasks: ``B`` copies of an mpe2 world stepped as one array computation.

Six tasks, each transition-equivalent to its mpe2 1.1 ``parallel_env`` (``tests/test_mpe_fast.py``
copies mpe2's world state into them and compares every observation, reward, termination and
truncation against mpe2 itself):

* :class:`FastSpread`, ``mpe-fast/simple_spread_v3``;
* :class:`FastSpeakerListener`, ``mpe-fast/simple_speaker_listener_v4``;
* :class:`FastReference`, ``mpe-fast/simple_reference_v3``;
* the MADDPG paper's mixed cooperative-competitive tasks :class:`FastTag`
  (``mpe-fast/simple_tag_v3``), :class:`FastAdversary` (``mpe-fast/simple_adversary_v3``) and
  :class:`FastPush` (``mpe-fast/simple_push_v3``).

They share :class:`FastMPE`, an implementation of :class:`~xmarl.envs.base.VectorEnvBase` (the
same array interface as the PettingZoo adapter :class:`~xmarl.envs.pettingzoo.VectorEnv`), so the
trainer uses them unchanged, but keeps the whole world in arrays and never builds a PettingZoo
environment:

* ``p_pos``, ``p_vel``: ``[B, A + L, 2]`` float64, entities ordered agents then landmarks, as in
  mpe2's ``world.entities``;
* ``c``: ``[B, A, dim_c]`` float64, each agent's communication state (what it said last step;
  always zero for silent agents);
* ``goal``: ``[B, G]`` int64, the goal landmark of each goal-holding agent (``G = 0`` for spread
  and tag; ``G = 1``, every agent's goal, for adversary and push);
* ``steps``: ``[B]`` cycles taken in the current episode.

The shared world (mpe2's ``World``, ``Agent`` and ``SimpleEnv``):

* action -> force and word (``SimpleEnv._execute_world_step``/``_set_action``). A movable
  agent's movement is ``0..4`` = no-op, -x, +x, -y, +y (discrete) or ``a[0:5]`` giving
  ``u = (a2 - a1, a4 - a3)`` (continuous, clipped to ``[0, 1]`` like PettingZoo's
  ``ClipOutOfBoundsWrapper``), times the agent's sensitivity (``accel``; 5 unless a task sets
  it); an agent that can speak says a word of
  ``dim_c``. Discrete actions compose both as ``Discrete(5 * dim_c)`` with movement
  ``a % 5`` and word ``a // 5`` (``Discrete(dim_c)`` for an agent that cannot move, ``Discrete(5)``
  for a silent one); the word becomes the one-hot communication state. Continuous actions are
  ``Box(0, 1, (5 + dim_c,))``, movement first, and the communication state is the clipped
  float32 ``a[5:]`` itself (``Box(0, 1, (dim_c,))`` for an agent that cannot move);
* contact forces (simple_spread, simple_tag and simple_push; simple_tag's obstacles too, the
  other tasks' landmarks do not collide) on every agent from every other agent and then every
  obstacle: ``100 * delta / dist * k * log(1 + exp(-(dist - size_i - size_j) / k))`` with ``k =
  1e-3``, even for entities far apart, summed in mpe2's order (obstacles never move);
* integration of movable agents with ``dt = 0.1``, damping 0.25, mass 1: position moves with the
  old velocity, then ``v = 0.75 v + 0.1 F``, scaled down to the agent's ``max_speed`` where it
  has one and is faster (simple_tag); then the communication state is updated (zero for silent
  agents);
* observations cast to float32 and zero-padded to the largest agent's size (as ``VectorEnv``);
* rewards cast to float32; only simple_tag with ``terminate_on_success`` terminates; all truncate
  after ``max_cycles`` cycles;
* reset: agent and landmark positions uniform in ``[-1, 1)^2`` (simple_tag's obstacles in
  ``[-0.9, 0.9)^2``), velocities and communication zero, goal landmarks uniform (the random
  stream is numpy's ``default_rng(seed)`` for all copies, not mpe2's per-copy stream).

Task specifics are described on each class.
"""

from __future__ import annotations

import importlib
import inspect
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
NAME_TAG = "mpe-fast/simple_tag_v3"
NAME_ADVERSARY = "mpe-fast/simple_adversary_v3"
NAME_PUSH = "mpe-fast/simple_push_v3"

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
        agent_size: float | Sequence[float] = 0.05,
        goals: Sequence[tuple[int, int]] = (),
        shared_goal: bool = False,
        accel: Sequence[float | None] | None = None,
        max_speed: Sequence[float | None] | None = None,
        obstacle_size: float | None = None,
        landmark_range: float = 1.0,
    ) -> None:
        """Lay out the world.

        ``goals`` lists ``(holder, mover)`` agent pairs: ``holder`` knows (and observes the colour
        of) a goal landmark that ``mover`` must reach (mpe2's ``holder.goal_b`` and
        ``holder.goal_a``); ``shared_goal`` instead gives every agent one goal landmark (mpe2's
        ``agent.goal_a`` of every agent, ``goal[:, 0]``). ``collide`` makes every pair of agents
        exchange contact forces (all agents must then be movable), and ``obstacle_size`` makes the
        landmarks (of that size) collide with the agents too. ``agent_size`` (one or per agent)
        sets the contact distances, ``accel`` the sensitivity of each agent's movement (``None``:
        mpe2's 5) and ``max_speed`` each agent's speed limit (``None``: none); reset draws
        landmark positions uniform in ``[-landmark_range, landmark_range)^2``."""
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
        self.sizes = np.broadcast_to(np.asarray(agent_size, np.float64), (A,)).copy()
        self.obstacle_size = None if obstacle_size is None else float(obstacle_size)
        self.landmark_range = float(landmark_range)
        mov = np.flatnonzero(self.movable)
        if len(mov) and len(mov) != mov[-1] - mov[0] + 1:
            raise EnvError(f"{name}: the movable agents must be consecutive, got {mov.tolist()}")
        if self.collide and not self.movable.all():
            raise EnvError(f"{name}: colliding agents must all be movable")
        if self.obstacle_size is not None and not self.collide:
            raise EnvError(f"{name}: obstacles collide with colliding agents only")
        # integration works on a view of the movable agents
        self._mov = slice(int(mov[0]), int(mov[-1]) + 1) if len(mov) else slice(0, 0)
        self._n_mov = len(mov)
        # per movable agent: sensitivity [M, 1] (mpe2's agent.accel, else 5) and speed limit [M, 1]
        accel = [None] * A if accel is None else list(accel)
        max_speed = [None] * A if max_speed is None else list(max_speed)
        if len(accel) != A or len(max_speed) != A:
            raise EnvError(f"{name}: accel and max_speed need one entry per agent ({A})")
        self._accel = np.array([SENSITIVITY if x is None else x for x in accel], np.float64)[self._mov, None]
        self._max_speed = np.array([np.inf if x is None else x for x in max_speed], np.float64)[self._mov, None]
        self._limit = bool(np.isfinite(self._max_speed).any())

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
        self.shared_goal = bool(shared_goal)
        if self.shared_goal and len(goals):
            raise EnvError(f"{name}: a shared goal and (holder, mover) goals exclude each other")
        n_goals = 1 if self.shared_goal else len(goals)
        self._bidx = np.arange(B)[:, None]
        # contact distances (sum of the two sizes) to the other agents [A, A - 1] and to obstacles [A, L]
        self._dmin_other = self.sizes[:, None] + self.sizes[self._others]
        self._dmin_lm = self.sizes[:, None] + np.zeros(L) + (self.obstacle_size or 0.0)

        self.p_pos = np.zeros((B, A + L, 2))
        self.p_vel = np.zeros((B, A + L, 2))
        self.c = np.zeros((B, A, self.dim_c))
        self.goal = np.zeros((B, n_goals), np.int64)
        self.steps = np.zeros(B, np.int64)
        self._cam0 = np.ones(B)  # camera range at episode start (mpe2's original_cam_range, for render)
        self._rng = np.random.default_rng()
        self._render_env: Any = None
        self._last_measures: dict[str, np.ndarray] = {}
        self._draw(np.ones(B, bool))
        self._geometry()

    # -- task hooks -------------------------------------------------------------------------
    def _observe(self) -> np.ndarray:
        """``[B, A, obs_dim]`` float32 observations of the current state (padding zero)."""
        raise NotImplementedError

    def _rewards(self) -> np.ndarray:
        """``[B, A]`` float64 rewards of the current state."""
        raise NotImplementedError

    def _terminal(self) -> np.ndarray | None:
        """``[B]`` bool: copies whose episode the current state ends (mpe2's ``is_terminal``), or
        ``None`` for a task that never terminates (the default)."""
        return None

    def _measures(self, done: np.ndarray) -> dict[str, np.ndarray]:
        """The task's success measures ``{name: [B] float64}`` of the state just stepped into
        (``done`` ``[B]``: the copies whose episode ends with it), before auto-reset; none by default."""
        return {}

    def _render_kwargs(self) -> dict[str, Any]:
        """Extra keyword arguments of the mpe2 ``raw_env`` that renders."""
        return {}

    def _paint(self, world: Any, index: int) -> None:
        """Point the mpe2 renderer's ``world`` at copy ``index``'s goals and paint what they colour
        (as mpe2's ``reset_world``): goal holders' ``goal_b`` and their movers' colour, or every
        agent's ``goal_a`` for a shared goal. Tasks whose goal colours more extend it."""
        for g, (h, m) in enumerate(zip(self._goal_holder, self._goal_mover)):
            landmark = world.landmarks[self.goal[index, g]]
            world.agents[h].goal_b = landmark
            world.agents[m].color = landmark.color + self.GOAL_TINT
        if self.shared_goal:
            for agent in world.agents:
                agent.goal_a = world.landmarks[self.goal[index, 0]]

    # -- state ------------------------------------------------------------------------------
    def _draw(self, mask: np.ndarray) -> None:
        """New episodes for the copies in ``mask``: uniform positions and goals, zero velocities and words."""
        k = int(mask.sum())
        if k == 0:
            return
        pos = self._rng.uniform(-1.0, 1.0, (k, self.n_agents + self.n_landmarks, 2))
        if self.landmark_range != 1.0:
            pos[:, self.n_agents:] *= self.landmark_range
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
        p_(others[i, k]) - p_i`` and its norm ``_d_other``; with (holder, mover) goals
        ``_goal_d2[b, g]``, the squared distance from goal ``g``'s mover to its landmark.
        """
        A = self.n_agents
        agent = self.p_pos[:, :A]
        self._rel_lm = self.p_pos[:, None, A:] - agent[:, :, None]
        if self.collide:
            self._rel_other = agent[:, self._others] - agent[:, :, None]
            self._d_other = np.sqrt(np.sum(np.square(self._rel_other), axis=-1))
        if len(self._goal_mover):
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
                if self.shared_goal:
                    if any(a.goal_a is not world.agents[0].goal_a for a in world.agents):
                        raise EnvError(f"{self.name}: the mpe2 agents do not share one goal landmark")
                    goal[b, 0] = next(i for i, lm in enumerate(world.landmarks) if lm is world.agents[0].goal_a)
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
        """``[B, M, 2]`` total force on each movable agent: its action plus contacts with the other
        agents and then the obstacles."""
        u *= self._accel
        if not self.collide:
            return u
        # contact with every other agent j, then every obstacle, delta = p_i - p_j (pre-step geometry)
        rel, dist, dmin = self._rel_other, self._d_other, self._dmin_other
        if self.obstacle_size is not None:
            d_lm = np.sqrt(np.sum(np.square(self._rel_lm), axis=-1))
            rel = np.concatenate([rel, self._rel_lm], axis=2)
            dist = np.concatenate([dist, d_lm], axis=2)
            dmin = np.concatenate([dmin, self._dmin_lm], axis=1)
        if rel.shape[2] == 0:
            return u
        k = CONTACT_MARGIN
        pen = np.logaddexp(0.0, -(dist - dmin) / k) * k
        contact = CONTACT_FORCE * -rel / dist[..., None] * pen[..., None]
        # mpe2 adds to u the contacts with entities 0, 1, ... in turn; a reduction over a leading
        # axis of [u, contact_0, contact_1, ...] adds in exactly that order
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
        if self._limit:  # mpe2 scales a velocity faster than max_speed down to it
            speed = np.sqrt(np.square(vel[..., 0]) + np.square(vel[..., 1]))
            over = speed > self._max_speed[:, 0]
            if over.any():
                speed = np.where(over, speed, 1.0)[..., None]
                vel[:] = np.where(over[..., None], vel / speed * self._max_speed, vel)
        if words is not None:
            self.c[:, self._spk] = words  # silent agents' c stays zero
        self.steps += 1
        self._geometry()
        final = self._observe()
        rew = self._rewards().astype(np.float32)
        if not np.all(np.isfinite(rew)):
            bad = np.argwhere(~np.isfinite(rew))[0]
            raise EnvError(f"{self.name}: reward of agent '{self.agents[bad[1]]}' is {rew[tuple(bad)]}")
        term = np.zeros((self.num_envs, self.n_agents), np.float32)
        done = self.steps >= self.max_cycles  # truncation
        ended = self._terminal()
        if ended is not None:  # mpe2 asks is_terminal only of episodes not truncated at this step
            ended &= ~done
            term[ended] = 1.0
            done |= ended
        self._last_measures = self._measures(done)
        self._track(rew, done)
        obs = final
        if done.any():
            self._draw(done)
            self._geometry()
            obs = self._observe()
        return obs.copy() if obs is final else obs, final, rew, term, done

    def step_measures(self) -> dict[str, np.ndarray]:
        """The task's success measures for the last :meth:`step` (``{name: [B]}``, see
        :meth:`_measures`; empty before the first step and for tasks without any)."""
        return {k: v.copy() for k, v in self._last_measures.items()}

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
        self._paint(world, index)
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


def steer(direction: np.ndarray, continuous: bool) -> np.ndarray:
    """Movement actions ``[B, A]`` (discrete: the one of no-op, -x, +x, -y, +y closest in direction)
    or ``[B, A, 5]`` (continuous: the force, clipped to the unit box) that push each agent along
    ``direction`` ``[B, A, 2]`` (a zero direction: no-op). For the envs' built-in heuristics."""
    if continuous:
        d = np.clip(direction, -1.0, 1.0)
        out = np.zeros(direction.shape[:2] + (5,), np.float32)
        out[..., 1], out[..., 2] = np.maximum(-d[..., 0], 0), np.maximum(d[..., 0], 0)
        out[..., 3], out[..., 4] = np.maximum(-d[..., 1], 0), np.maximum(d[..., 1], 0)
        return out
    moves = np.array([[0.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]])
    score = direction @ moves.T  # [B, A, 5]
    score[..., 0] = 1e-9  # no-op only when no move goes the right way
    return np.argmax(score, -1).astype(np.int64)


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

    def heuristic_actions(self) -> np.ndarray:
        """Walk to your own landmark: agent ``i`` heads for landmark ``i``, braking on its
        velocity (the -15.5 per agent reference of simple_spread; no coordination)."""
        n = self.n
        pos, vel, target = self.p_pos[:, :n], self.p_vel[:, :n], self.p_pos[:, n:2 * n]
        return steer((target - pos - 0.3 * vel) * 8.0, self.continuous_actions)


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


def _bound_penalty(x: np.ndarray) -> np.ndarray:
    """simple_tag's ``bound(|x|)``: 0 below 0.9, ``10 (x - 0.9)`` up to 1, then ``min(exp(2 x - 2), 10)``."""
    # exp's argument is capped where the minimum is 10 anyway (exp(3) > 10), so it never overflows
    return np.where(x < 0.9, 0.0, np.where(x < 1.0, (x - 0.9) * 10, np.minimum(np.exp(np.minimum(2 * x - 2, 3.0)), 10)))


class FastTag(FastMPE):
    """``num_envs`` copies of mpe2's ``simple_tag_v3`` (predator-prey) stepped together in numpy.

    Keyword arguments are mpe2's ``parallel_env`` ones: ``num_good`` prey, ``num_adversaries``
    predators, ``num_obstacles``, ``max_cycles``, ``continuous_actions`` and
    ``terminate_on_success`` (mpe2's curriculum and partial observability are not reproduced).

    * agents ``adversary_0..num_adversaries-1`` (size 0.075, accel 3, max speed 1) then
      ``agent_0..num_good-1`` (size 0.05, accel 4, max speed 1.3), all movable, silent and
      colliding; ``num_obstacles`` landmarks of size 0.2 that collide with the agents (and never
      move); reset draws landmarks uniform in ``[-0.9, 0.9)^2``;
    * observation of agent ``i``: ``[v_i, p_i, landmark_l - p_i for every l, p_j - p_i for every
      other agent j, v_j for every other good agent j]`` (adversaries see one velocity more than
      good agents: ``4 + 2 L + 2 (A - 1) + 2 num_good`` values against ``... + 2 (num_good - 1)``;
      good agents' observations are zero-padded);
    * a good agent and an adversary collide when closer than the sum of their sizes;
    * reward of a good agent: ``-10`` per adversary it collides with, minus the bound penalty of each
      coordinate of its position, ``bound(|x|)`` (0 below 0.9, ``10 (|x| - 0.9)`` below 1, then
      ``min(exp(2 |x| - 2), 10)``); of every adversary: ``+10`` per colliding (good agent,
      adversary) pair (all adversaries share it);
    * with ``terminate_on_success`` an episode terminates (every agent) once every good agent
      collides with some adversary, unless it is truncated at that step;
    * :meth:`step_measures`: ``touches``, the colliding (adversary, good agent) pairs of the step.
    """

    MPE2_MODULE = "mpe2.simple_tag.simple_tag"

    def __init__(
        self,
        num_envs: int,
        num_good: int = 1,
        num_adversaries: int = 3,
        num_obstacles: int = 2,
        max_cycles: int = 25,
        continuous_actions: bool = False,
        terminate_on_success: bool = False,
        name: str = NAME_TAG,
    ) -> None:
        for key, value, least in [("num_good", num_good, 1), ("num_adversaries", num_adversaries, 1),
                                  ("num_obstacles", num_obstacles, 0)]:
            if int(value) != value or value < least:
                raise EnvError(f"{name}: {key} must be an integer >= {least}, got {value}")
        self.num_good = ng = int(num_good)
        self.num_adversaries = na = int(num_adversaries)
        self.num_obstacles = L = int(num_obstacles)
        self.terminate_on_success = bool(terminate_on_success)
        A = na + ng
        adv = [True] * na + [False] * ng
        base = 4 + 2 * L + 2 * (A - 1)
        super().__init__(
            num_envs, agents=[f"adversary_{i}" for i in range(na)] + [f"agent_{i}" for i in range(ng)],
            n_landmarks=L, movable=[True] * A, silent=[True] * A, dim_c=2,
            obs_dims=[base + 2 * (ng if a else ng - 1) for a in adv], max_cycles=max_cycles,
            continuous_actions=continuous_actions, name=name, collide=True,
            agent_size=[0.075 if a else 0.05 for a in adv], accel=[3.0 if a else 4.0 for a in adv],
            max_speed=[1.0 if a else 1.3 for a in adv], obstacle_size=0.2, landmark_range=0.9,
        )
        # good_others[g] = the other good agents of good agent g, in order (its velocity slots)
        others = [[j for j in range(ng) if j != g] for g in range(ng)]
        self._good_others = np.array(others, np.int64).reshape(ng, ng - 1)

    def heuristic_actions(self) -> np.ndarray:
        """Chase and flee: each predator heads for its nearest prey, each prey runs away from its
        nearest predator and back from the edge of the field, where simple_tag penalises it (a
        scripted opponent for either side)."""
        na, A = self.num_adversaries, self.num_adversaries + self.num_good
        pos = self.p_pos[:, :A]
        rel = pos[:, :na, None] - pos[:, None, na:]  # [B, adversary, good]: adversary - good
        d2 = np.square(rel).sum(-1)
        b = np.arange(self.num_envs)[:, None]
        chase = -rel[b, np.arange(na)[None], d2.argmin(2)]  # toward the nearest good agent
        flee = -rel.transpose(0, 2, 1, 3)[b, np.arange(A - na)[None], d2.argmin(1)]  # away from the nearest
        flee = flee / np.maximum(np.linalg.norm(flee, axis=-1, keepdims=True), 1e-9)
        good = pos[:, na:]
        flee = flee - good * np.clip(np.abs(good).max(-1, keepdims=True) - 0.7, 0.0, None) * 10.0  # inward
        return steer(np.concatenate([chase, flee], 1) * 8.0, self.continuous_actions)

    def _geometry(self) -> None:
        """The shared offsets plus ``_hit[b, a, g]``: adversary ``a`` collides with good agent ``g``."""
        super()._geometry()
        na = self.num_adversaries
        d = self._d_other[:, :na, na - 1 :]  # adversary a's others from index na - 1 on are the good agents
        self._hit = d < self._dmin_other[:na, na - 1 :]

    def _observe(self) -> np.ndarray:
        B, A, L, na, ng = self.num_envs, self.n_agents, self.n_landmarks, self.num_adversaries, self.num_good
        obs = np.zeros((B, A, self.obs_dim), np.float32)
        obs[:, :, 0:2] = self.p_vel[:, :A]
        obs[:, :, 2:4] = self.p_pos[:, :A]
        obs[:, :, 4 : 4 + 2 * L] = self._rel_lm.reshape(B, A, 2 * L)
        o = 4 + 2 * L
        obs[:, :, o : o + 2 * (A - 1)] = self._rel_other.reshape(B, A, 2 * (A - 1))
        o += 2 * (A - 1)
        v_good = self.p_vel[:, na:A]  # [B, ng, 2]
        obs[:, :na, o : o + 2 * ng] = v_good.reshape(B, 1, 2 * ng)
        obs[:, na:, o : o + 2 * (ng - 1)] = v_good[:, self._good_others].reshape(B, ng, 2 * (ng - 1))
        return obs

    def _rewards(self) -> np.ndarray:
        na = self.num_adversaries
        good_pos = np.abs(self.p_pos[:, na : self.n_agents])  # [B, ng, 2]
        bound = _bound_penalty(good_pos)
        good = (0.0 - 10.0 * self._hit.sum(axis=1)) - bound[..., 0] - bound[..., 1]  # mpe2's order: x, then y
        adv = 10.0 * self._hit.sum(axis=(1, 2))
        return np.concatenate([np.repeat(adv[:, None], na, axis=1), good], axis=1)

    def _terminal(self) -> np.ndarray | None:
        if not self.terminate_on_success:
            return None
        return self._hit.any(axis=1).all(axis=1)

    def _measures(self, done: np.ndarray) -> dict[str, np.ndarray]:
        """``touches``: the (adversary, good agent) pairs in contact at this step (the sum over the
        adversaries of mpe2's ``benchmark_data``)."""
        return {"touches": self._hit.sum(axis=(1, 2)).astype(np.float64)}

    def _render_kwargs(self) -> dict[str, Any]:
        return {"num_good": self.num_good, "num_adversaries": self.num_adversaries, "num_obstacles": self.num_obstacles}


class FastAdversary(FastMPE):
    """``num_envs`` copies of mpe2's ``simple_adversary_v3`` stepped together in numpy.

    Keyword arguments are mpe2's ``parallel_env`` ones: ``N`` (good agents and landmarks),
    ``max_cycles`` and ``continuous_actions`` (mpe2's partial observability is not reproduced).

    * agents ``adversary_0`` then ``agent_0..N-1``, all movable and silent; nothing collides;
      ``N`` landmarks, one of them the goal ``goal[:, 0]`` (uniform) of every agent;
    * observation of the adversary (``4 N`` values): ``[landmark_l - p for every l, p_j - p for
      every other agent j]``; of a good agent (``2 + 4 N``): the same after ``goal - p_i`` (only
      good agents know the goal); the adversary's observation is zero-padded;
    * with ``d_i = |p_i - goal|``: the adversary gets ``-d_adversary``; every good agent gets
      ``-(min over good agents of d_i) + d_adversary``;
    * :meth:`step_measures`, at an episode's last step: ``good_success`` (the closest good agent
      touches the goal, ``d < 0.23``) and ``adversary_success`` (the adversary does).
    """

    MPE2_MODULE = "mpe2.simple_adversary.simple_adversary"
    GOAL_COLOR = np.array([0.15, 0.65, 0.15])  # reset_world paints the goal landmark green
    LANDMARK_COLOR = np.array([0.15, 0.15, 0.15])
    SIZE = 0.15  # every agent's (make_world)
    LANDMARK_SIZE = 0.08

    def __init__(
        self, num_envs: int, N: int = 2, max_cycles: int = 25, continuous_actions: bool = False,
        name: str = NAME_ADVERSARY,
    ) -> None:
        if int(N) != N or N < 1:
            raise EnvError(f"{name}: N must be an integer >= 1, got {N}")
        self.n = n = int(N)
        super().__init__(
            num_envs, agents=["adversary_0"] + [f"agent_{i}" for i in range(n)], n_landmarks=n,
            movable=[True] * (n + 1), silent=[True] * (n + 1), dim_c=2, obs_dims=[4 * n] + [2 + 4 * n] * n,
            max_cycles=max_cycles, continuous_actions=continuous_actions, name=name, agent_size=self.SIZE,
            shared_goal=True,
        )

    def _geometry(self) -> None:
        """The shared offsets plus ``_rel_other`` (as with contacts) and ``_to_goal[b, i] = goal - p_i``."""
        super()._geometry()
        agent = self.p_pos[:, : self.n_agents]
        self._rel_other = agent[:, self._others] - agent[:, :, None]
        self._to_goal = self._rel_lm[self._bidx[:, 0], :, self.goal[:, 0]]  # [B, A, 2]

    def _observe(self) -> np.ndarray:
        B, n, A = self.num_envs, self.n, self.n_agents
        obs = np.zeros((B, A, self.obs_dim), np.float32)
        seen = np.concatenate([self._rel_lm.reshape(B, A, 2 * n), self._rel_other.reshape(B, A, 2 * n)], axis=2)
        obs[:, 0, : 4 * n] = seen[:, 0]
        obs[:, 1:, 0:2] = self._to_goal[:, 1:]
        obs[:, 1:, 2 : 2 + 4 * n] = seen[:, 1:]
        return obs

    def _rewards(self) -> np.ndarray:
        d = np.sqrt(np.sum(np.square(self._to_goal), axis=-1))  # [B, A]
        good = -d[:, 1:].min(axis=1) + d[:, 0]
        return np.concatenate([-d[:, :1], np.repeat(good[:, None], self.n, axis=1)], axis=1)

    def _measures(self, done: np.ndarray) -> dict[str, np.ndarray]:
        """At an episode's last step only (0 before it): ``good_success``, the good agent closest
        to the goal touches it, and ``adversary_success``, the adversary does (touching: closer
        than the agent's plus the landmark's size, 0.15 + 0.08)."""
        d = np.sqrt(np.sum(np.square(self._to_goal), axis=-1))
        touch = self.SIZE + self.LANDMARK_SIZE
        return {"good_success": (done & (d[:, 1:].min(axis=1) < touch)).astype(np.float64),
                "adversary_success": (done & (d[:, 0] < touch)).astype(np.float64)}

    def _paint(self, world: Any, index: int) -> None:
        super()._paint(world, index)
        for i, landmark in enumerate(world.landmarks):
            landmark.color = (self.GOAL_COLOR if i == self.goal[index, 0] else self.LANDMARK_COLOR).copy()

    def _render_kwargs(self) -> dict[str, Any]:
        return {"N": self.n}


def _push_colors() -> tuple[np.ndarray, np.ndarray]:
    """simple_push's reset_world colours: landmark ``i`` is ``0.1`` plus ``0.8`` in channel ``i + 1``;
    the good agent is ``0.25`` plus ``0.5`` in channel ``goal + 1``."""
    landmarks = np.full((2, 3), 0.1)
    agent = np.full((2, 3), 0.25)
    for i in range(2):
        landmarks[i, i + 1] += 0.8
        agent[i, i + 1] += 0.5
    return landmarks, agent


PUSH_COLORS, PUSH_AGENT_COLORS = _push_colors()


class FastPush(FastMPE):
    """``num_envs`` copies of mpe2's ``simple_push_v3`` stepped together in numpy.

    Keyword arguments are mpe2's ``parallel_env`` ones: ``max_cycles`` and ``continuous_actions``.

    * agents ``adversary_0`` and ``agent_0``, both movable, silent and colliding (size 0.05); two
      landmarks (``PUSH_COLORS``) that do not collide, one of them the goal ``goal[:, 0]`` (uniform)
      of both agents;
    * observation of the good agent (19 values): ``[v, goal - p, its colour (which shows the goal,
      PUSH_AGENT_COLORS[goal]), landmark_l - p for every l, every landmark's colour, p_adversary -
      p]``; of the adversary (8 values, zero-padded): ``[v, landmark_l - p for every l, p_agent -
      p]`` (it does not know the goal);
    * with ``d_i = |p_i - goal|``: the good agent gets ``-d_agent``, the adversary ``d_agent -
      d_adversary``.
    """

    MPE2_MODULE = "mpe2.simple_push.simple_push"
    LANDMARK_COLORS = PUSH_COLORS

    def __init__(
        self, num_envs: int, max_cycles: int = 25, continuous_actions: bool = False, name: str = NAME_PUSH,
    ) -> None:
        super().__init__(
            num_envs, agents=["adversary_0", "agent_0"], n_landmarks=2, movable=[True, True], silent=[True, True],
            dim_c=2, obs_dims=[8, 19], max_cycles=max_cycles, continuous_actions=continuous_actions, name=name,
            collide=True, shared_goal=True,
        )

    def _geometry(self) -> None:
        """The shared offsets plus ``_to_goal[b, i] = goal - p_i``."""
        super()._geometry()
        self._to_goal = self._rel_lm[self._bidx[:, 0], :, self.goal[:, 0]]  # [B, 2, 2]

    def _observe(self) -> np.ndarray:
        B = self.num_envs
        obs = np.zeros((B, 2, 19), np.float32)
        obs[:, :, 0:2] = self.p_vel[:, :2]
        obs[:, 0, 2:6] = self._rel_lm[:, 0].reshape(B, 4)
        obs[:, 0, 6:8] = self._rel_other[:, 0, 0]
        obs[:, 1, 2:4] = self._to_goal[:, 1]
        obs[:, 1, 4:7] = PUSH_AGENT_COLORS[self.goal[:, 0]]
        obs[:, 1, 7:11] = self._rel_lm[:, 1].reshape(B, 4)
        obs[:, 1, 11:17] = PUSH_COLORS.ravel()
        obs[:, 1, 17:19] = self._rel_other[:, 1, 0]
        return obs

    def _rewards(self) -> np.ndarray:
        d = np.sqrt(np.sum(np.square(self._to_goal), axis=-1))  # [B, 2]
        return np.stack([d[:, 1] - d[:, 0], -d[:, 1]], axis=1)

    def _paint(self, world: Any, index: int) -> None:
        super()._paint(world, index)
        world.agents[1].color = PUSH_AGENT_COLORS[self.goal[index, 0]].copy()


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
    make.__signature__ = inspect.signature(cls)  # type: ignore[attr-defined]  # the kwargs it takes (fast_twin)
    return make


make_fast_spread = _factory(FastSpread, NAME)
make_fast_speaker_listener = _factory(FastSpeakerListener, NAME_SPEAKER_LISTENER)
make_fast_reference = _factory(FastReference, NAME_REFERENCE)
make_fast_tag = _factory(FastTag, NAME_TAG)
make_fast_adversary = _factory(FastAdversary, NAME_ADVERSARY)
make_fast_push = _factory(FastPush, NAME_PUSH)


__all__ = [
    "FastMPE",
    "FastSpread",
    "FastSpeakerListener",
    "FastReference",
    "FastTag",
    "FastAdversary",
    "FastPush",
    "make_fast_spread",
    "make_fast_speaker_listener",
    "make_fast_reference",
    "make_fast_tag",
    "make_fast_adversary",
    "make_fast_push",
    "mpe2_world_state",
    "mpe2_comm_state",
    "NAME",
    "NAME_SPEAKER_LISTENER",
    "NAME_REFERENCE",
    "NAME_TAG",
    "NAME_ADVERSARY",
    "NAME_PUSH",
]
