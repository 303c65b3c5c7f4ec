"""Parity: the same canonical weights and frozen batches give the same forward outputs,
losses, gradients, and weights and optimiser moments after 3 updates in every backend.

Every method whose core module provides the parity hook (``parity_cases``) is checked
through :func:`xmarl.parity`, the function behind ``xmarl parity``. Tolerance (unless a case
states its own): |x_backend - x_torch| <= 1e-5 + 1e-5 * |x_torch| elementwise.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import xmarl
from tests.conftest import BACKENDS, require
from xmarl import registry
from xmarl.compare.parity import (
    ATOL,
    GROUPS,
    RTOL,
    cases,
    compare_quantities,
    parity_methods,
    sanity_rows,
)
from xmarl.compare.reference.data import parity_spec
from xmarl.core.maddpg import MADDPG
from xmarl.core.method import MethodSpec
from xmarl.errors import RegistryError, XmarlError

METHODS = parity_methods()


class _Reports(dict):
    """``{method: xmarl.parity(method, installed)}`` for the methods with a learner in every
    installed backend, each built on first use (so that ``-k coma`` runs COMA's cases only)."""

    def __init__(self, installed: list[str]) -> None:
        super().__init__()
        self.installed, self.methods = installed, parity_methods(installed)

    def __contains__(self, method: object) -> bool:
        return method in self.methods

    def __missing__(self, method: str):
        if method not in self.methods:
            raise KeyError(method)
        self[method] = report = xmarl.parity(method, self.installed)
        return report


@pytest.fixture(scope="module")
def reports():
    if os.environ.get("XMARL_REQUIRE_BACKENDS") == "1":
        for b in BACKENDS:
            require(b)
    installed = [b for b in BACKENDS if registry.backend_installed(b)]
    if len(installed) < 2:
        pytest.skip("parity needs two installed backends")
    return _Reports(installed)


def test_maddpg_has_the_hook():
    assert "maddpg" in METHODS
    names = [c.name for c in cases("maddpg")]
    assert len(names) == 6 and len(set(names)) == 6


@pytest.mark.parametrize("method", METHODS)
def test_parity_report_covers_every_case_backend_and_quantity(method, reports):
    if method not in reports:
        pytest.skip(f"{method} has no learner in every installed backend")
    report = reports[method]
    assert report.backends[0] == "torch"
    seen = {(g["case"], g["backend"], g["group"]) for g in report.group_rows()}
    for c in cases(method):
        assert report.tolerances[c.name] == {"atol": c.atol, "rtol": c.rtol}
        for other in report.backends[1:]:
            for group in GROUPS:
                assert (c.name, other, group) in seen, f"{c.name}: no {group} quantities for {other}"
        for b in report.backends:
            assert (c.name, b, "sanity") in seen
    bad = [f"{r['case']} {r['backend']} {r['quantity']}: max abs {r['max_abs']:.2e}, max rel {r['max_rel']:.2e}"
           for r in report.failures]
    assert report.ok, f"{len(bad)} parity failures: {bad[:5]}"
    assert "FAIL" not in report.table() and report.summary().startswith("parity PASS")


def test_coma_extras_case_runs_both_switches_in_every_backend(reports):
    """COMA's parity case with the entropy bonus and advantage normalisation on is in the report,
    its advantages are normalised (weighted mean 0 over the real steps of agents in the episode)
    and, like every case, it passed at its tolerance."""
    report = reports["coma"]
    name = "coma-per_agent-mlp-dead-entropy-advnorm"
    case = next(c for c in cases("coma") if c.name == name)
    assert case.config.entropy_coef > 0 and case.config.advantage_norm and (case.atol, case.rtol) == (ATOL, RTOL)
    b = case.batches[0]
    w = b["mask"][None] * b["agent_mask"][:, :, :b["mask"].shape[1]]
    for backend, got in report.results["coma"][name].items():
        adv = got["forward/advantages"].astype(np.float64)
        assert abs((w * adv).sum() / w.sum()) < 1e-5, backend
    assert not [r for r in report.failures if r["case"] == name]


def test_maddpg_quantities_are_not_trivially_equal(reports):
    report = reports["maddpg"]
    for case_name, per_backend in report.results["maddpg"].items():
        ref = per_backend["torch"]
        assert any(k.startswith("grad/actor/") for k in ref)
        assert any(k.startswith("weights/target_critic/") for k in ref)
        assert {"loss/critic", "loss/actor"} <= set(ref)
        assert all(np.abs(ref[k]).max() > 0 for k in ref if k.startswith("grad/") and k.endswith("kernel")), case_name
        assert float(ref["optimizer/opt/actor/step"]) == 3
        assert np.abs(ref["weights/actor/head/kernel"] - ref["weights/target_actor/head/kernel"]).max() > 1e-4


def test_compare_quantities_flags_a_real_difference():
    a = {"x": np.array([1.0, 2.0])}
    rows = compare_quantities({"torch": a, "other": {"x": np.array([1.0, 2.0 + 1e-3])}})
    assert rows[0]["ok"] is False and rows[0]["max_abs"] == pytest.approx(1e-3)
    assert rows[0]["max_rel"] == pytest.approx(5e-4)
    rows = compare_quantities({"torch": a, "other": {"x": np.array([1.0, 2.0 + 1e-6])}})
    assert rows[0]["ok"] is True
    assert ATOL == RTOL == 1e-5


def test_compare_quantities_flags_missing_shape_and_nan():
    ref = {"a": np.zeros(3), "b": np.zeros(2), "c": np.ones(2)}
    other = {"a": np.zeros(4), "c": np.array([1.0, np.nan]), "d": np.zeros(1)}
    rows = {r["quantity"]: r for r in compare_quantities({"torch": ref, "other": other})}
    assert set(rows) == {"a", "b", "c", "d"} and not any(r["ok"] for r in rows.values())
    assert "shape" in rows["a"]["note"] and rows["b"]["note"] == "missing in other"
    assert rows["d"]["note"] == "missing in torch" and rows["c"]["max_abs"] == np.inf


def test_sanity_rows_catch_a_learner_that_learns_nothing():
    case = cases("maddpg")[0]
    still = {f"weights/{k}": v.copy() for k, v in case.weights.items()}
    rows = sanity_rows("torch", case, {"grad/actor/head/kernel": np.zeros((1, 16, 4)), **still})
    assert [r["ok"] for r in rows] == [False, False]
    moved = dict(still)
    moved["weights/actor/head/kernel"] = moved["weights/actor/head/kernel"] + 1e-3
    rows = sanity_rows("torch", case, {"grad/actor/head/kernel": np.ones((1, 16, 4)), **moved})
    assert [r["ok"] for r in rows] == [True, True] and rows[1]["max_abs"] == pytest.approx(1e-3, rel=1e-4)


def test_parity_bad_inputs_are_one_line_errors():
    with pytest.raises(RegistryError, match="did you mean 'tensorflow'"):
        xmarl.parity("maddpg", ["torch", "tensorflw"])
    with pytest.raises(XmarlError, match="did you mean 'maddpg'"):
        xmarl.parity("madpg", ["torch", "tensorflow"])
    with pytest.raises(XmarlError, match="at least two backends"):
        xmarl.parity("maddpg", ["torch"])
    registry.add("method", "no_hook", MethodSpec(name="no_hook", config_model=object, trainer="off_policy",
                                                 action_kinds=("discrete",), paper="test", core=MADDPG))
    try:
        assert "no_hook" not in parity_methods()
        with pytest.raises(XmarlError, match=r"register parity_cases\(method, seed, updates\) -> list\[ParityCase\] "
                                             r"as registry.add\('parity', 'no_hook', ...\)") as e:
            cases("no_hook")
        assert "\n" not in str(e.value)
    finally:
        registry._ENTRIES.pop(("method", "no_hook", None))


def test_parity_spec_pads_heterogeneous_agents():
    spec = parity_spec("hybrid")
    assert spec.obs_dims == (6, 8, 10) and spec.act_dims == (3, 5, 5) and spec.disc_dims == (2, 3, 2)
