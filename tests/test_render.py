"""GIFs of greedy episodes: from a checkpoint (``xmarl render``) and during training."""

from __future__ import annotations

import pytest
from PIL import Image

import xmarl
from xmarl.cli import main

TINY = {"train.steps": 600, "train.eval_interval": 300, "train.eval_episodes": 2, "train.num_envs": 2,
        "maddpg.warmup_steps": 100, "maddpg.batch_size": 32, "train.tensorboard": False}


def _frames(path) -> int:
    with Image.open(path) as im:
        assert im.format == "GIF" and im.is_animated
        return im.n_frames


def test_render_trained_spread_policy_to_gif(backend, out_dir, tmp_path, capsys):
    """In every backend: GIFs during training, and ``xmarl render`` from the checkpoint (which
    rebuilds that backend's policy), show the trained greedy policy."""
    r = xmarl.run("maddpg", backend, "mpe/simple_spread_v3", out_dir=out_dir, progress=False,
                  overrides={**TINY, "train.gif_every": 2})
    gifs = sorted((r.run_dir / "gifs").glob("*.gif"))
    assert [g.name for g in gifs] == ["step_000000000600.gif"]  # evaluations at 300 and 600: every 2nd
    assert 10 <= _frames(gifs[0]) <= 25  # one 25-step episode (Pillow merges identical consecutive frames)
    from xmarl.envs import make_env
    from xmarl.training.render import episode_frames

    env = make_env("mpe/simple_spread_v3", 1, render_mode="rgb_array")
    frames = episode_frames(r.learner.policy, env, seed=0)
    assert len(frames) == 25 and frames[0].shape == (700, 700, 3)  # the reset frame plus 24 steps
    out = tmp_path / "episode.gif"
    assert main(["render", "--checkpoint", str(r.run_dir), "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out and _frames(out) == _frames(gifs[0])
    with Image.open(out) as a, Image.open(gifs[0]) as b:  # same policy, same seed: the same first frame
        assert a.convert("RGB").tobytes() == b.convert("RGB").tobytes()


def test_render_rejects_env_without_frames_and_bad_out(out_dir, tmp_path, capsys):
    tmp_path = tmp_path / "out"
    tmp_path.mkdir()
    r = xmarl.run("maddpg", "torch", "target", out_dir=out_dir, progress=False,
                  overrides={**TINY, "train.steps": 300})
    assert main(["render", "--checkpoint", str(r.run_dir), "--out", str(tmp_path / "x.gif")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not render rgb_array frames" in err[0]
    assert main(["render", "--checkpoint", str(r.run_dir), "--out", str(tmp_path / "x.png")]) == 2
    assert "must end in .gif" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("other", ["tensorflow", "mindspore"])
def test_render_in_another_backend(other, out_dir, tmp_path):
    from tests.conftest import require

    require(other)
    r = xmarl.run("maddpg", "torch", "mpe/simple_spread_v3", out_dir=out_dir, progress=False,
                  overrides={**TINY, "train.steps": 300})
    a, b = tmp_path / "torch.gif", tmp_path / "other.gif"
    assert main(["render", "--checkpoint", str(r.run_dir), "--out", str(a)]) == 0
    assert main(["render", "--checkpoint", str(r.run_dir), "--out", str(b), "--backend", other]) == 0
    assert a.read_bytes() == b.read_bytes()  # same weights, same greedy actions, same frames


@pytest.mark.parametrize("task", ["simple_spread_v3", "simple_speaker_listener_v4", "simple_reference_v3",
                                  "simple_tag_v3", "simple_adversary_v3", "simple_push_v3"])
def test_mpe_fast_renders_like_mpe2(task, out_dir, tmp_path):
    from xmarl.envs import make_env
    from xmarl.training.render import episode_frames, make_render_env

    r = xmarl.run("maddpg", "torch", f"mpe-fast/{task}", out_dir=out_dir, progress=False,
                  overrides={**TINY, "train.steps": 300, "train.gif_every": 1, "env_kwargs": {}})
    gif = next((r.run_dir / "gifs").glob("*.gif"))
    if task in ("simple_spread_v3", "simple_speaker_listener_v4", "simple_reference_v3"):
        assert _frames(gif) >= 10  # (a barely trained tag/adversary/push policy may stand still: a still GIF)
    fast = episode_frames(r.learner.policy, make_render_env(f"mpe-fast/{task}", {}), seed=5)
    slow = episode_frames(r.learner.policy, make_env(f"mpe/{task}", 1, render_mode="rgb_array"), seed=5)
    assert len(fast) == len(slow) == 25 and fast[0].shape == slow[0].shape
