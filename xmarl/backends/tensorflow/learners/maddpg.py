"""MADDPG (Lowe et al. 2017) in TensorFlow.

One ``update`` is Algorithm 1's inner loop for every agent at once: the centralised critics
regress on ``y_i = r_i + gamma (1 - d_i) Q'_i(x', a'_1..a'_N)`` with ``a'_j = mu'_j(o'_j)``,
then each actor follows ``grad Q_i(x, a_1..mu_i(o_i)..a_N)`` with the other agents' actions
taken from replay, then the targets move by ``tau``. Categorical actions (discrete, or the
discrete part of hybrid ones) are relaxed by Gumbel-softmax with the batch's noise, as in the
reference code; bounded continuous entries are squashed by ``tanh``. Agents that have left keep
their slot: a dead agent's target action is zeros and each agent's losses are means over the
transitions where it is alive (``agent_mask``, see :mod:`xmarl.core.maddpg`). The update and the
gradients run as ``tf.function`` graphs traced once per learner (the batch size may vary).
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from xmarl import registry
from xmarl.backends.tensorflow import ops as tf_ops
from xmarl.backends.tensorflow.optimizers import Adam, clip_by_group_norm
from xmarl.backends.tensorflow.policies import CentralCritic, MADDPGActor
from xmarl.core.actions import NEG_INF
from xmarl.core.interfaces import Batch
from xmarl.core.learner import LearnerBase
from xmarl.core.maddpg import MADDPG
from xmarl.docschema import documented

TensorBatch = dict[str, tf.Tensor]


@registry.register("learner", "maddpg", backend="tensorflow")
@documented
class MADDPGLearner(LearnerBase):
    backend, method, ops = "tensorflow", MADDPG, tf_ops
    Networks = {"actor": MADDPGActor, "critic": CentralCritic, "target_actor": MADDPGActor,
                "target_critic": CentralCritic}
    Optimizer = Adam

    def build(self) -> None:
        spec = self.spec
        A = spec.n_agents
        self.act_mask = tf.constant(spec.act_mask[:, None, :])  # [A, 1, d]
        self.disc_mask = tf.constant(spec.disc_mask[:, None, :])  # categorical entries
        self.low = tf.constant(spec.low[:, None, :])
        self.high = tf.constant(spec.high[:, None, :])
        self.own = tf.reshape(tf.eye(A), [A, 1, A, 1])  # own[i, :, j] = 1 iff j == i

    # -- the policy's action, differentiable ----------------------------------------------
    def _action(self, raw: tf.Tensor, noise: tf.Tensor) -> tf.Tensor:
        """Gumbel-softmax sample on the categorical entries, squashed bounded values on the
        continuous ones (one formula for discrete, continuous and hybrid actions)."""
        disc = self.disc_mask
        logits = tf.where(disc * self.act_mask > 0, raw, NEG_INF)
        sample = tf.nn.softmax((logits + noise) / self.cfg.gumbel_temperature, axis=-1)  # finite on all-NEG_INF rows
        bounded = self.low + (tf.tanh(raw) + 1.0) * 0.5 * (self.high - self.low)
        return disc * sample + (1.0 - disc) * bounded

    @staticmethod
    def _joint(x: tf.Tensor) -> tf.Tensor:
        """``[A, B, d]`` -> ``[1, B, A*d]``: every agent's values side by side."""
        A, d = x.shape[0], x.shape[2]
        return tf.reshape(tf.transpose(x, [1, 0, 2]), [1, -1, A * d])

    @staticmethod
    def _masked_mean(x: tf.Tensor, w: tf.Tensor) -> tf.Tensor:
        """``[A, B]`` values to the sum over agents of their mean over the transitions where the
        agent is alive: ``sum_i sum_b w_ib x_ib / max(sum_b w_ib, 1)``."""
        return tf.reduce_sum(tf.reduce_sum(w * x, 1) / tf.maximum(tf.reduce_sum(w, 1), 1.0))

    # -- losses ----------------------------------------------------------------------------
    def _critic_loss(self, b: TensorBatch) -> tf.Tensor:
        # a'_j = mu'_j(o'_j), zeros for agents that are gone at o'
        next_act = self._action(self.target_actor(b["next_obs"]), b["next_gumbel"])
        next_act = next_act * b["next_agent_mask"][..., None]
        q_next = self.target_critic(tf.concat([self._joint(b["next_obs"]), self._joint(next_act)], -1))
        y = tf.stop_gradient(b["rew"] + self.cfg.gamma * (1.0 - b["done"]) * q_next)
        q = self.critic(tf.concat([self._joint(b["obs"]), self._joint(b["act"])], -1))
        return self._masked_mean(tf.square(q - y), b["agent_mask"])

    def _actor_loss(self, b: TensorBatch) -> tf.Tensor:
        A, d = self.spec.n_agents, self.spec.act_dim
        B = tf.shape(b["act"])[1]
        raw = self.actor(b["obs"])
        pi = self._action(raw, b["gumbel"])
        # critic i sees mu_i(o_i) in slot i and the replayed actions of the others
        mixed = (self.own * tf.transpose(pi, [1, 0, 2])[None]
                 + (1.0 - self.own) * tf.transpose(b["act"], [1, 0, 2])[None])  # [A, B, A, d]
        joint_obs = self._joint(b["obs"])
        joint_obs = tf.broadcast_to(joint_obs, tf.stack([A, B, joint_obs.shape[-1]]))
        q = self.critic(tf.concat([joint_obs, tf.reshape(mixed, tf.stack([A, B, A * d]))], -1))
        reg = tf.reduce_sum(tf.square(raw) * self.act_mask, -1) / tf.reduce_sum(self.act_mask, -1)
        w = b["agent_mask"]
        return -self._masked_mean(q, w) + self.cfg.policy_reg * self._masked_mean(reg, w)

    # -- steps (compiled by the core, once per learner, for any batch size) -----------------------
    def _prepare(self, batch: Batch, learn: bool) -> Batch:
        return MADDPG.with_masks(batch)  # a batch without masks: every agent alive

    @staticmethod
    def _loss_and_grads(loss_fn: Callable[[TensorBatch], tf.Tensor], b: TensorBatch,
                        params: list[tf.Variable]) -> tuple[tf.Tensor, list[tf.Tensor]]:
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(params)
            loss = loss_fn(b)
        return loss, tape.gradient(loss, params)

    def _step(self, loss_fn: Callable[[TensorBatch], tf.Tensor], b: TensorBatch, params: list[tf.Variable],
              opt: Adam) -> tf.Tensor:
        loss, grads = self._loss_and_grads(loss_fn, b, params)
        grads, _ = clip_by_group_norm(grads, self.cfg.grad_clip)
        opt.apply(grads)
        return loss

    def _update_step(self, b: TensorBatch) -> dict[str, tf.Tensor]:
        critic_loss = self._step(self._critic_loss, b, list(self.critic.canonical().values()), self.critic_opt)
        # automatic control dependencies order the actor step after the critic's assignments
        actor_loss = self._step(self._actor_loss, b, list(self.actor.canonical().values()), self.actor_opt)
        tau = self.cfg.tau
        for src, dst in ((self.actor, self.target_actor), (self.critic, self.target_critic)):
            for p, t in zip(src.canonical().values(), dst.canonical().values()):
                t.assign(t * (1.0 - tau) + tau * p)
        return {"critic_loss": critic_loss, "actor_loss": actor_loss}

    def _gradients_step(self, b: TensorBatch) -> tuple[dict[str, tf.Tensor], dict[str, list[tf.Tensor]]]:
        critic_loss, critic_grads = self._loss_and_grads(self._critic_loss, b, list(self.critic.canonical().values()))
        actor_loss, actor_grads = self._loss_and_grads(self._actor_loss, b, list(self.actor.canonical().values()))
        return {"critic": critic_loss, "actor": actor_loss}, {"critic": critic_grads, "actor": actor_grads}
