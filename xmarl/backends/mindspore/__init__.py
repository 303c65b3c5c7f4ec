"""The MindSpore backend. Importing it registers its classes.

Training runs in ``GRAPH_MODE``: every update and every forward pass is one compiled graph
(PyNative is several times slower for these small networks). Graph dumps that MindSpore
writes on a failed compile go to a temporary folder, not the working directory.
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("GLOG_v", "3")  # errors only
_DUMPS = os.path.join(tempfile.gettempdir(), "xmarl-mindspore")
os.environ.setdefault("MS_OM_PATH", _DUMPS)  # analyze_fail.ir
os.environ.setdefault("MS_DEV_SAVE_GRAPHS_PATH", _DUMPS)  # other .ir dumps

import mindspore as ms  # noqa: E402

from xmarl import registry  # noqa: E402
from xmarl.errors import ConfigError  # noqa: E402

ms.set_context(mode=ms.GRAPH_MODE)

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


def configure(threads: int) -> None:
    """Set the CPU kernel threads (MindSpore starts up to 25). MindSpore fixes the number at
    the first setting and reads it when its runtime starts, so call this before the first
    op; later calls are ignored."""
    try:
        ms.device_context.cpu.op_tuning.threads_num(int(threads))
    except RuntimeError:  # "can not be set repeatedly"
        pass


registry.add("runtime", "configure", configure, backend="mindspore")
registry.add("runtime", "devices", devices, backend="mindspore")
registry.add("runtime", "use_device", use_device, backend="mindspore")

from xmarl.backends.mindspore.learners import bicnet, coma, commnet, maddpg  # noqa: E402,F401
