"""BiCNet in each backend: the networks and losses equal the float64 numpy reference of the
bidirectional recurrence along the agent axis, the agent order means what the core says it means
(reversing the agents swaps the two directions, other permutations are not symmetries, each
direction only sees the agents before it), dead agents neither pass nor receive and send no
gradient, the optimiser clips one norm per network, the trainer's off-policy loop runs it
unchanged where agents leave, and the target game is learned. Cross-backend parity (forward,
losses, gradients, weights after 3 updates) runs in tests/test_parity.py on the cases of
:mod:`xmarl.compare.reference.bicnet`."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import xmarl
from tests.conftest import require
from xmarl import registry
from xmarl.buffers import ReplayBuffer
from xmarl.compare.parity import cases, parity_methods
from xmarl.compare.reference.bicnet import (
    BASE_OPTIONS,
    parity_batches,
    reference_losses,
    reference_network,
    reverse_weights,
)
from xmarl.compare.reference.data import method_config, parity_spec
from xmarl.compare.reference.optim import adam_step, clip_by_group_norm
from xmarl.core.bicnet import BICNET as core
from xmarl.core.spaces import AgentSpec

MODULE_TYPES = {"torch": ("torch.nn", "Module"), "tensorflow": ("tensorflow", "Module"),
                "mindspore": ("mindspore.nn", "Cell")}
LEAVE = {"n_agents": 3, "n_targets": 3, "episode_len": 5, "leave_at": [2, 0, 4]}


def _cfg(**over):
    return method_config("bicnet", {**BASE_OPTIONS, **over})


def _learner(backend, spec, cfg, weights):
    return registry.get("learner", "bicnet", backend)(spec, cfg, {k: v.copy() for k, v in weights.items()})


def _uniform_spec(n_agents: int, kind: str = "discrete") -> AgentSpec:
    """Every agent alike (6 observation entries, 4 action entries): a sub-team or a reordered team
    has the same padded sizes, so shared weights fit it."""
    base = parity_spec(kind, n_agents)
    ad = 4
    low = np.where(base.low[:, :1] != 0, -1.0, 0.0).repeat(ad, 1).astype(np.float32)
    return AgentSpec(base.agents, (6,) * n_agents, kind, (ad,) * n_agents, low, -low)


def _env_major(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.swapaxes(x, 0, 1))


def _reversed(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.ascontiguousarray(v[::-1]) for k, v in batch.items()}


# -- the method and its registration --------------------------------------------------------------
def test_bicnet_is_registered_on_the_off_policy_loop_with_parity_cases():
    spec = registry.get("method", "bicnet")
    assert spec.trainer == "off_policy" and spec.core is core and "1703.10069" in spec.paper
    assert set(spec.action_kinds) == {"discrete", "continuous", "hybrid"}
    assert "bicnet" in parity_methods()
    names = [c.name for c in cases("bicnet")]
    assert names == ["bicnet-discrete-shared", "bicnet-continuous-per_agent", "bicnet-hybrid-shared"]


def test_layout_puts_the_recurrence_first_and_init_is_seeded():
    spec, cfg = parity_spec("continuous", 4), _cfg(share_parameters=False)
    shapes = core.param_shapes(spec, cfg)
    H = cfg.hidden_size
    for net in ("actor", "critic", "target_actor", "target_critic"):
        names = [k for k in shapes if k.startswith(f"{net}/")]
        assert names[:8] == [f"{net}/{d}/gru/{g}" for d in ("forward", "backward")
                             for g in ("kernel", "recurrent_kernel", "bias", "recurrent_bias")]
        assert all(shapes[n][0] == 1 for n in names[:8])  # one cell per direction
        assert shapes[f"{net}/torso/dense_0/kernel"][0] == 4 and shapes[f"{net}/head/kernel"][1] == 2 * H
    assert shapes["critic/torso/dense_0/kernel"] == (4, spec.obs_dim + spec.act_dim, H)
    w1, w2, w3 = core.init_weights(spec, cfg, 5), core.init_weights(spec, cfg, 5), core.init_weights(spec, cfg, 6)
    assert list(w1) == list(shapes) and all(w1[k].shape == shapes[k] for k in w1)
    assert all(np.array_equal(w1[k], w2[k]) for k in w1) and not np.array_equal(w1["actor/head/kernel"],
                                                                               w3["actor/head/kernel"])
    np.testing.assert_array_equal(w1["target_critic/forward/gru/kernel"], w1["critic/forward/gru/kernel"])
    assert np.abs(w1["actor/forward/gru/kernel"]).max() <= 1 / np.sqrt(H)


def test_parity_cases_hold_dead_agents_and_the_reversal_probe():
    for case in cases("bicnet"):
        A = case.spec.n_agents
        assert A == 4
        for k, b in enumerate(case.batches):
            am, nam = b["agent_mask"], b["next_agent_mask"]
            dead = am == 0
            assert dead.any() and not dead.all() and ((am == 1) & (nam == 0)).any(), case.name
            assert np.all(b["obs"][dead] == 0) and np.all(b["act"][dead] == 0), case.name
            assert dead[A - 1].all() == (k == 1), case.name
            # some transitions have a dead agent between two live ones: the recurrence must skip it
            assert (dead[1:-1] & ~dead[:-2] & ~dead[2:]).any(), case.name


# -- the numpy reference itself ---------------------------------------------------------------------
def test_reference_reversal_and_order():
    """In float64 numpy: reversing the agents with reverse_weights reverses every output; swapping
    two agents is not a symmetry; the forward features of agent i see only agents 1..i and the
    backward ones only i..N."""
    for case in cases("bicnet"):
        w, b = case.weights, case.batches[0]
        x, am = b["obs"], np.ones_like(b["agent_mask"])
        out = reference_network(w, "actor", x, am)
        rev = reference_network(reverse_weights(w), "actor", x[::-1], am[::-1])
        np.testing.assert_allclose(rev["out"][::-1], out["out"], atol=1e-12)
        H = out["features"].shape[-1] // 2
        np.testing.assert_allclose(rev["features"][::-1], np.concatenate(
            [out["features"][..., H:], out["features"][..., :H]], -1), atol=1e-12)
        if case.config.share_parameters:
            swap = [1, 0, 2, 3]
            assert np.abs(reference_network(w, "actor", x[swap], am)["out"][swap] - out["out"]).max() > 1e-3
        later = x.copy()
        later[-1] += 1.0
        moved = reference_network(w, "actor", later, am)["features"]
        np.testing.assert_allclose(moved[:-1, :, :H], out["features"][:-1, :, :H], atol=1e-12)
        assert np.abs(moved[0, :, H:] - out["features"][0, :, H:]).max() > 1e-6


# -- every backend against the reference ---------------------------------------------------------
def test_learner_is_the_backend_asked_for(backend):
    case = cases("bicnet")[0]
    learner = _learner(backend, case.spec, case.config, case.weights)
    assert learner.backend == backend and type(learner).__module__ == f"xmarl.backends.{backend}.learners.bicnet"
    mod, cls = MODULE_TYPES[backend]
    assert isinstance(learner.policy, getattr(importlib.import_module(mod), cls))
    assert type(learner.actor).__name__ == "BiCNetActor" and type(learner.critic).__name__ == "BiCNetCritic"
    got = learner.get_weights()
    assert set(got) == set(core.param_shapes(case.spec, case.config))
    assert all(np.array_equal(got[k], v) for k, v in case.weights.items())


def test_forward_losses_and_diagnostics_match_the_reference(backend):
    """On every parity case and batch (dead agents, one agent gone throughout): the acting
    forward pass with the alive mask, the actor's features and raw outputs, the critic's values,
    the targets and both losses equal the float64 reference."""
    for case in cases("bicnet"):
        learner = _learner(backend, case.spec, case.config, case.weights)
        for b in case.batches:
            ref = reference_losses(case.spec, case.config, case.weights, b)
            got = learner.gradients(b)
            diag = learner.diagnostics(b)
            for name in ("critic", "actor"):
                np.testing.assert_allclose(got[f"loss/{name}"], ref[name], rtol=1e-5, atol=1e-6,
                                           err_msg=f"{case.name} {name}")
            for name in ("features", "raw", "q", "y"):
                np.testing.assert_allclose(diag[name], ref[name], rtol=1e-5, atol=2e-6,
                                           err_msg=f"{case.name} {name}")
            out, state = learner.policy.forward_numpy(_env_major(b["obs"]), None, _env_major(b["agent_mask"]))
            assert state is None
            np.testing.assert_allclose(out, _env_major(ref["raw"]), rtol=1e-5, atol=2e-6, err_msg=case.name)


def test_reversing_the_agents_swaps_the_directions(backend):
    """In the backend: for the agents in reverse order under reverse_weights, actor outputs and
    critic values come out reversed, the losses are the same and every gradient is the reversed
    gradient (a homogeneous team, so the action bounds do not depend on the slot)."""
    for share in (True, False):
        spec, cfg = _uniform_spec(4, "continuous"), _cfg(share_parameters=share)
        w = core.init_weights(spec, cfg, 2)
        b = parity_batches(spec, cfg, 1, 3)[0]
        a, r = _learner(backend, spec, cfg, w), _learner(backend, spec, cfg, reverse_weights(w))
        da, dr = a.diagnostics(b), r.diagnostics(_reversed(b))
        for name in ("raw", "q", "y"):
            np.testing.assert_allclose(dr[name][::-1], da[name], rtol=1e-5, atol=1e-6, err_msg=name)
        ga, gr = a.gradients(b), r.gradients(_reversed(b))
        for name in ("loss/critic", "loss/actor"):
            np.testing.assert_allclose(gr[name], ga[name], rtol=1e-5, atol=1e-6, err_msg=name)
        expect = reverse_weights({k: v for k, v in ga.items() if not k.startswith("loss/")})
        for name, g in expect.items():
            np.testing.assert_allclose(gr[name], g, rtol=1e-4, atol=1e-6, err_msg=f"share={share} {name}")
        obs, am = _env_major(b["obs"]), _env_major(b["agent_mask"])
        fwd = a.policy.forward_numpy(obs, None, am)[0]
        np.testing.assert_allclose(r.policy.forward_numpy(obs[:, ::-1].copy(), None, am[:, ::-1].copy())[0][:, ::-1],
                                   fwd, rtol=1e-5, atol=1e-6)
        swapped = a.policy.forward_numpy(obs[:, [1, 0, 2, 3]].copy(), None, am[:, [1, 0, 2, 3]].copy())[0]
        assert np.abs(swapped[:, [1, 0, 2, 3]] - fwd).max() > 1e-3  # agent order is not a symmetry


def test_a_dead_agent_neither_passes_nor_receives(backend):
    """With shared weights, a team of 4 whose agent 1 is dead (its observation noise, not zeros)
    gives the other agents exactly the outputs of the team of 3 without it, and the dead agent's
    features are zeros (its output is the head's bias)."""
    cfg = _cfg()
    spec4, spec3 = _uniform_spec(4), _uniform_spec(3)
    w = core.init_weights(spec4, cfg, 4)
    rng = np.random.default_rng(0)
    obs = rng.standard_normal((5, 4, 6)).astype(np.float32)
    alive = np.ones((5, 4), np.float32)
    alive[:, 1] = 0.0
    four, three = _learner(backend, spec4, cfg, w), _learner(backend, spec3, cfg, w)
    out4 = four.policy.forward_numpy(obs, None, alive)[0]
    out3 = three.policy.forward_numpy(obs[:, [0, 2, 3]].copy())[0]
    np.testing.assert_allclose(out4[:, [0, 2, 3]], out3, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out4[:, 1], np.broadcast_to(w["actor/head/bias"][0], (5, 4)), atol=1e-7)
    assert np.abs(four.policy.forward_numpy(obs)[0][:, [0, 2, 3]] - out3).max() > 1e-3  # alive, it is heard
    actions, _ = four.policy.act(obs, agent_mask=alive)
    assert actions.shape == (5, 4) and (actions[:, 1] == 0).all()
    np.testing.assert_array_equal(actions[:, [0, 2, 3]], out4[:, [0, 2, 3]].argmax(-1))


def test_a_dead_agent_sends_no_gradient_from_its_slot(backend):
    """Hybrid actions (categorical and bounded entries), agent 1 gone in every transition, with
    noise in its observation, action, reward and next observation rows: every gradient (shared
    recurrence included) is the one with other noise there, its per-agent encoder and head
    slices get exactly zero gradient, the live agents' slices do learn, and one update leaves its
    slices where they were."""
    spec, cfg = parity_spec("hybrid", 4), _cfg(share_parameters=False)
    w0 = core.init_weights(spec, cfg, 3)
    learner = _learner(backend, spec, cfg, w0)

    def batch(noise_seed: int) -> dict[str, np.ndarray]:
        b = {k: v.copy() for k, v in parity_batches(spec, cfg, 1, 7)[0].items()}
        b["agent_mask"][1], b["next_agent_mask"][1] = 0.0, 0.0
        rng = np.random.default_rng(noise_seed)
        for key in ("obs", "act", "rew", "next_obs"):
            b[key][1] = rng.standard_normal(b[key][1].shape).astype(np.float32)
        return b

    g1, g2 = learner.gradients(batch(1)), learner.gradients(batch(2))
    for name in g1:
        np.testing.assert_allclose(g1[name], g2[name], rtol=1e-6, atol=1e-8, err_msg=name)
    sliced = [n for n in w0 if n.split("/")[0] in ("actor", "critic") and "/gru/" not in n]
    assert len(sliced) == 8
    for name in sliced:
        assert np.all(g1[name][1] == 0), f"{name}: dead agent's slice has gradient {np.abs(g1[name][1]).max()}"
        for j in (0, 2, 3):
            assert np.abs(g1[name][j]).max() > 0, f"{name}: live agent {j} has no gradient"
    learner.update(batch(1))
    w1 = learner.get_weights()
    for name in sliced:
        np.testing.assert_array_equal(w1[name][1], w0[name][1], err_msg=name)


def test_one_update_is_adam_on_one_clipped_norm_per_network(backend):
    """With per-agent encoders and heads, the critic's weights after one update equal numpy Adam
    applied to the backend's own gradients clipped to one global norm over the whole network
    (not one norm per agent slice); tau = 1 makes the target critic the new critic."""
    spec = parity_spec("discrete", 4)
    cfg = _cfg(share_parameters=False, grad_clip=0.05, tau=1.0)
    w0 = core.init_weights(spec, cfg, 1)
    learner = _learner(backend, spec, cfg, w0)
    b = parity_batches(spec, cfg, 1, 2)[0]
    grads = learner.gradients(b)
    names = [k for k in w0 if k.startswith("critic/")]
    flat, norms = clip_by_group_norm([grads[k].reshape(1, -1) for k in names], 0.05)
    assert norms.shape == (1,) and norms[0] > 0.05  # clipping is exercised
    learner.update(b)
    w1 = learner.get_weights()
    for name, g in zip(names, flat):
        g = g.reshape(w0[name].shape)
        expect, _, _ = adam_step(w0[name], g, 0 * g, 0 * g, 1, cfg.lr_critic, cfg.adam.betas, cfg.adam.eps)
        np.testing.assert_allclose(w1[name], expect, rtol=1e-5, atol=1e-6, err_msg=name)
        np.testing.assert_array_equal(w1["target_" + name], w1[name])


# -- the trainer's loop --------------------------------------------------------------------------
def test_the_off_policy_loop_trains_it_where_agents_leave(out_dir, monkeypatch):
    """The target game with agents leaving at known steps: the unchanged off-policy loop
    collects, stores the env's masks with zero action rows for the gone agents, and updates."""
    require("torch")
    seen = []
    original = ReplayBuffer.add

    def spy(self, *args, **kwargs):
        seen.append((np.array(args[1]), None if args[5] is None else np.array(args[5])))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ReplayBuffer, "add", spy)
    res = xmarl.run("bicnet", "torch", "target", out_dir=out_dir, progress=False, overrides={
        "train.steps": 400, "train.eval_interval": 200, "train.num_envs": 4, "train.tensorboard": False,
        "env_kwargs": {**LEAVE}, "bicnet.warmup_steps": 40, "bicnet.batch_size": 32, "bicnet.update_every": 20,
        "bicnet.hidden_size": 16})
    assert np.isfinite(res.final_metrics["eval_return"]) and res.final_metrics["updates"] > 0
    dead = [(a, m) for a, m in seen if m is not None and (m == 0).any()]
    assert dead
    for acts, mask in dead:
        assert (acts[mask == 0] == 0).all()


@pytest.mark.parametrize("continuous", [False, True])
def test_learns_target_game(backend, out_dir, continuous):
    """A few thousand steps of the built-in target game (MADDPG's test settings): discrete,
    reward 1 per step when both agents hit their target, 5 steps, random play about 5/3;
    continuous, minus the mean squared distance, random about -0.75."""
    ov = {"train.steps": 3000, "train.num_envs": 4, "train.eval_interval": 1000, "train.eval_episodes": 10,
          "train.log_interval": 1000, "train.checkpoint_interval": 3000, "train.tensorboard": False,
          "bicnet.batch_size": 128, "bicnet.warmup_steps": 200, "bicnet.update_every": 10,
          "bicnet.lr_actor": 0.001, "bicnet.lr_critic": 0.001, "env_kwargs": {"continuous": continuous}}
    if continuous:
        ov.update({"train.steps": 4000, "bicnet.exploration_noise": 0.3})
    r = xmarl.run("bicnet", backend, "target", out_dir=out_dir, progress=False, seed=1, overrides=ov)
    first, last = r.curve[0][1], r.curve[-1][1]
    if continuous:
        assert last > -0.1, r.curve
    else:
        assert last >= 4.5, r.curve
    assert last > first or last >= 4.9
