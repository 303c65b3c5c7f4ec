"""MADDPG's parity cases: every action kind, with and without parameter sharing."""

from __future__ import annotations

import numpy as np

from xmarl import registry
from xmarl.compare.parity import ParityCase
from xmarl.compare.reference.data import method_config, parity_spec, random_transitions
from xmarl.core.maddpg import MADDPG
from xmarl.core.spaces import AgentSpec


def parity_cases(method: str = "maddpg", seed: int = 0, updates: int = 3) -> list[ParityCase]:
    """Every action kind, with and without parameter sharing, on a heterogeneous synthetic task;
    ``updates`` frozen batches of 32 transitions with their Gumbel noise, small networks and
    equal learning rates."""
    out = []
    for kind in ("discrete", "continuous", "hybrid"):
        for share in (True, False):
            cfg = method_config(method, {"share_parameters": share, "hidden_sizes": [16, 16],
                                         "lr_actor": 1e-3, "lr_critic": 1e-3})
            spec = parity_spec(kind)
            batches = []
            for k in range(updates):
                rng = np.random.default_rng(seed + 1 + k)
                batches.append(MADDPG.prepare_batch(spec, cfg, random_transitions(spec, 32, rng), rng, 0))
            out.append(ParityCase(
                name=f"{method}-{kind}-{'shared' if share else 'per_agent'}", spec=spec, config=cfg,
                weights=MADDPG.init_weights(spec, cfg, seed), batches=batches,
                obs=np.ascontiguousarray(batches[0]["obs"].swapaxes(0, 1))))
    return out


def update_batch(spec: AgentSpec, batch_size: int, seed: int) -> dict[str, np.ndarray]:
    """A MADDPG update batch (transitions plus the update's Gumbel noise) from ``seed``."""
    rng = np.random.default_rng(seed)
    return MADDPG.prepare_batch(spec, None, random_transitions(spec, batch_size, rng), rng, 0)


registry.add("parity", "maddpg", parity_cases)
