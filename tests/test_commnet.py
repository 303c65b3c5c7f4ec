"""CommNet: parity across backends (hidden states after each communication step, losses,
gradients, weights after 3 updates; with and without masks and skip connections), every backend
against the numpy reference, communication masks (range, adjacency, agent masks, switched off),
500 agents in one batched computation, the levers env, learning and the trainer path, and the
small-gain policy head (``policy_output_gain``; off, today's initialisation bit for bit)."""

from __future__ import annotations

import os
import types

import numpy as np
import pytest

import xmarl
from tests.conftest import BACKENDS, require, weights_digest
from xmarl import registry
from xmarl.compare.parity import ATOL, RTOL
from xmarl.compare.reference import commnet as cref
from xmarl.compare.reference.data import method_config, parity_spec, random_observations
from xmarl.config import load_config
from xmarl.core import commnet as core
from xmarl.core.commnet import COMMNET, NET
from xmarl.core.spaces import AgentSpec
from xmarl.envs import make_env
from xmarl.envs.levers import Levers, random_reward
from xmarl.errors import ConfigError, EnvError


def _installed() -> list[str]:
    if os.environ.get("XMARL_REQUIRE_BACKENDS") == "1":
        for b in BACKENDS:
            require(b)
    return [b for b in BACKENDS if registry.backend_installed(b)]


@pytest.fixture(scope="module")
def report():
    backends = _installed()
    if len(backends) < 2:
        pytest.skip("parity needs two installed backends")
    return xmarl.parity("commnet", backends)


def _cfg(**over):
    """A CommNet config with every option the tests rely on pinned (see ``cref.BASE_OPTIONS``)."""
    return method_config("commnet", {**cref.BASE_OPTIONS, **over})


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.all(np.abs(np.asarray(a, np.float64) - b) <= ATOL + RTOL * np.abs(b)))


# -- parity and the numpy reference ---------------------------------------------------------------
def test_parity_across_backends(report):
    assert report.ok, report.summary() + "\n" + report.table()
    names = {c.name for c in cref.parity_cases()}
    assert names == {"commnet-plain-embedding", "commnet-skip-static-mask", "commnet-range-mask-per-agent-ac",
                     "commnet-recurrent-ac"}
    for case in cref.parity_cases():
        ref = report.results["commnet"][case.name][report.backends[0]]
        K = case.config.comm_steps
        # hidden states after every communication step, the losses, gradients and 3 updates are compared
        assert {f"forward/hidden_{i}" for i in range(K + 1)} <= set(ref)
        assert {"loss/policy_loss", "loss/value_loss", "update_2/loss", "optimizer/opt/commnet/step"} <= set(ref)
        assert any(k.startswith("grad/commnet/comm_1/comm/kernel") for k in ref) == case.config.communicate
        assert float(ref["optimizer/opt/commnet/step"]) == 3
        moved = np.abs(ref["weights/commnet/policy/kernel"] - case.weights["commnet/policy/kernel"]).max()
        assert moved > 1e-4
    masked = [c for c in cref.parity_cases() if "agent_mask" in c.batches[0] and c.batches[0]["agent_mask"].min() == 0]
    assert masked and any(c.config.skip_connection for c in masked)


def test_every_backend_matches_the_numpy_reference(report):
    """The forward pass (h^0..h^K, logits, values) and the losses of every backend, from the
    parity run, against :func:`cref.reference_forward` / :func:`cref.reference_losses`."""
    for case in cref.parity_cases():
        b0 = case.batches[0]
        obs = b0["obs"][:, :, 0].transpose(1, 0, 2)
        am = b0["agent_mask"][:, :, 0].T
        cm = b0["comm_mask"][:, 0] if "comm_mask" in b0 else None
        state = (np.random.default_rng(0).standard_normal((obs.shape[0], 4, case.config.hidden_size)) * 0.5
                 ).astype(np.float32) if case.config.recurrent else None
        fwd = cref.reference_forward(case.spec, case.config, case.weights, obs, am, cm, state)
        losses = cref.reference_losses(case.spec, case.config, case.weights, b0)
        for backend in report.backends:
            got = report.results["commnet"][case.name][backend]
            for i, h in enumerate(fwd["hiddens"]):
                assert _close(got[f"forward/hidden_{i}"], h), (backend, case.name, i)
            assert _close(got["forward/logits"], fwd["logits"]) and _close(got["forward/values"], fwd["values"])
            for k, v in losses.items():
                assert _close(got[f"loss/{k}"], np.array(v)), (backend, case.name, k, got[f"loss/{k}"], v)


