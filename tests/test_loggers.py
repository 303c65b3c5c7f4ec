"""Metrics loggers (``train.loggers``): every number of ``metrics.jsonl`` reaches CSV, Weights &
Biases (offline) and MLflow (its SQLite store), each read back through the library's own API
(W&B: its transaction log's protobuf records; MLflow: ``MlflowClient``); the run's config
becomes the tracker's config / params; a resumed run continues the same tracker run; unknown
or missing loggers are one-line errors before any file is written."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

import xmarl
from tests.conftest import crash_after, require, require_module
from xmarl.config import load_config
from xmarl.errors import BackendNotInstalledError, ConfigError
from xmarl.training.trainer import Trainer

OV = {"train.steps": 600, "train.eval_interval": 200, "train.log_interval": 100, "train.checkpoint_interval": 200,
      "train.tensorboard": False, "maddpg.warmup_steps": 100, "maddpg.batch_size": 32, "maddpg.update_every": 10}


def _numbers(run_dir: Path) -> dict[tuple[int, str], float]:
    """Every (step, key) -> value of ``metrics.jsonl``."""
    out = {}
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        rec = json.loads(line)
        out.update({(rec["step"], k): float(v) for k, v in rec.items()
                    if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool)})
    return out


def _wandb_records(path: Path) -> list:
    """The protobuf records of a W&B transaction log (``run-<id>.wandb``): a 7-byte header, then
    LevelDB-log framing (32 KiB blocks; 7-byte chunk headers: crc, little-endian length, type)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, block, out, buf = 7, 32768, [], b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # the rest of a block too short for a header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0 and length == 0:
            break
        buf += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # FULL or LAST: a whole record
            rec = pb.Record()
            rec.ParseFromString(buf)
            out.append(rec)
            buf = b""
    return out


def test_csv_has_every_number_of_the_jsonl(out_dir):
    require("torch")
    r = xmarl.run("maddpg", "torch", "target", out_dir=out_dir, progress=False,
                  overrides={**OV, "train.loggers": ["jsonl", "csv"]})
    rows = (r.run_dir / "metrics.csv").read_text().splitlines()
    assert rows[0] == "step,key,value"
    got = {(int(s), k): float(v) for s, k, v in (row.split(",") for row in rows[1:])}
    assert got == _numbers(r.run_dir) and len(got) > 20


@pytest.mark.parametrize("loggers, error, message", [
    (["jsonl", "wandbb"], ConfigError, "unknown logger 'wandbb' in train.loggers; did you mean 'wandb'"),
])
def test_an_unknown_logger_is_refused_before_any_file(out_dir, loggers, error, message):
    with pytest.raises(error, match=message) as info:
        xmarl.run("maddpg", "torch", "target", out_dir=out_dir, progress=False,
                  overrides={**OV, "train.loggers": loggers})
    assert "\n" not in str(info.value) and not out_dir.exists()


def test_a_tracker_whose_package_is_missing_names_its_extra(out_dir, monkeypatch):
    import importlib.util

    from xmarl.training import logger

    real = importlib.util.find_spec
    monkeypatch.setattr(logger.importlib.util, "find_spec",
                        lambda name, *a: None if name == "mlflow" else real(name, *a))
    with pytest.raises(BackendNotInstalledError, match=r"logger 'mlflow' needs mlflow, which is not installed: "
                                                       r"pip install 'xmarl\[mlflow\]'"):
        xmarl.run("maddpg", "torch", "target", out_dir=out_dir, progress=False,
                  overrides={**OV, "train.loggers": ["jsonl", "mlflow"]})
    assert not out_dir.exists()


def _interrupted_then_resumed(out_dir: Path, loggers: list[str]) -> Path:
    """A run that crashes after its checkpoint at step 400, then is resumed to its end."""
    cfg = load_config("maddpg", "target", "torch", overrides={**OV, "train.loggers": loggers, "out_dir": str(out_dir)})
    trainer = Trainer(cfg)
    crash_after(trainer, 450)
    with pytest.raises(RuntimeError, match="simulated crash"):
        trainer.train()
    xmarl.run(resume=trainer.run_dir)
    return trainer.run_dir


def test_wandb_offline_gets_every_metric_and_the_config_and_a_resume_continues_its_run(out_dir):
    require("torch")
    require_module("wandb", "pip install 'xmarl[wandb]'")
    run_dir = _interrupted_then_resumed(out_dir, ["jsonl", "wandb"])
    run_id = json.loads((run_dir / "trackers.json").read_text())["wandb"]
    logs = sorted((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(logs) == 2 and all(p.name == f"run-{run_id}.wandb" for p in logs)  # one W&B run, written twice
    history: dict[tuple[int, str], float] = {}
    config = {}
    for path in logs:
        for rec in _wandb_records(path):
            kind = rec.WhichOneof("record_type")
            if kind == "history":
                items = {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in rec.history.item}
                step = rec.history.step.num
                assert items.pop("_step") == step
                history.update({(step, k): float(v) for k, v in items.items() if not k.startswith("_")})
            elif kind == "run":
                assert rec.run.run_id == run_id
                config.update({u.key: json.loads(u.value_json) for u in rec.run.config.update})
    assert history == _numbers(run_dir)
    assert config["maddpg"]["batch_size"] == 32 and config["train"]["loggers"] == ["jsonl", "wandb"]


def test_mlflow_gets_params_metrics_and_artifacts_and_a_resume_continues_its_run(out_dir):
    require("torch")
    require_module("mlflow", "pip install 'xmarl[mlflow]'")
    from mlflow import MlflowClient

    run_dir = _interrupted_then_resumed(out_dir, ["jsonl", "mlflow"])
    client = MlflowClient(tracking_uri=f"sqlite:///{out_dir.resolve() / 'mlflow.db'}")
    (exp,) = [e for e in client.search_experiments() if e.name == "xmarl"]
    (run,) = client.search_runs([exp.experiment_id])  # the resumed run logged into the same MLflow run
    assert run.info.run_id == json.loads((run_dir / "trackers.json").read_text())["mlflow"]
    assert run.info.run_name == run_dir.name and run.info.status == "FINISHED"
    assert run.data.params["maddpg.batch_size"] == "32" and run.data.params["method"] == "maddpg"
    expected = _numbers(run_dir)
    got: dict[tuple[int, str], float] = {}
    for key in {k for _, k in expected}:
        for m in client.get_metric_history(run.info.run_id, key):
            assert got.setdefault((m.step, key), m.value) == m.value  # a step trained again logs the same number
    assert got == expected
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "result.json"} <= artifacts
    assert list((out_dir / "mlartifacts").rglob("result.json"))  # beside the store, not in the working folder
