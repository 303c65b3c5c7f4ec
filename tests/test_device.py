"""Devices: the ``device`` key parsed once (aliases, indices, one-line errors), resolved against
what each backend sees (``auto`` is the CPU on a machine without an accelerator; a device the
backend cannot see is refused naming the visible ones, before any file is written), and each
backend's learners really on the device a run asks for. The accelerator side of this is
``benchmarks/device_check.py``, run on a machine that has one."""

from __future__ import annotations

import numpy as np
import pytest

import xmarl
from tests.conftest import require
from xmarl import registry
from xmarl.core.device import Device, parse_device, resolve_device
from xmarl.errors import ConfigError

SHORT = {"train.steps": 400, "train.eval_interval": 400, "train.eval_episodes": 2, "train.tensorboard": False,
         "maddpg.warmup_steps": 100, "maddpg.batch_size": 32, "maddpg.update_every": 50}


@pytest.mark.parametrize("text, device", [
    ("auto", Device("auto")), ("cpu", Device("cpu")), ("CUDA", Device("gpu")), ("cuda:1", Device("gpu", 1)),
    ("gpu", Device("gpu")), ("gpu:0", Device("gpu", 0)), ("ascend", Device("ascend")),
    (" ascend:3 ", Device("ascend", 3)),
])
def test_device_names_parse_with_their_aliases(text, device):
    assert parse_device(text) == device


@pytest.mark.parametrize("text", ["tpu", "cpu:1", "auto:0", "cuda:x", "gpu:-1", "", "cuda0"])
def test_unknown_device_names_are_refused_naming_the_valid_forms(text):
    with pytest.raises(ValueError, match="is not one of auto, cpu, cuda, cuda:N, gpu, gpu:N, ascend, ascend:N"):
        parse_device(text)


def test_devices_resolve_against_what_the_backend_sees():
    assert resolve_device("auto", ["cpu"], "torch") == "cpu"
    assert resolve_device("auto", ["cpu", "gpu:0", "gpu:1"], "torch") == "gpu:0"
    assert resolve_device("cuda", ["cpu", "gpu:0", "gpu:1"], "torch") == "gpu:0"
    assert resolve_device("cuda:1", ["cpu", "gpu:0", "gpu:1"], "torch") == "gpu:1"
    assert resolve_device("cpu", ["cpu", "gpu:0"], "torch") == "cpu"
    assert resolve_device("ascend", ["cpu", "ascend:0"], "mindspore") == "ascend:0"
    with pytest.raises(ConfigError, match=r"device 'cuda:2' is not visible to torch, which sees cpu, gpu:0, gpu:1; "
                                          r"set device to one of those \(or auto\)"):
        resolve_device("cuda:2", ["cpu", "gpu:0", "gpu:1"], "torch")
    with pytest.raises(ConfigError, match="device 'ascend' is not visible to tensorflow, which sees cpu;"):
        resolve_device("ascend", ["cpu"], "tensorflow")


def test_a_bad_device_in_a_config_is_a_one_line_error(out_dir):
    with pytest.raises(ConfigError, match=r"config key 'device' at override: .*device 'tpu' is not one of") as info:
        xmarl.run("maddpg", "torch", "target", out_dir=out_dir, overrides={"device": "tpu"})
    assert "\n" not in str(info.value) and not out_dir.exists()


def test_every_backend_lists_the_cpu_first(backend):
    visible = registry.devices(backend)
    assert visible[0] == "cpu" and all(v == "cpu" or v.split(":")[0] in ("gpu", "ascend") for v in visible)


def test_a_device_the_backend_cannot_see_is_refused_before_any_file_is_written(backend, out_dir):
    if "ascend:0" in registry.devices(backend):
        pytest.skip("this machine has an Ascend device")
    with pytest.raises(ConfigError, match=f"device 'ascend' is not visible to {backend}, which sees cpu") as info:
        xmarl.run("maddpg", backend, "target", out_dir=out_dir, progress=False,
                  overrides={**SHORT, "device": "ascend"})
    assert "\n" not in str(info.value) and not out_dir.exists()


