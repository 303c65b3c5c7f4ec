"""VMAS (the Vectorized Multi-Agent Simulator): ``E`` worlds stepped as one torch computation.

``vmas/<scenario>`` (``pip install 'xmarl[vmas]'``, vmas 1.5.2) builds one
``vmas.make_env(scenario, num_envs=E, ...)`` and keeps its batch dimension: every
:meth:`VmasVectorEnv.step` hands VMAS one action tensor per agent for all ``E`` worlds and
crosses from torch to numpy once (one packed tensor), with no Python loop over worlds. (The
adapter works with the methods of VMAS's own tensors and imports no framework itself: vmas does.)
It implements :class:`~xmarl.envs.base.VectorEnvBase`:

* agents are VMAS's policy agents, under VMAS's names (``agent_0``, ...);
* actions are continuous (``Box(-u_range, u_range)`` per agent, clamped to it) by default;
  ``env_kwargs`` ``continuous_actions=False`` gives VMAS's ``Discrete`` actions (the product
  of each agent's per-dimension choices);
* an episode ends when VMAS says the scenario is done (``terminated``, the same for every agent
  of a world) or after ``max_steps`` steps (a truncation; default 100, BenchMARL's horizon for
  navigation and balance; ``None`` for VMAS's infinite horizon);
* worlds whose episode ended are reset in place: one batched ``env.reset()`` when all ended at
  the same step (the usual case, a shared horizon), else ``env.reset_at(i)`` for each ended world
  (VMAS's scenarios reset one index at a time) and one observation pass for all; ``final_obs``
  holds the true last observations;
* ``reset(seed)`` seeds VMAS's own random stream (``env.reset(seed=seed)``), so it is
  reproducible; VMAS keeps that stream in its ``Environment`` class, shared by every VMAS env of
  the process, without touching torch's, numpy's or Python's global streams.

Other ``env_kwargs`` are the scenario's own (e.g. ``n_agents``; VMAS's defaults apply) and
``device`` (default ``"cpu"``). BenchMARL's task configs differ from VMAS's defaults: navigation
``n_agents=3, shared_rew=False``, balance ``n_agents=4`` (both ``max_steps=100``); give those
``env_kwargs`` to compare with its figures.

VMAS draws frames with pyglet, which needs a display (e.g. Xvfb) for :meth:`render`. VMAS's
agents hold lambdas, so these envs cannot be snapshotted (a resumed run starts fresh episodes).
VMAS's small per-step tensor ops run fastest on one torch thread: the trainer sets torch's thread
count from ``train.threads`` (1 by default) when it trains with the torch backend.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from gymnasium import spaces as gspaces

from xmarl.core.spaces import AgentSpec
from xmarl.envs.base import VectorEnvBase
from xmarl.errors import BackendNotInstalledError, EnvError

#: the VMAS scenarios registered as ``vmas/<scenario>`` (BenchMARL's VMAS tasks that build on CPU in
#: milliseconds); any other scenario file of vmas: ``VmasVectorEnv(num_envs, scenario)``
VMAS_SCENARIOS = (
    "navigation",
    "balance",
    "sampling",
    "transport",
    "reverse_transport",
    "wheel",
    "dispersion",
    "give_way",
    "flocking",
    "discovery",
)
#: the default horizon (BenchMARL's ``max_steps`` for navigation and balance)
MAX_STEPS = 100


def _import_vmas(name: str) -> Any:
    try:
        return importlib.import_module("vmas")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == "vmas":
            raise BackendNotInstalledError(f"env '{name}' needs the vmas package: pip install 'xmarl[vmas]'") from None
        raise


class VmasVectorEnv(VectorEnvBase):
    """``num_envs`` worlds of VMAS scenario ``scenario`` as one batched VMAS env (see the module
    docstring). ``scenario_kwargs`` go to the scenario (``n_agents``, ...)."""

    def __init__(
        self,
        num_envs: int,
        scenario: str,
        continuous_actions: bool = True,
        max_steps: int | None = MAX_STEPS,
        device: str = "cpu",
        seed: int | None = None,
        name: str | None = None,
        **scenario_kwargs: Any,
    ) -> None:
        name = name or f"vmas/{scenario}"
        vmas = _import_vmas(name)
        if int(num_envs) != num_envs or num_envs < 1:
            raise EnvError(f"{name}: num_envs must be an integer >= 1, got {num_envs}")
        if max_steps is not None and (int(max_steps) != max_steps or max_steps < 1):
            raise EnvError(f"{name}: max_steps must be an integer >= 1 or None, got {max_steps}")
        self.scenario = scenario
        self.continuous_actions = bool(continuous_actions)
        self.max_steps = None if max_steps is None else int(max_steps)
        try:  # the scenario of vmas's module (vmas's own loader gives it a module without a name)
            scenario_obj = importlib.import_module(f"vmas.scenarios.{scenario}").Scenario()
        except ModuleNotFoundError:
            raise EnvError(f"{name}: vmas {vmas.__version__} has no scenario '{scenario}'") from None
        self.env = vmas.make_env(
            scenario_obj, num_envs=int(num_envs), device=device, continuous_actions=self.continuous_actions,
            max_steps=self.max_steps, seed=seed, dict_spaces=False, clamp_actions=True,
            terminated_truncated=True, **scenario_kwargs,
        )
        agents = [a.name for a in self.env.agents]
        obs_spaces, act_spaces = {}, {}
        for a, osp, asp in zip(agents, self.env.observation_space.spaces, self.env.action_space.spaces):
            if type(osp).__name__ != "Box" or len(osp.shape) != 1:
                raise EnvError(f"{name}: agent '{a}' has observation space {osp}; xmarl needs a flat Box "
                               "(scenarios with dict observations are not supported)")
            obs_spaces[a] = gspaces.Box(-np.inf, np.inf, (int(osp.shape[0]),), np.float32)
            # VMAS's spaces are gym's (not gymnasium's): rebuild them as gymnasium spaces
            if self.continuous_actions:
                act_spaces[a] = gspaces.Box(np.asarray(asp.low, np.float32), np.asarray(asp.high, np.float32),
                                            dtype=np.float32)
            else:
                act_spaces[a] = gspaces.Discrete(int(asp.n))
        super().__init__(name, AgentSpec.from_spaces(agents, obs_spaces, act_spaces, env_name=name), int(num_envs))
        self._uniform_obs = len(set(self.spec.obs_dims)) == 1
        self.device = self.env.device
        self._obs = self._to_numpy(self._scenario_obs())  # make_env has reset (and seeded) the worlds

    # -- conversion (with the methods of VMAS's own tensors: xmarl.envs imports no framework) ----------
    def _pack(self, obs: Sequence[Any], extra: Sequence[Any] = ()) -> np.ndarray:
        """One float32 numpy array ``[E, A * obs_dim + len(extra)]`` of VMAS's per-agent ``[E, d_i]``
        observations (padding zero) followed by the ``[E]`` tensors ``extra``: a single crossing."""
        E, A, D = self.num_envs, self.spec.n_agents, self.spec.obs_dim
        buf = obs[0].new_zeros((E, A * D + len(extra))).float()
        view = buf[:, : A * D].view(E, A, D)
        for i, o in enumerate(obs):  # one copy per agent, all worlds at once (VMAS observes per agent too)
            view[:, i, : o.shape[1]] = o
        for j, x in enumerate(extra):
            buf[:, A * D + j] = x
        return buf.cpu().numpy()

    def _to_numpy(self, obs: list[Any]) -> np.ndarray:
        """``[E, A, obs_dim]`` float32 observations."""
        return self._pack(obs).reshape(self.num_envs, self.spec.n_agents, self.spec.obs_dim)

    def _scenario_obs(self) -> list[Any]:
        return self.env.get_from_scenario(get_observations=True, get_rewards=False, get_infos=False,
                                          get_dones=False)[0]

    def _to_vmas_actions(self, actions: np.ndarray) -> list[Any]:
        """One ``[E, act_dim_i]`` (continuous) or ``[E]`` (discrete, int64) tensor per agent, views of
        one tensor on VMAS's device."""
        E, A = self.num_envs, self.spec.n_agents
        proto = self.env.steps  # a tensor on VMAS's device
        if self.continuous_actions:
            a = np.asarray(actions, np.float32)
            if a.shape != (E, A, self.spec.act_dim):
                raise EnvError(f"{self.name}: continuous actions must have shape {(E, A, self.spec.act_dim)}, "
                               f"got {a.shape}")
            t = proto.new_tensor(a).float()
            return [t[:, i, :d] for i, d in enumerate(self.spec.act_dims)]
        a = np.asarray(actions)
        if a.shape != (E, A):
            raise EnvError(f"{self.name}: discrete actions must have shape {(E, A)}, got {a.shape}")
        n = np.asarray(self.spec.act_dims)
        if a.min() < 0 or (a >= n).any():
            b, i = np.argwhere((a < 0) | (a >= n))[0]
            raise EnvError(f"{self.name}: discrete actions of agent '{self.agents[i]}' must be in 0..{n[i] - 1}, "
                           f"got {a[b, i]}")
        t = proto.new_tensor(a.astype(np.int64)).long()
        return [t[:, i] for i in range(A)]

    # -- the interface ----------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> np.ndarray:
        """New episodes in every world (``seed`` reseeds VMAS's stream); returns ``[E, A, obs_dim]``."""
        self._obs = self._to_numpy(self.env.reset(seed=seed))
        self._restart_episodes()
        return self._obs.copy()

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Step every world with ``actions`` (``[E, A, act_dim]`` floats or ``[E, A]`` ints); returns
        ``(obs, final_obs, rewards, terminated, done)`` as :meth:`VectorEnvBase.step`."""
        E, A, D = self.num_envs, self.spec.n_agents, self.spec.obs_dim
        obs, rew, term, trunc, _ = self.env.step(self._to_vmas_actions(actions))
        # one crossing to numpy: [observations (A * D) | rewards (A) | terminated | truncated] per world
        arr = self._pack(obs, [*rew, term, trunc])
        final = arr[:, : A * D].reshape(E, A, D).copy()
        r = arr[:, A * D: A * D + A].copy()
        terminated = arr[:, A * D + A] > 0
        done = terminated | (arr[:, A * D + A + 1] > 0)
        term_agents = np.repeat(terminated[:, None], A, axis=1).astype(np.float32)
        if not np.all(np.isfinite(r)):
            b, i = np.argwhere(~np.isfinite(r))[0]
            raise EnvError(f"{self.name}: reward of agent '{self.agents[i]}' is {r[b, i]}")
        self._track(r, done)
        obs_next = final
        if done.any():
            if done.all():  # a shared horizon: one batched reset
                new = self.env.reset()
            else:
                for i in np.flatnonzero(done).tolist():
                    self.env.reset_at(i, return_observations=False)
                new = self._scenario_obs()
            obs_next = self._to_numpy(new)
            obs_next[~done] = final[~done]
        self._obs = obs_next
        return obs_next.copy(), final, r, term_agents, done

    def render(self, index: int = 0) -> Any:
        """An RGB frame ``[H, W, 3]`` of world ``index``, drawn by VMAS with pyglet (needs a display)."""
        return self.env.render(mode="rgb_array", env_index=index)

    def close(self) -> None:
        """Close VMAS's viewer, if one was opened."""
        viewer = getattr(self.env, "viewer", None)
        if viewer is not None:
            viewer.close()
            self.env.viewer = None