def test_reference_losses_are_the_paper_formula():
    """A one-agent-pair, one-step batch computed by hand: -log pi(a) (R - b) and (R - b)^2."""
    spec = parity_spec("discrete", n_agents=2)
    cfg = _cfg(hidden_size=4, value_coef=0.5, entropy_coef=0.0)
    w = COMMNET.init_weights(spec, cfg, 3)
    ep = {"obs": np.ones((1, 2, 2, spec.obs_dim), np.float32), "actions": np.array([[[1, 2], [0, 0]]]),
          "avail": np.ones((1, 2, 2, spec.act_dim), np.float32), "rew": np.array([[[2.0, 2.0]]], np.float32),
          "term": np.ones((1, 1), np.float32), "mask": np.ones((1, 1), np.float32)}
    batch = COMMNET.prepare_batch(spec, cfg, ep, np.random.default_rng(0), 0)
    out = cref.reference_forward(spec, cfg, w, ep["obs"][:, 0])
    logits, b = out["logits"][0], out["values"][0]
    logp = [logits[j] - np.log(np.exp(logits[j][: spec.act_dims[j]]).sum()) for j in range(2)]
    taken = np.array([logp[0][1], logp[1][2]])
    losses = cref.reference_losses(spec, cfg, w, batch)
    assert losses["policy_loss"] == pytest.approx(-np.mean(taken * (2.0 - b)), rel=1e-6)
    assert losses["value_loss"] == pytest.approx(np.mean((2.0 - b) ** 2), rel=1e-6)
    assert losses["loss"] == pytest.approx(losses["policy_loss"] + 0.5 * losses["value_loss"], rel=1e-6)


# -- communication ----------------------------------------------------------------------------------
def _learner(backend: str, spec: AgentSpec, **over):
    cfg = _cfg(hidden_size=8, **over)
    return registry.get("learner", "commnet", backend)(spec, cfg, COMMNET.init_weights(spec, cfg, 1)), cfg


def test_range_mask_an_agent_that_cannot_hear_another_is_independent_of_it(backend):
    """Agent 0 is out of range of agent 2 (agent 1 hears it): changing agent 2's observation
    (not its position) leaves agent 0's communication vector and outputs unchanged."""
    spec = parity_spec("discrete", n_agents=3)
    learner, cfg = _learner(backend, spec, comm_range=1.0, position_dims=[0, 1], comm_steps=3)
    rng = np.random.default_rng(0)
    obs = rng.standard_normal((4, 3, spec.obs_dim)).astype(np.float32)
    obs[:, :, :2] = [[0.0, 0.0], [0.9, 0.0], [1.8, 0.0]]  # 0 <-> 1 <-> 2 in range; 0 and 2 are not
    mask = core.range_mask(cfg, obs)
    assert mask[0].tolist() == [[0, 1, 0], [1, 0, 1], [0, 1, 0]]
    changed = obs.copy()
    changed[:, 2, 2:] += rng.standard_normal(changed[:, 2, 2:].shape).astype(np.float32) * 3.0
    a, b = learner.policy.probe_numpy(obs), learner.policy.probe_numpy(changed)
    # h^1 only sees each agent's own input; h^2 = f(h^1, c^1) with c^1 from the agents heard
    np.testing.assert_allclose(a["hiddens"][2][:, 0], b["hiddens"][2][:, 0], atol=1e-6)
    assert np.abs(a["hiddens"][2][:, 1] - b["hiddens"][2][:, 1]).max() > 1e-3  # agent 1 hears agent 2
    # a second round carries agent 2's influence to agent 0 through agent 1, as it should
    assert np.abs(a["hiddens"][3][:, 0] - b["hiddens"][3][:, 0]).max() > 1e-4
    # the communication vector itself: numpy reference of c^1 for agent 0 ignores agent 2 entirely
    h = rng.standard_normal((4, 3, 5))
    h2 = h.copy()
    h2[:, 2] += 10.0
    c, c2 = cref.comm_vectors(h, np.ones((4, 3)), mask), cref.comm_vectors(h2, np.ones((4, 3)), mask)
    np.testing.assert_array_equal(c[:, 0], c2[:, 0])
    np.testing.assert_allclose(c[:, 1], (h[:, 0] + h[:, 2]) / 2)


