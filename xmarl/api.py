"""The public functions: :func:`run` and :func:`load_config`."""

from __future__ import annotations

import os
from typing import Any

from xmarl import registry
from xmarl.config import load_config
from xmarl.errors import path_errors
from xmarl.training.checkpoint import latest_checkpoint
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


__all__ = ["run", "load_config", "RunResult"]
