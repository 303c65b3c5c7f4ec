"""Policies and critics in MindSpore. Inputs and outputs inside a backend are agent-major:
``[A, B, features]``."""

from __future__ import annotations

from typing import Any

import numpy as np
from mindspore import Parameter, Tensor, jit, nn, ops

from xmarl import registry
from xmarl.backends.mindspore import ops as ms_ops
from xmarl.backends.mindspore.representations import GRU, MLP, BiCNet, CommNet, _group_dense, _linear
from xmarl.core import bicnet, commnet
from xmarl.core.coma import COMA, COMAPolicy
from xmarl.core.config import BiCNetConfig, COMAConfig, CommNetConfig, MADDPGConfig
from xmarl.core.interfaces import Policy
from xmarl.core.layout import Layout, mlp_sizes
from xmarl.core.maddpg import MADDPG
from xmarl.core.spaces import AgentSpec
from xmarl.docschema import documented


def _agent_ids(n_agents: int) -> Tensor:
    """One-hot agent ids ``[A, 1, A]``."""
    return Tensor(np.eye(n_agents, dtype=np.float32)[:, None, :])


class _MLPHead(nn.Cell):
    """An :class:`MLP` torso followed by a linear head, allocated from a core layout
    (``torso/dense_k/*``, ``head/*``)."""

    def __init__(self, layout: Layout) -> None:
        super().__init__()
        G, in_dim, hidden, out_dim = mlp_sizes(layout)
        self.torso = MLP(in_dim, hidden, G)
        self.head_kernel = ms_ops.parameter(layout["head/kernel"], name="head_kernel")
        self.head_bias = ms_ops.parameter((G, 1, out_dim), name="head_bias")

    def canonical(self) -> dict[str, Parameter]:
        return {**self.torso.canonical(), "head/kernel": self.head_kernel, "head/bias": self.head_bias}

    def construct(self, x: Tensor) -> Tensor:
        return _linear(self.torso(x), self.head_kernel, self.head_bias)


