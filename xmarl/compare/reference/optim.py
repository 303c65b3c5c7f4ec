"""The optimiser contract, written once in numpy: every backend's ``optimizers.py`` must compute
exactly this (tests compare them); frameworks' built-ins differ (Keras and MindSpore add Adam's
eps before bias correction), so backends implement it themselves where needed.
"""

from __future__ import annotations

import numpy as np


def adam_step(w: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, t: int, lr: float,
              betas: tuple[float, float], eps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One Adam step at step count ``t`` (1-based): eps is added after bias correction."""
    b1, b2 = betas
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    m_hat = m / (1 - b1**t)
    v_hat = v / (1 - b2**t)
    return w - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


def clip_by_group_norm(grads: list[np.ndarray], max_norm: float | None) -> tuple[list[np.ndarray], np.ndarray]:
    """Scale each group (leading axis) of the gradients to global norm at most ``max_norm``:
    ``g *= min(1, max_norm / (norm + 1e-6))``. Returns the clipped gradients and the norms."""
    G = grads[0].shape[0]
    norms = np.sqrt(sum((g.reshape(G, -1).astype(np.float64) ** 2).sum(1) for g in grads))
    if max_norm is None:
        return grads, norms
    scale = np.minimum(1.0, max_norm / (norms + 1e-6))
    return [g * scale.reshape((G,) + (1,) * (g.ndim - 1)) for g in grads], norms
