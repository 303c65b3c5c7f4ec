"""MADDPG in each backend: the backend asked for is the one used, runs are deterministic, the
optimiser follows the shared definition, agents that die are masked out of the losses, and a
small task is learned."""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest

import xmarl
from xmarl import registry
from xmarl.compare.parity import cases
from xmarl.compare.reference.data import parity_spec, random_transitions
from xmarl.compare.reference.maddpg import reference_losses, with_dead_agents
from xmarl.compare.reference.maddpg import update_batch as maddpg_batch
from xmarl.compare.reference.optim import adam_step, clip_by_group_norm
from xmarl.config import load_config
from xmarl.core.maddpg import MADDPG as core
from xmarl.training.trainer import is_timing

TENSOR_TYPES = {
    "torch": ("torch", "Tensor"),
    "tensorflow": ("tensorflow", "Variable"),
    "mindspore": ("mindspore", "Parameter"),
}
MODULE_TYPES = {"torch": ("torch.nn", "Module"), "tensorflow": ("tensorflow", "Module"),
                "mindspore": ("mindspore.nn", "Cell")}


def _small_cfg(backend: str, **ov):
    return load_config("maddpg", "target", backend, overrides={"maddpg.hidden_sizes": [16, 16], **ov}).maddpg


def test_learner_is_the_backend_asked_for(backend):
    spec = parity_spec("discrete")
    cfg = _small_cfg(backend)
    learner = registry.get("learner", "maddpg", backend)(spec, cfg, core.init_weights(spec, cfg, 0))
    assert learner.backend == backend
    assert type(learner).__module__ == f"xmarl.backends.{backend}.learners.maddpg"
    mod, cls = MODULE_TYPES[backend]
    assert isinstance(learner.policy, getattr(importlib.import_module(mod), cls))
    tmod, tcls = TENSOR_TYPES[backend]
    ttype = getattr(importlib.import_module(tmod), tcls)
    for net in (learner.actor, learner.critic, learner.target_actor, learner.target_critic):
        params = list(net.canonical().values())
        assert params and all(isinstance(p, ttype) for p in params)
    others = {"torch", "tensorflow", "mindspore"} - {backend}
    assert not any(type(learner).__module__.startswith(f"xmarl.backends.{o}") for o in others)


def test_run_trains_with_the_backend_asked_for(backend, out_dir):
    r = xmarl.run("maddpg", backend, "target", out_dir=out_dir, progress=False,
                  overrides={"train.steps": 400, "train.eval_interval": 400, "maddpg.warmup_steps": 100,
                             "maddpg.batch_size": 32})
    assert r.learner is not None and r.learner.backend == backend
    assert type(r.learner).__module__.startswith(f"xmarl.backends.{backend}.")
    assert r.final_metrics["updates"] > 0


def test_weights_round_trip_and_init_is_backend_independent(backend):
    spec = parity_spec("continuous")
    cfg = _small_cfg(backend, **{"maddpg.share_parameters": False})
    w = core.init_weights(spec, cfg, 7)
    learner = registry.get("learner", "maddpg", backend)(spec, cfg, w)
    got = learner.get_weights()
    assert set(got) == set(core.param_shapes(spec, cfg))
    for k, v in w.items():
        np.testing.assert_array_equal(got[k], v)
    with pytest.raises(ValueError, match="missing"):
        learner.set_weights({k: v for k, v in w.items() if k != "actor/head/bias"})
    with pytest.raises(ValueError, match="shape"):
        learner.set_weights({**w, "actor/head/bias": np.zeros((9, 9), np.float32)})


def test_same_seed_same_metrics(backend, out_dir):
    def once(sub):
        r = xmarl.run("maddpg", backend, "target", out_dir=out_dir / sub, progress=False, seed=3,
                      overrides={"train.steps": 600, "train.eval_interval": 300, "maddpg.warmup_steps": 100,
                                 "maddpg.batch_size": 32, "train.tensorboard": False})
        lines = [{k: v for k, v in json.loads(x).items() if not is_timing(k)}
                 for x in r.metrics_path.read_text().splitlines()]
        return lines, r.learner.get_weights()

    (m1, w1), (m2, w2) = once("a"), once("b")
    assert m1 == m2 and any("critic_loss" in rec for rec in m1)
    for k in w1:
        np.testing.assert_array_equal(w1[k], w2[k])


