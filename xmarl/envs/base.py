"""The interface every vectorised environment implements, and the bookkeeping they share.

A vectorised env steps ``num_envs`` copies of one multi-agent task together and speaks arrays
only: observations ``[E, A, obs_dim]`` (agents padded to the largest one), rewards and
terminations ``[E, A]``, ``done`` ``[E]``. Episodes that end are reset in place and the true
last observation is returned separately (``final_obs``), so that replay stores the right next
state. The trainer, evaluation and rendering use nothing else, so any implementation (the
PettingZoo adapter :class:`~xmarl.envs.pettingzoo.VectorEnv`, the numpy ``mpe-fast`` tasks,
the batched ``levers`` game, a plugin's env) is interchangeable.
"""

from __future__ import annotations

import abc
from typing import Any

import numpy as np

from xmarl.core.spaces import AgentSpec

#: finished episodes whose return and length a vectorised env keeps (at least; at most twice as many)
KEEP_COMPLETED = 1000


class VectorEnvBase(abc.ABC):
    """``num_envs`` copies of one task stepped together as arrays (see the module docstring).

    Attributes every implementation sets:

    * ``name``: the env's registered name, used in error messages;
    * ``agents``: the agent names, in the order of the agent axis;
    * ``spec``: the :class:`~xmarl.core.spaces.AgentSpec` of observation and action sizes;
    * ``num_envs``: the number of copies ``E``;
    * ``completed_returns``/``completed_lengths``: the per-agent mean return and the length of
      the episodes finished so far, in the order they ended (the trainer's progress metrics); the
      most recent :data:`KEEP_COMPLETED` at least are kept (older ones are dropped, so that a long
      run's memory and checkpoints do not grow with the number of episodes).

    Agents may leave an episode (die) or join it late: they keep their slot on the agent axis and
    :meth:`alive`/:meth:`final_alive` say which slots are in the episode.

    Subclasses call :meth:`__init__` once ``spec`` is known, write :meth:`reset`, :meth:`step`,
    :meth:`render` and :meth:`close`, and record the end of episodes with :meth:`_track`
    (running returns and lengths) or :meth:`_record` (finished episodes only). They may override
    :meth:`sample_actions`, :meth:`avail_actions` and (envs whose agents leave or join)
    :meth:`alive` and :meth:`final_alive`.
    """

    name: str
    agents: list[str]
    spec: AgentSpec
    num_envs: int
    completed_returns: list[float]
    completed_lengths: list[int]

    def __init__(self, name: str, spec: AgentSpec, num_envs: int) -> None:
        """Set the public attributes and start the per-copy return/length counters at zero."""
        self.name = name
        self.agents = list(spec.agents)
        self.spec = spec
        self.num_envs = num_envs
        # running return and length of each copy's episode (kept by _track; envs that record only
        # finished episodes with _record leave them at zero)
        self._ret = np.zeros((num_envs, spec.n_agents), np.float64)
        self._len = np.zeros(num_envs, np.int64)
        self.completed_returns = []  # per-agent mean return of each finished episode
        self.completed_lengths = []

    # -- the interface ------------------------------------------------------------------------
    @abc.abstractmethod
    def reset(self, seed: int | None = None) -> np.ndarray:
        """Start new episodes in every copy (``seed`` makes them reproducible); returns the
        observations ``[E, A, obs_dim]`` float32."""

    @abc.abstractmethod
    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Step every copy with ``actions``: ``[E, A]`` ints (discrete) or ``[E, A, act_dim]``
        floats (continuous or hybrid), as :meth:`sample_actions` and
        :func:`xmarl.core.actions.select_actions` lay them out.

        Returns ``(obs, final_obs, rewards, terminated, done)``: ``obs`` ``[E, A, obs_dim]``
        already reset where an episode ended, ``final_obs`` the true next observation,
        ``rewards``/``terminated`` ``[E, A]`` float32, ``done`` ``[E]`` bool (terminated or
        truncated).
        """

    @abc.abstractmethod
    def render(self, index: int = 0) -> Any:
        """An RGB frame ``[H, W, 3]`` uint8 of copy ``index``."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release what the env holds (its copies, renderers, subprocesses)."""

    def sample_actions(self, rng: np.random.Generator) -> np.ndarray:
        """Uniform random actions for every copy and agent (for warm-up), laid out as in :meth:`step`:
        a uniform choice per discrete agent, a uniform point of the box per continuous entry."""
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

    def avail_actions(self) -> np.ndarray | None:
        """Available actions ``[E, A, act_dim]`` (1 = available) at the current observations, or
        ``None`` when every action of each agent's space is always available (the default)."""
        return None

    def heuristic_actions(self) -> np.ndarray | None:
        """A scripted policy the env ships, for agent groups with ``policy: heuristic``: actions
        for every copy and agent at the current state, laid out as in :meth:`step`; ``None`` (the
        default) when the env has none."""
        return None

    def step_measures(self) -> dict[str, np.ndarray]:
        """The env's own success measures for the last :meth:`step`, ``{name: [E] float}``, summed
        over an episode by evaluation (``eval_<name>``: the mean over episodes of those sums); e.g.
        touches between predators and prey per step, or a value given at an episode's last step
        only. None by default."""
        return {}

    def alive(self) -> np.ndarray | None:
        """Which agents act on the current observations: ``[E, A]`` float32, 1 for an agent in the
        episode, 0 for one that has left it (died, or not yet joined); its slot then holds a zero
        observation, its action is ignored and its reward is 0. ``None`` (the default) when every
        agent is always in the episode."""
        return None

    def final_alive(self) -> np.ndarray | None:
        """Which agents would act on the last :meth:`step`'s ``final_obs``: ``[E, A]`` float32, 0
        for an agent that has left the episode or terminated at that step (an agent cut off by
        truncation still counts, as its value at ``final_obs`` is bootstrapped). ``None`` (the
        default) when every agent is always in the episode."""
        return None

    # -- shared bookkeeping -------------------------------------------------------------------
    def _restart_episodes(self) -> None:
        """Zero the running returns and lengths (every copy starts a new episode)."""
        self._ret[:] = 0.0
        self._len[:] = 0

    def _track(self, rew: np.ndarray, done: np.ndarray) -> None:
        """Add one step's rewards ``[E, A]`` to the running returns and record the copies whose
        episode ended (``done`` ``[E]``), in increasing copy order, then restart their counters."""
        self._ret += rew
        self._len += 1
        if done.any():
            idx = np.flatnonzero(done)
            self._record(self._ret[idx].mean(axis=1), self._len[idx])
            self._ret[idx] = 0.0
            self._len[idx] = 0

    def _record(self, returns: np.ndarray, lengths: np.ndarray) -> None:
        """Append finished episodes: per-agent mean returns (float64) and lengths (the lists keep
        the most recent :data:`KEEP_COMPLETED` at least)."""
        self.completed_returns.extend(returns.tolist())
        self.completed_lengths.extend(lengths.tolist())
        if len(self.completed_returns) > 2 * KEEP_COMPLETED:
            del self.completed_returns[:-KEEP_COMPLETED]
            del self.completed_lengths[:-KEEP_COMPLETED]


__all__ = ["VectorEnvBase", "KEEP_COMPLETED"]
