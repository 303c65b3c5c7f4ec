"""Checkpoints under disk faults and damage, and their size (torch; checkpoints are
framework-neutral files): a checkpoint that cannot be written stops the run with a one-line
error and keeps the previous one; a damaged checkpoint is refused naming the file, and a resume
of the run folder falls back to the newest intact one; the replay is stored once per run."""

from __future__ import annotations

import errno
import json
import resource
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import xmarl
from tests.conftest import require
from xmarl.config import load_config
from xmarl.errors import XmarlError
from xmarl.training import checkpoint
from xmarl.training.checkpoint import REPLAY, latest_checkpoint, load_weights
from xmarl.training.trainer import Trainer, is_timing

OV = {"train.steps": 1200, "train.eval_interval": 300, "train.log_interval": 100, "train.checkpoint_interval": 300,
      "maddpg.warmup_steps": 100, "maddpg.batch_size": 32, "maddpg.update_every": 20, "train.tensorboard": False,
      "train.progress": False}


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """The uninterrupted run every resumed run must reproduce."""
    require("torch")
    return xmarl.run("maddpg", "torch", "target", out_dir=tmp_path_factory.mktemp("full"), overrides=OV)


@pytest.fixture(scope="module")
def half(tmp_path_factory):
    """The same run stopped after its checkpoints at 300 and 600 (to be copied and damaged)."""
    require("torch")
    cfg = load_config("maddpg", "target", "torch", overrides={**OV, "out_dir": str(tmp_path_factory.mktemp("half"))})
    trainer = Trainer(cfg)
    update = trainer.learner.update

    def crash(batch):
        if trainer.state.step > 700:
            raise RuntimeError("simulated crash")
        return update(batch)

    trainer.learner.update = crash
    with pytest.raises(RuntimeError, match="simulated crash"):
        trainer.train()
    return trainer.run_dir


def _records(run_dir: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(x).items() if not is_timing(k)}
            for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _same_run(run_dir: Path, full: xmarl.RunResult) -> None:
    assert _records(run_dir) == _records(full.run_dir)
    a, b = load_weights(run_dir), load_weights(full.run_dir)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def _step(folder: Path) -> int:
    return json.loads((folder / "trainer.json").read_text())["step"]


def _clean(run_dir: Path) -> None:
    """No half-written file or folder, no lock, and no replay file that no checkpoint names."""
    assert not list(run_dir.rglob("*.partial")) and not list(run_dir.rglob("*.tmp"))
    assert not (run_dir / ".lock").exists()
    named = {f for c in (run_dir / "checkpoints").glob("step_*")
             for f in json.loads((c / "replay.json").read_text())["files"]}
    assert {f.name for f in (run_dir / REPLAY).iterdir()} == named


@pytest.mark.parametrize("failing", ["replay chunk", "weights.npz"])
def test_disk_full_keeps_the_last_good_checkpoint_and_resumes(full, out_dir, monkeypatch, failing):
    """No space left while writing the checkpoint at step 900 (its replay chunk, or a file of
    its folder once the chunk is written): one line naming the checkpoint, the fix and the last
    good checkpoint; nothing half-written is left; the resume reproduces the uninterrupted run."""
    cfg = load_config("maddpg", "target", "torch", overrides={**OV, "out_dir": str(out_dir)})
    trainer = Trainer(cfg)
    write = {"replay chunk": (checkpoint, "atomic_save_npz"), "weights.npz": (np, "savez")}[failing]
    original = getattr(*write)

    def disk_full(file, *args, **kwds):
        if trainer.state.step >= 900 and str(file).endswith(".npz"):  # chunk files; weights.npz, the first
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(file, *args, **kwds)

    monkeypatch.setattr(*write, disk_full)
    with pytest.raises(XmarlError) as e:
        trainer.train()
    monkeypatch.undo()
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"cannot write checkpoint {trainer.run_dir / 'checkpoints' / 'step_000000000900'}: "
                          "No space left on device; free space on that disk, then resume with: xmarl run --resume")
    assert msg.endswith(f"(the last good checkpoint is {trainer.run_dir / 'checkpoints' / 'step_000000000600'})")
    assert _step(latest_checkpoint(trainer.run_dir)) == 600
    _clean(trainer.run_dir)
    xmarl.run(resume=trainer.run_dir)
    _same_run(trainer.run_dir, full)
    _clean(trainer.run_dir)


