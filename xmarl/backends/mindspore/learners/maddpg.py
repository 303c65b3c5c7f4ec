"""MADDPG (Lowe et al. 2017) in MindSpore.

One ``update`` is Algorithm 1's inner loop for every agent at once: the centralised critics
regress on ``y_i = r_i + gamma (1 - d_i) Q'_i(x', a'_1..a'_N)`` with ``a'_j = mu'_j(o'_j)``,
then each actor follows ``grad Q_i(x, a_1..mu_i(o_i)..a_N)`` with the other agents' actions
taken from replay, then the targets move by ``tau``. Categorical actions (discrete, or the
discrete part of hybrid ones) are relaxed by Gumbel-softmax with the batch's noise, as in the
reference code; bounded continuous entries are squashed by ``tanh``. Agents that have left keep
their slot: a dead agent's target action is zeros and each agent's losses are means over the
transitions where it is alive (``agent_mask``, see :mod:`xmarl.core.maddpg`).

The whole update (both gradient steps and the target update) is one graph-mode cell,
:class:`_UpdateStep`; :class:`_Gradients` is a second one for parity checks.
"""

from __future__ import annotations

import numpy as np
from mindspore import Parameter, ParameterTuple, Tensor, nn, ops, value_and_grad

from xmarl import registry
from xmarl.backends.mindspore import ops as ms_ops
from xmarl.backends.mindspore.optimizers import Adam, clip_by_group_norm
from xmarl.backends.mindspore.policies import CentralCritic, MADDPGActor
from xmarl.core.actions import NEG_INF
from xmarl.core.interfaces import Batch
from xmarl.core.learner import LearnerBase
from xmarl.core.maddpg import MADDPG
from xmarl.core.spaces import AgentSpec
from xmarl.docschema import documented


def _joint(x: Tensor) -> Tensor:
    """``[A, B, d]`` -> ``[1, B, A*d]``: every agent's values side by side."""
    A, B, d = x.shape
    return x.swapaxes(0, 1).reshape(1, B, A * d)


def _masked_mean(x: Tensor, w: Tensor) -> Tensor:
    """``[A, B]`` values to the sum over agents of their mean over the transitions where the agent
    is alive: ``sum_i sum_b w_ib x_ib / max(sum_b w_ib, 1)``."""
    return ((w * x).sum(1) / ops.maximum(w.sum(1), 1.0)).sum()


class _Action(nn.Cell):
    """The policy's action, differentiable: Gumbel-softmax sample on the categorical entries,
    squashed bounded values on the continuous ones (one formula for discrete, continuous and
    hybrid actions)."""

    def __init__(self, spec: AgentSpec, temperature: float) -> None:
        super().__init__()
        self.temperature = temperature
        self.act_mask = Tensor(spec.act_mask[:, None])  # [A, 1, d]
        self.disc_mask = Tensor(spec.disc_mask[:, None])  # categorical entries
        self.low = Tensor(spec.low[:, None])
        self.high = Tensor(spec.high[:, None])

    def construct(self, raw: Tensor, noise: Tensor) -> Tensor:
        disc = self.disc_mask
        logits = ops.where(disc * self.act_mask > 0, raw, NEG_INF)
        sample = ops.softmax((logits + noise) / self.temperature, -1)  # finite on all-NEG_INF rows
        bounded = self.low + (ops.tanh(raw) + 1.0) * 0.5 * (self.high - self.low)
        return disc * sample + (1.0 - disc) * bounded


class _CriticLoss(nn.Cell):
    """Sum over agents of the squared TD error's mean over the transitions where the agent is
    alive; the target carries no gradient and agents gone at ``next_obs`` act zeros in it."""

    def __init__(self, critic: CentralCritic, target_actor: MADDPGActor, target_critic: CentralCritic,
                 action: _Action, gamma: float) -> None:
        super().__init__(auto_prefix=False)
        self.critic, self.target_actor, self.target_critic = critic, target_actor, target_critic
        self.action = action
        self.gamma = gamma

    def construct(self, obs: Tensor, act: Tensor, rew: Tensor, next_obs: Tensor, done: Tensor,
                  next_gumbel: Tensor, agent_mask: Tensor, next_agent_mask: Tensor) -> Tensor:
        next_act = self.action(self.target_actor(next_obs), next_gumbel) * next_agent_mask.expand_dims(-1)
        q_next = self.target_critic(ops.cat((_joint(next_obs), _joint(next_act)), -1))
        y = ops.stop_gradient(rew + self.gamma * (1.0 - done) * q_next)
        q = self.critic(ops.cat((_joint(obs), _joint(act)), -1))
        return _masked_mean(ops.square(q - y), agent_mask)


