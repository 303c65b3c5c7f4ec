"""``median``: a small cooperative bargaining game with hybrid actions (a discrete decision plus a
continuous offer), which MADDPG learns in a few thousand steps on a CPU.

Rules (``n_agents`` = 3 by default, ``rounds`` = 3 by default):

* At reset every agent draws a private value ``v_i ~ U[0, 1]``, fixed for the episode; the
  team's target is the median ``m`` of the private values.
* Each round every agent acts with ``Tuple((Discrete(2), Box(0, 1, (1,))))``: whether it
  participates (``1``) and its offer in ``[0, 1]``.
* A deal needs a quorum: at least ``quorum`` (default 2) participants. With a quorum every agent
  gets the team reward ``1 - 2 * mean over participants of |offer_i - m|`` (at most 1, for exact
  offers); without one the team gets 0.
* Agent ``i`` observes ``[v_i, offers of the others last round, whether they participated]``
  (size ``2 * n_agents - 1``; offers of non-participants, and everything in the first round, are 0).
  Offers therefore carry information: an agent that offers its own value lets the others move
  their offers towards the true median in later rounds.
* The episode ends (truncation) after ``rounds`` rounds.

Uniformly random play earns about 0.2 per round; always participating with offers that track
one's own value earns about 0.7, and sharing values through offers can approach 1.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from xmarl import registry
from xmarl.envs.games import team_transition


class MedianGame(ParallelEnv):
    """Cooperative median bargaining with ``(participate, offer)`` actions (a ParallelEnv)."""

    metadata = {"name": "median_v0", "render_modes": []}

    def __init__(self, n_agents: int = 3, rounds: int = 3, quorum: int = 2) -> None:
        if not 1 <= quorum <= n_agents:
            raise ValueError(f"quorum must be in 1..{n_agents}, got {quorum}")
        self.possible_agents = [f"agent_{i}" for i in range(n_agents)]
        self.agents: list[str] = []
        self.n = n_agents
        self.rounds = rounds
        self.quorum = quorum
        self._rng = np.random.default_rng()
        self._t = 0
        self._values = np.zeros(n_agents, np.float32)
        self._offers = np.zeros(n_agents, np.float32)  # last round's offers (0 where not participating)
        self._joined = np.zeros(n_agents, np.float32)  # last round's participation
        self._obs_space = spaces.Box(0.0, 1.0, (2 * n_agents - 1,), np.float32)
        self._act_space = spaces.Tuple((spaces.Discrete(2), spaces.Box(0.0, 1.0, (1,), np.float32)))

    def observation_space(self, agent: str) -> spaces.Box:
        return self._obs_space

    def action_space(self, agent: str) -> spaces.Tuple:
        return self._act_space

    @property
    def median(self) -> float:
        """The target of the current episode: the median of the private values."""
        return float(np.median(self._values))

    def _obs(self) -> dict[str, np.ndarray]:
        out = {}
        for i, a in enumerate(self.possible_agents):
            others = np.arange(self.n) != i
            out[a] = np.concatenate([self._values[i: i + 1], self._offers[others], self._joined[others]])
        return out

    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self.agents = list(self.possible_agents)
        self._t = 0
        self._values = self._rng.random(self.n).astype(np.float32)
        self._offers[:] = 0.0
        self._joined[:] = 0.0
        return self._obs(), {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]):
        joined = np.array([int(actions[a][0]) == 1 for a in self.agents])
        offers = np.array([float(np.clip(np.asarray(actions[a][1]).reshape(-1)[0], 0.0, 1.0))
                           for a in self.agents], np.float32)
        if joined.sum() >= self.quorum:
            team = 1.0 - 2.0 * float(np.mean(np.abs(offers[joined] - self.median)))
        else:
            team = 0.0
        self._joined = joined.astype(np.float32)
        self._offers = np.where(joined, offers, 0.0).astype(np.float32)
        self._t += 1
        return team_transition(self, team, self._t >= self.rounds)


registry.add("env", "median", MedianGame)
