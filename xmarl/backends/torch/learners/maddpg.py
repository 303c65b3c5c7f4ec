"""MADDPG (Lowe et al. 2017) in PyTorch.

One ``update`` is Algorithm 1's inner loop for every agent at once: the centralised critics
regress on ``y_i = r_i + gamma (1 - d_i) Q'_i(x', a'_1..a'_N)`` with ``a'_j = mu'_j(o'_j)``,
then each actor follows ``grad Q_i(x, a_1..mu_i(o_i)..a_N)`` with the other agents' actions
taken from replay, then the targets move by ``tau``. Categorical actions (discrete, or the
discrete part of hybrid ones) are relaxed by Gumbel-softmax with the batch's noise, as in the
reference code; bounded continuous entries are squashed by ``tanh``. Agents that have left keep
their slot: a dead agent's target action is zeros and each agent's losses are means over the
transitions where it is alive (``agent_mask``, see :mod:`xmarl.core.maddpg`).
"""

from __future__ import annotations

import numpy as np
import torch

from xmarl import registry
from xmarl.backends.torch import ops as torch_ops
from xmarl.backends.torch.optimizers import Adam, clip_by_group_norm
from xmarl.backends.torch.policies import CentralCritic, MADDPGActor
from xmarl.core.actions import NEG_INF
from xmarl.core.interfaces import Batch
from xmarl.core.learner import LearnerBase
from xmarl.core.maddpg import MADDPG
from xmarl.docschema import documented

Tensors = dict[str, torch.Tensor]


@registry.register("learner", "maddpg", backend="torch")
@documented
class MADDPGLearner(LearnerBase):
    backend, method, ops = "torch", MADDPG, torch_ops
    Networks = {"actor": MADDPGActor, "critic": CentralCritic, "target_actor": MADDPGActor,
                "target_critic": CentralCritic}
    Optimizer = Adam

    def build(self) -> None:
        A = self.spec.n_agents
        self.act_mask = torch_ops.tensor(np.array(self.spec.act_mask)).unsqueeze(1)  # [A, 1, d]
        self.disc_mask = torch_ops.tensor(np.array(self.spec.disc_mask)).unsqueeze(1)  # categorical entries
        self.low = torch_ops.tensor(np.array(self.spec.low, np.float32)).unsqueeze(1)
        self.high = torch_ops.tensor(np.array(self.spec.high, np.float32)).unsqueeze(1)
        self.own = torch.eye(A, device=torch_ops.device()).reshape(A, 1, A, 1)  # own[i, :, j] = 1 iff j == i

    # -- the policy's action, differentiable ----------------------------------------------
    def _action(self, raw: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Gumbel-softmax sample on the categorical entries, squashed bounded values on the
        continuous ones (one formula for discrete, continuous and hybrid actions)."""
        disc = self.disc_mask
        logits = torch.where(disc * self.act_mask > 0, raw, torch.full_like(raw, NEG_INF))
        sample = torch.softmax((logits + noise) / self.cfg.gumbel_temperature, dim=-1)  # finite on all-NEG_INF rows
        bounded = self.low + (torch.tanh(raw) + 1.0) * 0.5 * (self.high - self.low)
        return disc * sample + (1.0 - disc) * bounded

    @staticmethod
    def _joint(x: torch.Tensor) -> torch.Tensor:
        """``[A, B, d]`` -> ``[1, B, A*d]``: every agent's values side by side."""
        A, B, d = x.shape
        return x.transpose(0, 1).reshape(1, B, A * d)

    @staticmethod
    def _masked_mean(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """``[A, B]`` values to the sum over agents of their mean over the transitions where the
        agent is alive: ``sum_i sum_b w_ib x_ib / max(sum_b w_ib, 1)``."""
        return ((w * x).sum(1) / w.sum(1).clamp(min=1.0)).sum()

    # -- losses ----------------------------------------------------------------------------
    def _critic_loss(self, b: Tensors) -> torch.Tensor:
        with torch.no_grad():
            # a'_j = mu'_j(o'_j), zeros for agents that are gone at o'
            next_act = self._action(self.target_actor(b["next_obs"]), b["next_gumbel"])
            next_act = next_act * b["next_agent_mask"].unsqueeze(-1)
            q_next = self.target_critic(torch.cat([self._joint(b["next_obs"]), self._joint(next_act)], -1))
            y = b["rew"] + self.cfg.gamma * (1.0 - b["done"]) * q_next
        q = self.critic(torch.cat([self._joint(b["obs"]), self._joint(b["act"])], -1))
        return self._masked_mean((q - y).pow(2), b["agent_mask"])

    def _actor_loss(self, b: Tensors) -> torch.Tensor:
        A, B, d = b["act"].shape
        raw = self.actor(b["obs"])
        pi = self._action(raw, b["gumbel"])
        # critic i sees mu_i(o_i) in slot i and the replayed actions of the others
        mixed = self.own * pi.transpose(0, 1).unsqueeze(0) + (1 - self.own) * b["act"].transpose(0, 1).unsqueeze(0)
        joint_obs = self._joint(b["obs"]).expand(A, -1, -1)
        q = self.critic(torch.cat([joint_obs, mixed.reshape(A, B, A * d)], -1))
        reg = (raw.pow(2) * self.act_mask).sum(-1) / self.act_mask.sum(-1)
        w = b["agent_mask"]
        return -self._masked_mean(q, w) + self.cfg.policy_reg * self._masked_mean(reg, w)

    # -- steps ------------------------------------------------------------------------------
    def _prepare(self, batch: Batch, learn: bool) -> Batch:
        return MADDPG.with_masks(batch)  # a batch without masks: every agent alive

    def _update_step(self, b: Tensors) -> Tensors:
        critic_loss = self._step(self._critic_loss(b), list(self.critic.canonical().values()), self.critic_opt)
        # the actor's loss reads the critic just updated
        actor_loss = self._step(self._actor_loss(b), list(self.actor.canonical().values()), self.actor_opt)
        with torch.no_grad():
            for src, dst in ((self.actor, self.target_actor), (self.critic, self.target_critic)):
                for p, t in zip(src.parameters(), dst.parameters()):
                    t.mul_(1.0 - self.cfg.tau).add_(p, alpha=self.cfg.tau)
        return {"critic_loss": critic_loss, "actor_loss": actor_loss}

    def _step(self, loss: torch.Tensor, params: list[torch.nn.Parameter], opt: Adam) -> torch.Tensor:
        for p, g in zip(params, torch.autograd.grad(loss, params)):
            p.grad = g
        clip_by_group_norm(params, self.cfg.grad_clip)
        opt.step()
        return loss.detach()

    def _gradients_step(self, b: Tensors) -> tuple[Tensors, dict[str, tuple[torch.Tensor, ...]]]:
        losses = {"critic": self._critic_loss(b), "actor": self._actor_loss(b)}
        grads = {name: torch.autograd.grad(losses[name], list(self.nets[name].canonical().values()))
                 for name in losses}
        return losses, grads
