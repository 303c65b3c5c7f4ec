"""The PettingZoo adapter and vector env: shapes, padding, auto-reset, seeding, bad envs; every
vectorised env implements :class:`VectorEnvBase` and shares its returns bookkeeping; every
built-in PettingZoo env passes PettingZoo's own API and seed tests."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from gymnasium import spaces
from pettingzoo import ParallelEnv

import xmarl
from tests.conftest import require
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


# -- PettingZoo's own checks on the built-in PettingZoo envs ---------------------------------------

#: every PettingZoo env of xmarl's own registered under kind "env" (magent/<env>, the wrapped magent2
#: env, is checked in tests/test_suites.py; mpe/<task> are mpe2's), with the variants that change its
#: spaces or its agents: continuous actions, agents that leave early
BUILTIN_PARALLEL = {
    "target": [{}, {"continuous": True}, {"n_agents": 3, "leave_at": [2, 0, 3], "episode_len": 5}],
    "median": [{}],
    "levers": [{"n_pool": 20, "n_agents": 3}],
}


def test_every_builtin_pettingzoo_env_is_checked_below():
    """A new built-in PettingZoo env must join :data:`BUILTIN_PARALLEL` (and so PettingZoo's tests)."""
    own = {name for name in registry.names("env")
           if isinstance(obj := registry.get("env", name), type) and issubclass(obj, ParallelEnv)
           and obj.__module__.startswith("xmarl.")}
    assert own == set(BUILTIN_PARALLEL)


def _same_space_objects(env) -> None:
    """``observation_space(agent)`` and ``action_space(agent)`` return one object per agent, call
    after call: checked for every possible agent, also where ``parallel_api_test`` cannot see it
    (levers' one-step game leaves no agent in ``env.agents`` after a step)."""
    for a in env.possible_agents:
        assert env.observation_space(a) is env.observation_space(a), a
        assert env.action_space(a) is env.action_space(a), a


@pytest.mark.parametrize("name,kwargs", [(n, kw) for n, kws in BUILTIN_PARALLEL.items() for kw in kws])
def test_builtin_pettingzoo_envs_pass_pettingzoo_api_and_seed_tests(name, kwargs):
    """PettingZoo's ``parallel_api_test`` (with its API warnings as failures: an agent given a
    reward after it left, ...) and ``parallel_seed_test`` (seeded spaces and resets reproduce an
    episode). The target game failed both before its spaces were cached: ``observation_space``
    returned a new object per call, so seeding an agent's space did not seed the next sample."""
    from pettingzoo.test import parallel_api_test, parallel_seed_test

    factory = registry.get("env", name)
    _same_space_objects(factory(**kwargs))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parallel_api_test(factory(**kwargs), num_cycles=50)
    assert [str(w.message) for w in caught] == []
    parallel_seed_test(lambda: factory(**kwargs), num_cycles=50)


def test_target_with_action_masks_passes_the_api_test_acting_on_its_masks(monkeypatch):
    """The masked target game raises on a masked action (by design), and ``parallel_api_test``
    samples from ``action_space(agent)`` ignoring masks that are not in a dict observation: run it
    with actions drawn from the masks the game reports in ``infos`` (its seed test draws the same
    way, so it is not run)."""
    from pettingzoo.test import parallel_api_test, parallel_test

    env = TargetGame(n_targets=4, action_masks=True)
    _same_space_objects(env)
    drawn = []

    def masked(par_env, obs, agent):
        mask = par_env._infos()[agent]["action_mask"]
        drawn.append(int(par_env.action_space(agent).sample(mask=mask)))
        assert mask[drawn[-1]] == 1
        return drawn[-1]

    monkeypatch.setattr(parallel_test, "sample_action", masked)
    parallel_api_test(env, num_cycles=50)
    assert len(drawn) >= 20 and len(set(drawn)) == 4


class _FreshSpacesTarget(TargetGame):
    """The target game as it was before its spaces were cached: new space objects on every call."""

    def observation_space(self, agent):
        return spaces.Box(0.0, 1.0, (self.n_targets,), np.float32)

    def action_space(self, agent):
        if self.continuous:
            return spaces.Box(-1.0, 1.0, (self.n_targets,), np.float32)
        return spaces.Discrete(self.n_targets)


def _numbers(res) -> tuple[dict, list[dict]]:
    """A run's final metrics and logged rows, without the wall-clock ones."""
    def keep(row: dict) -> dict:
        return {k: v for k, v in row.items() if not k.startswith("time") and k not in ("wall_time", "steps_per_sec")}
    rows = [keep(json.loads(line)) for line in res.metrics_path.read_text().splitlines()]
    return keep(res.final_metrics), rows


@pytest.mark.parametrize("method,env_kwargs", [
    ("coma", {"action_masks": True, "n_targets": 4}), ("maddpg", {}), ("maddpg", {"continuous": True}),
    ("commnet", {"n_agents": 3, "leave_at": [2, 0, 3]}),
])
def test_cached_spaces_change_no_number_of_a_seeded_run(method, env_kwargs, out_dir):
    """Caching the target game's spaces is an API fix only: a seeded run on it gives the same
    metrics, row for row, as on the game with a new space object per call (both under names with
    no shipped config, so that they run one config)."""
    require("torch")
    ov = {"env_kwargs": env_kwargs, "train.steps": 400, "train.num_envs": 4, "train.eval_interval": 200,
          "train.log_interval": 100, "train.eval_episodes": 4, "train.tensorboard": False, "train.progress": False,
          "train.checkpoint_interval": 100000, "maddpg.warmup_steps": 100, "maddpg.batch_size": 32,
          "maddpg.update_every": 20, "coma.batch_episodes": 4, "commnet.batch_episodes": 4}
    registry.add("env", "test/target_cached", TargetGame)
    registry.add("env", "test/target_fresh", _FreshSpacesTarget)
    try:
        got = [_numbers(xmarl.run(method, "torch", env, out_dir=out_dir / env.split("/")[1], seed=3, overrides=ov))
               for env in ("test/target_cached", "test/target_fresh")]
    finally:
        registry._ENTRIES.pop(("env", "test/target_cached", None))
        registry._ENTRIES.pop(("env", "test/target_fresh", None))
    (final, rows), (final_fresh, rows_fresh) = got
    assert final["updates"] > 0 and len(rows) >= 4
    assert final == final_fresh and rows == rows_fresh
