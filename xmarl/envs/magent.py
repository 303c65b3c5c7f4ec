"""MAgent2 (many-agent grid battles) through the PettingZoo adapter, with team measures.

``magent/<env>`` (``pip install 'xmarl[magent]'``, magent2 0.3.4) is the env's PettingZoo
``parallel_env`` (:data:`MAGENT_ENVS`) stepped by :class:`~xmarl.envs.pettingzoo.VectorEnv`
(kind ``"env"``: the PettingZoo env; kind ``"vector_env"``: :class:`MagentVectorEnv`, which
``make_env`` builds, the adapter plus the teams' measures):

* agents are magent2's (``red_0.., blue_0..`` in battle), teams in the env's order; agents
  that die keep their slot (zero observation and reward, 0 in ``alive()``) until the episode
  ends (one team wiped out, or ``max_cycles``);
* observations are magent2's ``[H, W, C]`` views, flattened to ``H * W * C`` values per agent
  (:class:`MagentParallel` flattens the spaces too, since xmarl's
  :meth:`~xmarl.core.spaces.AgentSpec.from_spaces` takes flat ``Box`` spaces only);
* ``env_kwargs`` are the env's ``parallel_env`` arguments, with small defaults so that a run
  starts in milliseconds: the smallest map the env accepts (battle: ``map_size=12``, two
  agents a team) and ``max_cycles=200`` (magent2's are 45 and 1000 for battle); larger battles
  set ``map_size`` (16: 6 a team, 20: 12, 45: 81);
* :meth:`MagentVectorEnv.step_measures` reports ``deaths_<team>`` (agents of the team that died
  at the step) for every env, and for the duels (battle, battlefield) ``kills_<team>`` (the
  other team's deaths) and ``wins_<team>`` (1 at the last step of an episode the team ends with
  more agents alive than the other), so evaluation reports kills per episode and win rates.

magent2's ``GridWorld`` holds a native handle, so these envs cannot be snapshotted (a resumed run
starts fresh episodes).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np
from gymnasium import spaces as gspaces

from xmarl.envs.base import VectorEnvBase
from xmarl.envs.pettingzoo import VectorEnv
from xmarl.errors import BackendNotInstalledError, EnvError

#: the magent2 envs registered as ``magent/<env>`` and their default ``env_kwargs`` (the smallest
#: map each accepts); gather_v5 has a fixed 200x200 map with hundreds of agents and is left out
MAGENT_ENVS: dict[str, dict[str, Any]] = {
    "battle_v4": {"map_size": 12},
    "battlefield_v5": {"map_size": 46},
    "adversarial_pursuit_v4": {"map_size": 12},
    "combined_arms_v6": {"map_size": 16},
    "tiger_deer_v4": {"map_size": 10},
}
#: two teams fighting each other: these report kills and wins too
DUELS = ("battle_v4", "battlefield_v5")
MAX_CYCLES = 200


class MagentParallel:
    """A magent2 ``parallel_env`` with flat observations and its teams' death counts.

    A PettingZoo ``ParallelEnv`` itself (the same agents, actions, rewards and ends), whose
    observations are the env's ``[H, W, C]`` views flattened (spaces and values), and which
    records after each :meth:`step` the agents of each team alive (``last_alive`` ``[T]``) and
    dead at the step (``last_deaths`` ``[T]``), teams in the env's order (``teams``).
    """

    def __init__(self, env: Any) -> None:
        self.env = env
        self.possible_agents = list(env.possible_agents)
        self.metadata = getattr(env, "metadata", {})
        self.render_mode = getattr(env, "render_mode", None)
        self._obs_spaces = {}
        for a in self.possible_agents:
            sp = env.observation_space(a)
            self._obs_spaces[a] = gspaces.Box(sp.low.reshape(-1), sp.high.reshape(-1), dtype=np.float32)
        # team of each agent: the name before its index (red_3 -> red), teams in order of appearance
        prefixes = [a.rsplit("_", 1)[0] for a in self.possible_agents]
        self.teams: list[str] = list(dict.fromkeys(prefixes))
        self._grid = env.unwrapped.env  # magent2's GridWorld
        self._handles = env.unwrapped.handles
        if len(self._handles) != len(self.teams):
            raise EnvError(f"magent env: {len(self._handles)} agent groups but {len(self.teams)} teams named "
                           f"{self.teams}")
        self.last_alive = self._alive_counts()
        self.last_deaths = np.zeros(len(self.teams), np.int64)

    @property
    def agents(self) -> list[str]:
        return self.env.agents

    @property
    def unwrapped(self) -> Any:
        return self.env.unwrapped

    def observation_space(self, agent: str) -> gspaces.Box:
        return self._obs_spaces[agent]

    def action_space(self, agent: str) -> gspaces.Space:
        return self.env.action_space(agent)

    def _alive_counts(self) -> np.ndarray:
        """``[T]`` agents of each team alive in the grid now."""
        return np.array([self._grid.get_num(h) for h in self._handles], np.int64)

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        obs, infos = self.env.reset(seed=seed, options=options)
        return {a: o.reshape(-1) for a, o in obs.items()}, infos

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        before = self._alive_counts()
        obs, rew, term, trunc, infos = self.env.step(actions)
        self.last_alive = self._alive_counts()  # the dead were cleared at the end of the step
        self.last_deaths = before - self.last_alive
        return {a: o.reshape(-1) for a, o in obs.items()}, rew, term, trunc, infos

    def state(self) -> np.ndarray:
        return self.env.state()

    def __getstate__(self) -> dict[str, Any]:
        # a TypeError (what the trainer expects of an env that cannot be snapshotted), where pickling
        # the GridWorld would raise ctypes' ValueError
        raise TypeError("magent2's GridWorld holds a native handle and cannot be pickled")

    def render(self) -> Any:
        return self.env.render()

    def close(self) -> None:
        self.env.close()


class MagentVectorEnv(VectorEnvBase):
    """``num_envs`` magent2 envs stepped by the PettingZoo adapter (``adapter``, a
    :class:`~xmarl.envs.pettingzoo.VectorEnv` it delegates to), with the teams' measures (see the
    module docstring). ``make`` builds one :class:`MagentParallel`; ``duel`` adds kills and wins."""

    def __init__(self, make: Callable[[], MagentParallel], num_envs: int, name: str = "magent",
                 duel: bool = False) -> None:
        self.adapter = VectorEnv(make, num_envs, name=name)
        super().__init__(name, self.adapter.spec, num_envs)
        # the adapter records finished episodes: share its lists (it extends and trims them in place)
        self.completed_returns = self.adapter.completed_returns
        self.completed_lengths = self.adapter.completed_lengths
        self.envs: list[MagentParallel] = self.adapter.envs
        self.teams = list(self.envs[0].teams)
        self.duel = bool(duel) and len(self.teams) == 2
        self._measures: dict[str, np.ndarray] = {}

    def reset(self, seed: int | None = None) -> np.ndarray:
        """:meth:`VectorEnv.reset`: copy ``i`` seeded with ``seed + i``."""
        self._measures = {}
        return self.adapter.reset(seed)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`VectorEnv.step`, then the step's team measures (:meth:`step_measures`)."""
        out = self.adapter.step(actions)
        done = out[4]
        deaths = np.array([env.last_deaths for env in self.envs], np.float64)  # [E, T]
        m = {f"deaths_{t}": deaths[:, i] for i, t in enumerate(self.teams)}
        if self.duel:
            alive = np.array([env.last_alive for env in self.envs])  # at the step, before any reset
            for i, t in enumerate(self.teams):
                m[f"kills_{t}"] = deaths[:, 1 - i]
                m[f"wins_{t}"] = (done & (alive[:, i] > alive[:, 1 - i])).astype(np.float64)
        self._measures = m
        return out

    def step_measures(self) -> dict[str, np.ndarray]:
        """``{deaths_<team>, and for duels kills_<team>, wins_<team>: [E]}`` of the last step
        (empty before the first)."""
        return {k: v.copy() for k, v in self._measures.items()}

    def alive(self) -> np.ndarray | None:
        """The adapter's :meth:`VectorEnv.alive`: 0 for agents that died."""
        return self.adapter.alive()

    def final_alive(self) -> np.ndarray | None:
        """The adapter's :meth:`VectorEnv.final_alive`."""
        return self.adapter.final_alive()

    def avail_actions(self) -> np.ndarray | None:
        """The adapter's :meth:`VectorEnv.avail_actions` (magent2 reports none)."""
        return self.adapter.avail_actions()

    def render(self, index: int = 0) -> Any:
        """Copy ``index``'s frame, drawn by magent2 (``render_mode`` ``"rgb_array"`` by default)."""
        return self.adapter.render(index)

    def close(self) -> None:
        """Close every copy."""
        self.adapter.close()


