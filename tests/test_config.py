"""Config merging, validation and the one-line errors users see."""

from __future__ import annotations

import pytest
import yaml

import xmarl
from xmarl.config import load_config, parse_overrides
from xmarl.config.loader import configs_dir, env_config_path
from xmarl.errors import BackendNotInstalledError, ConfigError, RegistryError


def test_merge_order_defaults_pair_user_override(tmp_path):
    defaults = yaml.safe_load((configs_dir() / "defaults.yaml").read_text())
    pair = yaml.safe_load(env_config_path("maddpg", "mpe/simple_spread_v3").read_text())
    base = load_config("maddpg", "mpe/simple_spread_v3", "torch")
    # the method/env file wins over defaults
    assert base.maddpg.batch_size == pair["maddpg"]["batch_size"]
    assert "threads" not in pair.get("train", {})
    assert base.train.threads == defaults["train"]["threads"]
    user = tmp_path / "u.yaml"
    user.write_text("maddpg:\n  batch_size: 77\n  tau: 0.5\ntrain:\n  steps: 1234\n")
    cfg = load_config("maddpg", "mpe/simple_spread_v3", "torch", user, {"maddpg.tau": 0.25})
    assert cfg.maddpg.batch_size == 77  # user file beats the pair file
    assert cfg.maddpg.tau == 0.25  # override beats the user file
    assert cfg.train.steps == 1234
    assert cfg.maddpg.gamma == pair["maddpg"].get("gamma", defaults["maddpg"]["gamma"])


def test_arguments_beat_user_file(tmp_path):
    user = tmp_path / "u.yaml"
    user.write_text("backend: tensorflow\nseed: 3\n")
    cfg = load_config("maddpg", "target", "torch", user)
    assert cfg.backend == "torch" and cfg.seed == 3


def test_overrides_parse_yaml_scalars():
    ov = parse_overrides(["train.steps=500", "maddpg.hidden_sizes=[8, 8]", "maddpg.grad_clip=null", "name=abc"])
    assert ov == {"train.steps": 500, "maddpg.hidden_sizes": [8, 8], "maddpg.grad_clip": None, "name": "abc"}
    cfg = load_config("maddpg", "target", "torch", overrides=ov)
    assert cfg.maddpg.hidden_sizes == [8, 8] and cfg.maddpg.grad_clip is None and cfg.name == "abc"


def _one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg, msg
    return msg


def test_malformed_yaml_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  steps: 10\n  num_envs: [1, 2\n")
    with pytest.raises(ConfigError) as e:
        load_config("maddpg", "target", "torch", bad)
    msg = _one_line(e)
    assert "malformed YAML" in msg and "bad.yaml:" in msg


def test_unknown_key_names_closest_valid_key(tmp_path):
    f = tmp_path / "typo.yaml"
    f.write_text("maddpg:\n  gama: 0.9\n")
    with pytest.raises(ConfigError) as e:
        load_config("maddpg", "target", "torch", f)
    msg = _one_line(e)
    assert "maddpg.gama" in msg and "did you mean 'maddpg.gamma'" in msg and "typo.yaml:2" in msg


def test_unknown_top_level_key():
    with pytest.raises(ConfigError) as e:
        load_config("maddpg", "target", "torch", overrides={"seeed": 1})
    assert "did you mean 'seed'" in _one_line(e)


def test_wrong_type_names_field_file_and_line(tmp_path):
    f = tmp_path / "types.yaml"
    f.write_text("seed: 1\ntrain:\n  eval_episodes: 3\n  steps: lots\n")
    with pytest.raises(ConfigError) as e:
        load_config("maddpg", "target", "torch", f)
    msg = _one_line(e)
    assert "train.steps" in msg and "types.yaml:4" in msg and "'lots'" in msg


@pytest.mark.parametrize("steps", [0, -5])
def test_non_positive_steps(steps, out_dir):
    with pytest.raises(ConfigError) as e:
        xmarl.run("maddpg", "torch", "target", steps=steps, out_dir=out_dir)
    assert "train.steps" in _one_line(e) and "greater than 0" in str(e.value)
    assert not out_dir.exists()


def test_unknown_method_env_backend_list_valid_ones(out_dir):
    with pytest.raises(ConfigError) as e:
        xmarl.run("maddgp", "torch", "target", out_dir=out_dir)
    assert "did you mean 'maddpg'" in _one_line(e) and "valid:" in str(e.value)
    with pytest.raises(RegistryError) as e:
        xmarl.run("maddpg", "torch", "mpe/simple_sprad_v3", out_dir=out_dir)
    # a long list is cut to the closest names and a pointer to the full one
    assert "mpe/simple_spread_v3" in _one_line(e) and "see `xmarl list`" in str(e.value) and len(str(e.value)) < 200
    with pytest.raises(ConfigError) as e:
        xmarl.run("maddpg", "pytorch", "target", out_dir=out_dir)
    assert "did you mean 'torch'" in _one_line(e) and "mindspore" in str(e.value)
    assert not out_dir.exists()


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config("maddpg", "target", "torch", tmp_path / "nope.yaml")
    assert "does not exist" in _one_line(e)


def test_backend_not_installed_names_the_extra(monkeypatch, out_dir):
    from xmarl import registry

    monkeypatch.setattr(registry, "backend_installed", lambda name: name != "mindspore")
    monkeypatch.setattr(registry, "_LOADED_BACKENDS", set())
    with pytest.raises(BackendNotInstalledError) as e:
        xmarl.run("maddpg", "mindspore", "target", steps=10, out_dir=out_dir)
    assert "pip install 'xmarl[mindspore]'" in _one_line(e)
    assert not out_dir.exists()


def test_resolved_config_is_written_and_reloads(out_dir):
    r = xmarl.run("maddpg", "torch", "target", out_dir=out_dir, progress=False,
                  overrides={"train.steps": 200, "train.eval_interval": 200, "maddpg.batch_size": 32,
                             "maddpg.warmup_steps": 50, "maddpg.tau": 0.123})
    saved = yaml.safe_load(r.config_path.read_text())
    assert saved["maddpg"]["tau"] == 0.123 and saved["env"] == "target" and saved["backend"] == "torch"
    again = load_config(config=r.config_path)
    assert again.maddpg.tau == 0.123 and again.train.steps == 200


def test_env_kwargs_merge_key_by_key():
    cfg = load_config("maddpg", "mpe/simple_spread_v3", "torch", overrides={"env_kwargs.continuous_actions": True})
    pair = yaml.safe_load(env_config_path("maddpg", "mpe/simple_spread_v3").read_text())
    assert cfg.env_kwargs == {**pair["env_kwargs"], "continuous_actions": True}
