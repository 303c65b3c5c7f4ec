"""Representations in TensorFlow."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import tensorflow as tf

from xmarl import registry
from xmarl.core.interfaces import Representation
from xmarl.docschema import documented


@registry.register("representation", "mlp", backend="tensorflow")
@documented
class MLP(tf.Module, Representation):
    def __init__(self, in_dim: int, hidden_sizes: Sequence[int], groups: int = 1, name: str | None = None) -> None:
        super().__init__(name=name)
        sizes = [in_dim, *hidden_sizes]
        self.kernels = [tf.Variable(tf.zeros([groups, i, o]), name=f"dense_{k}_kernel")
                        for k, (i, o) in enumerate(pairwise(sizes))]
        self.biases = [tf.Variable(tf.zeros([groups, o]), name=f"dense_{k}_bias") for k, o in enumerate(sizes[1:])]
        self.in_dim, self.groups = in_dim, groups
        self.output_dim = sizes[-1]

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {k: tuple(v.shape) for k, v in self.canonical().items()}

    def canonical(self) -> dict[str, tf.Variable]:
        """Variables under canonical relative names."""
        out: dict[str, tf.Variable] = {}
        for k, (w, b) in enumerate(zip(self.kernels, self.biases)):
            out[f"torso/dense_{k}/kernel"] = w
            out[f"torso/dense_{k}/bias"] = b
        return out

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        for w, b in zip(self.kernels, self.biases):
            x = tf.nn.relu(tf.matmul(x, w) + b[:, None, :])
        return x