def test_agent_mask_inactive_agents_neither_speak_nor_count(backend):
    spec = parity_spec("discrete", n_agents=4)
    learner, _ = _learner(backend, spec, skip_connection=True)
    rng = np.random.default_rng(1)
    obs = rng.standard_normal((3, 4, spec.obs_dim)).astype(np.float32)
    am = np.array([[1, 1, 0, 1]] * 3, np.float32)
    changed = obs.copy()
    changed[:, 2] += 5.0
    a, b = learner.policy.probe_numpy(obs, agent_mask=am), learner.policy.probe_numpy(changed, agent_mask=am)
    active = [0, 1, 3]
    np.testing.assert_allclose(a["logits"][:, active], b["logits"][:, active], atol=1e-6)
    unmasked = learner.policy.probe_numpy(obs), learner.policy.probe_numpy(changed)  # agent 2 active: it counts
    assert np.abs(unmasked[0]["logits"][:, active] - unmasked[1]["logits"][:, active]).max() > 1e-4
    h = rng.standard_normal((3, 4, 2))
    c = cref.comm_vectors(h, am, None)
    np.testing.assert_allclose(c[:, 0], (h[:, 1] + h[:, 3]) / 2)  # mean over the 2 active others


def test_static_adjacency_and_communication_switched_off(backend):
    spec = parity_spec("discrete", n_agents=3)
    rng = np.random.default_rng(2)
    obs = rng.standard_normal((2, 3, spec.obs_dim)).astype(np.float32)
    changed = obs.copy()
    changed[:, 1] += 2.0
    # agent 0 hears agent 2 only: agent 1's observation cannot reach it
    learner, _ = _learner(backend, spec, comm_mask=[[0, 0, 1], [1, 0, 1], [1, 1, 0]])
    a, b = learner.policy.probe_numpy(obs), learner.policy.probe_numpy(changed)
    np.testing.assert_allclose(a["logits"][:, 0], b["logits"][:, 0], atol=1e-6)
    assert np.abs(a["logits"][:, 2] - b["logits"][:, 2]).max() > 1e-4
    # no communication: nobody depends on anybody else, and no C weights exist
    learner, cfg = _learner(backend, spec, communicate=False)
    assert not any("/comm/" in k for k in COMMNET.param_shapes(spec, cfg))
    a, b = learner.policy.probe_numpy(obs), learner.policy.probe_numpy(changed)
    np.testing.assert_allclose(a["logits"][:, [0, 2]], b["logits"][:, [0, 2]], atol=1e-6)


def test_500_agents_are_one_batched_computation(backend):
    """500 agents of one game through the backend's network match the numpy reference."""
    spec = AgentSpec(tuple(f"a{i}" for i in range(500)), (1,) * 500, "discrete", (5,) * 500,
                     np.zeros((500, 5), np.float32), np.zeros((500, 5), np.float32))
    learner, cfg = _learner(backend, spec, encoder="embedding", n_ids=1000, skip_connection=True)
    ids = np.random.default_rng(3).permutation(1000)[:1000].reshape(2, 500, 1).astype(np.float32)
    got = learner.policy.probe_numpy(ids)
    ref = cref.reference_forward(spec, cfg, learner.get_weights(), ids)
    assert got["hiddens"].shape == (3, 2, 500, 8)
    assert _close(got["hiddens"], ref["hiddens"]) and _close(got["logits"], ref["logits"])