def _import_magent(env_name: str) -> Any:
    name = f"magent/{env_name}"
    try:
        return importlib.import_module(f"magent2.environments.{env_name}")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == "magent2":
            raise BackendNotInstalledError(f"env '{name}' needs the magent2 package: pip install 'xmarl[magent]'") \
                from None
        raise


def make_magent_factory(env_name: str) -> Callable[..., MagentParallel]:
    """The kind ``"env"`` factory of ``magent/<env_name>``: ``(**env_kwargs) -> MagentParallel``
    (defaults: :data:`MAGENT_ENVS` and ``max_cycles`` :data:`MAX_CYCLES`)."""
    name = f"magent/{env_name}"

    def factory(**kwargs: Any) -> MagentParallel:
        mod = _import_magent(env_name)
        kw = {"max_cycles": MAX_CYCLES, "render_mode": "rgb_array", **MAGENT_ENVS[env_name], **kwargs}
        try:
            env = mod.parallel_env(**kw)
        except (TypeError, AssertionError) as exc:  # magent2 asserts its minimum map size
            raise EnvError(f"env '{name}': bad env kwargs {sorted(kwargs)}: {exc}") from None
        return MagentParallel(env)

    factory.__doc__ = f"Registry factory: magent2's ``{env_name}.parallel_env(**kwargs)`` with flat observations."
    return factory


def make_magent_vector_factory(env_name: str) -> Callable[..., MagentVectorEnv]:
    """The kind ``"vector_env"`` factory of ``magent/<env_name>``: ``(num_envs=1, **env_kwargs) ->
    MagentVectorEnv``."""
    name = f"magent/{env_name}"
    factory = make_magent_factory(env_name)

    def make(num_envs: int = 1, **kwargs: Any) -> MagentVectorEnv:
        return MagentVectorEnv(lambda: factory(**kwargs), num_envs, name=name, duel=env_name in DUELS)

    make.__doc__ = f"Registry factory: ``MagentVectorEnv`` of magent2's ``{env_name}``."
    return make


__all__ = ["MagentParallel", "MagentVectorEnv", "make_magent_factory", "make_magent_vector_factory",
           "MAGENT_ENVS", "DUELS", "MAX_CYCLES"]