@registry.register("policy", "maddpg_actor", backend="mindspore")
@documented
class MADDPGActor(_MLPHead, Policy):
    def __init__(self, spec: AgentSpec, config: MADDPGConfig) -> None:
        super().__init__(MADDPG.layout(spec, config, "actor"))
        self.spec = spec
        self.share_parameters = config.share_parameters
        self.agent_ids = _agent_ids(spec.n_agents)  # [A, 1, A]

    def construct(self, obs: Tensor) -> Tensor:
        if self.share_parameters:
            A, B, _ = obs.shape
            obs = ops.cat((obs, ops.broadcast_to(self.agent_ids, (A, B, A))), -1)
        return super().construct(obs)

    @jit
    def _forward(self, obs: Tensor) -> Tensor:
        """The compiled forward pass (a jit method skips ``Cell.__call__``'s per-call checks)."""
        return self.construct(obs)

    def forward_numpy(self, obs: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        """Raw outputs ``[E, A, act_dim]`` for observations ``[E, A, obs_dim]`` (one compiled graph per E)."""
        out = self._forward(Tensor.from_numpy(np.ascontiguousarray(obs.swapaxes(0, 1), np.float32)))
        ms_ops._sigint_to_python()
        return out.asnumpy().swapaxes(0, 1), None


@registry.register("policy", "central_critic", backend="mindspore")
@documented
class CentralCritic(_MLPHead):
    def __init__(self, spec: AgentSpec, config: MADDPGConfig) -> None:
        super().__init__(MADDPG.layout(spec, config, "critic"))
        self.share_parameters = config.share_parameters
        self.n_agents = spec.n_agents
        self.agent_ids = _agent_ids(spec.n_agents)

    def construct(self, joint: Tensor) -> Tensor:
        A, B = self.n_agents, joint.shape[1]
        joint = ops.broadcast_to(joint, (A, B, joint.shape[2]))
        if self.share_parameters:
            joint = ops.cat((joint, ops.broadcast_to(self.agent_ids, (A, B, A))), -1)
        return super().construct(joint).squeeze(-1)


@registry.register("policy", "coma_actor", backend="mindspore")
@documented
class COMAActor(nn.Cell, COMAPolicy):
    def __init__(self, spec: AgentSpec, config: COMAConfig) -> None:
        super().__init__()
        layout = COMA.layout(spec, config, "actor")
        G, in_dim, hidden, _ = mlp_sizes(layout)
        self.spec, self.share_parameters, self.recurrent = spec, config.share_parameters, config.recurrent
        self.torso = MLP(in_dim, hidden, G)
        self.hidden_dim = self.torso.output_dim
        self.gru = GRU(self.hidden_dim, self.hidden_dim, G) if "gru/kernel" in layout else None
        self.head_kernel = ms_ops.parameter(layout["head/kernel"], name="head_kernel")
        self.head_bias = ms_ops.parameter((G, 1, spec.act_dim), name="head_bias")
        self.agent_ids = _agent_ids(spec.n_agents)  # [A, 1, A]

    def canonical(self) -> dict[str, Parameter]:
        gru = self.gru.canonical() if self.gru is not None else {}
        return {**self.torso.canonical(), **gru, "head/kernel": self.head_kernel, "head/bias": self.head_bias}

    def _inputs(self, obs: Tensor) -> Tensor:
        """``[A, N, obs_dim]`` -> torso output ``[A, N, width]``."""
        if self.share_parameters:
            A, N, _ = obs.shape
            obs = ops.cat((obs, ops.broadcast_to(self.agent_ids, (A, N, A))), -1)
        return self.torso(obs)

    def _head(self, x: Tensor) -> Tensor:
        """Logits ``[A, N, n]`` from features ``[A, N, width]``."""
        return _linear(x, self.head_kernel, self.head_bias)

    def construct(self, obs: Tensor) -> Tensor:
        """Feed-forward logits ``[A, N, n]`` for observations ``[A, N, obs_dim]``."""
        return self._head(self._inputs(obs))

    def sequence(self, obs: Tensor) -> Tensor:
        """Recurrent logits ``[A, B, T, n]`` over episodes ``[A, B, T, obs_dim]`` (hidden starts at zero)."""
        A, B, T, od = obs.shape
        x = self._inputs(obs.reshape(A, B * T, od)).reshape(A, B, T, self.hidden_dim)
        hs = self.gru(x, ops.zeros((A, B, self.hidden_dim), x.dtype))
        return self._head(hs.reshape(A, B * T, self.hidden_dim)).reshape(A, B, T, -1)

    @jit
    def _logits(self, obs: Tensor) -> Tensor:
        """The compiled feed-forward step (a jit method skips ``Cell.__call__``'s per-call checks)."""
        return self.construct(obs)

    @jit
    def _recurrent_logits(self, obs: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        """The compiled recurrent step: logits and the next hidden ``[A, E, H]``."""
        h = self.gru.cell(_linear(self._inputs(obs), self.gru.kernel, self.gru.bias), h)
        return self._head(h), h

    def forward_numpy(self, obs: np.ndarray, state: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        x = Tensor.from_numpy(np.ascontiguousarray(obs.swapaxes(0, 1), np.float32))  # [A, E, obs_dim]
        if self.gru is not None:
            h = Tensor.from_numpy(np.ascontiguousarray(self.state_or_zeros(obs, state).swapaxes(0, 1)))
            logits, h = self._recurrent_logits(x, h)
            ms_ops._sigint_to_python()
            return logits.asnumpy().swapaxes(0, 1), h.asnumpy().swapaxes(0, 1)
        logits = self._logits(x)
        ms_ops._sigint_to_python()
        return logits.asnumpy().swapaxes(0, 1), None


@registry.register("policy", "coma_critic", backend="mindspore")
@documented
class COMACritic(_MLPHead):
    def __init__(self, spec: AgentSpec, config: COMAConfig) -> None:
        super().__init__(COMA.layout(spec, config, "critic"))

    def construct(self, x: Tensor) -> Tensor:
        return _linear(self.torso(x), self.head_kernel, self.head_bias)


class _ActStep(nn.Cell):
    """The compiled acting step of a :class:`CommNetPolicy`: the logits (and ``h^K``, the next
    state, when recurrent) and nothing else, so the graph leaves out the value head and copies
    out one tensor, not K + 3 (MindSpore's CPU runtime charges for every kernel and every output,
    see benchmarks/results/dispatch.md).
    A cell of its own: a jit method of the policy that returns part of ``construct``'s outputs
    breaks MindSpore's later compiles of the policy inside the update graph."""

    def __init__(self, net: CommNetPolicy) -> None:
        super().__init__(auto_prefix=False)
        self.net = net

    def construct(self, x: Tensor, agent_mask: Tensor, comm_mask: Tensor, state: Tensor) -> Tensor | tuple:
        logits, _, hiddens = self.net(x, agent_mask, comm_mask, state)
        if self.net.recurrent:
            return logits, hiddens[-1]
        return logits

    @jit
    def run(self, x: Tensor, agent_mask: Tensor, comm_mask: Tensor, state: Tensor) -> Tensor | tuple:
        return self.construct(x, agent_mask, comm_mask, state)


@registry.register("policy", "commnet", backend="mindspore")
@documented
class CommNetPolicy(nn.Cell, commnet.CommNetPolicyBase):
    def __init__(self, spec: AgentSpec, config: CommNetConfig) -> None:
        super().__init__()
        self.spec, self.cfg = spec, config
        layout = commnet.COMMNET.layout(spec, config, commnet.NET)
        G = layout["encoder/kernel"][0]
        self.rep = CommNet(commnet.encoder_in(spec, config), config.hidden_size, config.comm_steps, G,
                           activation=config.activation, embedding=config.encoder == "embedding",
                           skip_connection=config.skip_connection, recurrent=config.recurrent,
                           communicate=config.communicate)
        self.policy_kernel = ms_ops.parameter(layout["policy/kernel"], name="policy.kernel")
        self.policy_bias = ms_ops.parameter((G, 1, spec.act_dim), name="policy.bias")
        self.value_kernel = ms_ops.parameter(layout["value/kernel"], name="value.kernel")
        self.value_bias = ms_ops.parameter((G, 1, 1), name="value.bias")
        static = commnet.static_mask(spec, config)
        self.static_mask = None if static is None else Tensor(static)
        self.range_mode = commnet.comm_mode(config) == "range"
        self.recurrent = config.recurrent
        object.__setattr__(self, "_act_step", _ActStep(self))  # not a sub-cell: it holds this one

    def canonical(self) -> dict[str, Parameter]:
        return {**self.rep.canonical(), "policy/kernel": self.policy_kernel, "policy/bias": self.policy_bias,
                "value/kernel": self.value_kernel, "value/bias": self.value_bias}

    def construct(self, x: Tensor, agent_mask: Tensor, comm_mask: Tensor, state: Tensor) -> tuple:
        """``agent_mask [A, N, 1]``; ``comm_mask [N, A, A]`` with ``comm_range`` and ``state [A, N, H]``
        when recurrent (any tensor otherwise; the static adjacency is held by the policy)."""
        hiddens = self.rep(x, agent_mask, comm_mask if self.range_mode else self.static_mask,
                           state if self.recurrent else None)
        h = hiddens[-1]
        logits = _group_dense(h, self.policy_kernel, self.policy_bias)
        values = _group_dense(h, self.value_kernel, self.value_bias).squeeze(-1)
        return logits, values, hiddens

    @jit
    def _forward(self, x: Tensor, agent_mask: Tensor, comm_mask: Tensor, state: Tensor) -> tuple:
        """The compiled step (a jit method skips ``Cell.__call__``'s per-call checks). It returns
        exactly what ``construct`` returns: a jit method that reshapes the outputs of a cell
        breaks MindSpore's later compiles of that cell inside the update graph."""
        return self.construct(x, agent_mask, comm_mask, state)

    def _inputs(self, obs: np.ndarray, state: np.ndarray | None, agent_mask: np.ndarray | None,
                comm_mask: np.ndarray | None) -> tuple[Tensor, ...]:
        am, cm = self.masks(obs, agent_mask, comm_mask)
        state = self.state_or_zeros(obs, state)
        dummy = np.zeros(1, np.float32)
        return (Tensor.from_numpy(np.ascontiguousarray(obs.swapaxes(0, 1), np.float32)),
                Tensor.from_numpy(np.ascontiguousarray(am.T[:, :, None])),
                Tensor.from_numpy(dummy if cm is None else cm),
                Tensor.from_numpy(dummy if state is None else np.ascontiguousarray(state.swapaxes(0, 1))))

    def forward_numpy(self, obs: np.ndarray, state: np.ndarray | None = None, agent_mask: np.ndarray | None = None,
                      comm_mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Logits ``[E, A, n]`` for observations ``[E, A, obs_dim]`` and the next recurrent state."""
        out = self._act_step.run(*self._inputs(obs, state, agent_mask, comm_mask))
        ms_ops._sigint_to_python()
        if self.recurrent:
            return out[0].asnumpy().swapaxes(0, 1), out[1].asnumpy().swapaxes(0, 1)
        return out.asnumpy().swapaxes(0, 1), None

    def probe_numpy(self, obs: np.ndarray, state: np.ndarray | None = None, agent_mask: np.ndarray | None = None,
                    comm_mask: np.ndarray | None = None) -> dict[str, np.ndarray | None]:
        """Every intermediate of one step, env-major: ``hiddens [K+1, E, A, H]``, ``logits``,
        ``values [E, A]`` and ``state`` (``h^K`` when recurrent)."""
        logits, values, hiddens = self._forward(*self._inputs(obs, state, agent_mask, comm_mask))
        ms_ops._sigint_to_python()
        hiddens = np.stack([h.asnumpy() for h in hiddens]).swapaxes(1, 2)
        return {"hiddens": hiddens, "logits": logits.asnumpy().swapaxes(0, 1), "values": values.asnumpy().T,
                "state": hiddens[-1] if self.recurrent else None}


class _BiCNetNet(nn.Cell):
    """A :class:`BiCNet` representation and a linear head on ``[f_i, g_i]``, allocated from the
    core's layout of network ``net``."""

    def __init__(self, spec: AgentSpec, config: BiCNetConfig, net: str) -> None:
        super().__init__()
        layout = bicnet.BICNET.layout(spec, config, net)
        G, in_dim, _ = layout["torso/dense_0/kernel"]
        self.rep = BiCNet(in_dim, config.hidden_size, G)
        self.head_kernel = ms_ops.parameter(layout["head/kernel"], name="head_kernel")
        self.head_bias = ms_ops.parameter((G, 1, layout["head/bias"][1]), name="head_bias")

    def canonical(self) -> dict[str, Parameter]:
        return {**self.rep.canonical(), "head/kernel": self.head_kernel, "head/bias": self.head_bias}

    def features_and_outputs(self, x: Tensor, alive: Tensor) -> tuple[Tensor, Tensor]:
        """``([f_i, g_i] [A, B, 2H], head outputs [A, B, out])``."""
        h = self.rep(x, alive)
        return h, _linear(h, self.head_kernel, self.head_bias)


@registry.register("policy", "bicnet_actor", backend="mindspore")
@documented
class BiCNetActor(_BiCNetNet, bicnet.BiCNetPolicyBase):
    def __init__(self, spec: AgentSpec, config: BiCNetConfig) -> None:
        super().__init__(spec, config, "actor")
        self.spec = spec

    def construct(self, obs: Tensor, alive: Tensor) -> Tensor:
        return self.features_and_outputs(obs, alive)[1]

    @jit
    def _forward(self, obs: Tensor, alive: Tensor) -> Tensor:
        """The compiled forward pass (a jit method skips ``Cell.__call__``'s per-call checks)."""
        return self.construct(obs, alive)

    def forward_numpy(self, obs: np.ndarray, state: Any = None,
                      agent_mask: np.ndarray | None = None) -> tuple[np.ndarray, Any]:
        """Raw outputs ``[E, A, act_dim]`` for observations ``[E, A, obs_dim]`` (one compiled graph per E)."""
        alive = bicnet.alive_or_ones(obs, agent_mask).T[:, :, None]
        out = self._forward(Tensor.from_numpy(np.ascontiguousarray(obs.swapaxes(0, 1), np.float32)),
                            Tensor.from_numpy(np.ascontiguousarray(alive)))
        ms_ops._sigint_to_python()
        return out.asnumpy().swapaxes(0, 1), None


@registry.register("policy", "bicnet_critic", backend="mindspore")
@documented
class BiCNetCritic(_BiCNetNet):
    def __init__(self, spec: AgentSpec, config: BiCNetConfig) -> None:
        super().__init__(spec, config, "critic")

    def construct(self, obs: Tensor, act: Tensor, alive: Tensor) -> Tensor:
        return self.features_and_outputs(ops.cat((obs, act), -1), alive)[1].squeeze(-1)