@pytest.mark.parametrize("eps", [1e-8, 1e-2])
def test_optimiser_matches_the_shared_definition(backend, eps):
    """One update's actor/critic steps equal numpy Adam (eps after bias correction) applied
    to the backend's own clipped gradients; a large eps exposes eps placed before it."""
    spec = parity_spec("discrete")
    cfg = _small_cfg(backend, **{"maddpg.adam.eps": eps, "maddpg.grad_clip": 0.05, "maddpg.tau": 1.0})
    w0 = core.init_weights(spec, cfg, 1)
    learner = registry.get("learner", "maddpg", backend)(spec, cfg, w0)
    batch = maddpg_batch(spec, 16, 2)
    grads = learner.gradients(batch)
    critic_names = [k for k in w0 if k.startswith("critic/")]
    clipped, norms = clip_by_group_norm([grads[k] for k in critic_names], 0.05)
    assert norms.max() > 0.05  # clipping is exercised
    learner.update(batch)
    w1 = learner.get_weights()
    for name, g in zip(critic_names, clipped):
        expect, _, _ = adam_step(w0[name], g, 0 * g, 0 * g, 1, cfg.lr_critic, cfg.adam.betas, eps)
        np.testing.assert_allclose(w1[name], expect, rtol=1e-5, atol=1e-6, err_msg=name)
        # tau = 1: the target critic equals the new critic
        np.testing.assert_array_equal(w1["target_" + name], w1[name])


@pytest.mark.parametrize("continuous", [False, True])
def test_learns_target_game(backend, out_dir, continuous):
    ov = {"env_kwargs": {"continuous": continuous}, "train.tensorboard": False}
    if continuous:
        ov.update({"train.steps": 4000, "maddpg.exploration_noise": 0.3})
    r = xmarl.run("maddpg", backend, "target", out_dir=out_dir, progress=False, seed=1, overrides=ov)
    first, last = r.curve[0][1], r.curve[-1][1]
    if continuous:  # reward is minus the mean squared distance; random play is about -0.75
        assert last > -0.1, r.curve
    else:  # 5 steps, reward 1 per step when both agents hit their target; random is 5/3
        assert last >= 4.5, r.curve
    assert last > first or last >= 4.9


# -- agents that die: alive masks ------------------------------------------------------------------

MASKS = ("agent_mask", "next_agent_mask")


def test_parity_cases_have_dead_agents():
    """The parity cases (run in every backend by tests/test_parity.py) hold dead agents as the
    replay buffer stores them: zero obs/act rows where ``agent_mask`` is 0, agents leaving
    (``next_agent_mask`` 0 while alive), and in the second batch an agent gone throughout."""
    for case in cases("maddpg"):
        A = case.spec.n_agents
        for k, b in enumerate(case.batches):
            am, nam = b["agent_mask"], b["next_agent_mask"]
            assert am.shape == nam.shape == b["rew"].shape and am.dtype == nam.dtype == np.float32
            dead = am == 0
            assert dead.any() and not dead.all(), case.name
            assert np.all(b["obs"][dead] == 0) and np.all(b["act"][dead] == 0), case.name
            assert ((am == 1) & (nam == 0)).any(), case.name
            assert np.all(b["done"][(am == 1) & (nam == 0)] == 1), case.name
            assert dead[A - 1].all() == (k == 1), case.name


def test_losses_match_the_numpy_reference_with_dead_agents(backend):
    """Backend losses equal the float64 numpy reference (masked means, dead agents' target
    actions zeroed) on the parity batches, including one where an agent is gone throughout."""
    for case in cases("maddpg", updates=2):
        learner = registry.get("learner", "maddpg", backend)(case.spec, case.config, case.weights)
        for b in case.batches:
            got = learner.gradients(b)
            ref = reference_losses(case.spec, case.config, case.weights, b)
            for name in ("critic", "actor"):
                np.testing.assert_allclose(got[f"loss/{name}"], ref[name], rtol=1e-5, atol=1e-6,
                                           err_msg=f"{case.name} {name}")


