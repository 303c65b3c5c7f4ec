"""Array view of a multi-agent environment's spaces.

Agents may differ in observation and action sizes (e.g. speaker and listener). xmarl pads
every agent to the largest size so that all agents travel as one array ``[..., A, dim]``;
``act_mask`` marks the real action entries, and padded observation entries are zero.

Action kinds (the same kind for every agent):

* ``"discrete"``: ``Discrete(n_i)``; the action vector is the one-hot of the choice (``n_i`` entries);
* ``"continuous"``: ``Box(low, high, (d_i,))``; the action vector is the point itself;
* ``"hybrid"``: ``Tuple((Discrete(n_i), Box(low, high, (d_i,))))``, a discrete decision plus a
  continuous parameter; the action vector is ``[one-hot of the choice (n_i), the point (d_i)]``.

``disc_mask`` marks the entries that belong to a categorical part, ``low``/``high`` hold the
bounds of the continuous entries (zeros elsewhere); every vector is zero-padded to ``act_dim``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from gymnasium import spaces as gspaces

from xmarl.errors import EnvError

ACTION_KINDS = ("discrete", "continuous", "hybrid")


@dataclass(frozen=True)
class AgentSpec:
    """Shapes of one multi-agent task as seen by learners (all agents padded alike)."""

    agents: tuple[str, ...]
    obs_dims: tuple[int, ...]
    action_kind: str  # "discrete", "continuous" or "hybrid"
    act_dims: tuple[int, ...]  # action-vector size per agent (n_i + d_i for hybrid)
    low: np.ndarray = field(repr=False)  # [A, act_dim], zeros except on continuous entries
    high: np.ndarray = field(repr=False)
    disc_dims: tuple[int, ...] = ()  # hybrid only: n_i, the leading categorical entries per agent

    def __post_init__(self) -> None:
        if self.action_kind not in ACTION_KINDS:
            raise ValueError(f"action_kind must be one of {ACTION_KINDS}, got '{self.action_kind}'")
        if self.action_kind == "hybrid":
            if len(self.disc_dims) != len(self.agents) or not all(
                    0 < n < d for n, d in zip(self.disc_dims, self.act_dims)):
                raise ValueError(f"hybrid actions need 0 < disc_dims[i] < act_dims[i] for every agent, "
                                 f"got disc_dims={self.disc_dims}, act_dims={self.act_dims}")
        elif self.disc_dims:
            raise ValueError(f"disc_dims is for hybrid actions only ({self.action_kind} actions given)")

    @property
    def n_agents(self) -> int:
        return len(self.agents)

    @property
    def obs_dim(self) -> int:
        return max(self.obs_dims)

    @property
    def act_dim(self) -> int:
        return max(self.act_dims)

    @cached_property
    def act_mask(self) -> np.ndarray:
        """``[A, act_dim]`` float32, 1 where an action entry exists for that agent."""
        return self._prefix_mask(self.act_dims)

    @property
    def n_categories(self) -> tuple[int, ...]:
        """Categorical entries per agent: all of them (discrete), none (continuous) or ``n_i`` (hybrid)."""
        if self.action_kind == "discrete":
            return self.act_dims
        if self.action_kind == "continuous":
            return (0,) * self.n_agents
        return self.disc_dims

    @cached_property
    def disc_mask(self) -> np.ndarray:
        """``[A, act_dim]`` float32, 1 on the entries of a categorical part (always within ``act_mask``)."""
        return self._prefix_mask(self.n_categories)

    def _prefix_mask(self, counts: tuple[int, ...]) -> np.ndarray:
        """``[A, act_dim]`` float32 with the first ``counts[i]`` entries of row ``i`` set; read-only,
        since the masks are computed once and shared."""
        m = (np.arange(self.act_dim) < np.asarray(counts)[:, None]).astype(np.float32)
        m.flags.writeable = False
        return m

    @property
    def discrete(self) -> bool:
        return self.action_kind == "discrete"

    @property
    def hybrid(self) -> bool:
        return self.action_kind == "hybrid"

    def subset(self, idx: np.ndarray) -> AgentSpec:
        """The spec of agents ``idx`` (indices into ``agents``, in that order), padded to their
        own largest sizes: what a learner of some of an env's agents sees."""
        idx = [int(i) for i in idx]
        act_dims = tuple(self.act_dims[i] for i in idx)
        ad = max(act_dims)
        return AgentSpec(tuple(self.agents[i] for i in idx), tuple(self.obs_dims[i] for i in idx), self.action_kind,
                         act_dims, np.ascontiguousarray(self.low[idx, :ad]), np.ascontiguousarray(self.high[idx, :ad]),
                         tuple(self.disc_dims[i] for i in idx) if self.disc_dims else ())

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
        disc_dims: list[int] = []
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
        elif kinds == {gspaces.Tuple}:
            for a in agents:
                if not _is_hybrid(act_spaces[a]):
                    raise EnvError(
                        f"{env_name}: agent '{a}' has action space {act_spaces[a]}; a Tuple action space "
                        "must be (Discrete(n), Box(low, high, (d,)))"
                    )
                disc_dims.append(int(act_spaces[a][0].n))
            act_dims = [n + int(act_spaces[a][1].shape[0]) for n, a in zip(disc_dims, agents)]
            ad = max(act_dims)
            low = np.zeros((len(agents), ad), np.float32)
            high = np.zeros((len(agents), ad), np.float32)
            for i, a in enumerate(agents):
                low[i, disc_dims[i]: act_dims[i]] = act_spaces[a][1].low
                high[i, disc_dims[i]: act_dims[i]] = act_spaces[a][1].high
            kind = "hybrid"
        else:
            raise EnvError(
                f"{env_name}: action spaces {sorted(k.__name__ for k in kinds)} are not supported; "
                "use all-Discrete, all-Box or all-Tuple(Discrete, Box) agents"
            )
        return cls(tuple(agents), tuple(obs_dims), kind, tuple(act_dims), low, high, tuple(disc_dims))


def _is_hybrid(space: gspaces.Space) -> bool:
    """Whether ``space`` is ``Tuple((Discrete(n), Box(low, high, (d,))))``."""
    return (isinstance(space, gspaces.Tuple) and len(space) == 2 and isinstance(space[0], gspaces.Discrete)
            and isinstance(space[1], gspaces.Box) and len(space[1].shape) == 1 and space[1].shape[0] > 0)
