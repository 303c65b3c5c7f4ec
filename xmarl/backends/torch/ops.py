"""PyTorch primitives: the framework calls the core's learner bookkeeping is written on
(:class:`xmarl.core.learner.LearnerBase`). Every backend has this module with the same functions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

Shapes = dict[str, tuple[int | None, ...]]

#: where every parameter and tensor xmarl makes lives (:func:`use_device`)
_DEVICE = torch.device("cpu")


def devices() -> list[str]:
    """The devices PyTorch sees, in xmarl's canonical names (``cpu``, ``gpu:0``, ...)."""
    return ["cpu"] + [f"gpu:{i}" for i in range(torch.cuda.device_count())]


def use_device(name: str) -> None:
    """Put the parameters and tensors made from now on on device ``name`` (canonical). On a GPU,
    matrix products run in float32, not TF32, so that results match the CPU's to parity tolerance."""
    global _DEVICE
    _DEVICE = torch.device("cpu" if name == "cpu" else f"cuda:{name.split(':')[1]}")
    if _DEVICE.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False


def device() -> torch.device:
    return _DEVICE


def parameter(shape: Sequence[int], name: str | None = None) -> nn.Parameter:
    """A float32 parameter of zeros on the device (weights are loaded from canonical numpy arrays)."""
    return nn.Parameter(torch.zeros(tuple(shape), device=_DEVICE))


def read(param: nn.Parameter) -> np.ndarray:
    """A parameter as a numpy array (on the CPU a view: copy before keeping it)."""
    return param.detach().cpu().numpy()


def write(param: nn.Parameter, value: np.ndarray) -> None:
    """Assign a numpy array already in the parameter's shape."""
    with torch.no_grad():
        param.copy_(torch.from_numpy(value))


def tensor(x: np.ndarray) -> torch.Tensor:
    """A numpy array on the device: shares its memory on the CPU; through pinned host memory to a GPU."""
    t = torch.from_numpy(np.ascontiguousarray(x))
    if _DEVICE.type == "cpu":
        return t
    return (t.pin_memory() if _DEVICE.type == "cuda" else t).to(_DEVICE, non_blocking=True)


def tensors(batch: dict[str, np.ndarray], shapes: Shapes, order: Sequence[str]) -> dict[str, torch.Tensor]:
    """The batch entries of ``shapes`` as float32 tensors on the device (sharing memory with the
    arrays on the CPU)."""
    return {k: tensor(np.asarray(batch[k], np.float32)) for k in shapes}


def compile(fn: Callable[[Any], Any], shapes: Shapes) -> Callable[[Any], Any]:  # noqa: A001
    """``fn`` as it runs: eager PyTorch is fastest for these small networks on a CPU."""
    return fn


def numpy(x: Any) -> np.ndarray:
    """A tensor (or anything array-like) as numpy, without gradients."""
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def metrics(out: dict[str, torch.Tensor], names: Sequence[str]) -> dict[str, float]:
    """An update step's scalar tensors as floats (one copy from the device)."""
    return dict(zip(out, torch.stack([v.detach().float() for v in out.values()]).cpu().tolist()))


def name_parameters(nets: dict[str, nn.Module]) -> None:
    """Parameters need no graph-unique names in PyTorch."""
