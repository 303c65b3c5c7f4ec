"""Representations in MindSpore."""

from __future__ import annotations

from collections.abc import Sequence

import mindspore as ms
from mindspore import Parameter, ParameterTuple, Tensor, nn, ops

from xmarl import registry
from xmarl.backends.mindspore import ops as ms_ops
from xmarl.core import bicnet
from xmarl.core.commnet import representation_shapes
from xmarl.core.interfaces import Representation
from xmarl.core.layout import Layout, gru_shapes, mlp_shapes
from xmarl.docschema import documented


def _parameters(layout: Layout) -> list[Parameter]:
    """One parameter per layout entry, in order, named after it; biases ``[G, out]`` are stored
    ``[G, 1, out]`` (they broadcast over the rows of agent-major inputs)."""
    return [ms_ops.parameter((s[0], 1, s[1]) if k.endswith("bias") else s, name=k.replace("/", "."))
            for k, s in layout.items()]


@registry.register("representation", "mlp", backend="mindspore")
@documented
class MLP(nn.Cell, Representation):
    def __init__(self, in_dim: int, hidden_sizes: Sequence[int], groups: int = 1) -> None:
        super().__init__()
        layout = mlp_shapes("", groups, in_dim, hidden_sizes, None)
        self.names = tuple(layout)
        params = _parameters(layout)
        self.kernels, self.biases = ParameterTuple(params[0::2]), ParameterTuple(params[1::2])
        self.in_dim, self.groups = in_dim, groups
        self.output_dim = hidden_sizes[-1] if hidden_sizes else in_dim

    def canonical(self) -> dict[str, Parameter]:
        """Parameters under canonical relative names (biases stored ``[G, 1, out]``)."""
        return dict(zip(self.names, (p for pair in zip(self.kernels, self.biases) for p in pair)))

    def construct(self, x: Tensor) -> Tensor:
        if self.groups == 1:  # one 2-D matmul over every agent's rows
            A, B, _ = x.shape
            x = x.reshape(A * B, self.in_dim)
            for w, b in zip(self.kernels, self.biases):
                x = ops.relu(_dense_2d(x, w, b))
            return x.reshape(A, B, self.output_dim)
        for w, b in zip(self.kernels, self.biases):
            x = ops.relu(ops.matmul(x, w) + b)
        return x


_MATMUL = ops.MatMul()  # its gradient multiplies transposed operands; ops.matmul's adds Transpose ops


