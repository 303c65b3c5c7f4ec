"""``mpe-fast`` tasks (FastSpread, FastSpeakerListener, FastReference, and the mixed
cooperative-competitive FastTag, FastAdversary, FastPush): transition equivalence with mpe2,
auto-reset, snapshots, training."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

from tests.conftest import require, require_module
from xmarl import registry
from xmarl.envs import VectorEnv, make_env
from xmarl.envs.mpe_fast import (
    NAME,
    NAME_ADVERSARY,
    NAME_PUSH,
    NAME_REFERENCE,
    NAME_SPEAKER_LISTENER,
    NAME_TAG,
    PUSH_AGENT_COLORS,
    PUSH_COLORS,
    REFERENCE_COLORS,
    SPEAKER_LISTENER_COLORS,
    FastAdversary,
    FastPush,
    FastReference,
    FastSpeakerListener,
    FastSpread,
    FastTag,
    mpe2_comm_state,
    mpe2_world_state,
)
from xmarl.errors import EnvError, RegistryError

simple_spread_v3 = require_module("mpe2.simple_spread_v3", "pip install 'xmarl[mpe]'")
simple_speaker_listener_v4 = require_module("mpe2.simple_speaker_listener_v4", "pip install 'xmarl[mpe]'")
simple_reference_v3 = require_module("mpe2.simple_reference_v3", "pip install 'xmarl[mpe]'")
simple_tag_v3 = require_module("mpe2.simple_tag_v3", "pip install 'xmarl[mpe]'")
simple_adversary_v3 = require_module("mpe2.simple_adversary_v3", "pip install 'xmarl[mpe]'")
simple_push_v3 = require_module("mpe2.simple_push_v3", "pip install 'xmarl[mpe]'")

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
    require_module("pygame", "pip install 'xmarl[mpe]'")
    env = FastSpread(2)
    env.reset(seed=0)
    frame = env.render(1)
    env.close()
    assert frame.shape == (700, 700, 3) and frame.min() < 255  # something was drawn


#: MADDPG (torch) settings that learn each mpe-fast task within seconds: 32 envs, one update of 128
#: transitions every 40 env steps, faster target networks and learning rates than the shipped
#: config; the run's one evaluation, at its last step, plays 200 greedy episodes
LEARN_RUN = {"train.num_envs": 32, "train.eval_episodes": 200, "train.tensorboard": False, "env_kwargs": {},
             "maddpg.warmup_steps": 2000, "maddpg.batch_size": 128, "maddpg.update_every": 40, "maddpg.tau": 0.05,
             "maddpg.lr_actor": 3e-3, "maddpg.lr_critic": 3e-3, "maddpg.share_parameters": False}


class _UniformRandom:
    """Uniformly random actions (the env's own sampler) behind :meth:`Policy.act`'s signature."""

    def __init__(self, env, seed: int) -> None:
        self.env, self.rng = env, np.random.default_rng(seed)

    def act(self, obs, state, explore, avail=None):
        return self.env.sample_actions(self.rng), state


def _trained_and_random_returns(name: str, steps: int, tmp_path) -> tuple[float, float]:
    """Train MADDPG (torch) on ``name`` for ``steps`` env steps with :data:`LEARN_RUN`; return the
    trained policy's greedy return per agent and uniformly random actions' return per agent (mean of
    5 draws), both on the evaluation episodes of the run (its eval env and seed)."""

    require("torch")
    import xmarl
    from xmarl.training.trainer import EVAL_SEED_OFFSET, episode_returns

    ov = {**LEARN_RUN, "train.steps": steps, "train.eval_interval": steps}
    res = xmarl.run("maddpg", "torch", name, out_dir=tmp_path, progress=False, overrides=ov)
    m = res.final_metrics
    assert m["steps"] == steps and m["updates"] > 0 and np.isfinite(m["train_return"])
    cfg = xmarl.load_config("maddpg", name, "torch", overrides=ov)
    env = make_env(cfg.env, cfg.train.eval_episodes, **cfg.env_kwargs)
    seed = cfg.seed + EVAL_SEED_OFFSET
    trained = float(episode_returns(res.learner.policy, env, seed).mean())
    assert trained == pytest.approx(m["eval_return"], rel=1e-9)  # the very episodes the run's evaluation played
    random = float(np.mean([episode_returns(_UniformRandom(env, k), env, seed).mean() for k in range(5)]))
    env.close()
    return trained, random


def test_maddpg_trains_on_fast_spread(tmp_path):
    """After 12000 env steps MADDPG's greedy return per agent beats random actions' on the same 200
    evaluation episodes by 3. Measured with this helper, seeds 0-11: trained -19.2 to -21.5, random
    -25.5 to -27.2, margin 4.8 to 7.4; untrained policies (initial weights) -24.6 to -67.7, from 41.6
    below random to 1.0 above it."""
    trained, random = _trained_and_random_returns(NAME, 12000, tmp_path)
    assert trained > random + 3.0, (trained, random)


# -- simple_speaker_listener_v4 and simple_reference_v3: agents that speak ---------------------

COMM_TASKS = {  # name: (fast class, mpe2 module, landmark colours)
    NAME_SPEAKER_LISTENER: (FastSpeakerListener, simple_speaker_listener_v4, SPEAKER_LISTENER_COLORS),
    NAME_REFERENCE: (FastReference, simple_reference_v3, REFERENCE_COLORS),
}


def _comm_actions(rng: np.random.Generator, fast, continuous: bool) -> np.ndarray:
    """Random actions for ``fast``; continuous ones partly out of [0, 1] and with junk in the padding."""
    B, spec = fast.num_envs, fast.spec
    if not continuous:
        return np.stack([rng.integers(0, n, B) for n in spec.act_dims], axis=1)
    a = rng.uniform(-0.2, 1.2, (B, spec.n_agents, spec.act_dim)).astype(np.float32)
    return np.where(spec.act_mask > 0, a, np.float32(7.0))  # padding must be ignored


def _mpe2_step(envs: list, actions: np.ndarray, fast, continuous: bool) -> list:
    agents, dims = fast.agents, fast.spec.act_dims
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [
            e.step({a: (actions[b, i, : dims[i]] if continuous else int(actions[b, i])) for i, a in enumerate(agents)})
            for b, e in enumerate(envs)
        ]


def _padded(d: dict, agents: list[str], width: int) -> np.ndarray:
    out = np.zeros((len(agents), width))
    for i, a in enumerate(agents):
        out[i, : len(d[a])] = d[a]
    return out


def _step_both(fast, envs: list, alive: np.ndarray, actions: np.ndarray, continuous: bool, worst: dict, t: int,
               rew_rtol: float = 0.0) -> tuple[tuple[np.ndarray, ...], list, np.ndarray]:
    """Step ``fast`` and the mpe2 copies still in their episode (``alive``) with the same actions,
    and assert that observations, rewards, terminations and episode ends agree; returns FastMPE's
    step, mpe2's step outputs and mpe2's terminations."""
    agents = fast.agents
    nxt, final, rew, term, done = fast.step(actions)
    out = _mpe2_step([envs[b] for b in np.flatnonzero(alive)], actions[alive], fast, continuous)
    ref_obs = np.stack([_padded(o, agents, fast.obs_dim) for o, *_ in out])
    ref_rew = np.stack([_stack(r, agents) for _, r, *_ in out]).astype(np.float32)  # as VectorEnv
    ref_term = np.stack([_stack(te, agents) for _, _, te, _, _ in out])
    ref_trunc = np.stack([_stack(tr, agents) for *_, tr, _ in out])
    worst["obs"] = max(worst["obs"], np.abs(final[alive] - ref_obs).max())
    worst["rew"] = max(worst["rew"], np.abs(rew[alive] - ref_rew).max())
    np.testing.assert_allclose(final[alive], ref_obs, rtol=0, atol=TOL, err_msg=f"obs, step {t}")
    np.testing.assert_allclose(rew[alive], ref_rew, rtol=rew_rtol, atol=TOL, err_msg=f"reward, step {t}")
    np.testing.assert_array_equal(term[alive], ref_term)
    np.testing.assert_array_equal(done[alive], ref_trunc.all(axis=1) | ref_term.all(axis=1))
    return (nxt, final, rew, term, done), out, ref_term


def _check_state(fast, envs: list, keep: np.ndarray, nxt: np.ndarray, final: np.ndarray,
                 worst: dict) -> tuple[dict, np.ndarray, np.ndarray]:
    """Assert that FastMPE's world state (positions, velocities, words, step counts) equals mpe2's
    for the copies in ``keep``, and that their next observation is the final one (no reset);
    returns FastMPE's state and mpe2's positions and velocities."""
    state = fast.get_state()
    p_pos, p_vel, steps = mpe2_world_state(envs)
    for key, theirs in [("p_pos", p_pos), ("p_vel", p_vel), ("c", mpe2_comm_state(envs))]:
        worst["state"] = max(worst["state"], np.abs(state[key][keep] - theirs[keep]).max(initial=0))
        np.testing.assert_allclose(state[key][keep], theirs[keep], rtol=0, atol=TOL, err_msg=key)
    np.testing.assert_array_equal(state["steps"][keep], steps[keep])
    np.testing.assert_array_equal(nxt[keep], final[keep])
    return state, p_pos, p_vel


@pytest.mark.parametrize("name,kwargs", [
    (NAME_SPEAKER_LISTENER, {}),
    (NAME_SPEAKER_LISTENER, {"max_cycles": 30}),
    (NAME_REFERENCE, {}),
    (NAME_REFERENCE, {"local_ratio": 0.0}),
    (NAME_REFERENCE, {"local_ratio": 0.85, "max_cycles": 30}),
])
@pytest.mark.parametrize("continuous", [False, True])
def test_comm_transitions_equal_mpe2(name, kwargs, continuous):
    """30 episodes per case, 10 side by side: mpe2's state (positions, velocities, words, goals,
    step count) is copied in, at reset or after a random number of mpe2 steps (so every copy
    truncates at its own step and the copied words are not zero), then both are stepped with the
    same actions until mpe2's episodes end. Observations, rewards, terminations, truncations and
    the world state agree at every step, for every copy still in its copied episode."""
    cls, mod, _ = COMM_TASKS[name]
    max_cycles = kwargs.get("max_cycles", 25)
    rng = np.random.default_rng(7 + len(kwargs) + 10 * continuous + 100 * (name == NAME_REFERENCE))
    B = 10
    worst = {"obs": 0.0, "rew": 0.0, "state": 0.0}
    goals, words, rewards = set(), set(), set()
    for batch in range(3):
        envs = [mod.parallel_env(continuous_actions=continuous, **kwargs) for _ in range(B)]
        for e in envs:
            e.reset(seed=int(rng.integers(2**31)))
        fast = cls(B, continuous_actions=continuous, **kwargs)
        agents = fast.agents
        assert agents == envs[0].possible_agents
        assert fast.spec.obs_dims == tuple(envs[0].observation_space(a).shape[0] for a in agents)
        assert [fast.spec.act_dims[i] for i in range(2)] == [
            envs[0].action_space(a).shape[0] if continuous else envs[0].action_space(a).n for a in agents]
        warm = np.zeros(B, int) if batch == 0 else rng.integers(1, 13, B)
        for t in range(warm.max()):  # mpe2 alone plays the first warm[b] steps of copy b
            acts = _comm_actions(rng, fast, continuous)
            live = [b for b in range(B) if t < warm[b]]
            _mpe2_step([envs[b] for b in live], acts[live], fast, continuous)
        obs = fast.set_state_from_mpe2(envs)
        ref = np.stack([_padded({a: e.unwrapped.observe(a) for a in agents}, agents, fast.obs_dim) for e in envs])
        np.testing.assert_array_equal(fast.get_state()["c"], mpe2_comm_state(envs))
        np.testing.assert_array_equal(fast.get_state()["steps"], warm)
        if batch > 0:  # the copied words matter: they are observed
            assert np.abs(fast.get_state()["c"][:, ~fast.silent]).sum(axis=-1).min() > 0
        np.testing.assert_allclose(obs, ref, rtol=0, atol=TOL, err_msg="obs at copy")
        worst["obs"] = max(worst["obs"], np.abs(obs - ref).max())
        alive = np.ones(B, bool)
        for t in range(max_cycles):
            actions = _comm_actions(rng, fast, continuous)
            (nxt, final, rew, _, done), _, _ = _step_both(fast, envs, alive, actions, continuous, worst, t)
            np.testing.assert_array_equal(done[alive], warm[alive] + t + 1 == max_cycles)
            rewards.update(rew[alive].ravel().tolist())
            keep = alive & ~done  # copies that ended have already auto-reset in FastMPE
            state, _, _ = _check_state(fast, envs, keep, nxt, final, worst)
            goals.update(state["goal"][keep].ravel().tolist())
            words.update(np.argmax(state["c"][keep][:, ~fast.silent], axis=-1).ravel().tolist())
            alive &= ~done
            if not alive.any():
                break
        assert not alive.any()
        for e in envs:
            assert not e.agents  # mpe2 ended every episode where FastMPE did
            e.close()
    assert goals == {0, 1, 2}, "every landmark was a goal"
    assert words == set(range(fast.dim_c)), "every word was said"
    assert len(rewards) > 100  # rewards follow the motion
    print(f"{name} {kwargs} continuous={continuous} max |diff|: {worst}")


def test_reference_action_composition():
    """simple_reference: Discrete(50) is movement a % 5 and word a // 5; Box(15) is movement [0:5]
    then words [5:15]; each agent observes the other's word, not its own."""
    far = np.array([[[-5.0, 0.0], [5.0, 0.0], [0.0, 5.0], [0.0, -5.0], [3.0, 3.0]]])
    env = FastReference(1)
    env.set_state(far, goal=np.array([[2, 0]]))
    _, final, _, _, _ = env.step(np.array([[5 * 7 + 2, 5 * 0 + 3]]))  # agent_0: word 7, +x; agent_1: word 0, -y
    s = env.get_state()
    np.testing.assert_allclose(s["p_vel"][0, :2], [[0.5, 0.0], [0.0, -0.5]], atol=1e-12)
    np.testing.assert_array_equal(s["c"][0], np.eye(10)[[7, 0]])
    np.testing.assert_array_equal(final[0, 1, 11:21], np.eye(10)[7])  # agent_1 hears agent_0
    np.testing.assert_array_equal(final[0, 0, 11:21], np.eye(10)[0])
    np.testing.assert_allclose(final[0, 0, 8:11], REFERENCE_COLORS[2], rtol=1e-6)  # agent_0 sees its goal's colour
    np.testing.assert_allclose(final[0, 1, 8:11], REFERENCE_COLORS[0], rtol=1e-6)
    env = FastReference(1, continuous_actions=True, local_ratio=1.0)
    env.set_state(far, goal=np.array([[2, 0]]))
    a = np.zeros((1, 2, 15), np.float32)
    a[0, 0, :5] = [0.0, 0.2, 0.9, 1.5, 0.3]
    a[0, 0, 5:] = np.linspace(-0.5, 1.5, 10)
    _, final, rew, _, _ = env.step(a)
    s = env.get_state()
    np.testing.assert_allclose(s["p_vel"][0, 0], [0.35, -0.35], atol=1e-6)  # 0.1 * 5 * (0.9 - 0.2, 0.3 - 1)
    np.testing.assert_allclose(s["c"][0, 0], np.clip(np.linspace(-0.5, 1.5, 10), 0, 1), atol=1e-6)
    np.testing.assert_allclose(final[0, 1, 11:21], s["c"][0, 0], atol=1e-7)
    # local_ratio=1: agent i is paid minus the distance from the *other* agent to goal[i]
    np.testing.assert_allclose(rew[0], [-np.linalg.norm(far[0, 1] - far[0, 2 + 2]),
                                        -np.linalg.norm(far[0, 0] - far[0, 2 + 0])], rtol=1e-6)
    with pytest.raises(EnvError, match="0..49"):
        FastReference(1).step(np.array([[0, 50]]))


