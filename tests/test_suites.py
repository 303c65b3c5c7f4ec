"""The benchmark suites' adapters: LBF and RWARE (the gymnasium tuple-space adapter), VMAS (batched
torch worlds) and MAgent2 (the PettingZoo adapter with dying agents). Spaces, seeds, episode ends
and ``final_obs``, agreement with each package stepped directly (same seeds, same actions), the
errors of a missing package, and a short training run per suite. A suite whose package is absent
is skipped (a failure under XMARL_REQUIRE_BACKENDS=1, as CI installs them with ``.[test]``)."""

from __future__ import annotations

import importlib.util
import json
import sys
import warnings
from pathlib import Path

import gymnasium
import numpy as np
import pytest
from gymnasium import spaces

import xmarl
from tests.conftest import require, require_module
from xmarl import registry
from xmarl.envs import make_env
from xmarl.envs.gym_tuple import GymTupleVectorEnv
from xmarl.errors import BackendNotInstalledError, EnvError

LBF = ("lbforaging", "pip install 'xmarl[lbf]'")
RWARE = ("rware", "pip install 'xmarl[rware]'")
VMAS = ("vmas", "pip install 'xmarl[vmas]'")
MAGENT = ("magent2", "pip install 'xmarl[magent]'")
#: each suite with its package and the env_kwargs giving a 10-step episode (never terminated early
#: by random actions: navigation's agents do not all reach their goals in 10 steps)
EPISODE_10 = [
    ("lbf/Foraging-8x8-2p-3f", LBF, {"max_episode_steps": 10}),
    ("rware/rware-tiny-2ag", RWARE, {"max_steps": 10}),
    ("vmas/navigation", VMAS, {"max_steps": 10}),
    ("magent/battle_v4", MAGENT, {"max_cycles": 10}),
]
SMOKE = {"train.steps": 160, "train.num_envs": 4, "train.eval_interval": 160, "train.eval_episodes": 2,
         "train.log_interval": 80, "train.checkpoint_interval": 1000000, "train.tensorboard": False,
         "train.progress": False}


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """VMAS's small tensor ops crawl on two contended threads (the trainer sets one as well)."""
    if importlib.util.find_spec("torch") is None:
        yield
        return
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _steps(env, actions):
    """Step ``env`` with each of ``actions``; the list of its ``(obs, final, rew, term, done)``."""
    return [env.step(a) for a in actions]


# -- the tuple-space adapter on its own (no package needed) ----------------------------------------

class _TupleGame(gymnasium.Env):
    """Three agents observing 2, 3 and 3 values (their ids times 10 plus the step, agent 0 plus a
    seeded offset), with 2, 3 and 3 actions and action masks in ``info``. Agent 1 terminates at
    step 2 while the others go on; everyone terminates at step 4. Rewards: 1, 2 and agent 2's action."""

    MASK = [[1, 1], [1, 0, 1], [0, 1, 1]]

    def __init__(self) -> None:
        box = [spaces.Box(-np.inf, np.inf, (d,), np.float32) for d in (2, 3, 3)]
        self.observation_space = spaces.Tuple(box)
        self.action_space = spaces.Tuple([spaces.Discrete(2), spaces.Discrete(3), spaces.Discrete(3)])
        self.t, self.offset = 0, 0.0

    def _obs(self):
        return tuple(np.full(d, 10 * i + self.t + (self.offset if i == 0 else 0.0), np.float32)
                     for i, d in enumerate((2, 3, 3)))

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.offset = 0, float(self.np_random.random())
        return self._obs(), {"action_mask": self.MASK}

    def step(self, actions):
        assert all(type(a) is int for a in actions)  # Python ints, as LBF's Action(a) needs
        self.t += 1
        return self._obs(), [1.0, 2.0, float(actions[2])], [self.t >= 4, self.t >= 2, self.t >= 4], False, \
            {"action_mask": self.MASK}


