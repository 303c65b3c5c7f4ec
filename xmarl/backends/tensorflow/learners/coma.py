"""COMA (Foerster et al. 2018) in TensorFlow.

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
(``update_recurrent``, XuanCe's name for it, does the same). The update, the gradients and the
diagnostics run as ``tf.function`` graphs traced once per learner for any number of episodes and
any episode length; the exploration floor ``epsilon`` is a batch input, not a constant of the graph.
"""

from __future__ import annotations

import tensorflow as tf

from xmarl import registry
from xmarl.backends.tensorflow import ops as tf_ops
from xmarl.backends.tensorflow.optimizers import Adam, clip_by_group_norm
from xmarl.backends.tensorflow.policies import COMAActor, COMACritic
from xmarl.core.actions import NEG_INF
from xmarl.core.coma import COMALearnerBase
from xmarl.docschema import documented

TensorBatch = dict[str, tf.Tensor]


@registry.register("learner", "coma", backend="tensorflow")
@documented
class COMALearner(COMALearnerBase):
    backend, ops = "tensorflow", tf_ops
    Networks = {"actor": COMAActor, "critic": COMACritic, "target_critic": COMACritic}
    Optimizer = Adam

    # -- the quantities of one update ------------------------------------------------------
    def _forward(self, b: TensorBatch) -> dict[str, tf.Tensor]:
        A = self.spec.n_agents
        mask, alive, cfg = b["mask"], b["agent_mask"], self.cfg
        w = mask * alive[:, :, :-1]  # each agent-step's weight: real steps of agents in the episode
        shape = tf.shape(b["act_onehot"])  # [A, B, T+1, n]
        critic_in = tf.reshape(b["critic_in"], [A, -1, b["critic_in"].shape[-1]])
        q = tf.reshape(self.critic(critic_in), shape)[:, :, :-1]
        # TD(lambda) targets from the target critic at the next step's taken actions
        tq = tf.reduce_sum(tf.reshape(self.target_critic(critic_in), shape) * b["act_onehot"], -1)[:, :, 1:]
        cont = tf.concat([mask[:, 1:], tf.zeros_like(mask[:, :1])], 1)
        boot = tq * alive[:, :, 1:]  # 0 once the agent has left
        step = w * (b["rew"] + cfg.gamma * (1.0 - b["term"]) * (1.0 - cfg.td_lambda * cont) * boot)
        targets = tf.stop_gradient(tf.einsum("ts,abs->abt", b["td_matrix"], step))
        onehot = b["act_onehot"][:, :, :-1]
        avail = b["avail"][:, :, :-1]
        obs = b["obs"][:, :, :-1]
        if cfg.recurrent:
            logits = self.actor.sequence(obs)
        else:
            logits = tf.reshape(self.actor(tf.reshape(obs, [A, -1, obs.shape[-1]])), tf.shape(onehot))
        # epsilon-floored policy over the available actions
        eps = b["epsilon"]
        probs = tf.nn.softmax(tf.where(avail > 0, logits, NEG_INF), -1)
        pi = (1.0 - eps) * probs + eps * avail / tf.reduce_sum(avail, -1, keepdims=True)
        q_taken = tf.reduce_sum(q * onehot, -1)
        advantages = tf.stop_gradient(q_taken - tf.reduce_sum(pi * q, -1))  # counterfactual baseline (eq. 4)
        log_pi = tf.math.log(tf.maximum(tf.reduce_sum(pi * onehot, -1), 1e-10))
        norm = tf.maximum(tf.reduce_sum(w), 1.0)
        if cfg.advantage_norm:  # zero mean, unit std over the weighted agent-steps (as in PPO implementations)
            mean = tf.reduce_sum(w * advantages) / norm
            std = tf.sqrt(tf.reduce_sum(w * tf.square(advantages - mean)) / norm)
            advantages = (advantages - mean) / (std + 1e-8)
        actor_loss = -tf.reduce_sum(w * advantages * log_pi) / norm
        if cfg.entropy_coef > 0:  # entropy bonus on the floored policy (as in A3C); unavailable actions add 0
            entropy = -tf.reduce_sum(pi * tf.math.log(tf.maximum(pi, 1e-10)), -1)
            actor_loss = actor_loss - cfg.entropy_coef * tf.reduce_sum(w * entropy) / norm
        return {"q": q, "target_q_next": tq, "targets": targets, "pi": pi, "advantages": advantages,
                "critic_loss": tf.reduce_sum(w * tf.square(q_taken - targets)) / norm,
                "actor_loss": actor_loss,
                "q_taken": tf.stop_gradient(tf.reduce_sum(w * q_taken)) / norm}

    def _losses_and_grads(self, b: TensorBatch) -> tuple[dict[str, tf.Tensor], dict[str, list[tf.Tensor]]]:
        """One forward pass; the critic's and the actor's gradients of their own losses."""
        params = {"critic": list(self.critic.canonical().values()), "actor": list(self.actor.canonical().values())}
        with tf.GradientTape(persistent=True, watch_accessed_variables=False) as tape:
            tape.watch(params["critic"] + params["actor"])
            out = self._forward(b)
        grads = {name: tape.gradient(out[f"{name}_loss"], p) for name, p in params.items()}
        return out, grads

    # -- steps (compiled by the core, once per learner, for any number of episodes and length) --
    def _update_step(self, b: TensorBatch) -> dict[str, tf.Tensor]:
        out, grads = self._losses_and_grads(b)
        for name, opt in (("critic", self.critic_opt), ("actor", self.actor_opt)):
            clipped, _ = clip_by_group_norm(grads[name], self.cfg.grad_clip)
            opt.apply(clipped)
        return {k: out[k] for k in self.method.metrics}

    def _gradients_step(self, b: TensorBatch) -> tuple[dict[str, tf.Tensor], dict[str, list[tf.Tensor]]]:
        out, grads = self._losses_and_grads(b)
        return {name: out[f"{name}_loss"] for name in grads}, grads

    def _diagnostics_step(self, b: TensorBatch) -> dict[str, tf.Tensor]:
        out = self._forward(b)
        return {k: out[k] for k in self.method.diagnostics}
