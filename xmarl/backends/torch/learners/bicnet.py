"""BiCNet (Peng et al. 2017) in PyTorch: BiCNet's losses (section 3.2, eq. 6; the method and
its alive masks are in :mod:`xmarl.core.bicnet`) on MADDPG's off-policy steps, which this learner
inherits: critic step, actor step through the new critic, soft targets, the action relaxation.
"""

from __future__ import annotations

import torch

from xmarl import registry
from xmarl.backends.torch.learners.maddpg import MADDPGLearner
from xmarl.backends.torch.policies import BiCNetActor, BiCNetCritic
from xmarl.core.bicnet import BICNET
from xmarl.docschema import documented

Tensors = dict[str, torch.Tensor]


@registry.register("learner", "bicnet", backend="torch")
@documented
class BiCNetLearner(MADDPGLearner):
    method = BICNET
    Networks = {"actor": BiCNetActor, "critic": BiCNetCritic, "target_actor": BiCNetActor,
                "target_critic": BiCNetCritic}

    def _targets(self, b: Tensors) -> torch.Tensor:
        """``y_i = r_i + gamma (1 - d_i) Q'_i(o', a')`` with ``a' = mu'(o')``, zeros for the dead."""
        with torch.no_grad():
            alive = b["next_agent_mask"].unsqueeze(-1)
            next_act = self._action(self.target_actor(b["next_obs"], alive), b["next_gumbel"]) * alive
            return b["rew"] + self.cfg.gamma * (1.0 - b["done"]) * self.target_critic(b["next_obs"], next_act, alive)

    def _critic_loss(self, b: Tensors) -> torch.Tensor:
        q = self.critic(b["obs"], b["act"], b["agent_mask"].unsqueeze(-1))
        return self._masked_mean((q - self._targets(b)).pow(2), b["agent_mask"])

    def _actor_loss(self, b: Tensors) -> torch.Tensor:
        w = b["agent_mask"]
        alive = w.unsqueeze(-1)
        raw = self.actor(b["obs"], alive)
        q = self.critic(b["obs"], self._action(raw, b["gumbel"]) * alive, alive)  # every agent's action from mu
        reg = (raw.pow(2) * self.act_mask).sum(-1) / self.act_mask.sum(-1)
        return -self._masked_mean(q, w) + self.cfg.policy_reg * self._masked_mean(reg, w)

    @torch.no_grad()
    def _diagnostics_step(self, b: Tensors) -> Tensors:
        alive = b["agent_mask"].unsqueeze(-1)
        features, raw = self.actor.features_and_outputs(b["obs"], alive)
        return {"features": features, "raw": raw, "q": self.critic(b["obs"], b["act"], alive), "y": self._targets(b)}
