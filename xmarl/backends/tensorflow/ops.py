"""TensorFlow primitives: the framework calls the core's learner bookkeeping is written on
(:class:`xmarl.core.learner.LearnerBase`). Every backend has this module with the same functions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

Shapes = dict[str, tuple[int | None, ...]]


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