def test_tuple_adapter_pads_ragged_agents_keeps_masks_and_an_agent_that_leaves_early():
    env = GymTupleVectorEnv(_TupleGame, 2, name="tuple")
    assert env.agents == ["agent_0", "agent_1", "agent_2"]
    assert env.spec.obs_dims == (2, 3, 3) and env.spec.act_dims == (2, 3, 3) and env.spec.discrete
    obs = env.reset(seed=4)
    assert obs.shape == (2, 3, 3) and obs.dtype == np.float32
    assert np.all(obs[:, 0, 2] == 0) and np.all(obs[:, 1] == 10) and np.all(obs[:, 2] == 20)  # padding zero
    assert obs[0, 0, 0] != obs[1, 0, 0]  # copy i seeded with seed + i
    np.testing.assert_array_equal(GymTupleVectorEnv(_TupleGame, 2).reset(seed=4), obs)
    np.testing.assert_array_equal(env.avail_actions()[0], [[1, 1, 0], [1, 0, 1], [0, 1, 1]])
    act = np.array([[0, 2, 1], [1, 0, 2]])

    _, final, rew, term, done = env.step(act)  # step 1: everyone in
    np.testing.assert_array_equal(rew, [[1, 2, 1], [1, 2, 2]])
    assert not term.any() and not done.any() and env.alive() is None and env.final_alive() is None

    obs, final, rew, term, done = env.step(act)  # step 2: agent 1 terminates, the episode goes on
    np.testing.assert_array_equal(term, [[0, 1, 0]] * 2)
    assert not done.any() and np.all(final[:, 1] == 12)  # its true last observation
    np.testing.assert_array_equal(env.final_alive(), [[1, 0, 1]] * 2)
    np.testing.assert_array_equal(env.alive(), [[1, 0, 1]] * 2)
    assert np.all(obs[:, 1] == 0) and np.all(obs[:, 2] == 22)

    obs, final, rew, term, done = env.step(act)  # step 3: its slot holds zeros
    assert np.all(final[:, 1] == 0) and np.all(rew[:, 1] == 0) and np.all(term[:, 1] == 0)
    assert np.all(rew[:, 2] == [1, 2])

    obs, final, rew, term, done = env.step(act)  # step 4: the others terminate, the episode ends
    assert done.all() and np.all(term == [[1, 0, 1]])
    np.testing.assert_array_equal(env.final_alive(), np.zeros((2, 3)))
    assert np.all(final[:, 2] == 24) and np.all(obs[:, 2] == 20) and np.all(obs[:, 1] == 10)  # reset in place
    assert env.alive() is None or env.alive().all()  # a new episode: everyone back
    assert env.completed_lengths == [4, 4]
    np.testing.assert_allclose(env.completed_returns, [(4 + 4 + 4 * 1) / 3, (4 + 4 + 4 * 2) / 3])


def test_tuple_adapter_rejects_what_it_cannot_carry():
    class Dict(_TupleGame):
        def __init__(self):
            super().__init__()
            self.observation_space = spaces.Dict({"a": spaces.Box(0, 1, (2,))})

    with pytest.raises(EnvError, match="must be Tuple spaces with one entry per agent"):
        GymTupleVectorEnv(Dict, 1, name="dict")
    env = GymTupleVectorEnv(_TupleGame, 1, name="tuple")
    env.reset(seed=0)
    with pytest.raises(EnvError, match=r"discrete actions must have shape \(1, 3\)"):
        env.step(np.zeros((1, 2), np.int64))


@pytest.mark.parametrize("name,module,kwargs", [
    ("lbf/Foraging-8x8-2p-3f", "lbforaging", {}), ("rware/rware-tiny-2ag", "rware", {}),
    ("vmas/navigation", "vmas", {}), ("magent/battle_v4", "magent2.environments.battle_v4", {}),
])
def test_a_missing_package_names_its_extra(name, module, kwargs, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)  # what `import module` meets when it is not installed
    extra = name.split("/")[0]
    with pytest.raises(BackendNotInstalledError, match=rf"pip install 'xmarl\[{extra}\]'"):
        make_env(name, 1, **kwargs)
    if name.startswith(("lbf", "rware", "vmas")):  # their kind "env" entry says so too
        with pytest.raises(BackendNotInstalledError, match=rf"pip install 'xmarl\[{extra}\]'"):
            registry.get("env", name)()


# -- every suite --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,package,kwargs", EPISODE_10)
def test_an_episode_of_random_actions_runs_to_its_truncation(name, package, kwargs):
    """Ten steps then a truncation in every copy: ``done`` exactly then, no termination, the true
    last observation in ``final_obs`` and a new episode in ``obs``, lengths recorded."""
    require_module(*package)
    env = make_env(name, 3, **kwargs)
    obs0 = env.reset(seed=0)
    assert obs0.shape == (3, env.spec.n_agents, env.spec.obs_dim) and obs0.dtype == np.float32
    rng = np.random.default_rng(1)
    prev = obs0
    for t in range(1, 11):
        obs, final, rew, term, done = env.step(env.sample_actions(rng))
        assert rew.shape == term.shape == (3, env.spec.n_agents) and done.shape == (3,)
        assert rew.dtype == term.dtype == np.float32 and done.dtype == bool
        assert done.all() if t == 10 else not done.any()
        assert not term.any()
        if t < 10:
            np.testing.assert_array_equal(obs, final)
            assert not np.array_equal(final, prev)  # the world moved
        prev = obs
    assert env.completed_lengths == [10, 10, 10]
    assert not np.array_equal(obs, final)  # obs is the new episode's first
    if name.startswith("magent"):  # battle's map is drawn the same way every episode
        np.testing.assert_array_equal(obs, obs0)
    *_, done = env.step(env.sample_actions(rng))
    assert not done.any()  # the new episodes go on


