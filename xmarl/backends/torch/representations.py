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
