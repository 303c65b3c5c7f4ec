"""CommNet (Sukhbaatar et al. 2016) in MindSpore.

One update is the paper's training step (section 2.1) on a batch of episodes, for every agent
at once: the policy follows ``grad log pi(a_t | s_t) (R_t - b(s_t))`` and the baseline regresses
on ``R_t`` with weight ``alpha`` (``value_coef``); gradients flow through the communication
between agents. ``R_t`` is the Monte-Carlo return (REINFORCE) or, with ``actor_critic``, the
TD(lambda) target bootstrapped from the baseline. Batches come from
:meth:`xmarl.core.commnet.CommNetCore.prepare_batch` (agent-major).

The whole update (forward, backward, clipping, Adam) is one graph-mode cell,
:class:`_UpdateStep`; :class:`_Gradients` is a second one for parity checks. Graphs are compiled
once per batch shape ``(B, T)``; a recurrent net's loop over time is unrolled for ``T``.

MindSpore's CPU runtime keeps every intermediate tensor of a graph alive until the graph ends
(about 70 KB per agent row of the levers network, 7x torch), so a batch of more than
:attr:`CommNetLearner.max_rows` agent rows (e.g. 512 games of 500 agents) is split into chunks of
whole episodes: each chunk's gradients of the loss normalised by the whole batch's weight add up
to the batch's gradients, which one more cell clips and applies (:class:`_Apply`).
"""

from __future__ import annotations

import numpy as np
from mindspore import Tensor, nn, ops, value_and_grad

from xmarl import registry
from xmarl.backends.mindspore import ops as ms_ops
from xmarl.backends.mindspore.optimizers import Adam, clip_by_group_norm
from xmarl.backends.mindspore.policies import CommNetPolicy
from xmarl.core.actions import NEG_INF
from xmarl.core.commnet import COMMNET, NET, CommNetLearnerBase, comm_mode
from xmarl.core.config import CommNetConfig
from xmarl.core.interfaces import Batch
from xmarl.docschema import documented

#: the order the compiled cells take the batch: the method's schema (``comm_mask`` a placeholder
#: unless the config has ``comm_range``), then the loss normaliser ``norm``
BATCH_KEYS = (*COMMNET.batch, "norm")
#: axis of the episode dimension of each batch entry (td_matrix has none)
EPISODE_AXIS = {"obs": 1, "act_onehot": 1, "avail": 1, "rew": 1, "returns": 1, "agent_mask": 1, "term": 0, "mask": 0,
                "comm_mask": 0}
#: the losses, in the order the compiled cells return them
LOSSES = ("loss", "policy_loss", "value_loss", "entropy")