@pytest.mark.parametrize("name,package,kwargs", EPISODE_10)
def test_reset_seed_reproduces_an_episode(name, package, kwargs):
    require_module(*package)
    a, b = make_env(name, 2, **kwargs), make_env(name, 2, **kwargs)
    rng = np.random.default_rng(0)
    acts = [a.sample_actions(rng) for _ in range(12)]  # across the end of the episode
    out_a = [a.reset(seed=5)] + [x for s in _steps(a, acts) for x in s]
    out_b = [b.reset(seed=5)] + [x for s in _steps(b, acts) for x in s]
    for x, y in zip(out_a, out_b):
        np.testing.assert_array_equal(x, y)


# -- LBF and RWARE ------------------------------------------------------------------------------------

def test_lbf_and_rware_names_spaces_and_versions():
    require_module(*LBF)
    require_module(*RWARE)
    for name, gym_id in [("lbf/Foraging-8x8-2p-3f", "Foraging-8x8-2p-3f-v3"),
                         ("rware/rware-tiny-2ag", "rware-tiny-2ag-v2")]:
        env, versioned = make_env(name, 2), make_env(f"{name}-{gym_id.rsplit('-', 1)[1]}", 2)
        raw = gymnasium.make(gym_id, disable_env_checker=True)
        assert isinstance(env, GymTupleVectorEnv)
        assert (env.spec.obs_dims, env.spec.act_dims) == (versioned.spec.obs_dims, versioned.spec.act_dims)
        np.testing.assert_array_equal(env.reset(seed=2), versioned.reset(seed=2))  # the same env
        assert env.agents == ["agent_0", "agent_1"] and env.spec.discrete
        assert env.spec.act_dims == tuple(sp.n for sp in raw.action_space.spaces)
        assert env.spec.obs_dims == tuple(sp.shape[0] for sp in raw.observation_space.spaces)
        assert env.reset(seed=0).shape == (2, 2, env.spec.obs_dim)
        assert env.avail_actions() is None  # neither package reports masks; none are invented
        with pytest.raises(EnvError, match="tuple-space env, built by xmarl.envs.make_env"):
            registry.get("env", name)()  # not a PettingZoo env: its kind "env" entry explains


def _field_empty(raw) -> bool:
    return bool(raw.unwrapped.field.sum() == 0)


@pytest.mark.parametrize("name,gym_id,package,raw_kwargs,ours_kwargs,ended,steps", [
    # LBF's small task: random agents collect the food (a termination) in some episodes, others run
    # to the 50-step limit (a truncation, which the package itself reports as terminated)
    ("lbf/Foraging-5x5-2p-1f", "Foraging-5x5-2p-1f-v3", LBF, {}, {}, _field_empty, 160),
    ("rware/rware-tiny-2ag", "rware-tiny-2ag-v2", RWARE, {"max_steps": 20}, {"max_steps": 20}, lambda raw: False, 50),
])
def test_gym_tuple_suites_agree_with_the_package_stepped_directly(name, gym_id, package, raw_kwargs, ours_kwargs,
                                                                  ended, steps):
    """Same seeds, same actions: observations, rewards and episode ends are the package's own,
    auto-reset included; ``terminated`` is set only where the task ended, not at the time limit."""
    require_module(*package)
    E = 2
    env = make_env(name, E, **ours_kwargs)
    raws = [gymnasium.make(gym_id, disable_env_checker=True, **raw_kwargs) for _ in range(E)]
    obs = env.reset(seed=7)
    for e, raw in enumerate(raws):
        np.testing.assert_array_equal(obs[e], np.asarray(raw.reset(seed=7 + e)[0]))
    rng = np.random.default_rng(0)
    kinds = set()
    for _ in range(steps):
        acts = env.sample_actions(rng)
        obs, final, rew, term, done = env.step(acts)
        for e, raw in enumerate(raws):
            o, r, d, tr, _ = raw.step(tuple(acts[e].tolist()))
            np.testing.assert_array_equal(final[e], np.asarray(o))
            np.testing.assert_allclose(rew[e], r, rtol=1e-6)
            assert done[e] == (d or tr)
            assert (term[e] == 1).all() == (d and ended(raw)) and (term[e] == term[e, 0]).all()
            if d or tr:
                kinds.add("terminated" if term[e, 0] else "truncated")
                np.testing.assert_array_equal(obs[e], np.asarray(raw.reset()[0]))  # the next episode's first
            else:
                np.testing.assert_array_equal(obs[e], final[e])
    assert "truncated" in kinds and ("terminated" in kinds or name.startswith("rware"))


