"""Synthetic inputs for parity cases, references and tests: heterogeneous tasks (padding is
exercised), random observations, actions, replay transitions and padded episodes, and method
configs with small networks. Everything is drawn from a given generator, so every backend is
fed the same numbers."""

from __future__ import annotations

from typing import Any

import numpy as np

from xmarl.config import load_config
from xmarl.core.spaces import AgentSpec


def parity_spec(kind: str, n_agents: int = 3) -> AgentSpec:
    """A synthetic task: heterogeneous observation and action sizes, so padding is exercised.

    Agent ``i`` observes ``6 + 2i`` entries. Discrete and continuous agents have ``3 + i % 2``
    action entries (continuous bounds ``[-1 - i, 1 + 0.5 i]``); ``"hybrid"`` agents have
    ``n_i = 2 + i % 2`` choices and ``d_i = 1 + i % 3`` continuous entries (for three agents:
    2+1, 3+2 and 2+3 entries, padded to 5).
    """
    agents = tuple(f"agent_{i}" for i in range(n_agents))
    obs_dims = tuple(6 + 2 * i for i in range(n_agents))
    disc_dims: tuple[int, ...] = ()
    if kind == "hybrid":
        disc_dims = tuple(2 + i % 2 for i in range(n_agents))
        act_dims = tuple(n + 1 + i % 3 for i, n in enumerate(disc_dims))
    else:
        act_dims = tuple(3 + (i % 2) for i in range(n_agents))
    ad = max(act_dims)
    low = np.zeros((n_agents, ad), np.float32)
    high = np.zeros((n_agents, ad), np.float32)
    if kind in ("continuous", "hybrid"):
        for i, d in enumerate(act_dims):
            start = disc_dims[i] if disc_dims else 0
            low[i, start:d], high[i, start:d] = -1.0 - i, 1.0 + 0.5 * i
    return AgentSpec(agents, obs_dims, kind, act_dims, low, high, disc_dims)


def random_observations(spec: AgentSpec, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Standard-normal observations ``[A, *shape, obs_dim]``, zero on each agent's padding."""
    obs_mask = np.zeros((spec.n_agents, spec.obs_dim), np.float32)
    for i, d in enumerate(spec.obs_dims):
        obs_mask[i, :d] = 1.0
    obs = rng.standard_normal((spec.n_agents, *shape, spec.obs_dim)).astype(np.float32)
    return obs * obs_mask.reshape((spec.n_agents,) + (1,) * len(shape) + (spec.obs_dim,))


def random_actions(spec: AgentSpec, batch_size: int, rng: np.random.Generator) -> np.ndarray:
    """Valid action vectors ``[A, B, act_dim]``: one-hot choices on categorical entries,
    uniform points within the bounds on continuous ones, zero on padding."""
    A, ad = spec.n_agents, spec.act_dim
    if spec.discrete:
        idx = (rng.random((A, batch_size)) * np.asarray(spec.act_dims)[:, None]).astype(int)
        return (np.eye(ad, dtype=np.float32)[idx] * spec.act_mask[:, None, :]).astype(np.float32)
    u = rng.random((A, batch_size, ad)).astype(np.float32)
    act = spec.low[:, None] + u * (spec.high - spec.low)[:, None]
    if spec.hybrid:  # one-hot choice on the categorical entries, the uniform point after them
        idx = (rng.random((A, batch_size)) * np.asarray(spec.disc_dims)[:, None]).astype(int)
        act = np.where(spec.disc_mask[:, None] > 0, np.eye(ad, dtype=np.float32)[idx], act)
    return act.astype(np.float32)


def random_transitions(spec: AgentSpec, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A replay-style batch ``{obs, act, rew, next_obs, done}``, agent-major (``[A, B, ...]``)."""
    act = random_actions(spec, batch_size, rng)
    return {
        "obs": random_observations(spec, (batch_size,), rng),
        "act": act,
        "rew": rng.standard_normal((spec.n_agents, batch_size)).astype(np.float32),
        "next_obs": random_observations(spec, (batch_size,), rng),
        "done": (rng.random((spec.n_agents, batch_size)) < 0.1).astype(np.float32),
    }


def method_config(method: str, overrides: dict[str, Any] | None = None) -> Any:
    """``method``'s validated config section from the shipped defaults, with ``overrides``
    given relative to the section (``{"hidden_sizes": [16, 16]}``)."""
    cfg = load_config(method, overrides={f"{method}.{k}": v for k, v in (overrides or {}).items()})
    return getattr(cfg, method)


def synthetic_episodes(spec: AgentSpec, n_episodes: int, max_len: int,
                       rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random padded episodes in :class:`~xmarl.buffers.EpisodeBuffer`'s layout, for parity
    and reference tests: lengths between 1 and ``max_len`` (the first episode has ``max_len``),
    some terminated and some truncated, random available-action masks that always contain the
    taken action."""
    B, T, A, n = n_episodes, max_len, spec.n_agents, spec.act_dim
    lengths = rng.integers(1, T + 1, B)
    lengths[0] = T
    steps = np.arange(T + 1)[None, :, None]
    valid = steps <= lengths[:, None, None]  # steps 0..L hold data (L: the final observation)
    avail = (rng.random((B, T + 1, A, n)) < 0.7).astype(np.float32) * spec.act_mask
    n_i = np.asarray(spec.act_dims)
    actions = (rng.random((B, T + 1, A)) * n_i).astype(np.int64)
    avail[np.arange(B)[:, None, None], np.arange(T + 1)[None, :, None], np.arange(A)[None, None], actions] = 1.0
    obs_mask = (np.arange(spec.obs_dim)[None, :] < np.asarray(spec.obs_dims)[:, None]).astype(np.float32)
    obs = rng.standard_normal((B, T + 1, A, spec.obs_dim)).astype(np.float32) * obs_mask * valid[..., None]
    mask = (np.arange(T)[None, :] < lengths[:, None]).astype(np.float32)
    term = np.zeros((B, T), np.float32)
    ends = rng.random(B) < 0.5
    term[np.flatnonzero(ends), lengths[ends] - 1] = 1.0
    return {"obs": obs, "actions": actions * valid, "avail": avail * valid[..., None],
            "rew": rng.standard_normal((B, T, A)).astype(np.float32) * mask[..., None], "term": term, "mask": mask}
