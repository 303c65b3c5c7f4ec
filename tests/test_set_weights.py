"""Weights loaded into a learner that has already acted take effect at once, in every backend:
the policy acts as a learner built with those weights. Regression: MindSpore replaced a
parameter's memory (``set_data``), which a graph that had already run kept reading, so a
policy went on acting with its old weights after ``set_weights``."""

from __future__ import annotations

import numpy as np
import pytest

from xmarl import registry
from xmarl.compare.reference.data import method_config, parity_spec
from xmarl.core.coma import COMA
from xmarl.core.maddpg import MADDPG


@pytest.mark.parametrize("method, core, kind", [("maddpg", MADDPG, "continuous"), ("coma", COMA, "discrete")])
def test_set_weights_after_acting_changes_what_the_policy_does(backend, method, core, kind):
    spec = parity_spec(kind)
    cfg = method_config(method, {"hidden_sizes": [8]})
    first, second = core.init_weights(spec, cfg, 0), core.init_weights(spec, cfg, 1)
    learner_cls = registry.get("learner", method, backend)
    learner = learner_cls(spec, cfg, first)
    obs = np.random.default_rng(0).random((3, spec.n_agents, spec.obs_dim)).astype(np.float32)
    before = learner.policy.forward_numpy(obs)[0]
    learner.set_weights(second)
    after = learner.policy.forward_numpy(obs)[0]
    fresh = learner_cls(spec, cfg, second).policy.forward_numpy(obs)[0]
    assert not np.allclose(before, after)
    np.testing.assert_array_equal(after, fresh)
