"""COMA's numpy references (the recursive TD(lambda) targets, the counterfactual advantage) and
its parity cases. Every backend's targets, advantages and policy are tested against these."""

from __future__ import annotations

from typing import Any

import numpy as np

from xmarl import registry
from xmarl.compare.parity import ParityCase
from xmarl.compare.reference.data import method_config, parity_spec, synthetic_episodes
from xmarl.core.coma import COMA
from xmarl.core.config import COMAConfig


def counterfactual_advantage(q: np.ndarray, pi: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """``Q(s, u) - sum_u' pi(u') Q(s, (u^-a, u'))`` from ``q``/``pi`` ``[..., n]`` and actions ``[...]``."""
    taken = np.take_along_axis(q, actions[..., None], -1)[..., 0]
    return taken - (pi * q).sum(-1)


def td_lambda_targets(rew: np.ndarray, q_next: np.ndarray, term: np.ndarray, mask: np.ndarray, gamma: float,
                      lam: float) -> np.ndarray:
    """The recursive definition (:mod:`xmarl.core.coma`) over padded episodes: ``rew``/``q_next``
    ``[..., B, T]`` (``q_next[..., t]`` is the target critic at step ``t + 1``), ``term``/``mask``
    ``[B, T]``. Zero on padded steps."""
    T = rew.shape[-1]
    cont = np.concatenate([mask[:, 1:], np.zeros_like(mask[:, :1])], 1)
    G = np.zeros(np.broadcast_shapes(rew.shape, mask.shape), np.float64)
    nxt = np.zeros(G.shape[:-1])
    for t in reversed(range(T)):
        c = cont[:, t]
        G[..., t] = mask[:, t] * (rew[..., t] + gamma * (1 - term[:, t]) * (
            (1 - lam * c) * q_next[..., t] + lam * c * nxt))
        nxt = G[..., t]
    return G


def parity_cases(method: str = "coma", seed: int = 0, updates: int = 3) -> list[ParityCase]:
    """COMA's parity cases (see :mod:`xmarl.compare.parity`): shared and per-agent weights,
    feed-forward and recurrent actors, on heterogeneous agents with random action masks and
    padded episodes of mixed lengths. Probes: the actor's logits (and GRU state) on the first
    steps, the critic's Q-values, the TD(lambda) targets, the policy and the counterfactual
    advantages. Each update is ``update``/``update_recurrent`` followed by the core's ``after_update``
    with a target copy every 2 updates, so the copy is compared too."""
    spec = parity_spec("discrete")
    out = []
    for recurrent in (False, True):
        for share in (True, False):
            cfg = method_config(method, {"share_parameters": share, "recurrent": recurrent, "hidden_sizes": [16, 16],
                                         "critic_hidden_sizes": [16, 16], "rnn_hidden_dim": 8, "lr_actor": 1e-3,
                                         "lr_critic": 1e-3, "target_update_interval": 2})
            batches = []
            for k in range(updates):
                rng = np.random.default_rng([seed, 100 + k])
                batches.append(COMA.prepare_batch(spec, cfg, synthetic_episodes(spec, 4, 6, rng), rng, 30_000 * k))
            obs = np.ascontiguousarray(batches[0]["obs"][:, :, 0].transpose(1, 0, 2))  # first steps, [B, A, od]

            def probes(learner: Any, b: dict = batches[0], o: np.ndarray = obs) -> dict[str, np.ndarray]:
                logits, state = learner.policy.forward_numpy(o.copy(), None)
                extra = {"policy_state": state} if state is not None else {}
                return {"policy_logits": logits, **extra, **learner.diagnostics(b)}

            def update(learner: Any, batch: dict, k: int, c: COMAConfig = cfg) -> dict[str, float]:
                metrics = learner.update_recurrent(batch) if c.recurrent else learner.update(batch)
                COMA.after_update(learner, c, k + 1)
                return metrics

            out.append(ParityCase(
                name=f"{method}-{'shared' if share else 'per_agent'}-{'gru' if recurrent else 'mlp'}",
                spec=spec, config=cfg, weights=COMA.init_weights(spec, cfg, seed), batches=batches, obs=None,
                probes=probes, update=update))
    return out


registry.add("parity", "coma", parity_cases)
