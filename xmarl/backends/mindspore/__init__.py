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

ms.set_context(mode=ms.GRAPH_MODE)

def configure(threads: int) -> None:
    """Set the CPU kernel threads (MindSpore starts up to 25). MindSpore fixes the number at
    the first setting and reads it when its runtime starts, so call this before the first
    op; later calls are ignored."""
    try:
        ms.device_context.cpu.op_tuning.threads_num(int(threads))
    except RuntimeError:  # "can not be set repeatedly"
        pass


registry.add("runtime", "configure", configure, backend="mindspore")

from xmarl.backends.mindspore import ops  # noqa: E402

registry.add("runtime", "devices", ops.devices, backend="mindspore")
registry.add("runtime", "use_device", ops.use_device, backend="mindspore")

from xmarl.backends.mindspore.learners import bicnet, coma, commnet, maddpg  # noqa: E402,F401
