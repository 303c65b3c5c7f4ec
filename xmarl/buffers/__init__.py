"""Numpy buffers: replay (off-policy)."""

from xmarl.buffers.replay import ReplayBuffer

__all__ = ["ReplayBuffer"]
