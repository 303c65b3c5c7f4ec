"""A learner per agent group: groups that name their own method (or config) each train a learner
of that method over their own agents, in the same env steps, in every backend; the run's files
keep each group's weights, optimiser state and buffer apart, resume exactly, and a group of such
a run can be frozen into a later one. Also the fixed groups' actions where they were missed:
during MADDPG's warm-up and in GIFs / ``xmarl render``."""

from __future__ import annotations

import json

import numpy as np
import pytest

import xmarl
from tests.conftest import crash_after, require
from xmarl.config import load_config, separate_learners
from xmarl.errors import ConfigError
from xmarl.training.checkpoint import latest_checkpoint, load_weights
from xmarl.training.trainer import Stopwatch, Trainer, is_timing

#: COMA's shipped target-game settings (configs/coma/target.yaml), as one group's config
COMA_TARGET = {"gamma": 0.5, "batch_episodes": 8, "lr_actor": 0.01, "lr_critic": 0.01, "epsilon_anneal_steps": 2000,
               "hidden_sizes": [32], "critic_hidden_sizes": [64], "target_update_interval": 10}
BASE = {"train.steps": 8000, "train.num_envs": 8, "train.eval_interval": 2000, "train.eval_episodes": 20,
        "train.log_interval": 1000, "train.checkpoint_interval": 4000, "train.tensorboard": False,
        "train.progress": False, "maddpg.warmup_steps": 200, "maddpg.batch_size": 64, "maddpg.update_every": 10,
        "maddpg.lr_actor": 0.001, "maddpg.lr_critic": 0.001, "env_kwargs": {"n_agents": 2}}
MIXED = {"ddpg": {"agents": ["agent_0"]}, "coma": {"agents": ["agent_1"], "method": "coma", "config": COMA_TARGET}}


def test_groups_with_methods_of_their_own_each_learn_their_part_of_the_target_game(backend, out_dir):
    """agent_0 learns with MADDPG, agent_1 with COMA, side by side: the team gets 1 per step only
    when both hit their targets (a learner left untrained, or one trained on the other's agent,
    scores about 0.5 + 0.5/3 per step). Each learner sees only its own agent."""
    r = xmarl.run("maddpg", backend, "target", out_dir=out_dir, overrides={**BASE, "groups": MIXED})
    assert r.learner is None and set(r.learners) == {"ddpg", "coma"}
    assert r.learners["ddpg"].spec.agents == ("agent_0",) and r.learners["coma"].spec.agents == ("agent_1",)
    assert type(r.learners["coma"]).__module__ == f"xmarl.backends.{backend}.learners.coma"
    assert r.final_metrics["eval_return"] > 4.5, r.final_metrics  # 5 = both on target every step
    rows = [json.loads(x) for x in r.metrics_path.read_text().splitlines()]
    losses = set().union(*(row.keys() for row in rows))
    assert {"critic_loss/ddpg", "actor_loss/ddpg", "critic_loss/coma", "q_taken/coma"} <= losses
    weights = load_weights(r.run_dir)
    assert {k.split("/")[1] for k in weights} == {"ddpg", "coma"} and all(k.startswith("groups/") for k in weights)


