"""``mpe-fast/simple_spread_v3`` (FastSpread): transition equivalence with mpe2, auto-reset, training."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

from xmarl import registry
from xmarl.envs import make_env
from xmarl.envs.mpe_fast import NAME, FastSpread, mpe2_world_state
from xmarl.errors import EnvError, RegistryError

simple_spread_v3 = pytest.importorskip("mpe2.simple_spread_v3")

TOL = 1e-6


def _mpe2_envs(
    n_envs: int, N: int, local_ratio: float, continuous: bool, rng: np.random.Generator, crowded: bool
) -> list:
    envs = []
    for _ in range(n_envs):
        env = simple_spread_v3.parallel_env(N=N, local_ratio=local_ratio, max_cycles=25, continuous_actions=continuous)
        env.reset(seed=int(rng.integers(2**31)))
        if crowded:  # agents start on top of each other: strong contact forces from the first step
            for agent in env.unwrapped.world.agents:
                agent.state.p_pos = rng.uniform(-0.12, 0.12, 2)
        envs.append(env)
    return envs


def _random_actions(rng: np.random.Generator, shape: tuple[int, int], continuous: bool) -> np.ndarray:
    if not continuous:
        return rng.integers(0, 5, shape)
    return rng.uniform(-0.2, 1.2, (*shape, 5)).astype(np.float32)  # some out of [0, 1]: mpe2 clips


def _stack(d: dict, agents: list[str]) -> np.ndarray:
    return np.stack([np.asarray(d[a], np.float64) for a in agents])


@pytest.mark.parametrize("N,batches,local_ratio", [(3, 5, 0.5), (4, 2, 0.2), (5, 2, 0.9)])
@pytest.mark.parametrize("continuous", [False, True])
def test_transitions_equal_mpe2(N, batches, local_ratio, continuous):
    """Copy mpe2's reset state into FastSpread, step both with the same actions: every
    observation, reward, termination, truncation and the world state agree at every step."""
    rng = np.random.default_rng(1000 * N + continuous)
    B = 10  # episodes stepped side by side in one FastSpread (catches mixing between copies)
    worst = {"obs": 0.0, "rew": 0.0, "pos": 0.0, "vel": 0.0}
    contacts = 0
    for batch in range(batches):
        envs = _mpe2_envs(B, N, local_ratio, continuous, rng, crowded=batch % 2 == 1)
        agents = envs[0].possible_agents
        fast = FastSpread(B, N=N, local_ratio=local_ratio, continuous_actions=continuous)
        assert fast.spec.obs_dims == tuple(envs[0].observation_space(a).shape[0] for a in agents)
        obs = fast.set_state_from_mpe2(envs)
        ref = np.stack([_stack({a: e.unwrapped.observe(a) for a in agents}, agents) for e in envs])
        worst["obs"] = max(worst["obs"], np.abs(obs - ref).max())
        for t in range(25):
            actions = _random_actions(rng, (B, N), continuous)
            nxt, final, rew, term, done = fast.step(actions)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # mpe2 warns when it clips an action
                out = [
                    e.step({a: (actions[b, i] if continuous else int(actions[b, i])) for i, a in enumerate(agents)})
                    for b, e in enumerate(envs)
                ]
            ref_obs = np.stack([_stack(o, agents) for o, *_ in out])
            ref_rew = np.stack([_stack(r, agents) for _, r, *_ in out]).astype(np.float32)  # as VectorEnv
            ref_term = np.stack([_stack(te, agents) for _, _, te, _, _ in out])
            ref_trunc = np.stack([_stack(tr, agents) for *_, tr, _ in out])
            worst["obs"] = max(worst["obs"], np.abs(final - ref_obs).max())
            worst["rew"] = max(worst["rew"], np.abs(rew - ref_rew).max())
            np.testing.assert_allclose(final, ref_obs, rtol=0, atol=TOL, err_msg=f"obs, step {t}")
            np.testing.assert_allclose(rew, ref_rew, rtol=0, atol=TOL, err_msg=f"reward, step {t}")
            np.testing.assert_array_equal(term, ref_term)
            np.testing.assert_array_equal(done, ref_trunc.all(axis=1) | ref_term.all(axis=1))
            assert done.all() == (t == 24)
            p_pos, p_vel, steps = mpe2_world_state(envs)
            gap = np.linalg.norm(p_pos[:, :N, None] - p_pos[:, None, :N], axis=-1) + np.eye(N)
            contacts += int((gap < 0.3).sum())  # agent pairs in contact (each counted twice)
            if not done.any():  # past the last step FastSpread has already auto-reset
                state = fast.get_state()
                worst["pos"] = max(worst["pos"], np.abs(state["p_pos"] - p_pos).max())
                worst["vel"] = max(worst["vel"], np.abs(state["p_vel"] - p_vel).max())
                np.testing.assert_allclose(state["p_pos"], p_pos, rtol=0, atol=TOL)
                np.testing.assert_allclose(state["p_vel"], p_vel, rtol=0, atol=TOL)
                np.testing.assert_array_equal(state["steps"], steps)
                np.testing.assert_array_equal(nxt, final)
        for e in envs:
            assert not e.agents  # mpe2 ended the episode where FastSpread did
            e.close()
    assert contacts > 10, "few agent contacts: the contact physics went untested"
    print(f"N={N} continuous={continuous} contacts={contacts} max |diff|: {worst}")


def test_collision_reward_and_contact_push_apart():
    """Two overlapping agents: each pays -local_ratio and is pushed away from the other."""
    fast = FastSpread(1, N=2, local_ratio=0.5)
    p_pos = np.array([[[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [-5.0, 5.0]]])
    fast.set_state(p_pos)
    _, final, rew, _, _ = fast.step(np.zeros((1, 2), int))  # no-op actions: only contact acts
    vel = fast.get_state()["p_vel"][0]
    assert vel[0, 0] < -1.0 and vel[1, 0] > 1.0 and abs(vel[0, 1]) < 1e-12  # apart along x
    np.testing.assert_allclose(vel[0], -vel[1])
    lm, agents = p_pos[0, 2:], p_pos[0, :2]
    global_rew = -np.linalg.norm(lm[:, None] - agents[None], axis=-1).min(axis=1).sum()
    np.testing.assert_allclose(rew[0], 0.5 * global_rew - 0.5, rtol=1e-6)
    # positions had not moved yet (old velocity was zero): obs is [v, p, landmarks - p, other - p, comm]
    np.testing.assert_allclose(final[0, 0, 2:4], [0.0, 0.0])
    np.testing.assert_allclose(final[0, 0, 4:8], [5.0, 5.0, -5.0, 5.0], rtol=1e-6)
    np.testing.assert_allclose(final[0, 0, 8:10], [0.1, 0.0], rtol=1e-6)
    np.testing.assert_array_equal(final[0, :, 10:], 0.0)


def test_action_mapping_moves_agents_the_right_way():
    """Discrete 1..4 = -x, +x, -y, +y with force 5; continuous (a2 - a1, a4 - a3), clipped to [0, 1]."""
    far = np.array([[[-10.0, 0.0], [10.0, 0.0], [0.0, 10.0], [0.0, -10.0]]])
    for action, expect in [(1, [-0.5, 0]), (2, [0.5, 0]), (3, [0, -0.5]), (4, [0, 0.5]), (0, [0, 0])]:
        fast = FastSpread(1, N=2)
        fast.set_state(far)
        fast.step(np.array([[action, 0]]))
        np.testing.assert_allclose(fast.get_state()["p_vel"][0, 0], expect, atol=1e-12)
    fast = FastSpread(1, N=2, continuous_actions=True)
    fast.set_state(far)
    fast.step(np.array([[[0.9, 0.2, 0.7, 2.0, -1.0], [0.0] * 5]], np.float32))
    np.testing.assert_allclose(fast.get_state()["p_vel"][0, 0], [0.25, -0.5], atol=1e-6)
    with pytest.raises(EnvError, match="0..4"):
        FastSpread(1).step(np.array([[0, 5, 0]]))
    with pytest.raises(EnvError, match="shape"):
        FastSpread(2).step(np.zeros((1, 3), int))


def test_auto_reset_and_completed_returns_like_vector_env():
    """Episodes end together after max_cycles, are reset in place, and their returns are recorded."""
    env = make_env(NAME, 4, max_cycles=5)
    assert isinstance(env, FastSpread) and env.num_envs == 4 and env.spec.n_agents == 3
    obs0 = env.reset(seed=7)
    assert obs0.shape == (4, 3, 18) and obs0.dtype == np.float32
    np.testing.assert_array_equal(obs0, make_env(NAME, 4, max_cycles=5).reset(seed=7))  # seeded
    rng = np.random.default_rng(0)
    total = np.zeros((4, 3))
    for t in range(5):
        obs, final, rew, term, done = env.step(env.sample_actions(rng))
        assert rew.dtype == np.float32 and term.dtype == np.float32 and done.dtype == bool
        assert not term.any()  # simple_spread never terminates: it truncates
        total += rew
        if t < 4:
            assert not done.any() and env.completed_returns == [] and np.array_equal(obs, final)
    assert done.all()
    np.testing.assert_allclose(env.completed_returns, total.mean(axis=1), rtol=1e-6)
    assert env.completed_lengths == [5, 5, 5, 5]
    # obs is a fresh episode (zero velocity, new positions); final_obs is the true last one
    assert np.all(obs[:, :, 0:2] == 0) and np.abs(obs[:, :, 2:4]).max() <= 1
    assert not np.allclose(obs, final)
    np.testing.assert_array_equal(env.get_state()["steps"], 0)
    # the second episode's return starts from zero again
    total = np.zeros((4, 3))
    for _ in range(5):
        *_, rew, _, done = env.step(env.sample_actions(rng))
        total += rew
    assert done.all() and len(env.completed_returns) == 8
    np.testing.assert_allclose(env.completed_returns[4:], total.mean(axis=1), rtol=1e-6)
    # a copy that is mid-episode keeps going while another one resets
    p = env.get_state()
    env.set_state(p["p_pos"], p["p_vel"], steps=np.array([4, 0, 0, 0]))
    *_, done = env.step(env.sample_actions(rng))
    np.testing.assert_array_equal(done, [True, False, False, False])
    np.testing.assert_array_equal(env.get_state()["steps"], [0, 1, 1, 1])
    assert len(env.completed_returns) == 9 and env.completed_lengths[-1] == 5


def test_pickle_mid_episode_continues_identically():
    """Checkpoints pickle the env: a restored copy continues with the same transitions and resets."""
    env = FastSpread(3, max_cycles=4, continuous_actions=True)
    env.reset(seed=11)
    rng = np.random.default_rng(1)
    env.step(env.sample_actions(rng))
    env.render(0)  # the renderer (pygame) is not part of the state
    clone = pickle.loads(pickle.dumps(env))
    assert clone._render_env is None and env._render_env is not None
    for _ in range(6):  # crosses an auto-reset, which draws from the pickled RNG
        a = env.sample_actions(rng)
        for x, y in zip(env.step(a), clone.step(a)):
            np.testing.assert_array_equal(x, y)
    assert env.completed_returns == clone.completed_returns and len(env.completed_returns) == 3
    env.close()


def test_reset_distribution_matches_mpe2():
    """Positions uniform in [-1, 1)^2 for agents and landmarks, velocities zero."""
    env = FastSpread(4000)
    env.reset(seed=3)
    s = env.get_state()
    assert np.all(s["p_vel"] == 0) and np.all(np.abs(s["p_pos"]) <= 1)
    for part in (s["p_pos"][:, :3], s["p_pos"][:, 3:]):  # agents, landmarks
        assert abs(part.mean()) < 0.02 and abs(part.var() - 1 / 3) < 0.01  # U(-1, 1): mean 0, var 1/3
    obs = env.reset(seed=4)
    np.testing.assert_allclose(obs[:, :, 2:4], env.get_state()["p_pos"][:, :3], rtol=1e-6)


def test_registration_and_bad_kwargs():
    assert NAME in registry.names("env") and NAME in registry.names("vector_env")
    assert isinstance(make_env(NAME, 2, continuous_actions=True), FastSpread)
    assert make_env(NAME, 2, continuous_actions=True).spec.action_kind == "continuous"
    with pytest.raises(EnvError, match="bad env kwargs"):
        make_env(NAME, 2, not_a_kwarg=1)
    with pytest.raises(RegistryError) as e:
        make_env("mpe-fast/simple_spreed_v3", 1)
    assert NAME in str(e.value)


def test_render_draws_the_state():
    pytest.importorskip("pygame")
    env = FastSpread(2)
    env.reset(seed=0)
    frame = env.render(1)
    env.close()
    assert frame.shape == (700, 700, 3) and frame.min() < 255  # something was drawn


def test_maddpg_trains_on_fast_spread(tmp_path):
    pytest.importorskip("torch")
    import xmarl

    res = xmarl.run(
        "maddpg", "torch", NAME, out_dir=tmp_path, progress=False,
        overrides={"train.steps": 2000, "train.eval_interval": 2000, "maddpg.warmup_steps": 500,
                   "maddpg.batch_size": 64, "train.num_envs": 16, "env_kwargs": {}},
    )
    m = res.final_metrics
    assert m["steps"] >= 2000 and m["updates"] > 0
    # a per-agent return over 25 steps of simple_spread: finite, negative, not absurd
    assert np.isfinite(m["eval_return"]) and -200 < m["eval_return"] < 0
    assert np.isfinite(m["train_return"])
