"""Parameter layouts and their initialisation in numpy, declared once for every backend.

A layout maps canonical parameter names to canonical shapes: dense kernels ``[groups, in, out]``,
biases ``[groups, out]``; ``groups`` is 1 with parameter sharing, else one slice per agent. Each
method's core builds its layout from the helpers here, backends allocate their parameters from
it (:meth:`xmarl.core.learner.LearnerBase.layout`), and weights are initialised in numpy from
the seed, so every backend starts from the same numbers: dense layers use the uniform fan-in
rule ``U(-1/sqrt(in), 1/sqrt(in))`` for kernel and bias. A policy's output layer can instead be
re-drawn with :func:`init_output_layer` (orthogonal kernel scaled by a small gain, zero bias).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from xmarl.core.spaces import AgentSpec

Layout = dict[str, tuple[int, ...]]


def groups(spec: AgentSpec, share_parameters: bool) -> int:
    """Leading axis of every weight: 1 with parameter sharing, else one slice per agent."""
    return 1 if share_parameters else spec.n_agents


def relative(layout: Layout, prefix: str) -> Layout:
    """The entries of ``layout`` under ``prefix/``, named relative to it (one network's layout)."""
    head = prefix + "/"
    return {k[len(head):]: v for k, v in layout.items() if k.startswith(head)}


def mlp_shapes(prefix: str, groups: int, in_dim: int, hidden: Sequence[int], out_dim: int | None) -> Layout:
    """An MLP: ``<prefix>/torso/dense_k`` layers, then a linear ``<prefix>/head`` unless
    ``out_dim`` is None (a torso alone; an empty ``prefix`` names it ``torso/...``)."""
    pre = f"{prefix}/" if prefix else ""
    sizes = [in_dim, *hidden] + ([] if out_dim is None else [out_dim])
    names = [f"{pre}torso/dense_{k}" for k in range(len(hidden))] + ([] if out_dim is None else [f"{pre}head"])
    shapes: Layout = {}
    for name, i, o in zip(names, sizes[:-1], sizes[1:]):
        shapes[f"{name}/kernel"] = (groups, i, o)
        shapes[f"{name}/bias"] = (groups, o)
    return shapes


def mlp_sizes(layout: Layout) -> tuple[int, int, list[int], int | None]:
    """``(groups, in_dim, hidden sizes, out_dim)`` of an :func:`mlp_shapes` layout named
    relative to it (``out_dim`` None without a head): what a backend allocates an MLP from."""
    hidden: list[int] = []
    while f"torso/dense_{len(hidden)}/kernel" in layout:
        hidden.append(layout[f"torso/dense_{len(hidden)}/kernel"][2])
    first = layout["torso/dense_0/kernel" if hidden else "head/kernel"]
    head = layout.get("head/kernel")
    return first[0], first[1], hidden, None if head is None else head[2]


def gru_shapes(prefix: str, groups: int, in_dim: int, hidden: int) -> Layout:
    """A GRU layer, gates in the order (reset, update, candidate)."""
    pre = f"{prefix}/" if prefix else ""
    return {f"{pre}kernel": (groups, in_dim, 3 * hidden), f"{pre}recurrent_kernel": (groups, hidden, 3 * hidden),
            f"{pre}bias": (groups, 3 * hidden), f"{pre}recurrent_bias": (groups, 3 * hidden)}


def init_mlp(rng: np.random.Generator, prefix: str, groups: int, in_dim: int, hidden: Sequence[int],
             out_dim: int) -> dict[str, np.ndarray]:
    """An MLP's weights (:func:`mlp_shapes`), uniform fan-in, drawn in layout order."""
    w: dict[str, np.ndarray] = {}
    for name, shape in mlp_shapes(prefix, groups, in_dim, hidden, out_dim).items():
        fan_in = shape[1] if name.endswith("kernel") else w[name[: -len("bias")] + "kernel"].shape[1]
        bound = 1.0 / np.sqrt(fan_in)
        w[name] = rng.uniform(-bound, bound, shape).astype(np.float32)
    return w


def orthogonal(rng: np.random.Generator, shape: tuple[int, ...], gain: float) -> np.ndarray:
    """Kernels ``[groups, in, out]``, each slice a (semi-)orthogonal matrix times ``gain`` (Saxe et
    al. 2014): the Q factor of a standard-normal matrix's QR, its columns' signs fixed by R's
    diagonal, so every singular value of a slice is ``gain``. float32."""
    G, n_in, n_out = shape
    a = rng.standard_normal((G, max(n_in, n_out), min(n_in, n_out)))
    q, r = np.linalg.qr(a)
    d = np.sign(np.diagonal(r, axis1=-2, axis2=-1))
    q = q * np.where(d == 0, 1.0, d)[:, None, :]
    if n_in < n_out:
        q = np.swapaxes(q, -1, -2)
    return (gain * q).astype(np.float32)


def init_output_layer(rng: np.random.Generator, weights: dict[str, np.ndarray], prefix: str,
                      gain: float | None) -> None:
    """Re-draw the dense layer ``<prefix>/kernel``, ``<prefix>/bias`` of ``weights`` in place: an
    :func:`orthogonal` kernel scaled by ``gain`` and a zero bias, the small-gain policy output
    layer of PPO implementations (Andrychowicz et al. 2021). Call it after every other draw, so
    the other weights stay those of the default rule; ``gain`` None changes nothing and draws
    nothing."""
    if gain is None:
        return
    kernel = weights[f"{prefix}/kernel"]
    weights[f"{prefix}/kernel"] = orthogonal(rng, kernel.shape, float(gain))
    weights[f"{prefix}/bias"] = np.zeros_like(weights[f"{prefix}/bias"])
