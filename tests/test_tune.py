"""``xmarl tune``: a YAML search space of config keys (one-line errors for a bad one), trials on
Ray Tune with ASHA, a report in compare's layout with the trial table, and a search stopped
with Ctrl-C that continues when run again: its unfinished trial resumes from its run's
checkpoint and ends with exactly the metrics of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import xmarl
from tests.conftest import require, require_module
from xmarl.compare.tune import load_space
from xmarl.errors import ConfigError
from xmarl.training.trainer import is_timing

SETS = {"train.eval_interval": 500, "train.eval_episodes": 10, "maddpg.warmup_steps": 200, "maddpg.batch_size": 64,
        "train.tensorboard": False, "train.checkpoint_interval": 500}


@pytest.mark.parametrize("text, message", [
    ("[1, 2]", "must map config keys to samplers"),
    ("maddpg.lr_actor: {loguniform: [0.1]}", r"'maddpg.lr_actor': loguniform takes \[low, high\]"),
    ("maddpg.lr_actor: {logunifrom: [0.1, 1]}", "unknown sampler 'logunifrom'; did you mean 'loguniform'"),
    ("maddpg.lr_actor: {choice: [], grid: [1]}", "give one sampler"),
])
def test_a_bad_search_space_is_a_one_line_error(tmp_path, text, message):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_space(path)
    assert "\n" not in str(info.value)


def test_a_search_space_key_that_is_not_a_config_key_is_refused_before_anything_runs(tmp_path):
    require_module("ray.tune", "pip install 'xmarl[ray]'")
    from xmarl.compare.tune import tune

    (tmp_path / "space.yaml").write_text("maddpg.lr_actr: [0.001, 0.01]\n")
    with pytest.raises(ConfigError, match="unknown config key 'maddpg.lr_actr'.*did you mean 'maddpg.lr_actor'"):
        tune("maddpg", "torch", "target", tmp_path / "space.yaml", out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def _records(run_dir):
    return [{k: v for k, v in json.loads(x).items() if not is_timing(k)}
            for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_a_search_ranks_its_trials_and_continues_after_ctrl_c(tmp_path):
    """Four learning rates on the target game, one trial at a time. Ctrl-C during the second
    trial stops the search; running it again keeps the first trial, continues the second from its
    checkpoint (the same metrics as an uninterrupted run of its config) and runs the others; the
    report ranks the rates that learn (5 = every agent on target) above those that do not."""
    require("torch")
    require_module("ray.tune", "pip install 'xmarl[ray]'")
    (tmp_path / "space.yaml").write_text("maddpg.lr_actor: [0.001, 0.000001, 0.003, 0.00001]\n")
    out = tmp_path / "search"
    cmd = [sys.executable, "-m", "xmarl", "tune", "-m", "maddpg", "-e", "target", "-b", "torch",
           "--space", str(tmp_path / "space.yaml"), "--steps", "3000", "--grace", "1000", "--workers", "1",
           "--out-dir", str(out), "--no-progress", *[f"--set={k}={json.dumps(v)}" for k, v in SETS.items()]]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 180
    while time.time() < deadline and first.poll() is None:  # one trial done, the next one checkpointed
        runs = sorted((out / "runs").glob("trial_*")) if (out / "runs").is_dir() else []
        done = [r for r in runs if (r / "result.json").is_file()]
        going = [r for r in runs if not (r / "result.json").is_file() and (r / "checkpoints" / "latest").is_file()]
        if done and going:
            break
        time.sleep(0.2)
    assert first.poll() is None, first.stderr.read()[-2000:]
    first.send_signal(signal.SIGINT)
    first.communicate(timeout=120)
    interrupted = going[0]
    assert not (interrupted / "result.json").is_file()
    kept = {r.name: (r / "result.json").read_text() for r in done}

    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    trials = {t["trial"]: t for t in summary["trials"]}
    assert len(trials) == 4 and all((out / "runs" / name / "result.json").read_text() == text
                                    for name, text in kept.items())  # not trained again
    lr = trials[interrupted.name]["values"]["maddpg.lr_actor"]
    ref = xmarl.run("maddpg", "torch", "target", out_dir=tmp_path / "ref", progress=False,
                    overrides={**SETS, "train.steps": 3000, "maddpg.lr_actor": lr, "seed": 0})
    n = len(_records(interrupted))
    assert _records(interrupted) == _records(ref.run_dir)[:n]  # ASHA may have stopped it before the end
    ranked = [t["values"]["maddpg.lr_actor"] for t in summary["trials"]]
    assert set(ranked[:2]) == {0.001, 0.003} and summary["best"]["final_return"] == 5.0
    report = (out / "report.md").read_text()
    assert "| trial | `maddpg.lr_actor` | env steps | final return | stopped early |" in report
    assert (out / "curves.png").stat().st_size > 10_000 and (out / "trials.csv").is_file()
