"""The public functions: :func:`run` (train), :func:`load` (a trained policy, in any backend)
and :func:`load_config`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from xmarl import registry
from xmarl.config import load_config
from xmarl.core.spaces import AgentSpec
from xmarl.errors import XmarlError, path_errors
from xmarl.training.checkpoint import latest_checkpoint, load_weights
from xmarl.training.trainer import RunResult, Trainer


def run(
    method: str | None = None,
    backend: str | None = None,
    env: str | None = None,
    config: str | os.PathLike[str] | None = None,
    overrides: dict[str, Any] | None = None,
    *,
    steps: int | None = None,
    seed: int | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
    resume: str | os.PathLike[str] | None = None,
) -> RunResult:
    """Train ``method`` in ``backend`` on ``env`` and return a :class:`RunResult`.

    Config is merged as ``defaults.yaml < configs/<method>/<env>.yaml < config < overrides``;
    ``overrides`` maps dotted keys to values (``{"maddpg.lr_actor": 1e-3}``), and ``steps``,
    ``seed``, ``out_dir`` and ``progress`` are shorthands for the matching keys.

    ``resume`` (a run folder) continues that run from its newest checkpoint with the config
    saved beside it (``overrides``, e.g. a larger ``train.steps``, still apply); the result is
    the same as if the run had never stopped.
    """
    with path_errors():  # a full disk or a path of the wrong kind: one line, as every user error
        return _run(method, backend, env, config, overrides, steps, seed, out_dir, progress, resume)


def _run(method: str | None, backend: str | None, env: str | None, config: str | os.PathLike[str] | None,
         overrides: dict[str, Any] | None, steps: int | None, seed: int | None, out_dir: str | os.PathLike[str] | None,
         progress: bool | None, resume: str | os.PathLike[str] | None) -> RunResult:
    ov = dict(overrides or {})
    for key, val in (("train.steps", steps), ("seed", seed), ("out_dir", out_dir), ("train.progress", progress)):
        if val is not None:
            ov[key] = str(val) if key == "out_dir" else val
    if resume is not None:
        checkpoint = latest_checkpoint(resume)  # a bad path fails here, before anything is built
        config = config or checkpoint.parent.parent / "config.yaml"
    cfg = load_config(method, env, backend, config, ov)
    registry.load_backend(cfg.backend)  # a missing framework fails here, before any file is written
    return Trainer(cfg, resume=resume).train()


class LoadedPolicy:
    """The greedy policy of a trained run, in the backend it was loaded into (see :func:`load`).

    Attributes: ``agents`` (agent names, in the order of the agent axis), ``spec`` (the
    :class:`~xmarl.core.spaces.AgentSpec`: observation and action sizes), ``backend``,
    ``config`` (the run's resolved config), ``checkpoint`` (the folder the weights came from),
    ``run_env`` (the env the run stepped: its config's env or, with ``env_impl: auto``, that env's
    transition-identical twin) and ``policy`` (the underlying :class:`~xmarl.core.interfaces.Policy`).
    """

    def __init__(self, config: Any, weights: dict[str, np.ndarray], checkpoint: Path) -> None:
        from xmarl.envs import make_env, run_env

        self.config, self.checkpoint, self._weights = config, checkpoint, weights
        self.backend: str = config.backend
        self.run_env: str = run_env(config.env, config.env_impl, config.env_kwargs)  # the env the run stepped
        self._env = make_env(self.run_env, 1, **config.env_kwargs)  # fixed groups may read its state
        self.spec: AgentSpec = self._env.spec
        self.agents: list[str] = list(self._env.agents)
        self.policy = self._build(self._env)

    def _build(self, env: Any) -> Any:
        from xmarl.training.render import build_policy

        return build_policy(self.config, self._weights, env)

    def act(self, obs: np.ndarray, state: Any = None, *, avail: np.ndarray | None = None,
            agent_mask: np.ndarray | None = None) -> tuple[np.ndarray, Any]:
        """Greedy actions for observations ``[A, obs_dim]`` (one env) or ``[E, A, obs_dim]``.

        Returns ``(actions, state)``: actions ``[A]`` / ``[E, A]`` (discrete) or with a last axis
        ``act_dim`` (continuous, hybrid), laid out as the env's ``step`` takes them, and the
        recurrent state to pass back at the next step (None for feed-forward policies).
        ``avail`` marks the available discrete actions and ``agent_mask`` the agents in the
        episode, with the same leading axes as ``obs``.
        """
        x = np.asarray(obs, np.float32)
        single = x.ndim == 2
        if single:
            x = x[None]
            avail = None if avail is None else np.asarray(avail)[None]
            agent_mask = None if agent_mask is None else np.asarray(agent_mask)[None]
        want = (self.spec.n_agents, self.spec.obs_dim)
        if x.ndim != 3 or x.shape[1:] != want:
            raise ValueError(f"observations of shape {np.shape(obs)} do not fit this policy: expected "
                             f"[{want[0]}, {want[1]}] or [E, {want[0]}, {want[1]}] (agents {self.agents})")
        actions, state = self.policy.act(x, state, explore=False, avail=avail, agent_mask=agent_mask)
        return (actions[0] if single else actions), state

    def evaluate(self, episodes: int | None = None, seed: int | None = None) -> dict[str, Any]:
        """Greedy episodes on the run's env, one per env copy: ``{"return": mean return per agent,
        "agent_returns": {agent: mean return}, "length": mean episode length, "episodes": n}``.

        The defaults (the run's ``train.eval_episodes`` and evaluation seed) replay the run's own
        evaluation episodes, so a run's final checkpoint gives its final ``eval_return`` here,
        in whichever backend it was loaded into.
        """
        from xmarl.envs import make_env
        from xmarl.training.trainer import EVAL_SEED_OFFSET, episode_stats

        n = self.config.train.eval_episodes if episodes is None else episodes
        env = make_env(self.run_env, n, **self.config.env_kwargs)
        try:
            seed = self.config.seed + EVAL_SEED_OFFSET if seed is None else seed
            returns, lengths, _ = episode_stats(self._build(env), env, seed)
        finally:
            env.close()
        per_agent = returns.mean(axis=0)
        return {"return": float(per_agent.mean()), "agent_returns": dict(zip(self.agents, map(float, per_agent))),
                "length": float(np.mean(lengths)), "episodes": n}

    def __repr__(self) -> str:
        return (f"LoadedPolicy({self.config.method} on {self.config.env}, backend={self.backend}, "
                f"agents={self.agents}, checkpoint={self.checkpoint})")


def load(run_dir: str | os.PathLike[str], backend: str | None = None) -> LoadedPolicy:
    """The greedy policy of a trained run, loaded into ``backend`` (default: the one it trained in).

    ``run_dir`` is a run folder (its newest intact checkpoint is used) or one
    ``checkpoints/step_*`` folder. Checkpoints hold framework-neutral weights, so a run trained
    in torch loads into TensorFlow or MindSpore and acts the same. Agent groups act as the
    run's config says (learning groups with their learner's weights, fixed groups as fixed).
    """
    with path_errors():
        folder = latest_checkpoint(run_dir)
        config_path = folder.parent.parent / "config.yaml"
        if not config_path.is_file():
            raise XmarlError(f"no config.yaml beside checkpoint {folder}; load needs the run folder's config")
        cfg = load_config(config=config_path, backend=backend)
        registry.load_backend(cfg.backend)  # a missing framework fails here, with the extra to install
        return LoadedPolicy(cfg, load_weights(folder), folder)


__all__ = ["run", "load", "load_config", "RunResult", "LoadedPolicy"]
