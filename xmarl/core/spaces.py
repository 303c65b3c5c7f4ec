"""Array view of a multi-agent environment's spaces.

Agents may differ in observation and action sizes (e.g. speaker and listener). xmarl pads
every agent to the largest size so that all agents travel as one array ``[..., A, dim]``;
``act_mask`` marks the real action entries, and padded observation entries are zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from gymnasium import spaces as gspaces

from xmarl.errors import EnvError


@dataclass(frozen=True)
class AgentSpec:
    """Shapes of one multi-agent task as seen by learners (all agents padded alike)."""

    agents: tuple[str, ...]
    obs_dims: tuple[int, ...]
    action_kind: str  # "discrete" or "continuous"
    act_dims: tuple[int, ...]
    low: np.ndarray = field(repr=False)  # [A, act_dim], zeros for discrete
    high: np.ndarray = field(repr=False)

    @property
    def n_agents(self) -> int:
        return len(self.agents)

    @property
    def obs_dim(self) -> int:
        return max(self.obs_dims)

    @property
    def act_dim(self) -> int:
        return max(self.act_dims)

    @property
    def act_mask(self) -> np.ndarray:
        """``[A, act_dim]`` float32, 1 where an action entry exists for that agent."""
        m = np.zeros((self.n_agents, self.act_dim), np.float32)
        for i, d in enumerate(self.act_dims):
            m[i, :d] = 1.0
        return m

    @property
    def discrete(self) -> bool:
        return self.action_kind == "discrete"

    @classmethod
    def from_spaces(
        cls, agents: list[str], obs_spaces: dict[str, gspaces.Space], act_spaces: dict[str, gspaces.Space],
        env_name: str = "env",
    ) -> AgentSpec:
        obs_dims = []
        for a in agents:
            sp = obs_spaces[a]
            if not isinstance(sp, gspaces.Box) or len(sp.shape) != 1:
                raise EnvError(f"{env_name}: agent '{a}' has observation space {sp}; xmarl needs a flat Box")
            obs_dims.append(int(sp.shape[0]))
        kinds = {type(act_spaces[a]) for a in agents}
        if kinds == {gspaces.Discrete}:
            act_dims = [int(act_spaces[a].n) for a in agents]
            ad = max(act_dims)
            low = np.zeros((len(agents), ad), np.float32)
            high = np.zeros((len(agents), ad), np.float32)
            kind = "discrete"
        elif kinds == {gspaces.Box}:
            act_dims = [int(act_spaces[a].shape[0]) for a in agents]
            ad = max(act_dims)
            low = np.zeros((len(agents), ad), np.float32)
            high = np.zeros((len(agents), ad), np.float32)
            for i, a in enumerate(agents):
                low[i, : act_dims[i]] = act_spaces[a].low
                high[i, : act_dims[i]] = act_spaces[a].high
            kind = "continuous"
        else:
            raise EnvError(
                f"{env_name}: action spaces {sorted(k.__name__ for k in kinds)} are not supported; "
                "use all-Discrete or all-Box agents"
            )
        return cls(tuple(agents), tuple(obs_dims), kind, tuple(act_dims), low, high)
