"""The TensorFlow backend. Importing it registers its classes."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ info logs out of the console

import tensorflow as tf  # noqa: E402

from xmarl import registry  # noqa: E402


def configure(threads: int) -> None:
    """Set intra-op threads and one inter-op thread (ignored once TF's runtime is initialised)."""
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # the runtime already started: thread pools can no longer change
        pass


registry.add("runtime", "configure", configure, backend="tensorflow")

from xmarl.backends.tensorflow import ops  # noqa: E402

registry.add("runtime", "devices", ops.devices, backend="tensorflow")
registry.add("runtime", "use_device", ops.use_device, backend="tensorflow")

from xmarl.backends.tensorflow.learners import bicnet, coma, commnet, maddpg  # noqa: E402,F401
