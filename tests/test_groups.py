"""Agent groups: patterns to groups, one-line errors for groups that do not cover the agents or
overlap, random groups acting at random among the available actions (in training and
evaluation, reproducibly), and evaluation metrics per group in the run's files and result."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

import xmarl
from tests.conftest import require
from xmarl.core.spaces import AgentSpec
from xmarl.errors import ConfigError
from xmarl.training.groups import AgentGroups, FixedGroups, GroupPolicy, Slots, sample_available
from xmarl.training.trainer import is_timing

AGENTS = ["adversary_0", "adversary_1", "agent_0", "agent_1", "agent_2"]


def _g(agents, policy="learn"):
    return SimpleNamespace(agents=agents, policy=policy)


def test_patterns_map_agents_to_groups():
    g = AgentGroups.resolve({"predators": _g(["adversary_*"]), "prey": _g(["agent_*"], "random")}, AGENTS)
    assert {k: v.tolist() for k, v in g.slots.items()} == {"predators": [0, 1], "prey": [2, 3, 4]}
    assert g.random.tolist() == [False, False, True, True, True] and g.named
    one = AgentGroups.resolve({}, AGENTS)
    assert list(one.slots) == ["all"] and not one.named and not one.random.any()
    returns = np.array([[1.0, 3.0, 0.0, 0.0, 6.0], [1.0, 3.0, 0.0, 0.0, 0.0]])
    m = g.metrics(returns, np.array([25, 15]))
    assert m == {"eval_return": pytest.approx(1.4), "eval_length": 20.0, "eval_return/predators": 2.0,
                 "eval_return/prey": 1.0}
    assert one.metrics(returns, np.array([3, 3])).keys() == {"eval_return", "eval_length"}
    each = one.metrics(returns, np.array([3, 3]), AGENTS)
    assert each["eval_agent/adversary_1"] == 3.0 and each["eval_agent/agent_2"] == 3.0 and len(each) == 2 + 5
    many = [f"a{i}" for i in range(17)]  # beyond PER_AGENT_MAX: no per-agent entries
    assert AgentGroups.resolve({}, many).metrics(np.zeros((2, 17)), np.ones(2), many).keys() == {
        "eval_return", "eval_length"}


@pytest.mark.parametrize("groups, message", [
    ({"a": _g(["adversary_*"])}, r"agents \['agent_0', 'agent_1', 'agent_2'\] are in no group"),
    ({"a": _g(["*"]), "b": _g(["agent_0"])}, "agent 'agent_0' is in groups 'a' and 'b'"),
    ({"a": _g(["*"]), "b": _g(["prey_*"])}, r"groups.b.agents \['prey_\*'\] match none"),
])
def test_groups_that_do_not_partition_the_agents_are_one_line_errors(groups, message):
    with pytest.raises(ConfigError, match=message) as info:
        AgentGroups.resolve(groups, AGENTS)
    assert "\n" not in str(info.value)


def test_random_group_acts_uniformly_among_available_actions():
    class Greedy:
        spec = SimpleNamespace(discrete=True)

        def act(self, obs, state=None, explore=False, rng=None, noise_scale=0.0, avail=None, agent_mask=None):
            return np.full(obs.shape[:2], 2, np.int64), state

    env = SimpleNamespace(spec=SimpleNamespace(discrete=True), sample_actions=None)
    agents = ["agent_0", "agent_1", "agent_2"]
    spec = AgentSpec(tuple(agents), (1, 1, 1), "discrete", (4, 4, 4), np.zeros((3, 4)), np.zeros((3, 4)))
    groups = AgentGroups.resolve({"learners": _g(["agent_0"]), "noise": _g(["agent_1", "agent_2"], "random")}, agents)

    def group_policy(seed):
        fixed = FixedGroups(groups, lambda rng, avail: sample_available(env, rng, avail), np.random.default_rng(seed))
        return GroupPolicy([(Slots.of(spec), Greedy())], spec, fixed)

    policy = group_policy(0)
    avail = np.ones((4000, 3, 4), np.float32)
    avail[:, 2, 3] = 0.0  # agent_2 may not take action 3
    acts, _ = policy.act(np.zeros((4000, 3, 1), np.float32), avail=avail,
                         agent_mask=np.tile(np.array([1, 1, 0], np.float32), (4000, 1)))
    assert (acts[:, 0] == 2).all()  # the learning group acts as its policy does
    counts = np.bincount(acts[:, 1], minlength=4) / 4000
    assert np.abs(counts - 0.25).max() < 0.03  # uniform over the 4 actions
    assert (acts[:, 2] == 0).all()  # agent_2 has left: action 0
    again, _ = group_policy(0).act(np.zeros((4000, 3, 1), np.float32), avail=avail)
    assert (again[:, 2] != 3).all() and set(np.unique(again[:, 2])) == {0, 1, 2}
    np.testing.assert_array_equal(again[:, 1], acts[:, 1])  # seeded: reproducible


def test_a_run_with_a_random_group_reports_each_group_and_reproduces(out_dir):
    """MADDPG learns the target game for agent_0 while agent_1 acts at random: the team return is
    what agent_0 always on its target and agent_1 on it by chance give (a random group that
    learned, or a learner left random, would miss it); the metrics carry each group, and the same
    seed gives the same metrics."""
    require("torch")
    ov = {"train.steps": 3000, "train.eval_interval": 1000, "train.eval_episodes": 50, "train.tensorboard": False,
          "maddpg.warmup_steps": 200, "maddpg.batch_size": 64, "maddpg.update_every": 20,
          "maddpg.share_parameters": False, "env_kwargs": {"n_agents": 2},
          "groups": {"learners": {"agents": ["agent_0"]}, "noise": {"agents": ["agent_1"], "policy": "random"}}}
    runs = [xmarl.run("maddpg", "torch", "target", out_dir=out_dir / str(k), progress=False, overrides=ov)
            for k in range(2)]
    final = runs[0].final_metrics
    assert {"eval_return/learners", "eval_return/noise", "eval_length"} <= final.keys()
    # team reward = fraction of agents on target: agent_0 always (0.5 per step), agent_1 by chance (1/3 of 0.5)
    assert final["eval_return"] == pytest.approx(5 * (0.5 + 0.5 / 3), abs=0.35)
    rows = [json.loads(x) for x in runs[0].metrics_path.read_text().splitlines() if "eval_return" in x]
    assert all("eval_return/noise" in r for r in rows)
    strip = [{k: v for k, v in r.final_metrics.items() if not is_timing(k)} for r in runs]
    assert strip[0] == strip[1]


def test_random_group_with_shared_weights_is_refused_naming_both_keys(out_dir):
    with pytest.raises(ConfigError, match="'groups.noise.policy'.*'maddpg.share_parameters'.*share_parameters: false"):
        xmarl.run("maddpg", "torch", "target", out_dir=out_dir, progress=False,
                  overrides={"maddpg.share_parameters": True,
                             "groups": {"noise": {"agents": ["*"], "policy": "random"}}})


def test_a_frozen_group_acts_with_its_checkpoints_greedy_policy(out_dir):
    """Self-play workflow: a first run trains both agents; a second run keeps agent_1 frozen with
    the first run's weights while agent_0 learns anew. agent_1's actions are exactly what the
    first run's greedy policy does for it, in training and evaluation, and the team does well
    from the start of the second run on agent_1's half."""
    require("torch")
    base = {"train.steps": 3000, "train.eval_interval": 1000, "train.eval_episodes": 50, "train.tensorboard": False,
            "maddpg.warmup_steps": 200, "maddpg.batch_size": 64, "maddpg.update_every": 20,
            "maddpg.share_parameters": False, "env_kwargs": {"n_agents": 2}}
    first = xmarl.run("maddpg", "torch", "target", out_dir=out_dir / "first", progress=False, overrides=base)
    groups = {"learners": {"agents": ["agent_0"]},
              "kept": {"agents": ["agent_1"], "policy": "frozen", "checkpoint": str(first.run_dir)}}
    from xmarl.config import load_config
    from xmarl.training.trainer import Trainer

    cfg = load_config("maddpg", "target", "torch", overrides={**base, "groups": groups, "out_dir": str(out_dir / "b")})
    trainer = Trainer(cfg)
    obs = np.random.default_rng(0).random((64, 2, 3)).astype(np.float32)
    mine, _ = trainer.acting(trainer.env).act(obs)
    theirs, _ = first.learner.policy.act(obs)
    np.testing.assert_array_equal(mine[:, 1], theirs[:, 1])  # the frozen slot: the first run's policy
    np.testing.assert_array_equal(mine[:, 0], trainer.learner.policy.act(obs)[0][:, 0])  # the learner's own
    second = trainer.train()
    assert second.final_metrics["eval_return"] > 4.0  # both on target: 5 per episode at best


