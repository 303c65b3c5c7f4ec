"""TensorFlow primitives: the framework calls the core's learner bookkeeping is written on
(:class:`xmarl.core.learner.LearnerBase`). Every backend has this module with the same functions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from xmarl.errors import ConfigError

Shapes = dict[str, tuple[int | None, ...]]

#: the device TensorFlow places on (canonical name; :func:`use_device`)
_DEVICE = "cpu"


def devices() -> list[str]:
    """The devices TensorFlow sees, in xmarl's canonical names (``cpu``, ``gpu:0``, ...)."""
    return ["cpu"] + [f"gpu:{i}" for i in range(len(tf.config.list_physical_devices("GPU")))]


def use_device(name: str) -> None:
    """Make ``name`` (canonical) the only device TensorFlow places on: the GPU asked for (with TF32
    off), or none for the CPU. TensorFlow fixes its visible devices when its runtime starts, so a
    process trains on one device; asking for another one later is a one-line error."""
    gpus = tf.config.list_physical_devices("GPU")
    want = [] if name == "cpu" else [gpus[int(name.split(":")[1])]]
    if want:  # float32 matrix products, not TF32: results match the CPU's to parity tolerance
        tf.config.experimental.enable_tensor_float_32_execution(False)
    try:
        tf.config.set_visible_devices(want, "GPU")
    except RuntimeError:  # the runtime started: its visible devices are fixed
        if tf.config.get_visible_devices("GPU") != want:
            have = [f"gpu:{gpus.index(d)}" for d in tf.config.get_visible_devices("GPU")] or ["cpu"]
            raise ConfigError(f"TensorFlow already runs on {', '.join(have)} in this process, so it cannot move to "
                              f"{name}; train on {name} in a new process") from None
    global _DEVICE
    _DEVICE = name


def device() -> str:
    """The device TensorFlow places on (canonical name)."""
    return _DEVICE


def tensor(x: np.ndarray) -> tf.Tensor:
    """A numpy array as a tensor (placed on the visible device)."""
    return tf.convert_to_tensor(np.asarray(x))


def parameter(shape: Sequence[int], name: str | None = None) -> tf.Variable:
    """A float32 variable of zeros (weights are loaded from canonical numpy arrays)."""
    return tf.Variable(tf.zeros(list(shape)), name=name)


def read(param: tf.Variable) -> np.ndarray:
    return param.numpy()


def write(param: tf.Variable, value: np.ndarray) -> None:
    param.assign(value)


def tensors(batch: dict[str, np.ndarray], shapes: Shapes, order: Sequence[str]) -> dict[str, tf.Tensor]:
    """The batch entries of ``shapes`` as float32 tensors."""
    return {k: tf.convert_to_tensor(np.asarray(batch[k], np.float32)) for k in shapes}


def compile(fn: Callable[[Any], Any], shapes: Shapes) -> Callable[[Any], Any]:  # noqa: A001
    """``fn`` as a graph traced once for every batch of these shapes (None: any size), called as
    a concrete function (less dispatch overhead than a ``tf.function``)."""
    signature = {k: tf.TensorSpec(list(s), tf.float32) for k, s in shapes.items()}
    return tf.function(fn).get_concrete_function(signature)


def numpy(x: Any) -> np.ndarray:
    return x.numpy() if hasattr(x, "numpy") else np.asarray(x)


def metrics(out: dict[str, tf.Tensor], names: Sequence[str]) -> dict[str, float]:
    """An update step's scalar tensors as floats."""
    return {k: float(v) for k, v in out.items()}


def name_parameters(nets: dict[str, tf.Module]) -> None:
    """Variables need no graph-unique names in TensorFlow."""
