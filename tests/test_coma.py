"""COMA: numpy references of the TD(lambda) targets and the counterfactual advantage, every
backend against them, agents that leave an episode (alive masks), the episode buffer, acting vs
training of the recurrent actor, learning, resume and bad inputs. Parity across backends
(feed-forward and recurrent, shared and per-agent, with and without agents that leave) runs
through COMA's ``parity_cases`` hook in tests/test_parity.py; the cases with agents that leave
also run here. The optional extras (``entropy_coef``, ``advantage_norm``) are checked against numpy
in every backend here and in one more parity case; ``actor_output_gain`` (the small-gain logits
layer) against today's initialisation, bit for bit when it is off."""

from __future__ import annotations

import json
import types
import warnings

import numpy as np
import pytest

import xmarl
from tests.conftest import require, weights_digest
from xmarl import registry
from xmarl.buffers import EpisodeBuffer
from xmarl.compare.reference import coma as cref
from xmarl.compare.reference.data import parity_spec, random_observations, synthetic_episodes
from xmarl.config import load_config
from xmarl.core import coma, layout
from xmarl.core.coma import COMA
from xmarl.errors import ConfigError, EnvError
from xmarl.training.checkpoint import latest_checkpoint
from xmarl.training.trainer import Trainer, is_timing

#: (share_parameters, recurrent, agents leave mid-episode), as COMA's parity cases
CASES = [(share, rec, False) for rec in (False, True) for share in (True, False)]
CASES += [(False, False, True), (True, True, True)]


def case_id(case: tuple[bool, bool, bool]) -> str:
    return f"{'shared' if case[0] else 'per_agent'}-{'gru' if case[1] else 'mlp'}{'-dead' if case[2] else ''}"


def coma_config(backend: str, share: bool, recurrent: bool, **extra):
    ov = {"coma.share_parameters": share, "coma.recurrent": recurrent, "coma.hidden_sizes": [16, 16],
          "coma.critic_hidden_sizes": [16, 16], "coma.rnn_hidden_dim": 8, "coma.lr_actor": 1e-3,
          "coma.lr_critic": 1e-3, "coma.target_update_interval": 2, **extra}
    return load_config("coma", backend=backend, overrides=ov).coma


# -- numpy references -----------------------------------------------------------------------------------
def test_td_matrix_equals_the_recursive_targets():
    rng = np.random.default_rng(0)
    B, T, A, gamma, lam = 5, 7, 3, 0.9, 0.7
    lengths = np.array([7, 1, 4, 7, 2])
    mask = (np.arange(T)[None] < lengths[:, None]).astype(np.float32)
    term = np.zeros((B, T), np.float32)
    term[[1, 3], lengths[[1, 3]] - 1] = 1.0
    rew, q_next = rng.standard_normal((2, A, B, T))
    G = cref.td_lambda_targets(rew, q_next, term, mask, gamma, lam)
    cont = np.concatenate([mask[:, 1:], np.zeros((B, 1))], 1)
    b = mask * (rew + gamma * (1 - term) * (1 - lam * cont) * q_next)
    np.testing.assert_allclose(np.einsum("ts,abs->abt", coma.td_matrix(T, gamma, lam), b), G, atol=1e-5)
    # hand-checked corners: a terminated one-step episode is its reward; a truncated last step bootstraps
    np.testing.assert_allclose(G[:, 1, 0], rew[:, 1, 0], rtol=1e-6)
    np.testing.assert_allclose(G[:, 0, 6], rew[:, 0, 6] + gamma * q_next[:, 0, 6], rtol=1e-6)
    G_5 = rew[:, 0, 5] + gamma * ((1 - lam) * q_next[:, 0, 5] + lam * G[:, 0, 6])
    np.testing.assert_allclose(G[:, 0, 5], G_5, rtol=1e-6)
    assert np.all(G[:, 1, 1:] == 0)  # padding
    # lambda = 0 is one-step TD, lambda = 1 with termination is the Monte-Carlo return
    G0 = cref.td_lambda_targets(rew, q_next, term, mask, gamma, 0.0)
    np.testing.assert_allclose(G0[:, 0, :6], rew[:, 0, :6] + gamma * q_next[:, 0, :6], rtol=1e-6)
    G1 = cref.td_lambda_targets(rew, q_next, term, mask, gamma, 1.0)
    L = lengths[3]
    np.testing.assert_allclose(G1[:, 3, 0], (rew[:, 3, :L] * gamma ** np.arange(L)).sum(-1), rtol=1e-6)


def test_counterfactual_advantage_reference():
    q = np.array([[1.0, 2.0, 4.0]])
    pi = np.array([[0.5, 0.25, 0.25]])
    # Q(s, u=2) - (0.5 * 1 + 0.25 * 2 + 0.25 * 4)
    assert cref.counterfactual_advantage(q, pi, np.array([2]))[0] == pytest.approx(4.0 - 2.0)
    p = coma.policy_probs(np.array([[0.0, 5.0, 1.0]]), np.array([[1.0, 0.0, 1.0]]), 0.2)
    assert p[0, 1] == 0 and p.sum() == pytest.approx(1.0) and p[0].min(initial=1, where=p[0] > 0) >= 0.1


