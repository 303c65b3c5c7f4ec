"""Agents that leave an episode: the PettingZoo adapter keeps their slots with an alive mask, the
levers game with rounds and leaving agents, acting (dead agents act 0), the buffers' masks, the
trainer's path for every method, and CommNet learning nothing from a dead slot."""

from __future__ import annotations

import numpy as np
import pytest

import xmarl
from tests.conftest import require
from xmarl import registry
from xmarl.buffers import EpisodeBuffer, ReplayBuffer
from xmarl.compare.reference import commnet as cref
from xmarl.compare.reference.data import method_config, parity_spec, synthetic_episodes
from xmarl.core.commnet import COMMNET
from xmarl.core.interfaces import mask_actions
from xmarl.envs import make_env
from xmarl.envs.levers import Levers
from xmarl.errors import EnvError

LEAVE = {"n_agents": 3, "n_targets": 3, "episode_len": 5, "leave_at": [2, 0, 4]}


def test_pettingzoo_adapter_keeps_the_slots_of_agents_that_leave():
    """agent_0 terminates at step 2 and agent_2 at step 4 (target's leave_at): from then on their
    slots observe zeros, get no reward and no action (the game raises on an action for an agent
    that is gone), and alive/final_alive say so; the episode restarts with everyone."""
    env = make_env("target", 2, **LEAVE)
    obs = env.reset(seed=0)
    assert env.alive() is None and (obs.sum(-1) == 1).all()
    # after step t: who acts next, who would act on final_obs, who terminated, who was gone before
    alive = {1: None, 2: [0, 1, 1], 3: [0, 1, 1], 4: [0, 1, 0], 5: [1, 1, 1]}
    final_alive = {1: None, 2: [0, 1, 1], 3: [0, 1, 1], 4: [0, 1, 0], 5: [0, 1, 0]}
    terminated = {2: [1, 0, 0], 4: [0, 0, 1]}
    gone = {3: [1, 0, 0], 4: [1, 0, 0], 5: [1, 0, 1]}
    for t in range(1, 6):
        obs, final, rew, term, done = env.step(np.full((2, 3), 1, np.int64))
        assert done.all() == (t == 5) and done.any() == (t == 5)
        for got, want in ((env.alive(), alive[t]), (env.final_alive(), final_alive[t])):
            if want is None:
                assert got is None
            else:
                np.testing.assert_array_equal(got, [want] * 2)
        np.testing.assert_array_equal(term, [terminated.get(t, [0, 0, 0])] * 2)  # an agent terminates as it leaves
        out = np.array(gone.get(t, [0, 0, 0]), bool)
        assert (final[:, out] == 0).all() and (rew[:, out] == 0).all()  # gone: zero observation, no reward
        assert (final[:, ~out].sum(-1) == 1).all()  # in (or leaving now): its one-hot observation
        if env.alive() is not None:  # what the agents act on next: zeros for those gone, the leaver too
            assert (obs[env.alive() == 0] == 0).all() and (obs[env.alive() == 1].sum(-1) == 1).all()
    assert (obs.sum(-1) == 1).all()  # restarted with everyone


def test_an_agent_outside_possible_agents_is_a_one_line_error():
    class Rogue:
        possible_agents = ["a"]
        agents = ["a"]

        def observation_space(self, agent):
            from gymnasium import spaces
            return spaces.Box(0, 1, (2,), np.float32)

        def action_space(self, agent):
            from gymnasium import spaces
            return spaces.Discrete(2)

        def reset(self, seed=None, options=None):
            return {"a": np.zeros(2), "b": np.zeros(2)}, {}

    from xmarl.envs.pettingzoo import VectorEnv
    with pytest.raises(EnvError, match="not in possible_agents"):
        VectorEnv(Rogue, 1, name="rogue").reset()


def test_mask_actions_zeroes_the_agents_that_left():
    acts = np.array([[2, 1, 3]])
    np.testing.assert_array_equal(mask_actions(acts, np.array([[1, 0, 1]], np.float32)), [[2, 0, 3]])
    vec = np.ones((1, 3, 2), np.float32)
    np.testing.assert_array_equal(mask_actions(vec, np.array([[0, 1, 1]], np.float32))[0, :, 0], [0, 1, 1])
    assert mask_actions(acts, None) is acts