def test_a_run_with_a_learner_per_group_resumes_exactly(out_dir):
    require("torch")
    full = xmarl.run("maddpg", "torch", "target", out_dir=out_dir / "full", overrides={**BASE, "groups": MIXED})
    cfg = load_config("maddpg", "target", "torch", overrides={**BASE, "groups": MIXED, "out_dir": str(out_dir / "cut")})
    trainer = Trainer(cfg)
    crash_after(trainer, 5000, trainer.learners["coma"])  # the checkpoint at 4000 exists; what follows is lost
    with pytest.raises(RuntimeError, match="simulated crash"):
        trainer.train()
    folder = latest_checkpoint(trainer.run_dir)
    assert {p.name for p in folder.iterdir()} >= {"replay-ddpg.json", "buffer-coma.npz", "weights.npz"}
    assert json.loads((folder / "trainer.json").read_text())["parts"]["coma"]["updates"] > 0
    resumed = xmarl.run(resume=trainer.run_dir)

    def records(run):
        return [{k: v for k, v in json.loads(x).items() if not is_timing(k)}
                for x in run.metrics_path.read_text().splitlines()]

    assert records(resumed) == records(full)
    a, b = load_weights(resumed.run_dir), load_weights(full.run_dir)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_each_learner_stores_only_its_agents_side_of_each_step(out_dir):
    """Speaker (obs 3, 3 actions) and listener (obs 11, 5 actions) padded into one env array: the
    speaker's MADDPG replay holds the speaker's unpadded observations and one-hot actions, the
    listener's COMA episodes the listener's, exactly as the env gave them."""
    require("torch")
    groups = {"speaker": {"agents": ["speaker_*"]}, "listener": {"agents": ["listener_*"], "method": "coma"}}
    cfg = load_config("maddpg", "mpe-fast/simple_speaker_listener_v4", "torch",
                      overrides={"groups": groups, "train.num_envs": 4, "maddpg.warmup_steps": 0,
                                 "out_dir": str(out_dir), "train.tensorboard": False})
    trainer = Trainer(cfg)
    speaker, listener = trainer.parts
    assert (speaker.spec.obs_dim, speaker.spec.act_dim, listener.spec.obs_dim, listener.spec.act_dim) == (3, 3, 11, 5)
    env = trainer.env
    assert (env.spec.obs_dim, env.spec.act_dim) == (11, 5)
    seen, acts = [], []
    real = env.step

    def step(actions):
        seen.append(trainer.obs.copy())
        acts.append(np.array(actions))
        return real(actions)

    env.step = step
    for _ in range(3):
        trainer._collect(Stopwatch())
    replay = speaker.buffer
    np.testing.assert_array_equal(replay.obs[:12].reshape(3, 4, 1, 3), np.stack(seen)[:, :, :1, :3])
    np.testing.assert_array_equal(replay.act[:12].reshape(3, 4, 1, 3), np.eye(3)[np.stack(acts)[:, :, :1]])
    episodes = listener.buffer
    state = episodes.state_dict()
    obs = next(v for k, v in state.items() if k.endswith("obs") and v.ndim == 4)  # [E, T, 1, 11]
    np.testing.assert_array_equal(obs[:, :3, 0], np.stack(seen)[:, :, 1].transpose(1, 0, 2))
    assert all(a[:, 1].max() < 5 and a[:, 0].max() < 3 for a in acts)  # each agent within its own actions


def test_one_learner_for_groups_that_share_the_runs_method_and_config():
    cfg = load_config("maddpg", "mpe/simple_tag_v3", "torch", overrides={
        "maddpg.share_parameters": False,
        "groups": {"predators": {"agents": ["adversary_*"]}, "prey": {"agents": ["agent_*"], "method": "maddpg"}}})
    assert not separate_learners(cfg)  # naming the run's own method changes nothing: MADDPG's self-play
    cfg = load_config("maddpg", "mpe/simple_tag_v3", "torch", overrides={
        "groups": {"predators": {"agents": ["adversary_*"]},
                   "prey": {"agents": ["agent_*"], "config": {"lr_actor": 0.001}}}})
    assert separate_learners(cfg)  # its own config: its own learner (and shared weights within each group)


@pytest.mark.parametrize("group, message", [
    ({"method": "comma"}, r"'groups.prey.method': unknown method 'comma'; did you mean 'coma'"),
    ({"method": "coma", "config": {"lr_actr": 0.1}},
     r"unknown config key 'groups.prey.config.lr_actr' \(not a key of the 'coma' section\); did you mean "
     r"'groups.prey.config.lr_actor'"),
    ({"config": {"gamma": "high"}}, r"config key 'groups.prey.config.gamma': input should be a valid number"),
    ({"config": {"batch_size": 4096, "buffer_size": 1000}},
     r"'groups.prey.config.batch_size'.*'groups.prey.config.buffer_size'.*contradict"),
])
def test_bad_group_methods_and_configs_are_one_line_errors(group, message, out_dir):
    groups = {"predators": {"agents": ["adversary_*"]}, "prey": {"agents": ["agent_*"], **group}}
    with pytest.raises(ConfigError, match=message) as info:
        xmarl.run("maddpg", "torch", "mpe-fast/simple_tag_v3", out_dir=out_dir, overrides={"groups": groups})
    assert "\n" not in str(info.value) and not out_dir.exists()


