"""PyTorch primitives: the framework calls the core's learner bookkeeping is written on
(:class:`xmarl.core.learner.LearnerBase`). Every backend has this module with the same functions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

Shapes = dict[str, tuple[int | None, ...]]


def parameter(shape: Sequence[int], name: str | None = None) -> nn.Parameter:
    """A float32 parameter of zeros (weights are loaded from canonical numpy arrays)."""
    return nn.Parameter(torch.zeros(tuple(shape)))


def read(param: nn.Parameter) -> np.ndarray:
    """A parameter as a numpy array (a view: copy before keeping it)."""
    return param.detach().numpy()


def write(param: nn.Parameter, value: np.ndarray) -> None:
    """Assign a numpy array already in the parameter's shape."""
    with torch.no_grad():
        param.copy_(torch.from_numpy(value))


def tensors(batch: dict[str, np.ndarray], shapes: Shapes, order: Sequence[str]) -> dict[str, torch.Tensor]:
    """The batch entries of ``shapes`` as float32 tensors (sharing memory with the arrays)."""
    return {k: torch.from_numpy(np.ascontiguousarray(batch[k], np.float32)) for k in shapes}


def compile(fn: Callable[[Any], Any], shapes: Shapes) -> Callable[[Any], Any]:  # noqa: A001
    """``fn`` as it runs: eager PyTorch is fastest for these small networks on a CPU."""
    return fn


def numpy(x: Any) -> np.ndarray:
    """A tensor (or anything array-like) as numpy, without gradients."""
    return x.detach().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def metrics(out: dict[str, torch.Tensor], names: Sequence[str]) -> dict[str, float]:
    """An update step's scalar tensors as floats."""
    return {k: float(v.detach()) for k, v in out.items()}


def name_parameters(nets: dict[str, nn.Module]) -> None:
    """Parameters need no graph-unique names in PyTorch."""
