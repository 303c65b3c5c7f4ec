"""Metrics: JSON lines always, TensorBoard when ``tensorboardX`` is installed."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any


class MetricsLogger:
    """Appends one JSON object per record to ``metrics.jsonl``; mirrors scalars to TensorBoard."""

    def __init__(self, run_dir: Path, tensorboard: bool = True) -> None:
        self.path = run_dir / "metrics.jsonl"
        self._file = self.path.open("a")
        self.tb_dir: Path | None = None
        self._tb = None
        if tensorboard and importlib.util.find_spec("tensorboardX") is not None:
            from tensorboardX import SummaryWriter

            self.tb_dir = run_dir / "tensorboard"
            self._tb = SummaryWriter(str(self.tb_dir))

    def log(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self._tb is not None:
            step = int(record["step"])
            for k, v in record.items():
                if k != "step" and isinstance(v, (int, float)):
                    self._tb.add_scalar(k, v, step)

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()
