"""MindSpore primitives: the framework calls the core's learner bookkeeping is written on
(:class:`xmarl.core.learner.LearnerBase`). Every backend has this module with the same functions.

A compiled step is a graph-mode ``nn.Cell`` whose ``construct`` takes the batch entries
positionally, in the method's schema order; an entry a config does not use is a placeholder."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Sequence
from typing import Any

import mindspore as ms
import numpy as np
from mindspore import Parameter, Tensor, nn
from mindspore import ops as ms_ops

from xmarl.errors import ConfigError

Shapes = dict[str, tuple[int | None, ...]]

#: what a compiled step is given for a batch entry this config does not use
PLACEHOLDER = np.zeros(1, np.float32)

#: the device MindSpore runs on (canonical name; :func:`use_device`)
_DEVICE = "cpu"

#: MindSpore's device targets of xmarl's canonical device kinds
_TARGETS = {"cpu": "CPU", "gpu": "GPU", "ascend": "Ascend"}


def devices() -> list[str]:
    """The devices this MindSpore build sees, in xmarl's canonical names (``cpu``, ``gpu:0``,
    ``ascend:0``, ...); a CPU build sees the CPU only."""
    out = ["cpu"]
    for kind, target in (("gpu", "GPU"), ("ascend", "Ascend")):
        if ms.hal.is_available(target):
            out += [f"{kind}:{i}" for i in range(ms.hal.device_count(target))]
    return out


def use_device(name: str) -> None:
    """Set MindSpore's device target to ``name`` (canonical). MindSpore fixes it when its runtime
    starts, so a process trains on one device; asking for another one later is a one-line error."""
    kind, _, index = name.partition(":")
    target = _TARGETS[kind]
    try:
        if kind == "cpu":
            ms.set_device(target)
        else:
            ms.set_device(target, int(index))
    except RuntimeError:
        have = ms.get_context("device_target")
        if have != target or kind != "cpu" and ms.get_context("device_id") != int(index):
            raise ConfigError(f"MindSpore already runs on {have} in this process, so it cannot move to {name}; "
                              f"train on {name} in a new process") from None
    global _DEVICE
    _DEVICE = name


def device() -> str:
    """The device MindSpore runs on (canonical name)."""
    return _DEVICE


def tensor(x: np.ndarray) -> Tensor:
    """A numpy array as a tensor."""
    return Tensor.from_numpy(np.ascontiguousarray(x))




def parameter(shape: Sequence[int], name: str | None = None) -> Parameter:
    """A float32 parameter of zeros (weights are loaded from canonical numpy arrays)."""
    return Parameter(Tensor(np.zeros(tuple(shape), np.float32)), name=name)


def read(param: Parameter) -> np.ndarray:
    return param.asnumpy()


def write(param: Parameter, value: np.ndarray) -> None:
    """Assign a numpy array already in the parameter's shape, in place: a compiled graph that has
    run keeps reading the parameter's memory, which ``set_data`` would replace unseen by it."""
    ms_ops.assign(param, Tensor(value))


def tensors(batch: dict[str, np.ndarray], shapes: Shapes, order: Sequence[str]) -> tuple[Tensor, ...]:
    """Every schema entry in ``order`` as a float32 tensor (placeholders for absent ones), as
    the compiled cells take them."""
    return tuple(Tensor.from_numpy(np.ascontiguousarray(batch.get(k, PLACEHOLDER), np.float32)) for k in order)


def compile(fn: Callable[..., Any], shapes: Shapes) -> Callable[[tuple[Tensor, ...]], Any]:  # noqa: A001
    """``fn`` (a graph-mode cell, compiled by MindSpore on its first call per shape) taking the
    batch positionally."""

    def call(batch: tuple[Tensor, ...]) -> Any:
        out = fn(*batch)
        _sigint_to_python()
        return out

    return call


def _sigint_to_python() -> None:
    """Give SIGINT back to Python after a graph run. MindSpore's runtime installs a C-level SIGINT
    handler on every run, which ends the process (Python's signal table does not show it), so
    Ctrl-C would never reach the trainer's handler and no checkpoint would be written. Reinstalling
    Python's current handler costs one system call (a MindSpore call costs hundreds of us)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.getsignal(signal.SIGINT))


def numpy(x: Any) -> np.ndarray:
    return x.asnumpy() if isinstance(x, Tensor) else np.asarray(x)


def metrics(out: Tensor, names: Sequence[str]) -> dict[str, float]:
    """An update step's stacked scalars (in ``names`` order) as floats."""
    return dict(zip(names, out.asnumpy().tolist()))


def name_parameters(nets: dict[str, nn.Cell]) -> None:
    """Unique parameter names within a graph: ``<network>.<name>``."""
    for name, net in nets.items():
        net.update_parameters_name(f"{name}.")
