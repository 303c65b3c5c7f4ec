"""MADDPG (Lowe et al. 2017) in PyTorch.

One ``update`` is Algorithm 1's inner loop for every agent at once: the centralised critics
regress on ``y_i = r_i + gamma (1 - d_i) Q'_i(x', a'_1..a'_N)`` with ``a'_j = mu'_j(o'_j)``,
then each actor follows ``grad Q_i(x, a_1..mu_i(o_i)..a_N)`` with the other agents' actions
taken from replay, then the targets move by ``tau``. Categorical actions (discrete, or the
discrete part of hybrid ones) are relaxed by Gumbel-softmax with the batch's noise, as in the
reference code; bounded continuous entries are squashed by ``tanh``.
"""

from __future__ import annotations

import numpy as np
import torch

from xmarl import registry
from xmarl.backends.torch.optimizers import Adam, clip_by_group_norm
from xmarl.backends.torch.policies import CentralCritic, MADDPGActor
from xmarl.core import maddpg as core
from xmarl.core.actions import NEG_INF
from xmarl.core.interfaces import Batch, Weights
from xmarl.docschema import documented


@registry.register("learner", "maddpg", backend="torch")
@documented
class MADDPGLearner(core.MADDPGLearnerBase):
    backend = "torch"

    Actor, Critic, Optimizer = MADDPGActor, CentralCritic, Adam

    def build(self) -> None:
        A = self.spec.n_agents
        self.act_mask = torch.tensor(self.spec.act_mask).unsqueeze(1)  # [A, 1, d]
        self.disc_mask = torch.tensor(self.spec.disc_mask).unsqueeze(1)  # categorical entries
        self.low = torch.from_numpy(self.spec.low).unsqueeze(1)
        self.high = torch.from_numpy(self.spec.high).unsqueeze(1)
        self.own = torch.eye(A).reshape(A, 1, A, 1)  # own[i, :, j] = 1 iff j == i

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

    # -- losses ----------------------------------------------------------------------------
    def _critic_loss(self, b: dict[str, torch.Tensor]) -> torch.Tensor:
        with torch.no_grad():
            next_act = self._action(self.target_actor(b["next_obs"]), b["next_gumbel"])
            q_next = self.target_critic(torch.cat([self._joint(b["next_obs"]), self._joint(next_act)], -1))
            y = b["rew"] + self.cfg.gamma * (1.0 - b["done"]) * q_next
        q = self.critic(torch.cat([self._joint(b["obs"]), self._joint(b["act"])], -1))
        return (q - y).pow(2).mean(1).sum()

    def _actor_loss(self, b: dict[str, torch.Tensor]) -> torch.Tensor:
        A, B, d = b["act"].shape
        raw = self.actor(b["obs"])
        pi = self._action(raw, b["gumbel"])
        # critic i sees mu_i(o_i) in slot i and the replayed actions of the others
        mixed = self.own * pi.transpose(0, 1).unsqueeze(0) + (1 - self.own) * b["act"].transpose(0, 1).unsqueeze(0)
        joint_obs = self._joint(b["obs"]).expand(A, -1, -1)
        q = self.critic(torch.cat([joint_obs, mixed.reshape(A, B, A * d)], -1))
        reg = ((raw.pow(2) * self.act_mask).sum(-1) / self.act_mask.sum(-1)).mean(1).sum()
        return -q.mean(1).sum() + self.cfg.policy_reg * reg

    # -- Learner API -----------------------------------------------------------------------
    @staticmethod
    def _tensors(batch: Batch) -> dict[str, torch.Tensor]:
        return {k: torch.from_numpy(np.ascontiguousarray(v, np.float32)) for k, v in batch.items()}

    def update(self, batch: Batch) -> dict[str, float]:
        b = self._tensors(batch)
        critic_params = list(self.critic.canonical().values())
        actor_params = list(self.actor.canonical().values())

        critic_loss = self._step(self._critic_loss(b), critic_params, self.critic_opt)
        actor_loss = self._step(self._actor_loss(b), actor_params, self.actor_opt)  # uses the new critic
        with torch.no_grad():
            for src, dst in ((self.actor, self.target_actor), (self.critic, self.target_critic)):
                for p, t in zip(src.parameters(), dst.parameters()):
                    t.mul_(1.0 - self.cfg.tau).add_(p, alpha=self.cfg.tau)
        return {"critic_loss": float(critic_loss), "actor_loss": float(actor_loss)}

    def _step(self, loss: torch.Tensor, params: list[torch.nn.Parameter], opt: Adam) -> torch.Tensor:
        for p, g in zip(params, torch.autograd.grad(loss, params)):
            p.grad = g
        clip_by_group_norm(params, self.cfg.grad_clip)
        opt.step()
        return loss.detach()

    def gradients(self, batch: Batch) -> Weights:
        b = self._tensors(batch)
        out: Weights = {}
        for name, net, loss_fn in (("critic", self.critic, self._critic_loss), ("actor", self.actor, self._actor_loss)):
            params = net.canonical()
            grads = torch.autograd.grad(loss_fn(b), list(params.values()))
            for (k, _), g in zip(params.items(), grads):
                full = f"{name}/{k}"
                out[full] = g.numpy().reshape(self.shapes[full])
        with torch.no_grad():
            out["loss/critic"] = np.array(float(self._critic_loss(b)))
            out["loss/actor"] = np.array(float(self._actor_loss(b)))
        return out

    def _read(self, param: torch.nn.Parameter) -> np.ndarray:
        return param.detach().numpy()

    def _write(self, param: torch.nn.Parameter, value: np.ndarray) -> None:
        with torch.no_grad():
            param.copy_(torch.from_numpy(value))
