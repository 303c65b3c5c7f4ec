"""Env workers (``train.env_workers``): the copies of an env stepped in worker processes through
shared memory step exactly the episodes the in-process env steps (observations, rewards, ends,
alive and available-action masks, finished returns), for the PettingZoo adapter, the gymnasium
tuple adapter and MAgent2; a run with workers trains the same numbers as one without and
resumes exactly; a worker that raises or dies is a one-line error, after which the run has
written a checkpoint it resumes from."""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest

import xmarl
from tests.conftest import crash_after, require, require_module
from xmarl.config import load_config
from xmarl.envs import make_env
from xmarl.envs.workers import EnvWorkerError
from xmarl.training.checkpoint import latest_checkpoint
from xmarl.training.trainer import Trainer, is_timing


def _same_steps(name: str, num_envs: int, workers: int, steps: int, **kwargs) -> None:
    one, many = make_env(name, num_envs, **kwargs), make_env(name, num_envs, workers, **kwargs)
    try:
        np.testing.assert_array_equal(one.reset(seed=5), many.reset(seed=5))
        rng = np.random.default_rng(0)
        for t in range(steps):
            for query in ("alive", "final_alive", "avail_actions"):
                a, b = getattr(one, query)(), getattr(many, query)()
                assert (a is None) == (b is None), (t, query)
                if a is not None:
                    np.testing.assert_array_equal(a, b, err_msg=f"{query} at step {t}")
            avail = one.avail_actions()
            actions = one.sample_actions(rng)
            if avail is not None:  # only available actions (the masked target game raises otherwise)
                actions = np.argmax(np.where(avail > 0, rng.random(avail.shape), -1.0), -1)
            for x, y in zip(one.step(actions), many.step(actions)):
                np.testing.assert_array_equal(x, y, err_msg=f"step {t}")
        assert one.completed_returns == many.completed_returns and len(one.completed_returns) >= num_envs
    finally:
        many.close()


@pytest.mark.parametrize("kwargs", [
    {"n_agents": 3, "leave_at": [2, 0, 4]},  # agents leave at known steps: alive masks
    {"n_agents": 2, "action_masks": True},  # available-action masks
])
def test_workers_step_the_same_episodes_as_the_env_in_process(kwargs):
    _same_steps("target", 5, 2, 23, **kwargs)


def test_workers_step_the_same_mpe_episodes():
    require_module("mpe2", "pip install 'xmarl[mpe]'")
    _same_steps("mpe/simple_speaker_listener_v4", 4, 3, 60)  # agents of different sizes, padded


def test_workers_step_the_same_lbf_and_magent_episodes():
    require_module("lbforaging", "pip install 'xmarl[lbf]'")
    require_module("magent2", "pip install 'xmarl[magent]'")
    _same_steps("lbf/Foraging-8x8-2p-3f", 4, 2, 60)
    _same_steps("magent/battle_v4", 2, 2, 50, max_cycles=20)  # agents die: alive masks from each worker


OV = {"train.num_envs": 4, "train.env_workers": 2, "train.steps": 1200, "train.eval_interval": 400,
      "train.log_interval": 200, "train.checkpoint_interval": 400, "train.tensorboard": False,
      "train.progress": False, "env_kwargs": {"n_agents": 2, "action_masks": True}}


def _records(run_dir):
    return [{k: v for k, v in json.loads(x).items() if not is_timing(k)}
            for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_a_run_with_workers_trains_what_a_run_without_does_and_resumes_exactly(out_dir):
    require("torch")
    full = xmarl.run("coma", "torch", "target", out_dir=out_dir / "full", overrides=OV)
    alone = xmarl.run("coma", "torch", "target", out_dir=out_dir / "alone", overrides={**OV, "train.env_workers": 1})
    assert _records(full.run_dir) == _records(alone.run_dir)

    cfg = load_config("coma", "target", "torch", overrides={**OV, "out_dir": str(out_dir / "cut")})
    trainer = Trainer(cfg)
    crash_after(trainer, 600)
    with pytest.raises(RuntimeError, match="simulated crash"):
        trainer.train()
    trainer.env.close()
    resumed = xmarl.run(resume=trainer.run_dir)  # its env, mid-episode, restored into new workers
    assert _records(resumed.run_dir) == _records(full.run_dir)


def test_a_worker_that_raises_is_one_line_and_a_worker_that_dies_too():
    env = make_env("target", 4, 2, n_agents=2, action_masks=True)
    try:
        env.reset(seed=0)
        blocked = np.argmin(env.avail_actions(), -1)  # an unavailable action for every agent
        with pytest.raises(EnvWorkerError, match=r"target: env worker 0 failed: ValueError: target: an agent took "
                                                 r"an unavailable action") as info:
            env.step(blocked)
        assert "\n" not in str(info.value)
    finally:
        env.close()
    env = make_env("target", 4, 2, n_agents=2)
    try:
        env.reset(seed=0)
        os.kill(env._procs[1].pid, signal.SIGKILL)
        with pytest.raises(EnvWorkerError, match=r"target: env worker 1 \(pid \d+\) died \(exit code -9\)"):
            env.step(env.sample_actions(np.random.default_rng(0)))
    finally:
        env.close()


def test_a_run_whose_worker_fails_checkpoints_and_resumes(out_dir):
    require("torch")
    cfg = load_config("coma", "target", "torch", overrides={**OV, "out_dir": str(out_dir)})
    trainer = Trainer(cfg)
    step = trainer.env.step

    def failing(actions):
        if trainer.state.step >= 500:
            os.kill(trainer.env._procs[0].pid, signal.SIGKILL)
        return step(actions)

    trainer.env.step = failing
    with pytest.raises(EnvWorkerError, match=r"env worker 0 \(pid \d+\) died .*; checkpoint .*step_000000000500 "
                                             r"\(resume restarts the episodes\)") as info:
        trainer.train()
    assert "\n" not in str(info.value)
    folder = latest_checkpoint(trainer.run_dir)
    assert json.loads((folder / "trainer.json").read_text())["env_snapshot"] is False
    trainer.env.close()
    resumed = xmarl.run(resume=trainer.run_dir)
    assert resumed.final_metrics["steps"] == OV["train.steps"] and resumed.final_metrics["updates"] > 0
