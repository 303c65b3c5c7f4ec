"""Representations in PyTorch."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from xmarl import registry
from xmarl.core.interfaces import Representation
from xmarl.docschema import documented


@registry.register("representation", "mlp", backend="torch")
@documented
class MLP(nn.Module, Representation):
    def __init__(self, in_dim: int, hidden_sizes: Sequence[int], groups: int = 1) -> None:
        super().__init__()
        sizes = [in_dim, *hidden_sizes]
        self.kernels = nn.ParameterList(torch.zeros(groups, i, o) for i, o in zip(sizes[:-1], sizes[1:]))
        self.biases = nn.ParameterList(torch.zeros(groups, 1, o) for o in sizes[1:])
        self.in_dim, self.groups = in_dim, groups
        self.output_dim = sizes[-1]

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {k: tuple(v.shape[:1]) + tuple(v.shape[2:]) if k.endswith("bias") else tuple(v.shape)
                for k, v in self.canonical().items()}

    def canonical(self) -> dict[str, nn.Parameter]:
        """Parameters under canonical relative names (biases stored ``[G, 1, out]``)."""
        out: dict[str, nn.Parameter] = {}
        for k, (w, b) in enumerate(zip(self.kernels, self.biases)):
            out[f"torso/dense_{k}/kernel"] = w
            out[f"torso/dense_{k}/bias"] = b
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for w, b in zip(self.kernels, self.biases):
            x = torch.relu(torch.matmul(x, w) + b)
        return x


@registry.register("representation", "gru", backend="torch")
@documented
class GRU(nn.Module, Representation):
    """GRU over agent-major sequences ``[A, B, T, in]`` with weights ``[G, in, 3H]`` (gates in
    the order reset, update, candidate; ``n = tanh(x W_n + b_n + r * (h U_n + c_n))``)."""

    def __init__(self, in_dim: int, hidden_dim: int, groups: int = 1) -> None:
        super().__init__()
        H = hidden_dim
        self.kernel = nn.Parameter(torch.zeros(groups, in_dim, 3 * H))
        self.recurrent_kernel = nn.Parameter(torch.zeros(groups, H, 3 * H))
        self.bias = nn.Parameter(torch.zeros(groups, 1, 3 * H))
        self.recurrent_bias = nn.Parameter(torch.zeros(groups, 1, 3 * H))
        self.output_dim = H

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        G, H = self.kernel.shape[0], self.output_dim
        return {"gru/kernel": tuple(self.kernel.shape), "gru/recurrent_kernel": (G, H, 3 * H),
                "gru/bias": (G, 3 * H), "gru/recurrent_bias": (G, 3 * H)}

    def canonical(self) -> dict[str, nn.Parameter]:
        return {"gru/kernel": self.kernel, "gru/recurrent_kernel": self.recurrent_kernel,
                "gru/bias": self.bias, "gru/recurrent_bias": self.recurrent_bias}

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
        G, H = groups, hidden_size
        self.in_dim, self.groups, self.output_dim, self.comm_steps = in_dim, G, H, comm_steps
        self.sigma = torch.tanh if activation == "tanh" else torch.relu
        self.embedding, self.recurrent, self.communicate = embedding, recurrent, communicate
        self.skip = skip_connection or recurrent
        self.has_comm = [communicate and (i > 0 or recurrent) for i in range(comm_steps)]
        self.encoder_kernel = nn.Parameter(torch.zeros(G, in_dim, H))
        self.encoder_bias = nn.Parameter(torch.zeros(G, 1, H))
        self.hidden_kernels = nn.ParameterList(torch.zeros(G, H, H) for _ in range(comm_steps))
        self.hidden_biases = nn.ParameterList(torch.zeros(G, 1, H) for _ in range(comm_steps))
        self.comm_kernels = nn.ParameterList(torch.zeros(G, H, H) for c in self.has_comm if c)
        self.skip_kernels = nn.ParameterList(torch.zeros(G, H, H) for _ in range(comm_steps if self.skip else 0))

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {k: tuple(v.shape[:1]) + tuple(v.shape[2:]) if k.endswith("bias") else tuple(v.shape)
                for k, v in self.canonical().items()}

    def canonical(self) -> dict[str, nn.Parameter]:
        """Parameters under canonical relative names (biases stored ``[G, 1, out]``)."""
        out = {"encoder/kernel": self.encoder_kernel, "encoder/bias": self.encoder_bias}
        comm = iter(self.comm_kernels)
        for i in range(self.comm_steps):
            out[f"comm_{i}/hidden/kernel"] = self.hidden_kernels[i]
            out[f"comm_{i}/hidden/bias"] = self.hidden_biases[i]
            if self.has_comm[i]:
                out[f"comm_{i}/comm/kernel"] = next(comm)
            if self.skip:
                out[f"comm_{i}/skip/kernel"] = self.skip_kernels[i]
        return out

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
            ids = ids + self.in_dim * torch.arange(A).unsqueeze(1)
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
