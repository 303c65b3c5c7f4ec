"""BiCNet (Peng et al. 2017) in MindSpore: BiCNet's loss cells (section 3.2, eq. 6; the method
and its alive masks are in :mod:`xmarl.core.bicnet`) in MADDPG's graph-mode step cells, which
this learner reuses (``_UpdateStep``: critic step, actor step through the new critic, soft
targets; ``_Gradients`` for parity; ``_Action``, the action relaxation).
"""

from __future__ import annotations

from mindspore import Tensor, nn, ops

from xmarl import registry
from xmarl.backends.mindspore.learners.maddpg import MADDPGLearner, _Action, _Gradients, _masked_mean, _UpdateStep
from xmarl.backends.mindspore.policies import BiCNetActor, BiCNetCritic
from xmarl.core.bicnet import BICNET
from xmarl.docschema import documented


class _Targets(nn.Cell):
    """``y_i = r_i + gamma (1 - d_i) Q'_i(o', a')`` with ``a' = mu'(o')``, zeros for the dead; no gradient."""

    def __init__(self, target_actor: BiCNetActor, target_critic: BiCNetCritic, action: _Action, gamma: float) -> None:
        super().__init__(auto_prefix=False)
        self.target_actor, self.target_critic, self.action, self.gamma = target_actor, target_critic, action, gamma

    def construct(self, rew: Tensor, next_obs: Tensor, done: Tensor, next_gumbel: Tensor,
                  next_agent_mask: Tensor) -> Tensor:
        alive = next_agent_mask.expand_dims(-1)
        next_act = self.action(self.target_actor(next_obs, alive), next_gumbel) * alive
        return ops.stop_gradient(rew + self.gamma * (1.0 - done) * self.target_critic(next_obs, next_act, alive))


class _CriticLoss(nn.Cell):
    """Sum over agents of the squared TD error's mean over the transitions where the agent is alive."""

    def __init__(self, critic: BiCNetCritic, targets: _Targets) -> None:
        super().__init__(auto_prefix=False)
        self.critic, self.targets = critic, targets

    def construct(self, obs: Tensor, act: Tensor, rew: Tensor, next_obs: Tensor, done: Tensor,
                  next_gumbel: Tensor, agent_mask: Tensor, next_agent_mask: Tensor) -> Tensor:
        q = self.critic(obs, act, agent_mask.expand_dims(-1))
        y = self.targets(rew, next_obs, done, next_gumbel, next_agent_mask)
        return _masked_mean(ops.square(q - y), agent_mask)


class _ActorLoss(nn.Cell):
    """``-sum_i Q_i(o, mu(o))`` with every agent's action from the actor, plus the pre-activation
    penalty, each a mean over the transitions where agent ``i`` is alive. ``act`` (the replayed
    actions) is not read: the step cell passes MADDPG's arguments."""

    def __init__(self, actor: BiCNetActor, critic: BiCNetCritic, action: _Action, policy_reg: float) -> None:
        super().__init__(auto_prefix=False)
        self.actor, self.critic, self.action, self.policy_reg = actor, critic, action, policy_reg

    def construct(self, obs: Tensor, act: Tensor, gumbel: Tensor, agent_mask: Tensor) -> Tensor:
        alive = agent_mask.expand_dims(-1)
        raw = self.actor(obs, alive)
        q = self.critic(obs, self.action(raw, gumbel) * alive, alive)
        mask = self.action.act_mask
        reg = (ops.square(raw) * mask).sum(-1) / mask.sum(-1)
        return -_masked_mean(q, agent_mask) + self.policy_reg * _masked_mean(reg, agent_mask)


class _Diagnostics(nn.Cell):
    """The actor's features and raw outputs, the critic's values and the targets at the current weights."""

    def __init__(self, actor: BiCNetActor, critic: BiCNetCritic, targets: _Targets) -> None:
        super().__init__(auto_prefix=False)
        self.actor, self.critic, self.targets = actor, critic, targets

    def construct(self, obs: Tensor, act: Tensor, rew: Tensor, next_obs: Tensor, done: Tensor, gumbel: Tensor,
                  next_gumbel: Tensor, agent_mask: Tensor, next_agent_mask: Tensor) -> tuple:
        alive = agent_mask.expand_dims(-1)
        features, raw = self.actor.features_and_outputs(obs, alive)
        return (features, raw, self.critic(obs, act, alive),
                self.targets(rew, next_obs, done, next_gumbel, next_agent_mask))


@registry.register("learner", "bicnet", backend="mindspore")
@documented
class BiCNetLearner(MADDPGLearner):
    method = BICNET
    Networks = {"actor": BiCNetActor, "critic": BiCNetCritic, "target_actor": BiCNetActor,
                "target_critic": BiCNetCritic}

    def build(self) -> None:
        cfg = self.cfg
        action = _Action(self.spec, cfg.gumbel_temperature)
        targets = _Targets(self.target_actor, self.target_critic, action, cfg.gamma)
        critic_loss, actor_loss = _CriticLoss(self.critic, targets), _ActorLoss(self.actor, self.critic, action,
                                                                                 cfg.policy_reg)
        sources = [*self.actor.canonical().values(), *self.critic.canonical().values()]
        targets_params = [*self.target_actor.canonical().values(), *self.target_critic.canonical().values()]
        self._update_step = _UpdateStep(critic_loss, actor_loss, self.critic_opt, self.actor_opt, sources,
                                        targets_params, cfg.grad_clip, cfg.tau)
        self._gradients = _Gradients(critic_loss, actor_loss, self.critic_opt.params, self.actor_opt.params)
        self._diagnostics = _Diagnostics(self.actor, self.critic, targets)

    def _diagnostics_step(self, *batch: Tensor) -> dict[str, Tensor]:
        return dict(zip(self.method.diagnostics, self._diagnostics(*batch)))
