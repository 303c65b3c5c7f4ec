"""The PyTorch backend. Importing it registers its classes."""

from __future__ import annotations

import torch

from xmarl import registry


def configure(threads: int) -> None:
    """Set intra-op threads (one thread is fastest on 2 cores with envs alongside)."""
    torch.set_num_threads(threads)


registry.add("runtime", "configure", configure, backend="torch")

from xmarl.backends.torch import ops  # noqa: E402

registry.add("runtime", "devices", ops.devices, backend="torch")
registry.add("runtime", "use_device", ops.use_device, backend="torch")

from xmarl.backends.torch.learners import bicnet, coma, commnet, maddpg  # noqa: E402,F401