def test_acting_follows_the_updated_weights(backend):
    """The acting step (a graph of its own in some backends) reads the weights the update
    wrote: after updates its logits and next state equal the full forward pass's, and moved."""
    for name in ("commnet-plain-embedding", "commnet-recurrent-ac"):
        case = next(c for c in cref.parity_cases() if c.name == name)
        learner = registry.get("learner", "commnet", backend)(case.spec, case.config, case.weights)
        obs = case.batches[0]["obs"][:, :, 0].swapaxes(0, 1)  # first step of each episode, [E, A, obs_dim]
        before, _ = learner.policy.forward_numpy(obs)
        for batch in case.batches[:2]:
            learner.update(batch)
        logits, state = learner.policy.forward_numpy(obs)
        full = learner.policy.probe_numpy(obs)
        assert _close(logits, full["logits"]) and np.abs(logits - before).max() > 1e-4, name
        if case.config.recurrent:
            assert _close(state, full["state"]), name


def test_sampling_follows_the_softmax_and_respects_available_actions():
    spec = parity_spec("discrete", n_agents=2)
    learner, _ = _learner("torch", spec)
    obs = np.repeat(np.random.default_rng(4).standard_normal((1, 2, spec.obs_dim)).astype(np.float32), 20000, 0)
    logits, _ = learner.policy.forward_numpy(obs[:1])
    acts, _ = learner.policy.act(obs, explore=True, rng=np.random.default_rng(5))
    for j, n in enumerate(spec.act_dims):
        p = np.exp(logits[0, j, :n] - logits[0, j, :n].max())
        freq = np.bincount(acts[:, j], minlength=spec.act_dim) / len(acts)
        np.testing.assert_allclose(freq[:n], p / p.sum(), atol=0.015)
        assert freq[n:].sum() == 0  # padded entries are never chosen
    avail = np.zeros((20000, 2, spec.act_dim), np.float32)
    avail[:, :, 1] = 1.0
    acts, _ = learner.policy.act(obs, explore=True, rng=np.random.default_rng(6), avail=avail)
    assert (acts == 1).all()


# -- the levers env -----------------------------------------------------------------------------------
def test_levers_reward_ids_and_steps():
    env = make_env("levers", 4, n_pool=12, n_agents=5)
    assert isinstance(env, Levers) and env.spec.n_agents == 5 and env.spec.act_dims == (5,) * 5
    obs = env.reset(seed=0)
    ids = obs[..., 0]
    assert obs.shape == (4, 5, 1) and ids.min() >= 0 and ids.max() < 12
    assert all(len(set(row)) == 5 for row in ids.astype(int).tolist())  # drawn without replacement
    actions = np.array([[0, 1, 2, 3, 4], [0, 0, 0, 0, 0], [0, 0, 1, 1, 2], [4, 3, 4, 3, 4]])
    nxt, final, rew, term, done = env.step(actions)
    np.testing.assert_allclose(rew[:, 0], [1.0, 0.0, 0.5, 0.25])
    assert (rew == rew[:, :1]).all() and term.all() and done.all()  # one team reward; one-step episodes
    np.testing.assert_array_equal(final, obs)
    assert env.completed_returns == pytest.approx([1.0, 0.0, 0.5, 0.25])
    big = Levers(20000, n_pool=500, n_agents=5)
    big.reset(seed=1)
    r = big.reward(big.sample_actions(np.random.default_rng(0))).mean()
    assert random_reward(5) == pytest.approx(0.5904, abs=1e-4) and r == pytest.approx(random_reward(5), abs=0.01)
    with pytest.raises(EnvError, match="integers in 0..4"):
        env.step(actions + 1)
    with pytest.raises(EnvError, match="shape"):
        env.step(actions[:, :3])
    with pytest.raises(EnvError, match="n_pool"):
        Levers(1, n_pool=3, n_agents=5)
    assert env.render(0).shape == (64, 160, 3)


def test_config_errors_are_one_line():
    spec = AgentSpec(("a", "b"), (1, 1), "discrete", (2, 2), np.zeros((2, 2), np.float32),
                     np.zeros((2, 2), np.float32))
    with pytest.raises(ConfigError, match="commnet.n_ids"):
        COMMNET.init_weights(spec, _cfg(encoder="embedding"), 0)
    with pytest.raises(ConfigError, match="2x2"):
        COMMNET.init_weights(spec, _cfg(comm_mask=[[0, 1, 1]]), 0)
    with pytest.raises(ConfigError, match="position_dims"):
        COMMNET.init_weights(spec, _cfg(comm_range=1.0, position_dims=[2, 3]), 0)
    cfg = _cfg(encoder="embedding", n_ids=3)
    with pytest.raises(ValueError, match="n_ids"):
        core.check_ids(cfg, np.array([[[0.0], [3.0]]]))
    with pytest.raises(ConfigError, match="commnet.act"):
        load_config("commnet", "levers", overrides={"commnet.acitvation": "relu"})


