"""CommNet's numpy reference (the forward pass and the losses in float64, which every backend is
tested against) and its parity cases."""

from __future__ import annotations

from typing import Any

import numpy as np

from xmarl import registry
from xmarl.compare.parity import ParityCase
from xmarl.compare.reference.data import method_config, parity_spec, synthetic_episodes
from xmarl.core.actions import NEG_INF
from xmarl.core.commnet import COMMNET, NET, comm_mode, has_comm, has_skip, range_mask, static_mask
from xmarl.core.config import CommNetConfig
from xmarl.core.interfaces import Weights
from xmarl.core.spaces import AgentSpec
from xmarl.core.value_norm import IDENTITY


def _sigma(cfg: CommNetConfig, x: np.ndarray) -> np.ndarray:
    return np.tanh(x) if cfg.activation == "tanh" else np.maximum(x, 0.0)


def _dense(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """``x`` ``[N, A, in]`` times per-group kernels ``[G, in, out]`` (G = 1 or A) -> ``[N, A, out]``."""
    y = np.einsum("nai,aio->nao", x.astype(np.float64), np.broadcast_to(kernel, (x.shape[1],) + kernel.shape[1:]))
    return y if bias is None else y + bias[None]


def comm_vectors(h: np.ndarray, agent_mask: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """``c_j`` = mean of ``h_j'`` over the active agents ``j' != j`` that ``j`` hears (0 if none);
    ``h`` ``[N, A, H]``, ``agent_mask`` ``[N, A]``, ``mask`` None (all) or ``[A, A]``/``[N, A, A]``."""
    m = agent_mask[..., None].astype(np.float64)
    hm = h * m
    if mask is None:
        return (hm.sum(1, keepdims=True) - hm) / np.maximum(m.sum(1, keepdims=True) - m, 1.0)
    W = np.broadcast_to(mask * (1.0 - np.eye(mask.shape[-1])), (h.shape[0],) + mask.shape[-2:])
    return (W @ hm) / np.maximum(W @ m, 1.0)


def reference_forward(spec: AgentSpec, cfg: CommNetConfig, weights: Weights, obs: np.ndarray,
                      agent_mask: np.ndarray | None = None, comm_mask: np.ndarray | None = None,
                      state: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """One step of the network in float64 numpy, env-major: ``obs`` ``[N, A, obs_dim]``,
    ``agent_mask`` ``[N, A]`` (default ones), ``comm_mask`` ``[N, A, A]`` for ``comm_range``
    (default from positions), ``state`` ``[N, A, H]`` (recurrent; default zeros). Returns
    ``hiddens`` ``[K+1, N, A, H]`` (``h^0`` .. ``h^K``), raw ``logits`` ``[N, A, n]``, ``values``
    ``[N, A]`` and ``state`` (``h^K``)."""
    w = {k[len(NET) + 1:]: np.asarray(v, np.float64) for k, v in weights.items()}
    N, A = obs.shape[:2]
    am = np.ones((N, A)) if agent_mask is None else agent_mask
    mode = comm_mode(cfg)
    mask = static_mask(spec, cfg)
    if mode == "range":
        mask = range_mask(cfg, obs) if comm_mask is None else comm_mask
    if cfg.encoder == "embedding":
        ids = obs[..., 0].astype(np.int64)
        table = np.broadcast_to(w["encoder/kernel"], (A,) + w["encoder/kernel"].shape[1:])
        e = _sigma(cfg, table[np.arange(A)[None, :], ids] + w["encoder/bias"][None])
    else:
        e = _sigma(cfg, _dense(obs, w["encoder/kernel"], w["encoder/bias"]))
    if cfg.recurrent:
        h = np.zeros_like(e) if state is None else state.astype(np.float64)
    else:
        h = e
    hiddens = [h]
    c = comm_vectors(h, am, mask) if (cfg.recurrent and mode != "none") else None
    for i in range(cfg.comm_steps):
        z = _dense(h, w[f"comm_{i}/hidden/kernel"], w[f"comm_{i}/hidden/bias"])
        if has_comm(cfg, i):
            z = z + _dense(c, w[f"comm_{i}/comm/kernel"])
        if has_skip(cfg):
            z = z + _dense(e, w[f"comm_{i}/skip/kernel"])
        h = _sigma(cfg, z)
        hiddens.append(h)
        if mode != "none":
            c = comm_vectors(h, am, mask)
    logits = _dense(h, w["policy/kernel"], w["policy/bias"])
    values = _dense(h, w["value/kernel"], w["value/bias"])[..., 0]
    return {"hiddens": np.stack(hiddens), "logits": logits, "values": values, "state": h}


def reference_losses(spec: AgentSpec, cfg: CommNetConfig, weights: Weights, batch: dict[str, np.ndarray]
                     ) -> dict[str, float]:
    """The losses of a prepared batch (:func:`prepare_batch`) in float64 numpy."""
    A, B, T1, od = batch["obs"].shape
    T = T1 - 1
    obs = batch["obs"].transpose(1, 2, 0, 3)  # [B, T+1, A, od]
    am = batch["agent_mask"].transpose(1, 2, 0)  # [B, T+1, A]
    cm = batch.get("comm_mask")
    steps = T1 if cfg.actor_critic else T
    mu, sigma = np.asarray(batch.get("value_stats", IDENTITY), np.float64)
    if cfg.recurrent:
        outs, state = [], None
        for t in range(steps):
            o = reference_forward(spec, cfg, weights, obs[:, t], am[:, t], None if cm is None else cm[:, t], state)
            state = o["state"]
            outs.append(o)
        logits = np.stack([o["logits"] for o in outs], 1)
        values = np.stack([o["values"] for o in outs], 1)
    else:
        o = reference_forward(spec, cfg, weights, obs[:, :steps].reshape(B * steps, A, od),
                              am[:, :steps].reshape(B * steps, A),
                              None if cm is None else cm[:, :steps].reshape(B * steps, A, A))
        logits = o["logits"].reshape(B, steps, A, -1)
        values = o["values"].reshape(B, steps, A)
    logits, values = logits.transpose(2, 0, 1, 3), mu + sigma * values.transpose(2, 0, 1)  # agent-major
    avail = batch["avail"][:, :, :T]
    z = np.where(avail > 0, logits[:, :, :T], NEG_INF)
    logp = z - z.max(-1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
    taken = (batch["act_onehot"][:, :, :T] * logp).sum(-1)
    mask = batch["mask"]
    v = values[:, :, :T]
    if cfg.actor_critic:
        cont = np.concatenate([mask[:, 1:], np.zeros_like(mask[:, :1])], 1)
        nxt = values[:, :, 1:] * batch["agent_mask"][:, :, 1:]  # an agent that has left has no value
        b = mask * (batch["rew"] + cfg.gamma * (1 - batch["term"]) * (1 - cfg.td_lambda * cont) * nxt)
        R = b @ batch["td_matrix"].T
    else:
        R = batch["returns"]
    wts = mask[None] * batch["agent_mask"][:, :, :T]
    n = max(wts.sum(), 1.0)
    adv = R - v
    entropy = -(wts * (np.exp(logp) * logp).sum(-1)).sum() / n
    policy_loss = -(wts * taken * adv).sum() / n
    value_loss = (wts * (adv / sigma) ** 2).sum() / n
    loss = policy_loss + cfg.value_coef * value_loss - cfg.entropy_coef * entropy
    return {"loss": loss, "policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy}


def parity_batch(spec: AgentSpec, cfg: CommNetConfig, n_episodes: int, max_len: int,
                 rng: np.random.Generator, agent_mask: bool = False) -> dict[str, np.ndarray]:
    """A prepared batch of random padded episodes (optionally with random agent masks, each
    step keeping at least one agent)."""
    ep = synthetic_episodes(spec, n_episodes, max_len, rng)
    if cfg.encoder == "embedding":
        ep["obs"] = np.floor(rng.random(ep["obs"].shape[:-1] + (1,)) * cfg.n_ids).astype(np.float32)
    if agent_mask:
        am = (rng.random(ep["actions"].shape) < 0.7).astype(np.float32)
        am[..., 0] = 1.0
        ep["agent_mask"] = am
    return COMMNET.prepare_batch(spec, cfg, ep, rng, 0)


#: every option the parity cases and tests rely on, pinned (the shipped defaults are merged with the
#: default env's config, which may change them)
BASE_OPTIONS: dict[str, Any] = {
    "gamma": 0.99, "actor_critic": False, "td_lambda": 0.8, "lr": 1e-3, "grad_clip": 10.0, "value_coef": 0.03,
    "entropy_coef": 0.0, "value_norm": False, "hidden_size": 16, "comm_steps": 2, "activation": "tanh",
    "encoder": "linear", "n_ids": None,
    "skip_connection": False, "recurrent": False, "share_parameters": True, "communicate": True, "comm_mask": None,
    "comm_range": None, "position_dims": [2, 3]}


def parity_cases(method: str = "commnet", seed: int = 0, updates: int = 3) -> list[ParityCase]:
    """The paper's variants on small synthetic
    tasks. Probes record ``h^0 .. h^K`` (``forward/hidden_<i>``), logits, values and the
    recurrent state of one step on the first batch's observations; gradients, losses and 3
    updates follow. Cases: the levers network (embedding encoder, no masks, no skip connection,
    two rounds of communication); a linear encoder with the skip connection, a static adjacency
    and agent masks; per-agent weights with per-step range masks, ReLU and actor-critic targets;
    a recurrent net with agent masks and actor-critic targets."""
    variants = {
        "plain-embedding": ({"encoder": "embedding", "n_ids": 11}, False),
        "skip-static-mask": ({"skip_connection": True, "value_norm": True,
                              "comm_mask": [[0, 1, 0, 1], [1, 0, 1, 0], [0, 0, 0, 1], [1, 1, 1, 0]]}, True),
        "range-mask-per-agent-ac": ({"comm_range": 1.2, "position_dims": [0, 1], "share_parameters": False,
                                     "actor_critic": True, "activation": "relu", "value_norm": True}, False),
        "recurrent-ac": ({"recurrent": True, "actor_critic": True, "value_norm": True}, True),
    }
    out = []
    for name, (over, agent_mask) in variants.items():
        cfg = method_config(method, {**BASE_OPTIONS, "comm_steps": 3 if name.startswith("plain") else 2,
                                     "entropy_coef": 0.01, **over})
        spec = parity_spec("discrete", n_agents=4)
        if cfg.encoder == "embedding":
            spec = AgentSpec(spec.agents, (1,) * 4, "discrete", spec.act_dims, spec.low, spec.high)
        batches = [parity_batch(spec, cfg, 6, 4, np.random.default_rng(seed + 1 + k), agent_mask)
                   for k in range(updates)]
        b0 = batches[0]
        obs = np.ascontiguousarray(b0["obs"][:, :, 0].transpose(1, 0, 2))  # [B, A, od], step 0
        am = np.ascontiguousarray(b0["agent_mask"][:, :, 0].T)
        cm = b0["comm_mask"][:, 0] if "comm_mask" in b0 else None
        state = (np.random.default_rng(seed).standard_normal((obs.shape[0], 4, cfg.hidden_size)) * 0.5
                 ).astype(np.float32) if cfg.recurrent else None

        def probes(learner: Any, obs: np.ndarray = obs, am: np.ndarray = am, cm: np.ndarray | None = cm,
                   state: np.ndarray | None = state) -> dict[str, np.ndarray]:
            got = learner.policy.probe_numpy(obs, state, am, cm)
            out = {f"hidden_{i}": h for i, h in enumerate(got["hiddens"])}
            out.update({k: got[k] for k in ("logits", "values", "state") if got[k] is not None})
            return out

        out.append(ParityCase(name=f"{method}-{name}", spec=spec, config=cfg,
                              weights=COMMNET.init_weights(spec, cfg, seed), batches=batches, obs=None, probes=probes))
    return out


registry.add("parity", "commnet", parity_cases)
