"""COMA (Foerster et al. 2018) in MindSpore.

One update is Algorithm 1's learning step on a batch of episodes, for every agent at once:
the centralised critic regresses ``Q_a(s_t, u_t)`` on TD(lambda) targets built from the target
critic; each actor follows ``grad log pi_a(u_a | tau_a) A_a`` with the counterfactual advantage
``A_a = Q_a(s, u) - sum_u' pi_a(u') Q_a(s, (u^-a, u'))`` taken from the critic before its step
(with ``advantage_norm``, normalised to zero mean and unit std over the weighted agent-steps; with
``entropy_coef`` > 0, the actor loss also gets ``- entropy_coef H(pi_a)``, weighted alike).
Agents that have left the episode (``agent_mask`` 0) weigh nothing in either loss, and an agent's
TD(lambda) return ends when it leaves (see :mod:`xmarl.core.coma`).
Batches come from :meth:`xmarl.core.coma.COMACore.prepare_batch` (agent-major, critic inputs built in
numpy); ``update`` trains the feed-forward or (``recurrent``) the GRU actor over whole padded
episodes.

The whole update is one graph-mode cell, :class:`_UpdateStep`: one forward pass gives both
losses, one backward pass both gradients (the actor's loss sees the critic only through the
advantages, which carry no gradient, so the gradient of the summed losses is each loss's
gradient with respect to its own network). Graphs are compiled once per batch shape
``(B, T)``; the GRU's loop over time is unrolled for ``T``.
"""

from __future__ import annotations

from mindspore import ParameterTuple, Tensor, nn, ops, value_and_grad

from xmarl import registry
from xmarl.backends.mindspore import ops as ms_ops
from xmarl.backends.mindspore.optimizers import Adam, clip_by_group_norm
from xmarl.backends.mindspore.policies import COMAActor, COMACritic
from xmarl.core.actions import NEG_INF
from xmarl.core.coma import COMALearnerBase
from xmarl.docschema import documented

#: what :class:`_Forward` returns, in order
OUTPUTS = ("critic_loss", "actor_loss", "q_taken", "q", "target_q_next", "targets", "pi", "advantages")


class _Forward(nn.Cell):
    """Every quantity of one update at the current weights (the losses and the diagnostics)."""

    def __init__(self, actor: COMAActor, critic: COMACritic, target_critic: COMACritic, gamma: float,
                 td_lambda: float, recurrent: bool, entropy_coef: float = 0.0, advantage_norm: bool = False) -> None:
        super().__init__(auto_prefix=False)
        self.actor, self.critic, self.target_critic = actor, critic, target_critic
        self.gamma, self.td_lambda, self.recurrent = gamma, td_lambda, recurrent
        self.entropy_coef, self.entropy, self.advantage_norm = entropy_coef, entropy_coef > 0, advantage_norm
        self.matmul_t = ops.MatMul(transpose_b=True)

    def construct(self, obs: Tensor, critic_in: Tensor, act_onehot: Tensor, avail: Tensor, rew: Tensor,
                  term: Tensor, mask: Tensor, agent_mask: Tensor, td_matrix: Tensor,
                  epsilon: Tensor) -> tuple[Tensor, ...]:
        A, B, T1, n = act_onehot.shape
        T = T1 - 1
        d = critic_in.shape[3]
        w = mask * agent_mask[:, :, :T]  # each agent-step's weight: real steps of agents in the episode
        q = self.critic(critic_in[:, :, :T].reshape(A, B * T, d)).reshape(A, B, T, n)
        # TD(lambda) targets from the target critic at the next step's taken actions: G = P b
        tq = self.target_critic(critic_in[:, :, 1:].reshape(A, B * T, d)).reshape(A, B, T, n)
        tq = ops.stop_gradient((tq * act_onehot[:, :, 1:]).sum(-1))
        cont = ops.cat((mask[:, 1:], ops.zeros_like(mask[:, :1])), 1)
        boot = tq * agent_mask[:, :, 1:]  # 0 once the agent has left
        step = w * (rew + self.gamma * (1.0 - term) * (1.0 - self.td_lambda * cont) * boot)
        targets = self.matmul_t(step.reshape(A * B, T), td_matrix).reshape(A, B, T)
        onehot = act_onehot[:, :, :T]
        avail = avail[:, :, :T]
        if self.recurrent:
            logits = self.actor.sequence(obs[:, :, :T])
        else:
            logits = self.actor(obs[:, :, :T].reshape(A, B * T, obs.shape[3])).reshape(A, B, T, n)
        # epsilon-floored policy over the available actions
        probs = ops.softmax(ops.where(avail > 0, logits, NEG_INF), -1)
        pi = (1.0 - epsilon) * probs + epsilon * avail / avail.sum(-1, keepdims=True)
        q_taken = (q * onehot).sum(-1)
        advantages = ops.stop_gradient(q_taken - (pi * q).sum(-1))  # counterfactual baseline (eq. 4)
        log_pi = ops.log(ops.maximum((pi * onehot).sum(-1), 1e-10))
        norm = ops.maximum(w.sum(), 1.0)
        if self.advantage_norm:  # zero mean, unit std over the weighted agent-steps (as in PPO implementations)
            mean = (w * advantages).sum() / norm
            std = ops.sqrt((w * ops.square(advantages - mean)).sum() / norm)
            advantages = (advantages - mean) / (std + 1e-8)
        critic_loss = (w * ops.square(q_taken - targets)).sum() / norm
        actor_loss = -(w * advantages * log_pi).sum() / norm
        if self.entropy:  # entropy bonus on the floored policy (as in A3C); unavailable actions add 0
            entropy = -(pi * ops.log(ops.maximum(pi, 1e-10))).sum(-1)
            actor_loss = actor_loss - self.entropy_coef * (w * entropy).sum() / norm
        q_mean = ops.stop_gradient((w * q_taken).sum()) / norm
        return critic_loss, actor_loss, q_mean, q, tq, targets, pi, advantages


