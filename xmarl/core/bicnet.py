"""BiCNet's backend-neutral parts (:data:`BICNET`, its method core): parameter layouts, numpy
initialisation, the alive masks of the recurrence and action selection. The framework math lives
in each backend's ``representations.BiCNet``, ``policies.BiCNetActor``/``BiCNetCritic`` and
``learners/bicnet.py`` and reads as Peng et al. (2017), "Multiagent Bidirectionally-Coordinated
Nets", section 3; the numpy reference every backend is tested against is
:mod:`xmarl.compare.reference.bicnet`.

The networks (``G`` = 1 with parameter sharing, else one slice per agent; ``H`` hidden units).
Agents are a sequence in the env's agent order ``1..N``; a bidirectional GRU runs along it, not
along time::

    e_i     = relu(x_i W_e + b_e)                                 per-agent encoder (G slices)
    f_i     = GRU_f(e_i, f_(i-1)),   f_0     = 0                  forward over agents 1..N
    g_i     = GRU_b(e_i, g_(i+1)),   g_(N+1) = 0                  backward over agents N..1
    out_i   = [f_i, g_i] W_o + b_o                                per-agent head (rows 0..H-1 read f_i)

* actor ``mu``: ``x_i = o_i``, ``out_i`` = raw action outputs ``[act_dim]`` (logits on categorical
  entries, pre-tanh values on bounded ones, as for MADDPG);
* critic ``Q``: ``x_i = [o_i, a_i]``, ``out_i = Q_i(o, a)``, one value per agent.

Each GRU is one cell for every position (``GRU_f``, ``GRU_b``: weights ``[1, ...]`` in the GRU
layout of :func:`xmarl.core.layout.gru_shapes`, under ``<net>/forward/gru/*`` and
``<net>/backward/gru/*``); encoders and heads have ``G`` slices. Every network lists its
recurrence first, so each network's gradient norm (``grad_clip``) is one norm over all its
weights: the agents are coupled through the recurrence, per-agent norms would not be defined.

Training is deterministic policy gradient through both networks (section 3.2), on replay
transitions prepared as MADDPG's (:meth:`~xmarl.core.maddpg.MADDPGCore.prepare_batch`: the
Gumbel noise of the update's action samples is drawn there, in numpy). With ``a = relax(mu(o), g)``
(Gumbel-softmax on categorical entries, ``tanh`` to the bounds on continuous ones)::

    y_i          = r_i + gamma (1 - d_i) Q'_i(o', relax(mu'(o'), g'))
    critic loss  = sum_i mean_b (Q_i(o, a_replay) - y_i)^2
    actor loss   = sum_i mean_b (-Q_i(o, relax(mu(o), g)) + policy_reg * reg_i)

so the actor follows ``sum_i sum_j dQ_i/da_j da_j/dtheta`` (eq. 6): every agent's action moves
every agent's Q, through the critic's recurrence. Unlike MADDPG, no action comes from replay in
the actor loss. The critic is updated first and the actor reads it, then the targets move by
``tau``.

Alive masks: ``agent_mask`` ``[A, B]`` (1 where agent ``i`` acts at ``obs``) and
``next_agent_mask`` (at ``next_obs``), all ones where a batch has none. A dead agent neither
passes information nor receives it: at its position both GRUs carry their state through
unchanged (``f_i = f_(i-1)``, ``g_i = g_(i+1)``) and its features are zeros, so the live agents'
outputs are exactly those of the sequence with the dead agents removed, in order. Its action is
zeros (``a_i * m_i``, in the targets too), and every loss is a masked mean
``sum_b m_ib x_ib / max(sum_b m_ib, 1)`` per agent, summed over agents, so a dead slot sends no
gradient anywhere. Acting, a dead agent gets action 0 (a zero vector).

Agent order is the env's agent axis: the networks are not permutation-equivariant. Reversing
the agents swaps the two directions: with the forward and backward GRUs exchanged, the head's
row blocks exchanged and, per agent, the slices reversed,
``out(w_swapped, reversed(x)) = reversed(out(w, x))`` exactly
(:func:`xmarl.compare.reference.bicnet.reverse_weights`); any other permutation changes the
outputs beyond permuting them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xmarl.core.actions import NEG_INF, select_actions
from xmarl.core.config import BiCNetConfig
from xmarl.core.interfaces import Policy, Weights, mask_actions
from xmarl.core.layout import Layout, groups, gru_shapes, mlp_shapes
from xmarl.core.maddpg import MADDPGCore
from xmarl.core.spaces import AgentSpec


def input_dims(spec: AgentSpec) -> tuple[int, int]:
    """Per-agent input sizes of the actor (``o_i``) and the critic (``[o_i, a_i]``)."""
    return spec.obs_dim, spec.obs_dim + spec.act_dim


def network_shapes(prefix: str, G: int, in_dim: int, hidden: int, out_dim: int) -> Layout:
    """One BiCNet network: the two GRUs over the agent axis (one cell each), the encoder
    ``torso/dense_0`` and the head ``[G, 2H, out_dim]``, in that order."""
    pre = f"{prefix}/" if prefix else ""
    return {**gru_shapes(f"{pre}forward/gru", 1, hidden, hidden), **gru_shapes(f"{pre}backward/gru", 1, hidden, hidden),
            **mlp_shapes(prefix, G, in_dim, [hidden], None),
            f"{pre}head/kernel": (G, 2 * hidden, out_dim), f"{pre}head/bias": (G, out_dim)}


def canonical(forward: dict[str, Any], backward: dict[str, Any], torso: dict[str, Any]) -> dict[str, Any]:
    """A BiCNet representation's framework parameters under their canonical relative names,
    from its parts' own (``gru/*`` of each GRU, ``torso/*`` of the encoder): the recurrence first
    (``forward/gru/*``, ``backward/gru/*``), then the encoder, as :func:`network_shapes` orders them."""
    return {**{f"forward/{k}": p for k, p in forward.items()}, **{f"backward/{k}": p for k, p in backward.items()},
            **torso}


class BiCNetCore(MADDPGCore):
    """BiCNet's method contract (see :class:`xmarl.core.method.MethodCore`). Its replay batches,
    exploration and stored actions are MADDPG's (the same off-policy deterministic policy
    gradient over the same transitions); its networks and the diagnostics differ."""

    diagnostics = ("features", "raw", "q", "y")

    def param_shapes(self, spec: AgentSpec, cfg: BiCNetConfig) -> Layout:
        """Actor, critic and their targets (:func:`network_shapes`)."""
        G, H = groups(spec, cfg.share_parameters), cfg.hidden_size
        actor_in, critic_in = input_dims(spec)
        shapes: Layout = {}
        for net, in_dim, out_dim in (("actor", actor_in, spec.act_dim), ("critic", critic_in, 1)):
            for prefix in (net, f"target_{net}"):
                shapes.update(network_shapes(prefix, G, in_dim, H, out_dim))
        return shapes

    def init_weights(self, spec: AgentSpec, cfg: BiCNetConfig, seed: int) -> Weights:
        """Uniform ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` from the seed, in layout order: dense
        kernels and biases by the kernel's inputs, every GRU entry by ``1/sqrt(H)``; targets
        start as copies."""
        rng = np.random.default_rng(np.random.SeedSequence([seed, 0x4243]))
        shapes = self.param_shapes(spec, cfg)
        w: Weights = {}
        for name, shape in shapes.items():
            if name.startswith("target_"):
                continue
            if "/gru/" in name:
                fan_in = cfg.hidden_size
            else:
                fan_in = shape[1] if name.endswith("kernel") else shapes[name[: -len("bias")] + "kernel"][1]
            bound = 1.0 / np.sqrt(fan_in)
            w[name] = rng.uniform(-bound, bound, shape).astype(np.float32)
        w.update({"target_" + k: v.copy() for k, v in w.items()})
        return {k: w[k] for k in shapes}


#: BiCNet's method core, registered in :mod:`xmarl.core.methods`
BICNET = BiCNetCore()


# -- the shared parts of every backend's classes --------------------------------------------------
def alive_or_ones(obs: np.ndarray, agent_mask: np.ndarray | None) -> np.ndarray:
    """The agent mask ``[E, A]`` float32 for observations ``[E, A, obs_dim]`` (ones when None)."""
    E, A = obs.shape[:2]
    if agent_mask is None:
        return np.ones((E, A), np.float32)
    am = np.ascontiguousarray(agent_mask, np.float32)
    if am.shape != (E, A):
        raise ValueError(f"bicnet: agent_mask must have shape {(E, A)} like the observations, got {am.shape}")
    return am


class BiCNetPolicyBase(Policy):
    """Action selection of the BiCNet actor (numpy, shared by every backend): the actor's raw
    outputs depend on which agents are alive, so ``act`` hands the agent mask to
    ``forward_numpy(obs, state, agent_mask)``; actions are then selected as MADDPG's
    (:func:`xmarl.core.actions.select_actions`) and dead agents get action 0."""

    def act(self, obs: np.ndarray, state: Any = None, explore: bool = False, rng: np.random.Generator | None = None,
            noise_scale: float = 0.0, avail: np.ndarray | None = None,
            agent_mask: np.ndarray | None = None) -> tuple[np.ndarray, Any]:
        """Actions for observations ``[E, A, obs_dim]``, as :meth:`Policy.act`."""
        out, state = self.forward_numpy(np.ascontiguousarray(obs, np.float32), state, agent_mask)
        if avail is not None and self.spec.discrete:
            out = np.where(avail > 0, out, NEG_INF)
        actions = select_actions(self.spec, out, explore=explore, rng=rng, noise_scale=noise_scale)
        return mask_actions(actions, agent_mask), state