@pytest.mark.parametrize("group, message", [
    ({"policy": "frozen"}, "'groups.kept.policy'.*'groups.kept.checkpoint'.*give both, or neither"),
    ({"checkpoint": "runs/x"}, "'groups.kept.policy'.*'groups.kept.checkpoint'"),
])
def test_frozen_group_keys_that_contradict_are_refused(group, message, out_dir):
    with pytest.raises(ConfigError, match=message):
        xmarl.run("maddpg", "torch", "target", out_dir=out_dir, progress=False,
                  overrides={"maddpg.share_parameters": False,
                             "groups": {"all": {"agents": ["agent_0"]}, "kept": {"agents": ["agent_1"], **group}}})


def test_a_frozen_group_without_a_checkpoint_on_disk_is_one_line_error(out_dir, tmp_path):
    require("torch")
    from xmarl.errors import XmarlError

    with pytest.raises(XmarlError, match="no checkpoint in") as info:
        xmarl.run("maddpg", "torch", "target", out_dir=out_dir, progress=False,
                  overrides={"maddpg.share_parameters": False,
                             "groups": {"all": {"agents": ["agent_0"]},
                                        "kept": {"agents": ["agent_1"], "policy": "frozen",
                                                 "checkpoint": str(tmp_path / "missing")}}})
    assert "\n" not in str(info.value) and not list(out_dir.glob("*"))  # nothing written