def test_levers_rounds_and_leaving():
    """Multi-round levers: the same agents pull each round, agents leave between rounds (at least
    two stay), the reward counts the agents still in, leavers terminate and observe 0 afterwards."""
    env = Levers(256, n_pool=50, n_agents=5, rounds=3, leave=0.4)
    obs = env.reset(seed=3)
    assert env.alive().tolist() == np.ones((256, 5)).tolist()
    ids = obs[..., 0].copy()
    for t in range(3):
        alive = env.alive()
        acts = np.tile(np.arange(5), (256, 1))  # every agent its own lever: the best reward
        obs, final, rew, term, done = env.step(acts)
        np.testing.assert_allclose(rew, alive)  # 1 for each agent in the game, 0 for those gone
        assert done.all() == (t == 2) and not (done.any() and t < 2)
        if t < 2:
            now = env.alive()
            assert (now <= alive).all() and (now.sum(1) >= 2).all() and (now < alive).any()
            np.testing.assert_array_equal(term, alive - now)  # the leavers terminate
            np.testing.assert_array_equal(obs[..., 0], ids * now)  # same games: same ids, 0 for the gone
            np.testing.assert_array_equal(env.final_alive(), now)
        else:
            np.testing.assert_array_equal(term, alive)
            assert (env.final_alive() == 0).all() and (env.alive() == 1).all()
    same = np.zeros((256, 5), np.int64)  # everyone on lever 0: (1 - 1) / (k - 1) = 0
    env.reset(seed=1)
    assert (env.step(same)[2] == 0).all()
    with pytest.raises(EnvError, match="rounds >= 2"):
        Levers(2, rounds=1, leave=0.5)
    one = Levers(4, n_pool=20, rounds=1)
    assert one.alive() is None and one.final_alive() is None


def test_levers_with_leaving_agents_round_trips_through_a_checkpoint():
    import pickle

    env = Levers(8, n_pool=30, rounds=3, leave=0.5)
    env.reset(seed=0)
    env.step(np.zeros((8, 5), np.int64))
    twin = pickle.loads(pickle.dumps(env))
    a = np.tile(np.arange(5), (8, 1))
    for x, y in zip(env.step(a), twin.step(a)):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(env.alive(), twin.alive())


def test_buffers_keep_the_masks():
    rb = ReplayBuffer(8, 3, 2, 2)
    am, nam = np.array([[1, 0, 1]], np.float32), np.array([[1, 0, 0]], np.float32)
    rb.add(np.ones((1, 3, 2)), np.ones((1, 3, 2)), np.ones((1, 3)), np.ones((1, 3, 2)), np.zeros((1, 3)), am, nam)
    rb.add(np.ones((1, 3, 2)), np.ones((1, 3, 2)), np.ones((1, 3)), np.ones((1, 3, 2)), np.zeros((1, 3)))
    b = rb.sample(16, np.random.default_rng(0))
    rows = {tuple(x) for x in b["agent_mask"].T.tolist()}
    assert rows == {(1.0, 0.0, 1.0), (1.0, 1.0, 1.0)}  # the second add defaults to everyone in
    assert {tuple(x) for x in b["next_agent_mask"].T.tolist()} == {(1.0, 0.0, 0.0), (1.0, 1.0, 1.0)}
    old = {k: v for k, v in rb.state_dict().items() if "mask" not in k}  # a checkpoint from before masks
    fresh = ReplayBuffer(8, 3, 2, 2)
    fresh.load_state_dict(old)
    assert (fresh.agent_mask[:2] == 1).all() and (fresh.next_agent_mask[:2] == 1).all()

    eb = EpisodeBuffer(2, 3, 2, 2)
    for t in range(3):
        alive = np.array([[1, 1, 1], [1, 1 if t < 1 else 0, 1]], np.float32)
        eb.add(np.ones((2, 3, 2)), np.zeros((2, 3), np.int64), np.ones((2, 3, 2)), np.ones((2, 3)), np.zeros(2),
               alive)
    eb.finish(np.array([True, True]), np.ones((2, 3, 2)), np.zeros((2, 3), np.int64), np.ones((2, 3, 2)),
              np.array([[1, 1, 1], [1, 0, 0]], np.float32))
    batch = eb.take()
    assert batch["agent_mask"].shape == (2, 4, 3)
    np.testing.assert_array_equal(batch["agent_mask"][1, :, 1], [1, 0, 0, 0])
    np.testing.assert_array_equal(batch["agent_mask"][1, 3], [1, 0, 0])


