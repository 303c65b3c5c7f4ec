"""Metrics loggers: where a run's metrics go, chosen by ``train.loggers``.

``jsonl`` (``metrics.jsonl``, always on: resume reads it), ``tensorboard`` (tensorboardX;
``train.tensorboard: false`` turns it off), ``csv`` (``metrics.csv``, one ``step,key,value``
row per number), ``wandb`` (Weights & Biases; ``pip install 'xmarl[wandb]'``) and ``mlflow``
(MLflow; ``pip install 'xmarl[mlflow]'``). Each is a :class:`Logger` registered under kind
``"logger"``, so a plugin adds its own with ``registry.add("logger", name, cls)``.

Trackers and resume: W&B and MLflow runs are named after the xmarl run, and their ids are kept
in the run folder (``trackers.json``), so a resumed run appends to the same tracker run. The
steps a resumed run trains again (those after its checkpoint) give exactly the numbers logged
before (resume is exact), so W&B, which keeps the first value of a step, shows one history.

* **W&B**: ``train.wandb`` gives ``project``, ``entity``, ``group``, ``tags`` and ``mode``
  (``offline`` by default: the run is written under ``<run>/wandb`` and needs no network or
  account; ``wandb sync`` uploads it later; ``online`` logs live). The resolved config is the
  run's config, and every GIF (``train.gif_every``) is logged as media.
* **MLflow**: ``train.mlflow`` gives ``tracking_uri`` (default: a SQLite store,
  ``<out_dir>/mlflow.db``, with artifacts in ``<out_dir>/mlartifacts``, shared by the runs of
  one ``out_dir``; a server's ``http://...`` works the same) and ``experiment``. The resolved
  config becomes the run's params (dotted keys), metrics are logged with their env step, and
  ``config.yaml``, ``result.json`` and the GIFs are its artifacts.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from xmarl import registry
from xmarl.config import flatten
from xmarl.errors import BackendNotInstalledError, ConfigError, choices, did_you_mean
from xmarl.files import atomic_write_text

#: the loggers xmarl ships, in the order a run opens them
BUILTIN = ("jsonl", "tensorboard", "csv", "wandb", "mlflow")
#: where a run folder keeps its trackers' run ids
TRACKERS = "trackers.json"


def _scalars(record: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in record.items() if k != "step" and isinstance(v, (int, float))
            and not isinstance(v, bool)}


class Logger:
    """One destination of a run's metrics. ``run_dir`` is the run folder, ``cfg`` the run's
    resolved config (plain data), ``ids`` the tracker ids kept in the run folder (a logger that
    has one stores it there under its name, so a resumed run continues the same tracker run)."""

    name = ""

    def __init__(self, run_dir: Path, cfg: dict[str, Any], ids: dict[str, str]) -> None:
        self.run_dir, self.cfg, self.ids = run_dir, cfg, ids

    def log(self, record: dict[str, Any]) -> None:
        """One record: ``step`` and named numbers (training or evaluation)."""

    def media(self, key: str, path: Path, step: int) -> None:
        """A file to show beside the metrics (an episode GIF)."""

    def close(self, failed: bool = False) -> None:
        """Flush and finish (``failed``: the run crashed or was stopped before its end)."""


class JsonlLogger(Logger):
    """One JSON object per record in ``metrics.jsonl`` (appended: a resumed run continues it)."""

    name = "jsonl"

    def __init__(self, run_dir: Path, cfg: dict[str, Any], ids: dict[str, str]) -> None:
        super().__init__(run_dir, cfg, ids)
        self.path = run_dir / "metrics.jsonl"
        self._file = self.path.open("a")

    def log(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self, failed: bool = False) -> None:
        self._file.close()


class TensorBoardLogger(Logger):
    """Scalars in ``<run>/tensorboard`` (tensorboardX), when it is installed."""

    name = "tensorboard"

    def __init__(self, run_dir: Path, cfg: dict[str, Any], ids: dict[str, str]) -> None:
        super().__init__(run_dir, cfg, ids)
        from tensorboardX import SummaryWriter

        self.tb_dir = run_dir / "tensorboard"
        self._tb = SummaryWriter(str(self.tb_dir))

    def log(self, record: dict[str, Any]) -> None:
        step = int(record["step"])
        for k, v in _scalars(record).items():
            self._tb.add_scalar(k, v, step)

    def close(self, failed: bool = False) -> None:
        self._tb.close()


class CsvLogger(Logger):
    """``metrics.csv``: a ``step,key,value`` row per number (any tool reads it as a long table)."""

    name = "csv"

    def __init__(self, run_dir: Path, cfg: dict[str, Any], ids: dict[str, str]) -> None:
        super().__init__(run_dir, cfg, ids)
        path = run_dir / "metrics.csv"
        new = not path.is_file()
        self._file = path.open("a")
        if new:
            self._file.write("step,key,value\n")

    def log(self, record: dict[str, Any]) -> None:
        step = int(record["step"])
        self._file.write("".join(f"{step},{k},{v!r}\n" for k, v in _scalars(record).items()))
        self._file.flush()

    def close(self, failed: bool = False) -> None:
        self._file.close()


class WandbLogger(Logger):
    """A Weights & Biases run (offline by default; see the module docstring)."""

    name = "wandb"

    def __init__(self, run_dir: Path, cfg: dict[str, Any], ids: dict[str, str]) -> None:
        super().__init__(run_dir, cfg, ids)
        os.environ.setdefault("WANDB_SILENT", "true")
        import wandb

        w = cfg["train"]["wandb"]
        run_id = ids.get(self.name) or secrets.token_hex(6)  # a W&B run id: lowercase letters and digits
        ids[self.name] = run_id
        self.run = wandb.init(project=w["project"], entity=w["entity"], group=w["group"], tags=list(w["tags"]),
                              mode=w["mode"], name=run_dir.name, id=run_id, resume="allow", dir=str(run_dir),
                              config=cfg, reinit="create_new")
        self._wandb = wandb

    def log(self, record: dict[str, Any]) -> None:
        self.run.log(_scalars(record), step=int(record["step"]))

    def media(self, key: str, path: Path, step: int) -> None:
        self.run.log({key: self._wandb.Video(str(path), format="gif")}, step=step)

    def close(self, failed: bool = False) -> None:
        self.run.finish(exit_code=1 if failed else 0)


class MlflowLogger(Logger):
    """An MLflow run (a SQLite store beside the runs by default; see the module docstring)."""

    name = "mlflow"

    def __init__(self, run_dir: Path, cfg: dict[str, Any], ids: dict[str, str]) -> None:
        super().__init__(run_dir, cfg, ids)
        for noisy in ("mlflow", "alembic"):  # database set-up notices stay off the console
            logging.getLogger(noisy).setLevel(logging.WARNING)
        from mlflow import MlflowClient
        from mlflow.entities import Param

        m = cfg["train"]["mlflow"]
        root = Path(cfg["out_dir"]).resolve()
        uri = m["tracking_uri"] or f"sqlite:///{root / 'mlflow.db'}"
        self.client = MlflowClient(tracking_uri=uri)
        exp = self.client.get_experiment_by_name(m["experiment"])
        # a store of our own keeps its artifacts beside it (MLflow's default is ./mlruns, wherever the run starts)
        where = None if m["tracking_uri"] else (root / "mlartifacts").as_uri()
        exp_id = exp.experiment_id if exp is not None else self.client.create_experiment(m["experiment"], where)
        if ids.get(self.name):
            self.run_id = ids[self.name]
            self.client.update_run(self.run_id, status="RUNNING")
        else:
            self.run_id = self.client.create_run(exp_id, run_name=run_dir.name,
                                                 tags={"xmarl.method": cfg["method"], "xmarl.backend": cfg["backend"],
                                                       "xmarl.env": cfg["env"]}).info.run_id
            ids[self.name] = self.run_id
            params = [Param(k, str(v)[:6000]) for k, v in flatten(cfg).items()]
            for i in range(0, len(params), 100):  # MLflow takes at most 100 params per call
                self.client.log_batch(self.run_id, params=params[i:i + 100])
        self.client.log_artifact(self.run_id, str(run_dir / "config.yaml"))

    def log(self, record: dict[str, Any]) -> None:
        import time

        from mlflow.entities import Metric

        now, step = int(time.time() * 1000), int(record["step"])
        self.client.log_batch(self.run_id, metrics=[Metric(k, v, now, step) for k, v in _scalars(record).items()])

    def media(self, key: str, path: Path, step: int) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path=key)

    def close(self, failed: bool = False) -> None:
        if (self.run_dir / "result.json").is_file():
            self.client.log_artifact(self.run_id, str(self.run_dir / "result.json"))
        self.client.set_terminated(self.run_id, status="KILLED" if failed else "FINISHED")


for _cls in (JsonlLogger, TensorBoardLogger, CsvLogger, WandbLogger, MlflowLogger):
    registry.add("logger", _cls.name, _cls)

#: the package each logger needs and the extra that installs it
NEEDS = {"tensorboard": ("tensorboardX", "tensorboard"), "wandb": ("wandb", "wandb"), "mlflow": ("mlflow", "mlflow")}


def check_loggers(names: list[str], tensorboard: bool = True) -> list[str]:
    """The loggers a run opens, in order (``jsonl`` first, always; ``tensorboard`` when wanted and
    installed); a one-line error for an unknown name or a tracker whose package is missing."""
    known = registry.names("logger")
    out = ["jsonl"]
    for name in names:
        if name not in known:
            raise ConfigError(f"unknown logger '{name}' in train.loggers{did_you_mean(name, known)}"
                              f"{choices(name, known)}")
        if name == "tensorboard" and not tensorboard or name in out:
            continue
        package, extra = NEEDS.get(name, (None, None))
        if package is not None and importlib.util.find_spec(package) is None:
            if name == "tensorboard":
                continue  # TensorBoard is on by default: without tensorboardX it is left out quietly
            raise BackendNotInstalledError(f"logger '{name}' needs {package}, which is not installed: "
                                           f"pip install 'xmarl[{extra}]'")
        out.append(name)
    return out


class MetricsLogger:
    """Every logger of a run (``train.loggers``): each record and GIF goes to all of them.
    ``path`` is ``metrics.jsonl``, ``tb_dir`` the TensorBoard folder (None without it)."""

    def __init__(self, run_dir: Path, tensorboard: bool = True, names: list[str] | None = None,
                 cfg: dict[str, Any] | None = None) -> None:
        self.run_dir = run_dir
        ids_path = run_dir / TRACKERS
        ids: dict[str, str] = json.loads(ids_path.read_text()) if ids_path.is_file() else {}
        before = dict(ids)
        self.loggers: list[Logger] = []
        try:
            for name in check_loggers(list(names if names is not None else ["jsonl", "tensorboard"]), tensorboard):
                self.loggers.append(registry.get("logger", name)(run_dir, cfg or {}, ids))
        except BaseException:
            self.close()
            raise
        if ids != before:
            atomic_write_text(ids_path, json.dumps(ids, indent=1))
        self.path = run_dir / "metrics.jsonl"
        tb = [lg for lg in self.loggers if isinstance(lg, TensorBoardLogger)]
        self.tb_dir: Path | None = tb[0].tb_dir if tb else None

    def log(self, record: dict[str, Any]) -> None:
        for lg in self.loggers:
            lg.log(record)

    def media(self, key: str, path: Path, step: int) -> None:
        for lg in self.loggers:
            lg.media(key, path, step)

    def close(self, failed: bool = False) -> None:
        """Close every logger once (later calls do nothing)."""
        loggers, self.loggers = self.loggers, []
        for lg in loggers:
            lg.close(failed)


__all__ = ["Logger", "MetricsLogger", "JsonlLogger", "TensorBoardLogger", "CsvLogger", "WandbLogger", "MlflowLogger",
           "check_loggers", "BUILTIN", "TRACKERS"]
