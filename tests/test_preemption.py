"""Preemption: SIGTERM (what schedulers and ``kill`` send) stops a run as the first Ctrl-C does
(finish the iteration, checkpoint, exit 128 + 15 = 143), in every backend, and the run resumes
exactly; a second signal acts at once; ``xmarl compare`` stops its local workers the same way;
two runs started into the same folder at once never share it, and a run folder that a live
process trains cannot be resumed by another."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import xmarl
from tests.conftest import require, require_module
from xmarl.errors import XmarlError
from xmarl.training.checkpoint import latest_checkpoint, load_weights
from xmarl.training.trainer import Preempted, _GracefulInterrupt, is_timing, request_stop

OV = {"train.steps": 1200, "train.eval_interval": 400, "train.log_interval": 200, "train.checkpoint_interval": 200,
      "maddpg.warmup_steps": 100, "maddpg.batch_size": 32, "maddpg.update_every": 20, "train.tensorboard": False,
      "train.progress": False}
QUIET = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "GLOG_v": "3"}


def _records(run_dir: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(x).items() if not is_timing(k)}
            for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _cli_run(backend: str, out_dir: Path, ov: dict, name: str | None = None) -> list[str]:
    argv = [sys.executable, "-m", "xmarl", "run", "-m", "maddpg", "-b", backend, "-e", "target",
            "--out-dir", str(out_dir), "--no-progress"]
    argv += [f"--set={k}={v}" for k, v in ov.items() if k != "train.progress"]
    return argv + ([f"--set=name={name}"] if name else [])


def _wait(predicate, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, f"the child ended (status {proc.returncode}) before the test could signal it"
        assert time.monotonic() < deadline, "timed out waiting for the child"
        time.sleep(0.02)


def _sigterm_when(argv: list[str], ready, tmp_path: Path) -> tuple[int, str]:
    """Start ``argv``, send SIGTERM once ``ready()``; return its exit status and stderr."""
    with open(tmp_path / "stderr.txt", "w") as err:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, env=QUIET)
        try:
            _wait(ready, proc)
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
    return proc.returncode, (tmp_path / "stderr.txt").read_text()


def _step(run_dir: Path) -> int:
    return json.loads((latest_checkpoint(run_dir) / "trainer.json").read_text())["step"]


def test_sigterm_checkpoints_exits_143_and_resumes_exactly(backend, out_dir, tmp_path):
    full = xmarl.run("maddpg", backend, "target", out_dir=out_dir / "full", overrides=OV)
    run_dir = out_dir / "cut" / f"maddpg-target-{backend}-s0"
    status, stderr = _sigterm_when(_cli_run(backend, out_dir / "cut", OV),
                                   lambda: (run_dir / "checkpoints" / "latest").is_file(), tmp_path)
    assert status == 143, f"{backend}: exit status {status}; stderr: {stderr[-2000:]}"
    assert "interrupted (SIGTERM) at step" in stderr and "xmarl run --resume" in stderr
    step = _step(run_dir)
    assert 200 <= step < 1200, step
    assert not list(run_dir.rglob("*.partial")) and not list(run_dir.rglob("*.tmp"))
    assert not (run_dir / ".lock").exists()

    resumed = xmarl.run(resume=run_dir, progress=False)
    assert resumed.run_dir == run_dir and resumed.final_metrics["steps"] == 1200
    assert _records(run_dir) == _records(full.run_dir)
    assert {k: v for k, v in resumed.final_metrics.items() if not is_timing(k)} == \
        {k: v for k, v in full.final_metrics.items() if not is_timing(k)}
    a, b = load_weights(run_dir), load_weights(full.run_dir)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_second_signal_of_either_kind_acts_at_once():
    """The first SIGTERM (or SIGINT) is only recorded; the handlers that were there before are
    back at once, so the second signal, of either kind, does what it did before: Ctrl-C raises
    KeyboardInterrupt, SIGTERM reaches the previous handler (by default: ends the process)."""
    seen: list[int] = []
    before = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    before_int = signal.signal(signal.SIGINT, signal.default_int_handler)  # SIG_IGN under a background shell
    try:
        for first, second in [(signal.SIGTERM, signal.SIGINT), (signal.SIGINT, signal.SIGTERM),
                              (signal.SIGTERM, signal.SIGTERM)]:
            seen.clear()
            with _GracefulInterrupt() as stop:
                assert stop.signum is None
                os.kill(os.getpid(), first)
                time.sleep(0.01)
                assert stop.signum == first and not seen
                if second == signal.SIGINT:
                    with pytest.raises(KeyboardInterrupt):
                        os.kill(os.getpid(), second)
                        time.sleep(0.5)
                else:
                    os.kill(os.getpid(), second)
                    time.sleep(0.01)
                    assert seen == [signal.SIGTERM] and stop.signum == first
            assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGTERM, before)
        signal.signal(signal.SIGINT, before_int)


def test_request_stop_stops_like_a_first_sigterm(out_dir):
    """What a stopped compare's workers use: a request from another thread ends the run at the end
    of its iteration with a checkpoint and Preempted(SIGTERM); the next run is not affected."""
    require("torch")
    ov = {**OV, "train.steps": 10**6}
    timer = threading.Timer(1.0, request_stop)
    timer.start()
    with pytest.raises(Preempted) as e:
        xmarl.run("maddpg", "torch", "target", out_dir=out_dir, overrides=ov)
    timer.join()
    run_dir = out_dir / "maddpg-target-torch-s0"
    assert e.value.signum == signal.SIGTERM and e.value.checkpoint == latest_checkpoint(run_dir)
    assert isinstance(e.value, KeyboardInterrupt) and "stopped by SIGTERM" in str(e.value)
    assert 0 < _step(run_dir) < 10**6
    r = xmarl.run("maddpg", "torch", "target", out_dir=out_dir, overrides={**OV, "train.steps": 200})
    assert r.final_metrics["steps"] == 200


STEPS = 1000
COMPARE_OV = {"train.tensorboard": False, "train.eval_interval": 500, "train.log_interval": 250,
              "train.checkpoint_interval": 250}


def _learning(run_dir: Path) -> dict:
    result = json.loads((run_dir / "result.json").read_text())
    return {"final": {k: v for k, v in result["final_metrics"].items() if not is_timing(k)},
            "curve": result["curve"], "metrics": _records(run_dir)}


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_sigterm_stops_a_compare_which_then_resumes(executor, tmp_path):
    """SIGTERM to the compare's process alone (as ``kill PID``, a container stop or a scheduler sends
    it) while its second run trains, with local pool workers or Ray tasks: the worker checkpoints and
    stops, the compare exits with 143; the same compare again reuses the finished run, continues the
    other, and it learns exactly what an uninterrupted compare's run does."""
    require("torch")
    if executor == "ray":
        require_module("ray", "pip install 'xmarl[ray]'")
    out = tmp_path / "stopped"
    # a Ray task's cancel takes a moment to arrive: its runs are long enough that the second is still training
    steps = STEPS if executor == "local" else 8 * STEPS
    argv = [sys.executable, "-m", "xmarl", "compare", "-m", "maddpg", "-e", "target", "-b", "torch", "--seeds", "2",
            "--steps", str(steps), "--out-dir", str(out), "--workers", "1", "--executor", executor, "--no-progress"]
    argv += [f"--set={k}={v}" for k, v in COMPARE_OV.items()]
    first, second = out / "runs" / "maddpg-target-torch-s0", out / "runs" / "maddpg-target-torch-s1"
    status, stderr = _sigterm_when(argv, lambda: (second / "metrics.jsonl").is_file(), tmp_path)
    assert status == 143, f"exit status {status}; stderr: {stderr[-2000:]}"
    assert "1 of 2 runs are finished, run the same compare again to resume" in stderr.splitlines()[-1]
    if executor == "local":  # a Ray worker's console stays off the driver's unless --verbose
        assert "interrupted (SIGTERM) at step" in stderr  # the worker's run stopped gracefully
    assert "Ray" not in stderr  # no framework notices on a quiet console
    assert (first / "result.json").is_file() and not (second / "result.json").is_file()
    assert 0 < _step(second) < steps and not (second / ".lock").exists()
    stamp = (first / "result.json").stat().st_mtime_ns

    again = xmarl.compare("maddpg", ["torch"], "target", seeds=2, steps=steps, overrides=COMPARE_OV, out_dir=out,
                          progress=False)
    assert again.skipped == [first.name] and again.resumed == [second.name] and not again.ran
    assert (first / "result.json").stat().st_mtime_ns == stamp
    whole = xmarl.compare("maddpg", ["torch"], "target", seeds=[1], steps=steps, overrides=COMPARE_OV,
                          out_dir=tmp_path / "whole", progress=False)
    assert _learning(second) == _learning(whole.out_dir / "runs" / second.name)


