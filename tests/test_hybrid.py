"""Hybrid action spaces ``Tuple((Discrete(n), Box(low, high, (d,))))``: the spec's layout, the
env adapter, numpy action selection, MADDPG's stored actions and relaxed actions in every
backend, learning the built-in ``median`` game, and refusal by methods that do not list them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import yaml
from gymnasium import spaces
from pettingzoo import ParallelEnv

import xmarl
from tests.conftest import BACKENDS
from xmarl import registry
from xmarl.compare.reference.data import parity_spec
from xmarl.compare.reference.maddpg import update_batch as maddpg_batch
from xmarl.config import load_config
from xmarl.config.loader import configs_dir
from xmarl.config.schema import MADDPGConfig
from xmarl.core.actions import select_actions, squash
from xmarl.core.maddpg import MADDPG as core
from xmarl.core.method import MethodSpec
from xmarl.core.spaces import AgentSpec
from xmarl.envs import VectorEnv, make_env
from xmarl.envs.median import MedianGame
from xmarl.errors import EnvError

# agent i: Discrete(N[i]) + Box(LOW[i], HIGH[i], (D[i],)) -> action vector of N[i] + D[i] entries
N, D = (3, 2), (2, 1)
LOW, HIGH = (-1.0, 0.0), (2.0, 5.0)


class _Recorder(ParallelEnv):
    """Two agents with different hybrid action spaces; remembers the actions it was sent."""

    metadata = {"name": "recorder_v0", "render_modes": []}

    def __init__(self) -> None:
        self.possible_agents = ["a", "b"]
        self.agents: list[str] = []
        self.sent: list[dict[str, Any]] = []
        self._obs = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self._act = {a: spaces.Tuple((spaces.Discrete(N[i]), spaces.Box(LOW[i], HIGH[i], (D[i],), np.float32)))
                     for i, a in enumerate(self.possible_agents)}

    def observation_space(self, agent: str) -> spaces.Box:
        return self._obs

    def action_space(self, agent: str) -> spaces.Tuple:
        return self._act[agent]

    def reset(self, seed: int | None = None, options: dict | None = None):
        self.agents = list(self.possible_agents)
        return {a: np.zeros(2, np.float32) for a in self.agents}, {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]):
        self.sent.append(actions)
        obs = {a: np.zeros(2, np.float32) for a in self.agents}
        return (obs, {a: 0.0 for a in self.agents}, {a: False for a in self.agents},
                {a: False for a in self.agents}, {a: {} for a in self.agents})


def _check_hybrid(spec: AgentSpec, act: np.ndarray) -> None:
    """Valid hybrid actions ``[E, A, act_dim]``: one-hot choice, continuous part in bounds, zero padding."""
    assert act.dtype == np.float32 and act.shape[1:] == (spec.n_agents, spec.act_dim)
    for i, (n, d) in enumerate(zip(spec.disc_dims, spec.act_dims)):
        choice = act[:, i, :n]
        assert set(np.unique(choice)) <= {0.0, 1.0} and np.all(choice.sum(-1) == 1.0)
        cont = act[:, i, n:d]
        assert np.all(cont >= spec.low[i, n:d]) and np.all(cont <= spec.high[i, n:d])
        assert np.all(act[:, i, d:] == 0.0)


def test_spec_of_tuple_spaces():
    env = VectorEnv(_Recorder, 1, name="recorder")
    spec = env.spec
    assert spec.action_kind == "hybrid" and spec.hybrid and not spec.discrete
    assert spec.disc_dims == N and spec.act_dims == (5, 3) and spec.act_dim == 5
    np.testing.assert_array_equal(spec.disc_mask, [[1, 1, 1, 0, 0], [1, 1, 0, 0, 0]])
    np.testing.assert_array_equal(spec.act_mask, [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    np.testing.assert_array_equal(spec.low, [[0, 0, 0, -1, -1], [0, 0, 0, 0, 0]])
    np.testing.assert_array_equal(spec.high, [[0, 0, 0, 2, 2], [0, 0, 5, 0, 0]])
    # the other kinds: categorical entries are every valid entry, or none
    np.testing.assert_array_equal(parity_spec("discrete").disc_mask, parity_spec("discrete").act_mask)
    assert not parity_spec("continuous").disc_mask.any()


@pytest.mark.parametrize("bad", [
    spaces.Tuple((spaces.Box(0.0, 1.0, (1,)), spaces.Discrete(2))),
    spaces.Tuple((spaces.Discrete(2), spaces.Box(0.0, 1.0, (1,)), spaces.Discrete(2))),
    spaces.Tuple((spaces.Discrete(2), spaces.Box(0.0, 1.0, (2, 2)))),
])
def test_other_tuple_spaces_are_refused(bad):
    obs = {"a": spaces.Box(0.0, 1.0, (2,))}
    with pytest.raises(EnvError, match="Discrete\\(n\\), Box") as exc:
        AgentSpec.from_spaces(["a"], obs, {"a": bad}, env_name="bad")
    assert "\n" not in str(exc.value)
    mixed = {"a": spaces.Discrete(2), "b": spaces.Tuple((spaces.Discrete(2), spaces.Box(0.0, 1.0, (1,))))}
    with pytest.raises(EnvError, match="not supported"):
        AgentSpec.from_spaces(["a", "b"], {"a": obs["a"], "b": obs["a"]}, mixed)


def test_env_adapter_sends_int_and_float_array():
    env = VectorEnv(_Recorder, 2, name="recorder")
    spec = env.spec
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for actions in (env.sample_actions(rng),
                    select_actions(spec, rng.standard_normal((2, 2, spec.act_dim)).astype(np.float32), True, rng, 0.3)):
        _check_hybrid(spec, actions)
        env.step(actions)
        for e, copy in enumerate(env.envs):
            sent = copy.sent[-1]
            for i, a in enumerate(env.agents):
                choice, offer = sent[a]
                assert type(choice) is int and 0 <= choice < N[i]
                assert isinstance(offer, np.ndarray) and offer.dtype == np.float32 and offer.shape == (D[i],)
                assert env.envs[e].action_space(a).contains((choice, offer))
                # round trip: the critic's vector holds exactly what the env got
                stored = core.stored_actions(spec, actions)[e, i]
                assert int(np.argmax(stored[: N[i]])) == choice
                np.testing.assert_array_equal(stored[N[i]: N[i] + D[i]], offer)


def test_warmup_actions_are_uniform():
    env = make_env("median", 8)
    rng = np.random.default_rng(1)
    acts = np.concatenate([env.sample_actions(rng) for _ in range(200)])
    _check_hybrid(env.spec, acts)
    assert abs(acts[..., 1].mean() - 0.5) < 0.05  # participate? (one-hot entry 1)
    assert abs(acts[..., 2].mean() - 0.5) < 0.05 and acts[..., 2].std() > 0.25  # offer ~ U[0, 1]


def test_select_actions_greedy_and_explore():
    spec = parity_spec("hybrid")
    rng = np.random.default_rng(0)
    out = rng.standard_normal((500, spec.n_agents, spec.act_dim)).astype(np.float32) * 2
    greedy = select_actions(spec, out, explore=False, rng=None)
    _check_hybrid(spec, greedy)
    explored = select_actions(spec, out, explore=True, rng=rng, noise_scale=0.5)
    _check_hybrid(spec, explored)
    for i, (n, d) in enumerate(zip(spec.disc_dims, spec.act_dims)):
        np.testing.assert_array_equal(greedy[:, i, :n].argmax(-1), out[:, i, :n].argmax(-1))
        np.testing.assert_allclose(greedy[:, i, n:d], squash(spec, out)[:, i, n:d], rtol=1e-6)
        # exploring: every choice occurs, some differ from greedy; offers are perturbed
        assert set(explored[:, i, :n].argmax(-1)) == set(range(n))
        assert 0 < np.mean(explored[:, i, :n].argmax(-1) != greedy[:, i, :n].argmax(-1)) < 0.8
        assert np.abs(explored[:, i, n:d] - greedy[:, i, n:d]).max() > 0.1


def test_stored_actions_and_batch_noise_layout():
    spec = parity_spec("hybrid")
    acts = select_actions(spec, np.zeros((4, spec.n_agents, spec.act_dim), np.float32), False, None)
    stored = core.stored_actions(spec, acts)
    assert stored.dtype == np.float32 and stored.shape == (4, spec.n_agents, spec.act_dim)
    np.testing.assert_array_equal(stored, acts)
    batch = maddpg_batch(spec, 64, 0)
    for key in ("gumbel", "next_gumbel"):
        noise = batch[key]
        assert np.all(noise[spec.disc_mask[:, None].repeat(64, 1) == 0] == 0)  # none on continuous entries
        assert np.all(noise[spec.disc_mask[:, None].repeat(64, 1) > 0] != 0)


def _relaxed(backend: str, learner: Any, raw: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """The learner's differentiable action for agent-major ``raw``/``noise`` ``[A, B, act_dim]``."""
    if backend == "torch":
        import torch

        return learner._action(torch.from_numpy(raw), torch.from_numpy(noise)).detach().numpy()
    if backend == "tensorflow":
        import tensorflow as tf

        return learner._action(tf.constant(raw), tf.constant(noise)).numpy()
    from mindspore import Tensor

    from xmarl.backends.mindspore.learners.maddpg import _Action

    return _Action(learner.spec, learner.cfg.gumbel_temperature)(Tensor(raw), Tensor(noise)).asnumpy()


