"""Policies and critics in TensorFlow. Inputs and outputs inside a backend are agent-major:
``[A, B, features]``."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
import tensorflow as tf

from xmarl import registry
from xmarl.backends.tensorflow import ops
from xmarl.backends.tensorflow.representations import GRU, MLP, BiCNet, CommNet
from xmarl.core import bicnet, commnet
from xmarl.core.coma import COMA, COMAPolicy
from xmarl.core.config import BiCNetConfig, COMAConfig, CommNetConfig, MADDPGConfig
from xmarl.core.interfaces import Policy
from xmarl.core.layout import Layout, mlp_sizes
from xmarl.core.maddpg import MADDPG
from xmarl.core.spaces import AgentSpec
from xmarl.docschema import documented


class _MLPHead(tf.Module):
    """An :class:`MLP` torso followed by a linear head, allocated from a core layout
    (``torso/dense_k/*``, ``head/*``)."""

    def __init__(self, layout: Layout) -> None:
        super().__init__()
        G, in_dim, hidden, _ = mlp_sizes(layout)
        self.torso = MLP(in_dim, hidden, G)
        self.head_kernel = ops.parameter(layout["head/kernel"], name="head_kernel")
        self.head_bias = ops.parameter(layout["head/bias"], name="head_bias")

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
    def __init__(self, spec: AgentSpec, config: MADDPGConfig) -> None:
        super().__init__(MADDPG.layout(spec, config, "actor"))
        self.spec = spec
        self.share_parameters = config.share_parameters
        self.agent_ids = tf.eye(spec.n_agents)[:, None, :]  # [A, 1, A]

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

    def forward_numpy(self, obs: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        return self._forward_fn(tf.convert_to_tensor(np.asarray(obs, np.float32))).numpy(), None


@registry.register("policy", "central_critic", backend="tensorflow")
@documented
class CentralCritic(_MLPHead):
    def __init__(self, spec: AgentSpec, config: MADDPGConfig) -> None:
        super().__init__(MADDPG.layout(spec, config, "critic"))
        self.share_parameters = config.share_parameters
        self.n_agents = spec.n_agents
        self.agent_ids = tf.eye(spec.n_agents)[:, None, :]

    def __call__(self, joint: tf.Tensor) -> tf.Tensor:
        if self.share_parameters:
            joint = _with_ids(joint, self.agent_ids)
        # per-agent weights [A, in, out] broadcast a shared input [1, B, in] in the matmul itself
        return tf.squeeze(super().__call__(joint), -1)


@registry.register("policy", "coma_actor", backend="tensorflow")
@documented
class COMAActor(tf.Module, COMAPolicy):
    def __init__(self, spec: AgentSpec, config: COMAConfig) -> None:
        super().__init__()
        layout = COMA.layout(spec, config, "actor")
        G, in_dim, hidden, _ = mlp_sizes(layout)
        self.spec, self.share_parameters, self.recurrent = spec, config.share_parameters, config.recurrent
        self.torso = MLP(in_dim, hidden, G)
        self.hidden_dim = self.torso.output_dim
        self.gru = GRU(self.hidden_dim, self.hidden_dim, G) if "gru/kernel" in layout else None
        self.head_kernel = ops.parameter(layout["head/kernel"], name="head_kernel")
        self.head_bias = ops.parameter(layout["head/bias"], name="head_bias")
        self.agent_ids = tf.eye(spec.n_agents)[:, None, :]  # [A, 1, A]

    def canonical(self) -> dict[str, tf.Variable]:
        gru = self.gru.canonical() if self.gru is not None else {}
        return {**self.torso.canonical(), **gru, "head/kernel": self.head_kernel, "head/bias": self.head_bias}

    def _inputs(self, obs: tf.Tensor) -> tf.Tensor:
        """``[A, N, obs_dim]`` -> torso output ``[A, N, width]``."""
        if self.share_parameters:
            obs = _with_ids(obs, self.agent_ids)
        return self.torso(obs)

    def _head(self, x: tf.Tensor) -> tf.Tensor:
        return tf.matmul(x, self.head_kernel) + self.head_bias[:, None, :]

    def __call__(self, obs: tf.Tensor) -> tf.Tensor:
        """Feed-forward logits ``[A, N, n]`` for observations ``[A, N, obs_dim]``."""
        return self._head(self._inputs(obs))

    def sequence(self, obs: tf.Tensor) -> tf.Tensor:
        """Recurrent logits ``[A, B, T, n]`` over episodes ``[A, B, T, obs_dim]`` (hidden starts at zero)."""
        A, H, shape = obs.shape[0], self.hidden_dim, tf.shape(obs)
        x = self._inputs(tf.reshape(obs, [A, -1, self.spec.obs_dim]))
        x = tf.reshape(x, tf.stack([A, shape[1], shape[2], self.torso.output_dim]))
        hs = self.gru(x, tf.zeros(tf.stack([A, shape[1], H])))
        logits = self._head(tf.reshape(hs, [A, -1, H]))
        return tf.reshape(logits, tf.stack([A, shape[1], shape[2], self.spec.act_dim]))

    def _env_major(self, obs: tf.Tensor) -> tf.Tensor:
        """``[E, A, obs_dim]`` -> logits ``[E, A, n]``."""
        return tf.transpose(self(tf.transpose(obs, [1, 0, 2])), [1, 0, 2])

    def _env_major_step(self, obs: tf.Tensor, h: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """One recurrent step: ``[E, A, obs_dim]``, hidden ``[E, A, H]`` -> logits ``[E, A, n]``, hidden."""
        x = self._inputs(tf.transpose(obs, [1, 0, 2]))  # [A, E, width]
        gx = tf.matmul(x, self.gru.kernel) + self.gru.bias[:, None, :]
        h = self.gru.cell(gx, tf.transpose(h, [1, 0, 2]))
        return tf.transpose(self._head(h), [1, 0, 2]), tf.transpose(h, [1, 0, 2])

    @cached_property
    def _forward_fn(self) -> tf.types.experimental.ConcreteFunction:
        """The env-major forward pass (one step of a recurrent actor) as a graph, traced once
        on first use for any number of envs."""
        obs = tf.TensorSpec([None, self.spec.n_agents, self.spec.obs_dim], tf.float32)
        if self.gru is None:
            return tf.function(self._env_major).get_concrete_function(obs)
        h = tf.TensorSpec([None, self.spec.n_agents, self.hidden_dim], tf.float32)
        return tf.function(self._env_major_step).get_concrete_function(obs, h)

    def forward_numpy(self, obs: np.ndarray, state: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        x = tf.convert_to_tensor(np.asarray(obs, np.float32))
        if self.gru is None:
            return self._forward_fn(x).numpy(), None
        logits, h = self._forward_fn(x, tf.convert_to_tensor(self.state_or_zeros(obs, state)))
        return logits.numpy(), h.numpy()


@registry.register("policy", "coma_critic", backend="tensorflow")
@documented
class COMACritic(_MLPHead):
    def __init__(self, spec: AgentSpec, config: COMAConfig) -> None:
        super().__init__(COMA.layout(spec, config, "critic"))


@registry.register("policy", "commnet", backend="tensorflow")
@documented
class CommNetPolicy(tf.Module, commnet.CommNetPolicyBase):
    def __init__(self, spec: AgentSpec, config: CommNetConfig) -> None:
        super().__init__()
        self.spec, self.cfg = spec, config
        layout = commnet.COMMNET.layout(spec, config, commnet.NET)
        self.rep = CommNet(commnet.encoder_in(spec, config), config.hidden_size, config.comm_steps,
                           layout["encoder/kernel"][0], activation=config.activation,
                           embedding=config.encoder == "embedding", skip_connection=config.skip_connection,
                           recurrent=config.recurrent, communicate=config.communicate)
        self.policy_kernel = ops.parameter(layout["policy/kernel"], name="policy_kernel")
        self.policy_bias = ops.parameter(layout["policy/bias"], name="policy_bias")
        self.value_kernel = ops.parameter(layout["value/kernel"], name="value_kernel")
        self.value_bias = ops.parameter(layout["value/bias"], name="value_bias")
        static = commnet.static_mask(spec, config)
        self.static_mask = None if static is None else tf.constant(static)

    def canonical(self) -> dict[str, tf.Variable]:
        return {**self.rep.canonical(), "policy/kernel": self.policy_kernel, "policy/bias": self.policy_bias,
                "value/kernel": self.value_kernel, "value/bias": self.value_bias}

    def __call__(self, x: tf.Tensor, agent_mask: tf.Tensor, comm_mask: tf.Tensor | None = None,
                 state: tf.Tensor | None = None) -> tuple[tf.Tensor, tf.Tensor, list[tf.Tensor]]:
        """``agent_mask [A, N, 1]``; ``comm_mask [N, A, A]`` with ``comm_range`` (the static
        adjacency is held by the policy)."""
        hiddens = self.rep(x, agent_mask, self.static_mask if comm_mask is None else comm_mask, state)
        h = hiddens[-1]
        logits = CommNet.dense(h, self.policy_kernel, self.policy_bias)
        values = tf.squeeze(CommNet.dense(h, self.value_kernel, self.value_bias), -1)
        return logits, values, hiddens

    def _env_major(self, inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """One step, env-major: ``obs [E, A, od]``, ``agent_mask [E, A]`` (+ ``comm_mask``, ``state``)."""
        state = tf.transpose(inputs["state"], [1, 0, 2]) if "state" in inputs else None
        logits, values, hiddens = self(tf.transpose(inputs["obs"], [1, 0, 2]),
                                       tf.transpose(inputs["agent_mask"])[:, :, None], inputs.get("comm_mask"), state)
        return {"logits": tf.transpose(logits, [1, 0, 2]), "values": tf.transpose(values),
                "hiddens": tf.transpose(tf.stack(hiddens), [0, 2, 1, 3])}

    @cached_property
    def _signature(self) -> dict[str, tf.TensorSpec]:
        A, od, H = self.spec.n_agents, self.spec.obs_dim, self.cfg.hidden_size
        sig = {"obs": tf.TensorSpec([None, A, od], tf.float32), "agent_mask": tf.TensorSpec([None, A], tf.float32)}
        if commnet.comm_mode(self.cfg) == "range":
            sig["comm_mask"] = tf.TensorSpec([None, A, A], tf.float32)
        if self.cfg.recurrent:
            sig["state"] = tf.TensorSpec([None, A, H], tf.float32)
        return sig

    @cached_property
    def _forward_fn(self) -> tf.types.experimental.ConcreteFunction:
        """Logits and the last hidden state as a graph, traced once on first use for any number of envs."""
        def fn(inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
            out = self._env_major(inputs)
            return {"logits": out["logits"], "state": out["hiddens"][-1]}

        return tf.function(fn).get_concrete_function(self._signature)

    @cached_property
    def _probe_fn(self) -> tf.types.experimental.ConcreteFunction:
        return tf.function(self._env_major).get_concrete_function(self._signature)

    def _inputs(self, obs: np.ndarray, state: np.ndarray | None, agent_mask: np.ndarray | None,
                comm_mask: np.ndarray | None) -> dict[str, tf.Tensor]:
        am, cm = self.masks(obs, agent_mask, comm_mask)
        inputs = {"obs": obs, "agent_mask": am, "comm_mask": cm, "state": self.state_or_zeros(obs, state)}
        return {k: tf.convert_to_tensor(np.asarray(v, np.float32)) for k, v in inputs.items() if k in self._signature}

    def forward_numpy(self, obs: np.ndarray, state: np.ndarray | None = None, agent_mask: np.ndarray | None = None,
                      comm_mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Logits ``[E, A, n]`` for observations ``[E, A, obs_dim]`` and the next recurrent state."""
        out = self._forward_fn(self._inputs(obs, state, agent_mask, comm_mask))
        return out["logits"].numpy(), (out["state"].numpy() if self.cfg.recurrent else None)

    def probe_numpy(self, obs: np.ndarray, state: np.ndarray | None = None, agent_mask: np.ndarray | None = None,
                    comm_mask: np.ndarray | None = None) -> dict[str, np.ndarray | None]:
        """Every intermediate of one step, env-major: ``hiddens [K+1, E, A, H]``, ``logits``,
        ``values [E, A]`` and ``state`` (``h^K`` when recurrent)."""
        out = {k: v.numpy() for k, v in self._probe_fn(self._inputs(obs, state, agent_mask, comm_mask)).items()}
        return {**out, "state": out["hiddens"][-1] if self.cfg.recurrent else None}


class _BiCNetNet(tf.Module):
    """A :class:`BiCNet` representation and a linear head on ``[f_i, g_i]``, allocated from the
    core's layout of network ``net``."""

    def __init__(self, spec: AgentSpec, config: BiCNetConfig, net: str) -> None:
        super().__init__()
        layout = bicnet.BICNET.layout(spec, config, net)
        G, in_dim, _ = layout["torso/dense_0/kernel"]
        self.rep = BiCNet(in_dim, config.hidden_size, G)
        self.head_kernel = ops.parameter(layout["head/kernel"], name="head_kernel")
        self.head_bias = ops.parameter(layout["head/bias"], name="head_bias")

    def canonical(self) -> dict[str, tf.Variable]:
        return {**self.rep.canonical(), "head/kernel": self.head_kernel, "head/bias": self.head_bias}

    def features_and_outputs(self, x: tf.Tensor, alive: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """``([f_i, g_i] [A, B, 2H], head outputs [A, B, out])``."""
        h = self.rep(x, alive)
        return h, tf.matmul(h, self.head_kernel) + self.head_bias[:, None, :]


@registry.register("policy", "bicnet_actor", backend="tensorflow")
@documented
class BiCNetActor(_BiCNetNet, bicnet.BiCNetPolicyBase):
    def __init__(self, spec: AgentSpec, config: BiCNetConfig) -> None:
        super().__init__(spec, config, "actor")
        self.spec = spec

    def __call__(self, obs: tf.Tensor, alive: tf.Tensor) -> tf.Tensor:
        return self.features_and_outputs(obs, alive)[1]

    @cached_property
    def _forward_fn(self) -> tf.types.experimental.ConcreteFunction:
        """The env-major forward pass as a graph, traced once on first use for any number of envs."""
        A, od = self.spec.n_agents, self.spec.obs_dim

        def fn(obs: tf.Tensor, alive: tf.Tensor) -> tf.Tensor:
            return tf.transpose(self(tf.transpose(obs, [1, 0, 2]), tf.transpose(alive)[:, :, None]), [1, 0, 2])

        return tf.function(fn).get_concrete_function(tf.TensorSpec([None, A, od], tf.float32),
                                                     tf.TensorSpec([None, A], tf.float32))

    def forward_numpy(self, obs: np.ndarray, state: Any = None,
                      agent_mask: np.ndarray | None = None) -> tuple[np.ndarray, Any]:
        alive = tf.convert_to_tensor(bicnet.alive_or_ones(obs, agent_mask))
        return self._forward_fn(tf.convert_to_tensor(np.asarray(obs, np.float32)), alive).numpy(), None


@registry.register("policy", "bicnet_critic", backend="tensorflow")
@documented
class BiCNetCritic(_BiCNetNet):
    def __init__(self, spec: AgentSpec, config: BiCNetConfig) -> None:
        super().__init__(spec, config, "critic")

    def __call__(self, obs: tf.Tensor, act: tf.Tensor, alive: tf.Tensor) -> tf.Tensor:
        return tf.squeeze(self.features_and_outputs(tf.concat([obs, act], -1), alive)[1], -1)
