"""Episode GIFs from a checkpoint (``xmarl render``) or during training (``train.gif_every``)."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from xmarl import registry
from xmarl.core.interfaces import Policy
from xmarl.envs import VectorEnvBase, make_env, run_env
from xmarl.errors import EnvError, XmarlError
from xmarl.files import atomic_write_bytes
from xmarl.training.checkpoint import latest_checkpoint, load_weights


def episode_frames(policy: Policy, env: VectorEnvBase, seed: int, max_frames: int = 1000) -> list[np.ndarray]:
    """RGB frames of one greedy episode in copy 0 of ``env`` (made with ``render_mode="rgb_array"``)."""

    def frame() -> np.ndarray:
        try:
            img = env.render(0)
        except NotImplementedError:
            img = None
        if not isinstance(img, np.ndarray) or img.ndim != 3:
            raise EnvError(f"env '{env.name}' does not render rgb_array frames; pick an env that does, "
                           "e.g. mpe/simple_spread_v3")
        return img

    obs = env.reset(seed=seed)
    frames = [frame()]
    state = None
    while len(frames) < max_frames:
        actions, state = policy.act(obs, state, explore=False)
        obs, _, _, _, done = env.step(actions)
        if done[0]:
            break
        frames.append(frame())
    return frames


def make_render_env(name: str, env_kwargs: dict[str, Any]) -> VectorEnvBase:
    """One copy of env ``name`` that renders ``rgb_array`` frames."""
    if name in registry.names("vector_env"):  # natively batched envs render frames without a render mode
        return make_env(name, 1, **env_kwargs)
    try:
        return make_env(name, 1, **{**env_kwargs, "render_mode": "rgb_array"})
    except EnvError as exc:
        if not isinstance(exc.__cause__, TypeError) or "render_mode" not in str(exc.__cause__):
            raise
        raise EnvError(f"env '{name}' does not render rgb_array frames; pick an env that does, "
                       "e.g. mpe/simple_spread_v3") from None


def write_gif(frames: list[np.ndarray], out: str | os.PathLike[str], fps: int = 10) -> Path:
    """Write ``frames`` as an animated GIF, atomically."""
    from PIL import Image

    images = [Image.fromarray(np.asarray(f, np.uint8)) for f in frames]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    return atomic_write_bytes(out, buf.getvalue())


def render_checkpoint(checkpoint: str | os.PathLike[str], out: str | os.PathLike[str], backend: str | None = None,
                      seed: int | None = None, fps: int = 10) -> Path:
    """Render one greedy episode of the policy in ``checkpoint`` (a run or checkpoint folder) to a GIF.

    ``backend`` may differ from the one that trained: weights are framework-neutral.
    """
    from xmarl.config import load_config

    folder = latest_checkpoint(checkpoint)
    config_path = folder.parent.parent / "config.yaml"
    if not config_path.is_file():
        raise XmarlError(f"no config.yaml beside checkpoint {folder}; render needs the run folder's config")
    if not str(out).lower().endswith(".gif"):
        raise XmarlError(f"--out '{out}' must end in .gif")
    cfg = load_config(config=config_path, backend=backend)
    env = make_render_env(run_env(cfg.env, cfg.env_impl, cfg.env_kwargs), cfg.env_kwargs)  # the env that trained
    policy = build_policy(cfg, load_weights(folder), env)
    from xmarl.training.trainer import EVAL_SEED_OFFSET

    seed = cfg.seed + EVAL_SEED_OFFSET if seed is None else seed  # by default the evaluation episodes' seed
    return write_gif(episode_frames(policy, env, seed), out, fps)


def build_policy(cfg: Any, weights: dict[str, np.ndarray], env: VectorEnvBase) -> Policy:
    """The greedy-ready policy of every agent of ``env`` that a run of ``cfg`` acts with, its
    learners carrying ``weights`` (a run's checkpoint weights) and its fixed groups acting as
    their group says (random ones from a generator seeded with ``cfg.seed``)."""
    from xmarl.core.device import select_device
    from xmarl.training.groups import (
        AgentGroups,
        FixedGroups,
        GroupPolicy,
        frozen_policies,
        learner_slots,
        part_weights,
        sample_available,
    )

    registry.get("runtime", "configure", cfg.backend)(cfg.train.threads)
    select_device(cfg.backend, cfg.device)
    groups = AgentGroups.resolve(cfg.groups, env.agents)
    members = []
    for ls in learner_slots(cfg, groups, env.spec):
        learner = registry.get("learner", ls.method, cfg.backend)(ls.slots.spec, ls.config,
                                                                  part_weights(weights, ls.name))
        members.append((ls.slots, learner.policy))
    fixed = FixedGroups(groups, lambda rng, avail: sample_available(env, rng, avail),
                        np.random.default_rng(cfg.seed), frozen_policies(cfg, groups, env.spec, load_weights),
                        env.heuristic_actions)
    return GroupPolicy(members, env.spec, fixed)
