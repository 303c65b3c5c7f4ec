"""The lever-pulling game of Sukhbaatar et al. (2016), section 4.1, as a native batched vector env.

Each game draws ``m`` agents (default 5) without replacement from a pool of ``N`` (default 500).
Agent slot ``j`` observes one number: the pool id of the agent drawn into it (an integer in
``0..N-1``, as float32; CommNet's ``embedding`` encoder turns it into a table row). Every agent
pulls one of ``n_levers`` levers (default ``m``), and the whole team gets

    reward = (number of distinct levers pulled - 1) / (min(m, n_levers) - 1)

so 1 means every agent pulled a different lever. Episodes are one step long and terminate.
Agents acting independently at random score ``(m (1 - (1 - 1/m)^m) - 1) / (m - 1)``, 0.59 for
``m = 5``; the best policy needs the agents to agree who pulls which lever, i.e. to communicate.

A game may last ``rounds`` steps (default 1) with the same agents, and after each round but the
last every agent still in it leaves with probability ``leave`` (at least two stay): an agent that
leaves terminates, its slot observes 0 and is 0 in :meth:`Levers.alive`, and the reward counts
the agents still in, ``(distinct levers - 1) / (min(k, n_levers) - 1)`` for ``k`` of them (each
agent in the round gets it). The team must then re-agree who pulls which lever among those left.

``Levers`` implements :class:`~xmarl.envs.base.VectorEnvBase` (``reset``, ``step``,
``sample_actions``, ``render``, ``close``, ``spec``, ``completed_returns``), stepping
``num_envs`` games as one array computation; the env registers under kind ``"vector_env"``
as ``levers``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from xmarl.core.spaces import AgentSpec
from xmarl.envs.base import VectorEnvBase
from xmarl.errors import EnvError

NAME = "levers"
#: colours of the levers in :meth:`Levers.render` (cycled when there are more levers)
PALETTE = np.array([[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
                    [145, 30, 180], [70, 240, 240], [240, 50, 230]], np.uint8)


def random_reward(m: int, n_levers: int | None = None) -> float:
    """Expected reward of agents that pick levers uniformly at random and independently."""
    k = m if n_levers is None else n_levers
    distinct = k * (1.0 - (1.0 - 1.0 / k) ** m)
    return (distinct - 1.0) / (min(m, k) - 1.0)


class Levers(VectorEnvBase):
    """``num_envs`` lever-pulling games stepped together (see the module docstring).

    Args: ``num_envs`` games; ``n_pool`` agents in the pool (N); ``n_agents`` agents per game
    (m); ``n_levers`` levers (default ``n_agents``); ``rounds`` steps per game; ``leave`` the
    probability that an agent leaves after a round.
    """

    def __init__(self, num_envs: int = 1, n_pool: int = 500, n_agents: int = 5, n_levers: int | None = None,
                 rounds: int = 1, leave: float = 0.0) -> None:
        if int(rounds) != rounds or rounds < 1:
            raise EnvError(f"{NAME}: rounds must be an integer >= 1, got {rounds}")
        if not 0.0 <= leave < 1.0:
            raise EnvError(f"{NAME}: leave must be a probability in [0, 1), got {leave}")
        if leave > 0 and rounds == 1:
            raise EnvError(f"{NAME}: leave > 0 needs rounds >= 2 (agents leave between rounds)")
        self.rounds, self.leave = int(rounds), float(leave)
        for key, value, low in (("num_envs", num_envs, 1), ("n_agents", n_agents, 2), ("n_pool", n_pool, 2)):
            if int(value) != value or value < low:
                raise EnvError(f"{NAME}: {key} must be an integer >= {low}, got {value}")
        if n_pool < n_agents:
            raise EnvError(f"{NAME}: n_pool ({n_pool}) must be at least n_agents ({n_agents}): agents are drawn "
                           "from the pool without replacement")
        n_levers = int(n_agents if n_levers is None else n_levers)
        if n_levers < 2:
            raise EnvError(f"{NAME}: n_levers must be >= 2, got {n_levers}")
        self.n_pool, self.n_agents, self.n_levers = int(n_pool), int(n_agents), n_levers
        agents = [f"agent_{j}" for j in range(self.n_agents)]
        obs_space = spaces.Box(0.0, float(n_pool - 1), (1,), np.float32)
        super().__init__(NAME, AgentSpec.from_spaces(agents, {a: obs_space for a in agents},
                                                     {a: spaces.Discrete(n_levers) for a in agents}, env_name=NAME),
                         int(num_envs))
        self._norm = 1.0 / (min(self.n_agents, n_levers) - 1)
        self._rng = np.random.default_rng()
        self._ids = np.zeros((self.num_envs, self.n_agents), np.int64)
        self._last = np.zeros((self.num_envs, self.n_agents), np.int64)  # levers pulled last step (render)
        # multi-round games: the round of each game, who is still in, who would act on final_obs
        self._round = np.zeros(self.num_envs, np.int64)
        self._alive = np.ones((self.num_envs, self.n_agents), np.float32)
        self._final_alive = np.zeros((self.num_envs, self.n_agents), np.float32)
        self._team = np.zeros(self.num_envs, np.float32)  # the last step's team reward / rounds
        self._draw()

    def _draw(self) -> None:
        """New games: ``m`` distinct pool ids per game (the first ``m`` of a random permutation)."""
        B, N, m = self.num_envs, self.n_pool, self.n_agents
        if m * 4 <= N:  # rejection is cheap when the pool is much larger than a game
            ids = self._rng.integers(0, N, (B, m))
            dup = _has_duplicates(ids)
            while dup.any():
                ids[dup] = self._rng.integers(0, N, (int(dup.sum()), m))
                dup = _has_duplicates(ids)
        else:
            ids = np.argpartition(self._rng.random((B, N)), m - 1, axis=1)[:, :m]
        self._ids = ids.astype(np.int64)

    def _observe(self) -> np.ndarray:
        if self.rounds == 1:
            return self._ids[..., None].astype(np.float32)
        return (self._ids * self._alive)[..., None].astype(np.float32)  # a slot that has left observes 0

    def reset(self, seed: int | None = None) -> np.ndarray:
        """New games in every copy; ``seed`` restarts the random stream. Returns ``[E, m, 1]``."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._draw()
        self._round[:] = 0
        self._alive[:] = 1.0
        self._restart_episodes()
        return self._observe()

    def step_measures(self) -> dict[str, np.ndarray]:
        """``team_reward``: the last round's team reward over the number of rounds, so that its sum
        over a game is the mean team reward per round (1 = every agent in each round on its own lever)."""
        return {"team_reward": self._team.copy()}

    def alive(self) -> np.ndarray | None:
        """``[E, m]`` the agents still in each game (None for one-round games without leaving)."""
        return None if self.leave == 0 else self._alive.copy()

    def final_alive(self) -> np.ndarray | None:
        """``[E, m]`` the agents that would act on the last step's ``final_obs`` (0 once a game ended)."""
        return None if self.leave == 0 else self._final_alive.copy()

    def reward(self, actions: np.ndarray, alive: np.ndarray | None = None) -> np.ndarray:
        """Team reward ``[E]`` of lever choices ``[E, m]``: (distinct levers - 1) / (min(k, levers) - 1)
        over the ``k`` agents in the game (``alive`` ``[E, m]``, default all ``m``)."""
        E = actions.shape[0]
        pulled = np.zeros((E, self.n_levers + 1), bool)
        lever = actions if alive is None else np.where(alive > 0, actions, self.n_levers)  # absent: a dummy column
        pulled[np.arange(E)[:, None], lever] = True
        if alive is None:
            return (pulled[:, :-1].sum(1) - 1.0) * self._norm
        k = alive.sum(1)
        return (pulled[:, :-1].sum(1) - 1.0) / (np.minimum(k, self.n_levers) - 1.0)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Pull levers ``[E, m]`` (ints in ``0..n_levers-1``). Returns ``(obs, final_obs, rewards,
        terminated, done)`` as :meth:`VectorEnvBase.step`: every game ends (terminated), ``obs`` are
        the next games' ids, ``final_obs`` the ids that just played."""
        E, m = self.num_envs, self.n_agents
        a = np.asarray(actions)
        if a.shape != (E, m):
            raise EnvError(f"{NAME}: actions must have shape {(E, m)} (one lever per agent), got {a.shape}")
        if not np.issubdtype(a.dtype, np.integer) or a.min() < 0 or a.max() >= self.n_levers:
            raise EnvError(f"{NAME}: actions must be integers in 0..{self.n_levers - 1}, got {a.min()}..{a.max()}")
        self._last = a.astype(np.int64)
        if self.rounds == 1:
            team = self.reward(a).astype(np.float32)
            self._team = team
            rew = np.repeat(team[:, None], m, axis=1)
            final = self._observe()
            self._record(team.astype(np.float64), np.ones(E, np.int64))  # one-step episodes: the return is the reward
            self._draw()
            return self._observe(), final, rew, np.ones((E, m), np.float32), np.ones(E, bool)
        return self._step_rounds(a)

    def _step_rounds(self, a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """A round of multi-round games: reward the agents in, then some leave; ended games restart."""
        alive = self._alive
        team = self.reward(a, alive).astype(np.float32)
        self._team = team / np.float32(self.rounds)
        rew = (team[:, None] * alive).astype(np.float32)
        self._round += 1
        done = self._round >= self.rounds
        leaving = (self._rng.random(alive.shape) < self.leave) & (alive > 0) & ~done[:, None]
        too_few = (alive.sum(1) - leaving.sum(1)) < 2
        leaving[too_few] = False
        term = np.where(done[:, None], alive, leaving.astype(np.float32)).astype(np.float32)
        self._alive = alive * ~leaving
        self._final_alive = np.where(done[:, None], 0.0, self._alive).astype(np.float32)
        final = self._observe()
        self._track(rew, done)
        if done.any():  # new games where the old ones ended
            old = self._ids
            self._draw()
            self._ids = np.where(done[:, None], self._ids, old)
            self._round[done] = 0
            self._alive[done] = 1.0
        return self._observe(), final, rew, term, done

    def sample_actions(self, rng: np.random.Generator) -> np.ndarray:
        """Uniform random levers ``[E, m]`` (its own random stream: ``rng.integers``, not the base's
        ``rng.random``)."""
        return rng.integers(0, self.n_levers, (self.num_envs, self.n_agents)).astype(np.int64)

    def render(self, index: int = 0) -> np.ndarray:
        """An RGB frame ``[H, W, 3]`` of game ``index``: one column per agent, coloured by the
        lever it pulled last (columns that share a colour pulled the same lever)."""
        cell = 32
        frame = np.full((2 * cell, self.n_agents * cell, 3), 255, np.uint8)
        for j, lever in enumerate(self._last[index]):
            frame[cell // 2: 3 * cell // 2, j * cell + 2: (j + 1) * cell - 2] = PALETTE[lever % len(PALETTE)]
        return frame

    def close(self) -> None:
        """Nothing to release."""

    def __getstate__(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _has_duplicates(ids: np.ndarray) -> np.ndarray:
    """``[B]`` whether a row of ``ids`` ``[B, m]`` repeats a value."""
    s = np.sort(ids, axis=1)
    return (s[:, 1:] == s[:, :-1]).any(1)


class LeversParallel(ParallelEnv):
    """One lever-pulling game as a PettingZoo ``ParallelEnv`` (for tools that take PettingZoo
    envs; training uses the batched :class:`Levers`)."""

    metadata = {"name": "levers_v0", "render_modes": ["rgb_array"]}

    def __init__(self, n_pool: int = 500, n_agents: int = 5, n_levers: int | None = None) -> None:
        self.game = Levers(1, n_pool, n_agents, n_levers)
        self.possible_agents = list(self.game.agents)
        self.agents: list[str] = []
        # one space object per agent, built once (PettingZoo's API: the same object on every call)
        self._obs_spaces = {a: spaces.Box(0.0, float(self.game.n_pool - 1), (1,), np.float32)
                            for a in self.possible_agents}
        self._act_spaces = {a: spaces.Discrete(self.game.n_levers) for a in self.possible_agents}

    def observation_space(self, agent: str) -> spaces.Box:
        return self._obs_spaces[agent]

    def action_space(self, agent: str) -> spaces.Discrete:
        return self._act_spaces[agent]

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        obs = self.game.reset(seed)[0]
        self.agents = list(self.possible_agents)
        return {a: obs[j] for j, a in enumerate(self.agents)}, {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]) -> tuple[dict, ...]:
        a = np.array([[int(actions[x]) for x in self.possible_agents]])
        _, final, rew, _, _ = self.game.step(a)
        agents, self.agents = self.agents, []
        return ({x: final[0, j] for j, x in enumerate(agents)}, {x: float(rew[0, j]) for j, x in enumerate(agents)},
                {x: True for x in agents}, {x: False for x in agents}, {x: {} for x in agents})

    def render(self) -> np.ndarray:
        return self.game.render(0)


def make_levers(num_envs: int = 1, **kwargs: Any) -> Levers:
    """Registry factory: ``Levers(num_envs, **kwargs)``, a one-line error for unknown kwargs."""
    try:
        return Levers(num_envs, **kwargs)
    except TypeError as exc:
        raise EnvError(f"env '{NAME}': bad env kwargs {sorted(kwargs)}: {exc}") from None


__all__ = ["Levers", "LeversParallel", "make_levers", "random_reward", "NAME"]
