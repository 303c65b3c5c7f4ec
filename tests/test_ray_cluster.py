"""A real multi-node Ray cluster on this machine: a head node (``ray start --head``) and a second
node (``ray start --address=...``), each with its own temp dir, one CPU and a resource of its
own. ``xmarl compare --executor ray --address ...`` spreads its runs over both (each run asks for
its CPUs); when the second node is killed mid-run, its run continues from its newest checkpoint
on the head and ends with exactly the metrics of a run that was never interrupted."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import xmarl
from tests.conftest import require, require_module
from xmarl.training.trainer import is_timing

STEPS = 4000
OV = {"train.eval_interval": 2000, "train.eval_episodes": 4, "train.log_interval": 500,
      "train.checkpoint_interval": 400, "train.tensorboard": False, "maddpg.warmup_steps": 200,
      "maddpg.batch_size": 64, "maddpg.update_every": 8, "env_kwargs": {"n_agents": 3}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray(*args: str, env: dict[str, str]) -> None:
    exe = Path(sys.executable).with_name("ray")
    p = subprocess.run([str(exe), *args], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stdout[-1500:] + p.stderr[-1500:]


def _raylet_tree(node_manager_port: int) -> list:
    """The raylet of the node listening on ``node_manager_port`` and every process under it."""
    import psutil

    for proc in psutil.process_iter(["cmdline"]):
        cmd = proc.info["cmdline"] or []
        if cmd and cmd[0].endswith("raylet") and f"--node_manager_port={node_manager_port}" in cmd:
            return [proc, *proc.children(recursive=True)]
    return []


@pytest.fixture
def two_nodes():
    require_module("ray", "pip install 'xmarl[ray]'")
    temp = Path(tempfile.mkdtemp(prefix="xr", dir="/tmp"))  # Ray's socket paths must stay under 107 bytes
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
           # a dead node is noticed within seconds, not the default half-minute
           "RAY_health_check_period_ms": "500", "RAY_health_check_failure_threshold": "4",
           "RAY_health_check_initial_delay_ms": "0"}
    port, head_nm, worker_nm = _free_port(), _free_port(), _free_port()
    common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--disable-usage-stats"]
    _ray("start", "--head", f"--port={port}", f"--node-manager-port={head_nm}", f"--object-manager-port={_free_port()}",
         "--include-dashboard=false", f"--temp-dir={temp / 'head'}", '--resources={"xmarl_head": 1}',
         *common, env=env)
    try:
        _ray("start", f"--address=127.0.0.1:{port}", f"--node-manager-port={worker_nm}",
             f"--object-manager-port={_free_port()}", f"--temp-dir={temp / 'worker'}",
             '--resources={"xmarl_worker": 1}', *common, env=env)
        yield f"127.0.0.1:{port}", worker_nm, env
    finally:
        for nm in (worker_nm, head_nm):
            for proc in _raylet_tree(nm):
                proc.kill()
        subprocess.run([str(Path(sys.executable).with_name("ray")), "stop", "--force"], capture_output=True, env=env,
                       timeout=120)
        shutil.rmtree(temp, ignore_errors=True)


def _records(run_dir: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(x).items() if not is_timing(k)}
            for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_compare_across_two_ray_nodes_survives_losing_one(two_nodes, tmp_path):
    require("torch")
    address, worker_nm, env = two_nodes
    out = tmp_path / "cmp"
    sets = [f"--set={k}={json.dumps(v)}" for k, v in OV.items()]
    cmd = [sys.executable, "-m", "xmarl", "compare", "-m", "maddpg", "-e", "target", "-b", "torch", "--seeds", "2",
           "--steps", str(STEPS), "--executor", "ray", "--address", address, "--out-dir", str(out), *sets]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    runs = [out / "runs" / f"maddpg-target-torch-s{s}" for s in (0, 1)]
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:  # both runs under way, each with a checkpoint
        if all((r / "checkpoints" / "latest").is_file() for r in runs):
            break
        time.sleep(0.2)
    assert proc.poll() is None and not any((r / "result.json").exists() for r in runs), "the runs ended too soon"
    victims = _raylet_tree(worker_nm)
    assert len(victims) > 1  # the raylet and the worker training a run
    for p in victims:
        p.send_signal(signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 0, stderr[-3000:]
    lost = [line for line in stderr.splitlines() if "lost its Ray worker" in line]
    assert len(lost) == 1 and "continuing it from its newest checkpoint on another node" in lost[0], stderr[-2000:]
    seed = int(lost[0].split("maddpg-target-torch-s")[1].split()[0])
    assert [json.loads((r / "compare_run.json").read_text())["lost_workers"] for r in runs] == \
        [int(s == seed) for s in (0, 1)]
    ref = xmarl.run("maddpg", "torch", "target", seed=seed, out_dir=tmp_path / "ref", progress=False,
                    overrides={**OV, "train.steps": STEPS})
    assert _records(runs[seed]) == _records(ref.run_dir)
    got = json.loads((runs[seed] / "result.json").read_text())["final_metrics"]
    assert {k: v for k, v in got.items() if not is_timing(k)} == \
        {k: v for k, v in ref.final_metrics.items() if not is_timing(k)}
