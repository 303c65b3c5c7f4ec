"""Representations in PyTorch."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from xmarl import registry
from xmarl.backends.torch import ops
from xmarl.core import bicnet
from xmarl.core.commnet import representation_shapes
from xmarl.core.interfaces import Representation
from xmarl.core.layout import Layout, gru_shapes, mlp_shapes
from xmarl.docschema import documented


def _parameters(layout: Layout) -> list[nn.Parameter]:
    """One parameter per layout entry, in order; biases ``[G, out]`` are stored ``[G, 1, out]``
    (they broadcast over the rows of agent-major inputs)."""
    return [ops.parameter((s[0], 1, s[1]) if k.endswith("bias") else s) for k, s in layout.items()]


@registry.register("representation", "mlp", backend="torch")
@documented
class MLP(nn.Module, Representation):
    def __init__(self, in_dim: int, hidden_sizes: Sequence[int], groups: int = 1) -> None:
        super().__init__()
        layout = mlp_shapes("", groups, in_dim, hidden_sizes, None)
        self.names = list(layout)
        params = _parameters(layout)
        self.kernels, self.biases = nn.ParameterList(params[0::2]), nn.ParameterList(params[1::2])
        self.in_dim, self.groups = in_dim, groups
        self.output_dim = hidden_sizes[-1] if hidden_sizes else in_dim

    def canonical(self) -> dict[str, nn.Parameter]:
        """Parameters under canonical relative names (biases stored ``[G, 1, out]``)."""
        return dict(zip(self.names, (p for pair in zip(self.kernels, self.biases) for p in pair)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for w, b in zip(self.kernels, self.biases):
            x = torch.relu(torch.matmul(x, w) + b)
        return x


@registry.register("representation", "gru", backend="torch")
@documented
class GRU(nn.Module, Representation):
    def __init__(self, in_dim: int, hidden_dim: int, groups: int = 1) -> None:
        super().__init__()
        layout = gru_shapes("gru", groups, in_dim, hidden_dim)
        self.names = list(layout)
        self.kernel, self.recurrent_kernel, self.bias, self.recurrent_bias = _parameters(layout)
        self.output_dim = hidden_dim

    def canonical(self) -> dict[str, nn.Parameter]:
        return dict(zip(self.names, (self.kernel, self.recurrent_kernel, self.bias, self.recurrent_bias)))

    def cell(self, gx: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """One step from the input projection ``gx`` ``[A, B, 3H]`` and the hidden ``h`` ``[A, B, H]``."""
        gh = torch.matmul(h, self.recurrent_kernel) + self.recurrent_bias
        xr, xz, xn = gx.chunk(3, -1)
        hr, hz, hn = gh.chunk(3, -1)
        r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
        n = torch.tanh(xn + r * hn)
        return (1.0 - z) * n + z * h

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """Hidden states ``[A, B, T, H]`` for inputs ``[A, B, T, in]`` from ``h`` ``[A, B, H]``."""
        A, B, T, _ = x.shape
        gx = (torch.matmul(x.reshape(A, B * T, -1), self.kernel) + self.bias).reshape(A, B, T, -1)
        out = []
        for t in range(T):  # the recurrence; agents and episodes are batched
            h = self.cell(gx[:, :, t], h)
            out.append(h)
        return torch.stack(out, 2)


@registry.register("representation", "commnet", backend="torch")
@documented
class CommNet(nn.Module, Representation):
    def __init__(self, in_dim: int, hidden_size: int, comm_steps: int, groups: int = 1, *,
                 activation: str = "tanh", embedding: bool = False, skip_connection: bool = False,
                 recurrent: bool = False, communicate: bool = True) -> None:
        super().__init__()
        layout = representation_shapes(in_dim, hidden_size, comm_steps, groups, skip_connection=skip_connection,
                                       recurrent=recurrent, communicate=communicate)
        self.names = list(layout)
        self.in_dim, self.groups, self.output_dim, self.comm_steps = in_dim, groups, hidden_size, comm_steps
        self.sigma = torch.tanh if activation == "tanh" else torch.relu
        self.embedding, self.recurrent, self.communicate = embedding, recurrent, communicate
        self.has_comm = [f"comm_{i}/comm/kernel" in layout for i in range(comm_steps)]
        self.skip = "comm_0/skip/kernel" in layout
        self.params = nn.ParameterList(_parameters(layout))
        named = dict(zip(self.names, self.params))
        self.encoder_kernel, self.encoder_bias = named["encoder/kernel"], named["encoder/bias"]
        self.hidden_kernels = [named[f"comm_{i}/hidden/kernel"] for i in range(comm_steps)]
        self.hidden_biases = [named[f"comm_{i}/hidden/bias"] for i in range(comm_steps)]
        self.comm_kernels = [named[f"comm_{i}/comm/kernel"] for i in range(comm_steps) if self.has_comm[i]]
        self.skip_kernels = [named[f"comm_{i}/skip/kernel"] for i in range(comm_steps) if self.skip]

    def canonical(self) -> dict[str, nn.Parameter]:
        """Parameters under canonical relative names (biases stored ``[G, 1, out]``)."""
        return dict(zip(self.names, self.params))

    @staticmethod
    def dense(x: torch.Tensor, kernel: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        """``x [A, N, in]`` times ``kernel [G, in, out]`` (one 2-D matmul when G = 1), plus ``bias [G, 1, out]``."""
        A, N, d = x.shape
        if kernel.shape[0] == 1:
            y = torch.matmul(x.reshape(A * N, d), kernel[0]).reshape(A, N, -1)
        else:
            y = torch.bmm(x, kernel)
        return y if bias is None else y + bias

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``h^0 = sigma(r(s))``: a dense layer, or a row of the table per integer id ``x[..., 0]``."""
        if not self.embedding:
            return self.sigma(self.dense(x, self.encoder_kernel, self.encoder_bias))
        A, N, _ = x.shape
        ids = x[..., 0].long()
        if self.groups > 1:  # agent a reads its own table: rows a * n_ids + id of the stacked tables
            ids = ids + self.in_dim * torch.arange(A, device=ids.device).unsqueeze(1)
        table = self.encoder_kernel.reshape(-1, self.output_dim)
        return self.sigma(nn.functional.embedding(ids, table) + self.encoder_bias)

    @staticmethod
    def comm(h: torch.Tensor, agent_mask: torch.Tensor, comm_mask: torch.Tensor | None) -> torch.Tensor:
        """``c_j``: mean of ``h_j'`` over the active ``j' != j`` that ``j`` hears (0 if none).
        ``h [A, N, H]``, ``agent_mask [A, N, 1]``, ``comm_mask`` None (all others), ``[A, A]`` or
        ``[N, A, A]`` (zero diagonal)."""
        hm = h * agent_mask
        if comm_mask is None:  # sum minus self: linear in the number of agents
            return (hm.sum(0, keepdim=True) - hm) / torch.clamp(agent_mask.sum(0, keepdim=True) - agent_mask, min=1.0)
        A, N, H = h.shape
        if comm_mask.dim() == 2:
            total = torch.matmul(comm_mask, hm.reshape(A, N * H)).reshape(A, N, H)
            count = torch.matmul(comm_mask, agent_mask.reshape(A, N)).reshape(A, N, 1)
        else:
            total = torch.bmm(comm_mask, hm.transpose(0, 1)).transpose(0, 1)
            count = torch.bmm(comm_mask, agent_mask.transpose(0, 1)).transpose(0, 1)
        return total / torch.clamp(count, min=1.0)

    def forward(self, x: torch.Tensor, agent_mask: torch.Tensor, comm_mask: torch.Tensor | None = None,
                state: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Hidden states ``[h^0, .., h^K]``, each ``[A, N, H]``, for inputs ``x [A, N, in]`` and
        agent mask ``[A, N, 1]``; a recurrent net starts from ``state`` (``h^K`` of the previous step)."""
        e = self.encode(x)
        h = state if self.recurrent else e
        hiddens = [h]
        c = self.comm(h, agent_mask, comm_mask) if self.recurrent and self.communicate else None
        comm = iter(self.comm_kernels)
        for i in range(self.comm_steps):
            z = self.dense(h, self.hidden_kernels[i], self.hidden_biases[i])
            if self.has_comm[i]:
                z = z + self.dense(c, next(comm))
            if self.skip:
                z = z + self.dense(e, self.skip_kernels[i])
            h = self.sigma(z)
            hiddens.append(h)
            if self.communicate and i + 1 < self.comm_steps:
                c = self.comm(h, agent_mask, comm_mask)
        return hiddens


@registry.register("representation", "bicnet", backend="torch")
@documented
class BiCNet(nn.Module, Representation):
    def __init__(self, in_dim: int, hidden_size: int, groups: int = 1) -> None:
        super().__init__()
        self.torso = MLP(in_dim, [hidden_size], groups)
        self.forward_gru, self.backward_gru = GRU(hidden_size, hidden_size), GRU(hidden_size, hidden_size)
        self.hidden_size, self.output_dim = hidden_size, 2 * hidden_size

    def canonical(self) -> dict[str, nn.Parameter]:
        return bicnet.canonical(self.forward_gru.canonical(), self.backward_gru.canonical(), self.torso.canonical())

    @staticmethod
    def sweep(gru: GRU, e: torch.Tensor, alive: torch.Tensor, reverse: bool = False) -> torch.Tensor:
        """One direction of the recurrence over the agent axis: ``e [A, B, H]`` encodings, ``alive
        [A, B, 1]``; a dead agent's position carries the state through and outputs zeros."""
        A, B, _ = e.shape
        gx = torch.matmul(e, gru.kernel) + gru.bias  # every position's input projection at once
        h = e.new_zeros(1, B, gru.output_dim)
        out: list[torch.Tensor] = [h] * A
        for i in (reversed(range(A)) if reverse else range(A)):  # the recurrence; the batch is batched
            m = alive[i:i + 1]
            h = m * gru.cell(gx[i:i + 1], h) + (1.0 - m) * h
            out[i] = m * h
        return torch.cat(out, 0)

    def forward(self, x: torch.Tensor, alive: torch.Tensor) -> torch.Tensor:
        """Features ``[f_i, g_i]`` ``[A, B, 2H]`` for inputs ``x [A, B, in]`` in the env's agent order."""
        e = self.torso(x)
        return torch.cat([self.sweep(self.forward_gru, e, alive), self.sweep(self.backward_gru, e, alive, True)], -1)
