"""BiCNet's numpy reference (the bidirectional recurrence over the agent axis and the losses, in
float64, which every backend is tested against), the agent-reversal of canonical weights and
BiCNet's parity cases.

The reference runs the recurrence the way :mod:`xmarl.core.bicnet` defines dead agents: per
transition, over the sequence of live agents only, in order (the backends carry the state
through a dead agent's position instead; the two agree exactly when that definition holds).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xmarl import registry
from xmarl.compare.parity import ParityCase
from xmarl.compare.reference.data import method_config, parity_spec, random_transitions
from xmarl.compare.reference.maddpg import _action, _masked_mean, with_dead_agents
from xmarl.core.bicnet import BICNET
from xmarl.core.config import BiCNetConfig
from xmarl.core.interfaces import Weights
from xmarl.core.spaces import AgentSpec

GATES = ("kernel", "recurrent_kernel", "bias", "recurrent_bias")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def gru_cell(w: Weights, prefix: str, x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """One step of the GRU ``<prefix>/gru/*`` (gates reset, update, candidate; the recurrent bias
    inside the reset gate) for an input ``x [in]`` and the hidden ``h [H]``."""
    k, u, b, c = (np.asarray(w[f"{prefix}/gru/{g}"][0], np.float64) for g in GATES)
    xr, xz, xn = np.split(x @ k + b, 3)
    hr, hz, hn = np.split(h @ u + c, 3)
    r, z = _sigmoid(xr + hr), _sigmoid(xz + hz)
    return (1.0 - z) * np.tanh(xn + r * hn) + z * h


def _dense(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """``x [A, B, in]`` times per-group kernels ``[G, in, out]`` (G = 1 or A), plus ``bias [G, out]``."""
    A = x.shape[0]
    k = np.broadcast_to(np.asarray(kernel, np.float64), (A,) + kernel.shape[1:])
    return np.einsum("abi,aio->abo", x, k) + np.asarray(bias, np.float64)[:, None]


def reference_network(weights: Weights, net: str, x: np.ndarray, alive: np.ndarray) -> dict[str, np.ndarray]:
    """Network ``net`` (``actor``, ``critic``, ``target_*``) on agent-major inputs ``x [A, B, in]``
    with alive mask ``[A, B]``: ``features [A, B, 2H]`` (``[f_i, g_i]``, zeros for dead agents)
    and the head's ``out [A, B, out]``."""
    x = np.asarray(x, np.float64)
    A, B, _ = x.shape
    e = np.maximum(_dense(x, weights[f"{net}/torso/dense_0/kernel"], weights[f"{net}/torso/dense_0/bias"]), 0.0)
    H = e.shape[-1]
    feats = np.zeros((A, B, 2 * H))
    for b in range(B):
        live = np.flatnonzero(np.asarray(alive)[:, b] > 0)
        for direction, order, cols in (("forward", live, slice(0, H)), ("backward", live[::-1], slice(H, 2 * H))):
            h = np.zeros(H)
            for i in order:  # the live agents only, in order: a dead agent neither passes nor receives
                h = gru_cell(weights, f"{net}/{direction}", e[i, b], h)
                feats[i, b, cols] = h
    return {"features": feats, "out": _dense(feats, weights[f"{net}/head/kernel"], weights[f"{net}/head/bias"])}


def reference_losses(spec: AgentSpec, cfg: BiCNetConfig, weights: Weights, batch: dict[str, np.ndarray]
                     ) -> dict[str, Any]:
    """The critic and actor losses of a prepared batch in float64, and the diagnostics
    (``features`` and ``raw`` of the actor at ``obs``, ``q`` of the critic at the replayed
    actions, the targets ``y``), with the alive masks of :mod:`xmarl.core.bicnet`."""
    b = {k: np.asarray(v, np.float64) for k, v in BICNET.with_masks(batch).items()}
    alive, next_alive = b["agent_mask"], b["next_agent_mask"]

    def critic(net: str, obs: np.ndarray, act: np.ndarray, am: np.ndarray) -> np.ndarray:
        return reference_network(weights, net, np.concatenate([obs, act], -1), am)["out"][..., 0]

    next_raw = reference_network(weights, "target_actor", b["next_obs"], next_alive)["out"]
    next_act = _action(spec, cfg, next_raw, b["next_gumbel"]) * next_alive[..., None]
    y = b["rew"] + cfg.gamma * (1.0 - b["done"]) * critic("target_critic", b["next_obs"], next_act, next_alive)
    q = critic("critic", b["obs"], b["act"], alive)
    actor = reference_network(weights, "actor", b["obs"], alive)
    raw = actor["out"]
    pi = _action(spec, cfg, raw, b["gumbel"]) * alive[..., None]
    reg = (raw ** 2 * spec.act_mask[:, None]).sum(-1) / spec.act_mask.sum(-1)[:, None]
    return {"critic": _masked_mean((q - y) ** 2, alive),
            "actor": -_masked_mean(critic("critic", b["obs"], pi, alive), alive) + cfg.policy_reg * _masked_mean(
                reg, alive),
            "features": actor["features"], "raw": raw, "q": q, "y": y}


def reverse_weights(weights: Weights) -> Weights:
    """The weights of the same networks for the agents in reverse order: forward and backward
    GRUs exchanged, the head's row blocks (those reading ``f_i`` and those reading ``g_i``)
    exchanged, and per-agent slices (encoders and heads with ``G > 1``) reversed. Then
    ``out(reverse_weights(w), x[::-1]) = out(w, x)[::-1]`` for every network (see
    :mod:`xmarl.core.bicnet`)."""
    out: Weights = {}
    for name, v in weights.items():
        if "/forward/gru/" in name:
            v = weights[name.replace("/forward/", "/backward/")]
        elif "/backward/gru/" in name:
            v = weights[name.replace("/backward/", "/forward/")]
        elif name.endswith("/head/kernel"):
            H = v.shape[1] // 2
            v = np.concatenate([v[:, H:], v[:, :H]], 1)
        if "/gru/" not in name and v.shape[0] > 1:
            v = v[::-1]
        out[name] = np.ascontiguousarray(v)
    return out


#: every option the parity cases and tests rely on, pinned (the shipped defaults are merged with the
#: default env's config, which may change them)
BASE_OPTIONS: dict[str, Any] = {"gamma": 0.95, "tau": 0.01, "lr_actor": 1e-3, "lr_critic": 1e-3, "grad_clip": 0.5,
                                "hidden_size": 16, "share_parameters": True, "policy_reg": 1e-3,
                                "gumbel_temperature": 1.0}


def parity_batches(spec: AgentSpec, cfg: BiCNetConfig, updates: int, seed: int, batch_size: int = 32
                   ) -> list[dict[str, np.ndarray]]:
    """``updates`` prepared batches with dead agents (:func:`with_dead_agents`); in the second one
    the last agent is gone throughout."""
    out = []
    for k in range(updates):
        rng = np.random.default_rng(seed + 1 + k)
        data = with_dead_agents(random_transitions(spec, batch_size, rng), rng,
                                dead=(spec.n_agents - 1,) if k == 1 else ())
        out.append(BICNET.prepare_batch(spec, cfg, data, rng, 0))
    return out


def parity_cases(method: str = "bicnet", seed: int = 0, updates: int = 3) -> list[ParityCase]:
    """Discrete actions with shared weights, continuous ones with per-agent encoders and heads,
    and hybrid ones, on heterogeneous synthetic tasks of 4 agents, with dead agents in every
    batch. Probes: the actor's outputs at the first batch's observations and alive masks, the
    diagnostics (actor features, raw outputs, critic values, targets) and the actor's outputs
    for the agents in reverse order under :func:`reverse_weights` (the permutation check)."""
    out = []
    for kind, share in (("discrete", True), ("continuous", False), ("hybrid", True)):
        cfg = method_config(method, {**BASE_OPTIONS, "share_parameters": share})
        spec = parity_spec(kind, n_agents=4)
        weights = BICNET.init_weights(spec, cfg, seed)
        batches = parity_batches(spec, cfg, updates, seed)
        b0 = batches[0]
        obs = np.ascontiguousarray(b0["obs"].swapaxes(0, 1))  # [B, A, obs_dim]
        am = np.ascontiguousarray(b0["agent_mask"].T)

        def probes(learner: Any, b0: dict = b0, obs: np.ndarray = obs, am: np.ndarray = am,
                   weights: Weights = weights) -> dict[str, np.ndarray]:
            got = {"policy_alive": learner.policy.forward_numpy(obs, None, am)[0],
                   **{f"diagnostics_{k}": v for k, v in learner.diagnostics(b0).items()}}
            mirrored = type(learner)(learner.spec, learner.cfg, reverse_weights(weights))  # the same learner class
            got["policy_reversed"] = mirrored.policy.forward_numpy(obs[:, ::-1].copy(), None, am[:, ::-1].copy())[0]
            return got

        out.append(ParityCase(name=f"{method}-{kind}-{'shared' if share else 'per_agent'}", spec=spec, config=cfg,
                              weights=weights, batches=batches, obs=obs, probes=probes))
    return out


registry.add("parity", "bicnet", parity_cases)
