"""The ``xmarl`` command's error boundary: a mistake a user can make prints one line that names
the fix (exit status 2) and leaves no file behind; ``--debug`` / ``XMARL_DEBUG=1`` add the
traceback; a bug prints one line asking for a report (status 1); interrupts exit 128 + signal.
Property-based tests feed random overrides and YAML documents through the whole command."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xmarl import registry
from xmarl.cli import main

FAST = ["--set", "train.steps=40", "--set", "train.eval_interval=40", "--set", "train.eval_episodes=2",
        "--set", "maddpg.warmup_steps=16", "--set", "maddpg.batch_size=8", "--set", "train.tensorboard=false"]


def _cli(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(argv)
    return rc, err.getvalue()


def _run(out: Path, *extra: str) -> tuple[int, str]:
    return _cli(["run", "-m", "maddpg", "-b", "torch", "-e", "target", "--out-dir", str(out), "--no-progress",
                 *FAST, *extra])


def _leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith((".tmp", ".partial"))]


def _one_error_line(rc: int, err: str) -> str:
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("xmarl: error: "), (rc, err)
    assert "Traceback" not in err
    return lines[0]


def test_a_user_error_is_one_line_and_debug_adds_the_traceback(tmp_path, monkeypatch):
    monkeypatch.delenv("XMARL_DEBUG", raising=False)
    line = _one_error_line(*_run(tmp_path / "runs", "--set", "maddpg.lr_actr=1"))
    assert "did you mean 'maddpg.lr_actor'" in line
    for argv in (["--debug"], []):
        if not argv:
            monkeypatch.setenv("XMARL_DEBUG", "1")
        rc, err = _run(tmp_path / "runs", "--set", "maddpg.lr_actr=1", *argv)
        assert rc == 2 and "Traceback (most recent call last)" in err and err.strip().endswith(line), err
        monkeypatch.delenv("XMARL_DEBUG", raising=False)
    assert not (tmp_path / "runs").exists()


def test_a_bug_is_one_line_that_asks_for_a_report(monkeypatch):
    monkeypatch.delenv("XMARL_DEBUG", raising=False)

    def broken() -> str:
        raise IndexError("list index out of range")

    monkeypatch.setattr(registry, "table", broken)
    rc, err = _cli(["list"])
    assert rc == 1 and err.strip() == ("xmarl: internal error: IndexError: list index out of range; rerun with "
                                       "--debug for the traceback and report it"), err
    rc, err = _cli(["list", "--debug"])
    assert rc == 1 and "Traceback (most recent call last)" in err and "broken" in err


def test_a_disk_error_is_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv("XMARL_DEBUG", raising=False)

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / "x"))

    monkeypatch.setattr(registry, "table", full)
    line = _one_error_line(*_cli(["list"]))
    assert line == f"xmarl: error: No space left on device '{tmp_path / 'x'}'; check the path, its permissions and " \
                   "free space"


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupt_exits_with_128_plus_the_signal(monkeypatch, signum, status):
    def interrupted() -> str:
        exc = KeyboardInterrupt()
        if signum != signal.SIGINT:
            exc.signum = signum  # what the trainer raises after a SIGTERM checkpoint
        raise exc

    monkeypatch.setattr(registry, "table", interrupted)
    assert _cli(["list"])[0] == status


def test_docs_schema_show_of_an_unknown_class_is_one_line():
    line = _one_error_line(*_cli(["docs-schema", "--show", "MADDPGLernr"]))
    assert "did you mean 'MADDPGLearner'" in line and len(line) < 300


def test_xmarl_list_prints_no_framework_log_lines():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_CPP", "XMARL_", "GLOG"))}
    p = subprocess.run([sys.executable, "-m", "xmarl.cli", "list"], capture_output=True, text=True, env=env,
                       timeout=300)
    assert p.returncode == 0 and "method" in p.stdout
    assert p.stderr == "", p.stderr


# -- property-based: every input starts a run or is refused in one line, leaving nothing -------------------------
KEYS = ["seed", "name", "out_dir", "env_kwargs", "train", "train.steps", "train.num_envs", "train.eval_interval",
        "train.eval_episodes", "train.log_interval", "train.checkpoint_interval", "train.gif_every", "train.progress",
        "maddpg", "maddpg.gamma", "maddpg.tau", "maddpg.lr_actor", "maddpg.batch_size", "maddpg.buffer_size",
        "maddpg.hidden_sizes", "maddpg.grad_clip", "maddpg.adam", "maddpg.adam.betas", "maddpg.adam.eps",
        "maddpg.share_parameters", "maddpg.updates_per_round", "coma", "env_kwargs.n_agents", "env_kwargs.n_targets"]
SMALL_INTS = st.integers(min_value=-3, max_value=48)
SCALARS = st.one_of(st.none(), st.booleans(), SMALL_INTS, st.floats(allow_nan=True, allow_infinity=True, width=32),
                    st.text(max_size=12))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                      max_leaves=6)
RANDOM_KEYS = st.one_of(st.sampled_from(KEYS), st.text(alphabet="abcdefghijklmnopqrstuvwxyz._", max_size=16))
#: keys with values that are mostly valid, so that many examples start a run
PLAUSIBLE = {
    "seed": st.integers(-5, 10**6), "name": st.text(max_size=10), "train.steps": st.integers(0, 48),
    "train.num_envs": st.integers(0, 6), "train.eval_interval": st.integers(0, 64),
    "train.eval_episodes": st.integers(0, 4), "train.log_interval": st.integers(0, 64),
    "train.checkpoint_interval": st.integers(0, 64), "train.progress": st.booleans(),
    "maddpg.gamma": st.floats(-0.5, 1.5), "maddpg.tau": st.floats(0, 1), "maddpg.lr_actor": st.floats(-1e-3, 1e-2),
    "maddpg.batch_size": st.integers(0, 64), "maddpg.buffer_size": st.integers(0, 64),
    "maddpg.hidden_sizes": st.lists(st.integers(0, 16), max_size=3), "maddpg.grad_clip": st.one_of(
        st.none(), st.floats(-1, 10)), "maddpg.adam.betas": st.lists(st.floats(0, 1), min_size=1, max_size=3),
    "maddpg.share_parameters": st.booleans(), "maddpg.updates_per_round": st.integers(0, 3),
    "env_kwargs.n_targets": st.integers(0, 6), "env_kwargs.n_agents": st.integers(0, 4),
}
PAIRS = st.one_of(st.tuples(RANDOM_KEYS, VALUES),
                  st.sampled_from(sorted(PLAUSIBLE)).flatmap(lambda k: st.tuples(st.just(k), PLAUSIBLE[k])))


def _value_text(v: object) -> str:
    return yaml.safe_dump(v, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def _assert_run_or_one_line(argv: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):  # a relative out_dir lands in tmp too
        out = Path(tmp) / "runs"
        rc, err = _run(out, *argv)
        if rc == 0:
            results = list(out.rglob("result.json"))
            assert len(results) == 1, f"a run that started wrote no result: {argv}"
        else:
            line = _one_error_line(rc, err)
            assert len(line) < 400, line
            assert not out.exists() or not any(out.iterdir()), f"{argv} left {list(out.rglob('*'))}"
        assert not _leftovers(Path(tmp))
        if rc != 0:
            assert not [p for p in Path(tmp).rglob("*") if p.is_file()], f"{argv} left files"


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(st.lists(PAIRS, min_size=1, max_size=3))
def test_random_overrides_start_a_run_or_fail_in_one_line(pairs):
    argv = []
    for key, value in pairs:
        argv += ["--set", f"{key}={_value_text(value)}"]
    _assert_run_or_one_line(argv)


def _nested(pairs: list[tuple[str, object]]) -> dict:
    doc: dict = {}
    for key, value in pairs:
        *parents, last = key.split(".")
        node = doc
        for part in parents:
            node = node.setdefault(part, {}) if isinstance(node.get(part, {}), dict) else {}
        node[last] = value
    return doc


YAML_DOCS = st.one_of(
    st.dictionaries(RANDOM_KEYS, VALUES, max_size=4).map(lambda d: yaml.safe_dump(d, sort_keys=False)),
    st.lists(PAIRS, max_size=4).map(lambda ps: yaml.safe_dump(_nested(ps), sort_keys=False)),
    st.tuples(st.sampled_from(KEYS), st.sampled_from(["!!python/object/apply:os.getcwd []", "!custom 3", "&a 1",
                                                      "*undefined", "!!binary aGk=", "{", "[1, 2", "'open",
                                                      "2020-01-01", "0x1F", ".inf", "~", "|\n  text"]))
    .map(lambda kv: f"{kv[0].split('.')[0]}: {kv[1]}\n"),
    st.text(max_size=60),
    st.binary(max_size=40),
)


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(YAML_DOCS)
def test_random_yaml_documents_start_a_run_or_fail_in_one_line(doc):
    with tempfile.NamedTemporaryFile("wb", suffix=".yaml", delete=False) as f:
        f.write(doc if isinstance(doc, bytes) else doc.encode("utf-8", "surrogatepass"))
    try:
        _assert_run_or_one_line(["--config", f.name])
    finally:
        os.unlink(f.name)


def test_a_folder_that_cannot_be_written_is_one_line(tmp_path, monkeypatch):
    import errno

    import xmarl
    from xmarl.errors import PathError

    real = os.mkdir
    out = tmp_path / "runs"

    def read_only(path, *args, **kwargs):
        if str(path).startswith(str(out)):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", read_only)
    with pytest.raises(PathError) as e:
        xmarl.run("maddpg", "torch", "target", out_dir=out, overrides={"train.steps": 40, "train.progress": False})
    assert str(e.value).startswith("Read-only file system '") and "check the path" in str(e.value)
    line = _one_error_line(*_run(out))
    assert "Read-only file system" in line and not out.exists()
