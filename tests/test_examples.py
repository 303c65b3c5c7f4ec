"""The scripts under ``examples/`` (each a tutorial of the docs) and the landing page's quickstart
run as a newcomer runs them, with small budgets, and do what their pages say:

* the quickstart block of ``docs/index.rst`` is executed exactly as printed and learns the target
  game;
* each example runs through ``runpy`` (one process; the method plugin's in a fresh one, where its
  entry point is found) with a few thousand env steps, and its printed results are checked:
  returns reached, backends agreeing, reports written, parity passed;
* ``xmarl.load`` reproduces a run's final evaluation in every backend and refuses what it cannot load.
"""

from __future__ import annotations

import os
import re
import runpy
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import xmarl
from tests.conftest import BACKENDS, require
from xmarl.errors import XmarlError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def _require_all() -> None:
    for b in BACKENDS:
        require(b)


def _run_example(name: str, args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                 capsys: pytest.CaptureFixture[str]) -> str:
    """Run ``examples/<name>`` as ``python examples/<name> *args`` from ``tmp_path``; its stdout."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(EXAMPLES / name), *args])
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    return capsys.readouterr().out


def test_every_example_has_a_tutorial_and_a_test():
    tutorials = {p.stem: p.read_text() for p in (ROOT / "docs" / "tutorials").glob("*.rst")}
    tested = set(re.findall(r'_run_example\("(\w+\.py)"', Path(__file__).read_text())) | {"method_plugin.py"}
    for script in sorted(p.name for p in EXAMPLES.glob("*.py")):
        assert any(f"examples/{script}" in text for text in tutorials.values()), f"{script}: no tutorial includes it"
        assert script in tested, f"{script}: not run by tests/test_examples.py"


def _quickstart() -> str:
    """The python block named ``quickstart`` on the landing page, as printed."""
    text = (ROOT / "docs" / "index.rst").read_text()
    m = re.search(r"\.\. code-block:: python\n   :name: quickstart\n\n((?:   .*\n|\n)+?)(?=\S)", text)
    assert m, "docs/index.rst has no `.. code-block:: python` with `:name: quickstart`"
    return textwrap.dedent(m.group(1))


def test_landing_page_quickstart_runs_as_printed(tmp_path, monkeypatch, capsys):
    require("torch")
    code = _quickstart()
    assert 4 <= len(code.strip().splitlines()) <= 12, "the quickstart should stay about ten lines"
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "docs/index.rst (quickstart)", "exec"), {"__name__": "__main__"})
    out = capsys.readouterr().out
    assert "final greedy eval return (per agent): 5.000" in out  # the target game is solved
    assert re.search(r"'return': 5\.0\b", out), out  # and the loaded policy solves fresh episodes


def test_train_and_evaluate(tmp_path, monkeypatch, capsys):
    require("torch")
    out = _run_example("train_and_evaluate.py", ["--env", "target", "--steps", "3000"], tmp_path, monkeypatch, capsys)
    assert "final greedy eval return (per agent): 5.000" in out
    assert re.search(r"step\s+3,000: return\s+5\.000", out)
    assert "eval_return" in out and "critic_loss" in out  # metrics.jsonl's keys are listed
    assert re.search(r"fresh episodes: return per agent 5\.000", out)


def test_custom_pettingzoo_env(tmp_path, monkeypatch, capsys):
    require("torch")
    out = _run_example("custom_env.py", ["--steps", "24000"], tmp_path, monkeypatch, capsys)
    assert "tutorial/rendezvous" in xmarl.registry.names("env")
    m = re.search(r"random actions: return per agent (-?[\d.]+); trained policy: (-?[\d.]+)", out)
    assert m, out
    random_return, trained = float(m.group(1)), float(m.group(2))
    assert trained > random_return + 2.0, out  # COMA has learned to meet within 24k env steps


def test_compare_backends_writes_a_report(tmp_path, monkeypatch, capsys):
    require("torch")
    require("tensorflow")
    out = _run_example("compare_backends.py", ["--backends", "torch", "tensorflow", "--seeds", "2", "--steps", "400"],
                       tmp_path, monkeypatch, capsys)
    finals = dict(re.findall(r"^\s*(torch|tensorflow): mean (-?[\d.]+)", out, re.M))
    assert set(finals) == {"torch", "tensorflow"} and finals["torch"] == finals["tensorflow"], out
    folder = tmp_path / "compare" / "maddpg-target"
    assert {"report.md", "summary.json", "runs.csv", "curves_maddpg_target.png"} <= {p.name for p in folder.iterdir()}
    assert "no detectable difference" in out


def test_cross_backend_checkpoint(tmp_path, monkeypatch, capsys):
    _require_all()
    out = _run_example("cross_backend_checkpoint.py", [], tmp_path, monkeypatch, capsys)
    trained = re.search(r"final greedy return (-?[\d.]+)", out).group(1)
    returns = dict(re.findall(r"^\s*(torch|tensorflow|mindspore): return (-?[\d.]+)", out, re.M))
    assert returns == {b: trained for b in BACKENDS}, out  # the run's own evaluation, replayed in each
    assert "every backend chose the same actions: True" in out


def test_hybrid_actions(tmp_path, monkeypatch, capsys):
    require("torch")
    out = _run_example("hybrid_actions.py", [], tmp_path, monkeypatch, capsys)
    assert "action kind hybrid: 2 categorical entries + 1 continuous per agent" in out
    final = float(re.search(r"final greedy eval return \(per agent\): (-?[\d.]+)", out).group(1))
    assert final > 1.5, out  # random play earns about 0.6 per episode (configs/maddpg/median.yaml)
    offers = re.findall(r"offers \[([^\]]+)\]", out)
    assert len(offers) == 3 and all(0.0 <= float(x) <= 1.0 for o in offers for x in o.split(",")), out


def test_method_plugin_in_every_backend(tmp_path):
    """The plugin installed as a package (its entry point found by xmarl), in a fresh process."""
    _require_all()
    target = tmp_path / "site"
    src = tmp_path / "src"
    shutil.copytree(ROOT / "tests" / "fixtures" / "xmarl_reinforce_plugin", src,
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                          "--target", str(target), str(src)], capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stderr
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), str(ROOT)]), "TF_CPP_MIN_LOG_LEVEL": "2"}
    p = subprocess.run([sys.executable, str(EXAMPLES / "method_plugin.py"), "--steps", "2000"], cwd=tmp_path,
                       env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    returns = dict(re.findall(r"^\s*(torch|tensorflow|mindspore): greedy return per agent (-?[\d.]+)", p.stdout,
                              re.M))
    assert set(returns) == set(BACKENDS), p.stdout
    assert all(float(r) > 3.0 for r in returns.values()), p.stdout  # random play on target: about 1.5
    assert "| fail |" not in p.stdout and "| pass |" in p.stdout
    assert "match it" in p.stdout and p.stdout.count("numpy reference") == 3


# -- xmarl.load ---------------------------------------------------------------------------------
def test_load_reproduces_the_run_in_every_backend_and_acts_on_one_env(tmp_path):
    _require_all()
    result = xmarl.run("maddpg", "torch", "target", steps=1000, out_dir=tmp_path, progress=False,
                       overrides={"train.eval_interval": 1000})
    obs = np.random.default_rng(1).standard_normal((7, 2, 3)).astype(np.float32)
    acts = {}
    for backend in BACKENDS:
        policy = xmarl.load(result.run_dir, backend=backend)
        assert policy.backend == backend and policy.agents == ["agent_0", "agent_1"]
        assert policy.evaluate()["return"] == pytest.approx(result.final_metrics["eval_return"], abs=1e-9)
        acts[backend], state = policy.act(obs)
        assert state is None and acts[backend].shape == (7, 2)
        one, _ = policy.act(obs[0])  # a single env's observations [A, obs_dim]
        assert one.shape == (2,) and np.array_equal(one, acts[backend][0])
    assert all(np.array_equal(acts[b], acts["torch"]) for b in BACKENDS)
    step_dir = sorted((result.run_dir / "checkpoints").glob("step_*"))[-1]
    assert xmarl.load(step_dir).checkpoint == step_dir


def test_load_refuses_bad_inputs_in_one_line(tmp_path):
    require("torch")
    with pytest.raises(XmarlError, match="checkpoint"):
        xmarl.load(tmp_path / "no-such-run")
    result = xmarl.run("coma", "torch", "target", steps=400, out_dir=tmp_path, progress=False,
                       overrides={"train.eval_interval": 400, "coma.batch_episodes": 4})
    policy = xmarl.load(result.run_dir)
    with pytest.raises(ValueError, match=r"expected \[2, \d+\] or \[E, 2, \d+\]"):
        policy.act(np.zeros((3, 3), np.float32))
    (result.run_dir / "config.yaml").unlink()
    with pytest.raises(XmarlError, match="no config.yaml"):
        xmarl.load(result.run_dir)

