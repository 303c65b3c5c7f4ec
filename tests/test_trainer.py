"""The training loop: metrics, evaluation, TensorBoard, checkpoints and Ctrl-C, the first two in
every backend (each learner's timings, weights and signal handling); run folders and the
continuous-action env adapter are backend-neutral and run in torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import xmarl
from xmarl.training.checkpoint import latest_checkpoint, load_weights

TINY = {"train.steps": 800, "train.eval_interval": 400, "train.log_interval": 200, "train.checkpoint_interval": 400,
        "maddpg.warmup_steps": 100, "maddpg.batch_size": 32}


def test_metrics_curve_tensorboard_and_checkpoint(backend, out_dir):
    r = xmarl.run("maddpg", backend, "target", out_dir=out_dir, progress=False, overrides=TINY)
    recs = [json.loads(x) for x in r.metrics_path.read_text().splitlines()]
    evals = [x for x in recs if "eval_return" in x]
    assert [x["step"] for x in evals] == [400, 800] and r.curve == [(x["step"], x["eval_return"]) for x in evals]
    train = [x for x in recs if "critic_loss" in x]
    assert train and all(np.isfinite(x["critic_loss"]) and x["updates"] > 0 for x in train)
    assert r.final_metrics["steps"] == 800 and r.final_metrics["eval_return"] == evals[-1]["eval_return"]
    phases = ["time_env", "time_act", "time_update", "time_eval", "time_checkpoint", "time_glue"]
    assert all(r.final_metrics[p] > 0 for p in phases)
    assert sum(r.final_metrics[p] for p in phases) == pytest.approx(r.final_metrics["wall_time"])
    # each training row carries the cumulative times so far: they grow, and never pass the final totals
    clocks = [[x[k] for k in ("wall_time", *phases[:-1])] for x in train]
    final = [r.final_metrics[k] for k in ("wall_time", *phases[:-1])]
    assert all(b >= a for row, nxt in zip(clocks, clocks[1:]) for a, b in zip(row, nxt))
    assert all(sum(row[1:]) <= row[0] and all(v <= f for v, f in zip(row, final)) for row in clocks)
    assert clocks[-1][3] > 0  # updates had run by the last row
    assert r.tensorboard_dir is not None and any(r.tensorboard_dir.glob("events.out.tfevents.*"))
    weights = load_weights(r.checkpoint_dir)
    for k, v in r.learner.get_weights().items():
        np.testing.assert_array_equal(weights[k], v)
    state = json.loads((latest_checkpoint(r.run_dir) / "trainer.json").read_text())
    assert latest_checkpoint(r.run_dir) == r.checkpoint_dir
    assert state["step"] == 800 and state["backend"] == backend
    assert str(r.run_dir) in r.summary() and "tensorboard --logdir" in r.summary()


def test_second_run_gets_its_own_folder(out_dir):
    a = xmarl.run("maddpg", "torch", "target", out_dir=out_dir, progress=False, overrides=TINY)
    b = xmarl.run("maddpg", "torch", "target", out_dir=out_dir, progress=False, overrides=TINY)
    assert a.run_dir != b.run_dir and a.run_dir.is_dir() and b.run_dir.is_dir()


#: the interrupted run of the Ctrl-C test, in a child process: a framework runtime that takes over
#: SIGINT must fail that test, not end the test session with it
CTRL_C_CHILD = """
import json, os, signal, sys

import numpy as np

from xmarl.config import load_config
from xmarl.training.trainer import Trainer

trainer = Trainer(load_config("maddpg", "target", sys.argv[1], overrides=json.loads(sys.argv[2])))
update, calls = trainer.learner.update, [0]


def update_then_ctrl_c(batch):
    calls[0] += 1
    if calls[0] == 5:
        os.kill(os.getpid(), signal.SIGINT)  # what a user's Ctrl-C delivers
    return update(batch)


trainer.learner.update = update_then_ctrl_c
before = signal.getsignal(signal.SIGINT)  # default_int_handler, or SIG_IGN under a background shell
try:
    trainer.train()
except KeyboardInterrupt:
    np.savez(sys.argv[3], **trainer.learner.get_weights())
    print(json.dumps({"run_dir": str(trainer.run_dir), "handler_restored": signal.getsignal(signal.SIGINT) is before}))
else:
    sys.exit("trainer.train() returned without a KeyboardInterrupt")
