"""COMA (Foerster et al. 2018) in PyTorch.

One update is Algorithm 1's learning step on a batch of episodes, for every agent at once:
the centralised critic regresses ``Q_a(s_t, u_t)`` on TD(lambda) targets built from the target
critic; each actor follows ``grad log pi_a(u_a | tau_a) A_a`` with the counterfactual advantage
``A_a = Q_a(s, u) - sum_u' pi_a(u') Q_a(s, (u^-a, u'))`` taken from the critic before its step.
Batches come from :func:`xmarl.core.coma.prepare_batch` (agent-major, critic inputs built in
numpy); ``update`` trains the feed-forward actor, ``update_recurrent`` the GRU actor over whole
padded episodes.
"""

from __future__ import annotations

import numpy as np
import torch

from xmarl import registry
from xmarl.backends.torch.optimizers import Adam, clip_by_group_norm
from xmarl.backends.torch.policies import COMAActor, COMACritic
from xmarl.core import coma as core
from xmarl.core.actions import NEG_INF
from xmarl.core.interfaces import Batch, Weights
from xmarl.docschema import documented


@registry.register("learner", "coma", backend="torch")
@documented
class COMALearner(core.COMALearnerBase):
    """COMA learner: categorical actors, a centralised Q-critic, its target and two Adam optimisers."""

    backend = "torch"

    Actor, Critic, Optimizer = COMAActor, COMACritic, Adam

    # -- the quantities of one update ------------------------------------------------------
    def _forward(self, b: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        A, B, T1, n = b["act_onehot"].shape
        T = T1 - 1
        mask, cfg = b["mask"], self.cfg
        critic_in = b["critic_in"].reshape(A, B * T1, -1)
        q = self.critic(critic_in).reshape(A, B, T1, n)[:, :, :T]
        # TD(lambda) targets from the target critic at the next step's taken actions
        with torch.no_grad():
            tq = (self.target_critic(critic_in).reshape(A, B, T1, n) * b["act_onehot"]).sum(-1)[:, :, 1:]
            cont = torch.cat([mask[:, 1:], torch.zeros_like(mask[:, :1])], 1)
            step = mask * (b["rew"] + cfg.gamma * (1.0 - b["term"]) * (1.0 - cfg.td_lambda * cont) * tq)
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
        norm = A * mask.sum()
        return {"q": q, "target_q_next": tq, "targets": targets, "pi": pi, "advantages": advantages,
                "critic_loss": (mask * (q_taken - targets).pow(2)).sum() / norm,
                "actor_loss": -(mask * advantages * log_pi).sum() / norm,
                "q_taken": (mask * q_taken).sum().detach() / norm}

    # -- Learner API -----------------------------------------------------------------------
    @staticmethod
    def _tensors(batch: Batch) -> dict[str, torch.Tensor]:
        return {k: torch.from_numpy(np.ascontiguousarray(v, np.float32)) for k, v in batch.items()}

    def update(self, batch: Batch) -> dict[str, float]:
        out = self._forward(self._tensors(batch))
        for loss, net, opt in ((out["critic_loss"], self.critic, self.critic_opt),
                               (out["actor_loss"], self.actor, self.actor_opt)):
            params = list(net.canonical().values())
            for p, g in zip(params, torch.autograd.grad(loss, params, retain_graph=True)):
                p.grad = g
            clip_by_group_norm(params, self.cfg.grad_clip)
            opt.step()
        return {"critic_loss": float(out["critic_loss"].detach()), "actor_loss": float(out["actor_loss"].detach()),
                "q_taken": float(out["q_taken"])}

    def gradients(self, batch: Batch) -> Weights:
        out = self._forward(self._tensors(batch))
        grads: Weights = {}
        for name, net in (("critic", self.critic), ("actor", self.actor)):
            params = net.canonical()
            for (k, _), g in zip(params.items(), torch.autograd.grad(out[f"{name}_loss"], list(params.values()),
                                                                      retain_graph=True)):
                grads[f"{name}/{k}"] = g.numpy().reshape(self.shapes[f"{name}/{k}"])
            grads[f"loss/{name}"] = np.array(float(out[f"{name}_loss"].detach()))
        return grads

    @torch.no_grad()
    def diagnostics(self, batch: Batch) -> dict[str, np.ndarray]:
        out = self._forward(self._tensors(batch))
        return {k: out[k].numpy() for k in ("q", "target_q_next", "targets", "pi", "advantages")}

    def _read(self, param: torch.nn.Parameter) -> np.ndarray:
        return param.detach().numpy()

    def _write(self, param: torch.nn.Parameter, value: np.ndarray) -> None:
        with torch.no_grad():
            param.copy_(torch.from_numpy(value))
