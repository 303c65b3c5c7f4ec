"""Registry (lazy backends, plugins) and the command line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import xmarl
from tests.conftest import require, require_module
from xmarl import registry
from xmarl.cli import main
from xmarl.errors import RegistryError


def test_register_and_get_with_suggestions():
    @registry.register("representation", "unit_test_rep", backend=None)
    class Rep:
        pass

    assert registry.get("representation", "unit_test_rep") is Rep
    with pytest.raises(RegistryError) as e:
        registry.get("representation", "unit_test_repp")
    assert "did you mean 'unit_test_rep'" in str(e.value) and "\n" not in str(e.value)


def test_backend_module_is_imported_on_first_use_only():
    code = ("import sys, xmarl\nfrom xmarl import registry\n"
            "assert 'torch' not in sys.modules\n"
            "registry.get('learner', 'maddpg', 'torch')\n"
            "print('torch' in sys.modules, 'tensorflow' in sys.modules, 'mindspore' in sys.modules)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["True", "False", "False"]


def test_plugin_entry_point_adds_env_and_method(out_dir):
    xmarl_demo_plugin = require_module("xmarl_demo_plugin", "pip install ./tests/fixtures/xmarl_demo_plugin")
    require("torch")  # the plugin registers a torch learner only

    assert "demo/four_targets" in registry.names("env")
    assert "demo_maddpg" in registry.names("method")
    assert xmarl_demo_plugin.REGISTERED == ["demo"]  # loaded exactly once
    r = xmarl.run("demo_maddpg", "torch", "demo/four_targets", out_dir=out_dir, progress=False,
                  overrides={"train.steps": 300, "train.eval_interval": 300, "demo_maddpg.warmup_steps": 50,
                             "demo_maddpg.batch_size": 32})
    assert r.learner.spec.act_dim == 4 and r.final_metrics["updates"] > 0


def test_cli_list_shows_methods_backends_and_envs(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0]
    assert header.split()[0] == "method"
    for b in ("torch", "tensorflow", "mindspore"):
        assert b in header
    row = next(line for line in out.splitlines() if line.startswith("maddpg"))
    installed = [b for b in ("torch", "tensorflow", "mindspore") if registry.backend_installed(b)]
    assert row.split()[1:].count("yes") == len(installed)
    assert "mpe/simple_spread_v3" in out and "target" in out


def test_cli_run_writes_results(out_dir, capsys):
    rc = main(["run", "-m", "maddpg", "-b", "torch", "-e", "target", "--steps", "300", "--out-dir", str(out_dir),
               "--no-progress", "--set", "train.eval_interval=300", "--set", "maddpg.batch_size=32",
               "--set", "maddpg.warmup_steps=50"])
    assert rc == 0
    out = capsys.readouterr().out
    run_dir = out_dir / "maddpg-target-torch-s0"
    assert str(run_dir) in out and (run_dir / "config.yaml").is_file()
    res = json.loads((run_dir / "result.json").read_text())
    assert res["final_metrics"]["steps"] == 300 and len(res["curve"]) == 1
    assert (run_dir / "checkpoints" / "step_000000000300" / "weights.npz").is_file()
    assert not list(run_dir.rglob("*.tmp"))


@pytest.mark.parametrize("argv,needle", [
    (["run", "-e", "target", "--set", "train.stepz=5"], "did you mean 'train.steps'"),
    (["run", "-e", "target", "--set", "novalue"], "key.path=value"),
    (["run", "-e", "target", "--steps", "0"], "greater than 0"),
    (["run", "-e", "nowhere"], "unknown env 'nowhere'"),
    (["run", "-e", "target", "-c", "/nonexistent.yaml"], "does not exist"),
])
def test_cli_bad_input_is_one_line_exit_2(argv, needle, out_dir, capsys):
    assert main(argv + ["--out-dir", str(out_dir)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("xmarl: error:") and needle in err[0]
    assert not out_dir.exists()
