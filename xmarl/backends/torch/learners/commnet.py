"""CommNet (Sukhbaatar et al. 2016) in PyTorch.

One update is the paper's training step (section 2.1) on a batch of episodes, for every agent
at once: the policy follows ``grad log pi(a_t | s_t) (R_t - b(s_t))`` and the baseline regresses
on ``R_t`` with weight ``alpha`` (``value_coef``); gradients flow through the communication
between agents. ``R_t`` is the Monte-Carlo return (REINFORCE) or, with ``actor_critic``, the
TD(lambda) target bootstrapped from the baseline. Batches come from
:func:`xmarl.core.commnet.prepare_batch` (agent-major).
"""

from __future__ import annotations

import numpy as np
import torch

from xmarl import registry
from xmarl.backends.torch.optimizers import Adam, clip_by_group_norm
from xmarl.backends.torch.policies import CommNetPolicy
from xmarl.core import commnet as core
from xmarl.core.actions import NEG_INF
from xmarl.core.interfaces import Batch, Weights
from xmarl.docschema import documented


@registry.register("learner", "commnet", backend="torch")
@documented
class CommNetLearner(core.CommNetLearnerBase):
    backend = "torch"

    Policy, Optimizer = CommNetPolicy, Adam

    # -- the quantities of one update ------------------------------------------------------
    def _outputs(self, b: dict[str, torch.Tensor], steps: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits ``[A, B, steps, n]`` and values ``[A, B, steps]`` over the episodes' first ``steps`` steps."""
        obs, am = b["obs"][:, :, :steps], b["agent_mask"][:, :, :steps]
        cm = b["comm_mask"][:, :steps] if "comm_mask" in b else None
        A, B, _, od = obs.shape
        if not self.cfg.recurrent:  # every (episode, step) is one row
            logits, values, _ = self.net(obs.reshape(A, B * steps, od), am.reshape(A, B * steps, 1),
                                         None if cm is None else cm.reshape(B * steps, A, A))
            return logits.reshape(A, B, steps, -1), values.reshape(A, B, steps)
        state = torch.zeros(A, B, self.cfg.hidden_size)
        all_logits, all_values = [], []
        for t in range(steps):  # the recurrence over time; agents and episodes are batched
            logits, values, hiddens = self.net(obs[:, :, t], am[:, :, t].unsqueeze(-1),
                                               None if cm is None else cm[:, t], state)
            state = hiddens[-1]
            all_logits.append(logits)
            all_values.append(values)
        return torch.stack(all_logits, 2), torch.stack(all_values, 2)

    def _losses(self, b: dict[str, torch.Tensor], steps: int) -> dict[str, torch.Tensor]:
        cfg, mask = self.cfg, b["mask"]
        T = mask.shape[1]
        logits, values = self._outputs(b, steps)
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
                               * values[:, :, 1:])
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

    # -- Learner API -----------------------------------------------------------------------
    @staticmethod
    def _tensors(batch: Batch) -> dict[str, torch.Tensor]:
        return {k: torch.from_numpy(np.ascontiguousarray(v, np.float32)) for k, v in batch.items()}

    def update(self, batch: Batch) -> dict[str, float]:
        batch = self.value_batch(batch, learn=True)
        out = self._losses(self._tensors(batch), self.steps(batch))
        params = list(self.net.canonical().values())
        for p, g in zip(params, torch.autograd.grad(out["loss"], params)):
            p.grad = g
        norm = clip_by_group_norm(params, self.cfg.grad_clip)
        self.opt.step()
        return {**{k: float(v.detach()) for k, v in out.items()}, "grad_norm": float(norm.max())}

    def gradients(self, batch: Batch) -> Weights:
        batch = self.value_batch(batch)
        out = self._losses(self._tensors(batch), self.steps(batch))
        params = self.net.canonical()
        grads: Weights = {}
        for (k, _), g in zip(params.items(), torch.autograd.grad(out["loss"], list(params.values()))):
            grads[f"{core.NET}/{k}"] = g.numpy().reshape(self.shapes[f"{core.NET}/{k}"])
        grads.update({f"loss/{k}": np.array(float(v.detach())) for k, v in out.items()})
        return grads

    def _read(self, param: torch.nn.Parameter) -> np.ndarray:
        return param.detach().numpy()

    def _write(self, param: torch.nn.Parameter, value: np.ndarray) -> None:
        with torch.no_grad():
            param.copy_(torch.from_numpy(value))