class _Loss(nn.Cell):
    """``critic_loss + actor_loss`` (differentiated) with both losses and the mean taken Q as aux outputs."""

    def __init__(self, forward: _Forward) -> None:
        super().__init__(auto_prefix=False)
        self.forward = forward

    def construct(self, obs: Tensor, critic_in: Tensor, act_onehot: Tensor, avail: Tensor, rew: Tensor,
                  term: Tensor, mask: Tensor, agent_mask: Tensor, td_matrix: Tensor,
                  epsilon: Tensor) -> tuple[Tensor, ...]:
        out = self.forward(obs, critic_in, act_onehot, avail, rew, term, mask, agent_mask, td_matrix, epsilon)
        return out[0] + out[1], out[0], out[1], out[2]


class _Gradients(nn.Cell):
    """Both losses and the gradients (critic's parameters, then the actor's) at the current weights."""

    def __init__(self, loss: _Loss, params: ParameterTuple) -> None:
        super().__init__(auto_prefix=False)
        self.grad = value_and_grad(loss, None, params, has_aux=True)

    def construct(self, obs: Tensor, critic_in: Tensor, act_onehot: Tensor, avail: Tensor, rew: Tensor,
                  term: Tensor, mask: Tensor, agent_mask: Tensor, td_matrix: Tensor, epsilon: Tensor) -> tuple:
        (_, critic_loss, actor_loss, _), grads = self.grad(obs, critic_in, act_onehot, avail, rew, term, mask,
                                                           agent_mask, td_matrix, epsilon)
        return critic_loss, actor_loss, grads


class _UpdateStep(nn.Cell):
    """Both gradients from one forward pass, clipped per group, then one Adam step per network."""

    def __init__(self, loss: _Loss, critic_opt: Adam, actor_opt: Adam, grad_clip: float | None) -> None:
        super().__init__(auto_prefix=False)
        self.n_critic = len(critic_opt.params)
        self.grad = value_and_grad(loss, None, ParameterTuple((*critic_opt.params, *actor_opt.params)),
                                   has_aux=True)
        self.critic_opt, self.actor_opt = critic_opt, actor_opt
        self.grad_clip = grad_clip

    def construct(self, obs: Tensor, critic_in: Tensor, act_onehot: Tensor, avail: Tensor, rew: Tensor,
                  term: Tensor, mask: Tensor, agent_mask: Tensor, td_matrix: Tensor, epsilon: Tensor) -> Tensor:
        (_, critic_loss, actor_loss, q_taken), grads = self.grad(obs, critic_in, act_onehot, avail, rew, term,
                                                                 mask, agent_mask, td_matrix, epsilon)
        critic_grads, _ = clip_by_group_norm(grads[:self.n_critic], self.grad_clip)
        actor_grads, _ = clip_by_group_norm(grads[self.n_critic:], self.grad_clip)
        critic_loss = ops.depend(critic_loss, self.critic_opt(critic_grads))
        actor_loss = ops.depend(actor_loss, self.actor_opt(actor_grads))
        return ops.stack((critic_loss, actor_loss, q_taken))


@registry.register("learner", "coma", backend="mindspore")
@documented
class COMALearner(COMALearnerBase):
    backend, ops = "mindspore", ms_ops
    Networks = {"actor": COMAActor, "critic": COMACritic, "target_critic": COMACritic}
    Optimizer = Adam

    def build(self) -> None:
        cfg = self.cfg
        self._forward = _Forward(self.actor, self.critic, self.target_critic, cfg.gamma, cfg.td_lambda,
                                 cfg.recurrent, cfg.entropy_coef, cfg.advantage_norm)
        loss = _Loss(self._forward)
        self._update_step = _UpdateStep(loss, self.critic_opt, self.actor_opt, cfg.grad_clip)
        self._gradients = _Gradients(loss, ParameterTuple((*self.critic_opt.params, *self.actor_opt.params)))

    def _gradients_step(self, *batch: Tensor) -> tuple[dict[str, Tensor], dict[str, tuple[Tensor, ...]]]:
        critic_loss, actor_loss, grads = self._gradients(*batch)
        n = len(self.critic_opt.params)
        return {"critic": critic_loss, "actor": actor_loss}, {"critic": grads[:n], "actor": grads[n:]}

    def _diagnostics_step(self, *batch: Tensor) -> dict[str, Tensor]:
        return dict(zip(OUTPUTS, self._forward(*batch)))