def test_an_agent_that_leaves_ends_its_own_return():
    """The recursive reference with alive masks: an agent's last step before it leaves is the
    last of its return (no bootstrap from its critic once it has left), its later steps are
    zero, and the matrix form the backends use gives the same targets."""
    rng = np.random.default_rng(1)
    B, T, A, gamma, lam = 2, 6, 2, 0.9, 0.7
    mask = np.ones((B, T), np.float32)
    mask[1, 4:] = 0  # episode 1 has 4 steps, truncated: it bootstraps at its final observation (index 4)
    term = np.zeros((B, T), np.float32)
    am = np.ones((A, B, T + 1), np.float32)
    am[1, 0, 3:] = 0  # agent 1 leaves episode 0 at step 3
    am[1, 1, 4:] = 0  # ... and episode 1 at its final observation
    am[0, 1, 5:] = 0  # padding
    rew, q_next = rng.standard_normal((2, A, B, T))
    G = cref.td_lambda_targets(rew, q_next, term, mask, gamma, lam, am)
    assert G[1, 0, 2] == pytest.approx(rew[1, 0, 2]) and np.all(G[1, 0, 3:] == 0)
    assert G[1, 1, 3] == pytest.approx(rew[1, 1, 3])  # left at the final observation: nothing to bootstrap
    assert G[0, 1, 3] == pytest.approx(rew[0, 1, 3] + gamma * q_next[0, 1, 3])  # stayed: bootstraps
    np.testing.assert_allclose(G[0], cref.td_lambda_targets(rew, q_next, term, mask, gamma, lam)[0], rtol=1e-6)
    w = mask * am[:, :, :T]
    cont = np.concatenate([mask[:, 1:], np.zeros((B, 1))], 1)
    b = w * (rew + gamma * (1 - term) * (1 - lam * cont) * q_next * am[:, :, 1:])
    np.testing.assert_allclose(np.einsum("ts,abs->abt", coma.td_matrix(T, gamma, lam), b), G, atol=1e-6)


def test_critic_inputs_zero_the_actions_of_agents_that_left():
    spec = parity_spec("discrete")
    ep = synthetic_episodes(spec, 3, 5, np.random.default_rng(2))
    ep["actions"] = np.maximum(ep["actions"], 1)  # every stored action non-zero, so that zero slots tell
    leave = np.full((3, 3), 6)
    leave[0, 2] = 2
    gone = cref.agents_leave(ep, leave)
    x = coma.critic_inputs(spec, True, gone["obs"], gone["actions"], gone["agent_mask"])  # [A, B, T+1, in]
    A, od, n = spec.n_agents, spec.obs_dim, spec.act_dim
    acts = x[..., A * od:A * od + A * n].reshape(A, 3, 6, A, n)
    assert np.all(acts[:, 0, 2:, 2] == 0) and np.all(acts[:2, 0, :2, 2].sum(-1) == 1)  # agent 2's slot, others' view
    assert np.all(x[:, 0, 2:, 2 * od:3 * od] == 0)  # its observation in the state
    same = coma.critic_inputs(spec, True, ep["obs"], ep["actions"], np.ones(ep["actions"].shape, np.float32))
    assert np.array_equal(same, coma.critic_inputs(spec, True, ep["obs"], ep["actions"]))


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_backend_matches_numpy_references(backend, case):
    share, recurrent, dead = case
    spec = parity_spec("discrete")
    cfg = coma_config(backend, share, recurrent)
    learner = registry.get("learner", "coma", backend)(spec, cfg, COMA.init_weights(spec, cfg, 0))
    rng = np.random.default_rng(7)
    ep = synthetic_episodes(spec, 4, 6, rng)
    if dead:
        ep = cref.agents_leave(ep, cref.random_leaving(ep, rng))
        assert 0 < ep["agent_mask"].sum() < (ep["mask"].sum() + 4) * spec.n_agents  # some agents did leave
    batch = COMA.prepare_batch(spec, cfg, ep, rng, step=50_000)
    d = learner.diagnostics(batch)
    T = batch["mask"].shape[1]
    G = cref.td_lambda_targets(batch["rew"], d["target_q_next"], batch["term"], batch["mask"], cfg.gamma,
                               cfg.td_lambda, batch["agent_mask"])
    np.testing.assert_allclose(d["targets"], G, atol=1e-5, rtol=1e-5)
    grads = learner.gradients(batch)
    ref = cref.losses(batch, d["q"], d["pi"], G)
    for k in ("critic", "actor"):
        assert float(grads[f"loss/{k}"]) == pytest.approx(ref[k], rel=1e-5, abs=1e-6), k
    actions = ep["actions"][:, :T].transpose(2, 0, 1)
    valid = batch["mask"][None].astype(bool) & np.ones_like(actions, bool)
    np.testing.assert_allclose(d["advantages"][valid],
                               cref.counterfactual_advantage(d["q"], d["pi"], actions)[valid], atol=1e-5, rtol=1e-5)
    avail = batch["avail"][:, :, :T]
    assert np.all(d["pi"][avail == 0] == 0)
    np.testing.assert_allclose(d["pi"].sum(-1), 1.0, atol=1e-5)
    eps = float(batch["epsilon"])
    assert 0 < eps < cfg.epsilon_start
    assert np.all(d["pi"][avail > 0] >= eps / avail.sum(-1, keepdims=True).repeat(avail.shape[-1], -1)[avail > 0]
                  - 1e-6)
    # the policy the learner trains is the one that acts: roll the actor step by step
    E_obs = ep["obs"]  # [B, T+1, A, od]
    state = None
    for t in range(T):
        logits, state = learner.policy.forward_numpy(np.ascontiguousarray(E_obs[:, t]), state)
        p = coma.policy_probs(logits, batch["avail"][:, :, t].transpose(1, 0, 2), eps)
        np.testing.assert_allclose(p.transpose(1, 0, 2)[:, batch["mask"][:, t] > 0],
                                   d["pi"][:, :, t][:, batch["mask"][:, t] > 0], atol=1e-5)
    assert (state is not None) == recurrent


