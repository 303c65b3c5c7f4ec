"""The TensorFlow backend. Importing it registers its classes."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ info logs out of the console

import tensorflow as tf  # noqa: E402

from xmarl import registry  # noqa: E402
from xmarl.errors import ConfigError  # noqa: E402


def configure(threads: int) -> None:
    """Set intra-op threads and one inter-op thread (ignored once TF's runtime is initialised)."""
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # the runtime already started: thread pools can no longer change
        pass


def devices() -> list[str]:
    """The devices TensorFlow sees, in xmarl's canonical names (``cpu``, ``gpu:0``, ...)."""
    return ["cpu"] + [f"gpu:{i}" for i in range(len(tf.config.list_physical_devices("GPU")))]


def use_device(name: str) -> None:
    """Make ``name`` (canonical) the only device TensorFlow places on: the GPU asked for (with TF32
    off), or none for the CPU. TensorFlow fixes its visible devices when its runtime starts, so a process
    trains on one device; asking for another one later is a one-line error."""
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


registry.add("runtime", "configure", configure, backend="tensorflow")
registry.add("runtime", "devices", devices, backend="tensorflow")
registry.add("runtime", "use_device", use_device, backend="tensorflow")

from xmarl.backends.tensorflow.learners import bicnet, coma, commnet, maddpg  # noqa: E402,F401