"""


def test_ctrl_c_checkpoints_at_the_end_of_the_iteration_and_resumes(backend, out_dir, tmp_path):
    """In every backend (the interrupt arrives while that framework runs updates, and a framework's
    runtime may install a SIGINT handler of its own): Ctrl-C finishes the iteration, checkpoints
    the learner's weights as they were, restores the handler and re-raises; the run resumes."""
    ov = {**TINY, "out_dir": str(out_dir), "train.progress": False}
    at_interrupt = tmp_path / "weights_at_interrupt.npz"
    p = subprocess.run([sys.executable, "-c", CTRL_C_CHILD, backend, json.dumps(ov), str(at_interrupt)],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, (f"the interrupted {backend} run exited with {p.returncode} (negative: killed by that "
                               f"signal) instead of checkpointing and re-raising KeyboardInterrupt; stderr: "
                               f"{p.stderr[-1500:]}")
    child = json.loads(p.stdout.strip().splitlines()[-1])
    assert child["handler_restored"]
    run_dir = Path(child["run_dir"])
    state = json.loads((latest_checkpoint(run_dir) / "trainer.json").read_text())
    assert 100 < state["step"] < 800 and state["loop"]["updates"] >= 5 and state["backend"] == backend
    weights = load_weights(run_dir)
    with np.load(at_interrupt) as expected:
        assert sorted(weights) == sorted(expected.files)
        for k in expected.files:
            np.testing.assert_array_equal(weights[k], expected[k], err_msg=k)
    assert not list(run_dir.rglob("*.tmp")) and not list(run_dir.rglob("*.partial"))
    resumed = xmarl.run(resume=run_dir, progress=False)
    assert resumed.run_dir == run_dir and resumed.final_metrics["steps"] == 800
    assert json.loads((latest_checkpoint(run_dir) / "trainer.json").read_text())["backend"] == backend


def test_continuous_mpe_runs(out_dir):
    r = xmarl.run("maddpg", "torch", "mpe/simple_spread_v3", out_dir=out_dir, progress=False,
                  overrides={**TINY, "env_kwargs": {"continuous_actions": True}, "train.eval_episodes": 2})
    assert r.learner.spec.action_kind == "continuous" and np.isfinite(r.final_metrics["eval_return"])


def test_an_mpe_run_steps_the_fast_twin_by_default_and_says_so(out_dir):
    """``env_impl: auto`` (the default) runs mpe/<task> on its transition-identical mpe-fast twin:
    the same run as naming the twin, written down in the summary, config.yaml and result.json,
    and replayed there by a loaded policy; ``env_impl: reference`` runs mpe2 itself, as does an
    env option only mpe2 has."""
    from xmarl.envs import fast_twin, run_env
    from xmarl.envs.mpe_fast import FastMPE
    from xmarl.envs.pettingzoo import VectorEnv
    from xmarl.training.trainer import Trainer, is_timing

    ov = {"train.steps": 600, "train.eval_interval": 300, "train.log_interval": 300, "train.tensorboard": False,
          "train.num_envs": 2, "train.eval_episodes": 3, "coma.batch_episodes": 2, "train.progress": False}

    def record(r) -> list[dict]:
        return [{k: v for k, v in json.loads(x).items() if not is_timing(k)}
                for x in r.metrics_path.read_text().splitlines()]

    spread, twin = "mpe/simple_spread_v3", "mpe-fast/simple_spread_v3"
    auto = xmarl.run("coma", "torch", spread, out_dir=out_dir / "auto", overrides=ov)
    assert auto.env == spread and auto.run_env == twin
    assert json.loads((auto.run_dir / "result.json").read_text())["run_env"] == twin
    assert auto.config_path.read_text().startswith(f"# env {spread} ran as its transition-identical twin {twin}")
    assert f"env:         {spread}, run as its transition-identical twin {twin}" in auto.summary()
    named = xmarl.run("coma", "torch", twin, out_dir=out_dir / "named", overrides=ov)
    assert record(auto) == record(named) and auto.curve == named.curve
    loaded = xmarl.load(auto.run_dir)
    assert loaded.run_env == twin and loaded.evaluate()["return"] == pytest.approx(auto.final_metrics["eval_return"])

    ref = xmarl.run("coma", "torch", spread, out_dir=out_dir / "ref", overrides={**ov, "env_impl": "reference"})
    assert ref.run_env == spread and not ref.config_path.read_text().startswith("#") and "env: " not in ref.summary()
    assert json.loads((ref.run_dir / "result.json").read_text())["run_env"] == spread
    assert record(ref) != record(auto)  # the twin's resets draw from its own random stream
    kinds = {impl: type(Trainer(xmarl.load_config("coma", spread, "torch", overrides={
        **ov, "env_impl": impl, "out_dir": str(out_dir / impl)})).env) for impl in ("auto", "reference")}
    assert issubclass(kinds["auto"], FastMPE) and kinds["reference"] is VectorEnv

    assert run_env(spread, "auto", {"dynamic_rescaling": False}) == spread  # an option the twin lacks: mpe2
    assert run_env(spread, "auto", {"N": 4, "continuous_actions": True}) == twin
    assert fast_twin("mpe/simple_crypto_v3") is None and fast_twin("target") is None
    with pytest.raises(xmarl.errors.ConfigError, match="env_impl.*'auto' or 'reference'"):
        xmarl.load_config("coma", spread, "torch", overrides={"env_impl": "fast"})
