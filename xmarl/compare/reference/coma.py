"""COMA's numpy references (the recursive TD(lambda) targets, the counterfactual advantage, the
losses with the optional entropy bonus and advantage normalisation, with the agents that leave an
episode masked out) and its parity cases, some with agents
that leave mid-episode. Every backend's targets, advantages, policy and losses are tested against
these."""

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
                      lam: float, agent_mask: np.ndarray | None = None) -> np.ndarray:
    """The recursive definition (:mod:`xmarl.core.coma`) over padded episodes: ``rew``/``q_next``
    ``[..., B, T]`` (``q_next[..., t]`` is the target critic at step ``t + 1``), ``term``/``mask``
    ``[B, T]``, ``agent_mask`` ``[..., B, T+1]`` (default ones). Zero on padded steps and on the
    steps of an agent that has left; an agent's last step before it leaves is its return's
    last (no bootstrap from its critic after it has left)."""
    T = rew.shape[-1]
    am = np.ones(q_next.shape[:-1] + (T + 1,)) if agent_mask is None else np.asarray(agent_mask, np.float64)
    w = mask * am[..., :T]
    cont = np.concatenate([mask[:, 1:], np.zeros_like(mask[:, :1])], 1)
    G = np.zeros(np.broadcast_shapes(rew.shape, w.shape), np.float64)
    nxt = np.zeros(G.shape[:-1])
    for t in reversed(range(T)):
        c = cont[:, t]
        G[..., t] = w[..., t] * (rew[..., t] + gamma * (1 - term[:, t]) * (
            (1 - lam * c) * am[..., t + 1] * q_next[..., t] + lam * c * nxt))
        nxt = G[..., t]
    return G


