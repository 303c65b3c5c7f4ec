"""xmarl's optimiser definitions in PyTorch.

Adam: ``m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; w -= lr * m_hat / (sqrt(v_hat) + eps)``
(eps after bias correction). ``torch.optim.Adam`` computes exactly this, so it is used as is.
Gradient clipping: per group (the leading axis of every parameter: one group with shared
weights, one per agent otherwise), scale by ``min(1, max_norm / (norm + 1e-6))``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch

from xmarl.backends.torch import ops
from xmarl.docschema import documented


@documented
class Adam(torch.optim.Adam):
    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float, betas: Sequence[float], eps: float,
                 name: str | None = None) -> None:
        self.name = name  # for messages; every backend's Adam takes the same arguments
        super().__init__(list(params), lr=lr, betas=(float(betas[0]), float(betas[1])), eps=eps, foreach=False)

    def set_lr(self, lr: float) -> None:
        """The learning rate of the next steps (a schedule sets it between steps)."""
        for group in self.param_groups:
            group["lr"] = float(lr)

    def get_state(self, names: Sequence[str], shapes: Sequence[tuple[int, ...]]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        params = self.param_groups[0]["params"]
        step = 0
        for name, shape, p in zip(names, shapes, params):
            st = self.state.get(p, {})
            out[f"{name}/m"] = ops.numpy(st["exp_avg"] if st else torch.zeros_like(p)).reshape(shape).copy()
            out[f"{name}/v"] = ops.numpy(st["exp_avg_sq"] if st else torch.zeros_like(p)).reshape(shape).copy()
            step = int(st["step"]) if st else 0
        out["step"] = np.array(step, np.int64)
        return out

    def set_state(self, names: Sequence[str], state: dict[str, np.ndarray]) -> None:
        step = int(state["step"])
        for name, p in zip(names, self.param_groups[0]["params"]):
            if step == 0:
                self.state.pop(p, None)
                continue
            self.state[p] = {
                "step": torch.tensor(float(step)),  # on the CPU, as torch.optim.Adam keeps it
                "exp_avg": ops.tensor(np.array(state[f"{name}/m"], np.float32)).reshape(p.shape),
                "exp_avg_sq": ops.tensor(np.array(state[f"{name}/v"], np.float32)).reshape(p.shape),
            }


@torch.no_grad()
def clip_by_group_norm(params: Sequence[torch.nn.Parameter], max_norm: float | None) -> torch.Tensor:
    """Clip gradients in place per group; returns the pre-clip norms ``[G]``."""
    grads = [p.grad for p in params]
    G = grads[0].shape[0]
    norms = torch.sqrt(sum(g.reshape(G, -1).pow(2).sum(1) for g in grads))
    if max_norm is not None:
        scale = torch.clamp(max_norm / (norms + 1e-6), max=1.0)
        for g in grads:
            g.mul_(scale.reshape((G,) + (1,) * (g.dim() - 1)))
    return norms