def _dead_agent_batch(spec, cfg, k: int, seed: int = 3):
    """A prepared batch of random episodes in which agent ``k`` is out from step 0 in every one."""
    rng = np.random.default_rng(seed)
    ep = synthetic_episodes(spec, 4, 6, rng)
    leave = np.full((4, spec.n_agents), 7)
    leave[:, k] = 0
    return COMA.prepare_batch(spec, cfg, cref.agents_leave(ep, leave), rng, step=50_000)


@pytest.mark.parametrize("recurrent", [False, True], ids=["mlp", "gru"])
def test_an_agent_out_of_every_episode_gets_exactly_zero_gradients(backend, recurrent):
    """Per-agent weights hold agent ``k`` on axis 0: with ``k`` out from step 0 everywhere its
    actor and critic slices get gradients of exactly zero (the other agents' do not), and an
    update leaves them exactly as they were."""
    k = 1
    spec = parity_spec("discrete")
    cfg = coma_config(backend, False, recurrent)
    weights = COMA.init_weights(spec, cfg, 0)
    learner = registry.get("learner", "coma", backend)(spec, cfg, weights)
    batch = _dead_agent_batch(spec, cfg, k)
    assert np.all(batch["agent_mask"][k] == 0) and np.all(batch["obs"][k] == 0)
    grads = learner.gradients(batch)
    assert all(np.isfinite(v).all() for v in grads.values())
    nets = [name for name in grads if name.split("/")[0] in ("actor", "critic")]
    assert any(n.startswith("actor/") for n in nets) and any(n.startswith("critic/") for n in nets)
    for name in nets:
        g = grads[name]
        assert g.shape[0] == spec.n_agents, name
        assert np.all(g[k] == 0), f"{name}: agent {k} is out of every episode but gets gradient {np.abs(g[k]).max()}"
        assert np.abs(np.delete(g, k, 0)).max() > 0, f"{name}: no gradient for the agents that stayed"
    learner.update(batch)
    after = learner.get_weights()
    for name in nets:
        assert np.array_equal(after[name][k], weights[name][k]), name
        assert not np.array_equal(after[name], weights[name]), name


def test_all_ones_agent_mask_changes_nothing(backend):
    """A batch prepared with an all-ones ``agent_mask``, one prepared without, and one from which
    the entry was removed (an older caller) give the same batches, losses and gradients, and the
    losses keep today's normalisation (the number of real agent-steps, ``A * sum(mask)``)."""
    spec = parity_spec("discrete")
    cfg = coma_config(backend, True, False)
    learner = registry.get("learner", "coma", backend)(spec, cfg, COMA.init_weights(spec, cfg, 0))
    ep = synthetic_episodes(spec, 4, 6, np.random.default_rng(5))
    plain = COMA.prepare_batch(spec, cfg, ep, np.random.default_rng(0), step=50_000)
    ones = COMA.prepare_batch(spec, cfg, {**ep, "agent_mask": np.ones(ep["actions"].shape, np.float32)},
                              np.random.default_rng(0), step=50_000)
    assert plain.keys() == ones.keys() and all(np.array_equal(plain[k], ones[k]) for k in plain)
    older = {k: v for k, v in plain.items() if k != "agent_mask"}
    g_plain, g_older = learner.gradients(plain), learner.gradients(older)
    assert g_plain.keys() == g_older.keys() and all(np.array_equal(g_plain[k], g_older[k]) for k in g_plain)
    d = learner.diagnostics(plain)
    mask, T = plain["mask"], plain["mask"].shape[1]
    q_taken = (d["q"] * plain["act_onehot"][:, :, :T]).sum(-1)
    norm = spec.n_agents * mask.sum()
    assert float(g_plain["loss/critic"]) == pytest.approx((mask * (q_taken - d["targets"]) ** 2).sum() / norm,
                                                         rel=1e-5)
    assert float(learner.update(older)["critic_loss"]) == pytest.approx(float(g_plain["loss/critic"]), rel=1e-5)


