"""Cross-framework comparison: ``xmarl parity`` on the command line, and ``xmarl.compare`` on a
tiny budget (MADDPG on the built-in target game, 2 seeds x 3 backends) through the local
process pool and through a local Ray, its report, its statistics, and resuming an
interrupted compare."""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import xmarl
from tests.conftest import BACKENDS, require, require_module
from xmarl import registry
from xmarl.cli import main
from xmarl.compare import stats
from xmarl.errors import ConfigError, RegistryError, XmarlError
from xmarl.training.trainer import is_timing

STEPS = 1500
TINY = {"train.tensorboard": False, "train.eval_interval": 500, "train.log_interval": 500,
        "train.checkpoint_interval": 500}
RUNS = [f"maddpg-target-{b}-s{s}" for s in (0, 1) for b in BACKENDS]
MARL_EVAL = "pip install --no-deps id-marl-eval==0.0.4 rliable==1.2.0"
RECORDED = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "compare" / "spread_maddpg_coma"


def learning_record(run_dir: Path) -> dict:
    """Everything a run learned and logged, without wall-clock timings."""
    def strip(rec: dict) -> dict:
        return {k: v for k, v in rec.items() if not is_timing(k)}

    result = json.loads((run_dir / "result.json").read_text())
    lines = [strip(json.loads(line)) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {"final": strip(result["final_metrics"]), "curve": result["curve"], "metrics": lines}


def strict_json(path: Path) -> dict:
    def no_constants(name: str) -> None:
        raise AssertionError(f"{path} holds {name}, which is not JSON")

    return json.loads(path.read_text(), parse_constant=no_constants)


def check_report(result: xmarl.compare.CompareResult) -> None:
    out = result.out_dir
    for name in RUNS:
        assert (out / "runs" / name / "result.json").is_file(), name
    summary = strict_json(out / "summary.json")
    (task,) = summary["tasks"]
    assert list(task["final_return"]) == BACKENDS
    for b, d in task["final_return"].items():
        finals = [r["final_return"] for r in summary["runs"] if r["backend"] == b]
        assert d["n"] == 2 and d["mean"] == pytest.approx(np.mean(finals))
        assert d["mean_ci"][0] <= d["mean"] <= d["mean_ci"][1] and d["iqm_ci"][0] <= d["iqm"] <= d["iqm_ci"][1]
        assert task["throughput"][b]["steps_per_sec"] > 0
        assert task["curves"][b]["steps"] == [500.0, 1000.0, 1500.0]
    assert task["test"]["test"] == stats.TEST_NAME and 0.0 <= task["test"]["pvalue"] <= 1.0
    report = (out / "report.md").read_text()
    for b in BACKENDS:
        assert f"| {b} | 2 | " in report  # a summary-table row per backend with its 2 runs
    assert "**Verdict:**" in report and stats.TEST_NAME in report and "env-steps/s" in report
    assert f"]({task['figure']})" in report
    rows = (out / "runs.csv").read_text().splitlines()
    assert len(rows) == 1 + len(RUNS) and rows[0].startswith("method,env,backend,seed,final_return")
    # the last evaluation's other metrics (here the episode length; per group and the env's measures elsewhere)
    assert list(task["eval"]) == ["eval_agent/agent_0", "eval_agent/agent_1", "eval_length"]
    assert "eval_length" in rows[0].split(",") and "eval_agent/agent_1" in rows[0].split(",")
    assert all(task["eval"]["eval_length"][b]["mean"] == 5.0 for b in BACKENDS)  # target: 5-step episodes
    assert "| length | 5.000" in report
    # a valid, non-blank PNG
    from PIL import Image

    png, profile = result.figures
    assert png == out / task["figure"] and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert profile == out / task["profile_figure"] and profile.stat().st_size > 10_000
    # probability of improvement for each pair of backends, and each backend's performance profile
    assert [(q["a"], q["b"]) for q in task["improvement"]] == [(a, b) for i, a in enumerate(BACKENDS)
                                                                for b in BACKENDS[i + 1:]]
    assert all(0.0 <= q["ci"][0] <= q["p"] <= q["ci"][1] <= 1.0 for q in task["improvement"])
    for b, pr in task["profiles"].items():
        finals = [r["final_return"] for r in summary["runs"] if r["backend"] == b]
        assert pr["fraction"][0] == pytest.approx(np.mean(np.array(finals) > pr["tau"][0]))
        assert pr["fraction"][-1] == 0.0 and all(x >= y for x, y in zip(pr["fraction"], pr["fraction"][1:]))
    assert "| torch > tensorflow |" in report and f"]({task['profile_figure']})" in report
    # the standard protocol's JSON (marl-eval's layout): env family, task, algorithm, run, evaluation steps
    evaluation = strict_json(out / "marl_eval.json")
    algos = evaluation["target"]["target"]
    assert sorted(algos) == sorted(f"maddpg_{b}" for b in BACKENDS) and all(len(v) == 2 for v in algos.values())
    for r in summary["runs"]:
        run = algos[f"maddpg_{r['backend']}"][f"seed_{r['seed']}"]
        assert run["absolute_metrics"]["return"] == [r["final_return"]]
        assert [run[f"step_{k}"]["step_count"] for k in range(3)] == [500, 1000, 1500]
    with Image.open(png) as im:
        im.verify()
    with Image.open(png) as im:
        pixels = np.asarray(im.convert("RGB"), np.float32)
    assert pixels.shape[0] > 200 and pixels.shape[1] > 300 and pixels.std() > 10
    assert not list(out.rglob("*.tmp"))  # every file was written whole


def check_marl_eval_reads_it(out: Path) -> int:
    """marl-eval itself reads the compare's ``marl_eval.json``: per algorithm (``<method>_<backend>``)
    rliable's mean and IQM of the matrices marl-eval builds equal the report's, and rliable's
    probability of improvement between two backends equals the report's. Returns the number of
    algorithms checked."""
    processing = require_module("marl_eval.utils.data_processing_utils", MARL_EVAL)
    metrics = require_module("rliable.metrics", MARL_EVAL)
    summary = strict_json(out / "summary.json")
    processed = processing.data_process_pipeline(raw_data=strict_json(out / "marl_eval.json"),
                                                 metrics_to_normalize=[])
    report, checked = (out / "report.md").read_text(), 0
    for family in sorted({t["env"].partition("/")[0] for t in summary["tasks"]}):
        tasks = list(processed[family])  # the column order of marl-eval's (runs x tasks) matrices
        matrices, _ = processing.create_matrices_for_rliable(data_dictionary=copy.deepcopy(processed),
                                                             environment_name=family, metrics_to_normalize=[])
        for task in (t for t in summary["tasks"] if t["env"].partition("/")[0] == family):
            column = tasks.index(task["env"].partition("/")[2] or family)

            def scores(backend: str, task=task, column=column, matrices=matrices) -> np.ndarray:
                return matrices["mean_return"][f"{task['method']}_{backend}"][:, column:column + 1]

            for b, d in task["final_return"].items():
                x = scores(b)
                assert x.shape == (d["n"], 1)
                assert metrics.aggregate_mean(x) == pytest.approx(d["mean"], abs=1e-9)
                assert metrics.aggregate_iqm(x) == pytest.approx(d["iqm"], abs=1e-9)
                # the report's table shows the same numbers, rounded
                assert f"| {b} | {d['n']} | {metrics.aggregate_mean(x):.3f} |" in report
                assert f"| {metrics.aggregate_iqm(x):.3f} |" in report
                checked += 1
            for q in task["improvement"]:
                p = metrics.probability_of_improvement(scores(q["a"]), scores(q["b"]))
                assert p == pytest.approx(q["p"], abs=1e-9)
    return checked


@pytest.fixture(scope="module")
def pool_compare(tmp_path_factory):
    for b in BACKENDS:
        require(b)
    out = tmp_path_factory.mktemp("compare") / "pool"
    return xmarl.compare("maddpg", BACKENDS, "target", seeds=2, steps=STEPS, overrides=TINY, out_dir=out,
                         workers=2, progress=False)


# -- xmarl parity ---------------------------------------------------------------------------------

def test_parity_cli_passes_on_all_backends_and_writes_json(tmp_path, capsys):
    for b in BACKENDS:
        require(b)
    path = tmp_path / "parity.json"
    assert main(["parity", "-m", "maddpg", "--case", "hybrid-per_agent", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1].startswith("parity PASS")
    for other in BACKENDS[1:]:
        for group in ("forward", "loss", "grad", "update", "weights", "optimizer"):
            assert f"| maddpg-hybrid-per_agent | {other} vs torch | {group} |" in out
    data = strict_json(path)
    assert data["ok"] is True and data["backends"] == BACKENDS
    assert {r["backend"] for r in data["rows"]} == set(BACKENDS)


def test_parity_cli_fails_with_exit_1_on_a_backend_that_computes_differently(capsys):
    """A 'backend' whose learner reports weights off by 1e-3 after its updates is caught."""
    require("torch")
    torch_learner = registry.get("learner", "maddpg", "torch")

    class OffByALittle(torch_learner):
        def get_weights(self):
            return {k: v + 1e-3 for k, v in super().get_weights().items()}

    registry.register_backend("torch_off", "torch", "xmarl.backends.torch")
    registry.add("learner", "maddpg", OffByALittle, backend="torch_off")
    try:
        code = main(["parity", "-m", "maddpg", "-b", "torch,torch_off", "--case", "continuous-shared"])
    finally:
        registry._BACKENDS.pop("torch_off")
        registry._ENTRIES.pop(("learner", "maddpg", "torch_off"))
        registry._LOADED_BACKENDS.discard("torch_off")
    out = capsys.readouterr().out
    assert code == 1 and out.splitlines()[-1].startswith("parity FAIL")
    failed = {line.split("|")[3].strip() for line in out.splitlines() if line.endswith("| FAIL |")}
    assert failed == {"weights"}  # forward, losses, gradients and optimiser state still agree


# -- xmarl compare --------------------------------------------------------------------------------

def test_compare_on_the_local_pool_writes_the_report(pool_compare):
    check_report(pool_compare)
    assert check_marl_eval_reads_it(pool_compare.out_dir) == len(BACKENDS)
    assert sorted(pool_compare.ran) == sorted(RUNS) and not pool_compare.skipped and not pool_compare.resumed
    spec = json.loads((pool_compare.out_dir / "compare.json").read_text())
    assert spec["executor"] == "local" and spec["workers"] == 2 and spec["overrides"]["train.threads"] == 1
    config = (pool_compare.out_dir / "runs" / RUNS[0] / "config.yaml").read_text()
    assert "threads: 1" in config and f"steps: {STEPS}" in config
    assert strict_json(pool_compare.out_dir / "summary.json")["execution"] == {
        "local, 2 parallel runs, 1 thread(s) each": len(RUNS)}
    assert "- Executed: local, 2 parallel runs, 1 thread(s) each (6 runs)." in pool_compare.report.read_text()


def test_xmarl_report_writes_a_compares_report_again_from_its_runs(pool_compare, tmp_path, capsys):
    """The report folder copied elsewhere, its report files deleted: ``xmarl report`` makes them
    again from the saved runs, with the same numbers, and an HTML page beside the Markdown."""
    out = tmp_path / "copy"
    shutil.copytree(pool_compare.out_dir, out)
    before = strict_json(out / "summary.json")
    for name in ("report.md", "report.html", "summary.json", "runs.csv", *(f.name for f in pool_compare.figures)):
        (out / name).unlink()
    assert main(["report", str(out)]) == 0
    after = strict_json(out / "summary.json")
    assert after["tasks"] == before["tasks"] and after["runs"] == before["runs"]
    assert (out / "report.md").read_text() == pool_compare.report.read_text().replace(str(pool_compare.out_dir),
                                                                                      str(out))
    page = (out / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<table>" in page and f'src="{before["tasks"][0]["figure"]}"' in page
    assert "mean [95% CI]" in capsys.readouterr().out


def test_xmarl_report_of_a_run_folder_and_of_something_else(pool_compare, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(pool_compare.out_dir / "runs" / RUNS[0], run)
    assert main(["report", str(run)]) == 0
    text = (run / "report.md").read_text()
    last = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if "eval_return" in x][-1]
    assert f"## Last evaluation (step {last['step']})" in text
    assert f"| eval_return | {last['eval_return']:.3f} |" in text
    assert "![greedy evaluation return](curve.png)" in text and (run / "curve.png").stat().st_size > 10_000
    assert "| update |" in text and (run / "report.html").is_file()
    capsys.readouterr()
    assert main(["report", str(tmp_path)]) == 2
    assert "is neither a compare folder (compare.json) nor a run folder" in capsys.readouterr().err


def test_compare_on_local_ray_gives_the_same_results(pool_compare, tmp_path):
    ray = require_module("ray", "pip install 'xmarl[ray]'")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        result = xmarl.compare("maddpg", BACKENDS, "target", seeds=2, steps=STEPS, overrides=TINY,
                               out_dir=tmp_path / "ray", executor="ray", progress=False)
    finally:
        ray.shutdown()
    check_report(result)
    assert sorted(result.ran) == sorted(RUNS)
    assert strict_json(result.out_dir / "summary.json")["execution"] == {
        "ray, Ray-scheduled parallel runs, 1 thread(s) each": len(RUNS)}
    for name in RUNS:  # runs are deterministic per backend and seed, whichever executor ran them
        assert learning_record(result.out_dir / "runs" / name) == learning_record(pool_compare.out_dir / "runs" / name)


def test_compare_again_skips_finished_runs(pool_compare, tmp_path):
    out = tmp_path / "again"
    shutil.copytree(pool_compare.out_dir, out)
    stamps = {n: (out / "runs" / n / "result.json").stat().st_mtime_ns for n in RUNS}
    result = xmarl.compare("maddpg", BACKENDS, "target", seeds=2, steps=STEPS, overrides=TINY, out_dir=out,
                           progress=False)
    assert sorted(result.skipped) == sorted(RUNS) and not result.ran and not result.resumed
    assert stamps == {n: (out / "runs" / n / "result.json").stat().st_mtime_ns for n in RUNS}
    assert strict_json(out / "summary.json")["tasks"] == strict_json(pool_compare.out_dir / "summary.json")["tasks"]
    # a finished run made with another config is never reused
    with pytest.raises(XmarlError, match=r"made with another config \(train.steps=1500 there, 3000 asked\)"):
        xmarl.compare("maddpg", BACKENDS, "target", seeds=2, steps=3000, overrides=TINY, out_dir=out, progress=False)
    # runs made before xmarl had a key (here env_impl) are reused when it is asked at its default, not otherwise
    for n in RUNS:
        path = out / "runs" / n / "config.yaml"
        path.write_text("".join(x for x in path.read_text().splitlines(True) if not x.startswith("env_impl:")))
    again = xmarl.compare("maddpg", BACKENDS, "target", seeds=2, steps=STEPS, overrides=TINY, out_dir=out,
                          progress=False)
    assert sorted(again.skipped) == sorted(RUNS) and not again.ran
    with pytest.raises(XmarlError, match=r"made with another config \(env_impl='<unset>' there, 'reference' asked\)"):
        xmarl.compare("maddpg", BACKENDS, "target", seeds=2, steps=STEPS, overrides={**TINY, "env_impl": "reference"},
                      out_dir=out, progress=False)


def test_interrupted_compare_resumes_without_rerunning_finished_runs(pool_compare, tmp_path):
    """Ctrl-C (SIGINT to the process group) while the second run trains, then the same compare again."""
    require("torch")
    out = tmp_path / "interrupted"
    argv = [sys.executable, "-m", "xmarl", "compare", "-m", "maddpg", "-e", "target", "-b", "torch", "--seeds", "2",
            "--steps", str(STEPS), "--out-dir", str(out), "--workers", "1"]
    argv += [f"--set={k}={v}" for k, v in TINY.items()]
    proc = subprocess.Popen(argv, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first, second = out / "runs" / "maddpg-target-torch-s0", out / "runs" / "maddpg-target-torch-s1"
    deadline = time.monotonic() + 180
    # the second run has started (its metrics file is open): the first one is finished, as workers=1
    while not (second / "metrics.jsonl").is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert (first / "result.json").is_file() and not (second / "result.json").is_file()
    stamp = (first / "result.json").stat().st_mtime_ns

    result = xmarl.compare("maddpg", ["torch"], "target", seeds=2, steps=STEPS, overrides=TINY, out_dir=out,
                           progress=False)
    assert result.skipped == [first.name] and result.ran + result.resumed == [second.name]
    assert (first / "result.json").stat().st_mtime_ns == stamp
    # the interrupted run, resumed or restarted, learned exactly what the uninterrupted one did
    for run in (first, second):
        assert learning_record(run) == learning_record(pool_compare.out_dir / "runs" / run.name)


def test_compare_bad_inputs_are_one_line_errors_and_write_nothing(tmp_path):
    out = tmp_path / "never"
    cases = [
        (dict(executor="rey"), ConfigError, "did you mean 'ray'"),
        (dict(backends=["torch", "tensorflw"]), RegistryError, "did you mean 'tensorflow'"),
        (dict(method="madpg"), RegistryError, "did you mean 'maddpg'"),
        (dict(env="targte"), XmarlError, "did you mean 'target'"),
        (dict(seeds=0), ConfigError, "number of seeds >= 1"),
        (dict(seeds=[1, 1]), ConfigError, "distinct seeds"),
        (dict(overrides={"seed": 3}), ConfigError, "pass seeds=... instead"),
        (dict(overrides={"maddpg.gama": 0.9}), ConfigError, "did you mean 'maddpg.gamma'"),
        (dict(workers=0), ConfigError, "workers=0"),
    ]
    for kwargs, exc, text in cases:
        args = {"method": "maddpg", "backends": ["torch"], "env": "target", "out_dir": out, "progress": False, **kwargs}
        with pytest.raises(exc, match=text) as e:
            xmarl.compare(**args)
        assert "\n" not in str(e.value)
    assert not out.exists()


def test_plan_lists_every_run_without_running_or_writing_anything(tmp_path):
    """Methods x envs x seeds x backends in that nesting, each with its folder and overrides."""
    for b in BACKENDS:
        require(b)
    from xmarl.compare.runner import plan, validate

    out = tmp_path / "planned"
    args = validate("maddpg", BACKENDS, ["target", "median"], seeds=[3, 5], steps=200, overrides=TINY,
                    out_dir=out, workers=4)
    p = plan(args)
    cells = [(m, e, s, b) for m in ["maddpg"] for e in ["target", "median"] for s in [3, 5] for b in BACKENDS]
    assert [(t.method, t.env, t.seed, t.backend) for t in p.tasks] == cells
    assert p.pairs == [("maddpg", "target"), ("maddpg", "median")] and p.todo == p.tasks
    assert not p.skipped and not p.resumed and p.steps == [200] and p.workers == 4
    assert p.root == out and p.runs_dir == out / "runs"
    task = p.tasks[1]
    assert task.name == "maddpg-target-tensorflow-s3" and task.run_dir == str(out / "runs" / task.name)
    assert task.overrides == {**TINY, "train.steps": 200, "train.threads": 1, "seed": 3, "out_dir": str(out / "runs"),
                              "name": task.name, "train.progress": False}
    assert task.config is None and not task.resume and task.threads == 1
    assert p.spec["envs"] == ["target", "median"] and p.spec["workers"] == 4
    assert not out.exists()  # planning writes nothing


def test_cli_compare_bad_seeds_is_a_one_line_error(capsys):
    assert main(["compare", "-m", "maddpg", "-e", "target", "--seeds", "two"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--seeds two" in err[0]


def test_ray_executor_without_ray_names_the_extra(tmp_path):
    code = ("import sys\nsys.modules['ray'] = None\nimport xmarl\n"
            "try:\n"
            f"    xmarl.compare('maddpg', ['torch'], 'target', seeds=1, steps=100, out_dir={str(tmp_path / 'c')!r},\n"
            "                  executor='ray', progress=False)\n"
            "except xmarl.errors.XmarlError as e:\n"
            "    print(e)\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "executor 'ray' needs ray, which is not installed: pip install 'xmarl[ray]'"


def test_import_xmarl_imports_no_scipy_matplotlib_or_ray():
    code = ("import sys, xmarl\nassert callable(xmarl.compare) and callable(xmarl.parity)\n"
            "import xmarl.compare.parity, xmarl.compare.runner\n"
            "print(sorted(m for m in ('scipy', 'matplotlib', 'ray', 'torch', 'tensorflow', 'mindspore') "
            "if m in sys.modules))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[]"


# -- statistics -----------------------------------------------------------------------------------

def test_iqm_and_bootstrap_intervals():
    x = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 100.0])
    assert stats.iqm(x) == pytest.approx(np.mean([2.0, 3.0, 4.0, 5.0]))  # the outlier is cut
    lo, hi = stats.bootstrap_ci(x, stats.mean)
    assert lo < x.mean() < hi and hi - lo > 10
    assert stats.bootstrap_ci([5.0, 5.0, 5.0]) == (5.0, 5.0)
    assert stats.bootstrap_ci(x, stats.iqm, seed=3) == stats.bootstrap_ci(x, stats.iqm, seed=3)
    band = stats.curve_band([[1, 2, 3], [1, 2]], [[0.0, 1.0, 9.0], [2.0, 3.0]])
    assert band["steps"] == [1.0, 2.0] and band["mean"] == [1.0, 2.0]  # only steps every run has
    assert all(lo <= m <= hi for lo, m, hi in zip(band["lo"], band["mean"], band["hi"]))


def test_intervals_from_scipy_agree_with_the_recorded_compare_and_improvement_is_the_u_statistic():
    """The bootstrap is scipy's now (it was written by hand): on the compare recorded in the docs,
    every final-return interval is what the report shows. Probability of improvement is
    P(X > Y) with ties counted half, e.g. 7 of the 9 pairs of [1, 2, 3] against [0, 1, 2]."""
    recorded = strict_json(Path(__file__).resolve().parents[1] / "docs" / "examples" / "compare" / "summary.json")
    for task in recorded["tasks"]:
        for b, d in task["final_return"].items():
            finals = [r["final_return"] for r in recorded["runs"] if r["backend"] == b and r["env"] == task["env"]]
            now = stats.describe(finals)
            assert now["mean_ci"] == pytest.approx(d["mean_ci"]) and now["iqm_ci"] == pytest.approx(d["iqm_ci"])
    poi = stats.probability_of_improvement([1.0, 2.0, 3.0], [0.0, 1.0, 2.0])
    assert poi["p"] == pytest.approx(7 / 9) and poi["ci"][0] < 7 / 9 < poi["ci"][1]
    assert stats.probability_of_improvement([5.0, 6.0], [1.0, 2.0]) == {"p": 1.0, "ci": [1.0, 1.0]}
    x = np.random.default_rng(0).normal(size=40)
    lo, hi = stats.bootstrap_ci(x, stats.mean)
    assert lo < x.mean() < hi and hi - lo == pytest.approx(2 * 1.96 * x.std() / np.sqrt(40), rel=0.15)


def test_the_recorded_spread_compare_loads_in_marl_eval_with_the_reports_scores():
    """The recorded compare of MADDPG and COMA on simple_spread (5 seeds x 3 backends,
    benchmarks/results/compare/spread_maddpg_coma) read by marl-eval: its aggregate scores are the
    report's."""
    summary = strict_json(RECORDED / "summary.json")
    assert sorted(summary["methods"]) == ["coma", "maddpg"] and len(summary["seeds"]) == 5
    assert check_marl_eval_reads_it(RECORDED) == 2 * len(summary["backends"]) == 6
    # each method trained its own config's budget (300k, 4M), so the command that reproduces it names none
    # (it read "--steps 0", which trains nothing)
    (reproduce,) = [x for x in (RECORDED / "report.md").read_text().splitlines() if x.startswith("- Reproduce:")]
    assert "--steps" not in reproduce and "--seeds 100,101,102,103,104" in reproduce
    assert summary["command"] == reproduce.split("`")[1]


def test_backends_differ_verdicts():
    apart = stats.backends_differ({"a": [1.0, 2.0, 3.0], "b": [5.0, 6.0, 7.0], "c": [9.0, 9.5, 10.0]})
    assert apart["differ"] is True and apart["exact"] is True
    assert apart["pvalue"] == pytest.approx(6 / 1680)  # 6 of the 9!/(3!3!3!) arrangements are as extreme
    assert apart["verdict"].startswith("backends differ: permutation test")
    (ab, ac, bc) = apart["pairwise"]
    assert ab["mean_diff"] == pytest.approx(-4.0) and ab["t"] < 0 and ab["pvalue_holm"] >= ab["pvalue"]
    same = stats.backends_differ({"a": [5.0, 5.0], "b": [5.0, 5.0]})
    assert same["differ"] is False and same["pvalue"] == 1.0 and same["pairwise"][0]["t"] is None
    assert "no detectable difference" in same["verdict"]
    # the same returns in every backend (in another order) tie exactly with the observed arrangement
    tied = stats.backends_differ({"a": [5.0, 5.0, 3.15], "b": [3.15, 5.0, 5.0], "c": [5.0, 3.15, 5.0]})
    assert tied["pvalue"] == 1.0 and tied["statistic"] == 0.0
    overlap = stats.backends_differ({"a": [1.0, 3.0, 2.0, 4.0], "b": [2.5, 1.5, 3.5, 2.0]})
    assert overlap["differ"] is False and overlap["pvalue"] > 0.5
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert math.isnan(stats.holm([float("nan"), 0.2])[0])