def _dead_agent_batch(spec, k: int, seed: int) -> dict[str, np.ndarray]:
    """Agent ``k`` gone in every transition (masks 0); its obs/act rows hold noise rather than
    zeros, so only the masks can silence it."""
    rng = np.random.default_rng(seed)
    data = with_dead_agents(random_transitions(spec, 24, rng), rng, dead=(k,))
    assert not data["agent_mask"][k].any() and not data["next_agent_mask"][k].any()
    for key in ("obs", "act", "next_obs"):
        data[key][k] = rng.standard_normal(data[key][k].shape).astype(np.float32)
    return core.prepare_batch(spec, None, data, rng, 0)


@pytest.mark.parametrize("kind", ["discrete", "continuous", "hybrid"])
def test_a_dead_agent_sends_no_gradient_to_its_networks(backend, kind):
    """Per-agent weights ``[A, ...]``: the slices of the dead agent's actor and critic get exactly
    zero gradient (so the first Adam step leaves them exactly where they were); the live
    agents' slices do learn."""
    spec = parity_spec(kind)
    cfg = _small_cfg(backend, **{"maddpg.share_parameters": False})
    k = 1
    w0 = core.init_weights(spec, cfg, 3)
    learner = registry.get("learner", "maddpg", backend)(spec, cfg, w0)
    batch = _dead_agent_batch(spec, k, 5)
    grads = learner.gradients(batch)
    trained = [n for n in w0 if n.split("/")[0] in ("actor", "critic")]
    for name in trained:
        g = grads[name]
        assert g.shape[0] == spec.n_agents, name
        assert np.all(g[k] == 0), f"{name}: dead agent {k} slice has gradient {np.abs(g[k]).max()}"
        for j in set(range(spec.n_agents)) - {k}:
            assert np.abs(g[j]).max() > 0, f"{name}: live agent {j} slice has no gradient"
    learner.update(batch)
    w1 = learner.get_weights()
    for name in trained:
        np.testing.assert_array_equal(w1[name][k], w0[name][k], err_msg=name)
        assert np.abs(w1[name] - w0[name]).max() > 0, name


def test_all_ones_masks_equal_a_batch_without_masks(backend):
    """A batch without mask entries (an old caller) is every agent alive: ``prepare_batch`` adds
    all-ones masks without changing the noise it draws, and the learner's losses, gradients and
    update are bit for bit those of the all-ones batch, and the reference's (plain batch means)."""
    spec = parity_spec("hybrid")
    cfg = _small_cfg(backend)
    w = core.init_weights(spec, cfg, 1)
    batch = maddpg_batch(spec, 16, 4)
    for key in MASKS:
        assert batch[key].dtype == np.float32 and batch[key].shape == batch["rew"].shape
        assert np.all(batch[key] == 1), key
    rng = np.random.default_rng(4)
    data = random_transitions(spec, 16, rng)
    explicit = core.prepare_batch(spec, cfg, {**data, **{k: np.ones_like(data["rew"]) for k in MASKS}}, rng, 0)
    for key in batch:
        np.testing.assert_array_equal(explicit[key], batch[key], err_msg=key)
    bare = {k: v for k, v in batch.items() if k not in MASKS}
    make = registry.get("learner", "maddpg", backend)
    with_masks, without = make(spec, cfg, w), make(spec, cfg, w)
    g1, g2 = with_masks.gradients(batch), without.gradients(bare)
    assert set(g1) == set(g2)
    for key in g1:
        np.testing.assert_array_equal(g1[key], g2[key], err_msg=key)
    ref = reference_losses(spec, cfg, w, bare)
    for name in ("critic", "actor"):
        np.testing.assert_allclose(g1[f"loss/{name}"], ref[name], rtol=1e-5, atol=1e-6, err_msg=name)
    assert with_masks.update(batch) == without.update(bare)
    w1, w2 = with_masks.get_weights(), without.get_weights()
    for key in w1:
        np.testing.assert_array_equal(w1[key], w2[key], err_msg=key)
