"""Weight initialisation in numpy, so every backend starts from the same numbers.

Dense layers use the uniform fan-in rule ``U(-1/sqrt(in), 1/sqrt(in))`` for kernel and bias.
Kernels are ``[groups, in, out]``, biases ``[groups, out]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def dense_names(prefix: str, n_hidden: int) -> list[str]:
    """Layer prefixes of an MLP: ``<prefix>/torso/dense_k`` then ``<prefix>/head``."""
    return [f"{prefix}/torso/dense_{k}" for k in range(n_hidden)] + [f"{prefix}/head"]


def mlp_shapes(
    prefix: str, groups: int, in_dim: int, hidden: Sequence[int], out_dim: int
) -> dict[str, tuple[int, ...]]:
    sizes = [in_dim, *hidden, out_dim]
    shapes: dict[str, tuple[int, ...]] = {}
    for name, i, o in zip(dense_names(prefix, len(hidden)), sizes[:-1], sizes[1:]):
        shapes[f"{name}/kernel"] = (groups, i, o)
        shapes[f"{name}/bias"] = (groups, o)
    return shapes


def init_mlp(rng: np.random.Generator, prefix: str, groups: int, in_dim: int, hidden: Sequence[int],
             out_dim: int) -> dict[str, np.ndarray]:
    w: dict[str, np.ndarray] = {}
    for name, shape in mlp_shapes(prefix, groups, in_dim, hidden, out_dim).items():
        fan_in = shape[1] if name.endswith("kernel") else w[name[: -len("bias")] + "kernel"].shape[1]
        bound = 1.0 / np.sqrt(fan_in)
        w[name] = rng.uniform(-bound, bound, shape).astype(np.float32)
    return w