def _placed(learner, backend: str) -> set[str]:
    """The device kind of every parameter and optimiser moment of a learner."""
    kinds = set()
    for net in learner.nets.values():
        for p in net.canonical().values():
            kinds.add(str(p.device).split(":")[0].lower() if backend == "torch" else
                      ("cpu" if "CPU" in p.device.upper() else p.device) if backend == "tensorflow" else "cpu")
    if backend == "torch":
        for opt in learner.optimizers.values():
            kinds |= {str(st["exp_avg"].device).split(":")[0] for st in opt.state.values()}
    return kinds


def test_auto_on_a_machine_without_accelerators_trains_on_the_cpu(backend, out_dir):
    if registry.devices(backend) != ["cpu"]:
        pytest.skip("this machine has an accelerator")
    r = xmarl.run("maddpg", backend, "target", out_dir=out_dir, progress=False, overrides={**SHORT, "device": "auto"})
    assert r.device == "cpu" and "on cpu" in r.summary() and r.final_metrics["updates"] > 0
    assert _placed(r.learner, backend) == {"cpu"}
    if backend == "mindspore":
        import mindspore as ms

        assert ms.get_context("device_target") == "CPU"


def test_torch_puts_parameters_inputs_and_optimiser_state_on_the_device_it_is_given():
    """The torch backend's primitives follow ``use_device``: checked with PyTorch's ``meta``
    device, which every build has (shapes, no memory), standing in for an accelerator."""
    require("torch")
    import torch

    from xmarl.backends.torch import ops

    before = ops.device()
    try:
        ops._DEVICE = torch.device("meta")
        assert ops.parameter((2, 3)).device.type == "meta"
        assert ops.tensors({"x": np.zeros((4, 2), np.float32)}, {"x": (None, 2)}, ("x",))["x"].device.type == "meta"
        ops.use_device("gpu:1")
        assert ops.device() == torch.device("cuda", 1)
        ops.use_device("cpu")
        assert ops.device() == torch.device("cpu")
        x = np.arange(6, dtype=np.float32).reshape(2, 3)
        assert ops.tensor(x).data_ptr() == x.ctypes.data  # on the CPU the array's memory, no copy
    finally:
        ops._DEVICE = before


def test_the_device_check_script_runs_cpu_against_cpu(tmp_path):
    """benchmarks/device_check.py is prepared for an accelerator machine; here it runs with the CPU
    standing in for the accelerator: every parity quantity agrees exactly, and every part reports."""
    require("torch")
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "device_check.py"
    p = subprocess.run([sys.executable, str(script), "--accelerator", "cpu", "--quick", "--backends", "torch",
                        "--out", str(tmp_path / "dc")], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    record = json.loads((tmp_path / "dc.json").read_text())
    (parity,) = record["parity"]
    from xmarl.compare.parity import parity_methods

    assert parity["ok"] and {c.split("-")[0] for c in parity["cases"]} == set(parity_methods(["torch"]))
    assert all(c["failed"] == 0 and c["max_abs"] == 0.0 for c in parity["cases"].values())
    assert {t["method"] for t in record["train"]} == {"maddpg", "coma", "commnet"}
    assert all("error" not in t and t["steps_per_sec"] > 0 and t["run_device"] == "cpu" for t in record["train"])
    assert record["levers"][0]["update_s"] > 0
    assert "Not run yet" not in (tmp_path / "dc.md").read_text()


def test_the_device_check_record_says_whether_it_ran():
    """The recorded result is either a run on an accelerator, or says plainly it has not run."""
    import json
    from pathlib import Path

    record = json.loads((Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "device_check.json")
                        .read_text())
    if record["ran"]:
        assert any(p.get("device", "cpu") != "cpu" for p in record["parity"])
    else:
        assert "no backend sees an accelerator" in record["why"]