def test_heuristic_groups_follow_the_envs_scripted_policy(out_dir):
    """mpe-fast simple_tag ships chase-and-flee: a predators group learning against a heuristic
    prey acts, for the prey slot, exactly as the env's heuristic does at that state; in simple_spread
    the walk-to-your-landmark heuristic beats random play by far; an env without one is refused."""
    require("torch")
    from xmarl.config import load_config
    from xmarl.envs import make_env
    from xmarl.training.trainer import Trainer, episode_stats

    groups = {"predators": {"agents": ["adversary_*"]}, "prey": {"agents": ["agent_*"], "policy": "heuristic"}}
    cfg = load_config("maddpg", "mpe-fast/simple_tag_v3", "torch",
                      overrides={"maddpg.share_parameters": False, "groups": groups, "train.num_envs": 16,
                                 "out_dir": str(out_dir), "train.tensorboard": False})
    trainer = Trainer(cfg)
    acts, _ = trainer.acting(trainer.env).act(trainer.obs)
    np.testing.assert_array_equal(acts[:, 3], trainer.env.heuristic_actions()[:, 3])

    class Scripted:
        def __init__(self, env):
            self.env = env

        def act(self, obs, state=None, explore=False, **_):
            return self.env.heuristic_actions(), state

    class Uniform(Scripted):
        rng = np.random.default_rng(0)

        def act(self, obs, state=None, explore=False, **_):
            return self.env.sample_actions(self.rng), state

    for continuous in (False, True):
        env = make_env("mpe-fast/simple_spread_v3", 100, continuous_actions=continuous)
        scripted = episode_stats(Scripted(env), env, 0)[0].mean()
        uniform = episode_stats(Uniform(env), env, 0)[0].mean()
        assert scripted > uniform + 10, (continuous, scripted, uniform)  # about -11 / -8.5 against -26
    with pytest.raises(ConfigError, match="env 'target' ships no heuristic policy"):
        xmarl.run("maddpg", "torch", "target", out_dir=out_dir / "t", progress=False,
                  overrides={"maddpg.share_parameters": False,
                             "groups": {"a": {"agents": ["agent_0"]},
                                        "b": {"agents": ["agent_1"], "policy": "heuristic"}}})
