"""Representations in TensorFlow."""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from xmarl import registry
from xmarl.backends.tensorflow import ops
from xmarl.core import bicnet
from xmarl.core.commnet import representation_shapes
from xmarl.core.interfaces import Representation
from xmarl.core.layout import Layout, gru_shapes, mlp_shapes
from xmarl.docschema import documented


def _variables(layout: Layout) -> dict[str, tf.Variable]:
    """One variable per layout entry, in order, in the canonical shape."""
    return {k: ops.parameter(s, name=k.replace("/", "_")) for k, s in layout.items()}


@registry.register("representation", "mlp", backend="tensorflow")
@documented
class MLP(tf.Module, Representation):
    def __init__(self, in_dim: int, hidden_sizes: Sequence[int], groups: int = 1, name: str | None = None) -> None:
        super().__init__(name=name)
        self.params = _variables(mlp_shapes("", groups, in_dim, hidden_sizes, None))
        self.kernels = [v for k, v in self.params.items() if k.endswith("kernel")]
        self.biases = [v for k, v in self.params.items() if k.endswith("bias")]
        self.in_dim, self.groups = in_dim, groups
        self.output_dim = hidden_sizes[-1] if hidden_sizes else in_dim

    def canonical(self) -> dict[str, tf.Variable]:
        """Variables under canonical relative names."""
        return dict(self.params)

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        for w, b in zip(self.kernels, self.biases):
            x = tf.nn.relu(tf.matmul(x, w) + b[:, None, :])
        return x


@registry.register("representation", "gru", backend="tensorflow")
@documented
class GRU(tf.Module, Representation):
    def __init__(self, in_dim: int, hidden_dim: int, groups: int = 1, name: str | None = None) -> None:
        super().__init__(name=name)
        self.params = _variables(gru_shapes("gru", groups, in_dim, hidden_dim))
        self.kernel, self.recurrent_kernel, self.bias, self.recurrent_bias = self.params.values()
        self.output_dim = hidden_dim

    def canonical(self) -> dict[str, tf.Variable]:
        return dict(self.params)

    def cell(self, gx: tf.Tensor, h: tf.Tensor) -> tf.Tensor:
        """One step from the input projection ``gx`` ``[A, B, 3H]`` and the hidden ``h`` ``[A, B, H]``."""
        gh = tf.matmul(h, self.recurrent_kernel) + self.recurrent_bias[:, None, :]
        xr, xz, xn = tf.split(gx, 3, axis=-1)
        hr, hz, hn = tf.split(gh, 3, axis=-1)
        r, z = tf.sigmoid(xr + hr), tf.sigmoid(xz + hz)
        n = tf.tanh(xn + r * hn)
        return (1.0 - z) * n + z * h

    def __call__(self, x: tf.Tensor, h: tf.Tensor) -> tf.Tensor:
        """Hidden states ``[A, B, T, H]`` for inputs ``[A, B, T, in]`` from ``h`` ``[A, B, H]``;
        one graph for any ``T`` (the recurrence is a ``tf.scan`` over time)."""
        A, (_, in_dim, H3), shape = x.shape[0], self.kernel.shape, tf.shape(x)
        gx = tf.matmul(tf.reshape(x, [A, -1, in_dim]), self.kernel) + self.bias[:, None, :]
        gx = tf.transpose(tf.reshape(gx, tf.stack([A, shape[1], shape[2], H3])), [2, 0, 1, 3])  # [T, A, B, 3H]
        hs = tf.scan(lambda h_prev, g: self.cell(g, h_prev), gx, initializer=h)  # the recurrence over time
        return tf.transpose(hs, [1, 2, 0, 3])