def _weighted_stats(x: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    mean = float((w * x).sum() / w.sum())
    return mean, float(np.sqrt((w * (x - mean) ** 2).sum() / w.sum()))


def test_coma_extras_are_off_by_default_and_validated():
    cfg = load_config("coma").coma
    assert cfg.entropy_coef == 0.0 and cfg.advantage_norm is False  # the paper's COMA: records stay valid
    with pytest.raises(ConfigError, match="entropy_coef"):
        load_config("coma", overrides={"coma.entropy_coef": -0.1})


# -- actor_output_gain: the small-gain logits layer ----------------------------------------------------------
#: ``COMA.init_weights(parity_spec("discrete"), coma_config(.., share, recurrent), seed=0)`` as computed
#: by the code before ``actor_output_gain`` existed: a null gain must keep every run's start bit for bit
INIT_DIGESTS = {
    (True, False): "bf2b1dc7937cba17d24e185e4f9159c4ffe0709fe2aa7c70510675b58328d54d",
    (False, False): "24bb371d7ed35ea40ab71c5d502456bea67a5f6b8c4bec4fc3d8ce45f2b91088",
    (True, True): "4a652f5d927236921aa740ffc1d7ae8e7e02d86ffd17398294b6750f41f02cb6",
    (False, True): "1227bf460217dafc3958359662cf13485ca1629c2a8615f98720dabb99418169",
}
GAIN_CASES = list(INIT_DIGESTS)


def gain_id(case: tuple[bool, bool]) -> str:
    return case_id((*case, False))


def test_actor_output_gain_is_off_by_default_and_validated():
    assert load_config("coma").coma.actor_output_gain is None  # today's init: the learning records stay valid
    assert load_config("coma", overrides={"coma.actor_output_gain": 0.01}).coma.actor_output_gain == 0.01
    for bad in (0.0, -0.01, float("inf"), float("nan"), "small"):
        with pytest.raises(ConfigError, match="coma.actor_output_gain"):
            load_config("coma", overrides={"coma.actor_output_gain": bad})


@pytest.mark.parametrize("case", GAIN_CASES, ids=gain_id)
def test_null_actor_output_gain_is_todays_init_bit_for_bit(case):
    share, recurrent = case
    spec, cfg = parity_spec("discrete"), coma_config("torch", share, recurrent)
    assert cfg.actor_output_gain is None
    w = COMA.init_weights(spec, cfg, 0)
    assert weights_digest(w) == INIT_DIGESTS[case]
    # a config object without the key at all (e.g. built by older code) gives the same weights
    absent = types.SimpleNamespace(**{k: v for k, v in cfg if k != "actor_output_gain"})
    assert weights_digest(COMA.init_weights(spec, absent, 0)) == INIT_DIGESTS[case]


def numpy_actor_logits(spec, cfg, w: dict[str, np.ndarray], obs: np.ndarray) -> np.ndarray:
    """The feed-forward actor in float64 numpy: ``obs`` ``[N, A, obs_dim]`` -> logits ``[N, A, n]``."""
    x = obs.transpose(1, 0, 2).astype(np.float64)  # [A, N, od]
    if cfg.share_parameters:
        ids = np.broadcast_to(np.eye(spec.n_agents)[:, None], (spec.n_agents, x.shape[1], spec.n_agents))
        x = np.concatenate([x, ids], -1)
    k = 0
    while f"actor/torso/dense_{k}/kernel" in w:
        x = np.maximum(x @ w[f"actor/torso/dense_{k}/kernel"] + w[f"actor/torso/dense_{k}/bias"][:, None], 0.0)
        k += 1
    return (x @ w["actor/head/kernel"] + w["actor/head/bias"][:, None]).transpose(1, 0, 2)


@pytest.mark.parametrize("case", GAIN_CASES, ids=gain_id)
@pytest.mark.parametrize("gain", [0.01, 0.5])
def test_actor_output_gain_redraws_only_the_logits_layer(case, gain):
    share, recurrent = case
    spec = parity_spec("discrete")
    off = COMA.init_weights(spec, coma_config("torch", share, recurrent), 0)
    cfg = coma_config("torch", share, recurrent, **{"coma.actor_output_gain": gain})
    w = COMA.init_weights(spec, cfg, 0)
    assert w.keys() == off.keys() and all(w[k].dtype == off[k].dtype and w[k].shape == off[k].shape for k in w)
    changed = sorted(k for k in w if not np.array_equal(w[k], off[k]))
    assert changed == ["actor/head/bias", "actor/head/kernel"]  # critic, target, torso and GRU: as today
    kernel = w["actor/head/kernel"]  # [G, width, n]; width > n here: orthonormal columns times the gain
    G, width, n = kernel.shape
    assert G == (1 if share else spec.n_agents) and width > n
    np.testing.assert_allclose(np.linalg.svd(kernel.astype(np.float64), compute_uv=False), gain, rtol=1e-5)
    np.testing.assert_allclose(np.swapaxes(kernel, 1, 2) @ kernel, gain ** 2 * np.eye(n)[None].repeat(G, 0),
                               atol=1e-6 * max(1.0, gain ** 2))
    assert np.all(w["actor/head/bias"] == 0)
    if G > 1:
        assert not np.allclose(kernel[0], kernel[1])  # one draw per agent, not a copy
    # a deterministic function of the seed, like the rest of the init
    assert weights_digest(COMA.init_weights(spec, cfg, 0)) == weights_digest(w)
    assert not np.array_equal(COMA.init_weights(spec, cfg, 1)["actor/head/kernel"], kernel)


@pytest.mark.parametrize("shape", [(2, 7, 3), (3, 3, 7), (1, 5, 5)], ids=["tall", "wide", "square"])
def test_orthogonal_kernels_have_every_singular_value_equal_to_the_gain(shape):
    k = layout.orthogonal(np.random.default_rng(0), shape, 0.3)
    assert k.shape == shape and k.dtype == np.float32
    np.testing.assert_allclose(np.linalg.svd(k.astype(np.float64), compute_uv=False), 0.3, rtol=1e-5)
    small = min(shape[1:])
    gram = k @ np.swapaxes(k, 1, 2) if shape[1] == small else np.swapaxes(k, 1, 2) @ k
    np.testing.assert_allclose(gram, 0.09 * np.eye(small)[None].repeat(shape[0], 0), atol=1e-6)
    assert np.array_equal(layout.orthogonal(np.random.default_rng(0), shape, 0.3), k)


@pytest.mark.parametrize("share", [True, False], ids=["shared", "per_agent"])
def test_small_actor_output_gain_starts_near_uniform_in_numpy(share):
    spec = parity_spec("discrete")
    obs = random_observations(spec, (256,), np.random.default_rng(3)).transpose(1, 0, 2)  # [N, A, od]
    logits = {}
    for gain in (None, 0.01):
        cfg = coma_config("torch", share, False, **{"coma.actor_output_gain": gain})
        logits[gain] = numpy_actor_logits(spec, cfg, COMA.init_weights(spec, cfg, 0), obs)
    assert np.abs(logits[0.01]).max() < 0.05
    assert np.abs(logits[None]).max() > 0.2  # the default init is far from uniform: the bound above means something
    p = coma.policy_probs(logits[0.01], np.broadcast_to(spec.act_mask, logits[0.01].shape), 0.0)
    uniform = spec.act_mask / spec.act_mask.sum(-1, keepdims=True)
    assert np.abs(p - uniform).max() < 0.02


@pytest.mark.parametrize("case", GAIN_CASES, ids=gain_id)
def test_small_actor_output_gain_reaches_every_backend(backend, case):
    """The gain lives in the numpy init only: each backend's actor (feed-forward and GRU) starts
    from those weights and gives near-uniform logits (over two steps for the GRU)."""
    share, recurrent = case
    spec = parity_spec("discrete")
    cfg = coma_config(backend, share, recurrent, **{"coma.actor_output_gain": 0.01})
    init = COMA.init_weights(spec, cfg, 0)
    learner = registry.get("learner", "coma", backend)(spec, cfg, init)
    got = learner.get_weights()
    assert np.array_equal(got["actor/head/kernel"], init["actor/head/kernel"])
    assert np.all(got["actor/head/bias"] == 0)
    obs = np.ascontiguousarray(random_observations(spec, (64,), np.random.default_rng(4)).transpose(1, 0, 2))
    logits, state = learner.policy.forward_numpy(obs, None)
    logits2, _ = learner.policy.forward_numpy(obs, state)
    assert max(np.abs(logits).max(), np.abs(logits2).max()) < 0.05
    if not recurrent:
        np.testing.assert_allclose(logits, numpy_actor_logits(spec, cfg, init, obs), atol=1e-5)


@pytest.mark.parametrize("recurrent", [False, True], ids=["mlp", "gru"])
def test_coma_trains_from_a_small_gain_actor(recurrent, tmp_path):
    require("torch")
    ov = {"coma.actor_output_gain": 0.01, "coma.recurrent": recurrent, "train.steps": 2000,
          "train.eval_interval": 1000, "train.log_interval": 400, "train.tensorboard": False,
          "train.progress": False, "out_dir": str(tmp_path)}
    trainer = Trainer(load_config("coma", "target", "torch", overrides=ov))
    w0 = trainer.learner.get_weights()  # what the run starts from: the small-gain head
    np.testing.assert_allclose(np.linalg.svd(w0["actor/head/kernel"].astype(np.float64), compute_uv=False), 0.01,
                               rtol=1e-5)
    assert np.all(w0["actor/head/bias"] == 0)
    r = trainer.train()
    assert r.final_metrics["updates"] > 0 and len(r.curve) == 2
    assert all(np.isfinite(ret) for _, ret in r.curve), r.curve
    trained = [json.loads(x)["train_return"] for x in r.metrics_path.read_text().splitlines() if "train_return" in x]
    assert trained and np.all(np.isfinite(trained))
    assert not np.array_equal(r.learner.get_weights()["actor/head/kernel"], w0["actor/head/kernel"])  # it learned


def test_entropy_bonus_and_advantage_norm_match_numpy(backend):
    """``coma.entropy_coef`` and ``coma.advantage_norm`` on episodes in which agents leave, against
    numpy computed here from the learner's own ``q`` and ``pi``: the advantages it uses have weighted
    mean 0 and weighted std 1 over the real steps of agents in the episode, and are the raw
    counterfactual advantages normalised with those weights (an agent-step that is dead does not
    move them); the entropy bonus lowers the actor loss by exactly ``entropy_coef`` times the
    weighted mean entropy, and changes the actor's gradients (not the critic's)."""
    spec = parity_spec("discrete")
    coef = 0.05
    plain_cfg = coma_config(backend, False, False)
    weights = COMA.init_weights(spec, plain_cfg, 0)
    rng = np.random.default_rng(11)
    ep = synthetic_episodes(spec, 4, 6, rng)
    ep = cref.agents_leave(ep, cref.random_leaving(ep, rng))
    batch = COMA.prepare_batch(spec, plain_cfg, ep, rng, step=50_000)
    T = batch["mask"].shape[1]
    w = batch["mask"][None] * batch["agent_mask"][:, :, :T]
    dead = (batch["mask"][None] > 0) & (w == 0)
    assert dead.any() and (w > 0).any()

    def learner(**extra):
        cfg = coma_config(backend, False, False, **{f"coma.{k}": v for k, v in extra.items()})
        return registry.get("learner", "coma", backend)(spec, cfg, {k: v.copy() for k, v in weights.items()})

    plain, entropy = learner(), learner(entropy_coef=coef)
    normed = learner(advantage_norm=True)
    both = learner(entropy_coef=coef, advantage_norm=True)
    d = plain.diagnostics(batch)
    pi, q = d["pi"].astype(np.float64), d["q"].astype(np.float64)
    actions = batch["act_onehot"][:, :, :T].argmax(-1)
    raw = cref.counterfactual_advantage(q, pi, actions)

    # advantage normalisation: weighted statistics over the live agent-steps only
    dn = normed.diagnostics(batch)
    np.testing.assert_allclose(dn["pi"], d["pi"], rtol=1e-6, atol=1e-7)  # same weights, same policy
    mean, std = _weighted_stats(dn["advantages"].astype(np.float64), w)
    assert abs(mean) < 1e-5 and std == pytest.approx(1.0, abs=1e-5)
    r_mean, r_std = _weighted_stats(raw, w)
    assert abs(r_mean) > 1e-3 or abs(r_std - 1.0) > 1e-2  # the raw advantages were not normalised already
    expected = (raw - r_mean) / (r_std + 1e-8)
    np.testing.assert_allclose(dn["advantages"][w > 0], expected[w > 0], rtol=1e-4, atol=1e-5)
    # unweighted statistics (or ones over padding and dead steps) would give other advantages
    assert np.abs((raw - raw.mean()) / raw.std() - expected)[w > 0].max() > 1e-3
    # a dead agent-step's critic input changes its own (unused) advantage, not the used ones
    moved = dict(batch, critic_in=batch["critic_in"].copy())
    moved["critic_in"][:, :, :T][dead] += 3.0
    dm = normed.diagnostics(moved)
    assert np.abs(dm["advantages"][dead] - dn["advantages"][dead]).max() > 1e-3
    np.testing.assert_allclose(dm["advantages"][w > 0], dn["advantages"][w > 0], rtol=1e-5, atol=1e-6)

    # the entropy bonus, computed from the returned pi without the learner's clamp
    H = -np.where(pi > 0, pi * np.log(np.where(pi > 0, pi, 1.0)), 0.0).sum(-1)
    assert np.all(H >= 0) and H[w > 0].max() > 0.5  # (0 where one action is available)
    bonus = coef * (w * H).sum() / max(w.sum(), 1.0)
    g_plain, g_entropy = plain.gradients(batch), entropy.gradients(batch)
    assert float(g_entropy["loss/actor"]) == pytest.approx(float(g_plain["loss/actor"]) - bonus, rel=1e-5, abs=1e-6)
    assert float(g_entropy["loss/critic"]) == float(g_plain["loss/critic"])
    for name in g_plain:
        if name.startswith("critic/"):
            np.testing.assert_allclose(g_entropy[name], g_plain[name], rtol=1e-6, atol=1e-8)
    assert max(np.abs(g_entropy[k] - g_plain[k]).max() for k in g_plain if k.startswith("actor/")) > 1e-5

    # both switches at once: the numpy reference of the losses
    g_both = both.gradients(batch)
    ref = cref.losses(batch, q, pi, d["targets"], entropy_coef=coef, advantage_norm=True)
    for k in ("critic", "actor"):
        assert float(g_both[f"loss/{k}"]) == pytest.approx(ref[k], rel=1e-5, abs=1e-6), k
    assert ref["actor"] != pytest.approx(cref.losses(batch, q, pi, d["targets"])["actor"], rel=1e-3)


def test_dead_agent_parity_cases_have_agents_leaving():
    """COMA's parity cases with agents that leave mid-episode (``-dead``) really have them: zero
    observations on the real steps after an agent left, and no agent coming back. (Their parity at
    1e-5 in every backend, forward outputs, losses, gradients and weights after 3 updates, is
    checked with every other case's in tests/test_parity.py.)"""
    dead = [c for c in cref.parity_cases("coma") if "-dead" in c.name]
    assert len(dead) == 3
    for c in dead:
        for b in c.batches:
            am, T = b["agent_mask"], b["mask"].shape[1]
            left = (am[:, :, :T] == 0) & (b["mask"][None] > 0)  # real steps of agents that have left
            assert left.any() and np.all(b["obs"][:, :, :T][left] == 0)
            assert np.all(np.diff(am, axis=-1) <= 0)  # agents leave, and do not come back
    assert all((c.atol, c.rtol) == (1e-5, 1e-5) for c in dead)
    extras = [c for c in dead if c.name.endswith("-entropy-advnorm")]
    assert len(extras) == 1 and extras[0].config.entropy_coef > 0 and extras[0].config.advantage_norm
    assert all(c.config.entropy_coef == 0 and not c.config.advantage_norm for c in cref.parity_cases("coma")
               if c.name != extras[0].name)


def test_acting_gives_the_agents_that_left_action_zero():
    require("torch")
    spec = parity_spec("discrete")
    cfg = coma_config("torch", True, True)
    policy = registry.get("learner", "coma", "torch")(spec, cfg, COMA.init_weights(spec, cfg, 0)).policy
    rng = np.random.default_rng(4)
    obs = rng.standard_normal((5, 3, spec.obs_dim)).astype(np.float32)
    avail = np.broadcast_to(spec.act_mask, (5, 3, spec.act_dim)).copy()
    avail[:, :, 0] = 0  # action 0 is never available to the agents in the episode
    am = np.ones((5, 3), np.float32)
    am[[0, 2, 4], 1] = 0
    obs[am == 0] = 0
    full_avail = avail.copy()
    avail[am == 0] = 0  # an agent that has left reports nothing available
    for explore in (False, True):
        full, s_full = policy.act(obs, None, explore, np.random.default_rng(9), 0.3, full_avail)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no NaN from the agents with nothing available
            got, s_got = policy.act(obs, None, explore, np.random.default_rng(9), 0.3, avail, agent_mask=am)
        assert np.all(got[am == 0] == 0) and np.all(got[am > 0] > 0)
        assert np.array_equal(got[am > 0], full[am > 0]) and np.array_equal(s_got, s_full)
    with pytest.raises(ValueError, match="agent_mask must have shape"):
        policy.act(obs, agent_mask=np.ones((5, 2)))


# -- the episode buffer -------------------------------------------------------------------------------------
def test_episode_buffer_pads_and_keeps_final_steps():
    buf = EpisodeBuffer(num_envs=2, n_agents=2, obs_dim=1, n_actions=3, max_len=2)
    avail = np.ones((2, 2, 3), np.float32)
    lengths = {0: 3, 1: 1}  # env 0: a 3-step episode (forces growth past max_len=2); env 1: 1-step episodes
    t = np.zeros(2, int)
    for step in range(3):
        obs = np.full((2, 2, 1), 10 * step, np.float32) + np.array([0, 1], np.float32)[:, None, None]
        buf.add(obs, np.full((2, 2), step), avail, np.full((2, 2), step + 1.0), np.zeros(2, np.float32))
        t += 1
        done = np.array([t[0] == lengths[0], t[1] == lengths[1]])
        buf.finish(done, obs + 100, np.full((2, 2), 9), avail)
        t[done] = 0
    batch = buf.take()
    assert len(buf) == 0 and batch["obs"].shape == (4, 4, 2, 1)  # env 1: three 1-step episodes; env 0: one of 3
    assert batch["mask"].sum(1).tolist() == [1, 1, 3, 1]  # in the order episodes ended (env order within a step)
    long = 2
    assert batch["obs"][long, :, 0, 0].tolist() == [0, 10, 20, 120]  # final observation at index L
    assert batch["actions"][long, :, 0].tolist() == [0, 1, 2, 9]
    assert batch["rew"][long, :, 0].tolist() == [1, 2, 3]
    assert batch["obs"][0, :, 0, 0].tolist() == [1, 101, 0, 0]  # padding is zero
    assert batch["rew"][1, :, 0].tolist() == [2, 0, 0]


def test_episode_buffer_state_roundtrip():
    buf = EpisodeBuffer(2, 1, 1, 2)
    buf.add(np.ones((2, 1, 1)), np.zeros((2, 1), int), np.ones((2, 1, 2)), np.ones((2, 1)), np.zeros(2))
    buf.finish(np.array([True, False]), np.ones((2, 1, 1)), np.zeros((2, 1), int), np.ones((2, 1, 2)))
    other = EpisodeBuffer(2, 1, 1, 2)
    other.load_state_dict(buf.state_dict())
    for b in (buf, other):
        b.add(np.full((2, 1, 1), 2.0), np.ones((2, 1), int), np.ones((2, 1, 2)), np.ones((2, 1)), np.zeros(2))
        b.finish(np.array([True, True]), np.ones((2, 1, 1)), np.zeros((2, 1), int), np.ones((2, 1, 2)))
    x, y = buf.take(), other.take()
    assert x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x)
    assert x["mask"].sum(1).tolist() == [1, 1, 2]


