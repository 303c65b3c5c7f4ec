"""Small built-in games that learn in seconds on a CPU, for tests and examples.

``target``: every agent sees a one-hot target (its own, drawn each step) and the team is
rewarded by the fraction of agents whose action hits their target. With
``action_masks=True`` one other action per agent is unavailable at each step (reported as
``infos[agent]["action_mask"]``), and taking it raises. With
``continuous=True`` the action is a point in ``[-1, 1]^n_targets`` and the reward is
minus the mean squared distance to the target's one-hot code. With ``leave_at`` (one number
per agent) agent ``i`` terminates at step ``leave_at[i]`` (0: never) and is then gone from the
env's dicts, as PettingZoo envs remove agents that die; the team reward counts the agents still
in the episode.
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
                 continuous: bool = False, action_masks: bool = False, leave_at: list[int] | None = None) -> None:
        if leave_at is not None and (len(leave_at) != n_agents or min(leave_at) < 0):
            raise ValueError(f"target: leave_at needs one step number >= 0 per agent ({n_agents}), got {leave_at}")
        self.leave_at = None if leave_at is None else [int(t) for t in leave_at]
        self.possible_agents = [f"agent_{i}" for i in range(n_agents)]
        self.agents: list[str] = []
        self.n_targets = n_targets
        self.episode_len = episode_len
        self.continuous = continuous
        self.action_masks = action_masks and not continuous
        self._blocked = np.zeros(n_agents, np.int64)
        self._rng = np.random.default_rng()
        self._t = 0
        self._targets = np.zeros(n_agents, np.int64)
        # one space object per agent, built once: PettingZoo's API (and its parallel_api_test) wants
        # observation_space(agent) and action_space(agent) to return the same object on every call
        self._obs_spaces = {a: spaces.Box(0.0, 1.0, (n_targets,), np.float32) for a in self.possible_agents}
        self._act_spaces: dict[str, spaces.Space] = {
            a: spaces.Box(-1.0, 1.0, (n_targets,), np.float32) if continuous else spaces.Discrete(n_targets)
            for a in self.possible_agents
        }

    def observation_space(self, agent: str) -> spaces.Box:
        return self._obs_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        return self._act_spaces[agent]

    def _obs(self) -> dict[str, np.ndarray]:
        eye = np.eye(self.n_targets, dtype=np.float32)
        return {a: eye[self._targets[i]] for i, a in enumerate(self.possible_agents) if a in self.agents}

    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self.agents = list(self.possible_agents)
        self._t = 0
        self._draw()
        return self._obs(), self._infos()

    def step(self, actions: dict[str, Any]):
        eye = np.eye(self.n_targets, dtype=np.float32)
        live = [(int(a.split("_")[1]), a) for a in self.agents]
        if set(actions) != set(self.agents):
            raise ValueError(f"target: actions for {sorted(actions)}, but the agents are {self.agents}")
        if self.continuous:
            err = [np.mean((np.asarray(actions[a]) - eye[self._targets[i]]) ** 2) for i, a in live]
            team = -float(np.mean(err))
        else:
            if self.action_masks and any(int(actions[a]) == self._blocked[i] for i, a in live):
                raise ValueError("target: an agent took an unavailable action")
            team = float(np.mean([int(actions[a]) == self._targets[i] for i, a in live]))
        self._t += 1
        self._draw()
        if self.leave_at is None:
            return team_transition(self, team, self._t >= self.episode_len, self._infos())
        leaving = {a for i, a in live if self.leave_at[i] == self._t}
        truncated = self._t >= self.episode_len
        obs, infos = self._obs(), self._infos()
        out = (obs, {a: team for a in self.agents}, {a: a in leaving for a in self.agents},
               {a: truncated for a in self.agents}, {a: infos[a] for a in self.agents})
        self.agents = [] if truncated else [a for a in self.agents if a not in leaving]
        return out

    def _draw(self) -> None:
        n = len(self.possible_agents)
        self._targets = self._rng.integers(0, self.n_targets, n)
        if self.action_masks:  # block one action other than the target
            self._blocked = (self._targets + self._rng.integers(1, self.n_targets, n)) % self.n_targets

    def _infos(self) -> dict[str, dict]:
        if not self.action_masks:
            return {a: {} for a in self.possible_agents}
        masks = 1 - np.eye(self.n_targets, dtype=np.int8)[self._blocked]
        return {a: {"action_mask": masks[i]} for i, a in enumerate(self.possible_agents)}


def team_transition(env: ParallelEnv, team: float, truncated: bool, infos: dict | None = None) -> tuple[dict, ...]:
    """``step``'s return for a cooperative game: every agent gets ``team``; episodes end by
    truncation only. Reads the next observations from ``env._obs()``."""
    obs = env._obs()
    agents = env.agents
    out = (obs, {a: team for a in agents}, {a: False for a in agents}, {a: truncated for a in agents},
           infos or {a: {} for a in agents})
    if truncated:
        env.agents = []
    return out


registry.add("env", "target", TargetGame)
