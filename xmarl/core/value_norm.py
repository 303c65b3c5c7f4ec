"""Running statistics of value targets, for value heads that regress on returns.

A value head trained on raw returns must reach their scale (e.g. about -10 per agent on
simple_spread with gamma 0.9) from a small initialisation. With Adam every parameter moves by
about ``lr`` per update, so the head's bias alone needs thousands of updates, and the cheaper
way down the loss is to push a shared torso's tanh units to +-1 in every state: the torso
saturates, and a policy head reading the same features becomes state-independent.
Normalising the targets (van Hasselt et al. 2016, "Learning values across many orders of
magnitude"; the value normalisation of MAPPO, Yu et al. 2022) removes that pressure: the head
predicts ``(R - mu) / sigma`` and ``V = mu + sigma * head``.

:class:`ValueNorm` keeps ``mu`` and ``sigma`` as debiased exponential moving averages of the
targets' first and second moments, in float64 numpy, identically for every backend; the learner
passes ``value_stats = [mu, sigma]`` to its backend with each batch and saves the moments with
its optimiser state (exact resume).
"""

from __future__ import annotations

import numpy as np

#: weight of the old moments at each update (about the last 100 batches count)
DECAY = 0.99
#: smallest variance used, so that nearly constant targets are not blown up
MIN_VAR = 1e-2


class ValueNorm:
    """Debiased moving averages of the mean and the mean square of value targets."""

    KEYS = ("mean", "mean_sq", "debias")

    def __init__(self, decay: float = DECAY, min_var: float = MIN_VAR) -> None:
        self.decay, self.min_var = decay, min_var
        self.mean = self.mean_sq = self.debias = 0.0

    def update(self, targets: np.ndarray, weights: np.ndarray) -> None:
        """Fold in one batch of targets, each counted with its weight (e.g. step and agent masks)."""
        w = np.broadcast_to(weights, targets.shape).astype(np.float64)
        total = w.sum()
        if total <= 0:
            return
        x = targets.astype(np.float64)
        d = self.decay
        self.mean = d * self.mean + (1 - d) * float((w * x).sum() / total)
        self.mean_sq = d * self.mean_sq + (1 - d) * float((w * x * x).sum() / total)
        self.debias = d * self.debias + (1 - d)

    def stats(self) -> np.ndarray:
        """``[mu, sigma]`` as float32 (``[0, 1]``, the identity, before any update)."""
        if self.debias == 0.0:
            return np.array([0.0, 1.0], np.float32)
        mu = self.mean / self.debias
        var = max(self.mean_sq / self.debias - mu * mu, self.min_var)
        return np.array([mu, np.sqrt(var)], np.float32)

    def state_dict(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}/{k}": np.array(getattr(self, k), np.float64) for k in self.KEYS}

    def load_state_dict(self, state: dict[str, np.ndarray], prefix: str) -> None:
        for k in self.KEYS:
            setattr(self, k, float(state[f"{prefix}/{k}"]))


#: the identity statistics, for learners that do not normalise
IDENTITY = np.array([0.0, 1.0], np.float32)