def test_speaker_listener_roles():
    """The speaker never moves and says Discrete(3) words; the listener moves, is silent, hears the
    speaker; both are paid minus the listener's squared distance to the goal landmark."""
    pos = np.array([[[0.5, 0.5], [0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [-1.0, -1.0]]])
    env = FastSpeakerListener(1)
    obs = env.set_state(pos, goal=np.array([[1]]))
    np.testing.assert_allclose(obs[0, 0, :3], SPEAKER_LISTENER_COLORS[1], rtol=1e-6)  # goal colour, padded
    np.testing.assert_array_equal(obs[0, 0, 3:], 0)
    _, final, rew, _, _ = env.step(np.array([[2, 4]]))  # speaker says 2, listener +y
    s = env.get_state()
    np.testing.assert_array_equal(s["p_pos"][0, 0], [0.5, 0.5])
    np.testing.assert_array_equal(s["p_vel"][0, 0], [0.0, 0.0])
    np.testing.assert_allclose(s["p_vel"][0, 1], [0.0, 0.5], atol=1e-12)
    np.testing.assert_array_equal(s["c"][0], [[0, 0, 1], [0, 0, 0]])
    np.testing.assert_array_equal(final[0, 1, 8:11], [0, 0, 1])  # the listener hears the word
    np.testing.assert_allclose(final[0, 1, 2:8], (pos[0, 2:] - pos[0, 1]).ravel(), rtol=1e-6)  # moved with old v=0
    np.testing.assert_allclose(rew[0], [-4.0, -4.0], rtol=1e-6)  # |(0, 0) - (0, 2)|^2
    env.step(np.array([[0, 0]]))
    np.testing.assert_allclose(env.get_state()["p_pos"][0, 1], [0.0, 0.05], atol=1e-12)
    assert env.spec.act_dims == (3, 5) and env.spec.obs_dims == (3, 11)
    assert FastSpeakerListener(1, continuous_actions=True).spec.act_dims == (3, 5)
    assert FastReference(1).spec.act_dims == (50, 50)
    assert FastReference(1, continuous_actions=True).spec.act_dims == (15, 15)
    with pytest.raises(EnvError, match="speaker_0.*0..2"):
        env.step(np.array([[3, 0]]))
    with pytest.raises(EnvError, match="listener_0.*0..4"):
        env.step(np.array([[0, 5]]))


def test_set_state_checks_comm_and_goal():
    pos = np.zeros((2, 5, 2))
    with pytest.raises(EnvError, match="goal"):
        FastReference(2).set_state(pos)
    with pytest.raises(EnvError, match="goal"):
        FastReference(2).set_state(pos, goal=np.array([[0, 3], [1, 1]]))
    with pytest.raises(EnvError, match="silent"):  # the listener cannot have said anything
        FastSpeakerListener(2).set_state(pos, c=np.ones((2, 2, 3)), goal=np.zeros((2, 1), int))
    with pytest.raises(EnvError, match="silent"):
        FastSpread(1).set_state(np.zeros((1, 6, 2)), c=np.ones((1, 3, 2)))


@pytest.mark.parametrize("name", [NAME_SPEAKER_LISTENER, NAME_REFERENCE])
def test_comm_auto_reset_and_completed_returns(name):
    """Episodes end after max_cycles and are reset in place (new positions and goals, zero velocity
    and words); returns are recorded; a copy mid-episode keeps its goal and words."""
    cls, _, colors = COMM_TASKS[name]
    env = make_env(name, 4, max_cycles=5, continuous_actions=True)
    assert type(env) is cls and env.num_envs == 4 and env.spec.n_agents == 2
    obs0 = env.reset(seed=7)
    assert obs0.dtype == np.float32 and obs0.shape == (4, 2, env.obs_dim)
    np.testing.assert_array_equal(obs0, make_env(name, 4, max_cycles=5, continuous_actions=True).reset(seed=7))
    rng = np.random.default_rng(0)
    total = np.zeros((4, 2))
    for t in range(5):
        obs, final, rew, term, done = env.step(env.sample_actions(rng))
        assert rew.dtype == np.float32 and term.dtype == np.float32 and done.dtype == bool and not term.any()
        total += rew
        if t < 4:
            assert not done.any() and env.completed_returns == [] and np.array_equal(obs, final)
    assert done.all() and env.completed_lengths == [5] * 4
    np.testing.assert_allclose(env.completed_returns, total.mean(axis=1), rtol=1e-6)
    s = env.get_state()
    assert np.all(s["c"] == 0) and np.all(s["p_vel"] == 0) and np.all(s["steps"] == 0)
    assert np.abs(s["p_pos"]).max() <= 1 and s["goal"].min() >= 0 and s["goal"].max() <= 2
    np.testing.assert_allclose(obs, env.set_state(s["p_pos"], s["p_vel"], 0, s["c"], s["goal"]))  # obs is the new state
    assert not np.allclose(obs, final)
    # copy 0 ends one step from now; the others keep their goals and go on talking
    s["steps"][:] = [4, 0, 0, 0]
    env.set_state(s["p_pos"], s["p_vel"], s["steps"], s["c"], s["goal"])
    obs, final, *_, done = env.step(env.sample_actions(rng))
    np.testing.assert_array_equal(done, [True, False, False, False])
    after = env.get_state()
    np.testing.assert_array_equal(after["steps"], [0, 1, 1, 1])
    np.testing.assert_array_equal(after["goal"][1:], s["goal"][1:])
    assert np.all(after["c"][0] == 0) and np.all(after["c"][1:, ~env.silent] != 0)
    assert np.all(obs[0, env.movable, :2] == 0) and len(env.completed_returns) == 5  # fresh: zero velocity
    held = env.spec.agents.index("speaker_0") if name == NAME_SPEAKER_LISTENER else 0
    colour = slice(0, 3) if name == NAME_SPEAKER_LISTENER else slice(8, 11)
    np.testing.assert_allclose(obs[:, held, colour], colors[after["goal"][:, 0]], rtol=1e-6)


@pytest.mark.parametrize("name", [NAME_SPEAKER_LISTENER, NAME_REFERENCE])
def test_comm_reset_distribution(name):
    """Goals uniform over the three landmarks, positions uniform in [-1, 1)^2, all else zero."""
    env = make_env(name, 3000)
    env.reset(seed=5)
    s = env.get_state()
    assert np.all(s["p_vel"] == 0) and np.all(s["c"] == 0) and np.abs(s["p_pos"]).max() <= 1
    assert abs(s["p_pos"].mean()) < 0.02 and abs(s["p_pos"].var() - 1 / 3) < 0.01
    freq = np.bincount(s["goal"].ravel(), minlength=3) / s["goal"].size
    np.testing.assert_allclose(freq, 1 / 3, atol=0.03)
    if env.goal.shape[1] == 2:  # simple_reference draws the two goals independently
        assert 0.25 < np.mean(s["goal"][:, 0] == s["goal"][:, 1]) < 0.42


@pytest.mark.parametrize("name", [NAME_SPEAKER_LISTENER, NAME_REFERENCE])
def test_comm_pickle_and_render(name):
    """A pickled copy continues identically (words, goals, RNG); render shows copy ``index``'s state."""
    require_module("pygame", "pip install 'xmarl[mpe]'")
    env = make_env(name, 3, max_cycles=4)
    env.reset(seed=11)
    rng = np.random.default_rng(1)
    env.step(env.sample_actions(rng))
    frame = env.render(1)
    world = env._render_env.unwrapped.world
    assert frame.shape == (700, 700, 3) and frame.min() < 255
    np.testing.assert_array_equal([a.state.c for a in world.agents], env.c[1])
    np.testing.assert_array_equal(world.agents[1].state.p_pos, env.p_pos[1, 1])
    s = env.get_state()
    for g in (0, 1, 2, 0):  # the goal (and the colour of the agent that must reach it) follows the state
        env.set_state(s["p_pos"], s["p_vel"], s["steps"], s["c"], np.full_like(s["goal"], g))
        env.render(0)
        assert world.agents[0].goal_b is world.landmarks[g]
        np.testing.assert_allclose(world.agents[1].color, world.landmarks[g].color + env.GOAL_TINT)
    env.set_state(s["p_pos"], s["p_vel"], s["steps"], s["c"], s["goal"])
    clone = pickle.loads(pickle.dumps(env))
    assert clone._render_env is None
    for _ in range(6):  # crosses an auto-reset, which draws positions and goals from the pickled RNG
        a = env.sample_actions(rng)
        for x, y in zip(env.step(a), clone.step(a)):
            np.testing.assert_array_equal(x, y)
    for key, value in env.get_state().items():
        np.testing.assert_array_equal(value, clone.get_state()[key])
    env.close()


def test_comm_registration_and_bad_kwargs():
    for name, (cls, _, _) in COMM_TASKS.items():
        assert name in registry.names("env") and name in registry.names("vector_env")
        for continuous in (False, True):
            fast = make_env(name, 2, continuous_actions=continuous)
            slow = registry.get("env", name)  # the equivalent mpe2 env
            ref = VectorEnv(lambda: slow(continuous_actions=continuous), 1, name=name).spec  # noqa: B023
            assert type(fast) is cls and fast.spec.agents == ref.agents and fast.spec.obs_dims == ref.obs_dims
            assert fast.spec.action_kind == ref.action_kind and fast.spec.act_dims == ref.act_dims
            np.testing.assert_array_equal(fast.spec.low, ref.low)
            np.testing.assert_array_equal(fast.spec.high, ref.high)
    with pytest.raises(EnvError, match="bad env kwargs"):
        make_env(NAME_SPEAKER_LISTENER, 2, local_ratio=0.5)  # mpe2's speaker_listener has none either
    with pytest.raises(EnvError, match="local_ratio"):
        make_env(NAME_REFERENCE, 2, local_ratio=1.5)


@pytest.mark.parametrize("name,steps,margin", [(NAME_SPEAKER_LISTENER, 12000, 14.0), (NAME_REFERENCE, 24000, 3.0)])
def test_maddpg_trains_on_comm_tasks(name, steps, margin, tmp_path):
    """After ``steps`` env steps MADDPG's greedy return per agent beats random actions' on the same
    200 evaluation episodes by ``margin``. Measured with this helper, seeds 0-11: speaker_listener
    trained -15.2 to -18.6, random -37.0 to -42.8, margin 21.2 to 25.8 (untrained policies -33.8 to
    -173.8, up to 7.7 above random); reference trained -18.0 to -21.4, random -27.5 to -29.0, margin
    6.6 to 10.1 (untrained -32.6 to -54.2, at least 3.9 below random; at 18000 steps one seed of
    twelve was still at random's level)."""
    trained, random = _trained_and_random_returns(name, steps, tmp_path)
    assert trained > random + margin, (trained, random)


# -- simple_tag_v3, simple_adversary_v3, simple_push_v3: the MADDPG paper's mixed tasks -----------

MIXED_TASKS = {  # name: (fast class, mpe2 module)
    NAME_TAG: (FastTag, simple_tag_v3),
    NAME_ADVERSARY: (FastAdversary, simple_adversary_v3),
    NAME_PUSH: (FastPush, simple_push_v3),
}


def _arrange(envs: list, rng: np.random.Generator, how: str) -> None:
    """Move mpe2's agents (in place, velocities kept): ``crowd`` piles them within 0.15 of the last
    landmark (contacts with each other and with obstacles, collisions, speed limits); ``wide``
    spreads them over [-1.3, 1.3)^2 (simple_tag's bound penalty in all three of its pieces)."""
    for e in envs:
        world = e.unwrapped.world
        centre = world.landmarks[-1].state.p_pos if world.landmarks else np.zeros(2)
        for agent in world.agents:
            agent.state.p_pos = centre + rng.uniform(-0.15, 0.15, 2) if how == "crowd" else rng.uniform(-1.3, 1.3, 2)


@pytest.mark.parametrize("name,kwargs", [
    (NAME_TAG, {}),
    (NAME_TAG, {"num_good": 2, "num_adversaries": 2, "num_obstacles": 3}),
    (NAME_TAG, {"num_good": 3, "num_adversaries": 1, "num_obstacles": 0, "max_cycles": 30}),
    (NAME_TAG, {"terminate_on_success": True}),
    (NAME_ADVERSARY, {}),
    (NAME_ADVERSARY, {"N": 4}),
    (NAME_ADVERSARY, {"N": 1, "max_cycles": 30}),
    (NAME_PUSH, {}),
    (NAME_PUSH, {"max_cycles": 30}),
])
@pytest.mark.parametrize("continuous", [False, True])
def test_mixed_transitions_equal_mpe2(name, kwargs, continuous):
    """40 episodes per case, 10 side by side, in four batches: from mpe2's reset; after a random
    number of mpe2 steps (non-zero velocities, every copy truncating at its own step); with the
    agents crowded onto a landmark; and with them spread beyond the bounds. mpe2's state is copied
    in, both are stepped with the same actions until mpe2's episodes end, and observations, rewards,
    terminations, truncations and the world state agree at every step for every copy still in its
    copied episode, and so do the step measures with mpe2's ``benchmark_data``. Counts show that
    collisions, contacts, speed limits, bound penalties and (with terminate_on_success) terminations
    all happened."""
    cls, mod = MIXED_TASKS[name]
    max_cycles = kwargs.get("max_cycles", 25)
    rng = np.random.default_rng(11 + 7 * len(kwargs) + 10 * continuous + 100 * list(MIXED_TASKS).index(name))
    B = 10
    worst = {"obs": 0.0, "rew": 0.0, "state": 0.0}
    seen = {"goals": set(), "rewards": set(), "catches": 0, "bound": 0, "limited": 0, "contacts": 0, "obstacle": 0,
            "terminated": 0, "successes": 0}
    for batch in range(4):
        bench = cls is not FastPush  # mpe2's simple_push has no benchmark_data
        envs = [mod.parallel_env(continuous_actions=continuous, benchmark_data=bench, **kwargs) for _ in range(B)]
        for e in envs:
            e.reset(seed=int(rng.integers(2**31)))
        fast = cls(B, continuous_actions=continuous, **kwargs)
        agents = fast.agents
        assert agents == envs[0].possible_agents
        assert fast.spec.obs_dims == tuple(envs[0].observation_space(a).shape[0] for a in agents)
        assert list(fast.spec.act_dims) == [
            envs[0].action_space(a).shape[0] if continuous else envs[0].action_space(a).n for a in agents]
        warm = rng.integers(1, 13, B) if batch == 1 else np.zeros(B, int)
        for t in range(warm.max()):  # mpe2 alone plays the first warm[b] steps of copy b
            live = [b for b in range(B) if t < warm[b]]
            _mpe2_step([envs[b] for b in live], _comm_actions(rng, fast, continuous)[live], fast, continuous)
        if batch >= 2:
            _arrange(envs, rng, "crowd" if batch == 2 else "wide")
        obs = fast.set_state_from_mpe2(envs)
        ref = np.stack([_padded({a: e.unwrapped.observe(a) for a in agents}, agents, fast.obs_dim) for e in envs])
        np.testing.assert_array_equal(fast.get_state()["steps"], warm)
        np.testing.assert_allclose(obs, ref, rtol=0, atol=TOL, err_msg="obs at copy")
        alive = np.ones(B, bool)
        for t in range(max_cycles):
            actions = _comm_actions(rng, fast, continuous)
            if fast.collide:  # overlapping pairs (agents, then agents and obstacles) this step pushes apart
                seen["contacts"] += int((fast._d_other < fast._dmin_other)[alive].sum())
            if fast.obstacle_size is not None:
                seen["obstacle"] += int((np.linalg.norm(fast._rel_lm, axis=-1) < fast._dmin_lm)[alive].sum())
            (nxt, final, rew, _, done), out, ref_term = _step_both(fast, envs, alive, actions, continuous, worst, t,
                                                                  rew_rtol=1e-6)
            seen["terminated"] += int(ref_term.all(axis=1).sum())
            seen["rewards"].update(rew[alive].ravel().tolist())
            measures, infos = fast.step_measures(), [inf for *_, inf in out]
            if cls is FastTag:  # benchmark_data: the good agents each adversary collides with
                touches = [sum(inf[a]["benchmark_data"] for a in agents[: fast.num_adversaries]) for inf in infos]
                np.testing.assert_array_equal(measures["touches"][alive], touches)
            elif cls is FastAdversary:  # benchmark_data: squared distances, the goal's last for good agents
                d_adv = np.sqrt([inf["adversary_0"]["benchmark_data"] for inf in infos])
                d_good = np.sqrt([[inf[a]["benchmark_data"][-1] for a in agents[1:]] for inf in infos]).min(axis=1)
                ends = done[alive]
                np.testing.assert_array_equal(measures["good_success"][alive], ends & (d_good < 0.23))
                np.testing.assert_array_equal(measures["adversary_success"][alive], ends & (d_adv < 0.23))
                seen["successes"] += int(measures["good_success"].sum() + measures["adversary_success"].sum())
            else:
                assert measures == {}
            keep = alive & ~done  # copies that ended have already auto-reset in FastMPE
            state, p_pos, p_vel = _check_state(fast, envs, keep, nxt, final, worst)
            if fast.shared_goal:
                seen["goals"].update(state["goal"][keep, 0].tolist())
            if cls is FastTag:
                good = rew[alive][:, fast.num_adversaries:]
                seen["catches"] += int((good <= -10).sum())
                seen["bound"] += int((np.abs(p_pos[alive][:, fast.num_adversaries:fast.n_agents]) > 0.9).sum())
                speed = np.linalg.norm(p_vel[alive][:, :fast.n_agents], axis=-1)
                seen["limited"] += int(np.isclose(speed, fast._max_speed[:, 0], rtol=1e-12).sum())
            alive &= ~done
            if not alive.any():
                break
        assert not alive.any()
        for e in envs:
            assert not e.agents  # mpe2 ended every episode where FastMPE did
            e.close()
    assert len(seen["rewards"]) > 100  # rewards follow the motion
    if fast.shared_goal:
        assert seen["goals"] == set(range(fast.n_landmarks)), "every landmark was the goal"
    if fast.collide:
        assert seen["contacts"] > 10, "few agent contacts: the contact physics went untested"
    if cls is FastTag:
        assert seen["catches"] > 0 and seen["bound"] > 0 and seen["limited"] > 0, seen
        assert (seen["obstacle"] > 10) == (fast.n_landmarks > 0), seen
        assert (seen["terminated"] > 0) == fast.terminate_on_success, seen
    counts = {k: v for k, v in seen.items() if k != "rewards"}
    print(f"{name} {kwargs} continuous={continuous} max |diff|: {worst}; {counts}")


def test_tag_rewards_collisions_obstacles_and_speed():
    """simple_tag: -10 per catching adversary and the bound penalty for good agents, +10 per caught
    pair for every adversary; obstacles push agents out; speeds are capped at 1 and 1.3."""
    env = FastTag(1, num_good=2, num_adversaries=2, num_obstacles=1)
    # adversary_0 touches agent_0 (0.1 < 0.125) and agent_1 (at 0.12); adversary_1 is far; agent_1 is at x = 0.95
    p = np.array([[[0.0, 0.0], [-0.5, -0.5], [0.1, 0.0], [0.0, 0.12], [5.0, 5.0]]])
    obs = env.set_state(p)
    assert env.spec.obs_dims == (4 + 2 + 6 + 4, 4 + 2 + 6 + 4, 4 + 2 + 6 + 2, 4 + 2 + 6 + 2)
    np.testing.assert_array_equal(obs[:, 2:, -2:], 0)  # good agents see one velocity less: padding
    _, final, rew, term, done = env.step(np.zeros((1, 4), int))
    np.testing.assert_allclose(rew[0], [20.0, 20.0, -10.0, -10.0], rtol=1e-6)
    assert not term.any() and not done.any()
    assert env.step_measures() == {"touches": np.array([2.0])}
    p[0, 3] = [0.95, 0.0]  # agent_1 free, but out by 0.05 in x: penalty 10 * 0.05
    env.set_state(p)
    rew = env.step(np.zeros((1, 4), int))[2]
    np.testing.assert_allclose(rew[0], [10.0, 10.0, -10.0, -0.5], rtol=1e-5)
    p[0, 3] = [1.2, -2.5]  # exp(2 * 1.2 - 2), and exp(2 * 2.5 - 2) capped at 10
    env.set_state(p)
    rew = env.step(np.zeros((1, 4), int))[2]
    np.testing.assert_allclose(rew[0, 3], -np.exp(0.4) - 10.0, rtol=1e-6)
    # an agent inside an obstacle is pushed out of it; velocity never exceeds max_speed
    p = np.array([[[0.1, 0.0], [-3.0, 0.0], [3.0, 0.0], [0.0, 3.0], [0.0, 0.0]]])
    env.set_state(p)
    env.step(np.array([[2, 0, 0, 0]]))  # adversary_0 pushes towards +x as well
    v = env.get_state()["p_vel"][0]
    np.testing.assert_allclose(np.linalg.norm(v[0]), 1.0)  # capped at its max speed
    assert v[0, 0] > 0.99 and abs(v[0, 1]) < 1e-12
    env.set_state(p, np.array([[[0.0, 0.0], [0.0, 0.0], [2.0, 0.0], [0.0, 0.0], [0.0, 0.0]]]))
    env.step(np.array([[0, 0, 2, 0]]))
    np.testing.assert_allclose(env.get_state()["p_vel"][0, 2], [1.3, 0.0])  # 0.75 * 2 + 0.4 = 1.9 -> 1.3
    # the good agent's accel is 4, the adversaries' 3
    far = np.array([[[-3.0, 0.0], [3.0, 0.0], [0.0, 3.0], [0.0, -3.0], [9.0, 9.0]]])
    env.set_state(far)
    env.step(np.array([[2, 4, 1, 3]]))
    np.testing.assert_allclose(env.get_state()["p_vel"][0, :4], [[0.3, 0], [0, 0.3], [-0.4, 0], [0, -0.4]], atol=1e-12)


def test_tag_terminate_on_success():
    """With terminate_on_success an episode ends, terminated, once every good agent is caught
    (unless it is truncated at that step); it then resets like a truncated one."""
    env = FastTag(3, num_good=2, num_adversaries=1, num_obstacles=0, terminate_on_success=True, max_cycles=5)
    caught = [[0.0, 0.0], [0.1, 0.0], [0.0, 0.1]]  # adversary_0 touches both good agents
    half = [[0.0, 0.0], [0.1, 0.0], [0.0, 2.0]]  # only agent_0 is caught
    p = np.array([caught, half, caught])
    env.set_state(p, steps=np.array([0, 0, 4]))
    obs, final, rew, term, done = env.step(np.zeros((3, 3), int))
    np.testing.assert_array_equal(done, [True, False, True])
    np.testing.assert_array_equal(term, [[1, 1, 1], [0, 0, 0], [0, 0, 0]])  # copy 2 is truncated instead
    np.testing.assert_array_equal(env.get_state()["steps"], [0, 1, 0])
    assert env.completed_lengths == [1, 5]
    assert not FastTag(1, num_good=2, num_adversaries=1, num_obstacles=0)._terminal()


def test_adversary_and_push_observations_and_rewards():
    """simple_adversary: only good agents see the goal; rewards from distances to it. simple_push:
    the good agent sees the goal, its own goal-coloured body and the landmark colours."""
    p = np.array([[[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [3.0, 0.0], [0.0, -1.0]]])
    env = FastAdversary(1)
    obs = env.set_state(p, goal=np.array([[1]]))  # landmark 1 at (0, -1)
    assert env.spec.obs_dims == (8, 10, 10)
    np.testing.assert_allclose(obs[0, 0], [3, 0, 0, -1, 1, 0, 0, 2, 0, 0], atol=1e-6)  # adversary: padded
    np.testing.assert_allclose(obs[0, 1], [-1, -1, 2, 0, -1, -1, -1, 0, -1, 2], atol=1e-6)
    rew = env.step(np.zeros((1, 3), int))[2]
    d_adv, d0, d1 = 1.0, np.sqrt(2.0), np.sqrt(9.0)
    np.testing.assert_allclose(rew[0], [-d_adv, -d0 + d_adv, -min(d0, d1) + d_adv], rtol=1e-6)
    # success measures count at an episode's last step only: touching = closer than 0.15 + 0.08
    near = p.copy()
    near[0, 1] = [0.0, -0.8]  # agent_0 0.2 from the goal; the adversary 1.0 from it
    for steps, expect in [(0, 0.0), (24, 1.0)]:
        env.set_state(near, steps=steps, goal=np.array([[1]]))
        *_, done = env.step(np.zeros((1, 3), int))
        assert done[0] == (steps == 24)
        assert env.step_measures() == {"good_success": np.array([expect]), "adversary_success": np.array([0.0])}
    with pytest.raises(EnvError, match="goal"):
        env.set_state(p)
    p = np.array([[[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [3.0, 0.0]]])
    env = FastPush(1)
    obs = env.set_state(p, goal=np.array([[1]]))
    assert env.spec.obs_dims == (8, 19)
    np.testing.assert_allclose(obs[0, 0], [0, 0, 0, 2, 3, 0, 1, 0] + [0] * 11, atol=1e-6)
    np.testing.assert_allclose(obs[0, 1, 2:4], [2, 0], atol=1e-6)  # goal - p
    np.testing.assert_allclose(obs[0, 1, 4:7], PUSH_AGENT_COLORS[1], rtol=1e-6)
    np.testing.assert_allclose(obs[0, 1, 4:7], [0.25, 0.25, 0.75], rtol=1e-6)
    np.testing.assert_allclose(obs[0, 1, 11:17], PUSH_COLORS.ravel(), rtol=1e-6)
    np.testing.assert_allclose(obs[0, 1, 17:19], [-1, 0], atol=1e-6)
    rew = env.step(np.zeros((1, 2), int))[2]
    np.testing.assert_allclose(rew[0], [2.0 - 3.0, -2.0], rtol=1e-6)


@pytest.mark.parametrize("name", list(MIXED_TASKS))
def test_mixed_auto_reset_and_completed_returns(name):
    """Episodes end after max_cycles and are reset in place (new positions and goals, zero
    velocities); returns are recorded; a copy mid-episode keeps going with its goal."""
    cls, _ = MIXED_TASKS[name]
    env = make_env(name, 4, max_cycles=5, continuous_actions=True)
    assert type(env) is cls and env.num_envs == 4
    obs0 = env.reset(seed=7)
    assert obs0.dtype == np.float32 and obs0.shape == (4, env.spec.n_agents, env.obs_dim)
    np.testing.assert_array_equal(obs0, make_env(name, 4, max_cycles=5, continuous_actions=True).reset(seed=7))
    rng = np.random.default_rng(0)
    total = np.zeros((4, env.spec.n_agents))
    for t in range(5):
        obs, final, rew, term, done = env.step(env.sample_actions(rng))
        assert rew.dtype == np.float32 and term.dtype == np.float32 and done.dtype == bool and not term.any()
        total += rew
        if t < 4:
            assert not done.any() and env.completed_returns == [] and np.array_equal(obs, final)
    assert done.all() and env.completed_lengths == [5] * 4
    np.testing.assert_allclose(env.completed_returns, total.mean(axis=1), rtol=1e-5)
    s = env.get_state()
    assert np.all(s["p_vel"] == 0) and np.all(s["steps"] == 0) and np.abs(s["p_pos"]).max() <= 1
    np.testing.assert_array_equal(obs, env.set_state(s["p_pos"], s["p_vel"], 0, s["c"], s.get("goal")))
    assert not np.allclose(obs, final)
    s["steps"][:] = [4, 0, 0, 0]
    env.set_state(s["p_pos"], s["p_vel"], s["steps"], s["c"], s.get("goal"))
    *_, done = env.step(env.sample_actions(rng))
    np.testing.assert_array_equal(done, [True, False, False, False])
    after = env.get_state()
    np.testing.assert_array_equal(after["steps"], [0, 1, 1, 1])
    if "goal" in s:
        np.testing.assert_array_equal(after["goal"][1:], s["goal"][1:])
    assert np.all(after["p_vel"][0] == 0) and np.all(after["p_vel"][1:, : env.n_agents] != 0)
    assert len(env.completed_returns) == 5


@pytest.mark.parametrize("name,kwargs", [(NAME_TAG, {"num_obstacles": 3}), (NAME_ADVERSARY, {"N": 3}), (NAME_PUSH, {})])
def test_mixed_reset_distribution(name, kwargs):
    """Agents uniform in [-1, 1)^2, landmarks too (simple_tag's obstacles in [-0.9, 0.9)^2), goals
    uniform over the landmarks, velocities zero."""
    env = make_env(name, 4000, **kwargs)
    env.reset(seed=5)
    s = env.get_state()
    A = env.n_agents
    assert np.all(s["p_vel"] == 0) and np.all(s["c"] == 0)
    r = 0.9 if name == NAME_TAG else 1.0
    for part, half in [(s["p_pos"][:, :A], 1.0), (s["p_pos"][:, A:], r)]:
        assert np.abs(part).max() <= half and np.abs(part).max() > 0.99 * half
        assert abs(part.mean()) < 0.02 and abs(part.var() - half**2 / 3) < 0.01  # U(-h, h): var h^2 / 3
    if "goal" in s:
        freq = np.bincount(s["goal"].ravel(), minlength=env.n_landmarks) / s["goal"].size
        np.testing.assert_allclose(freq, 1 / env.n_landmarks, atol=0.03)


@pytest.mark.parametrize("name", list(MIXED_TASKS))
def test_mixed_pickle_and_render(name):
    """A pickled copy continues identically (positions, goals, RNG across an auto-reset); render
    shows copy ``index``'s state, with the goal's colours as mpe2 paints them."""
    require_module("pygame", "pip install 'xmarl[mpe]'")
    env = make_env(name, 3, max_cycles=4)
    env.reset(seed=11)
    rng = np.random.default_rng(1)
    env.step(env.sample_actions(rng))
    frame = env.render(1)
    world = env._render_env.unwrapped.world
    assert frame.shape == (700, 700, 3) and frame.min() < 255
    np.testing.assert_array_equal([e.state.p_pos for e in world.entities], env.p_pos[1])
    if env.shared_goal:
        s = env.get_state()
        for g in (0, 1, 0):
            env.set_state(s["p_pos"], s["p_vel"], s["steps"], s["c"], np.full_like(s["goal"], g))
            env.render(0)
            assert all(a.goal_a is world.landmarks[g] for a in world.agents)
            if name == NAME_ADVERSARY:
                np.testing.assert_array_equal(world.landmarks[g].color, [0.15, 0.65, 0.15])
                np.testing.assert_array_equal(world.landmarks[1 - g].color, [0.15, 0.15, 0.15])
            else:
                np.testing.assert_array_equal(world.agents[1].color, PUSH_AGENT_COLORS[g])
        env.set_state(s["p_pos"], s["p_vel"], s["steps"], s["c"], s["goal"])
    clone = pickle.loads(pickle.dumps(env))
    assert clone._render_env is None
    for _ in range(6):  # crosses an auto-reset, which draws from the pickled RNG
        a = env.sample_actions(rng)
        for x, y in zip(env.step(a), clone.step(a)):
            np.testing.assert_array_equal(x, y)
    for key, value in env.get_state().items():
        np.testing.assert_array_equal(value, clone.get_state()[key])
    assert env.completed_returns == clone.completed_returns and len(env.completed_returns) == 3
    env.close()


def test_mixed_registration_and_bad_kwargs():
    for name, (cls, _) in MIXED_TASKS.items():
        assert name in registry.names("env") and name in registry.names("vector_env")
        for continuous in (False, True):
            fast = make_env(name, 2, continuous_actions=continuous)
            slow = registry.get("env", name)  # the equivalent mpe2 env
            ref = VectorEnv(lambda: slow(continuous_actions=continuous), 1, name=name).spec  # noqa: B023
            assert type(fast) is cls and fast.spec.agents == ref.agents and fast.spec.obs_dims == ref.obs_dims
            assert fast.spec.action_kind == ref.action_kind and fast.spec.act_dims == ref.act_dims
            np.testing.assert_array_equal(fast.spec.low, ref.low)
            np.testing.assert_array_equal(fast.spec.high, ref.high)
    assert make_env(NAME_TAG, 1, num_good=2, num_adversaries=4).agents == [
        "adversary_0", "adversary_1", "adversary_2", "adversary_3", "agent_0", "agent_1"]
    assert make_env(NAME_ADVERSARY, 1, N=3).agents == ["adversary_0", "agent_0", "agent_1", "agent_2"]
    for name, kwargs in [(NAME_TAG, {"curriculum": True}), (NAME_TAG, {"N": 3}),
                         (NAME_ADVERSARY, {"num_agent_neighbors": 1}), (NAME_PUSH, {"N": 2})]:
        with pytest.raises(EnvError, match="bad env kwargs"):
            make_env(name, 2, **kwargs)
    for name, kwargs, match in [
        (NAME_TAG, {"num_good": 0}, "num_good"), (NAME_TAG, {"num_obstacles": -1}, "num_obstacles"),
        (NAME_TAG, {"num_adversaries": 1.5}, "num_adversaries"), (NAME_ADVERSARY, {"N": 0}, "N must"),
        (NAME_PUSH, {"max_cycles": 0}, "max_cycles"),
    ]:
        with pytest.raises(EnvError, match=match):
            make_env(name, 2, **kwargs)
    with pytest.raises(RegistryError) as e:
        make_env("mpe-fast/simple_tagg_v3", 1)
    assert NAME_TAG in str(e.value)


def test_maddpg_runs_on_fast_tag(tmp_path):
    """MADDPG (torch) trains on mpe-fast simple_tag for 2000 env steps (a smoke run, no learning claim)."""
    require("torch")
    import xmarl

    ov = {"train.steps": 2000, "train.num_envs": 16, "train.eval_interval": 2000, "train.eval_episodes": 4,
          "train.tensorboard": False, "maddpg.warmup_steps": 500, "maddpg.batch_size": 64, "maddpg.update_every": 100}
    res = xmarl.run("maddpg", "torch", NAME_TAG, out_dir=tmp_path, progress=False, overrides=ov)
    m = res.final_metrics
    assert m["steps"] == 2000 and m["updates"] > 0 and np.isfinite(m["train_return"]) and np.isfinite(m["eval_return"])