def test_runs_started_together_into_one_folder_get_their_own(out_dir):
    """Two processes, same out_dir and run name, started at the same moment: each gets its own
    folder (the name is taken by an exclusive mkdir), and both finish whole."""
    require("torch")
    procs = [subprocess.Popen(_cli_run("torch", out_dir, {**OV, "train.steps": 400}, name="same"),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=QUIET)
             for _ in range(2)]
    errs = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    folders = sorted(p.name for p in out_dir.iterdir())
    assert folders == ["same", "same-1"]
    for f in folders:
        assert json.loads((out_dir / f / "result.json").read_text())["final_metrics"]["steps"] == 400
        assert _step(out_dir / f) == 400 and len(_records(out_dir / f)) == len(_records(out_dir / folders[0]))


def test_resuming_a_run_another_process_trains_is_refused(out_dir):
    """The run folder's lock holds the training process's pid: a resume while it lives is a
    one-line error naming it; once it is killed (kill -9: the lock is stale) the resume works."""
    require("torch")
    proc = subprocess.Popen(_cli_run("torch", out_dir, {**OV, "train.steps": 10**6}), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=QUIET)
    run_dir = out_dir / "maddpg-target-torch-s0"
    try:
        _wait(lambda: (run_dir / "checkpoints" / "latest").is_file(), proc)
        with pytest.raises(XmarlError, match=rf"is being trained by process {proc.pid} on .*kill {proc.pid}") as e:
            xmarl.run(resume=run_dir, progress=False)
        assert "\n" not in str(e.value)
        assert (run_dir / ".lock").read_text().split()[0] == str(proc.pid)
    finally:
        proc.kill()
        proc.wait(timeout=60)
    saved = _step(run_dir)
    resumed = xmarl.run(resume=run_dir, progress=False, overrides={"train.steps": saved + 200})
    assert resumed.final_metrics["steps"] == saved + 200 and not (run_dir / ".lock").exists()
