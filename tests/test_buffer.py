"""Replay buffer: ring wrap-around, agent-major samples, state round trip."""

from __future__ import annotations

import numpy as np

from xmarl.buffers import ReplayBuffer


def _fill(buf: ReplayBuffer, start: int, n: int) -> None:
    vals = np.arange(start, start + n, dtype=np.float32)
    A = buf.obs.shape[1]
    buf.add(np.broadcast_to(vals[:, None, None], (n, A, buf.obs.shape[2])),
            np.broadcast_to(vals[:, None, None], (n, A, buf.act.shape[2])),
            np.broadcast_to(vals[:, None], (n, A)),
            np.broadcast_to(vals[:, None, None] + 0.5, (n, A, buf.obs.shape[2])),
            np.zeros((n, A)))


def test_ring_wraps_and_keeps_newest():
    buf = ReplayBuffer(10, 2, 3, 4)
    _fill(buf, 0, 7)
    _fill(buf, 7, 7)  # 14 written into 10 slots
    assert len(buf) == 10 and buf.pos == 4
    assert sorted(buf.rew[:, 0].tolist()) == list(range(4, 14))


def test_sample_is_agent_major_and_consistent():
    buf = ReplayBuffer(50, 3, 2, 5)
    _fill(buf, 0, 50)
    b = buf.sample(16, np.random.default_rng(0))
    assert b["obs"].shape == (3, 16, 2) and b["act"].shape == (3, 16, 5) and b["rew"].shape == (3, 16)
    np.testing.assert_array_equal(b["obs"][:, :, 0], b["rew"])
    np.testing.assert_array_equal(b["next_obs"][:, :, 0], b["rew"] + 0.5)


def test_state_dict_round_trip():
    buf = ReplayBuffer(8, 2, 3, 4)
    _fill(buf, 0, 5)
    other = ReplayBuffer(8, 2, 3, 4)
    other.load_state_dict(buf.state_dict())
    a, b = buf.sample(4, np.random.default_rng(1)), other.sample(4, np.random.default_rng(1))
    for k, v in a.items():
        np.testing.assert_array_equal(v, b[k])
    assert other.pos == buf.pos and len(other) == 5