class _Loss(nn.Cell):
    """The total loss (differentiated) with its parts as aux outputs."""

    def __init__(self, net: CommNetPolicy, cfg: CommNetConfig) -> None:
        super().__init__(auto_prefix=False)
        self.net = net
        self.recurrent, self.actor_critic = cfg.recurrent, cfg.actor_critic
        self.range_mode = comm_mode(cfg) == "range"
        self.gamma, self.td_lambda = cfg.gamma, cfg.td_lambda
        self.value_coef, self.entropy_coef, self.hidden = cfg.value_coef, cfg.entropy_coef, cfg.hidden_size
        self.matmul_t = ops.MatMul(transpose_b=True)

    def outputs(self, obs: Tensor, agent_mask: Tensor, comm_mask: Tensor) -> tuple[Tensor, Tensor]:
        """Logits ``[A, B, T', n]`` and values ``[A, B, T']`` over the steps given."""
        A, B, Ts, od = obs.shape
        if not self.recurrent:  # every (episode, step) is one row
            cm = comm_mask.reshape(B * Ts, A, A) if self.range_mode else comm_mask
            logits, values, _ = self.net(obs.reshape(A, B * Ts, od), agent_mask.reshape(A, B * Ts, 1), cm, comm_mask)
            return logits.reshape(A, B, Ts, -1), values.reshape(A, B, Ts)
        state = ops.zeros((A, B, self.hidden), obs.dtype)
        all_logits, all_values = [], []
        for t in range(Ts):  # the recurrence over time, unrolled; agents and episodes are batched
            cm = comm_mask[:, t] if self.range_mode else comm_mask
            logits, values, hiddens = self.net(obs[:, :, t], agent_mask[:, :, t].expand_dims(-1), cm, state)
            state = hiddens[-1]
            all_logits.append(logits)
            all_values.append(values)
        return ops.stack(all_logits, 2), ops.stack(all_values, 2)

    def construct(self, obs: Tensor, act_onehot: Tensor, avail: Tensor, rew: Tensor, returns: Tensor, term: Tensor,
                  mask: Tensor, agent_mask: Tensor, td_matrix: Tensor, comm_mask: Tensor, value_stats: Tensor,
                  norm: Tensor) -> tuple[Tensor, ...]:
        """``value_stats``: ``[mu, sigma]`` of the value targets; ``norm``: the batch's total weight
        ``max(sum(mask * agent_mask), 1)`` (of the whole batch when this is one chunk of it)."""
        A, B, T = rew.shape
        Ts = T + 1 if self.actor_critic else T
        cm = comm_mask[:, :Ts] if self.range_mode else comm_mask
        logits, values = self.outputs(obs[:, :, :Ts], agent_mask[:, :, :Ts], cm)
        mu, sigma = value_stats[0], value_stats[1]
        values = mu + sigma * values  # the baseline in return units
        av = avail[:, :, :T]
        logp = ops.log_softmax(ops.where(av > 0, logits[:, :, :T], NEG_INF), -1)
        taken = (act_onehot[:, :, :T] * logp).sum(-1)
        v = values[:, :, :T]
        if self.actor_critic:  # TD(lambda) targets bootstrapped from the baseline
            cont = ops.cat((mask[:, 1:], ops.zeros_like(mask[:, :1])), 1)
            nxt = values[:, :, 1:] * agent_mask[:, :, 1:]  # an agent that has left has no value
            step = mask * (rew + self.gamma * (1.0 - term) * (1.0 - self.td_lambda * cont) * nxt)
            returns = ops.stop_gradient(self.matmul_t(step.reshape(A * B, T), td_matrix).reshape(A, B, T))
        w = mask * agent_mask[:, :, :T]
        n = norm
        adv = returns - v
        policy_loss = -(w * taken * ops.stop_gradient(adv)).sum() / n
        value_loss = (w * ops.square(adv / sigma)).sum() / n
        entropy = -(w * (ops.exp(logp) * logp).sum(-1)).sum() / n
        loss = policy_loss + self.value_coef * value_loss - self.entropy_coef * entropy
        return loss, policy_loss, value_loss, entropy


class _Gradients(nn.Cell):
    """The losses and the gradients at the current weights (no update)."""

    def __init__(self, loss: _Loss, opt: Adam) -> None:
        super().__init__(auto_prefix=False)
        self.grad = value_and_grad(loss, None, opt.params, has_aux=True)

    def construct(self, *batch: Tensor) -> tuple:
        losses, grads = self.grad(*batch)
        return ops.stack(losses), grads


class _UpdateStep(nn.Cell):
    """Gradients from one forward pass, clipped per group, then one Adam step."""

    def __init__(self, loss: _Loss, opt: Adam, grad_clip: float | None) -> None:
        super().__init__(auto_prefix=False)
        self.grad = value_and_grad(loss, None, opt.params, has_aux=True)
        self.opt, self.grad_clip = opt, grad_clip

    def construct(self, *batch: Tensor) -> Tensor:
        losses, grads = self.grad(*batch)
        grads, norms = clip_by_group_norm(grads, self.grad_clip)
        out = ops.stack((*losses, norms.max()))
        return ops.depend(out, self.opt(grads))


