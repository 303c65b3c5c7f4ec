"""xmarl: multi-agent reinforcement learning with one backend-neutral core and native
PyTorch, TensorFlow and MindSpore backends.

``import xmarl`` imports no deep-learning framework; a backend is imported the first time it
is asked for.
"""

from xmarl import (
    compare,  # the package, callable as compare(...)
    registry,
)
from xmarl import envs as _envs  # noqa: F401
from xmarl.api import load, run
from xmarl.compare.parity import parity
from xmarl.config import load_config

# importing these registers the built-in methods and environments
from xmarl.core import methods as _methods  # noqa: F401

__version__ = "0.1.0"

__all__ = ["registry", "run", "load", "load_config", "compare", "parity", "__version__"]