def make_vmas_factory(scenario: str) -> Callable[..., VmasVectorEnv]:
    """The registry factory ``(num_envs=1, **env_kwargs) -> VmasVectorEnv`` of ``vmas/<scenario>``."""
    name = f"vmas/{scenario}"

    def make(num_envs: int = 1, **kwargs: Any) -> VmasVectorEnv:
        try:
            return VmasVectorEnv(num_envs, scenario, name=name, **kwargs)
        except TypeError as exc:
            raise EnvError(f"env '{name}': bad env kwargs {sorted(kwargs)}: {exc}") from None

    make.__doc__ = f"Registry factory: ``VmasVectorEnv(num_envs, '{scenario}', **kwargs)``."
    return make


def vmas_env_entry(scenario: str) -> Callable[..., Any]:
    """The kind ``"env"`` entry of ``vmas/<scenario>``: ``make_env`` builds the batched
    ``"vector_env"`` one; called, it names the extra to install, or explains."""
    name = f"vmas/{scenario}"

    def make(**kwargs: Any) -> Any:
        _import_vmas(name)
        raise EnvError(f"env '{name}' steps its worlds as one batched VMAS env, built by xmarl.envs.make_env "
                       "(VmasVectorEnv), not a PettingZoo env")

    return make


__all__ = ["VmasVectorEnv", "make_vmas_factory", "vmas_env_entry", "VMAS_SCENARIOS", "MAX_STEPS"]