class _Apply(nn.Cell):
    """Clipping and one Adam step on given gradients (the sum of a chunked batch's gradients)."""

    def __init__(self, opt: Adam, grad_clip: float | None) -> None:
        super().__init__(auto_prefix=False)
        self.opt, self.grad_clip = opt, grad_clip

    def construct(self, *grads: Tensor) -> Tensor:
        grads, norms = clip_by_group_norm(grads, self.grad_clip)
        return ops.depend(norms.max(), self.opt(grads))


@registry.register("learner", "commnet", backend="mindspore")
@documented
class CommNetLearner(CommNetLearnerBase):
    backend, ops = "mindspore", ms_ops
    Networks = {NET: CommNetPolicy}
    Optimizer = Adam

    #: agent rows (agents x episodes x steps) above which an update runs in chunks of episodes
    max_rows: int = 65536

    def build(self) -> None:
        loss = _Loss(self.commnet, self.cfg)
        self._update_step = _UpdateStep(loss, self.commnet_opt, self.cfg.grad_clip)
        self._gradient_cell = _Gradients(loss, self.commnet_opt)
        self._apply = _Apply(self.commnet_opt, self.cfg.grad_clip)

    @staticmethod
    def _norm(batch: Batch) -> np.ndarray:
        """The batch's total loss weight ``max(sum(mask * agent_mask), 1)``."""
        T = batch["mask"].shape[1]
        return np.array(max(float((batch["mask"] * batch["agent_mask"][:, :, :T]).sum()), 1.0), np.float32)

    def _tensors(self, batch: Batch, norm: np.ndarray | None = None) -> tuple[Tensor, ...]:
        """The schema's entries, then ``norm`` (the whole batch's, for a chunk of it)."""
        batch = {**batch, "norm": self._norm(batch) if norm is None else norm}
        # np.ascontiguousarray would turn the 0-d norm into shape (1,)
        return tuple(Tensor.from_numpy(np.require(batch.get(k, ms_ops.PLACEHOLDER), np.float32, "C"))
                     for k in BATCH_KEYS)

    def _gradients_step(self, *batch: Tensor) -> tuple[dict[str, Tensor], dict[str, tuple[Tensor, ...]]]:
        losses, grads = self._gradient_cell(*batch)
        return dict(zip(LOSSES, losses.asnumpy())), {NET: grads}

    def update(self, batch: Batch) -> dict[str, float]:
        """One update; a batch of more than :attr:`max_rows` agent rows runs in chunks of episodes
        whose gradients add up (MindSpore keeps every intermediate of a graph alive)."""
        batch = self._prepare(batch, learn=True)
        A, B = batch["rew"].shape[:2]
        per_episode = A * self.steps(batch)
        if B * per_episode <= self.max_rows:
            return self.ops.metrics(self._run("_update_step", batch), self.method.metrics)
        # chunks of whole episodes, equal in size where possible (one compiled graph per chunk shape)
        n_chunks = -(-B * per_episode // self.max_rows)
        size = -(-B // n_chunks)
        norm = self._norm(batch)
        losses, grads = np.zeros(len(LOSSES)), None
        for start in range(0, B, size):
            part = {k: v if k not in EPISODE_AXIS else np.take(v, range(start, min(start + size, B)), EPISODE_AXIS[k])
                    for k, v in batch.items()}
            chunk_losses, chunk_grads = self._gradient_cell(*self._tensors(part, norm))
            losses += chunk_losses.asnumpy()
            chunk_grads = [g.asnumpy() for g in chunk_grads]
            grads = chunk_grads if grads is None else [a + g for a, g in zip(grads, chunk_grads)]
        grad_norm = float(self._apply(*(Tensor.from_numpy(g) for g in grads)).asnumpy())
        ms_ops._sigint_to_python()
        return {**dict(zip(LOSSES, losses.tolist())), "grad_norm": grad_norm}
