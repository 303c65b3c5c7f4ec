"""Parity: the same canonical weights and frozen batches give the same forward outputs,
losses, gradients, and weights and optimiser moments after 3 updates in every backend.

Tolerance: |x_backend - x_torch| <= 1e-5 + 1e-5 * |x_torch| elementwise (absolute plus relative).
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import BACKENDS, require
from xmarl.compare.parity import ATOL, RTOL, Case, compare, run_backend

CASES = [Case("maddpg", kind, share) for kind in ("discrete", "continuous", "hybrid") for share in (True, False)]


@pytest.fixture(scope="module")
def torch_results():
    require("torch")
    return {c.name: run_backend("torch", c) for c in CASES}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("other", [b for b in BACKENDS if b != "torch"])
def test_maddpg_parity(other, case, torch_results):
    require(other)
    ref = torch_results[case.name]
    got = run_backend(other, case)
    assert set(got) == set(ref)
    assert any(k.startswith("grad/actor/") for k in ref) and any(k.startswith("weights/target_critic/") for k in ref)
    rows = compare({"torch": ref, other: got}, atol=ATOL, rtol=RTOL)
    bad = [f"{r['quantity']}: max abs {r['max_abs']:.2e}, max rel {r['max_rel']:.2e}" for r in rows if not r["ok"]]
    assert not bad, f"{other} differs from torch on {len(bad)} quantities: {bad[:5]}"
    # the quantities are not trivially equal: gradients are non-zero and the weights moved
    assert all(np.abs(ref[k]).max() > 0 for k in ref if k.startswith("grad/") and k.endswith("kernel"))
    assert float(ref["optimizer/opt/actor/step"]) == 3
    assert np.abs(ref["weights/actor/head/kernel"] - ref["weights/target_actor/head/kernel"]).max() > 1e-4


def test_parity_compare_flags_a_real_difference():
    a = {"x": np.array([1.0, 2.0])}
    rows = compare({"torch": a, "other": {"x": np.array([1.0, 2.0 + 1e-3])}})
    assert rows[0]["ok"] is False and rows[0]["max_abs"] == pytest.approx(1e-3)
    rows = compare({"torch": a, "other": {"x": np.array([1.0, 2.0 + 1e-6])}})
    assert rows[0]["ok"] is True
