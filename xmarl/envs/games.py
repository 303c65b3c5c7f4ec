"""Small built-in games that learn in seconds on a CPU, for tests and examples.

``target``: every agent sees a one-hot target (its own, drawn each step) and the team is
rewarded by the fraction of agents whose action hits their target. With
``continuous=True`` the action is a point in ``[-1, 1]^n_targets`` and the reward is
minus the mean squared distance to the target's one-hot code.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from xmarl import registry


class TargetGame(ParallelEnv):
    """Cooperative one-hot target matching (a ParallelEnv)."""

    metadata = {"name": "target_v0", "render_modes": []}

    def __init__(self, n_agents: int = 2, n_targets: int = 3, episode_len: int = 5,
                 continuous: bool = False) -> None:
        self.possible_agents = [f"agent_{i}" for i in range(n_agents)]
        self.agents: list[str] = []
        self.n_targets = n_targets
        self.episode_len = episode_len
        self.continuous = continuous
        self._rng = np.random.default_rng()
        self._t = 0
        self._targets = np.zeros(n_agents, np.int64)

    def observation_space(self, agent: str) -> spaces.Box:
        return spaces.Box(0.0, 1.0, (self.n_targets,), np.float32)

    def action_space(self, agent: str) -> spaces.Space:
        if self.continuous:
            return spaces.Box(-1.0, 1.0, (self.n_targets,), np.float32)
        return spaces.Discrete(self.n_targets)

    def _obs(self) -> dict[str, np.ndarray]:
        eye = np.eye(self.n_targets, dtype=np.float32)
        return {a: eye[self._targets[i]] for i, a in enumerate(self.possible_agents)}

    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self.agents = list(self.possible_agents)
        self._t = 0
        self._targets = self._rng.integers(0, self.n_targets, len(self.agents))
        return self._obs(), {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]):
        eye = np.eye(self.n_targets, dtype=np.float32)
        if self.continuous:
            err = [np.mean((np.asarray(actions[a]) - eye[self._targets[i]]) ** 2)
                   for i, a in enumerate(self.agents)]
            team = -float(np.mean(err))
        else:
            team = float(np.mean([int(actions[a]) == self._targets[i] for i, a in enumerate(self.agents)]))
        self._t += 1
        self._targets = self._rng.integers(0, self.n_targets, len(self.agents))
        return team_transition(self, team, self._t >= self.episode_len)


def team_transition(env: ParallelEnv, team: float, truncated: bool) -> tuple[dict, ...]:
    """``step``'s return for a cooperative game: every agent gets ``team``; episodes end by
    truncation only. Reads the next observations from ``env._obs()``."""
    obs = env._obs()
    agents = env.agents
    out = (obs, {a: team for a in agents}, {a: False for a in agents}, {a: truncated for a in agents},
           {a: {} for a in agents})
    if truncated:
        env.agents = []
    return out


registry.add("env", "target", TargetGame)