@pytest.mark.parametrize("kind", ["hybrid", "discrete", "continuous"])
def test_relaxed_action_in_every_backend(backend, kind):
    """Gumbel-softmax over the categorical entries only, the squashed value on bounded ones."""
    spec = parity_spec(kind)
    cfg = load_config("maddpg", "median", backend, overrides={"maddpg.hidden_sizes": [8],
                                                                "maddpg.gumbel_temperature": 0.7}).maddpg
    learner = registry.get("learner", "maddpg", backend)(spec, cfg, core.init_weights(spec, cfg, 0))
    batch = maddpg_batch(spec, 16, 3)
    raw = np.random.default_rng(4).standard_normal(batch["act"].shape).astype(np.float32)
    got = _relaxed(backend, learner, raw, batch["gumbel"])
    expect = np.zeros_like(raw)
    for i, n in enumerate(spec.n_categories):
        if n:
            z = (raw[i, :, :n] + batch["gumbel"][i, :, :n]) / 0.7
            e = np.exp(z - z.max(-1, keepdims=True))
            expect[i, :, :n] = e / e.sum(-1, keepdims=True)
        expect[i, :, n:] = squash(spec, raw.swapaxes(0, 1)).swapaxes(0, 1)[i, :, n:]
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, expect, rtol=1e-5, atol=1e-6)


