"""The backend-neutral off-policy training loop.

collect (vector env) -> store (numpy replay) -> update on schedule -> log (JSONL, TensorBoard)
-> greedy evaluation -> atomic checkpoint. The learner is the only backend-specific object.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel
from tqdm import tqdm

from xmarl import registry
from xmarl.buffers import ReplayBuffer
from xmarl.config import save_config
from xmarl.core.interfaces import Learner, Policy
from xmarl.envs import VectorEnv, make_env
from xmarl.errors import EnvError
from xmarl.training.checkpoint import save_checkpoint
from xmarl.training.logger import MetricsLogger


@dataclass
class RunResult:
    """What a finished run leaves: where its files are, its final metrics and its curve."""

    run_dir: Path
    config_path: Path
    metrics_path: Path
    checkpoint_dir: Path
    tensorboard_dir: Path | None
    final_metrics: dict[str, float]
    curve: list[tuple[int, float]] = field(default_factory=list)  # (env step, greedy eval return)
    learner: Learner | None = field(default=None, repr=False)

    def summary(self) -> str:
        m = self.final_metrics
        lines = [
            f"xmarl run finished: {m.get('steps', 0):.0f} steps in {m.get('wall_time', 0):.0f}s "
            f"({m.get('steps_per_sec', 0):.0f} env-steps/s)",
            f"  final greedy eval return (per agent): {m.get('eval_return', float('nan')):.3f}",
            f"  results:     {self.run_dir}",
            f"  config:      {self.config_path}",
            f"  metrics:     {self.metrics_path}",
            f"  checkpoint:  {self.checkpoint_dir}",
        ]
        if self.tensorboard_dir is not None:
            lines.append(f"  tensorboard: tensorboard --logdir {self.tensorboard_dir}")
        return "\n".join(lines)


def evaluate(policy: Policy, env: VectorEnv, seed: int) -> float:
    """Greedy return per agent (episode sum, mean over agents), one episode per env copy."""
    obs = env.reset(seed=seed)
    E = env.num_envs
    finished = np.zeros(E, bool)
    acc = np.zeros((E, env.spec.n_agents))
    returns = np.zeros(E)
    while not finished.all():
        actions, _ = policy.act(obs, explore=False)
        obs, _, rew, _, done = env.step(actions)
        acc[~finished] += rew[~finished]
        newly = done & ~finished
        returns[newly] = acc[newly].mean(axis=1)
        finished |= done
    return float(returns.mean())


def _unique_dir(base: Path) -> Path:
    if not base.exists():
        return base
    k = 1
    while base.with_name(f"{base.name}-{k}").exists():
        k += 1
    return base.with_name(f"{base.name}-{k}")


class OffPolicyTrainer:
    """Runs an off-policy method (MADDPG) for ``train.steps`` environment steps."""

    def __init__(self, cfg: BaseModel) -> None:
        self.cfg = cfg
        self.mcfg = getattr(cfg, cfg.method)
        spec = registry.get("method", cfg.method)
        self.core = importlib.import_module(spec.core)
        registry.get("runtime", "configure", cfg.backend)(cfg.train.threads)
        self.env = make_env(cfg.env, cfg.train.num_envs, **cfg.env_kwargs)
        if self.env.spec.action_kind not in spec.action_kinds:
            raise EnvError(
                f"{cfg.method} needs {' or '.join(spec.action_kinds)} actions, but env '{cfg.env}' has "
                f"{self.env.spec.action_kind} actions; pick another env or method"
            )
        self.eval_env = make_env(cfg.env, cfg.train.eval_episodes, **cfg.env_kwargs)
        aspec = self.env.spec
        weights = self.core.init_weights(aspec, self.mcfg, cfg.seed)
        self.learner: Learner = registry.get("learner", cfg.method, cfg.backend)(aspec, self.mcfg, weights)
        capacity = min(self.mcfg.buffer_size, cfg.train.steps)
        self.buffer = ReplayBuffer(capacity, aspec.n_agents, aspec.obs_dim, aspec.act_dim)
        self.rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 0x5452]))
        name = cfg.name or f"{cfg.method}-{cfg.env.replace('/', '_')}-{cfg.backend}-s{cfg.seed}"
        self.run_dir = _unique_dir(Path(cfg.out_dir) / name)

    def _checkpoint(self, step: int) -> Path:
        folder = self.run_dir / "checkpoint"
        save_checkpoint(folder, self.learner.get_weights(), self.learner.get_optimizer_state(),
                        {"step": step, "method": self.cfg.method, "backend": self.cfg.backend,
                         "env": self.cfg.env, "seed": self.cfg.seed})
        return folder

    def train(self) -> RunResult:
        cfg, m, t = self.cfg, self.mcfg, self.cfg.train
        self.run_dir.mkdir(parents=True)
        config_path = self.run_dir / "config.yaml"
        save_config(cfg, config_path)
        logger = MetricsLogger(self.run_dir, tensorboard=t.tensorboard)
        env, learner, buf, rng = self.env, self.learner, self.buffer, self.rng
        noise = self.core.exploration(m)
        obs = env.reset(seed=cfg.seed)
        step, n_updates = 0, 0
        next_update = max(m.warmup_steps, m.batch_size)
        next_log, next_eval, next_ckpt = t.log_interval, t.eval_interval, t.checkpoint_interval
        losses: dict[str, list[float]] = {}
        curve: list[tuple[int, float]] = []
        eval_return = float("nan")
        start = time.perf_counter()
        bar = tqdm(total=t.steps, unit="step", disable=not t.progress, dynamic_ncols=True, file=sys.stderr)
        try:
            while step < t.steps:
                if step < m.warmup_steps:
                    actions = env.sample_actions(rng)
                else:
                    actions, _ = learner.policy.act(obs, explore=True, rng=rng, noise_scale=noise)
                next_obs, final_obs, rew, term, _ = env.step(actions)
                buf.add(obs, self.core.stored_actions(env.spec, actions), rew, final_obs, term)
                obs = next_obs
                step += env.num_envs
                bar.update(env.num_envs)
                while step >= next_update:
                    for _ in range(m.updates_per_round):
                        batch = self.core.prepare_batch(env.spec, buf.sample(m.batch_size, rng), rng)
                        for k, v in learner.update(batch).items():
                            losses.setdefault(k, []).append(v)
                        n_updates += 1
                    next_update += m.update_every
                if step >= next_eval or step >= t.steps:
                    eval_return = evaluate(learner.policy, self.eval_env, seed=cfg.seed + 1_000_003)
                    curve.append((step, eval_return))
                    logger.log({"step": step, "eval_return": eval_return})
                    next_eval += t.eval_interval
                if step >= next_log or step >= t.steps:
                    rec = self._train_record(step, n_updates, losses, start)
                    logger.log(rec)
                    bar.set_postfix(ret=f"{rec.get('train_return', float('nan')):.2f}",
                                    eval=f"{eval_return:.2f}", sps=f"{rec['steps_per_sec']:.0f}")
                    losses = {}
                    next_log += t.log_interval
                if step >= next_ckpt:
                    self._checkpoint(step)
                    next_ckpt += t.checkpoint_interval
        except KeyboardInterrupt:
            bar.close()
            folder = self._checkpoint(step)
            logger.close()
            print(f"\ninterrupted at step {step}; checkpoint saved in {folder}", file=sys.stderr)
            raise
        bar.close()
        ckpt = self._checkpoint(step)
        wall = time.perf_counter() - start
        final = {"steps": float(step), "updates": float(n_updates), "eval_return": eval_return,
                 "wall_time": wall, "steps_per_sec": step / max(wall, 1e-9)}
        recent = env.completed_returns[-100:]
        if recent:
            final["train_return"] = float(np.mean(recent))
        logger.close()
        (self.run_dir / "result.json").write_text(json.dumps({"final_metrics": final, "curve": curve}, indent=1))
        return RunResult(self.run_dir, config_path, logger.path, ckpt, logger.tb_dir, final, curve, learner)

    def _train_record(self, step: int, n_updates: int, losses: dict[str, list[float]], start: float) -> dict[str, Any]:
        rec: dict[str, Any] = {"step": step, "updates": n_updates,
                               "steps_per_sec": step / max(time.perf_counter() - start, 1e-9)}
        recent = self.env.completed_returns[-20:]
        if recent:
            rec["train_return"] = float(np.mean(recent))
        rec.update({k: float(np.mean(v)) for k, v in losses.items()})
        return rec
