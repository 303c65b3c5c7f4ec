"""Action selection from raw policy outputs, in numpy, shared by every backend.

Categorical entries (discrete actions, and the discrete part of hybrid ones): logits of the
other entries are masked; exploring samples by the Gumbel-max trick (an exact categorical
sample), greedy takes the arg-max. Continuous entries: the bounded action is
``low + (tanh(z) + 1) / 2 * (high - low)``; exploring adds Gaussian noise of
``noise_scale`` times the half-range and clips to the bounds.

What :func:`select_actions` returns, by ``spec.action_kind``:

* ``"discrete"``: ``[E, A]`` int64 choices;
* ``"continuous"``: ``[E, A, act_dim]`` float32 points (zero padding after ``act_dims[i]``);
* ``"hybrid"``: ``[E, A, act_dim]`` float32 in the critic's layout, per agent
  ``[one-hot of the choice (n_i entries), the continuous part (d_i entries), zero padding]``.
  The env adapter sends agent ``i`` the tuple ``(argmax(a[:n_i]), a[n_i:n_i + d_i])``.
"""

from __future__ import annotations

import numpy as np

from xmarl.core.spaces import AgentSpec

NEG_INF = -1e9


def masked_logits(spec: AgentSpec, logits: np.ndarray) -> np.ndarray:
    """Logits of the categorical entries; every other entry (continuous or padding) is ``NEG_INF``."""
    return np.where(spec.disc_mask > 0, logits, NEG_INF)


def squash(spec: AgentSpec, z: np.ndarray) -> np.ndarray:
    """Bounded continuous values (zero on entries without bounds, i.e. categorical or padding)."""
    return spec.low + (np.tanh(z) + 1.0) * 0.5 * (spec.high - spec.low)


def _choices(spec: AgentSpec, out: np.ndarray, explore: bool, rng: np.random.Generator | None) -> np.ndarray:
    logits = masked_logits(spec, out)
    if explore:
        assert rng is not None, "exploration needs an rng"
        logits = logits + gumbel(rng, logits.shape)
    return np.argmax(logits, axis=-1)


def _bounded(spec: AgentSpec, out: np.ndarray, explore: bool, rng: np.random.Generator | None,
             noise_scale: float) -> np.ndarray:
    act = squash(spec, out)
    if explore and noise_scale > 0:
        assert rng is not None, "exploration needs an rng"
        half = 0.5 * (spec.high - spec.low)
        act = np.clip(act + rng.standard_normal(act.shape).astype(np.float32) * noise_scale * half,
                      spec.low, spec.high)
    return act.astype(np.float32)


def select_actions(spec: AgentSpec, out: np.ndarray, explore: bool,
                   rng: np.random.Generator | None, noise_scale: float = 0.0) -> np.ndarray:
    """Env actions from raw outputs ``[E, A, act_dim]``; see the module docstring for the layout."""
    if spec.discrete:
        return _choices(spec, out, explore, rng)
    if spec.hybrid:
        onehot = one_hot(_choices(spec, out, explore, rng), spec.act_dim)
        return np.where(spec.disc_mask > 0, onehot, _bounded(spec, out, explore, rng, noise_scale))
    return _bounded(spec, out, explore, rng, noise_scale)


def gumbel(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Standard Gumbel noise ``-log(-log(u))`` as float32."""
    u = rng.random(shape)
    return (-np.log(-np.log(np.clip(u, 1e-10, 1.0 - 1e-10)))).astype(np.float32)


def one_hot(actions: np.ndarray, n: int) -> np.ndarray:
    return np.eye(n, dtype=np.float32)[actions]