# gymnasium's check_env warns about these, by design of tuple-space multi-agent envs: rewards are one
# per agent (a list), RWARE's observation boxes are unbounded, and the env checked is a wrapped one
CHECK_ENV_WARNINGS = ("The reward returned by `step()` must be a float", "is different from the unwrapped version",
                      "observation space minimum value is -infinity", "observation space maximum value is infinity")


@pytest.mark.parametrize("name,package", [("lbf/Foraging-8x8-2p-3f", LBF), ("lbf/Foraging-10x10-3p-3f", LBF),
                                          ("rware/rware-tiny-2ag", RWARE)])
def test_lbf_and_rware_copies_as_xmarl_makes_them_pass_gymnasium_check_env(name, package):
    """Each copy the adapter steps (the package's env with xmarl's time limit, and LBF's
    :class:`~xmarl.envs.gym_tuple.LbfSeededReset`) passes gymnasium's env checker: spaces, reset
    and step signatures, seeded resets and steps deterministic. Only the warnings above are
    raised; rendering is not checked (both packages draw with pyglet, which needs a display)."""
    require_module(*package)
    from gymnasium.utils.env_checker import check_env

    env = make_env(name, 1).envs[0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, skip_render_check=True)
    unexpected = [str(w.message) for w in caught if not any(k in str(w.message) for k in CHECK_ENV_WARNINGS)]
    assert unexpected == []


