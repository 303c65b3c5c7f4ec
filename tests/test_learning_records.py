"""Every shipped config has a recorded learning result (benchmarks/learning.py), made with the
config as it is now: 3 seeds in every backend, the random baseline beside it."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("learning_benchmark", ROOT / "benchmarks" / "learning.py")
learning = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(learning)

CONFIGS = learning.shipped_configs()


def test_the_shipped_configs_are_listed():
    assert "commnet/mpe/simple_spread_v3" in CONFIGS and "maddpg/target" in CONFIGS
    assert all((ROOT / "configs" / f"{c}.yaml").is_file() for c in CONFIGS)


@pytest.mark.parametrize("config", CONFIGS)
def test_every_shipped_config_has_a_current_learning_record(config):
    path = learning.record_path(config).with_suffix(".json")
    fix = f"run: python benchmarks/learning.py {config} --jobs 2"
    assert path.is_file(), f"configs/{config}.yaml has no learning record; {fix}"
    record = json.loads(path.read_text())
    method, env = config.split("/", 1)
    assert record["meta"]["config"] == learning.resolved(method, env), (
        f"configs/{config}.yaml changed since its learning record was made; {fix}")
    seeds = {}
    for run in record["runs"]:
        seeds.setdefault(run["backend"], set()).add(run["seed"])
        assert set(run["final"]) >= {"eval_return", "steps", "wall_time"} and "random_return" in run
        assert run["final"]["steps"] >= record["meta"]["config"]["train"]["steps"]
    assert set(seeds) == {"torch", "tensorflow", "mindspore"} and all(len(s) >= 3 for s in seeds.values()), seeds
    text = learning.record_path(config).with_suffix(".md").read_text()
    assert f"configs/{config}.yaml" in text and "beats random" in text


@pytest.mark.parametrize("config", CONFIGS)
def test_every_shipped_config_states_its_budget_in_minutes_from_its_record(config):
    """The opening comment of each shipped config says how long a run takes here, per backend, as
    its learning record measured (rewritten by python benchmarks/learning.py --budgets)."""
    record = json.loads(learning.record_path(config).with_suffix(".json").read_text())
    lines = (ROOT / "configs" / f"{config}.yaml").read_text().splitlines()
    head = lines[:next((k for k, x in enumerate(lines) if not x.startswith("#")), len(lines))]
    line = learning.budget_line(record)
    assert line in head, f"configs/{config}.yaml does not state its budget as its record measured it ({line!r}); " \
                         "run: python benchmarks/learning.py --budgets"
    assert "minutes per run" in line and all(name in line for name in ("torch", "TensorFlow", "MindSpore"))