def _random_return(episodes: int, seed: int) -> float:
    """Mean episode return per agent of uniformly random play on the median game."""
    env = make_env("median", episodes)
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    acc = np.zeros(episodes)
    done = np.zeros(episodes, bool)
    while not done.all():
        _, _, rew, _, d = env.step(env.sample_actions(rng))
        acc += rew.mean(1) * ~done
        done |= d
    return float(acc.mean())


def test_learns_median_game(backend, out_dir):
    """Random play returns about 0.6 per 3-round episode; MADDPG reaches about 2 (0.7 per round)."""
    random = _random_return(400, 0)
    assert 0.3 < random < 0.9
    r = xmarl.run("maddpg", backend, "median", out_dir=out_dir, progress=False, seed=0,
                  overrides={"train.tensorboard": False})
    last = r.curve[-1][1]
    assert last > random + 1.0, (random, r.curve)


@pytest.fixture
def no_hybrid_method():
    """A throwaway off-policy method that accepts discrete and continuous actions only."""
    defaults = yaml.safe_load((configs_dir() / "defaults.yaml").read_text())["maddpg"]
    registry.add("method", "no_hybrid", MethodSpec(
        name="no_hybrid", config_model=MADDPGConfig, trainer="off_policy", action_kinds=("discrete", "continuous"),
        core=core, paper="(test)", defaults=defaults))
    yield "no_hybrid"
    registry._ENTRIES.pop(("method", "no_hybrid", None), None)


def test_methods_without_hybrid_refuse_it(no_hybrid_method, out_dir):
    assert "hybrid" in registry.get("method", "maddpg").action_kinds
    backend = next(b for b in BACKENDS if registry.backend_installed(b))
    with pytest.raises(EnvError) as exc:
        xmarl.run(no_hybrid_method, backend, "median", out_dir=out_dir, progress=False,
                  overrides={"train.tensorboard": False})
    msg = str(exc.value)
    assert "\n" not in msg and no_hybrid_method in msg and "hybrid" in msg and "median" in msg, msg


def test_median_game_rules():
    env = MedianGame()
    obs, _ = env.reset(seed=3)
    values = np.array([obs[a][0] for a in env.possible_agents])
    m = float(np.median(values))
    assert env.median == pytest.approx(m)
    acts = {a: (1, np.array([m], np.float32)) for a in env.agents}
    acts["agent_2"] = (0, np.array([0.0], np.float32))  # abstains: its offer does not count
    obs, rew, _, trunc, _ = env.step(acts)
    assert rew["agent_0"] == pytest.approx(1.0) and not any(trunc.values())
    np.testing.assert_allclose(obs["agent_0"], [values[0], m, 0.0, 1.0, 0.0])  # others' offers, then joined
    only_one = {a: (int(a == "agent_0"), np.array([m], np.float32)) for a in env.agents}
    _, rew, _, trunc, _ = env.step(only_one)
    assert rew["agent_1"] == 0.0  # no quorum
    _, rew, _, trunc, _ = env.step({a: (1, np.array([m + 0.25], np.float32)) for a in env.agents})
    assert rew["agent_2"] == pytest.approx(0.5, abs=1e-6) and all(trunc.values()) and env.agents == []
