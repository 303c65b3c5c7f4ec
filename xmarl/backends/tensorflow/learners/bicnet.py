"""BiCNet (Peng et al. 2017) in TensorFlow: BiCNet's losses (section 3.2, eq. 6; the method and
its alive masks are in :mod:`xmarl.core.bicnet`) on MADDPG's off-policy steps, which this learner
inherits (``tf.function`` graphs traced once per learner; each recurrence is a ``tf.scan`` along
the agent axis, see ``representations.BiCNet``).
"""

from __future__ import annotations

import tensorflow as tf

from xmarl import registry
from xmarl.backends.tensorflow.learners.maddpg import MADDPGLearner
from xmarl.backends.tensorflow.policies import BiCNetActor, BiCNetCritic
from xmarl.core.bicnet import BICNET
from xmarl.docschema import documented

Tensors = dict[str, tf.Tensor]


@registry.register("learner", "bicnet", backend="tensorflow")
@documented
class BiCNetLearner(MADDPGLearner):
    method = BICNET
    Networks = {"actor": BiCNetActor, "critic": BiCNetCritic, "target_actor": BiCNetActor,
                "target_critic": BiCNetCritic}

    def _targets(self, b: Tensors) -> tf.Tensor:
        """``y_i = r_i + gamma (1 - d_i) Q'_i(o', a')`` with ``a' = mu'(o')``, zeros for the dead."""
        alive = b["next_agent_mask"][..., None]
        next_act = self._action(self.target_actor(b["next_obs"], alive), b["next_gumbel"]) * alive
        y = b["rew"] + self.cfg.gamma * (1.0 - b["done"]) * self.target_critic(b["next_obs"], next_act, alive)
        return tf.stop_gradient(y)

    def _critic_loss(self, b: Tensors) -> tf.Tensor:
        q = self.critic(b["obs"], b["act"], b["agent_mask"][..., None])
        return self._masked_mean(tf.square(q - self._targets(b)), b["agent_mask"])

    def _actor_loss(self, b: Tensors) -> tf.Tensor:
        w = b["agent_mask"]
        alive = w[..., None]
        raw = self.actor(b["obs"], alive)
        q = self.critic(b["obs"], self._action(raw, b["gumbel"]) * alive, alive)  # every agent's action from mu
        reg = tf.reduce_sum(tf.square(raw) * self.act_mask, -1) / tf.reduce_sum(self.act_mask, -1)
        return -self._masked_mean(q, w) + self.cfg.policy_reg * self._masked_mean(reg, w)

    def _diagnostics_step(self, b: Tensors) -> Tensors:
        alive = b["agent_mask"][..., None]
        features, raw = self.actor.features_and_outputs(b["obs"], alive)
        return {"features": features, "raw": raw, "q": self.critic(b["obs"], b["act"], alive), "y": self._targets(b)}