# -- training -------------------------------------------------------------------------------------------------
def test_coma_solves_the_target_game_with_action_masks(backend, out_dir):
    # taking a masked action raises inside the env, so finishing also shows masks are honoured
    r = xmarl.run(method="coma", backend=backend, env="target", out_dir=out_dir, progress=False,
                  overrides={"train.tensorboard": False, "train.log_interval": 400})
    assert r.final_metrics["eval_return"] >= 4.5, r.curve  # 5 steps, reward 1 per step when every agent hits
    first = next(json.loads(x) for x in r.metrics_path.read_text().splitlines() if "train_return" in x)
    assert first["train_return"] < 4.0  # it had to learn it


def _records(path):
    return [{k: v for k, v in json.loads(x).items() if not is_timing(k)} for x in path.read_text().splitlines()]


def test_recurrent_coma_solves_the_target_game_and_resumes_mid_episode(backend, tmp_path):
    """The GRU actor through the on-policy trainer, in every backend (one test per backend: each
    builds three learners). The uninterrupted run (the shipped 8000 steps) solves the target game.
    A second run crashes after its checkpoint at step 1008 (126 steps of 8 envs: one step into
    5-step episodes, so the checkpoint holds a live recurrent state); resumed, it logs the same
    metrics and ends with the same weights as the uninterrupted run."""
    ov = {"train.tensorboard": False, "train.progress": False, "coma.recurrent": True,
          "train.checkpoint_interval": 1004, "train.log_interval": 400}
    full = xmarl.run(method="coma", backend=backend, env="target", out_dir=tmp_path / "full", overrides=ov)
    assert full.final_metrics["eval_return"] >= 4.5, full.curve  # 5 steps, reward 1 per step when every agent hits
    cfg = load_config("coma", "target", backend, overrides={**ov, "out_dir": str(tmp_path / "cut")})
    trainer = Trainer(cfg)

    def crash_after_a_checkpoint(update):
        def crashing(batch):
            if trainer.state.step > 1300:
                raise RuntimeError("simulated crash")
            return update(batch)
        return crashing

    trainer.learner.update = crash_after_a_checkpoint(trainer.learner.update)  # the trainer calls update
    with pytest.raises(RuntimeError, match="simulated crash"):
        trainer.train()
    assert json.loads((latest_checkpoint(trainer.run_dir) / "trainer.json").read_text())["step"] == 1008
    resumer = Trainer(cfg, resume=trainer.run_dir)  # what xmarl.run(resume=...) builds
    # the GRU state one step into the episodes comes back: it changes few sampled actions here (with
    # it zeroed on resume, the records and weights below still came out equal), so check it directly
    restored = 0.0 if resumer.carry is None else float(np.abs(resumer.carry).max())
    assert restored > 0, "resumed mid-episode with a zero or missing recurrent state"
    resumed = resumer.train()
    assert _records(resumed.metrics_path) == _records(full.metrics_path)
    wa, wb = full.learner.get_weights(), resumed.learner.get_weights()
    assert wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa)


def test_coma_refuses_continuous_actions(out_dir):
    require("torch")
    with pytest.raises(EnvError, match="coma needs discrete actions"):
        xmarl.run(method="coma", backend="torch", env="target", out_dir=out_dir, progress=False,
                  overrides={"env_kwargs": {"continuous": True}})
    assert not out_dir.exists()
