"""xmarl's optimiser definitions in TensorFlow.

Adam: ``t += 1; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
w -= lr * m_hat / (sqrt(v_hat) + eps)`` with ``m_hat = m / (1 - b1^t)``, ``v_hat = v / (1 - b2^t)``
(eps after bias correction). ``keras.optimizers.Adam`` adds eps before the bias correction,
so Adam is written out here.
Gradient clipping: per group (the leading axis of every parameter: one group with shared
weights, one per agent otherwise), scale by ``min(1, max_norm / (norm + 1e-6))``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from xmarl.docschema import documented


@documented
class Adam(tf.Module):
    def __init__(self, params: Sequence[tf.Variable], lr: float, betas: Sequence[float], eps: float,
                 name: str | None = None) -> None:
        super().__init__(name=name)
        self.params = list(params)
        self.b1, self.b2, self.eps = float(betas[0]), float(betas[1]), float(eps)
        # a variable, so that a schedule changes the rate without retracing the compiled steps
        self.lr = tf.Variable(float(lr), dtype=tf.float32, trainable=False, name="lr")
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.m = [tf.Variable(tf.zeros_like(p), trainable=False, name="m") for p in self.params]
        self.v = [tf.Variable(tf.zeros_like(p), trainable=False, name="v") for p in self.params]

    def apply(self, grads: Sequence[tf.Tensor]) -> None:
        """One Adam step on ``params`` with ``grads`` (in the same order)."""
        self.step.assign_add(1)
        t = tf.cast(self.step, tf.float64)  # bias corrections in double precision, as torch does
        bc1 = tf.cast(1.0 - self.b1 ** t, tf.float32)
        bc2 = tf.cast(1.0 - self.b2 ** t, tf.float32)
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m.assign(self.b1 * m + (1.0 - self.b1) * g)
            v.assign(self.b2 * v + (1.0 - self.b2) * tf.square(g))
            p.assign_sub(self.lr * (m / bc1) / (tf.sqrt(v / bc2) + self.eps))

    def set_lr(self, lr: float) -> None:
        """The learning rate of the next steps (a schedule sets it between steps)."""
        self.lr.assign(float(lr))

    def get_state(self, names: Sequence[str], shapes: Sequence[tuple[int, ...]]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for name, shape, m, v in zip(names, shapes, self.m, self.v):
            out[f"{name}/m"] = m.numpy().reshape(shape).copy()
            out[f"{name}/v"] = v.numpy().reshape(shape).copy()
        out["step"] = np.array(int(self.step.numpy()), np.int64)
        return out

    def set_state(self, names: Sequence[str], state: dict[str, np.ndarray]) -> None:
        step = int(state["step"])
        self.step.assign(step)
        for name, m, v in zip(names, self.m, self.v):
            if step == 0:  # no moments yet
                m.assign(tf.zeros_like(m))
                v.assign(tf.zeros_like(v))
                continue
            m.assign(np.asarray(state[f"{name}/m"], np.float32).reshape(m.shape))
            v.assign(np.asarray(state[f"{name}/v"], np.float32).reshape(v.shape))


def clip_by_group_norm(grads: Sequence[tf.Tensor], max_norm: float | None) -> tuple[list[tf.Tensor], tf.Tensor]:
    """Clip gradients per group; returns ``(clipped gradients, pre-clip norms [G])``."""
    G = grads[0].shape[0]
    norms = tf.sqrt(tf.add_n([tf.reduce_sum(tf.reshape(tf.square(g), [G, -1]), axis=1) for g in grads]))
    if max_norm is None:
        return list(grads), norms
    scale = tf.minimum(max_norm / (norms + 1e-6), 1.0)
    return [g * tf.reshape(scale, [G] + [1] * (g.shape.rank - 1)) for g in grads], norms
