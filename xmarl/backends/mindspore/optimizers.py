"""xmarl's optimiser definitions in MindSpore.

Adam: ``m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; w -= lr * m_hat / (sqrt(v_hat) + eps)``
(eps after bias correction, as in PyTorch; ``mindspore.nn.Adam`` adds eps before the bias
correction, so it is written out here). Gradient clipping: per group (the leading axis of
every parameter: one group with shared weights, one per agent otherwise), scale by
``min(1, max_norm / (norm + 1e-6))``.

Adam keeps the moments of all its parameters in one flat vector each and does its arithmetic
once on the concatenated gradients: on CPU a MindSpore graph pays a launch cost per kernel that
dwarfs the arithmetic on these small tensors, so one set of element-wise kernels over the whole
vector replaces one set per parameter. The numbers are the same bit for bit (the arithmetic is
element-wise), and ``get_state``/``set_state`` still exchange one ``m`` and ``v`` per parameter.
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
        # the moments of every parameter, flattened and concatenated in the order of ``params``
        self.sizes = tuple(int(np.prod(p.shape)) for p in self.params)
        self.offsets = tuple(int(o) for o in np.cumsum((0,) + self.sizes))
        n = self.offsets[-1]
        self.m = Parameter(Tensor(np.zeros(n, np.float32)), name=f"{name}.m", requires_grad=False)
        self.v = Parameter(Tensor(np.zeros(n, np.float32)), name=f"{name}.v", requires_grad=False)
        self.step = Parameter(Tensor(0.0, ms.float32), name=f"{name}.step", requires_grad=False)
        b1, b2 = float(betas[0]), float(betas[1])
        self.eps, self.beta1, self.beta2 = float(eps), b1, b2
        # a parameter, so that a schedule changes the rate without recompiling the graph
        self.lr = Parameter(Tensor(float(lr), ms.float32), name=f"{name}.lr", requires_grad=False)
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
        g = ops.cat([grad.reshape(-1) for grad in grads])
        m = self.beta1 * self.m + self.one_minus_beta1 * g
        v = self.beta2 * self.v + self.one_minus_beta2 * ops.square(g)
        ops.assign(self.m, m)
        ops.assign(self.v, v)
        delta = self.lr * (m / bc1) / (ops.sqrt(v / bc2) + self.eps)
        for w, d in zip(self.params, ops.split(delta, self.sizes)):
            ops.assign_sub(w, d.reshape(w.shape))
        return step

    def set_lr(self, lr: float) -> None:
        """The learning rate of the next steps (a schedule sets it between steps)."""
        self.lr.set_data(Tensor(float(lr), ms.float32))

    def _moments(self, moment: Parameter) -> list[np.ndarray]:
        flat = moment.asnumpy()
        return [flat[a:b] for a, b in zip(self.offsets[:-1], self.offsets[1:])]

    def get_state(self, names: Sequence[str], shapes: Sequence[tuple[int, ...]]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for name, shape, m, v in zip(names, shapes, self._moments(self.m), self._moments(self.v)):
            out[f"{name}/m"] = m.reshape(shape).copy()
            out[f"{name}/v"] = v.reshape(shape).copy()
        out["step"] = np.array(int(self.step.asnumpy()), np.int64)
        return out

    def set_state(self, names: Sequence[str], state: dict[str, np.ndarray]) -> None:
        step = int(state["step"])
        for key, moment in (("m", self.m), ("v", self.v)):
            if step == 0:
                flat = np.zeros(moment.shape, np.float32)
            else:
                flat = np.concatenate([np.asarray(state[f"{name}/{key}"], np.float32).reshape(size)
                                       for name, size in zip(names, self.sizes)])
            moment.set_data(Tensor(flat))
        self.step.set_data(Tensor(float(step), ms.float32))


def clip_by_group_norm(grads: tuple[Tensor, ...], max_norm: float | None) -> tuple[tuple[Tensor, ...], Tensor]:
    """Gradients clipped per group (no clipping when ``max_norm`` is None) and the pre-clip norms ``[G]``."""
    G = grads[0].shape[0]
    norms = ops.sqrt(ops.addn([ops.square(g).reshape(G, -1).sum(1) for g in grads]))
    if max_norm is None:
        return grads, norms
    scale = ops.minimum(max_norm / (norms + 1e-6), 1.0)
    return tuple([g * scale.reshape((G,) + (1,) * (g.ndim - 1)) for g in grads]), norms