def _dense_2d(x: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """``x @ w + b`` for rows ``x [N, in]`` and one group's weights ``w [1, in, out]``, ``b [1, 1, out]``."""
    return ops.bias_add(_MATMUL(x, w.reshape(w.shape[1], w.shape[2])), b.reshape(b.shape[2]))


def _linear(x: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """``x @ w + b`` for agent-major ``x [A, N, in]``, ``w [G, in, out]``, ``b [G, 1, out]``: one
    2-D matmul over every agent's rows when ``G`` is 1 (its gradient needs no transposes)."""
    if w.shape[0] == 1:
        A, N, _ = x.shape
        return _dense_2d(x.reshape(A * N, x.shape[2]), w, b).reshape(A, N, w.shape[2])
    return ops.matmul(x, w) + b


@registry.register("representation", "gru", backend="mindspore")
@documented
class GRU(nn.Cell, Representation):
    # In a graph the loop over time is unrolled for the batch's T; with one group every
    # projection is one 2-D matmul over every agent's rows.

    def __init__(self, in_dim: int, hidden_dim: int, groups: int = 1) -> None:
        super().__init__()
        layout = gru_shapes("gru", groups, in_dim, hidden_dim)
        self.names = tuple(layout)
        self.kernel, self.recurrent_kernel, self.bias, self.recurrent_bias = _parameters(layout)
        self.in_dim, self.groups = in_dim, groups
        self.output_dim = hidden_dim
        self.matmul = ops.MatMul()  # its gradient multiplies with transposed operands, no Transpose ops per step

    def canonical(self) -> dict[str, Parameter]:
        return dict(zip(self.names, (self.kernel, self.recurrent_kernel, self.bias, self.recurrent_bias)))

    def _rows(self, A: int, N: int) -> tuple[int, ...]:
        """Leading axes of the recurrence's operands: ``(A*N,)`` rows with one group, else ``(A, N)``."""
        return (A * N,) if self.groups == 1 else (A, N)

    def _step(self, xr: Tensor, xz: Tensor, xn: Tensor, h: Tensor) -> Tensor:
        """One step from the input part of each gate and the hidden ``h`` (``[rows.., H]`` each)."""
        H = self.output_dim
        if self.groups == 1:
            U, c = self.recurrent_kernel.reshape(H, 3 * H), self.recurrent_bias.reshape(3 * H)
            gh = ops.bias_add(self.matmul(h, U), c)
        else:
            gh = ops.matmul(h, self.recurrent_kernel) + self.recurrent_bias
        hr, hz, hn = ops.split(gh, H, -1)
        r, z = ops.sigmoid(xr + hr), ops.sigmoid(xz + hz)
        n = ops.tanh(xn + r * hn)
        return (1.0 - z) * n + z * h

    def cell(self, gx: Tensor, h: Tensor) -> Tensor:
        """One step from the input projection ``gx`` ``[A, N, 3H]`` and the hidden ``h`` ``[A, N, H]``."""
        A, N, H = h.shape
        rows = self._rows(A, N)
        xr, xz, xn = ops.split(gx.reshape(rows + (3 * H,)), H, -1)
        return self._step(xr, xz, xn, h.reshape(rows + (H,))).reshape(A, N, H)

    def construct(self, x: Tensor, h: Tensor) -> Tensor:
        """Hidden states ``[A, B, T, H]`` for inputs ``[A, B, T, in]`` from ``h`` ``[A, B, H]``."""
        A, B, T, _ = x.shape
        H, rows = self.output_dim, self._rows(A, B)
        time = len(rows)  # the time axis of the operands below
        gx = _linear(x.reshape(A, B * T, self.in_dim), self.kernel, self.bias).reshape(rows + (T, 3 * H))
        xr, xz, xn = ops.split(gx, H, -1)  # every step's gate inputs, split once
        xr, xz, xn = ops.unstack(xr, time), ops.unstack(xz, time), ops.unstack(xn, time)
        h = h.reshape(rows + (H,))
        out = []
        for t in range(T):  # the recurrence, unrolled; agents and episodes are batched
            h = self._step(xr[t], xz[t], xn[t], h)
            out.append(h)
        return ops.stack(out, time).reshape(A, B, T, H)


@registry.register("representation", "commnet", backend="mindspore")
@documented
class CommNet(nn.Cell, Representation):
    def __init__(self, in_dim: int, hidden_size: int, comm_steps: int, groups: int = 1, *,
                 activation: str = "tanh", embedding: bool = False, skip_connection: bool = False,
                 recurrent: bool = False, communicate: bool = True) -> None:
        super().__init__()
        layout = representation_shapes(in_dim, hidden_size, comm_steps, groups, skip_connection=skip_connection,
                                       recurrent=recurrent, communicate=communicate)
        self.names = tuple(layout)
        p = dict(zip(self.names, _parameters(layout)))
        self.in_dim, self.groups, self.output_dim, self.comm_steps = in_dim, groups, hidden_size, comm_steps
        self.tanh = activation == "tanh"
        self.embedding, self.recurrent, self.communicate = embedding, recurrent, communicate
        self.has_comm = tuple(f"comm_{i}/comm/kernel" in p for i in range(comm_steps))
        self.skip = "comm_0/skip/kernel" in p
        self.comm_index = tuple(sum(self.has_comm[:i]) for i in range(comm_steps))  # slot in comm_kernels
        self.encoder_kernel, self.encoder_bias = p["encoder/kernel"], p["encoder/bias"]
        self.hidden_kernels = ParameterTuple(p[f"comm_{i}/hidden/kernel"] for i in range(comm_steps))
        self.hidden_biases = ParameterTuple(p[f"comm_{i}/hidden/bias"] for i in range(comm_steps))
        # modules without C (or B) weights hold None: graph mode mishandles empty ParameterTuples
        comm = [p[f"comm_{i}/comm/kernel"] for i in range(comm_steps) if self.has_comm[i]]
        self.comm_kernels = ParameterTuple(comm) if comm else None
        self.skip_kernels = (ParameterTuple(p[f"comm_{i}/skip/kernel"] for i in range(comm_steps))
                             if self.skip else None)

    def canonical(self) -> dict[str, Parameter]:
        """Parameters under canonical relative names (biases stored ``[G, 1, out]``)."""
        out = {"encoder/kernel": self.encoder_kernel, "encoder/bias": self.encoder_bias}
        for i in range(self.comm_steps):
            out[f"comm_{i}/hidden/kernel"] = self.hidden_kernels[i]
            out[f"comm_{i}/hidden/bias"] = self.hidden_biases[i]
            if self.has_comm[i]:
                out[f"comm_{i}/comm/kernel"] = self.comm_kernels[self.comm_index[i]]
            if self.skip:
                out[f"comm_{i}/skip/kernel"] = self.skip_kernels[i]
        return out

    def _sigma(self, x: Tensor) -> Tensor:
        return ops.tanh(x) if self.tanh else ops.relu(x)

    @staticmethod
    def dense(x: Tensor, kernel: Tensor, bias: Tensor | None = None) -> Tensor:
        """``x [A, N, in]`` times ``kernel [G, in, out]`` (one 2-D matmul when G = 1), plus ``bias [G, 1, out]``."""
        return _group_dense(x, kernel, bias)

    def encode(self, x: Tensor) -> Tensor:
        """``h^0 = sigma(r(s))``: a dense layer, or a row of the table per integer id ``x[..., 0]``."""
        if not self.embedding:
            return self._sigma(_group_dense(x, self.encoder_kernel, self.encoder_bias))
        A, N, _ = x.shape
        ids = ops.cast(x[:, :, 0], ms.int32)
        if self.groups > 1:  # agent a reads its own table: rows a * n_ids + id of the stacked tables
            ids = ids + self.in_dim * ops.arange(A, dtype=ms.int32).reshape(A, 1)
        table = self.encoder_kernel.reshape(self.groups * self.in_dim, self.output_dim)
        return self._sigma(ops.gather(table, ids, 0) + self.encoder_bias)

    @staticmethod
    def comm(h: Tensor, agent_mask: Tensor, comm_mask: Tensor | None) -> Tensor:
        """``c_j``: mean of ``h_j'`` over the active ``j' != j`` that ``j`` hears (0 if none).
        ``h [A, N, H]``, ``agent_mask [A, N, 1]``, ``comm_mask`` None (all others), ``[A, A]`` or
        ``[N, A, A]`` (zero diagonal)."""
        return _masked_mean(h, agent_mask, comm_mask)

    def construct(self, x: Tensor, agent_mask: Tensor, comm_mask: Tensor | None = None,
                  state: Tensor | None = None) -> tuple[Tensor, ...]:
        """Hidden states ``(h^0, .., h^K)``, each ``[A, N, H]``, for inputs ``x [A, N, in]`` and
        agent mask ``[A, N, 1]``; a recurrent net starts from ``state`` (``h^K`` of the previous step)."""
        e = self.encode(x)
        h = state if self.recurrent else e
        hiddens = [h]
        c = _masked_mean(h, agent_mask, comm_mask) if self.recurrent and self.communicate else h
        for i in range(self.comm_steps):
            z = _group_dense(h, self.hidden_kernels[i], self.hidden_biases[i])
            if self.has_comm[i]:
                z = z + _group_dense(c, self.comm_kernels[self.comm_index[i]])
            if self.skip:
                z = z + _group_dense(e, self.skip_kernels[i])
            h = self._sigma(z)
            hiddens.append(h)
            if self.communicate and i + 1 < self.comm_steps:
                c = _masked_mean(h, agent_mask, comm_mask)
        return tuple(hiddens)


def _group_dense(x: Tensor, kernel: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x [A, N, in]`` times ``kernel [G, in, out]`` (one 2-D matmul when G = 1), plus ``bias [G, 1, out]``
    (graph code calls module functions: a static method may be bound to the cell there)."""
    A, N, d = x.shape
    if kernel.shape[0] == 1:
        y = ops.matmul(x.reshape(A * N, d), kernel.reshape(d, kernel.shape[2]))
        if bias is not None:
            y = ops.bias_add(y, bias.reshape(bias.shape[2]))
        return y.reshape(A, N, kernel.shape[2])
    y = ops.matmul(x, kernel)
    return y if bias is None else y + bias


def _masked_mean(h: Tensor, agent_mask: Tensor, comm_mask: Tensor | None) -> Tensor:
    """:meth:`CommNet.comm`."""
    hm = h * agent_mask
    if comm_mask is None:  # sum minus self: linear in the number of agents
        return (hm.sum(0, keepdims=True) - hm) / ops.maximum(agent_mask.sum(0, keepdims=True) - agent_mask, 1.0)
    A, N, H = h.shape
    if comm_mask.ndim == 2:
        total = ops.matmul(comm_mask, hm.reshape(A, N * H)).reshape(A, N, H)
        count = ops.matmul(comm_mask, agent_mask.reshape(A, N)).reshape(A, N, 1)
    else:
        total = ops.bmm(comm_mask, hm.swapaxes(0, 1)).swapaxes(0, 1)
        count = ops.bmm(comm_mask, agent_mask.swapaxes(0, 1)).swapaxes(0, 1)
    return total / ops.maximum(count, 1.0)


@registry.register("representation", "bicnet", backend="mindspore")
@documented
class BiCNet(nn.Cell, Representation):
    # In a graph each recurrence is unrolled over the agents (A is fixed per learner); with one
    # group the encoder and every input projection are one 2-D matmul over every agent's rows.

    def __init__(self, in_dim: int, hidden_size: int, groups: int = 1) -> None:
        super().__init__()
        self.torso = MLP(in_dim, [hidden_size], groups)
        self.forward_gru, self.backward_gru = GRU(hidden_size, hidden_size), GRU(hidden_size, hidden_size)
        self.hidden_size, self.output_dim = hidden_size, 2 * hidden_size

    def canonical(self) -> dict[str, Parameter]:
        return bicnet.canonical(self.forward_gru.canonical(), self.backward_gru.canonical(), self.torso.canonical())

    @staticmethod
    def sweep(gru: GRU, e: Tensor, alive: Tensor, reverse: bool = False) -> Tensor:
        """One direction of the recurrence over the agent axis: ``e [A, B, H]`` encodings, ``alive
        [A, B, 1]``; a dead agent's position carries the state through and outputs zeros."""
        return _sweep(gru, e, alive, reverse)

    def construct(self, x: Tensor, alive: Tensor) -> Tensor:
        """Features ``[f_i, g_i]`` ``[A, B, 2H]`` for inputs ``x [A, B, in]`` in the env's agent order."""
        e = self.torso(x)
        return ops.cat((_sweep(self.forward_gru, e, alive, False), _sweep(self.backward_gru, e, alive, True)), -1)


def _sweep(gru: GRU, e: Tensor, alive: Tensor, reverse: bool) -> Tensor:
    """:meth:`BiCNet.sweep` (graph code calls module functions)."""
    A, B, _ = e.shape
    gx = _linear(e, gru.kernel, gru.bias)  # every position's input projection at once
    h = ops.zeros((1, B, gru.output_dim), e.dtype)
    out = ()
    for k in range(A):  # the recurrence, unrolled; the batch is batched
        i = A - 1 - k if reverse else k
        m = alive[i:i + 1]
        h = m * gru.cell(gx[i:i + 1], h) + (1.0 - m) * h
        out = (m * h,) + out if reverse else out + (m * h,)
    return ops.cat(out, 0)
