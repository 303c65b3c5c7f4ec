"""Policies and critics in TensorFlow. Inputs and outputs inside a backend are agent-major:
``[A, B, features]``."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

import numpy as np
import tensorflow as tf

from xmarl import registry
from xmarl.backends.tensorflow.representations import MLP
from xmarl.core.interfaces import Policy
from xmarl.core.maddpg import groups, input_dims
from xmarl.core.spaces import AgentSpec
from xmarl.docschema import documented


class _MLPHead(tf.Module):
    """An :class:`MLP` torso followed by a linear head, with canonical parameter names."""

    def __init__(self, in_dim: int, hidden_sizes: Sequence[int], out_dim: int, groups: int) -> None:
        super().__init__()
        self.torso = MLP(in_dim, hidden_sizes, groups)
        self.head_kernel = tf.Variable(tf.zeros([groups, self.torso.output_dim, out_dim]), name="head_kernel")
        self.head_bias = tf.Variable(tf.zeros([groups, out_dim]), name="head_bias")

    def canonical(self) -> dict[str, tf.Variable]:
        return {**self.torso.canonical(), "head/kernel": self.head_kernel, "head/bias": self.head_bias}

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        return tf.matmul(self.torso(x), self.head_kernel) + self.head_bias[:, None, :]


def _with_ids(x: tf.Tensor, agent_ids: tf.Tensor) -> tf.Tensor:
    """Append each agent's one-hot id: ``[A or 1, B, d]`` -> ``[A, B, d + A]``."""
    A = agent_ids.shape[0]
    B = tf.shape(x)[1]
    x = tf.broadcast_to(x, tf.stack([A, B, tf.shape(x)[2]]))
    return tf.concat([x, tf.broadcast_to(agent_ids, [A, B, A])], axis=-1)


@registry.register("policy", "maddpg_actor", backend="tensorflow")
@documented
class MADDPGActor(_MLPHead, Policy):
    def __init__(self, spec: AgentSpec, hidden_sizes: Sequence[int], share_parameters: bool) -> None:
        A = spec.n_agents
        super().__init__(input_dims(spec, share_parameters)[0], hidden_sizes, spec.act_dim,
                         groups(spec, share_parameters))
        self.spec = spec
        self.share_parameters = share_parameters
        self.agent_ids = tf.eye(A)[:, None, :]  # [A, 1, A]

    def __call__(self, obs: tf.Tensor) -> tf.Tensor:
        if self.share_parameters:
            obs = _with_ids(obs, self.agent_ids)
        return super().__call__(obs)

    def _env_major(self, obs: tf.Tensor) -> tf.Tensor:
        """``[E, A, obs_dim]`` -> ``[E, A, act_dim]``."""
        return tf.transpose(self(tf.transpose(obs, [1, 0, 2])), [1, 0, 2])

    @cached_property
    def _forward_fn(self) -> tf.types.experimental.ConcreteFunction:
        """The env-major forward pass as a graph, traced once on first use for any ``E``
        (a concrete function is called with less dispatch overhead than a ``tf.function``)."""
        obs = tf.TensorSpec([None, self.spec.n_agents, self.spec.obs_dim], tf.float32)
        return tf.function(self._env_major).get_concrete_function(obs)

    def forward_numpy(self, obs: np.ndarray) -> np.ndarray:
        return self._forward_fn(tf.convert_to_tensor(np.asarray(obs, np.float32))).numpy()


@registry.register("policy", "central_critic", backend="tensorflow")
@documented
class CentralCritic(_MLPHead):
    def __init__(self, spec: AgentSpec, hidden_sizes: Sequence[int], share_parameters: bool) -> None:
        A = spec.n_agents
        super().__init__(input_dims(spec, share_parameters)[1], hidden_sizes, 1, groups(spec, share_parameters))
        self.share_parameters = share_parameters
        self.n_agents = A
        self.agent_ids = tf.eye(A)[:, None, :]

    def __call__(self, joint: tf.Tensor) -> tf.Tensor:
        if self.share_parameters:
            joint = _with_ids(joint, self.agent_ids)
        # per-agent weights [A, in, out] broadcast a shared input [1, B, in] in the matmul itself
        return tf.squeeze(super().__call__(joint), -1)
