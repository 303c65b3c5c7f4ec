"""Adapter from gymnasium multi-agent envs of the tuple shape (LBF, RWARE) to xmarl's arrays.

Some multi-agent packages ship one gymnasium env for all agents: observation and action spaces
are ``Tuple`` spaces with one entry per agent, ``step`` takes a tuple of per-agent actions and
returns per-agent observations, a reward list (or one shared number), ``terminated``/``truncated``
as bools or per-agent lists, and an info dict. :class:`GymTupleVectorEnv` steps ``num_envs``
copies of such an env and implements :class:`~xmarl.envs.base.VectorEnvBase`:

* agents are named ``agent_0..agent_{N-1}``, in the order of the tuple;
* observation spaces must be ``Box`` (of any shape: observations are flattened), action spaces
  all ``Discrete`` or all ``Box`` (:meth:`~xmarl.core.spaces.AgentSpec.from_spaces`);
* ``reset(seed)`` seeds copy ``i`` with ``seed + i``; an episode ends when every agent is
  terminated or truncated, and its copy is reset in place (``final_obs`` keeps the last one);
* an agent whose ``terminated`` entry is set while others go on leaves the episode: its slot
  then holds zeros and 0 in :meth:`~GymTupleVectorEnv.alive`, as in the PettingZoo adapter;
* available actions are read from ``info["action_mask"]`` (one row per agent) when an env
  reports them; none are invented otherwise (LBF and RWARE report none).

Registered suites (``xmarl.envs`` registers them under kind ``"vector_env"`` when the package is
installed, and under kind ``"env"`` always, where a missing package names its extra):

* ``lbf/<id>`` (``pip install 'xmarl[lbf]'``, lbforaging 2.0.0): the Level-Based Foraging ids in
  :data:`LBF_TASKS`. lbforaging 2.0.0 registers them with the suffix ``-v3``
  (``lbf/Foraging-8x8-2p-3f-v3``); the same name without the suffix (``lbf/Foraging-8x8-2p-3f``)
  is the same env. ``env_kwargs`` are the ``ForagingEnv`` arguments; ``max_episode_steps``
  (default 50, as the package registers) is the episode length;
* ``rware/<id>`` (``pip install 'xmarl[rware]'``, rware 2.0.0): the warehouse ids in
  :data:`RWARE_TASKS`, registered with the suffix ``-v2`` (``rware/rware-tiny-2ag-v2``, also
  ``rware/rware-tiny-2ag``). ``env_kwargs`` are the ``Warehouse`` arguments; ``max_steps``
  (default 500) is the episode length.

Both packages end an episode at their step limit with ``terminated=True`` (and
``truncated=False``), which would make a learner treat the time limit as a terminal state. The
factories here switch the package's own limit off and truncate with gymnasium's ``TimeLimit``
at the same step instead, so ``terminated`` means the task ended (LBF: every food collected;
RWARE: ``max_inactivity_steps`` when set) and the time limit is a truncation.

lbforaging 2.0.0's seeded reset depends on the episode before it: ``spawn_players`` keeps each
player off the cells of every player's *previous* position (they are not cleared), so
``reset(seed=s)`` of a copy that has played differs from a fresh copy's in about one reset in ten
(gymnasium's ``check_env`` fails LBF on it). The LBF factories wrap each copy in
:class:`LbfSeededReset`, which clears the positions before a seeded reset, so that
``reset(seed)`` (every evaluation's, and a resumed run's) is a fresh env's; unseeded resets (the
auto-resets within a run) are the package's own.

Any other package of this shape: ``GymTupleVectorEnv(lambda: gymnasium.make(...), num_envs)``,
or :func:`register_gym_tuple` to give one of its ids an xmarl name.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
from collections.abc import Callable
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces as gspaces

from xmarl import registry
from xmarl.core.spaces import AgentSpec
from xmarl.envs.base import VectorEnvBase
from xmarl.errors import BackendNotInstalledError, EnvError

#: Level-Based Foraging tasks registered as ``lbf/<id>`` (and ``lbf/<id without -v3>``): EPyMARL's
#: benchmark tasks that lbforaging 2.0.0 registers (it has no 5-food ids), the issue's
#: ``8x8-2p-3f`` and a small ``5x5-2p-1f``
LBF_TASKS = (
    "Foraging-5x5-2p-1f-v3",
    "Foraging-8x8-2p-2f-coop-v3",
    "Foraging-2s-8x8-2p-2f-coop-v3",
    "Foraging-8x8-2p-3f-v3",
    "Foraging-10x10-3p-3f-v3",
    "Foraging-2s-10x10-3p-3f-v3",
    "Foraging-15x15-4p-3f-v3",
)
LBF_VERSION = "-v3"
#: Multi-Robot Warehouse tasks registered as ``rware/<id>`` (and ``rware/<id without -v2>``)
RWARE_TASKS = (
    "rware-tiny-2ag-v2",
    "rware-tiny-2ag-easy-v2",
    "rware-tiny-2ag-hard-v2",
    "rware-tiny-4ag-v2",
    "rware-small-4ag-v2",
)
RWARE_VERSION = "-v2"


class GymTupleVectorEnv(VectorEnvBase):
    """``num_envs`` copies of one tuple-space gymnasium multi-agent env, stepped as arrays (see
    the module docstring).

    ``make`` builds one copy (a ``gymnasium.Env`` whose observation and action spaces are
    ``Tuple`` spaces with one entry per agent); ``name`` is used in error messages.
    """

    def __init__(self, make: Callable[[], Any], num_envs: int, name: str = "env") -> None:
        if int(num_envs) != num_envs or num_envs < 1:
            raise EnvError(f"{name}: num_envs must be an integer >= 1, got {num_envs}")
        self.envs = [make() for _ in range(int(num_envs))]
        e0 = self.envs[0]
        osp, asp = e0.observation_space, e0.action_space
        if not isinstance(osp, gspaces.Tuple) or not isinstance(asp, gspaces.Tuple) or len(osp) != len(asp):
            raise EnvError(f"{name}: observation space {osp} and action space {asp} must be Tuple spaces with one "
                           "entry per agent; use the PettingZoo adapter for other multi-agent envs")
        agents = [f"agent_{i}" for i in range(len(osp))]
        obs_spaces = {a: _flat_box(sp, name, a) for a, sp in zip(agents, osp.spaces)}
        spec = AgentSpec.from_spaces(agents, obs_spaces, dict(zip(agents, asp.spaces)), env_name=name)
        if spec.hybrid:
            raise EnvError(f"{name}: Tuple(Discrete, Box) actions per agent are not supported by the gymnasium "
                           "tuple adapter; use all-Discrete or all-Box agents")
        super().__init__(name, spec, int(num_envs))
        E, A, D = self.num_envs, spec.n_agents, spec.obs_dim
        self._uniform_obs = len(set(spec.obs_dims)) == 1
        # flat positions in an [A, obs_dim] row of each agent's observation entries (ragged agents)
        self._obs_index = np.concatenate([i * D + np.arange(d) for i, d in enumerate(spec.obs_dims)])
        self._uniform_act = len(set(spec.act_dims)) == 1
        self._obs = np.zeros((E, A, D), np.float32)
        self._avail: np.ndarray | None = None  # [E, A, act_dim], once an env reports action masks
        # [E, A] agents that terminated while their episode goes on (created once one has)
        self._left: np.ndarray | None = None
        self._final_alive: np.ndarray | None = None

    # -- conversion -------------------------------------------------------------------------
    def _write_obs(self, out: np.ndarray, obs: Any) -> None:
        """Write one copy's tuple of observations into ``out`` ``[A, obs_dim]`` (padding zero)."""
        A = self.spec.n_agents
        if len(obs) != A:
            raise EnvError(f"{self.name}: the env returned {len(obs)} observations for {A} agents")
        if self._uniform_obs:
            flat = np.asarray(obs, np.float32).reshape(A, -1)
            if flat.shape[1] != self.spec.obs_dim:
                raise EnvError(f"{self.name}: observations have {flat.shape[1]} values per agent, "
                               f"the observation space says {self.spec.obs_dim}")
            out[:] = flat
            return
        flat = np.concatenate([np.ravel(o) for o in obs]).astype(np.float32, copy=False)
        if flat.shape[0] != self._obs_index.shape[0]:
            raise EnvError(f"{self.name}: observations have {flat.shape[0]} values in all, the observation spaces "
                           f"say {self._obs_index.shape[0]} ({self.spec.obs_dims} per agent)")
        out.reshape(-1)[self._obs_index] = flat

    def _write_avail(self, e: int, info: Any) -> None:
        """Keep the available-action masks an env reports as ``info["action_mask"]`` (a row per agent)."""
        if not self.spec.discrete or not isinstance(info, dict) or info.get("action_mask") is None:
            return
        if self._avail is None:
            self._avail = np.broadcast_to(self.spec.act_mask, (self.num_envs,) + self.spec.act_mask.shape).copy()
        masks = info["action_mask"]
        if len(masks) != self.spec.n_agents:
            raise EnvError(f"{self.name}: info['action_mask'] has {len(masks)} rows for {self.spec.n_agents} agents")
        for i, m in enumerate(masks):  # rows may differ in length (agents with fewer actions)
            self._avail[e, i, : len(m)] = np.asarray(m, np.float32)

    def _per_agent(self, value: Any, what: str) -> np.ndarray:
        """``[A]`` from a per-agent sequence or one value shared by every agent."""
        arr = np.asarray(value)
        if arr.shape not in ((), (self.spec.n_agents,)):
            raise EnvError(f"{self.name}: step returned {what} of shape {arr.shape}; expected one value or one per "
                           f"agent ({self.spec.n_agents})")
        return arr

    def _to_env_actions(self, actions: np.ndarray) -> list[tuple[Any, ...]]:
        """Per copy, the tuple of per-agent actions: Python ints (discrete) or float32 vectors."""
        E, A = self.num_envs, self.spec.n_agents
        if self.spec.discrete:
            a = np.asarray(actions)
            if a.shape != (E, A):
                raise EnvError(f"{self.name}: discrete actions must have shape {(E, A)}, got {a.shape}")
            return [tuple(row) for row in a.astype(np.int64).tolist()]
        a = np.asarray(actions, np.float32)
        if a.shape != (E, A, self.spec.act_dim):
            raise EnvError(f"{self.name}: continuous actions must have shape {(E, A, self.spec.act_dim)}, "
                           f"got {a.shape}")
        if self._uniform_act:
            return [tuple(row) for row in a]
        dims = self.spec.act_dims
        return [tuple(row[i, :d] for i, d in enumerate(dims)) for row in a]

    # -- the interface ----------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> np.ndarray:
        """Reset every copy (copy ``i`` seeded with ``seed + i``); returns ``[E, A, obs_dim]``."""
        self._obs[:] = 0.0
        self._left = self._final_alive = None
        for e, env in enumerate(self.envs):
            obs, info = env.reset(seed=None if seed is None else seed + e)
            self._write_obs(self._obs[e], obs)
            self._write_avail(e, info)
        self._restart_episodes()
        return self._obs.copy()

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Step all copies with ``actions`` (``[E, A]`` ints or ``[E, A, act_dim]`` floats); returns
        ``(obs, final_obs, rewards, terminated, done)`` as :meth:`VectorEnvBase.step`. Agents that
        left their episode before this step get zeros in every slot."""
        E, A = self.num_envs, self.spec.n_agents
        final = np.zeros_like(self._obs)
        rew = np.zeros((E, A), np.float32)
        term = np.zeros((E, A), bool)
        trunc = np.zeros((E, A), bool)
        for e, (env, act) in enumerate(zip(self.envs, self._to_env_actions(actions))):
            obs, r, te, tr, info = env.step(act)
            self._write_obs(final[e], obs)
            rew[e] = self._per_agent(r, "rewards")
            term[e] = self._per_agent(te, "terminated")
            trunc[e] = self._per_agent(tr, "truncated")
            self._write_avail(e, info)
        left = self._left
        if left is not None:  # agents gone before this step: zero slots
            final[left] = 0.0
            rew[left] = 0.0
            term &= ~left
        gone = term if left is None else term | left
        done = np.all(gone | trunc, axis=1)
        leaving = term & ~done[:, None]  # terminated while the episode goes on
        if left is not None or leaving.any():
            self._final_alive = (~gone).astype(np.float32)
            self._left = gone & ~done[:, None]  # copies that end start afresh
        else:
            self._final_alive = None
        self._track(rew, done)
        obs_next = final.copy()
        if self._left is not None:
            obs_next[self._left] = 0.0
        for e in np.flatnonzero(done):
            obs, info = self.envs[e].reset()
            self._write_obs(obs_next[e], obs)
            self._write_avail(e, info)
        self._obs = obs_next
        return obs_next.copy(), final, rew, term.astype(np.float32), done

    def avail_actions(self) -> np.ndarray | None:
        """Available actions ``[E, A, act_dim]`` at the current observations, or ``None`` when the
        env reports none (every action of the agent's space is then available)."""
        return None if self._avail is None else self._avail.copy()

    def alive(self) -> np.ndarray | None:
        """``[E, A]``: 0 for agents that terminated while their episode goes on, ``None`` while no
        agent has."""
        return None if self._left is None else (~self._left).astype(np.float32)

    def final_alive(self) -> np.ndarray | None:
        """``[E, A]``: 0 for agents that terminated at the last step or left before it, ``None``
        while no agent has left an episode that went on."""
        return None if self._final_alive is None else self._final_alive.copy()

    def render(self, index: int = 0) -> Any:
        """An RGB frame of copy ``index``: its ``render()`` when made with ``render_mode="rgb_array"``,
        else ``render(mode="rgb_array")`` of the unwrapped env (LBF's and RWARE's signature; both
        draw with pyglet, which needs a display)."""
        env = self.envs[index]
        if getattr(env, "render_mode", None) == "rgb_array":
            return env.render()
        return env.unwrapped.render(mode="rgb_array")

    def close(self) -> None:
        """Close every copy."""
        for env in self.envs:
            env.close()


class LbfSeededReset(gymnasium.Wrapper, gymnasium.utils.RecordConstructorArgs):
    """An LBF env whose seeded ``reset`` is a fresh env's, whatever was played before (see the module
    docstring): the players' positions are cleared first, as a new ``ForagingEnv`` has them.
    Unseeded resets, steps and everything else are the wrapped env's."""

    def __init__(self, env: gymnasium.Env) -> None:
        gymnasium.utils.RecordConstructorArgs.__init__(self)  # in env.spec: gymnasium can remake it
        gymnasium.Wrapper.__init__(self, env)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        if seed is not None:
            for player in self.env.unwrapped.players:
                player.position = None
        return self.env.reset(seed=seed, options=options)


#: per package, the wrapper each copy of its envs gets (the fixes of upstream behaviour above)
WRAPPERS: dict[str, Callable[[Any], Any]] = {"lbforaging": LbfSeededReset}


def _flat_box(space: Any, name: str, agent: str) -> gspaces.Box:
    """``space`` (a ``Box`` of any shape) as a flat float32 ``Box``."""
    if not isinstance(space, gspaces.Box):
        raise EnvError(f"{name}: agent '{agent}' has observation space {space}; xmarl needs a Box")
    if len(space.shape) == 1:
        return space
    return gspaces.Box(space.low.reshape(-1).astype(np.float32), space.high.reshape(-1).astype(np.float32),
                       dtype=np.float32)


def _import_suite(package: str, name: str, extra: str) -> None:
    """Import ``package`` (which registers its gymnasium ids); a missing one names the extra."""
    try:
        importlib.import_module(package)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == package:
            raise BackendNotInstalledError(f"env '{name}' needs the {package} package: pip install 'xmarl[{extra}]'") \
                from None
        raise


def gym_tuple_factory(name: str, gym_id: str, package: str, extra: str, limit_key: str | None = None,
                      limit_off: Any = None) -> Callable[..., GymTupleVectorEnv]:
    """A registry factory ``(num_envs=1, **env_kwargs) -> GymTupleVectorEnv`` for gymnasium id ``gym_id``
    of ``package`` (imported on first use; a missing one raises
    :class:`~xmarl.errors.BackendNotInstalledError` naming ``pip install 'xmarl[<extra>]'``).

    ``env_kwargs`` update the kwargs the id is registered with. ``limit_key`` names the package's own
    episode-length argument: its value (given or registered) becomes gymnasium's ``TimeLimit``
    (a truncation) and the package's limit is set to ``limit_off`` (off), see the module docstring.
    Each copy is wrapped in ``WRAPPERS[package]`` where there is one (LBF: :class:`LbfSeededReset`).
    """
    wrap = WRAPPERS.get(package)

    def make(num_envs: int = 1, **kwargs: Any) -> GymTupleVectorEnv:
        _import_suite(package, name, extra)
        spec = gymnasium.spec(gym_id)
        kw = {**spec.kwargs, **kwargs}
        limit = spec.max_episode_steps
        if limit_key is not None:
            limit = kw.pop(limit_key, limit)
            kw[limit_key] = limit_off
        if limit is not None and (int(limit) != limit or limit < 1):
            raise EnvError(f"env '{name}': {limit_key or 'max_episode_steps'} must be an integer >= 1, got {limit}")
        env_spec = dataclasses.replace(spec, kwargs=kw, max_episode_steps=None if limit is None else int(limit))

        def one() -> Any:
            env = gymnasium.make(env_spec, disable_env_checker=True)
            return env if wrap is None else wrap(env)

        return GymTupleVectorEnv(one, num_envs, name=name)

    make.__doc__ = f"Registry factory: ``GymTupleVectorEnv`` of {package}'s gymnasium env ``{gym_id}``."
    return make


def gym_tuple_env_entry(name: str, package: str, extra: str) -> Callable[..., Any]:
    """The kind ``"env"`` entry of a tuple-space env: ``make_env`` builds the ``"vector_env"`` entry
    (the PettingZoo adapter does not apply); called, it names the extra to install, or explains."""

    def make(**kwargs: Any) -> Any:
        _import_suite(package, name, extra)
        raise EnvError(f"env '{name}' is a gymnasium tuple-space env, built by xmarl.envs.make_env "
                       "(GymTupleVectorEnv), not a PettingZoo env")

    return make


def register_gym_tuple(name: str, gym_id: str, package: str, extra: str | None = None,
                       limit_key: str | None = None, limit_off: Any = None) -> None:
    """Give gymnasium id ``gym_id`` of ``package`` the xmarl env name ``name`` (kind ``"vector_env"``
    and kind ``"env"``, as the LBF and RWARE ids), e.g. another LBF id:
    ``register_gym_tuple("lbf/Foraging-grid-8x8-2p-3f-v3", "Foraging-grid-8x8-2p-3f-v3", "lbforaging",
    "lbf", "max_episode_steps", sys.maxsize)``."""
    registry.add("vector_env", name, gym_tuple_factory(name, gym_id, package, extra or package, limit_key, limit_off))
    registry.add("env", name, gym_tuple_env_entry(name, package, extra or package))


#: the package, extra, tasks, version suffix and episode-limit argument (and its "off" value) of each suite
SUITES: dict[str, tuple[str, str, tuple[str, ...], str, str, Any]] = {
    "lbf": ("lbforaging", "lbf", LBF_TASKS, LBF_VERSION, "max_episode_steps", sys.maxsize),
    "rware": ("rware", "rware", RWARE_TASKS, RWARE_VERSION, "max_steps", None),
}

__all__ = ["GymTupleVectorEnv", "LbfSeededReset", "WRAPPERS", "gym_tuple_factory", "gym_tuple_env_entry",
           "register_gym_tuple", "LBF_TASKS", "RWARE_TASKS", "SUITES"]
