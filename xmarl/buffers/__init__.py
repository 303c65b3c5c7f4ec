"""Numpy buffers: replay (off-policy) and episodes (on-policy)."""

from xmarl.buffers.episode import EpisodeBuffer
from xmarl.buffers.replay import ReplayBuffer

__all__ = ["EpisodeBuffer", "ReplayBuffer"]
