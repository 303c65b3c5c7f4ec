"""MADDPG's numpy reference (the losses with alive masks, in float64, which every backend is
tested against) and its parity cases: every action kind, with and without parameter sharing,
on batches where some agents are dead."""

from __future__ import annotations

import numpy as np

from xmarl import registry
from xmarl.compare.parity import ParityCase
from xmarl.compare.reference.data import method_config, parity_spec, random_transitions
from xmarl.core.actions import NEG_INF
from xmarl.core.config import MADDPGConfig
from xmarl.core.interfaces import Weights
from xmarl.core.maddpg import MADDPG
from xmarl.core.spaces import AgentSpec


def _mlp(weights: Weights, net: str, x: np.ndarray) -> np.ndarray:
    """Network ``net`` (ReLU torso, linear head) on agent-major inputs ``[A, B, in]``; kernels
    ``[G, in, out]`` with ``G`` = 1 (shared) or ``A``."""
    k = 0
    while f"{net}/torso/dense_{k}/kernel" in weights:
        x = np.maximum(x @ weights[f"{net}/torso/dense_{k}/kernel"] + weights[f"{net}/torso/dense_{k}/bias"][:, None],
                       0.0)
        k += 1
    return x @ weights[f"{net}/head/kernel"] + weights[f"{net}/head/bias"][:, None]


def _with_ids(cfg: MADDPGConfig, x: np.ndarray) -> np.ndarray:
    """``[A, B, in]`` plus each agent's one-hot id when parameters are shared."""
    A, B = x.shape[:2]
    return np.concatenate([x, np.broadcast_to(np.eye(A)[:, None], (A, B, A))], -1) if cfg.share_parameters else x


