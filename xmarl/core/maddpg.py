"""MADDPG's backend-neutral parts (:data:`MADDPG`, its method core): parameter layouts, numpy
initialisation and batch preparation. The update itself (framework math) lives in each
backend's ``learners/maddpg.py`` and reads as Lowe et al. (2017), Algorithm 1.

Networks (``G`` = 1 with parameter sharing, else the number of agents ``A``):

* actor ``mu_i(o_i [, id_i])``: MLP over the agent's observation (plus its one-hot id when
  shared) to ``act_dim`` raw outputs (logits on categorical entries, pre-tanh values on bounded
  ones; a hybrid action has both, see :mod:`xmarl.core.spaces`);
* critic ``Q_i(x, a_1..a_N [, id_i])``: MLP over all agents' observations and actions.

Agents that leave an episode keep their slot (alive masks). Every batch has ``agent_mask``
``[A, B]`` (1 where agent ``i`` acts at ``obs``; 0 where it has left, and then its ``obs`` and
``act`` rows are zeros) and ``next_agent_mask`` ``[A, B]`` (1 where it acts at ``next_obs``).
With ``w_i = agent_mask[i]``, the losses of agent ``i`` are masked means over the batch::

    a'_j = mu'_j(o'_j) * next_agent_mask[j]               (a dead agent's action is zeros)
    critic:  sum_b w_ib (Q_i - y_i)^2 / max(sum_b w_ib, 1)
    actor:   sum_b w_ib (-Q_i(x, a_1..mu_i(o_i)..a_N) + policy_reg * reg_ib) / max(sum_b w_ib, 1)

summed over agents, so a dead agent's slot sends no gradient to its own networks. With all-ones
masks these are the plain batch means.
"""

from __future__ import annotations

import numpy as np

from xmarl.core.actions import gumbel
from xmarl.core.config import MADDPGConfig
from xmarl.core.interfaces import Batch, Weights
from xmarl.core.layout import Layout, groups, init_mlp, mlp_shapes
from xmarl.core.method import MethodCore
from xmarl.core.spaces import AgentSpec


def input_dims(spec: AgentSpec, share_parameters: bool) -> tuple[int, int]:
    """Input sizes of the actor and the critic (plus the one-hot agent id when shared)."""
    A = spec.n_agents
    ident = A if share_parameters else 0
    return spec.obs_dim + ident, A * (spec.obs_dim + spec.act_dim) + ident


class MADDPGCore(MethodCore):
    """MADDPG's method contract (see :class:`xmarl.core.method.MethodCore`)."""

    networks = ("actor", "critic", "target_actor", "target_critic")
    policy_network = "actor"
    batch = {"obs": ("A", None, "obs"), "act": ("A", None, "act"), "rew": ("A", None),
             "next_obs": ("A", None, "obs"), "done": ("A", None), "gumbel": ("A", None, "act"),
             "next_gumbel": ("A", None, "act"), "agent_mask": ("A", None), "next_agent_mask": ("A", None)}
    metrics = ("critic_loss", "actor_loss")

    def param_shapes(self, spec: AgentSpec, cfg: MADDPGConfig) -> Layout:
        """Every network, targets included: MLPs of ``hidden_sizes`` with a linear head."""
        G = groups(spec, cfg.share_parameters)
        actor_in, critic_in = input_dims(spec, cfg.share_parameters)
        shapes: Layout = {}
        for net, in_dim, out_dim in (("actor", actor_in, spec.act_dim), ("critic", critic_in, 1)):
            for prefix in (net, f"target_{net}"):
                shapes.update(mlp_shapes(prefix, G, in_dim, cfg.hidden_sizes, out_dim))
        return shapes

    def init_weights(self, spec: AgentSpec, cfg: MADDPGConfig, seed: int) -> Weights:
        """Uniform fan-in weights from the seed; targets start as copies."""
        rng = np.random.default_rng(np.random.SeedSequence([seed, 0x4D41]))
        G = groups(spec, cfg.share_parameters)
        actor_in, critic_in = input_dims(spec, cfg.share_parameters)
        w: Weights = {}
        w.update(init_mlp(rng, "actor", G, actor_in, cfg.hidden_sizes, spec.act_dim))
        w.update(init_mlp(rng, "critic", G, critic_in, cfg.hidden_sizes, 1))
        for k in list(w):
            w["target_" + k] = w[k].copy()
        return w

    def learning_rates(self, cfg: MADDPGConfig) -> dict[str, float]:
        return {"actor": cfg.lr_actor, "critic": cfg.lr_critic}

    def prepare_batch(self, spec: AgentSpec, cfg: MADDPGConfig, data: dict[str, np.ndarray],
                      rng: np.random.Generator, step: int) -> Batch:
        """A replay sample (agent-major ``obs``, ``act``, ``rew``, ``next_obs``, ``done``,
        ``agent_mask``, ``next_agent_mask``; masks absent: every agent alive) plus the Gumbel
        noise of the update's action samples, drawn here so that every backend draws the same
        sample and runs stay reproducible. The noise covers the categorical entries
        (``spec.disc_mask``) and is zero on continuous ones; continuous tasks draw none."""
        data = self.with_masks(data)
        shape = data["act"].shape
        if spec.discrete:
            data["gumbel"] = gumbel(rng, shape)
            data["next_gumbel"] = gumbel(rng, shape)
        elif spec.hybrid:
            disc = spec.disc_mask[:, None, :]  # data["act"] is [A, B, act_dim]
            data["gumbel"] = gumbel(rng, shape) * disc
            data["next_gumbel"] = gumbel(rng, shape) * disc
        else:
            data["gumbel"] = np.zeros(shape, np.float32)
            data["next_gumbel"] = np.zeros(shape, np.float32)
        return data

    @staticmethod
    def with_masks(batch: Batch) -> Batch:
        """``batch`` with ``agent_mask`` and ``next_agent_mask`` (``[A, B]`` float32), all ones
        where absent (samples and batches made before alive masks: every agent alive)."""
        missing = [k for k in ("agent_mask", "next_agent_mask") if k not in batch]
        if not missing:
            return batch
        return {**batch, **{k: np.ones(batch["rew"].shape, np.float32) for k in missing}}

    def exploration(self, cfg: MADDPGConfig, step: int) -> float:
        """Action-noise scale used while collecting (continuous actions)."""
        return cfg.exploration_noise

    def stored_actions(self, spec: AgentSpec, actions: np.ndarray) -> np.ndarray:
        """Env actions (:func:`xmarl.core.actions.select_actions`' layout) to the float vectors
        critics take: one-hot ``[E, A, act_dim]`` for discrete ``[E, A]`` choices; continuous and
        hybrid actions already are those vectors (hybrid: ``[one-hot (n_i), continuous (d_i)]``)."""
        if spec.discrete:
            return np.eye(spec.act_dim, dtype=np.float32)[actions]
        return actions.astype(np.float32)


#: MADDPG's method core, registered in :mod:`xmarl.core.methods`
MADDPG = MADDPGCore()
