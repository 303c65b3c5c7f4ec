"""The three interfaces every backend implements.

Boundaries between the core and a backend are numpy arrays and plain dicts. Inside a
backend everything is that framework's tensors. The interfaces are plain base classes (no
ABC metaclass) so that a backend class can also derive from its framework's module class
(``torch.nn.Module``, ``tf.Module``, ``mindspore.nn.Cell``).

Canonical weights: ``get_weights()`` returns ``{name: array}`` with names such as
``"actor/torso/dense_0/kernel"`` and dense kernels laid out ``[groups, in, out]`` (groups is 1
with parameter sharing, else the number of agents). The names and layouts are identical in
every backend, which gives cross-framework checkpoints and parity tests.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xmarl.core.spaces import AgentSpec
from xmarl.docschema import documented
from xmarl.errors import WeightsError

Weights = dict[str, np.ndarray]
Batch = dict[str, np.ndarray]


@documented
class Representation:
    output_dim: int


@documented
class Policy:
    spec: AgentSpec

    def forward_numpy(self, obs: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        """Raw outputs ``[E, A, act_dim]`` for observations ``[E, A, obs_dim]`` and the next
        recurrent state (``None`` for feed-forward policies)."""
        raise NotImplementedError

    def act(self, obs: np.ndarray, state: Any = None, explore: bool = False,
            rng: np.random.Generator | None = None, noise_scale: float = 0.0,
            avail: np.ndarray | None = None, agent_mask: np.ndarray | None = None) -> tuple[np.ndarray, Any]:
        """Actions for observations ``[E, A, obs_dim]``; returns ``(actions, state)``.

        ``state`` is a recurrent policy's state (``None`` otherwise); ``noise_scale`` is the
        method's exploration amount; ``avail`` ``[E, A, act_dim]`` marks available discrete
        actions where the env reports them; ``agent_mask`` ``[E, A]`` (1 = in the episode) gives
        the agents that have left action 0 (a zero vector for continuous actions)."""
        from xmarl.core.actions import NEG_INF, select_actions

        out, state = self.forward_numpy(np.ascontiguousarray(obs, dtype=np.float32), state)
        if avail is not None and self.spec.discrete:
            out = np.where(avail > 0, out, NEG_INF)
        actions = select_actions(self.spec, out, explore=explore, rng=rng, noise_scale=noise_scale)
        return mask_actions(actions, agent_mask), state


def mask_actions(actions: np.ndarray, agent_mask: np.ndarray | None) -> np.ndarray:
    """``actions`` (``[E, A]`` or ``[E, A, d]``) with 0 for the agents that ``agent_mask``
    ``[E, A]`` marks as out of the episode (unchanged when it is None)."""
    if agent_mask is None:
        return actions
    keep = np.asarray(agent_mask).reshape(agent_mask.shape + (1,) * (actions.ndim - 2)) > 0
    return np.where(keep, actions, np.zeros((), actions.dtype))


@documented
class Learner:
    backend: str
    policy: Policy
    nets: dict[str, Any]
    shapes: dict[str, tuple[int, ...]]
    optimizers: dict[str, Any]

    def update(self, batch: Batch) -> dict[str, float]:
        """One update on a batch of numpy arrays; returns scalar metrics."""
        raise NotImplementedError

    def gradients(self, batch: Batch) -> Weights:
        """Gradients of every loss at the current weights, under canonical names (for parity)."""
        raise NotImplementedError

    def diagnostics(self, batch: Batch) -> dict[str, np.ndarray]:
        """Intermediate quantities of one update at the current weights (for tests and parity)."""
        raise NotImplementedError

    def get_weights(self) -> Weights:
        """All network weights (including targets) as canonical numpy arrays."""
        raise NotImplementedError

    def set_weights(self, weights: Weights) -> None:
        """Load canonical numpy arrays; every name must be present with the canonical shape."""
        raise NotImplementedError

    def get_optimizer_state(self) -> Weights:
        """Optimiser moments (``opt/<param>/m``, ``/v``) and step counts (``opt/<net>/step``)."""
        raise NotImplementedError

    def set_optimizer_state(self, state: Weights) -> None:
        """Load what :meth:`get_optimizer_state` returned."""
        raise NotImplementedError


def check_weights(expected: dict[str, tuple[int, ...]], weights: Weights, where: str) -> None:
    """Raise a one-line error if ``weights`` does not match ``expected`` names and shapes."""
    missing = sorted(set(expected) - set(weights))
    extra = sorted(set(weights) - set(expected))
    if missing or extra:
        raise WeightsError(f"{where}: weights do not match: missing {missing[:3]}, unexpected {extra[:3]}")
    for k, shape in expected.items():
        if tuple(np.shape(weights[k])) != tuple(shape):
            raise WeightsError(f"{where}: weight '{k}' has shape {np.shape(weights[k])}, expected {tuple(shape)}")