@registry.register("representation", "commnet", backend="tensorflow")
@documented
class CommNet(tf.Module, Representation):
    def __init__(self, in_dim: int, hidden_size: int, comm_steps: int, groups: int = 1, *,
                 activation: str = "tanh", embedding: bool = False, skip_connection: bool = False,
                 recurrent: bool = False, communicate: bool = True) -> None:
        super().__init__()
        self.params = _variables(representation_shapes(in_dim, hidden_size, comm_steps, groups,
                                                       skip_connection=skip_connection, recurrent=recurrent,
                                                       communicate=communicate))
        self.in_dim, self.groups, self.output_dim, self.comm_steps = in_dim, groups, hidden_size, comm_steps
        self.sigma = tf.tanh if activation == "tanh" else tf.nn.relu
        self.embedding, self.recurrent, self.communicate = embedding, recurrent, communicate
        p = self.params
        self.has_comm = [f"comm_{i}/comm/kernel" in p for i in range(comm_steps)]
        self.skip = "comm_0/skip/kernel" in p
        self.encoder_kernel, self.encoder_bias = p["encoder/kernel"], p["encoder/bias"]
        self.hidden_kernels = [p[f"comm_{i}/hidden/kernel"] for i in range(comm_steps)]
        self.hidden_biases = [p[f"comm_{i}/hidden/bias"] for i in range(comm_steps)]
        self.comm_kernels = [p.get(f"comm_{i}/comm/kernel") for i in range(comm_steps)]
        self.skip_kernels = [p.get(f"comm_{i}/skip/kernel") for i in range(comm_steps)]

    def canonical(self) -> dict[str, tf.Variable]:
        """Variables under canonical relative names."""
        return dict(self.params)

    @staticmethod
    def dense(x: tf.Tensor, kernel: tf.Variable, bias: tf.Variable | None = None) -> tf.Tensor:
        """``x [A, N, in]`` times ``kernel [G, in, out]`` (one 2-D matmul when G = 1), plus ``bias [G, out]``."""
        A, d, out = x.shape[0], kernel.shape[1], kernel.shape[2]
        if kernel.shape[0] == 1:
            y = tf.reshape(tf.matmul(tf.reshape(x, [-1, d]), kernel[0]), [A, -1, out])
        else:
            y = tf.matmul(x, kernel)
        return y if bias is None else y + bias[:, None, :]

    def encode(self, x: tf.Tensor) -> tf.Tensor:
        """``h^0 = sigma(r(s))``: a dense layer, or a row of the table per integer id ``x[..., 0]``."""
        if not self.embedding:
            return self.sigma(self.dense(x, self.encoder_kernel, self.encoder_bias))
        A = x.shape[0]
        ids = tf.cast(x[..., 0], tf.int32)
        if self.groups > 1:  # agent a reads its own table: rows a * n_ids + id of the stacked tables
            ids = ids + self.in_dim * tf.range(A)[:, None]
        table = tf.reshape(self.encoder_kernel, [-1, self.output_dim])
        return self.sigma(tf.gather(table, ids) + self.encoder_bias[:, None, :])

    @staticmethod
    def comm(h: tf.Tensor, agent_mask: tf.Tensor, comm_mask: tf.Tensor | None) -> tf.Tensor:
        """``c_j``: mean of ``h_j'`` over the active ``j' != j`` that ``j`` hears (0 if none).
        ``h [A, N, H]``, ``agent_mask [A, N, 1]``, ``comm_mask`` None (all others), ``[A, A]`` or
        ``[N, A, A]`` (zero diagonal)."""
        hm = h * agent_mask
        if comm_mask is None:  # sum minus self: linear in the number of agents
            total = tf.reduce_sum(hm, 0, keepdims=True) - hm
            return total / tf.maximum(tf.reduce_sum(agent_mask, 0, keepdims=True) - agent_mask, 1.0)
        A, H = h.shape[0], h.shape[2]
        if comm_mask.shape.rank == 2:
            total = tf.reshape(tf.matmul(comm_mask, tf.reshape(hm, [A, -1])), [A, -1, H])
            count = tf.reshape(tf.matmul(comm_mask, tf.reshape(agent_mask, [A, -1])), [A, -1, 1])
        else:
            total = tf.transpose(tf.matmul(comm_mask, tf.transpose(hm, [1, 0, 2])), [1, 0, 2])
            count = tf.transpose(tf.matmul(comm_mask, tf.transpose(agent_mask, [1, 0, 2])), [1, 0, 2])
        return total / tf.maximum(count, 1.0)

    def __call__(self, x: tf.Tensor, agent_mask: tf.Tensor, comm_mask: tf.Tensor | None = None,
                 state: tf.Tensor | None = None) -> list[tf.Tensor]:
        """Hidden states ``[h^0, .., h^K]``, each ``[A, N, H]``, for inputs ``x [A, N, in]`` and
        agent mask ``[A, N, 1]``; a recurrent net starts from ``state`` (``h^K`` of the previous step)."""
        e = self.encode(x)
        h = state if self.recurrent else e
        hiddens = [h]
        c = self.comm(h, agent_mask, comm_mask) if self.recurrent and self.communicate else None
        for i in range(self.comm_steps):
            z = self.dense(h, self.hidden_kernels[i], self.hidden_biases[i])
            if self.has_comm[i]:
                z = z + self.dense(c, self.comm_kernels[i])
            if self.skip:
                z = z + self.dense(e, self.skip_kernels[i])
            h = self.sigma(z)
            hiddens.append(h)
            if self.communicate and i + 1 < self.comm_steps:
                c = self.comm(h, agent_mask, comm_mask)
        return hiddens


@registry.register("representation", "bicnet", backend="tensorflow")
@documented
class BiCNet(tf.Module, Representation):
    def __init__(self, in_dim: int, hidden_size: int, groups: int = 1) -> None:
        super().__init__()
        self.torso = MLP(in_dim, [hidden_size], groups)
        self.forward_gru, self.backward_gru = GRU(hidden_size, hidden_size), GRU(hidden_size, hidden_size)
        self.hidden_size, self.output_dim = hidden_size, 2 * hidden_size

    def canonical(self) -> dict[str, tf.Variable]:
        return bicnet.canonical(self.forward_gru.canonical(), self.backward_gru.canonical(), self.torso.canonical())

    @staticmethod
    def sweep(gru: GRU, e: tf.Tensor, alive: tf.Tensor, reverse: bool = False) -> tf.Tensor:
        """One direction of the recurrence over the agent axis: ``e [A, B, H]`` encodings, ``alive
        [A, B, 1]``; a dead agent's position carries the state through and outputs zeros."""
        gx = tf.matmul(e, gru.kernel) + gru.bias[:, None, :]  # every position's input projection at once

        def step(h: tf.Tensor, inputs: tuple[tf.Tensor, tf.Tensor]) -> tf.Tensor:
            g, m = inputs
            return m * gru.cell(g[None], h[None])[0] + (1.0 - m) * h

        # the recurrence over the agent axis (the batch is batched); reverse=True runs agents N..1
        hs = tf.scan(step, (gx, alive), initializer=tf.zeros_like(e[0]), reverse=reverse)
        return hs * alive

    def __call__(self, x: tf.Tensor, alive: tf.Tensor) -> tf.Tensor:
        """Features ``[f_i, g_i]`` ``[A, B, 2H]`` for inputs ``x [A, B, in]`` in the env's agent order."""
        e = self.torso(x)
        return tf.concat([self.sweep(self.forward_gru, e, alive), self.sweep(self.backward_gru, e, alive, True)], -1)
