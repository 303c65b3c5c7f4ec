"""The PettingZoo adapter and vector env: shapes, padding, auto-reset, seeding, bad envs; every
vectorised env implements :class:`VectorEnvBase` and shares its returns bookkeeping."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces

from xmarl import registry
from xmarl.envs import VectorEnvBase, make_env
from xmarl.envs.games import TargetGame
from xmarl.envs.pettingzoo import VectorEnv
from xmarl.envs.snapshot import restore, snapshot
from xmarl.errors import EnvError


@pytest.mark.parametrize("task,n_agents", [
    ("mpe/simple_spread_v3", 3), ("mpe/simple_speaker_listener_v4", 2),
    ("mpe/simple_reference_v3", 2), ("mpe/simple_adversary_v3", 3),
])
@pytest.mark.parametrize("continuous", [False, True])
def test_mpe_tasks_step_as_arrays(task, n_agents, continuous):
    env = make_env(task, 3, continuous_actions=continuous)
    spec = env.spec
    assert spec.n_agents == n_agents and spec.action_kind == ("continuous" if continuous else "discrete")
    obs = env.reset(seed=1)
    assert obs.shape == (3, n_agents, spec.obs_dim) and obs.dtype == np.float32
    # padded observation entries stay zero for smaller agents
    for i, d in enumerate(spec.obs_dims):
        assert np.all(obs[:, i, d:] == 0)
    rng = np.random.default_rng(0)
    for _ in range(30):  # crosses the 25-step episode end
        obs, final, rew, term, done = env.step(env.sample_actions(rng))
        assert rew.shape == (3, n_agents) and term.shape == (3, n_agents) and done.shape == (3,)
    assert len(env.completed_returns) == 3 and env.completed_lengths == [25, 25, 25]


def test_speaker_listener_padding_masks_actions():
    env = make_env("mpe/simple_speaker_listener_v4", 1)
    spec = env.spec
    assert spec.act_dims == (3, 5) and spec.obs_dims == (3, 11)
    np.testing.assert_array_equal(spec.act_mask, [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    acts = env.sample_actions(np.random.default_rng(0))
    assert acts[0, 0] < 3  # the speaker never draws a padded action


def test_final_obs_is_true_next_obs_and_obs_is_reset():
    env = make_env("target", 2, episode_len=2)
    obs0 = env.reset(seed=5)
    env.step(np.zeros((2, 2), int))
    obs, final, rew, term, done = env.step(np.zeros((2, 2), int))
    assert done.all() and not term.any()  # truncation, not termination
    assert np.allclose(final.sum(-1), 1.0) and np.allclose(obs.sum(-1), 1.0)
    assert env.completed_lengths == [2, 2]
    assert obs0.shape == obs.shape


def test_reset_seed_reproduces_and_copies_differ():
    a = make_env("mpe/simple_spread_v3", 2).reset(seed=3)
    b = make_env("mpe/simple_spread_v3", 2).reset(seed=3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a[0], a[1])  # copy i is seeded with seed + i


class _BadObsGame(TargetGame):
    def observation_space(self, agent):
        return spaces.Box(0.0, 1.0, (self.n_targets + 1,), np.float32)


class _DroppingGame(TargetGame):
    def step(self, actions):
        obs, r, te, tr, info = super().step(actions)
        obs.pop(self.possible_agents[0])
        return obs, r, te, tr, info


def test_wrong_observation_shape_is_one_line_error():
    with pytest.raises(EnvError) as e:
        VectorEnv(_BadObsGame, 1, name="bad").reset(seed=0)
    assert "bad: agent 'agent_0' observation has 3 values, its space says 4" == str(e.value)


def test_an_observation_missing_for_an_agent_still_in_the_episode_is_one_line_error():
    """Agents may leave (tests/test_alive.py), but an env that keeps an agent in ``agents`` and
    returns no observation for it is inconsistent: a one-line error naming the agent."""
    env = VectorEnv(_DroppingGame, 1, name="dropper")
    env.reset(seed=0)
    with pytest.raises(EnvError) as e:
        env.step(np.zeros((1, 2), int))
    assert str(e.value).startswith("dropper: step returned no observation for agents ['agent_0']")
    assert "\n" not in str(e.value)


def test_unsupported_action_space():
    class Multi(TargetGame):
        def action_space(self, agent):
            return spaces.MultiDiscrete([2, 2])

    with pytest.raises(EnvError) as e:
        VectorEnv(Multi, 1, name="multi")
    assert "MultiDiscrete" in str(e.value)


# -- the vectorised-env base ----------------------------------------------------------------------

def test_every_vector_env_implements_the_base_which_is_abstract():
    names = registry.names("vector_env")
    assert {"levers", "mpe-fast/simple_spread_v3"} <= set(names)
    for env in [make_env(name, 2) for name in names] + [make_env("target", 2)]:
        assert isinstance(env, VectorEnvBase), env.name
        assert isinstance(env, VectorEnv) == (env.name == "target")  # native envs are not the adapter
        assert env.num_envs == 2 and env.agents == list(env.spec.agents)
    assert isinstance(VectorEnv(TargetGame, 1), VectorEnvBase)
    with pytest.raises(TypeError, match="abstract"):
        VectorEnvBase("base", make_env("target").spec, 1)


@pytest.mark.parametrize("name,kwargs", [
    ("target", {"episode_len": 3}), ("mpe/simple_speaker_listener_v4", {"max_cycles": 2}),
    ("mpe-fast/simple_spread_v3", {"max_cycles": 3}), ("mpe-fast/simple_speaker_listener_v4", {"max_cycles": 4}),
    ("mpe-fast/simple_reference_v3", {"max_cycles": 2}), ("levers", {"n_pool": 12, "n_agents": 3}),
    ("mpe-fast/simple_tag_v3", {"max_cycles": 3}), ("mpe-fast/simple_adversary_v3", {"max_cycles": 2}),
    ("mpe-fast/simple_push_v3", {"max_cycles": 3}),
    ("levers", {"n_pool": 12, "n_agents": 3, "rounds": 3, "leave": 0.5}),
])
def test_completed_returns_and_lengths_are_kept_alike(name, kwargs):
    """Each finished episode adds its per-agent mean return and its length, in copy order; a reset
    restarts the counters; a snapshot taken mid-episode carries on with the same numbers."""
    env = make_env(name, 3, **kwargs)
    rng = np.random.default_rng(0)
    ret, length = np.zeros((3, env.spec.n_agents)), np.zeros(3, np.int64)
    returns, lengths = [], []
    env.reset(seed=1)
    for t in range(10):
        if t == 4:  # mid-episode: drop the partial episodes
            env.reset(seed=2)
            ret[:], length[:] = 0.0, 0
        if t == 6:
            env = restore(snapshot(env))
        *_, rew, _, done = env.step(env.sample_actions(rng))
        ret += rew
        length += 1
        for e in np.flatnonzero(done):
            returns.append(ret[e].mean())
            lengths.append(int(length[e]))
            ret[e], length[e] = 0.0, 0
    assert len(lengths) >= 6 and env.completed_lengths == lengths and env.completed_returns == returns
    assert all(type(x) is float for x in env.completed_returns) and all(type(n) is int for n in lengths)


def test_finished_episodes_kept_are_bounded():
    """A long run finishes millions of levers games: the env keeps only the most recent returns
    (the trainer reads the last 100), so memory and checkpoints do not grow with the run (the
    soak benchmark found resident memory growing 40 % over 5000 CommNet updates before)."""
    from xmarl.envs.base import KEEP_COMPLETED
    from xmarl.envs.levers import Levers

    env = Levers(512, n_pool=20)
    env.reset(seed=0)
    for _ in range(20):  # 10240 one-step games
        _, _, rew, _, _ = env.step(np.zeros((512, 5), np.int64))
    assert KEEP_COMPLETED <= len(env.completed_returns) <= 2 * KEEP_COMPLETED
    assert len(env.completed_lengths) == len(env.completed_returns)
    np.testing.assert_allclose(env.completed_returns[-512:], rew[:, 0])  # the newest are the last game's