def normalised_advantages(advantages: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``(A - mean) / (std + 1e-8)`` with the mean and the (population) std weighted by the
    agent-step weights ``w`` (normalised by ``max(sum w, 1)``, as the losses): the steps with
    ``w = 0`` (padding, agents that have left) do not enter the statistics (``coma.advantage_norm``)."""
    advantages, w = np.asarray(advantages, np.float64), np.asarray(w, np.float64)
    norm = max(w.sum(), 1.0)
    mean = (w * advantages).sum() / norm
    std = np.sqrt((w * (advantages - mean) ** 2).sum() / norm)
    return (advantages - mean) / (std + 1e-8)


def policy_entropy(pi: np.ndarray) -> np.ndarray:
    """``H(pi) = -sum_u pi(u) log pi(u)`` on the last axis; actions with ``pi = 0`` (unavailable)
    add 0 (``coma.entropy_coef``)."""
    pi = np.asarray(pi, np.float64)
    return -(pi * np.log(np.maximum(pi, 1e-10))).sum(-1)


def losses(batch: dict[str, np.ndarray], q: np.ndarray, pi: np.ndarray, targets: np.ndarray,
           entropy_coef: float = 0.0, advantage_norm: bool = False) -> dict[str, float]:
    """The critic's and the actor's losses of a prepared batch from the critic's ``q``
    ``[A, B, T, n]``, the policy ``pi`` ``[A, B, T, n]`` and the ``targets`` ``[A, B, T]``: every
    agent-step weighted by ``w = mask * agent_mask`` and normalised by ``max(sum w, 1)``. With
    ``advantage_norm`` the advantages are :func:`normalised_advantages`; with ``entropy_coef`` the
    actor's loss also gets ``- entropy_coef sum(w H(pi)) / max(sum w, 1)`` (:func:`policy_entropy`)."""
    T = batch["mask"].shape[1]
    w = batch["mask"][None] * batch["agent_mask"][:, :, :T].astype(np.float64)
    onehot = batch["act_onehot"][:, :, :T]
    q, pi = np.asarray(q, np.float64), np.asarray(pi, np.float64)
    q_taken = (q * onehot).sum(-1)
    advantages = counterfactual_advantage(q, pi, onehot.argmax(-1))
    if advantage_norm:
        advantages = normalised_advantages(advantages, w)
    log_pi = np.log(np.maximum((pi * onehot).sum(-1), 1e-10))
    norm = max(w.sum(), 1.0)
    actor = -(w * advantages * log_pi).sum() / norm - entropy_coef * (w * policy_entropy(pi)).sum() / norm
    return {"critic": float((w * (q_taken - targets) ** 2).sum() / norm), "actor": float(actor)}


def agents_leave(episodes: dict[str, np.ndarray], leave: np.ndarray) -> dict[str, np.ndarray]:
    """``episodes`` (:func:`~xmarl.compare.reference.data.synthetic_episodes`' layout) where agent
    ``a`` of episode ``b`` leaves at step ``leave[b, a]`` (``[B, A]``; ``0``: never in it, beyond the
    episode's length: stays to the end), as the episode buffer stores it: ``agent_mask`` ``[B, T+1, A]``
    (0 from that step on and on padding), zero observations, actions, rewards and available
    actions once it has left."""
    B, T1, A = episodes["actions"].shape
    lengths = episodes["mask"].sum(1).astype(int)
    t = np.arange(T1)[None, :, None]
    am = ((t <= lengths[:, None, None]) & (t < np.asarray(leave)[:, None, :])).astype(np.float32)
    return {**episodes, "agent_mask": am, "obs": episodes["obs"] * am[..., None],
            "actions": episodes["actions"] * am.astype(np.int64), "avail": episodes["avail"] * am[..., None],
            "rew": episodes["rew"] * am[:, :-1]}


def random_leaving(episodes: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """``leave`` ``[B, A]`` for :func:`agents_leave`: every agent but the first leaves with
    probability 1/2 at a step drawn from ``1 .. L`` (``L``: at the final observation); in the first
    episode (``max_len`` steps) the last agent always leaves halfway."""
    B, T1, A = episodes["actions"].shape
    lengths = episodes["mask"].sum(1).astype(int)
    leave = np.where(rng.random((B, A)) < 0.5, rng.integers(1, lengths[:, None] + 1, (B, A)), T1)
    leave[:, 0] = T1
    leave[0, -1] = (T1 - 1) // 2
    return leave


#: the config of the parity case with COMA's optional extras on: an entropy bonus, normalised advantages
#: and a learning-rate decay (batch ``k`` comes at env step ``BATCH_STEPS * k``: rates x1, x0.55, x0.1)
EXTRAS = {"entropy_coef": 0.01, "advantage_norm": True, "lr_decay_steps": 60_000, "lr_final_fraction": 0.1}
#: env steps between the parity cases' batches (the exploration floor and the lr schedule read them)
BATCH_STEPS = 30_000


def parity_cases(method: str = "coma", seed: int = 0, updates: int = 3) -> list[ParityCase]:
    """COMA's parity cases (see :mod:`xmarl.compare.parity`): shared and per-agent weights,
    feed-forward and recurrent actors, on heterogeneous agents with random action masks and
    padded episodes of mixed lengths; two more (``-dead``: per-agent feed-forward, shared
    recurrent) on episodes in which agents leave mid-episode (:func:`random_leaving`), and one
    (``-dead-entropy-advnorm``, per-agent feed-forward) with agents leaving and the
    optional extras on (:data:`EXTRAS`: the entropy bonus, advantage normalisation and a
    learning-rate decay). Probes:
    the actor's logits (and GRU state) on the first steps, the critic's Q-values, the
    TD(lambda) targets, the policy and the counterfactual advantages. Each update is
    ``update``/``update_recurrent`` followed by the core's ``after_update`` with a target copy
    every 2 updates, so the copy is compared too."""
    spec = parity_spec("discrete")
    variants = [(share, recurrent, False, False) for recurrent in (False, True) for share in (True, False)]
    variants += [(False, False, True, False), (True, True, True, False), (False, False, True, True)]
    out = []
    for share, recurrent, dead, extras in variants:
        cfg = method_config(method, {"share_parameters": share, "recurrent": recurrent, "hidden_sizes": [16, 16],
                                     "critic_hidden_sizes": [16, 16], "rnn_hidden_dim": 8, "lr_actor": 1e-3,
                                     "lr_critic": 1e-3, "target_update_interval": 2,
                                     **(EXTRAS if extras else {})})
        batches = []
        for k in range(updates):
            rng = np.random.default_rng([seed, 100 + k])
            ep = synthetic_episodes(spec, 4, 6, rng)
            if dead:
                ep = agents_leave(ep, random_leaving(ep, rng))
            batches.append(COMA.prepare_batch(spec, cfg, ep, rng, BATCH_STEPS * k))
        obs = np.ascontiguousarray(batches[0]["obs"][:, :, 0].transpose(1, 0, 2))  # first steps, [B, A, od]

        def probes(learner: Any, b: dict = batches[0], o: np.ndarray = obs) -> dict[str, np.ndarray]:
            logits, state = learner.policy.forward_numpy(o.copy(), None)
            extra = {"policy_state": state} if state is not None else {}
            return {"policy_logits": logits, **extra, **learner.diagnostics(b)}

        def update(learner: Any, batch: dict, k: int, c: COMAConfig = cfg) -> dict[str, float]:
            COMA.before_batch(learner, c, BATCH_STEPS * k)  # as the trainer does before a batch's updates
            metrics = learner.update_recurrent(batch) if c.recurrent else learner.update(batch)
            COMA.after_update(learner, c, k + 1)
            return metrics

        name = f"{method}-{'shared' if share else 'per_agent'}-{'gru' if recurrent else 'mlp'}"
        out.append(ParityCase(
            name=name + ("-dead" if dead else "") + ("-entropy-advnorm" if extras else ""),
            spec=spec, config=cfg, weights=COMA.init_weights(spec, cfg, seed), batches=batches, obs=None,
            probes=probes, update=update))
    return out


registry.add("parity", "coma", parity_cases)