@pytest.mark.parametrize("method", ["maddpg", "coma", "commnet"])
def test_every_method_trains_where_agents_leave_and_acts_zero_for_them(method, out_dir, monkeypatch):
    """The target game with agents leaving at known steps: every method trains through it; what
    the buffers receive has the env's masks and action 0 for every agent that is gone."""
    require("torch")
    seen: list[tuple[np.ndarray, np.ndarray]] = []
    target = ReplayBuffer if method == "maddpg" else EpisodeBuffer
    original = target.add

    def spy(self, *args, **kwargs):
        acts, mask = args[1], args[5]  # (obs, actions, ..., agent_mask) in both buffers
        seen.append((np.array(acts), None if mask is None else np.array(mask)))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(target, "add", spy)
    ov = {"train.steps": 400, "train.eval_interval": 200, "train.num_envs": 4, "train.tensorboard": False,
          "train.progress": False, "env_kwargs": {**LEAVE}}
    if method == "maddpg":
        ov.update({"maddpg.warmup_steps": 40, "maddpg.batch_size": 32, "maddpg.update_every": 20})
    else:
        ov[f"{method}.batch_episodes"] = 4
    res = xmarl.run(method=method, backend="torch", env="target", out_dir=out_dir, overrides=ov)
    assert np.isfinite(res.final_metrics["eval_return"]) and res.final_metrics["updates"] > 0
    dead = [(a, m) for a, m in seen if m is not None and (m == 0).any()]
    assert dead, "the env's masks never reached the buffer"
    for acts, mask in dead:
        gone = mask == 0
        assert (acts[gone] == 0).all()  # one-hot rows for MADDPG, indices for the others


@pytest.mark.parametrize("backend", ["torch", "tensorflow", "mindspore"])
def test_commnet_learns_nothing_from_a_dead_slot(backend):
    """Per-agent weights, agent 2 out of every episode from step 0: every gradient of its slice of
    the network is exactly zero, and changing its observations changes no loss."""
    require(backend)
    spec = parity_spec("discrete", n_agents=4)
    cfg = method_config("commnet", {**cref.BASE_OPTIONS, "share_parameters": False, "skip_connection": True,
                                    "actor_critic": True, "value_norm": True, "entropy_coef": 0.01})
    learner = registry.get("learner", "commnet", backend)(spec, cfg, COMMNET.init_weights(spec, cfg, 0))
    rng = np.random.default_rng(5)
    ep = synthetic_episodes(spec, 5, 4, rng)
    ep["agent_mask"] = np.ones(ep["actions"].shape, np.float32)
    ep["agent_mask"][..., 2] = 0.0
    ep["obs"][..., 2, :] = 0.0
    ep["actions"][..., 2] = 0
    ep["rew"][..., 2] = 0.0
    batch = COMMNET.prepare_batch(spec, cfg, ep, np.random.default_rng(0), 0)
    grads = learner.gradients(batch)
    weights = [k for k in grads if not k.startswith("loss/")]
    assert all(grads[k][2].any() == 0 for k in weights)  # agent 2's slice: exactly zero
    assert all(np.abs(grads[k][[0, 1, 3]]).max() > 0 for k in weights if "comm_0/comm" not in k)
    changed = {**ep, "obs": ep["obs"].copy()}
    changed["obs"][..., 2, :] = rng.standard_normal(changed["obs"][..., 2, :].shape)
    other = learner.gradients(COMMNET.prepare_batch(spec, cfg, changed, np.random.default_rng(0), 0))
    for k in grads:
        np.testing.assert_array_equal(grads[k], other[k])


def test_evaluation_reports_the_envs_success_measure(out_dir):
    """Levers with leaving agents reports its team reward per round (``eval_team_reward``) beside
    the per-agent return, which counts the agents that left as zeros; a policy whose agents
    all pull lever 0 scores exactly 0 on it."""
    require("torch")
    ov = {"train.steps": 2048, "train.eval_interval": 1024, "train.num_envs": 256, "train.eval_episodes": 200,
          "train.tensorboard": False, "commnet.batch_episodes": 256,
          "env_kwargs": {"n_pool": 50, "n_agents": 5, "rounds": 2, "leave": 0.5}}
    res = xmarl.run("commnet", "torch", "levers", out_dir=out_dir, progress=False, overrides=ov)
    m = res.final_metrics
    assert 0.0 <= m["eval_team_reward"] <= 1.0 and m["eval_length"] == 2.0
    assert m["eval_return"] < 2 * m["eval_team_reward"] + 1e-9  # agents that left get no reward

    from xmarl.training.trainer import episode_stats

    class Lever0:
        def act(self, obs, state=None, explore=False, **_):
            return np.zeros(obs.shape[:2], np.int64), state

    env = Levers(100, n_pool=50, rounds=2, leave=0.5)
    returns, lengths, measures = episode_stats(Lever0(), env, seed=0)
    assert (measures["team_reward"] == 0).all() and (lengths == 2).all()

    class OwnLever(Lever0):
        def act(self, obs, state=None, explore=False, **_):
            return np.tile(np.arange(5), (obs.shape[0], 1)), state

    np.testing.assert_allclose(episode_stats(OwnLever(), env, seed=0)[2]["team_reward"], 1.0, rtol=1e-6)


