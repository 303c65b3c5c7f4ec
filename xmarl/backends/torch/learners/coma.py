"""COMA (Foerster et al. 2018) in PyTorch.

One update is Algorithm 1's learning step on a batch of episodes, for every agent at once:
the centralised critic regresses ``Q_a(s_t, u_t)`` on TD(lambda) targets built from the target
critic; each actor follows ``grad log pi_a(u_a | tau_a) A_a`` with the counterfactual advantage
``A_a = Q_a(s, u) - sum_u' pi_a(u') Q_a(s, (u^-a, u'))`` taken from the critic before its step
(with ``advantage_norm``, normalised to zero mean and unit std over the weighted agent-steps; with
``entropy_coef`` > 0, the actor loss also gets ``- entropy_coef H(pi_a)``, weighted alike).
Agents that have left the episode (``agent_mask`` 0) weigh nothing in either loss, and an agent's
TD(lambda) return ends when it leaves (see :mod:`xmarl.core.coma`).
Batches come from :meth:`xmarl.core.coma.COMACore.prepare_batch` (agent-major, critic inputs built in
numpy); ``update`` trains the feed-forward actor, or the GRU actor over whole padded episodes
(``update_recurrent``, XuanCe's name for it, does the same).
"""

from __future__ import annotations

import torch

from xmarl import registry
from xmarl.backends.torch import ops as torch_ops
from xmarl.backends.torch.optimizers import Adam, clip_by_group_norm
from xmarl.backends.torch.policies import COMAActor, COMACritic
from xmarl.core.actions import NEG_INF
from xmarl.core.coma import COMALearnerBase
from xmarl.docschema import documented

Tensors = dict[str, torch.Tensor]


@registry.register("learner", "coma", backend="torch")
@documented
class COMALearner(COMALearnerBase):
    backend, ops = "torch", torch_ops
    Networks = {"actor": COMAActor, "critic": COMACritic, "target_critic": COMACritic}
    Optimizer = Adam

    # -- the quantities of one update ------------------------------------------------------
    def _forward(self, b: Tensors) -> Tensors:
        A, B, T1, n = b["act_onehot"].shape
        T = T1 - 1
        mask, alive, cfg = b["mask"], b["agent_mask"], self.cfg
        w = mask * alive[:, :, :T]  # each agent-step's weight: real steps of agents in the episode
        critic_in = b["critic_in"].reshape(A, B * T1, -1)
        q = self.critic(critic_in).reshape(A, B, T1, n)[:, :, :T]
        # TD(lambda) targets from the target critic at the next step's taken actions
        with torch.no_grad():
            tq = (self.target_critic(critic_in).reshape(A, B, T1, n) * b["act_onehot"]).sum(-1)[:, :, 1:]
            cont = torch.cat([mask[:, 1:], torch.zeros_like(mask[:, :1])], 1)
            boot = tq * alive[:, :, 1:]  # 0 once the agent has left
            step = w * (b["rew"] + cfg.gamma * (1.0 - b["term"]) * (1.0 - cfg.td_lambda * cont) * boot)
            targets = torch.einsum("ts,abs->abt", b["td_matrix"], step)
        onehot = b["act_onehot"][:, :, :T]
        avail = b["avail"][:, :, :T]
        if self.cfg.recurrent:
            logits = self.actor.sequence(b["obs"][:, :, :T])
        else:
            logits = self.actor(b["obs"][:, :, :T].reshape(A, B * T, -1)).reshape(A, B, T, n)
        # epsilon-floored policy over the available actions
        eps = b["epsilon"]
        probs = torch.softmax(torch.where(avail > 0, logits, torch.full_like(logits, NEG_INF)), -1)
        pi = (1.0 - eps) * probs + eps * avail / avail.sum(-1, keepdim=True)
        q_taken = (q * onehot).sum(-1)
        advantages = (q_taken - (pi * q).sum(-1)).detach()  # counterfactual baseline (eq. 4)
        log_pi = torch.log(torch.clamp((pi * onehot).sum(-1), min=1e-10))
        norm = torch.clamp(w.sum(), min=1.0)
        if cfg.advantage_norm:  # zero mean, unit std over the weighted agent-steps (as in PPO implementations)
            mean = (w * advantages).sum() / norm
            std = torch.sqrt((w * (advantages - mean).pow(2)).sum() / norm)
            advantages = (advantages - mean) / (std + 1e-8)
        actor_loss = -(w * advantages * log_pi).sum() / norm
        if cfg.entropy_coef > 0:  # entropy bonus on the floored policy (as in A3C); unavailable actions add 0
            entropy = -(pi * torch.log(torch.clamp(pi, min=1e-10))).sum(-1)
            actor_loss = actor_loss - cfg.entropy_coef * (w * entropy).sum() / norm
        return {"q": q, "target_q_next": tq, "targets": targets, "pi": pi, "advantages": advantages,
                "critic_loss": (w * (q_taken - targets).pow(2)).sum() / norm,
                "actor_loss": actor_loss,
                "q_taken": (w * q_taken).sum().detach() / norm}

    # -- steps ------------------------------------------------------------------------------
    def _update_step(self, b: Tensors) -> Tensors:
        out = self._forward(b)
        for loss, net, opt in ((out["critic_loss"], self.critic, self.critic_opt),
                               (out["actor_loss"], self.actor, self.actor_opt)):
            params = list(net.canonical().values())
            for p, g in zip(params, torch.autograd.grad(loss, params, retain_graph=True)):
                p.grad = g
            clip_by_group_norm(params, self.cfg.grad_clip)
            opt.step()
        return {k: out[k] for k in self.method.metrics}

    def _gradients_step(self, b: Tensors) -> tuple[Tensors, dict[str, tuple[torch.Tensor, ...]]]:
        out = self._forward(b)
        losses = {"critic": out["critic_loss"], "actor": out["actor_loss"]}
        grads = {name: torch.autograd.grad(losses[name], list(self.nets[name].canonical().values()), retain_graph=True)
                 for name in losses}
        return losses, grads

    @torch.no_grad()
    def _diagnostics_step(self, b: Tensors) -> Tensors:
        return self._forward(b)
