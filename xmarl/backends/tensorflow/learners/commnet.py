"""CommNet (Sukhbaatar et al. 2016) in TensorFlow.

One update is the paper's training step (section 2.1) on a batch of episodes, for every agent
at once: the policy follows ``grad log pi(a_t | s_t) (R_t - b(s_t))`` and the baseline regresses
on ``R_t`` with weight ``alpha`` (``value_coef``); gradients flow through the communication
between agents. ``R_t`` is the Monte-Carlo return (REINFORCE) or, with ``actor_critic``, the
TD(lambda) target bootstrapped from the baseline. Batches come from
:meth:`xmarl.core.commnet.CommNetCore.prepare_batch` (agent-major). The update and the gradients run as
``tf.function`` graphs traced once per learner for any number of episodes and any episode
length (a recurrent net scans over time).
"""

from __future__ import annotations

import tensorflow as tf

from xmarl import registry
from xmarl.backends.tensorflow import ops as tf_ops
from xmarl.backends.tensorflow.optimizers import Adam, clip_by_group_norm
from xmarl.backends.tensorflow.policies import CommNetPolicy
from xmarl.core.actions import NEG_INF
from xmarl.core.commnet import NET, CommNetLearnerBase
from xmarl.docschema import documented

TensorBatch = dict[str, tf.Tensor]


@registry.register("learner", "commnet", backend="tensorflow")
@documented
class CommNetLearner(CommNetLearnerBase):
    backend, ops = "tensorflow", tf_ops
    Networks = {NET: CommNetPolicy}
    Optimizer = Adam

    def build(self) -> None:
        self.params = list(self.commnet.canonical().values())

    # -- the quantities of one update ------------------------------------------------------
    def _outputs(self, b: TensorBatch, final: bool) -> tuple[tf.Tensor, tf.Tensor]:
        """Logits ``[A, B, T', n]`` and values ``[A, B, T']`` over the episodes' first ``T' = T``
        steps, or ``T' = T + 1`` with ``final`` (the final observation too)."""
        A, od, n, H = self.spec.n_agents, self.spec.obs_dim, self.spec.act_dim, self.cfg.hidden_size
        T1 = tf.shape(b["obs"])[2]
        Ts = T1 if final else T1 - 1
        obs, am = b["obs"][:, :, :Ts], b["agent_mask"][:, :, :Ts]
        cm = b["comm_mask"][:, :Ts] if "comm_mask" in b else None
        B = tf.shape(obs)[1]
        if not self.cfg.recurrent:  # every (episode, step) is one row
            logits, values, _ = self.commnet(tf.reshape(obs, [A, -1, od]), tf.reshape(am, [A, -1, 1]),
                                         None if cm is None else tf.reshape(cm, [-1, A, A]))
            return tf.reshape(logits, tf.stack([A, B, Ts, n])), tf.reshape(values, tf.stack([A, B, Ts]))
        # the recurrence over time as a scan; agents and episodes are batched
        elems = {"obs": tf.transpose(obs, [2, 0, 1, 3]), "agent_mask": tf.transpose(am, [2, 0, 1])[..., None]}
        if cm is not None:
            elems["comm_mask"] = tf.transpose(cm, [1, 0, 2, 3])

        def step(acc: tuple[tf.Tensor, ...], x: dict[str, tf.Tensor]) -> tuple[tf.Tensor, ...]:
            logits, values, hiddens = self.commnet(x["obs"], x["agent_mask"], x.get("comm_mask"), acc[0])
            return hiddens[-1], logits, values

        zeros = tf.zeros(tf.stack([A, B]))
        init = (tf.zeros(tf.stack([A, B, H])), tf.zeros(tf.stack([A, B, n])), zeros)
        _, logits, values = tf.scan(step, elems, initializer=init)  # [T', A, B, ...]
        return tf.transpose(logits, [1, 2, 0, 3]), tf.transpose(values, [1, 2, 0])

    def _losses(self, b: TensorBatch) -> dict[str, tf.Tensor]:
        cfg, mask = self.cfg, b["mask"]
        logits, values = self._outputs(b, cfg.actor_critic)
        mu, sigma = b["value_stats"][0], b["value_stats"][1]
        values = mu + sigma * values  # the baseline in return units
        avail = b["avail"][:, :, :-1]
        logp = tf.nn.log_softmax(tf.where(avail > 0, logits[:, :, :tf.shape(mask)[1]], NEG_INF), -1)
        taken = tf.reduce_sum(b["act_onehot"][:, :, :-1] * logp, -1)
        v = values[:, :, :tf.shape(mask)[1]]
        if cfg.actor_critic:  # TD(lambda) targets bootstrapped from the baseline
            cont = tf.concat([mask[:, 1:], tf.zeros_like(mask[:, :1])], 1)
            step = mask * (b["rew"] + cfg.gamma * (1.0 - b["term"]) * (1.0 - cfg.td_lambda * cont)
                           * values[:, :, 1:] * b["agent_mask"][:, :, 1:])  # no value after leaving
            returns = tf.stop_gradient(tf.matmul(step, b["td_matrix"], transpose_b=True))
        else:  # Monte-Carlo returns: REINFORCE with the learned baseline
            returns = b["returns"]
        w = mask * b["agent_mask"][:, :, :-1]
        n = tf.maximum(tf.reduce_sum(w), 1.0)
        adv = returns - v
        policy_loss = -tf.reduce_sum(w * taken * tf.stop_gradient(adv)) / n
        value_loss = tf.reduce_sum(w * tf.square(adv / sigma)) / n
        entropy = -tf.reduce_sum(w * tf.reduce_sum(tf.exp(logp) * logp, -1)) / n
        loss = policy_loss + cfg.value_coef * value_loss - cfg.entropy_coef * entropy
        return {"loss": loss, "policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy}

    def _losses_and_grads(self, b: TensorBatch) -> tuple[dict[str, tf.Tensor], list[tf.Tensor]]:
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(self.params)
            out = self._losses(b)
        # the embedding's gradient arrives as IndexedSlices: dense, for clipping and Adam
        return out, [tf.convert_to_tensor(g) for g in tape.gradient(out["loss"], self.params)]

    # -- steps (compiled by the core, once per learner, for any number of episodes and length) --
    def _update_step(self, b: TensorBatch) -> dict[str, tf.Tensor]:
        out, grads = self._losses_and_grads(b)
        grads, norms = clip_by_group_norm(grads, self.cfg.grad_clip)
        self.commnet_opt.apply(grads)
        return {**out, "grad_norm": tf.reduce_max(norms)}

    def _gradients_step(self, b: TensorBatch) -> tuple[dict[str, tf.Tensor], dict[str, list[tf.Tensor]]]:
        out, grads = self._losses_and_grads(b)
        return out, {NET: grads}
