"""Action selection from raw policy outputs, in numpy, shared by every backend.

Discrete: logits of padded action entries are masked; exploring samples by the Gumbel-max
trick (an exact categorical sample), greedy takes the arg-max. Continuous: the bounded
action is ``low + (tanh(z) + 1) / 2 * (high - low)``; exploring adds Gaussian noise of
``noise_scale`` times the half-range and clips to the bounds.
"""

from __future__ import annotations

import numpy as np

from xmarl.core.spaces import AgentSpec

NEG_INF = -1e9


def masked_logits(spec: AgentSpec, logits: np.ndarray) -> np.ndarray:
    return np.where(spec.act_mask > 0, logits, NEG_INF)


def squash(spec: AgentSpec, z: np.ndarray) -> np.ndarray:
    return spec.low + (np.tanh(z) + 1.0) * 0.5 * (spec.high - spec.low)


def select_actions(spec: AgentSpec, out: np.ndarray, explore: bool,
                   rng: np.random.Generator | None, noise_scale: float = 0.0) -> np.ndarray:
    """``[E, A]`` int actions (discrete) or ``[E, A, act_dim]`` floats (continuous)."""
    if spec.discrete:
        logits = masked_logits(spec, out)
        if explore:
            assert rng is not None, "exploration needs an rng"
            logits = logits + gumbel(rng, logits.shape)
        return np.argmax(logits, axis=-1)
    act = squash(spec, out)
    if explore and noise_scale > 0:
        assert rng is not None, "exploration needs an rng"
        half = 0.5 * (spec.high - spec.low)
        act = np.clip(act + rng.standard_normal(act.shape).astype(np.float32) * noise_scale * half,
                      spec.low, spec.high)
    return act.astype(np.float32)


def gumbel(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Standard Gumbel noise ``-log(-log(u))`` as float32."""
    u = rng.random(shape)
    return (-np.log(-np.log(np.clip(u, 1e-10, 1.0 - 1e-10)))).astype(np.float32)


def one_hot(actions: np.ndarray, n: int) -> np.ndarray:
    return np.eye(n, dtype=np.float32)[actions]