def test_a_group_of_a_per_group_run_can_be_frozen_into_the_next(out_dir):
    """Self-play in stages across methods: the COMA agent of a first run is frozen in a second run
    where a new MADDPG agent learns beside it; the frozen slot acts exactly as the first run's COMA
    learner does greedily."""
    require("torch")
    first = xmarl.run("maddpg", "torch", "target", out_dir=out_dir / "first",
                      overrides={**BASE, "train.steps": 2000, "groups": MIXED})
    groups = {"ddpg": {"agents": ["agent_0"]},
              "coma": {"agents": ["agent_1"], "method": "coma", "config": COMA_TARGET, "policy": "frozen",
                       "checkpoint": str(first.run_dir)}}
    cfg = load_config("maddpg", "target", "torch", overrides={**BASE, "groups": groups, "out_dir": str(out_dir / "b"),
                                                              "maddpg.share_parameters": False})
    trainer = Trainer(cfg)
    assert list(trainer.learners) == [""]  # one learning group: one learner over every agent
    obs = np.eye(3, dtype=np.float32)[np.random.default_rng(0).integers(0, 3, (64, 2))]
    mine, _ = trainer.acting(trainer.env).act(obs)
    theirs, _ = first.learners["coma"].policy.act(obs[:, 1:])
    np.testing.assert_array_equal(mine[:, 1], theirs[:, 0])


def test_heuristic_group_follows_its_policy_during_maddpg_warmup(out_dir):
    """Regression: during warm-up every agent used to act uniformly at random, the scripted prey
    too; a fixed group is part of the learners' environment from the first step."""
    require("torch")
    groups = {"predators": {"agents": ["adversary_*"]}, "prey": {"agents": ["agent_*"], "policy": "heuristic"}}
    cfg = load_config("maddpg", "mpe-fast/simple_tag_v3", "torch",
                      overrides={"maddpg.share_parameters": False, "groups": groups, "train.num_envs": 8,
                                 "maddpg.warmup_steps": 10**6, "out_dir": str(out_dir), "train.tensorboard": False})
    trainer = Trainer(cfg)
    scripted = trainer.env.heuristic_actions()
    trainer._collect(Stopwatch())
    stored = trainer.buffer.act[:8].argmax(-1)
    np.testing.assert_array_equal(stored[:, 3], scripted[:, 3])  # the prey: its script
    assert not np.array_equal(stored[:, :3], scripted[:, :3])  # the predators: random warm-up


def test_rendered_episodes_act_as_the_groups_say(out_dir):
    """Regression: GIFs and ``xmarl render`` used the learner's policy for every agent, so a random
    or scripted group was drawn acting as the learner."""
    require("torch")
    from xmarl.training.render import build_policy, make_render_env

    groups = {"predators": {"agents": ["adversary_*"]}, "prey": {"agents": ["agent_*"], "policy": "heuristic"}}
    r = xmarl.run("maddpg", "torch", "mpe-fast/simple_tag_v3", out_dir=out_dir, progress=False,
                  overrides={"maddpg.share_parameters": False, "groups": groups, "train.steps": 2000,
                             "maddpg.warmup_steps": 500, "maddpg.batch_size": 64, "train.tensorboard": False})
    env = make_render_env("mpe-fast/simple_tag_v3", {})
    policy = build_policy(load_config(config=r.config_path), load_weights(r.run_dir), env)
    obs = env.reset(seed=3)
    acts, _ = policy.act(obs)
    np.testing.assert_array_equal(acts[:, 3], env.heuristic_actions()[:, 3])
    np.testing.assert_array_equal(acts[:, :3], r.learner.policy.act(obs)[0][:, :3])
