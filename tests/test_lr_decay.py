"""Learning-rate decay of the on-policy methods (``coma.lr_decay_steps`` / ``commnet.lr_decay_steps``
with ``lr_final_fraction``): the schedule in the core, every backend's optimiser taking the rate it
is given between compiled steps, and the trainer setting it from the env step before each batch.
Parity across backends with the decay on runs in COMA's ``-entropy-advnorm`` parity case
(tests/test_parity.py)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import require
from xmarl import registry
from xmarl.compare.reference import coma as cref
from xmarl.compare.reference import commnet as nref
from xmarl.config import load_config
from xmarl.core.coma import COMA
from xmarl.errors import ConfigError
from xmarl.training.trainer import Trainer

METHODS = {"coma": cref, "commnet": nref}


@pytest.mark.parametrize("method", sorted(METHODS))
def test_lr_scale_is_off_by_default_then_linear_then_held(method):
    core = registry.get("method", method).core
    cfg = getattr(load_config(method), method)
    assert cfg.lr_decay_steps is None and core.lr_scale(cfg, 10**9) is None  # default: constant rates
    cfg = getattr(load_config(method, overrides={f"{method}.lr_decay_steps": 1000,
                                                 f"{method}.lr_final_fraction": 0.2}), method)
    got = [core.lr_scale(cfg, s) for s in (0, 250, 500, 1000, 5000)]
    np.testing.assert_allclose(got, [1.0, 0.8, 0.6, 0.2, 0.2])


@pytest.mark.parametrize("key,value,match", [("lr_decay_steps", 0, "greater than 0"),
                                             ("lr_final_fraction", 1.5, "less than or equal to 1"),
                                             ("lr_final_fraction", -0.1, "greater than or equal to 0")])
def test_bad_lr_decay_values_are_one_line_errors(key, value, match):
    with pytest.raises(ConfigError, match=match):
        load_config("coma", overrides={f"coma.{key}": value})


def first_update_deltas(method: str, backend: str, scale: float | None) -> dict[str, np.ndarray]:
    """Weight changes of one update from a parity case's weights, at ``scale`` times the rates."""
    case = METHODS[method].parity_cases(method)[0]
    learner = registry.get("learner", method, backend)(case.spec, case.config, dict(case.weights))
    if scale is not None:
        learner.set_lr_scale(scale)
    learner.update(dict(case.batches[0]))
    after = learner.get_weights()
    return {k: after[k] - case.weights[k] for k in after if not k.startswith("target_")}


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_backend_steps_at_the_rate_it_is_set_to(method, backend):
    """Adam's first step is ``lr * g / (|g| + eps)``: at half the rate every weight moves half as
    far. A backend whose compiled step kept the rate it was built with would move as far."""
    full = first_update_deltas(method, backend, None)
    half = first_update_deltas(method, backend, 0.5)
    moved = [k for k in full if np.abs(full[k]).max() > 1e-6]
    assert moved, "the update moved no weight"
    for k in moved:
        np.testing.assert_allclose(half[k], 0.5 * full[k], rtol=1e-3, atol=1e-7, err_msg=k)
    again = first_update_deltas(method, backend, 1.0)  # the configured rate itself
    for k in moved:
        np.testing.assert_allclose(again[k], full[k], rtol=1e-5, atol=1e-8, err_msg=k)


def target_trainer(tmp_path, **over) -> Trainer:
    ov = {"train.steps": 1200, "train.eval_interval": 1200, "train.log_interval": 1200, "train.tensorboard": False,
          "train.progress": False, "out_dir": str(tmp_path), **over}
    return Trainer(load_config("coma", "target", "torch", overrides=ov))


def test_the_trainer_sets_the_rate_from_the_env_step(tmp_path):
    """Decay to 0 within the first env step: every batch comes later, so no update moves a weight;
    a final fraction of 1 is the constant rate, bit for bit."""
    require("torch")
    frozen = target_trainer(tmp_path / "frozen", **{"coma.lr_decay_steps": 1, "coma.lr_final_fraction": 0.0})
    w0 = frozen.learner.get_weights()
    r = frozen.train()
    assert r.final_metrics["updates"] > 0
    assert all(np.array_equal(w0[k], v) for k, v in r.learner.get_weights().items())
    plain = target_trainer(tmp_path / "plain").train().learner.get_weights()
    assert any(not np.array_equal(w0[k], plain[k]) for k in plain)
    one = target_trainer(tmp_path / "one", **{"coma.lr_decay_steps": 1, "coma.lr_final_fraction": 1.0})
    same = one.train().learner.get_weights()
    assert all(np.array_equal(plain[k], same[k]) for k in plain)


def test_the_parity_case_decays_the_rates():
    extras = [c for c in cref.parity_cases("coma") if c.name.endswith("-entropy-advnorm")]
    assert len(extras) == 1
    cfg = extras[0].config
    assert [COMA.lr_scale(cfg, cref.BATCH_STEPS * k) for k in range(3)] == pytest.approx([1.0, 0.55, 0.1])