def test_file_size_limit_stops_the_cli_with_one_line_and_resumes(half, full, tmp_path):
    """A real write failure (RLIMIT_FSIZE: each file at most 16 KB, which the replay chunk of
    step 900 passes) in ``xmarl run --resume``: exit status 2, one line, the checkpoint of step
    600 intact; resumed without the limit, the run ends as the uninterrupted one."""
    run_dir = tmp_path / half.name
    shutil.copytree(half, run_dir)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    p = subprocess.run([sys.executable, "-m", "xmarl", "run", "--resume", str(run_dir)],
                       preexec_fn=limit, capture_output=True, text=True, timeout=300)
    errors = [line for line in p.stderr.splitlines() if line.startswith("xmarl: error:")]
    assert p.returncode == 2 and len(errors) == 1, p.stderr[-2000:]
    assert f"cannot write checkpoint {run_dir / 'checkpoints' / 'step_000000000900'}: File too large;" in errors[0]
    assert "Traceback" not in p.stderr
    assert _step(latest_checkpoint(run_dir)) == 600
    _clean(run_dir)
    xmarl.run(resume=run_dir)
    _same_run(run_dir, full)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip(path: Path) -> None:
    """One byte flipped in the middle of the largest array's data: the zip CRC no longer matches."""
    with zipfile.ZipFile(path) as z:
        info = max(z.infolist(), key=lambda i: i.file_size)
    data = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)  # the local header's size
    data[start + info.file_size // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _other_method(path: Path) -> None:
    state = json.loads(path.read_text())
    path.write_text(json.dumps({**state, "method": "coma"}))


def _wrong_shapes(path: Path) -> None:
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    k = sorted(arrays)[0]
    arrays[k] = np.zeros(arrays[k].shape[:-1] + (arrays[k].shape[-1] + 1,), arrays[k].dtype)
    np.savez(path, **arrays)


def _replay_chunk(folder: Path) -> Path:
    (fname,) = json.loads((folder / "replay.json").read_text())["files"]
    return folder.parent.parent / REPLAY / fname


DAMAGE = {  # case: (file of the newest checkpoint, how it is damaged, what the error says)
    "truncated weights": (lambda f: f / "weights.npz", _truncate, r"weights\.npz cannot be loaded \("),
    "corrupt optimizer": (lambda f: f / "optimizer.npz", _flip, r"optimizer\.npz cannot be loaded \(.*CRC"),
    "missing trainer.json": (lambda f: f / "trainer.json", Path.unlink, r"trainer\.json cannot be loaded \("),
    "missing env snapshot": (lambda f: f / "env.pkl", Path.unlink, r"env\.pkl cannot be loaded \(missing\)"),
    "another method": (lambda f: f / "trainer.json", _other_method,
                       r"trainer\.json is coma/torch/target, not maddpg/torch/target"),
    "weights of wrong shapes": (lambda f: f / "weights.npz", _wrong_shapes,
                                r"weights\.npz cannot be loaded \(.*has shape .*, expected"),
    "truncated replay chunk": (_replay_chunk, _truncate, r"replay/chunk_00000_step_000000000600_.*\.npz cannot be"),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_damaged_checkpoint_is_refused_and_the_run_falls_back(half, full, tmp_path, capsys, case):
    """The damaged newest checkpoint (step 600) loaded by itself: a one-line error naming the
    file. The run folder resumed: a warning naming it, the resume continues from step 300 and
    ends exactly as the uninterrupted run."""
    run_dir = tmp_path / half.name
    shutil.copytree(half, run_dir)
    newest = run_dir / "checkpoints" / "step_000000000600"
    target, damage, error = DAMAGE[case]
    path = target(newest)
    damage(path)
    with pytest.raises(XmarlError, match=error) as e:
        xmarl.run(resume=newest)
    assert "\n" not in str(e.value) and str(path) in str(e.value)
    capsys.readouterr()

    xmarl.run(resume=run_dir)
    err = capsys.readouterr().err
    assert f"xmarl: warning: checkpoint {'file ' if 'method' not in case else ''}{path}" in err
    assert f"resuming from the newest intact checkpoint, {run_dir / 'checkpoints' / 'step_000000000300'}" in err
    _same_run(run_dir, full)


def test_no_intact_checkpoint_is_the_newest_ones_error(half, tmp_path):
    run_dir = tmp_path / half.name
    shutil.copytree(half, run_dir)
    for step in (300, 600):
        _truncate(run_dir / "checkpoints" / f"step_{step:012d}" / "weights.npz")
    with pytest.raises(XmarlError, match=r"step_000000000600/weights\.npz cannot be loaded") as e:
        xmarl.run(resume=run_dir)
    assert "\n" not in str(e.value)


def test_replay_is_stored_once_per_run(tmp_path):
    """A replay of 16384 rows (about 8.5 MB on simple_spread), written over twice by 32768 steps
    with a checkpoint every 1024: the run folder (two checkpoints kept) stays within 1.2 times
    the replay's own bytes, where a whole copy per checkpoint made it over 2 times. The older of
    the two kept checkpoints resumes exactly as well."""
    require("torch")
    ov = {"train.steps": 32768, "train.num_envs": 16, "train.eval_interval": 8192, "train.eval_episodes": 2,
          "train.log_interval": 4096, "train.checkpoint_interval": 1024, "train.tensorboard": False,
          "train.progress": False, "maddpg.buffer_size": 16384, "maddpg.warmup_steps": 1024,
          "maddpg.update_every": 1024, "maddpg.batch_size": 64, "maddpg.hidden_sizes": [16, 16]}
    env = "mpe-fast/simple_spread_v3"
    full = xmarl.run("maddpg", "torch", env, out_dir=tmp_path / "full", overrides=ov)
    cfg = load_config("maddpg", env, "torch", overrides={**ov, "out_dir": str(tmp_path / "cut")})
    trainer = Trainer(cfg)
    update = trainer.learner.update

    def crash(batch):
        if trainer.state.step > 30 * 1024:
            raise RuntimeError("simulated crash")
        return update(batch)

    trainer.learner.update = crash
    with pytest.raises(RuntimeError, match="simulated crash"):
        trainer.train()
    replay = trainer.buffer.nbytes
    assert len(trainer.buffer) == trainer.buffer.capacity == 16384 and replay > 8_000_000
    size = sum(f.stat().st_size for f in full.run_dir.rglob("*") if f.is_file())
    assert size < 1.2 * replay, (size, replay)
    cut = trainer.run_dir
    kept = sorted((cut / "checkpoints").glob("step_*"))
    assert [_step(k) for k in kept] == [29 * 1024, 30 * 1024]
    assert sum(f.stat().st_size for f in cut.rglob("*") if f.is_file()) < 1.2 * replay

    xmarl.run(resume=kept[0])  # the older one
    assert _records(cut) == _records(full.run_dir)
    a, b = load_weights(cut), load_weights(full.run_dir)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert sum(f.stat().st_size for f in cut.rglob("*") if f.is_file()) < 1.2 * replay
