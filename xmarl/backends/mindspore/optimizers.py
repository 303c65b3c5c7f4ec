"""xmarl's optimiser definitions in MindSpore.

Adam: ``m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; w -= lr * m_hat / (sqrt(v_hat) + eps)``
(eps after bias correction, as in PyTorch; ``mindspore.nn.Adam`` adds eps before the bias
correction, so it is written out here). Gradient clipping: per group (the leading axis of
every parameter: one group with shared weights, one per agent otherwise), scale by
``min(1, max_norm / (norm + 1e-6))``.
"""

from __future__ import annotations

from collections.abc import Sequence

import mindspore as ms
import numpy as np
from mindspore import Parameter, ParameterTuple, Tensor, nn, ops

from xmarl.docschema import documented


@documented
class Adam(nn.Cell):
    def __init__(self, params: Sequence[Parameter], lr: float, betas: Sequence[float], eps: float,
                 name: str = "adam") -> None:
        super().__init__(auto_prefix=False)
        self.params = ParameterTuple(params)
        self.m = self.params.clone("m", "zeros")
        self.v = self.params.clone("v", "zeros")
        self.step = Parameter(Tensor(0.0, ms.float32), name=f"{name}.step", requires_grad=False)
        b1, b2 = float(betas[0]), float(betas[1])
        self.lr, self.eps, self.beta1, self.beta2 = float(lr), float(eps), b1, b2
        # A graph folds arithmetic on Python floats in float32 (1 - 0.999 would be off by 1e-5
        # relative), so the constants are formed here in double precision, as PyTorch forms them.
        self.one_minus_beta1, self.one_minus_beta2 = 1.0 - b1, 1.0 - b2
        self.beta1_f64, self.beta2_f64 = Tensor(b1, ms.float64), Tensor(b2, ms.float64)  # for the bias corrections

    def construct(self, grads: tuple[Tensor, ...]) -> Tensor:
        step = self.step + 1.0
        ops.assign(self.step, step)
        t = ops.cast(step, ms.float64)
        bc1 = ops.cast(1.0 - ops.pow(self.beta1_f64, t), ms.float32)
        bc2 = ops.cast(1.0 - ops.pow(self.beta2_f64, t), ms.float32)
        for w, m, v, g in zip(self.params, self.m, self.v, grads):
            m_new = self.beta1 * m + self.one_minus_beta1 * g
            v_new = self.beta2 * v + self.one_minus_beta2 * ops.square(g)
            ops.assign(m, m_new)
            ops.assign(v, v_new)
            ops.assign(w, w - self.lr * (m_new / bc1) / (ops.sqrt(v_new / bc2) + self.eps))
        return step

    def get_state(self, names: Sequence[str], shapes: Sequence[tuple[int, ...]]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for name, shape, m, v in zip(names, shapes, self.m, self.v):
            out[f"{name}/m"] = m.asnumpy().reshape(shape).copy()
            out[f"{name}/v"] = v.asnumpy().reshape(shape).copy()
        out["step"] = np.array(int(self.step.asnumpy()), np.int64)
        return out

    def set_state(self, names: Sequence[str], state: dict[str, np.ndarray]) -> None:
        step = int(state["step"])
        for name, m, v in zip(names, self.m, self.v):
            for key, moment in (("m", m), ("v", v)):
                value = np.zeros(moment.shape, np.float32) if step == 0 else state[f"{name}/{key}"]
                moment.set_data(Tensor(np.asarray(value, np.float32).reshape(moment.shape)))
        self.step.set_data(Tensor(float(step), ms.float32))


def clip_by_group_norm(grads: tuple[Tensor, ...], max_norm: float | None) -> tuple[tuple[Tensor, ...], Tensor]:
    """Gradients clipped per group (no clipping when ``max_norm`` is None) and the pre-clip norms ``[G]``."""
    G = grads[0].shape[0]
    norms = ops.sqrt(ops.addn([ops.square(g).reshape(G, -1).sum(1) for g in grads]))
    if max_norm is None:
        return grads, norms
    scale = ops.minimum(max_norm / (norms + 1e-6), 1.0)
    return tuple([g * scale.reshape((G,) + (1,) * (g.ndim - 1)) for g in grads]), norms