class _ActorLoss(nn.Cell):
    """``-Q_i(x, a_1..mu_i(o_i)..a_N)`` plus the pre-activation penalty, each a mean over the
    transitions where agent ``i`` is alive, summed over agents."""

    def __init__(self, actor: MADDPGActor, critic: CentralCritic, action: _Action, spec: AgentSpec,
                 policy_reg: float) -> None:
        super().__init__(auto_prefix=False)
        self.actor, self.critic, self.action = actor, critic, action
        A = spec.n_agents
        self.own = Tensor(np.eye(A, dtype=np.float32).reshape(A, 1, A, 1))  # own[i, :, j] = 1 iff j == i
        self.act_mask = Tensor(spec.act_mask[:, None])  # [A, 1, d]
        self.policy_reg = policy_reg

    def construct(self, obs: Tensor, act: Tensor, gumbel: Tensor, agent_mask: Tensor) -> Tensor:
        A, B, d = act.shape
        raw = self.actor(obs)
        pi = self.action(raw, gumbel)
        # critic i sees mu_i(o_i) in slot i and the replayed actions of the others
        mixed = self.own * pi.swapaxes(0, 1).expand_dims(0) + (1 - self.own) * act.swapaxes(0, 1).expand_dims(0)
        joint_obs = ops.broadcast_to(_joint(obs), (A, B, A * obs.shape[2]))
        q = self.critic(ops.cat((joint_obs, mixed.reshape(A, B, A * d)), -1))
        reg = (ops.square(raw) * self.act_mask).sum(-1) / self.act_mask.sum(-1)
        return -_masked_mean(q, agent_mask) + self.policy_reg * _masked_mean(reg, agent_mask)


class _Gradients(nn.Cell):
    """Both losses and their gradients at the current weights (no update)."""

    def __init__(self, critic_loss: _CriticLoss, actor_loss: _ActorLoss, critic_params: ParameterTuple,
                 actor_params: ParameterTuple) -> None:
        super().__init__(auto_prefix=False)
        self.critic_grad = value_and_grad(critic_loss, None, critic_params)
        self.actor_grad = value_and_grad(actor_loss, None, actor_params)

    def construct(self, obs: Tensor, act: Tensor, rew: Tensor, next_obs: Tensor, done: Tensor, gumbel: Tensor,
                  next_gumbel: Tensor, agent_mask: Tensor, next_agent_mask: Tensor) -> tuple:
        critic_loss, critic_grads = self.critic_grad(obs, act, rew, next_obs, done, next_gumbel, agent_mask,
                                                     next_agent_mask)
        actor_loss, actor_grads = self.actor_grad(obs, act, gumbel, agent_mask)
        return critic_loss, critic_grads, actor_loss, actor_grads


class _UpdateStep(nn.Cell):
    """Critic step, actor step against the updated critic, then soft target updates."""

    def __init__(self, critic_loss: _CriticLoss, actor_loss: _ActorLoss, critic_opt: Adam, actor_opt: Adam,
                 sources: list[Parameter], targets: list[Parameter], grad_clip: float | None, tau: float) -> None:
        super().__init__(auto_prefix=False)
        self.critic_grad = value_and_grad(critic_loss, None, critic_opt.params)
        self.actor_grad = value_and_grad(actor_loss, None, actor_opt.params)
        self.critic_opt, self.actor_opt = critic_opt, actor_opt
        self.sources, self.targets = ParameterTuple(sources), ParameterTuple(targets)
        self.grad_clip, self.tau, self.keep = grad_clip, tau, 1.0 - tau  # 1 - tau in double, as in PyTorch

    def construct(self, obs: Tensor, act: Tensor, rew: Tensor, next_obs: Tensor, done: Tensor, gumbel: Tensor,
                  next_gumbel: Tensor, agent_mask: Tensor, next_agent_mask: Tensor) -> Tensor:
        critic_loss, grads = self.critic_grad(obs, act, rew, next_obs, done, next_gumbel, agent_mask,
                                              next_agent_mask)
        grads, _ = clip_by_group_norm(grads, self.grad_clip)
        critic_loss = ops.depend(critic_loss, self.critic_opt(grads))
        actor_loss, grads = self.actor_grad(obs, act, gumbel, agent_mask)  # uses the new critic
        grads, _ = clip_by_group_norm(grads, self.grad_clip)
        actor_loss = ops.depend(actor_loss, self.actor_opt(grads))
        for p, t in zip(self.sources, self.targets):
            ops.assign(t, self.keep * t + self.tau * p)
        return ops.stack((critic_loss, actor_loss))


@registry.register("learner", "maddpg", backend="mindspore")
@documented
class MADDPGLearner(LearnerBase):
    backend, method, ops = "mindspore", MADDPG, ms_ops
    Networks = {"actor": MADDPGActor, "critic": CentralCritic, "target_actor": MADDPGActor,
                "target_critic": CentralCritic}
    Optimizer = Adam

    def build(self) -> None:
        spec, config = self.spec, self.cfg
        action = _Action(spec, config.gumbel_temperature)
        critic_loss = _CriticLoss(self.critic, self.target_actor, self.target_critic, action, config.gamma)
        actor_loss = _ActorLoss(self.actor, self.critic, action, spec, config.policy_reg)
        sources = [*self.actor.canonical().values(), *self.critic.canonical().values()]
        targets = [*self.target_actor.canonical().values(), *self.target_critic.canonical().values()]
        self._update_step = _UpdateStep(critic_loss, actor_loss, self.critic_opt, self.actor_opt,
                                        sources, targets, config.grad_clip, config.tau)
        self._gradients = _Gradients(critic_loss, actor_loss, self.critic_opt.params, self.actor_opt.params)

    def _prepare(self, batch: Batch, learn: bool) -> Batch:
        return MADDPG.with_masks(batch)  # a batch without masks: every agent alive

    def _gradients_step(self, *batch: Tensor) -> tuple[dict[str, Tensor], dict[str, tuple[Tensor, ...]]]:
        critic_loss, critic_grads, actor_loss, actor_grads = self._gradients(*batch)
        return {"critic": critic_loss, "actor": actor_loss}, {"critic": critic_grads, "actor": actor_grads}