def test_lbf_itself_fails_check_env_and_xmarl_seeded_resets_are_a_fresh_envs():
    """lbforaging 2.0.0 fails gymnasium's checker: ``spawn_players`` keeps players off the cells of
    the previous episode's players, so a seeded reset depends on what was played before (if this
    no longer raises, lbforaging fixed it and ``LbfSeededReset`` can go). What xmarl controls: the
    adapter's ``reset(seed)`` after play gives a fresh env's observations in every copy (about one
    reset in ten differed before ``LbfSeededReset``), so every evaluation, and a resumed run's,
    plays the episodes its seed names."""
    require_module(*LBF)
    from gymnasium.utils.env_checker import check_env

    raw = gymnasium.make("Foraging-8x8-2p-3f-v3", disable_env_checker=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(AssertionError, match="np_random"):
            check_env(raw.unwrapped, skip_render_check=True)
    played, fresh = make_env("lbf/Foraging-8x8-2p-3f", 8), make_env("lbf/Foraging-8x8-2p-3f", 8)
    played.reset(seed=1000)
    rng = np.random.default_rng(0)
    for seed in range(0, 240, 8):
        for _ in range(7):
            played.step(played.sample_actions(rng))
        np.testing.assert_array_equal(played.reset(seed=seed), fresh.reset(seed=seed), err_msg=f"seed {seed}")


# -- VMAS ---------------------------------------------------------------------------------------------

def test_vmas_spaces_continuous_by_default_and_discrete_if_asked():
    require_module(*VMAS)
    from xmarl.envs.vmas import VmasVectorEnv

    env = make_env("vmas/navigation", 3)
    assert isinstance(env, VmasVectorEnv) and env.env.num_envs == 3  # one batched VMAS env
    assert env.agents == ["agent_0", "agent_1", "agent_2", "agent_3"] and env.spec.action_kind == "continuous"
    assert env.spec.act_dims == (2,) * 4 and env.spec.obs_dims == (18,) * 4
    np.testing.assert_array_equal(env.spec.low, -np.ones((4, 2)))
    np.testing.assert_array_equal(env.spec.high, np.ones((4, 2)))
    assert env.reset(seed=0).shape == (3, 4, 18)
    disc = make_env("vmas/balance", 2, continuous_actions=False, n_agents=2)
    assert disc.spec.discrete and disc.spec.act_dims == (9, 9) and disc.agents == ["agent_0", "agent_1"]
    *_, done = disc.step(disc.sample_actions(np.random.default_rng(0)))
    assert done.shape == (2,)
    with pytest.raises(EnvError, match="discrete actions of agent 'agent_1' must be in 0..8"):
        disc.step(np.array([[0, 9], [0, 0]]))


def _raw_vmas(scenario, E, seed, acts, max_steps):
    """VMAS stepped directly with ``acts``, resetting ended worlds as the adapter does (one batched
    reset when all ended, else ``reset_at`` in index order); ``(obs, final, rew, term, done)`` per step."""
    import torch
    import vmas

    raw = vmas.make_env(scenario, num_envs=E, device="cpu", continuous_actions=True, max_steps=max_steps,
                        seed=seed, terminated_truncated=True, clamp_actions=True)
    raw.reset(seed=seed)
    out = []
    for a in acts:
        o, r, te, tr, _ = raw.step([torch.from_numpy(a[:, i]) for i in range(a.shape[1])])
        final = torch.stack(o, 1).numpy()
        done = (te | tr).numpy()
        nxt = final
        if done.all():
            nxt = torch.stack(raw.reset(), 1).numpy()
        elif done.any():
            for i in np.flatnonzero(done):
                raw.reset_at(int(i), return_observations=False)
            nxt = torch.stack(raw.get_from_scenario(True, False, False, False)[0], 1).numpy()
        out.append((nxt, final, torch.stack(r, 1).numpy(), te.numpy(), done))
    return out


def test_vmas_agrees_with_vmas_stepped_directly_through_partial_resets():
    """balance with random forces: packages fall (a termination) at different steps in different
    worlds, so ended worlds are reset one by one while the others go on; everything is VMAS's own."""
    require_module(*VMAS)
    E, T = 4, 150
    env = make_env("vmas/balance", E)  # the default horizon, 100 steps
    rng = np.random.default_rng(0)
    acts = [env.sample_actions(rng) for _ in range(T)]
    env.reset(seed=3)
    ours = _steps(env, acts)
    # after ours, not interleaved: VMAS's random stream is shared by its envs; reset(seed) restarts it
    direct = _raw_vmas("balance", E, 3, acts, 100)
    partial = 0
    for (obs, final, rew, term, done), (r_obs, r_final, r_rew, r_term, r_done) in zip(ours, direct):
        np.testing.assert_array_equal(final, r_final)
        np.testing.assert_array_equal(obs, r_obs)
        np.testing.assert_array_equal(rew, r_rew)
        np.testing.assert_array_equal(term, np.repeat(r_term[:, None], 3, 1).astype(np.float32))
        np.testing.assert_array_equal(done, r_done)
        np.testing.assert_array_equal(obs[~done], final[~done])
        assert not np.array_equal(obs[done], final[done]) or not done.any()
        partial += bool(done.any() and not done.all())
    assert partial >= 2 and any(s[3].any() for s in ours)  # worlds reset alone, after terminations
    assert len(env.completed_lengths) >= E and max(env.completed_lengths) <= 100


def test_vmas_worlds_stepped_together_match_one_world_stepped_alone():
    """navigation's dynamics are deterministic: each of 3 batched worlds, copied into an env of one
    world (entity states and the reward's shaping memory), then stepped alone with its actions,
    gives the same observations, rewards and ends, step for step."""
    require_module(*VMAS)
    E = 3
    big = make_env("vmas/navigation", E)
    big.reset(seed=0)
    rng = np.random.default_rng(0)
    acts = [big.sample_actions(rng) for _ in range(15)]
    alone = []
    for e in range(E):
        one = make_env("vmas/navigation", 1)
        one.reset(seed=10 + e)
        for src, dst in zip(big.env.world.entities, one.env.world.entities):  # agents, then goals
            for k in ("pos", "vel", "rot", "ang_vel"):
                getattr(dst.state, k)[0] = getattr(src.state, k)[e]
        for src, dst in zip(big.env.world.agents, one.env.world.agents):
            dst.pos_shaping[0] = src.pos_shaping[e]
        alone.append(one)
    for a in acts:
        _, final, rew, term, done = big.step(a)
        for e, one in enumerate(alone):
            _, f, r, te, d = one.step(a[e: e + 1])
            np.testing.assert_array_equal(f[0], final[e])
            np.testing.assert_array_equal(r[0], rew[e])
            assert te[0, 0] == term[e, 0] and d[0] == done[e]
    assert not np.array_equal(final[0], final[1])  # the worlds differ


def test_vmas_worlds_are_independent_in_the_batch():
    """Changing world 0's actions changes world 0 only: the batch never mixes worlds (across the
    batched reset at the shared horizon too)."""
    require_module(*VMAS)
    env = make_env("vmas/navigation", 3, max_steps=6)
    rng = np.random.default_rng(0)
    acts = [env.sample_actions(rng) for _ in range(9)]
    other = [a.copy() for a in acts]
    for a in other:
        a[0] = -a[0]
    env.reset(seed=1)
    base = _steps(env, acts)
    env.reset(seed=1)
    changed = _steps(env, other)
    for t, (x, y) in enumerate(zip(base, changed)):
        for u, v in zip(x, y):
            np.testing.assert_array_equal(u[1:], v[1:])
        if t < 6:
            assert not np.array_equal(x[1][0], y[1][0])  # world 0's final observations differ


# -- MAgent2 ------------------------------------------------------------------------------------------

def _battle_actions(t: int, rng: np.random.Generator, n: int = 2) -> np.ndarray:
    """``[1, 2n]``: the red agents walk right and the blue ones left until they meet, then everyone
    attacks a random neighbouring cell (battle's actions 13..20), so that agents die."""
    if t < 5:
        return np.array([[7] * n + [5 if t < 4 else 6] * n])
    return rng.integers(13, 21, size=(1, 2 * n))


def test_magent_battle_spaces_are_flattened_and_pass_pettingzoo_api_test():
    magent = require_module("magent2.environments.battle_v4", MAGENT[1])
    from pettingzoo.test import parallel_api_test, parallel_seed_test

    from xmarl.envs import VectorEnv
    from xmarl.envs.magent import MagentVectorEnv

    env = make_env("magent/battle_v4", 2)
    assert isinstance(env, MagentVectorEnv) and env.teams == ["red", "blue"]
    assert env.agents == ["red_0", "red_1", "blue_0", "blue_1"]  # the small default map: two a team
    assert env.spec.obs_dims == (13 * 13 * 5,) * 4 and env.spec.act_dims == (21,) * 4
    with pytest.raises(EnvError, match="flat Box"):  # why the adapter flattens the [H, W, C] spaces
        VectorEnv(lambda: magent.parallel_env(map_size=12), 1)
    assert make_env("magent/battle_v4", 1, map_size=16).spec.n_agents == 12
    with pytest.raises(EnvError, match="at least 12"):
        make_env("magent/battle_v4", 1, map_size=8)
    parallel_api_test(registry.get("env", "magent/battle_v4")(max_cycles=20), num_cycles=30)
    # seeded spaces and resets reproduce an episode (magent2's own env passes both tests as well)
    parallel_seed_test(lambda: registry.get("env", "magent/battle_v4")(max_cycles=20), num_cycles=30)


def test_magent_agents_that_die_keep_their_slot_and_agree_with_magent2():
    """Scripted fights on the small map, next to magent2's own env with the same seed and actions:
    a dead agent's last observation and reward arrive at the step it dies, then its slot holds
    zeros with alive 0; kills and deaths per team are the env's."""
    magent = require_module("magent2.environments.battle_v4", MAGENT[1])
    env = make_env("magent/battle_v4", 1)
    raw = magent.parallel_env(map_size=12, max_cycles=200)
    idx = {a: i for i, a in enumerate(env.agents)}
    obs = env.reset(seed=1)
    r_obs, _ = raw.reset(seed=1)
    np.testing.assert_array_equal(obs[0], np.stack([r_obs[a].ravel() for a in env.agents]))
    rng = np.random.default_rng(0)
    deaths = 0
    for t in range(200):
        acts = _battle_actions(t, rng)
        before = set(raw.agents)
        obs, final, rew, term, done = env.step(acts)
        r_obs, r_rew, r_term, r_trunc, _ = raw.step({a: int(acts[0, idx[a]]) for a in raw.agents})
        for a in env.agents:
            i = idx[a]
            if a in r_obs:
                np.testing.assert_array_equal(final[0, i], r_obs[a].ravel())
                assert rew[0, i] == np.float32(r_rew[a]) and term[0, i] == r_term[a]
            else:  # died earlier: zeros
                assert not final[0, i].any() and rew[0, i] == 0 and term[0, i] == 0
        assert done[0] == (not raw.agents)
        if done[0]:
            break
        np.testing.assert_array_equal(env.alive()[0] if env.alive() is not None else np.ones(4),
                                      [a in raw.agents for a in env.agents])
        dead = before - set(raw.agents)
        m = env.step_measures()
        for team, other in (("red", "blue"), ("blue", "red")):
            n_dead = sum(a.startswith(team) for a in dead)
            assert m[f"deaths_{team}"][0] == n_dead and m[f"kills_{other}"][0] == n_dead
            assert m[f"wins_{team}"][0] == 0  # no episode ended
        for a in dead:
            assert env.final_alive()[0, idx[a]] == 0 and term[0, idx[a]] == 1 and not obs[0, idx[a]].any()
        deaths += len(dead)
        if deaths >= 2 and t > 40:
            break
    assert deaths >= 2, "the scripted fight killed nobody"


# -- training, one short run per suite ----------------------------------------------------------------

@pytest.mark.parametrize("method,env,package,ov", [
    ("coma", "lbf/Foraging-8x8-2p-3f", LBF, {"env_kwargs": {"max_episode_steps": 20}, "coma.batch_episodes": 4}),
    ("coma", "rware/rware-tiny-2ag", RWARE, {"env_kwargs": {"max_steps": 20}, "coma.batch_episodes": 4}),
    ("maddpg", "vmas/navigation", VMAS, {"env_kwargs": {"max_steps": 20}, "maddpg.warmup_steps": 40,
                                         "maddpg.batch_size": 32, "maddpg.update_every": 40}),
    ("commnet", "magent/battle_v4", MAGENT, {"env_kwargs": {"max_cycles": 20}, "commnet.batch_episodes": 4}),
])
def test_each_suite_trains(method, env, package, ov, out_dir):
    """A few updates on each suite end to end (env, buffer, learner, evaluation); evaluation runs
    whole 20-step episodes (rware and battle at this map never end sooner) and reports the env's
    measures (battle: kills and wins per team)."""
    require("torch")
    require_module(*package)
    res = xmarl.run(method=method, backend="torch", env=env, out_dir=out_dir, overrides={**SMOKE, **ov})
    m = res.final_metrics
    assert m["steps"] == 160 and m["updates"] > 0 and np.isfinite(m["eval_return"])
    assert 0 < m["eval_length"] <= 20
    if env.startswith(("rware", "magent")):
        assert m["eval_length"] == 20
    if env.startswith("magent"):
        assert {"eval_kills_red", "eval_wins_blue", "eval_deaths_red"} <= set(m)
        assert m["eval_kills_red"] == m["eval_deaths_blue"]


# -- the suites' benchmark scripts (benchmarks/suites.py, benchmarks/suite_speed.py) -------------------

def _benchmark(name: str):
    """``benchmarks/<name>.py`` as a module."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"{name}_benchmark", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # (dataclasses look their module up)
    spec.loader.exec_module(mod)
    return mod


def test_every_suites_candidate_is_a_valid_config_and_names_its_source():
    """Each task x method's candidate settings load through xmarl's config schema (a typo in a key
    fails here, not an hour into a recording) and fit the budget's bookkeeping."""
    suites = _benchmark("suites")
    assert {t for t, _ in suites.cells()} == set(suites.TASKS)
    for task, method in suites.cells():
        ov = suites.settings(task, method)
        cfg = xmarl.load_config(method=method, env=suites.TASKS[task].env, overrides=ov)
        assert cfg.train.steps == suites.CANDIDATES[task][method].steps
        assert cfg.train.eval_interval <= cfg.train.steps and suites.CANDIDATES[task][method].source
        assert suites.TASKS[task].published[method]  # what is known of the published figure, even "none"
    smoke = suites.settings("rware/rware-tiny-2ag", "maddpg", steps=300, sets={"maddpg.batch_size": 16}, horizon=20)
    assert smoke["train.steps"] == smoke["train.eval_interval"] == 300 and smoke["maddpg.batch_size"] == 16
    assert smoke["env_kwargs"] == {"max_steps": 20}


def test_suites_late_gain_and_returns_over_agents():
    suites = _benchmark("suites")
    assert suites.late_gain([[0, 0.0], [50, 1.0], [75, 2.0], [100, 5.0]]) == 3.0
    assert suites.late_gain([[100, 5.0]]) is None
    lbf, battle = suites.TASKS["lbf/Foraging-10x10-3p-3f"], suites.TASKS["magent/battle_v4"]
    agents = ["agent_0", "agent_1", "agent_2"]
    assert suites.aggregate_row(lbf, {"eval_return": 0.1}, agents) == pytest.approx(0.3)  # summed, as EPyMARL
    assert suites.aggregate(lbf, dict(zip(agents, [0.1, 0.2, 0.3]))) == pytest.approx(0.6)
    team = {"red_0": 1.0, "red_1": 3.0, "blue_0": -5.0}
    assert suites.aggregate(battle, team) == 2.0  # the learning team's mean; blue is not counted
    assert suites.aggregate_row(battle, {"eval_return": -9.0, "eval_return/red": 2.0}, list(team)) == 2.0


def test_suites_benchmark_runs_end_to_end_resumes_and_keeps_the_recorded_table_clean(tmp_path, monkeypatch):
    """Tiny budgets, one seed, torch: LBF with COMA and the MAgent2 battle with CommNet (red learns,
    blue random) run as separate processes and are recorded with the aggregated return, random
    play on the same episodes, the curve, kills and the published notes; a second invocation keeps
    both runs (nothing re-runs); smoke settings cannot overwrite the recorded table."""
    require("torch")
    require_module(*LBF)
    require_module(*MAGENT)
    suites = _benchmark("suites")
    out = tmp_path / "suites"
    argv = ["--tasks", "lbf/Foraging-8x8-2p-3f", "magent/battle_v4", "--methods", "coma", "commnet", "--seeds", "0",
            "--steps", "400", "--horizon", "20", "--set", "commnet.batch_episodes=8", "--out", str(out)]
    suites.main(argv)
    runs = {(r["task"], r["method"]): r for r in json.loads(out.with_suffix(".json").read_text())["runs"]}
    assert set(runs) == {("lbf/Foraging-8x8-2p-3f", "coma"), ("magent/battle_v4", "commnet")}
    lbf, battle = runs["lbf/Foraging-8x8-2p-3f", "coma"], runs["magent/battle_v4", "commnet"]
    for r in (lbf, battle):
        assert r["steps"] == 400 and r["final"]["updates"] > 0 and r["curve"][-1] == [400, r["return"]]
        assert r["eval_length"] == r["random_length"] == 20  # both on 20-step episodes
    assert lbf["settings"]["env_kwargs"] == {"max_episode_steps": 20}
    assert lbf["return"] == pytest.approx(sum(lbf["agent_returns"].values()))  # summed over the two agents
    assert lbf["random_return"] == pytest.approx(sum(lbf["random_agent_returns"].values()))
    assert battle["team_size"] == 12 and battle["return"] == pytest.approx(battle["final"]["eval_return/red"])
    reds = [v for a, v in battle["random_agent_returns"].items() if a.startswith("red_")]
    assert battle["random_return"] == pytest.approx(sum(reds) / 12)
    assert battle["measures"]["kills"] == battle["final"]["eval_kills_red"] and "wins" in battle["random_measures"]
    md = out.with_suffix(".md").read_text()
    assert "not one of EPyMARL's benchmark tasks" in md and "no published win rate" in md and "| 12 | 1 |" in md
    before = out.with_suffix(".json").read_text()

    def no_run(*args, **kwargs):
        raise AssertionError("a recorded run was run again")

    monkeypatch.setattr(suites.subprocess, "run", no_run)
    suites.main(argv)  # resumed: both kept
    assert json.loads(out.with_suffix(".json").read_text())["runs"] == json.loads(before)["runs"]
    with pytest.raises(SystemExit, match="--out away from the recorded table"):
        suites.main(["--steps", "400"])


def test_suite_speed_alone_measures_each_num_envs_beside_the_package_and_keeps_other_rows(tmp_path):
    require_module(*LBF)
    require_module(*RWARE)
    speed = _benchmark("suite_speed")
    out = tmp_path / "speed"
    common = ["--part", "alone", "--seconds", "0.05", "--repeats", "1", "--out", str(out)]
    speed.main(["--tasks", "lbf/Foraging-8x8-2p-3f", *common])
    speed.main(["--tasks", "rware/rware-tiny-2ag", *common])  # keeps LBF's rows
    rows = json.loads(out.with_suffix(".json").read_text())["rows"]
    got = [(r["task"], r["how"], r["num_envs"]) for r in rows]
    for task in ("lbf/Foraging-8x8-2p-3f", "rware/rware-tiny-2ag"):
        assert [g[1:] for g in got if g[0] == task] == [("directly", 1), ("xmarl", 1), ("xmarl", 16), ("xmarl", 64)]
    assert all(r["steps_per_sec"] > 0 for r in rows)
    md = out.with_suffix(".md").read_text()
    assert "| rware/rware-tiny-2ag | max_steps=500 | xmarl `make_env` | 64 |" in md
    assert "then `python benchmarks/suite_speed.py" in md  # both commands recorded