# -- learning and the trainer ----------------------------------------------------------------------------
def _levers_batch(env: Levers, learner, cfg, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One batch of one-step levers episodes in the episode buffer's layout (T = 1)."""
    obs = env.reset()
    actions, _ = learner.policy.act(obs, explore=True, rng=rng)
    _, final, rew, _, _ = env.step(actions)
    final_actions, _ = learner.policy.act(final, explore=True, rng=rng)
    E, m = actions.shape
    ep = {"obs": np.stack([obs, final], 1), "actions": np.stack([actions, final_actions], 1),
          "avail": np.ones((E, 2, m, env.n_levers), np.float32), "rew": rew[:, None], "term": np.ones((E, 1)),
          "mask": np.ones((E, 1), np.float32)}
    return COMMNET.prepare_batch(learner.spec, cfg, ep, rng, 0)


def _greedy(env: Levers, learner) -> float:
    obs = env.reset()
    return float(env.reward(learner.policy.act(obs)[0]).mean())


def test_levers_small_pool_is_learned_with_communication_only(backend):
    """Pool of 8, 3 agents: CommNet learns to split the levers; without communication the
    agents cannot know who else is playing and stay near chance (0.56)."""
    registry.get("runtime", "configure", backend)(1)  # one framework thread, as training runs use
    results = {}
    for communicate in (True, False):
        cfg = _cfg(encoder="embedding", n_ids=8, hidden_size=32, lr=0.01, communicate=communicate)
        env = Levers(128, n_pool=8, n_agents=3)
        env.reset(seed=0)
        learner = registry.get("learner", "commnet", backend)(env.spec, cfg, COMMNET.init_weights(env.spec, cfg, 0))
        rng = np.random.default_rng(0)
        for _ in range(120):
            learner.update(_levers_batch(env, learner, cfg, rng))
        results[communicate] = _greedy(Levers(2000, n_pool=8, n_agents=3), learner)
    assert results[True] >= 0.9, results
    assert results[False] <= 0.8, results


def test_trainer_runs_commnet_on_levers(backend, out_dir):
    r = xmarl.run("commnet", backend, "levers", out_dir=out_dir, progress=False,
                  overrides={"env_kwargs.n_pool": 20, "train.num_envs": 32, "commnet.batch_episodes": 32,
                             "commnet.n_ids": 20, "commnet.hidden_size": 16, "train.steps": 320,
                             "train.eval_interval": 320, "train.eval_episodes": 50, "train.tensorboard": False})
    assert r.learner.backend == backend and type(r.learner).__module__ == f"xmarl.backends.{backend}.learners.commnet"
    assert r.final_metrics["updates"] == 10 and 0.0 <= r.final_metrics["eval_return"] <= 1.0


def test_spread_greedy_policy_depends_on_the_state_and_beats_random(backend, out_dir):
    """Regression (the shipped simple_spread config collapsed): the baseline, regressed on raw
    returns of about -10 per agent through the network it shares with the policy, saturated
    every tanh unit, so the greedy policy took one fixed action in every state (and scored the
    same -26.28 whatever was trained). After 160k steps the greedy policy must react to the
    state and beat uniform random actions (-27.3) by a margin."""
    registry.get("runtime", "configure", backend)(1)
    r = xmarl.run("commnet", backend, "mpe-fast/simple_spread_v3", out_dir=out_dir, progress=False,
                  overrides={"train.steps": 160000, "train.eval_interval": 160000, "train.eval_episodes": 100,
                             "train.tensorboard": False, "train.checkpoint_interval": 160000})
    cfg = load_config(method="commnet", env="mpe-fast/simple_spread_v3")
    env = make_env("mpe-fast/simple_spread_v3", 200, **cfg.env_kwargs)
    obs = env.reset(seed=7)
    for _ in range(10):  # states along greedy episodes
        actions, _ = r.learner.policy.act(obs)
        obs = env.step(actions)[0]
    actions, _ = r.learner.policy.act(obs)
    distinct = [len(np.unique(actions[:, j])) for j in range(actions.shape[1])]
    assert min(distinct) >= 3, f"greedy actions per agent over 200 states: {distinct} distinct"
    assert r.final_metrics["eval_return"] >= -24.5, r.final_metrics


def test_value_norm_tracks_weighted_moments():
    """Debiased moving averages: after one batch the weighted mean and std of the targets; the
    variance has a floor; the state round-trips through the optimiser state of a learner."""
    from xmarl.core.value_norm import ValueNorm

    vn = ValueNorm()
    assert vn.stats().tolist() == [0.0, 1.0]
    x, w = np.array([[-12.0, -8.0, 100.0]]), np.array([[1.0, 1.0, 0.0]])
    vn.update(x, w)
    assert np.allclose(vn.stats(), [-10.0, 2.0])
    vn.update(np.full((1, 3), -4.0), np.ones((1, 3)))  # the newer batch weighs 1 / (1 + 0.99) of the mean
    mu = (0.99 * 0.01 * -10.0 + 0.01 * -4.0) / (0.99 * 0.01 + 0.01)
    assert vn.stats()[0] == pytest.approx(mu, rel=1e-6)
    flat = ValueNorm()
    flat.update(np.full((2, 2), 3.0), np.ones((2, 2)))
    assert np.allclose(flat.stats(), [3.0, 0.1])  # variance floor 1e-2
    spec = parity_spec("discrete", n_agents=2)
    learner, _ = _learner("torch", spec, value_norm=True)
    learner.value_norm = vn
    state = learner.get_optimizer_state()
    other, _ = _learner("torch", spec, value_norm=True)
    other.set_optimizer_state(state)
    assert other.value_norm.stats().tolist() == vn.stats().tolist()


def test_reference_value_loss_is_normalised():
    """With ``value_stats`` [mu, sigma] the baseline is mu + sigma v and its loss ((R - b) / sigma)^2."""
    spec = parity_spec("discrete", n_agents=2)
    cfg = _cfg(hidden_size=4, value_coef=0.5)
    w = COMMNET.init_weights(spec, cfg, 3)
    ep = {"obs": np.ones((1, 2, 2, spec.obs_dim), np.float32), "actions": np.array([[[1, 2], [0, 0]]]),
          "avail": np.ones((1, 2, 2, spec.act_dim), np.float32), "rew": np.array([[[-9.0, -9.0]]], np.float32),
          "term": np.ones((1, 1), np.float32), "mask": np.ones((1, 1), np.float32)}
    batch = {**COMMNET.prepare_batch(spec, cfg, ep, np.random.default_rng(0), 0),
             "value_stats": np.array([-10.0, 4.0], np.float32)}
    v = cref.reference_forward(spec, cfg, w, ep["obs"][:, 0])["values"][0]
    b = -10.0 + 4.0 * v
    losses = cref.reference_losses(spec, cfg, w, batch)
    assert losses["value_loss"] == pytest.approx(np.mean(((-9.0 - b) / 4.0) ** 2), rel=1e-6)
    for backend in _installed():  # every backend's loss at the same statistics
        learner = registry.get("learner", "commnet", backend)(spec, cfg.model_copy(update={"value_norm": True}), w)
        learner.value_norm.update(np.array([-14.0, -6.0]), np.ones(2))  # mu -10, sigma 4
        got = learner.gradients(batch)
        assert got["loss/value_loss"] == pytest.approx(losses["value_loss"], rel=1e-5), backend


def test_trainer_runs_recurrent_actor_critic_commnet(out_dir):
    """Multi-step episodes through the on-policy trainer: recurrent state, actor-critic targets,
    available-action masks (the target game)."""
    r = xmarl.run("commnet", "torch", "target", out_dir=out_dir, progress=False,
                  overrides={"env_kwargs": {"n_agents": 3, "action_masks": True, "n_targets": 4},
                             "commnet.recurrent": True, "commnet.actor_critic": True, "commnet.hidden_size": 16,
                             "commnet.batch_episodes": 8, "train.num_envs": 8, "train.steps": 400,
                             "train.eval_interval": 400, "train.tensorboard": False})
    assert r.final_metrics["updates"] >= 9 and np.isfinite(r.final_metrics["eval_return"])


def test_mindspore_update_in_chunks_equals_one_update():
    """Batches above ``max_rows`` agent rows are split into chunks of episodes (MindSpore keeps
    every intermediate of a graph alive): the summed chunk gradients give the same update."""
    require("mindspore")
    for name in ("commnet-range-mask-per-agent-ac",):  # every kind of batch entry, comm_mask included
        case = next(c for c in cref.parity_cases() if c.name == name)
        whole, parts = (registry.get("learner", "commnet", "mindspore")(case.spec, case.config, case.weights)
                        for _ in range(2))
        parts.max_rows = 40  # 4 agents x 5 steps per episode: 2 episodes per chunk, 3 chunks
        for batch in case.batches[:2]:
            a, b = whole.update(batch), parts.update(batch)
            assert a.keys() == b.keys() and all(np.isclose(a[k], b[k], rtol=1e-5, atol=1e-6) for k in a), (a, b)
        wa, wb = whole.get_weights(), parts.get_weights()
        assert all(_close(wb[k], wa[k]) for k in wa)
        assert np.abs(wa["commnet/policy/kernel"] - case.weights["commnet/policy/kernel"]).max() > 1e-4


# -- policy_output_gain: the small-gain policy head ------------------------------------------------------------
def _gain_spec(name: str) -> AgentSpec:
    spec = parity_spec("discrete", n_agents=4)
    if name == "embedding":
        return AgentSpec(spec.agents, (1,) * 4, "discrete", spec.act_dims, spec.low, spec.high)
    return spec


#: variants of the network (over ``cref.BASE_OPTIONS``) and ``COMMNET.init_weights(_gain_spec(name), cfg,
#: seed=0)`` as computed by the code before ``policy_output_gain`` existed
GAIN_VARIANTS = {
    "plain": ({}, "5fe74375dd15aaeb24ff0bd2a28eb67ec36f047e9e4fea28a415f83b73182b70"),
    "per_agent": ({"share_parameters": False}, "a83478ac44dc0b975356ec6c2b75f30907d6fe14bc9f54fbf8395bcba3f5ecf2"),
    "embedding": ({"encoder": "embedding", "n_ids": 10},
                  "081274a375852d11ae93a80e3d44e54dce4315e02b7aae13ac569fa132336e70"),
    "recurrent": ({"recurrent": True, "actor_critic": True, "skip_connection": True},
                  "840418e99231bef62b00458af3124420d2c320f0d003e284d039c9885a49b349"),
}


def _gain_obs(spec: AgentSpec, cfg, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if cfg.encoder == "embedding":
        return rng.integers(0, cfg.n_ids, (n, spec.n_agents, 1)).astype(np.float32)
    return random_observations(spec, (n,), rng).transpose(1, 0, 2)  # [N, A, od]


def test_policy_output_gain_is_off_by_default_and_validated():
    assert load_config("commnet").commnet.policy_output_gain is None  # today's init: the learning records stay valid
    assert load_config("commnet", overrides={"commnet.policy_output_gain": 0.5}).commnet.policy_output_gain == 0.5
    for bad in (0.0, -1.0, float("inf"), float("nan"), "small"):
        with pytest.raises(ConfigError, match="commnet.policy_output_gain"):
            load_config("commnet", overrides={"commnet.policy_output_gain": bad})


@pytest.mark.parametrize("name", list(GAIN_VARIANTS))
def test_null_policy_output_gain_is_todays_init_bit_for_bit(name):
    over, digest = GAIN_VARIANTS[name]
    spec, cfg = _gain_spec(name), _cfg(**over)
    assert cfg.policy_output_gain is None
    assert weights_digest(COMMNET.init_weights(spec, cfg, 0)) == digest
    absent = types.SimpleNamespace(**{k: v for k, v in cfg if k != "policy_output_gain"})  # no key at all
    assert weights_digest(COMMNET.init_weights(spec, absent, 0)) == digest


@pytest.mark.parametrize("name", list(GAIN_VARIANTS))
@pytest.mark.parametrize("gain", [0.01, 0.5])
def test_policy_output_gain_redraws_only_the_policy_head(name, gain):
    over, _ = GAIN_VARIANTS[name]
    spec = _gain_spec(name)
    off = COMMNET.init_weights(spec, _cfg(**over), 0)
    cfg = _cfg(**over, policy_output_gain=gain)
    w = COMMNET.init_weights(spec, cfg, 0)
    assert w.keys() == off.keys() and all(w[k].dtype == off[k].dtype and w[k].shape == off[k].shape for k in w)
    changed = sorted(k for k in w if not np.array_equal(w[k], off[k]))
    assert changed == [f"{NET}/policy/bias", f"{NET}/policy/kernel"]  # the value head and the modules: as today
    kernel = w[f"{NET}/policy/kernel"]  # [G, H, n]
    G, H, n = kernel.shape
    assert G == (1 if cfg.share_parameters else spec.n_agents) and H > n
    np.testing.assert_allclose(np.linalg.svd(kernel.astype(np.float64), compute_uv=False), gain, rtol=1e-5)
    assert np.all(w[f"{NET}/policy/bias"] == 0)
    if G > 1:
        assert not np.allclose(kernel[0], kernel[1])
    assert weights_digest(COMMNET.init_weights(spec, cfg, 0)) == weights_digest(w)  # a function of the seed
    assert not np.array_equal(COMMNET.init_weights(spec, cfg, 1)[f"{NET}/policy/kernel"], kernel)


@pytest.mark.parametrize("name", list(GAIN_VARIANTS))
def test_small_policy_output_gain_starts_near_uniform_in_numpy(name):
    over, _ = GAIN_VARIANTS[name]
    spec = _gain_spec(name)
    logits = {}
    for gain in (None, 0.01):
        cfg = _cfg(**over, policy_output_gain=gain)
        out = cref.reference_forward(spec, cfg, COMMNET.init_weights(spec, cfg, 0), _gain_obs(spec, cfg, 256, 3))
        logits[gain] = out["logits"]
    assert np.abs(logits[0.01]).max() < 0.05
    assert np.abs(logits[None]).max() > 0.2  # the default init is far from uniform: the bound above means something
    z = logits[0.01] - logits[0.01].max(-1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    assert np.abs(p - 1.0 / p.shape[-1]).max() < 0.02


def test_small_policy_output_gain_reaches_every_backend(backend):
    spec, cfg = _gain_spec("plain"), _cfg(policy_output_gain=0.01)
    init = COMMNET.init_weights(spec, cfg, 0)
    learner = registry.get("learner", "commnet", backend)(spec, cfg, init)
    got = learner.get_weights()
    assert np.array_equal(got[f"{NET}/policy/kernel"], init[f"{NET}/policy/kernel"])
    assert np.all(got[f"{NET}/policy/bias"] == 0)
    obs = np.ascontiguousarray(_gain_obs(spec, cfg, 64, 4))
    logits, _ = learner.policy.forward_numpy(obs)
    assert np.abs(logits).max() < 0.05
    assert _close(logits, cref.reference_forward(spec, cfg, init, obs)["logits"])


def test_trainer_runs_commnet_from_a_small_gain_head(out_dir):
    require("torch")
    r = xmarl.run("commnet", "torch", "levers", out_dir=out_dir, progress=False,
                  overrides={"commnet.policy_output_gain": 0.01, "env_kwargs.n_pool": 20, "train.num_envs": 32,
                             "commnet.batch_episodes": 32, "commnet.n_ids": 20, "commnet.hidden_size": 16,
                             "train.steps": 320, "train.eval_interval": 320, "train.eval_episodes": 50,
                             "train.tensorboard": False})
    assert r.final_metrics["updates"] == 10 and np.isfinite(r.final_metrics["eval_return"])
    assert 0.0 <= r.final_metrics["eval_return"] <= 1.0
    assert load_config(config=r.config_path).commnet.policy_output_gain == 0.01  # the run used it