def _action(spec: AgentSpec, cfg: MADDPGConfig, raw: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Gumbel-softmax sample on the categorical entries, squashed bounded values on the others."""
    disc, act_mask = spec.disc_mask[:, None], spec.act_mask[:, None]
    z = (np.where(disc * act_mask > 0, raw, NEG_INF) + noise) / cfg.gumbel_temperature
    e = np.exp(z - z.max(-1, keepdims=True))
    bounded = spec.low[:, None] + (np.tanh(raw) + 1.0) * 0.5 * (spec.high - spec.low)[:, None]
    return disc * e / e.sum(-1, keepdims=True) + (1.0 - disc) * bounded


def _joint(x: np.ndarray) -> np.ndarray:
    """``[A, B, d]`` -> ``[B, A*d]``: every agent's values side by side."""
    A, B, d = x.shape
    return x.transpose(1, 0, 2).reshape(B, A * d)


def _masked_mean(x: np.ndarray, w: np.ndarray) -> float:
    """``sum_i sum_b w_ib x_ib / max(sum_b w_ib, 1)``."""
    return float(((w * x).sum(1) / np.maximum(w.sum(1), 1.0)).sum())


def reference_losses(spec: AgentSpec, cfg: MADDPGConfig, weights: Weights, batch: dict[str, np.ndarray]
                     ) -> dict[str, float]:
    """The critic and actor losses of a prepared batch (:meth:`MADDPGCore.prepare_batch`) in
    float64 numpy, with the alive masks of :mod:`xmarl.core.maddpg` (ones where absent)."""
    w64 = {k: np.asarray(v, np.float64) for k, v in weights.items()}
    b = {k: np.asarray(v, np.float64) for k, v in MADDPG.with_masks(batch).items()}
    A, B, _ = b["act"].shape
    alive = b["agent_mask"]

    def critic(net: str, obs: np.ndarray, act: np.ndarray) -> np.ndarray:  # [A, B]: Q_i of every agent i
        x = np.concatenate([_joint(obs), _joint(act)], -1)
        return _mlp(w64, net, _with_ids(cfg, np.broadcast_to(x, (A,) + x.shape)))[..., 0]

    next_act = _action(spec, cfg, _mlp(w64, "target_actor", _with_ids(cfg, b["next_obs"])), b["next_gumbel"])
    next_act = next_act * b["next_agent_mask"][..., None]  # a dead agent acts zeros
    y = b["rew"] + cfg.gamma * (1.0 - b["done"]) * critic("target_critic", b["next_obs"], next_act)
    critic_loss = _masked_mean((critic("critic", b["obs"], b["act"]) - y) ** 2, alive)

    raw = _mlp(w64, "actor", _with_ids(cfg, b["obs"]))
    pi = _action(spec, cfg, raw, b["gumbel"])
    q = np.empty((A, B))
    for i in range(A):  # critic i sees mu_i(o_i) in slot i and the replayed actions of the others
        act = b["act"].copy()
        act[i] = pi[i]
        q[i] = critic("critic", b["obs"], act)[i]
    reg = (raw ** 2 * spec.act_mask[:, None]).sum(-1) / spec.act_mask.sum(-1)[:, None]
    actor_loss = -_masked_mean(q, alive) + cfg.policy_reg * _masked_mean(reg, alive)
    return {"critic": critic_loss, "actor": actor_loss}


def with_dead_agents(data: dict[str, np.ndarray], rng: np.random.Generator, p_dead: float = 0.25,
                     p_leave: float = 0.15, p_join: float = 0.1, dead: tuple[int, ...] = ()
                     ) -> dict[str, np.ndarray]:
    """Replay transitions (:func:`~xmarl.compare.reference.data.random_transitions`) with agents
    that leave and join, as the replay buffer stores them: an agent is dead at ``obs`` with
    probability ``p_dead`` (its ``obs`` and ``act`` rows zeros; its ``next_obs`` row too unless it
    joins, with probability ``p_join``); a live one leaves at the transition with probability
    ``p_leave`` (``done`` 1, its terminal ``next_obs`` kept). Agents in ``dead`` are gone in
    every transition. Adds ``agent_mask`` and ``next_agent_mask`` ``[A, B]``."""
    A, B = data["rew"].shape
    alive = rng.random((A, B)) >= p_dead
    leaves = rng.random((A, B)) < p_leave
    joins = rng.random((A, B)) < p_join
    alive[list(dead)] = False
    joins[list(dead)] = False
    next_alive = np.where(alive, ~leaves, joins)
    out = dict(data)
    for k, keep in (("obs", alive), ("act", alive), ("next_obs", alive | next_alive)):
        out[k] = (data[k] * keep[..., None]).astype(np.float32)
    out["done"] = np.maximum(data["done"], alive & ~next_alive).astype(np.float32)
    out["agent_mask"], out["next_agent_mask"] = alive.astype(np.float32), next_alive.astype(np.float32)
    return out


def parity_cases(method: str = "maddpg", seed: int = 0, updates: int = 3) -> list[ParityCase]:
    """Every action kind, with and without parameter sharing, on a heterogeneous synthetic task;
    ``updates`` frozen batches of 32 transitions with their Gumbel noise, small networks and
    equal learning rates. Agents die (:func:`with_dead_agents`): in every batch some agents are
    dead at ``obs``, leave or join, and in the second batch the last agent is gone throughout
    (its losses' weights sum to zero)."""
    out = []
    for kind in ("discrete", "continuous", "hybrid"):
        for share in (True, False):
            cfg = method_config(method, {"share_parameters": share, "hidden_sizes": [16, 16],
                                         "lr_actor": 1e-3, "lr_critic": 1e-3})
            spec = parity_spec(kind)
            batches = []
            for k in range(updates):
                rng = np.random.default_rng(seed + 1 + k)
                data = random_transitions(spec, 32, rng)
                data = with_dead_agents(data, rng, dead=(spec.n_agents - 1,) if k == 1 else ())
                batches.append(MADDPG.prepare_batch(spec, cfg, data, rng, 0))
            out.append(ParityCase(
                name=f"{method}-{kind}-{'shared' if share else 'per_agent'}", spec=spec, config=cfg,
                weights=MADDPG.init_weights(spec, cfg, seed), batches=batches,
                obs=np.ascontiguousarray(batches[0]["obs"].swapaxes(0, 1))))
    return out


def update_batch(spec: AgentSpec, batch_size: int, seed: int) -> dict[str, np.ndarray]:
    """A MADDPG update batch (transitions plus the update's Gumbel noise) from ``seed``, every
    agent alive."""
    rng = np.random.default_rng(seed)
    return MADDPG.prepare_batch(spec, None, random_transitions(spec, batch_size, rng), rng, 0)


registry.add("parity", "maddpg", parity_cases)
