"""Bad input of every kind gets a one-line error that says what to do, and leaves no
half-written file behind (config errors leave no files at all)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from gymnasium import spaces

import xmarl
from xmarl import registry
from xmarl.config import load_config, parse_overrides
from xmarl.core.maddpg import MADDPG
from xmarl.core.method import MethodSpec
from xmarl.envs.games import TargetGame
from xmarl.errors import XmarlError

TINY = {"train.steps": 400, "train.eval_interval": 400, "maddpg.warmup_steps": 50, "maddpg.batch_size": 16,
        "maddpg.update_every": 10, "train.progress": False, "train.tensorboard": False}


class BadObsShape(TargetGame):
    def observation_space(self, agent):
        return spaces.Box(0.0, 1.0, (self.n_targets + 2,), np.float32)


class DropsAgent(TargetGame):
    def step(self, actions):
        obs, r, te, tr, info = super().step(actions)
        obs.pop("agent_1")
        return obs, r, te, tr, info


class MultiDiscreteActions(TargetGame):
    def action_space(self, agent):
        return spaces.MultiDiscrete([2, 3])


class NanReward(TargetGame):
    def step(self, actions):
        obs, r, te, tr, info = super().step(actions)
        return obs, {a: float("nan") for a in r}, te, tr, info


class NanObservation(TargetGame):
    def step(self, actions):
        obs, r, te, tr, info = super().step(actions)
        return {a: np.full_like(o, np.nan) for a, o in obs.items()}, r, te, tr, info


class HugeReward(TargetGame):
    def step(self, actions):
        obs, r, te, tr, info = super().step(actions)
        return obs, {a: 1e38 for a in r}, te, tr, info


ENVS = {"bad/obs_shape": BadObsShape, "bad/drops_agent": DropsAgent, "bad/multidiscrete": MultiDiscreteActions,
        "bad/nan_reward": NanReward, "bad/nan_obs": NanObservation, "bad/huge_reward": HugeReward}


@pytest.fixture(autouse=True)
def bad_envs():
    for name, cls in ENVS.items():
        registry.add("env", name, cls)
    registry.add("method", "discrete_only", MethodSpec(
        name="discrete_only", config_model=load_config("maddpg").maddpg.__class__, trainer="off_policy",
        action_kinds=("discrete",), paper="test", core=MADDPG,
        defaults=load_config("maddpg").maddpg.model_dump(mode="json")))
    yield
    for name in ENVS:
        registry._ENTRIES.pop(("env", name, None))
    registry._ENTRIES.pop(("method", "discrete_only", None))
    registry._ENTRIES.pop(("learner", "discrete_only", "torch"), None)


def _yaml(tmp: Path, text: str) -> Path:
    p = tmp / "cfg" / "user.yaml"
    p.parent.mkdir(exist_ok=True)
    p.write_text(text)
    return p


def run(out: Path, env: str = "target", **kw) -> Callable[[], object]:
    return lambda: xmarl.run("maddpg", kw.pop("backend", "torch"), env, out_dir=out,
                             overrides={**TINY, **kw.pop("overrides", {})}, **kw)


def _discrete_only(out: Path):
    registry.add("learner", "discrete_only", registry.get("learner", "maddpg", "torch"), backend="torch")
    return xmarl.run("discrete_only", "torch", "target", out_dir=out,
                     overrides={**{k.replace("maddpg.", "discrete_only."): v for k, v in TINY.items()},
                                "env_kwargs": {"continuous": True}})


def _resume_other_env(out: Path):
    r = xmarl.run("maddpg", "torch", "target", out_dir=out / "first", overrides=TINY)
    return xmarl.run(resume=r.run_dir, env="mpe/simple_spread_v3")


CASES: dict[str, tuple[Callable[[Path, Path], Callable[[], object]], str, bool]] = {
    # name: (make the call from (out_dir, tmp_path), text the message must contain, run folder may exist)
    "malformed YAML": (lambda o, t: lambda: load_config(config=_yaml(t, "train:\n  steps: [1,\n")),
                       "malformed YAML at", False),
    "YAML that is not a mapping": (lambda o, t: lambda: load_config(config=_yaml(t, "- 1\n- 2\n")),
                                   "must be a YAML mapping", False),
    "missing config file": (lambda o, t: lambda: load_config(config=t / "nope.yaml"), "does not exist", False),
    "unknown top-level key": (lambda o, t: run(o, overrides={"sed": 1}), "did you mean 'seed'", False),
    "unknown nested key": (lambda o, t: run(o, overrides={"maddpg.lr_actr": 1}), "did you mean 'maddpg.lr_actor'",
                           False),
    "wrong type in a file": (lambda o, t: lambda: load_config(config=_yaml(t, "seed: one\n")), "user.yaml:1", False),
    "wrong type of bool": (lambda o, t: run(o, overrides={"train.progress": "sometimes"}), "train.progress", False),
    "zero steps": (lambda o, t: run(o, steps=0), "greater than 0", False),
    "negative steps": (lambda o, t: run(o, steps=-10), "greater than 0", False),
    "gamma above one": (lambda o, t: run(o, overrides={"maddpg.gamma": 1.5}), "maddpg.gamma", False),
    "zero hidden width": (lambda o, t: run(o, overrides={"maddpg.hidden_sizes": [64, 0]}), "maddpg.hidden_sizes.1",
                          False),
    "zero envs": (lambda o, t: run(o, overrides={"train.num_envs": 0}), "train.num_envs", False),
    "negative gif interval": (lambda o, t: run(o, overrides={"train.gif_every": -1}), "train.gif_every", False),
    "unknown method": (lambda o, t: lambda: xmarl.run("comma", "torch", "target", out_dir=o), "valid:", False),
    "unknown env": (lambda o, t: run(o, env="mpe/simple_spred_v3"), "did you mean 'mpe/simple_spread_v3'", False),
    "unknown backend": (lambda o, t: run(o, backend="jax"), "valid: mindspore, tensorflow, torch", False),
    "override without '='": (lambda o, t: lambda: parse_overrides(["train.steps"]), "key.path=value", False),
    "override below a value": (lambda o, t: run(o, overrides={"seed.x": 1}), "seed", False),
    "bad env kwargs": (lambda o, t: run(o, env="mpe/simple_spread_v3", overrides={"env_kwargs": {"N": 3, "M": 2}}),
                       "bad env kwargs", False),
    "observation of the wrong size": (lambda o, t: run(o, env="bad/obs_shape"), "observation has 3 values", False),
    "an agent kept without its observation": (lambda o, t: run(o, env="bad/drops_agent"),
                                              "returned no observation for agents", True),
    "unsupported action space": (lambda o, t: run(o, env="bad/multidiscrete"), "MultiDiscrete", False),
    "action kind the method rejects": (lambda o, t: lambda: _discrete_only(o), "discrete_only needs discrete actions",
                                       False),
    "NaN reward": (lambda o, t: run(o, env="bad/nan_reward"),
                   "step 1: env 'bad/nan_reward' returned reward nan for agent 'agent_0'", True),
    "NaN observation": (lambda o, t: run(o, env="bad/nan_obs"),
                        "step 1: env 'bad/nan_obs' returned observation nan for agent 'agent_0'", True),
    "overflowing loss": (lambda o, t: run(o, env="bad/huge_reward"), ": critic_loss is inf", True),
    "resume without a checkpoint": (lambda o, t: lambda: xmarl.run(resume=t), "no checkpoint in", False),
    "resume into another env": (lambda o, t: lambda: _resume_other_env(o), "is maddpg/torch/target", True),
    # YAML beyond plain data, and files that are not YAML
    "YAML with a Python tag": (lambda o, t: lambda: load_config(
        config=_yaml(t, "seed: !!python/object/apply:os.system ['echo hi']\n")), "plain data only", False),
    "YAML with a custom tag": (lambda o, t: lambda: load_config(config=_yaml(t, "seed: !seed 3\n")),
                               "could not determine a constructor for the tag '!seed'", False),
    "YAML with a duplicate key": (lambda o, t: lambda: load_config(config=_yaml(t, "seed: 1\nseed: 2\n")),
                                  "key 'seed' appears twice (first at line 1)", False),
    "YAML with a list as a key": (lambda o, t: lambda: load_config(config=_yaml(t, "? [a, b]\n: 1\n")),
                                  "a key must be a name", False),
    "config file that is not UTF-8": (lambda o, t: lambda: load_config(config=_binary(t)), "is not UTF-8 text", False),
    "config path that is a folder": (lambda o, t: lambda: load_config(config=t), "is a folder; pass a YAML file",
                                     False),
    "a section given a value": (lambda o, t: lambda: load_config(config=_yaml(t, "train: 5\n")),
                                "user.yaml:1 is a section (steps, num_envs", False),
    "env_kwargs given a value": (lambda o, t: run(o, overrides={"env_kwargs": 3}),
                                 "config key 'env_kwargs' at override is a mapping", False),
    # overrides and paths
    "override with an empty key": (lambda o, t: lambda: load_config("maddpg", overrides=parse_overrides(["=3"])),
                                   "override key '' has an empty part", False),
    "override with an empty part": (lambda o, t: run(o, overrides={"train..steps": 3}),
                                    "override key 'train..steps' has an empty part", False),
    "out_dir that is a file": (lambda o, t: lambda: xmarl.run("maddpg", "torch", "target", out_dir=_file(t),
                                                              overrides=TINY), "is a file, not a folder", False),
    "run name with a slash": (lambda o, t: run(o, overrides={"name": "../escape"}), "give a folder name without",
                              False),
    "run name '..'": (lambda o, t: run(o, overrides={"name": ".."}), "config key 'name' (override) is '..'", False),
    # env construction
    "unknown env kwarg": (lambda o, t: run(o, overrides={"env_kwargs": {"colour": 3}}),
                          "env 'target' cannot be built with env_kwargs {'colour': 3}", False),
    "env kwarg out of range": (lambda o, t: run(o, env="median", overrides={"env_kwargs": {"quorum": 9}}),
                               "quorum must be in 1..3, got 9; fix env_kwargs", False),
    "unknown env, long list": (lambda o, t: run(o, env="mpe/simple_sprd"),
                               "(closest: mpe/simple_spread_v3", False),
    # values valid alone that contradict each other
    "batch larger than the replay": (lambda o, t: run(o, overrides={"maddpg.batch_size": 64, "maddpg.buffer_size": 32}),
                                     "'maddpg.batch_size' (override) and 'maddpg.buffer_size' (override) contradict",
                                     False),
    "embedding without an id pool": (lambda o, t: _commnet(o, {"commnet.encoder": "embedding"}),
                                     "'commnet.encoder' (override) and 'commnet.n_ids'", False),
    "hearing range without communication": (lambda o, t: _commnet(o, {"commnet.comm_range": 1.0,
                                                                       "commnet.communicate": False}),
                                            "'commnet.comm_range' (override) and 'commnet.communicate' (override)",
                                            False),
    "fixed hearing and a range": (lambda o, t: _commnet(o, {"commnet.comm_range": 1.0,
                                                             "commnet.comm_mask": [[0, 1], [1, 0]]}),
                                  "'commnet.comm_mask' (override) and 'commnet.comm_range' (override)", False),
    "hearing range without positions": (lambda o, t: _commnet(o, {"commnet.comm_range": 1.0,
                                                                   "commnet.position_dims": []}),
                                        "and 'commnet.position_dims' (override) contradict", False),
    # plugins
    "a plugin that fails to load": (lambda o, t: _broken_plugin(o), "plugin 'broken' (broken_xmarl_plugin) failed to "
                                    "load: ModuleNotFoundError", False),
}


def _binary(tmp: Path) -> Path:
    p = tmp / "cfg" / "binary.yaml"
    p.parent.mkdir(exist_ok=True)
    p.write_bytes(b"\xff\xfe\x00seed: 1")
    return p


def _file(tmp: Path) -> Path:
    p = tmp / "not_a_folder"
    p.write_text("x")
    return p


def _commnet(out: Path, overrides: dict) -> Callable[[], object]:
    return lambda: xmarl.run("commnet", "torch", "target", out_dir=out, overrides={"train.steps": 40, **overrides})


def _broken_plugin(out: Path) -> Callable[[], object]:
    from importlib.metadata import EntryPoint

    def call():
        ep = EntryPoint(name="broken", value="broken_xmarl_plugin", group=registry.PLUGIN_GROUP)
        saved = registry._PLUGINS_LOADED
        registry._PLUGINS_LOADED = False
        real = registry.entry_points
        registry.entry_points = lambda group: [ep]
        try:
            return xmarl.run("maddpg", "torch", "target", out_dir=out, overrides=TINY)
        finally:
            registry.entry_points, registry._PLUGINS_LOADED = real, saved

    return call


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input(case, tmp_path):
    make, needle, may_create = CASES[case]
    out = tmp_path / "runs"
    with pytest.raises(XmarlError) as e:  # never a bare built-in exception
        make(out, tmp_path)()
    msg = str(e.value)
    assert "\n" not in msg and needle in msg, msg
    assert len(msg) < 400, f"{len(msg)} characters: {msg}"
    assert not list(tmp_path.rglob("*.tmp")) and not list(tmp_path.rglob("*.partial"))
    if not may_create:
        assert not out.exists()


def test_there_are_at_least_40_distinct_bad_inputs():
    assert len(CASES) >= 40 and len({needle for _, needle, _ in CASES.values()}) >= 40


def test_a_replay_larger_than_the_memory_is_refused_before_training(out_dir, monkeypatch):
    """numpy allocates the replay lazily, so a buffer_size beyond the machine's memory used to
    train until the kernel killed the process without a word; it is now a one-line error before
    any file is written."""
    from xmarl.errors import ConfigError
    from xmarl.training import parts

    monkeypatch.setattr(parts, "available_memory", lambda: 64 * 2**20)  # 64 MiB free
    with pytest.raises(ConfigError) as info:
        xmarl.run("maddpg", "torch", "target", out_dir=out_dir, progress=False,
                  overrides={"train.steps": 10**7, "maddpg.buffer_size": 10**7})
    msg = str(info.value)
    assert "needs" in msg and "GiB" in msg and msg.endswith("lower maddpg.buffer_size") and "\n" not in msg
    assert not list(out_dir.glob("*"))
