"""Representations in MindSpore."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from mindspore import Parameter, ParameterTuple, Tensor, nn, ops

from xmarl import registry
from xmarl.core.interfaces import Representation
from xmarl.docschema import documented


def _zeros(*shape: int) -> Tensor:
    """A float32 tensor of zeros (weights are loaded from canonical numpy arrays)."""
    return Tensor(np.zeros(shape, np.float32))


@registry.register("representation", "mlp", backend="mindspore")
@documented
class MLP(nn.Cell, Representation):
    def __init__(self, in_dim: int, hidden_sizes: Sequence[int], groups: int = 1) -> None:
        super().__init__()
        sizes = [in_dim, *hidden_sizes]
        self.kernels = ParameterTuple(Parameter(_zeros(groups, i, o), name=f"dense_{k}.kernel")
                                      for k, (i, o) in enumerate(zip(sizes[:-1], sizes[1:])))
        self.biases = ParameterTuple(Parameter(_zeros(groups, 1, o), name=f"dense_{k}.bias")
                                     for k, o in enumerate(sizes[1:]))
        self.in_dim, self.groups = in_dim, groups
        self.output_dim = sizes[-1]

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {k: tuple(v.shape[:1]) + tuple(v.shape[2:]) if k.endswith("bias") else tuple(v.shape)
                for k, v in self.canonical().items()}

    def canonical(self) -> dict[str, Parameter]:
        """Parameters under canonical relative names (biases stored ``[G, 1, out]``)."""
        out: dict[str, Parameter] = {}
        for k, (w, b) in enumerate(zip(self.kernels, self.biases)):
            out[f"torso/dense_{k}/kernel"] = w
            out[f"torso/dense_{k}/bias"] = b
        return out

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


def _dense_2d(x: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """``x @ w + b`` for rows ``x [N, in]`` and one group's weights ``w [1, in, out]``, ``b [1, 1, out]``."""
    return ops.bias_add(ops.matmul(x, w.reshape(w.shape[1], w.shape[2])), b.reshape(b.shape[2]))