def _collected(method: str, backend: str, tmp_path):
    """A trainer on the target game whose agent_0 leaves at step 2 and agent_2 at step 4, its
    buffer filled by its own collection loop, and the batch its method prepares from it."""
    from xmarl.config import load_config
    from xmarl.training.trainer import Stopwatch, Trainer

    ov = {"train.num_envs": 8, "train.tensorboard": False, "out_dir": str(tmp_path), "env_kwargs": {**LEAVE},
          f"{method}.share_parameters": False}
    if method == "maddpg":
        ov.update({"maddpg.warmup_steps": 10**9, "maddpg.batch_size": 64})  # collect only, no update
    else:
        ov[f"{method}.batch_episodes"] = 10**9
    cfg = load_config(method, "target", backend, overrides=ov)
    trainer = Trainer(cfg)
    clock = Stopwatch()
    for _ in range(15):  # three 5-step episodes per env
        trainer._collect(clock)
    rng = np.random.default_rng(0)
    if method == "maddpg":
        data = trainer.buffer.sample(64, rng)
    else:
        data = trainer.buffer.take()
    return trainer, data


@pytest.mark.parametrize("backend", ["torch", "tensorflow", "mindspore"])
@pytest.mark.parametrize("method", ["maddpg", "coma", "commnet"])
def test_nothing_is_learned_from_a_gone_agents_slot_of_a_real_env(method, backend, tmp_path):
    """From the buffers a real env with agents leaving at known steps fills: whatever a gone
    agent's slot holds at the steps it is gone (COMA and CommNet: its recorded actions, CommNet its
    observations too; MADDPG: its rewards, while its observation and action rows are the zeros
    every critic sees), every gradient is exactly the same; and MADDPG transitions where agent_0
    is gone give its networks exactly zero gradient."""
    require(backend)
    trainer, data = _collected(method, backend, tmp_path)
    core, spec, mcfg = trainer.core, trainer.env.spec, trainer.mcfg
    rng = np.random.default_rng(1)
    noisy = {k: np.array(v) for k, v in data.items()}
    if method == "maddpg":
        gone = data["agent_mask"] == 0  # [A, B]
        assert gone[0].any() and gone[2].any() and not gone[1].any()
        # the critics see every agent, a gone one as zeros: the replay holds zero rows for it
        assert (data["obs"][gone] == 0).all() and (data["act"][gone] == 0).all()
        noisy["rew"][gone] = rng.standard_normal(int(gone.sum())).astype(np.float32)  # nothing it "gets" counts
    else:
        gone = data["agent_mask"] == 0  # [B, T+1, A]
        real = np.concatenate([data["mask"], np.ones_like(data["mask"][:, :1])], 1)[..., None] > 0
        assert (gone & real)[..., 0].any() and not (gone & real)[..., 1].any()
        noisy["actions"][gone] = rng.integers(0, spec.act_dim, int(gone.sum()))
        if method == "commnet":
            noisy["obs"][gone] = rng.standard_normal((int(gone.sum()), spec.obs_dim)).astype(np.float32)
    prep = np.random.default_rng(2)
    batch = core.prepare_batch(spec, mcfg, data, prep, 0)
    again = core.prepare_batch(spec, mcfg, noisy, np.random.default_rng(2), 0)
    a, b = trainer.learner.gradients(batch), trainer.learner.gradients(again)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    if method == "maddpg":
        only = {k: v[:, data["agent_mask"][0] == 0] if v.ndim >= 2 and v.shape[0] == spec.n_agents else v
                for k, v in data.items()}
        grads = trainer.learner.gradients(core.prepare_batch(spec, mcfg, only, np.random.default_rng(3), 0))
        for k, g in grads.items():
            if k.split("/")[0] in ("actor", "critic"):
                assert np.all(g[0] == 0), k
