"""Resume: an interrupted-then-resumed run gives the same metrics and weights as an
uninterrupted one with the same seed, in each backend; kill -9 loses at most one
checkpoint interval."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import xmarl
from tests.conftest import require
from xmarl.config import load_config
from xmarl.training.checkpoint import latest_checkpoint, load_weights
from xmarl.training.trainer import Trainer, is_timing

OV = {"train.steps": 1200, "train.eval_interval": 400, "train.log_interval": 200, "train.checkpoint_interval": 300,
      "maddpg.warmup_steps": 100, "maddpg.batch_size": 32, "maddpg.update_every": 20, "train.tensorboard": False,
      "train.progress": False}


def _records(run_dir):
    out = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        out.append({k: v for k, v in json.loads(line).items() if not is_timing(k)})
    return out


@pytest.mark.parametrize("env", ["target", "mpe/simple_spread_v3"])
def test_interrupted_then_resumed_equals_uninterrupted(backend, out_dir, env):
    ov = dict(OV)
    if env != "target":  # mpe2 itself (env_impl: reference), not its mpe-fast twin
        ov.update({"train.num_envs": 2, "train.eval_episodes": 2, "env_impl": "reference"})
    full = xmarl.run("maddpg", backend, env, out_dir=out_dir / "full", overrides=ov)

    cfg = load_config("maddpg", env, backend, overrides={**ov, "out_dir": str(out_dir / "cut")})
    trainer = Trainer(cfg)
    update, calls = trainer.learner.update, {"n": 0}

    def crash_after_a_checkpoint(batch):
        calls["n"] += 1
        if trainer.state.step > 700:  # checkpoints at 300 and 600 exist; steps after 600 are lost
            raise RuntimeError("simulated crash")
        return update(batch)

    trainer.learner.update = crash_after_a_checkpoint
    with pytest.raises(RuntimeError, match="simulated crash"):
        trainer.train()
    assert json.loads((latest_checkpoint(trainer.run_dir) / "trainer.json").read_text())["step"] == 600

    resumed = xmarl.run(resume=trainer.run_dir, backend=backend)
    assert _records(resumed.run_dir) == _records(full.run_dir)
    assert resumed.curve == full.curve and resumed.final_metrics["updates"] == full.final_metrics["updates"]
    a, b = load_weights(resumed.run_dir), load_weights(full.run_dir)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_resume_refuses_another_backend(out_dir):
    require("tensorflow")
    r = xmarl.run("maddpg", "torch", "target", out_dir=out_dir, overrides={**OV, "train.steps": 300})
    with pytest.raises(xmarl.errors.XmarlError, match="checkpoint .* is maddpg/torch/target, not maddpg/tensorflow/"):
        xmarl.run(resume=r.run_dir, backend="tensorflow")
    with pytest.raises(xmarl.errors.XmarlError, match="checkpoint .* is maddpg/torch/target, not maddpg/torch/mpe/"):
        xmarl.run(resume=r.run_dir, env="mpe/simple_spread_v3")


def test_kill_9_loses_at_most_one_checkpoint_interval(out_dir):
    code = ("import xmarl, sys, json\n"
            f"xmarl.run('maddpg', 'torch', 'target', out_dir={str(out_dir)!r}, "
            "overrides={**json.loads(sys.argv[1]), 'train.steps': 10**6, 'train.checkpoint_interval': 200})")
    proc = subprocess.Popen([sys.executable, "-c", code, json.dumps(OV)])
    run_dir = out_dir / "maddpg-target-torch-s0"
    deadline = time.time() + 120
    try:
        while time.time() < deadline:
            try:
                step = json.loads((latest_checkpoint(run_dir) / "trainer.json").read_text())["step"]
            except (xmarl.errors.XmarlError, FileNotFoundError, json.JSONDecodeError):
                step = 0
            if step >= 1000:
                break
            time.sleep(0.2)
        logged = max(json.loads(x)["step"] for x in (run_dir / "metrics.jsonl").read_text().splitlines())
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    saved = json.loads((latest_checkpoint(run_dir) / "trainer.json").read_text())["step"]
    assert saved >= 1000 and logged - saved <= 200 + 200  # at most one interval (+ one log interval of slack)
    resumed = xmarl.run(resume=run_dir, overrides={"train.steps": saved + 400})
    assert resumed.final_metrics["steps"] == saved + 400 and np.isfinite(resumed.final_metrics["eval_return"])


def test_env_without_snapshot_warns_once_and_still_resumes(out_dir, capsys):
    from xmarl import registry
    from xmarl.envs.games import TargetGame

    class Local(TargetGame):  # a class defined in a function cannot be pickled
        pass

    registry.add("env", "local_target", Local)
    try:
        r = xmarl.run("maddpg", "torch", "local_target", out_dir=out_dir, overrides={**OV, "train.steps": 900})
        err = capsys.readouterr().err
        assert err.count("cannot be snapshotted") == 1
        assert not (latest_checkpoint(r.run_dir) / "env.pkl").exists()
        resumed = xmarl.run(resume=r.run_dir, overrides={"train.steps": 1200})
        assert resumed.final_metrics["steps"] == 1200 and np.isfinite(resumed.final_metrics["eval_return"])
    finally:
        registry._ENTRIES.pop(("env", "local_target", None))
