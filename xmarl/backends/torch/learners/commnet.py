"""CommNet (Sukhbaatar et al. 2016) in PyTorch.

One update is the paper's training step (section 2.1) on a batch of episodes, for every agent
at once: the policy follows ``grad log pi(a_t | s_t) (R_t - b(s_t))`` and the baseline regresses
on ``R_t`` with weight ``alpha`` (``value_coef``); gradients flow through the communication
between agents. ``R_t`` is the Monte-Carlo return (REINFORCE) or, with ``actor_critic``, the
TD(lambda) target bootstrapped from the baseline. Batches come from
:meth:`xmarl.core.commnet.CommNetCore.prepare_batch` (agent-major).
"""

from __future__ import annotations

import torch

from xmarl import registry
from xmarl.backends.torch import ops as torch_ops
from xmarl.backends.torch.optimizers import Adam, clip_by_group_norm
from xmarl.backends.torch.policies import CommNetPolicy
from xmarl.core.actions import NEG_INF
from xmarl.core.commnet import NET, CommNetLearnerBase
from xmarl.docschema import documented

Tensors = dict[str, torch.Tensor]


@registry.register("learner", "commnet", backend="torch")
@documented
class CommNetLearner(CommNetLearnerBase):
    backend, ops = "torch", torch_ops
    Networks = {NET: CommNetPolicy}
    Optimizer = Adam

    # -- the quantities of one update ------------------------------------------------------
    def _outputs(self, b: Tensors, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits ``[A, B, steps, n]`` and values ``[A, B, steps]`` over the episodes' first ``steps`` steps."""
        obs, am = b["obs"][:, :, :steps], b["agent_mask"][:, :, :steps]
        cm = b["comm_mask"][:, :steps] if "comm_mask" in b else None
        A, B, _, od = obs.shape
        if not self.cfg.recurrent:  # every (episode, step) is one row
            logits, values, _ = self.commnet(obs.reshape(A, B * steps, od), am.reshape(A, B * steps, 1),
                                         None if cm is None else cm.reshape(B * steps, A, A))
            return logits.reshape(A, B, steps, -1), values.reshape(A, B, steps)
        state = torch.zeros(A, B, self.cfg.hidden_size, device=torch_ops.device())
        all_logits, all_values = [], []
        for t in range(steps):  # the recurrence over time; agents and episodes are batched
            logits, values, hiddens = self.commnet(obs[:, :, t], am[:, :, t].unsqueeze(-1),
                                               None if cm is None else cm[:, t], state)
            state = hiddens[-1]
            all_logits.append(logits)
            all_values.append(values)
        return torch.stack(all_logits, 2), torch.stack(all_values, 2)

    def _losses(self, b: Tensors) -> Tensors:
        cfg, mask = self.cfg, b["mask"]
        T = mask.shape[1]
        logits, values = self._outputs(b, T + 1 if cfg.actor_critic else T)
        mu, sigma = b["value_stats"][0], b["value_stats"][1]
        values = mu + sigma * values  # the baseline in return units
        avail = b["avail"][:, :, :T]
        logp = torch.log_softmax(torch.where(avail > 0, logits[:, :, :T], torch.full_like(avail, NEG_INF)), -1)
        taken = (b["act_onehot"][:, :, :T] * logp).sum(-1)
        v = values[:, :, :T]
        if cfg.actor_critic:  # TD(lambda) targets bootstrapped from the baseline
            with torch.no_grad():
                cont = torch.cat([mask[:, 1:], torch.zeros_like(mask[:, :1])], 1)
                step = mask * (b["rew"] + cfg.gamma * (1.0 - b["term"]) * (1.0 - cfg.td_lambda * cont)
                               * values[:, :, 1:] * b["agent_mask"][:, :, 1:])  # no value after leaving
                returns = torch.matmul(step, b["td_matrix"].T)
        else:  # Monte-Carlo returns: REINFORCE with the learned baseline
            returns = b["returns"]
        w = mask * b["agent_mask"][:, :, :T]
        n = torch.clamp(w.sum(), min=1.0)
        adv = returns - v
        policy_loss = -(w * taken * adv.detach()).sum() / n
        value_loss = (w * (adv / sigma).pow(2)).sum() / n
        entropy = -(w * (logp.exp() * logp).sum(-1)).sum() / n
        loss = policy_loss + cfg.value_coef * value_loss - cfg.entropy_coef * entropy
        return {"loss": loss, "policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy}

    # -- steps ------------------------------------------------------------------------------
    def _update_step(self, b: Tensors) -> Tensors:
        out = self._losses(b)
        params = list(self.commnet.canonical().values())
        for p, g in zip(params, torch.autograd.grad(out["loss"], params)):
            p.grad = g
        norm = clip_by_group_norm(params, self.cfg.grad_clip)
        self.commnet_opt.step()
        return {**out, "grad_norm": norm.max()}

    def _gradients_step(self, b: Tensors) -> tuple[Tensors, dict[str, tuple[torch.Tensor, ...]]]:
        out = self._losses(b)
        return out, {NET: torch.autograd.grad(out["loss"], list(self.commnet.canonical().values()))}
