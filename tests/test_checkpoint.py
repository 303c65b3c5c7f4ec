"""Atomic files and framework-neutral checkpoints."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import BACKENDS, require
from xmarl import registry
from xmarl.compare.reference.data import parity_spec
from xmarl.config import load_config
from xmarl.core.maddpg import MADDPG as core
from xmarl.files import atomic_save_npz, atomic_write_text
from xmarl.training.checkpoint import load_weights, save_checkpoint


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "w.npz"
    atomic_save_npz(target, {"a": np.ones(3)})

    class Boom:
        def __array__(self, *a, **k):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_save_npz(target, {"a": np.zeros(3), "b": Boom()})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.npz"]  # no temp file left
    np.testing.assert_array_equal(load_weights(target)["a"], np.ones(3))  # old content intact
    atomic_write_text(tmp_path / "t.txt", "x")
    assert (tmp_path / "t.txt").read_text() == "x"


def test_checkpoint_from_one_backend_acts_the_same_in_every_backend(tmp_path):
    installed = [b for b in BACKENDS if registry.backend_installed(b)]
    for b in BACKENDS:
        require(b)
    spec = parity_spec("discrete")
    cfg = load_config("maddpg", overrides={"maddpg.hidden_sizes": [32, 32]}).maddpg
    src = registry.get("learner", "maddpg", "torch")(spec, cfg, core.init_weights(spec, cfg, 11))
    save_checkpoint(tmp_path, 0, {"weights.npz": src.get_weights()}, {}, {"step": 0})
    w = load_weights(tmp_path)
    obs = 10 * np.random.default_rng(0).standard_normal((100, spec.n_agents, spec.obs_dim)).astype(np.float32)
    actions = {}
    for b in installed:
        learner = registry.get("learner", "maddpg", b)(spec, cfg, core.init_weights(spec, cfg, 99))
        learner.set_weights(w)
        actions[b], _ = learner.policy.act(obs, explore=False)
    assert len(set(map(lambda a: a.tobytes(), actions.values()))) == 1
    assert len(np.unique(actions["torch"])) > 1  # not a constant policy


def test_checkpoint_folder_swap_is_atomic_and_pruned(tmp_path):
    for step in (10, 20, 30):
        save_checkpoint(tmp_path, step, {"weights.npz": {"w": np.full(2, step)}}, {"env.pkl": b"x"}, {"step": step})
    folders = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert folders == ["latest", "step_000000000020", "step_000000000030"]
    assert load_weights(tmp_path)["w"].tolist() == [30, 30]
    # a crash while writing the next checkpoint leaves a .partial folder; the pointer still
    # names the last complete one, and the next save clears the leftover
    (tmp_path / "checkpoints" / "step_000000000040.partial").mkdir()
    assert load_weights(tmp_path)["w"].tolist() == [30, 30]
    save_checkpoint(tmp_path, 40, {"weights.npz": {"w": np.full(2, 40)}}, {}, {"step": 40})
    assert not list((tmp_path / "checkpoints").glob("*.partial"))


def test_no_checkpoint_is_a_one_line_error(tmp_path):
    from xmarl.errors import XmarlError
    from xmarl.training.checkpoint import latest_checkpoint

    with pytest.raises(XmarlError, match="no checkpoint in") as e:
        latest_checkpoint(tmp_path)
    assert "\n" not in str(e.value)


def test_files_written_atomically_get_the_usual_permissions(tmp_path):
    """Run files (configs, metrics, results, checkpoints) were private (0600, mkstemp's mode) before:
    a results folder shared with a group could not be read. They follow the umask like any new file."""
    import os
    import stat

    from xmarl.files import atomic_save_npz, atomic_write_text

    old = os.umask(0o022)
    try:
        a = atomic_write_text(tmp_path / "a.txt", "x")
        b = atomic_save_npz(tmp_path / "b.npz", {"w": np.ones(2)})
        os.umask(0o027)
        c = atomic_write_text(tmp_path / "c.txt", "y")
    finally:
        os.umask(old)
    assert stat.S_IMODE(a.stat().st_mode) == 0o644 and stat.S_IMODE(b.stat().st_mode) == 0o644
    assert stat.S_IMODE(c.stat().st_mode) == 0o640
