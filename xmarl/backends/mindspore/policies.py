"""Policies and critics in MindSpore. Inputs and outputs inside a backend are agent-major:
``[A, B, features]``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from mindspore import Parameter, Tensor, jit, nn, ops

from xmarl import registry
from xmarl.backends.mindspore.representations import GRU, MLP, CommNet, _group_dense, _linear, _zeros
from xmarl.core import coma, commnet
from xmarl.core.coma import COMAPolicy
from xmarl.core.interfaces import Policy
from xmarl.core.maddpg import groups, input_dims
from xmarl.core.spaces import AgentSpec
from xmarl.docschema import documented


def _agent_ids(n_agents: int) -> Tensor:
    """One-hot agent ids ``[A, 1, A]``."""
    return Tensor(np.eye(n_agents, dtype=np.float32)[:, None, :])


class _MLPHead(nn.Cell):
    """An :class:`MLP` torso followed by a linear head, with canonical parameter names."""

    def __init__(self, in_dim: int, hidden_sizes: Sequence[int], out_dim: int, groups: int) -> None:
        super().__init__()
        self.torso = MLP(in_dim, hidden_sizes, groups)
        self.head_kernel = Parameter(_zeros(groups, self.torso.output_dim, out_dim), name="head_kernel")
        self.head_bias = Parameter(_zeros(groups, 1, out_dim), name="head_bias")

    def canonical(self) -> dict[str, Parameter]:
        return {**self.torso.canonical(), "head/kernel": self.head_kernel, "head/bias": self.head_bias}

    def construct(self, x: Tensor) -> Tensor:
        return _linear(self.torso(x), self.head_kernel, self.head_bias)


@registry.register("policy", "maddpg_actor", backend="mindspore")
@documented
class MADDPGActor(_MLPHead, Policy):
    def __init__(self, spec: AgentSpec, hidden_sizes: Sequence[int], share_parameters: bool) -> None:
        A = spec.n_agents
        super().__init__(input_dims(spec, share_parameters)[0], hidden_sizes, spec.act_dim,
                         groups(spec, share_parameters))
        self.spec = spec
        self.share_parameters = share_parameters
        self.agent_ids = _agent_ids(A)  # [A, 1, A]

    def construct(self, obs: Tensor) -> Tensor:
        if self.share_parameters:
            A, B, _ = obs.shape
            obs = ops.cat((obs, ops.broadcast_to(self.agent_ids, (A, B, A))), -1)
        return super().construct(obs)

    @jit
    def _forward(self, obs: Tensor) -> Tensor:
        """The compiled forward pass (a jit method skips ``Cell.__call__``'s per-call checks)."""
        return self.construct(obs)

    def forward_numpy(self, obs: np.ndarray) -> np.ndarray:
        """Raw outputs ``[E, A, act_dim]`` for observations ``[E, A, obs_dim]`` (one compiled graph per E)."""
        out = self._forward(Tensor.from_numpy(np.ascontiguousarray(obs.swapaxes(0, 1), np.float32)))
        return out.asnumpy().swapaxes(0, 1)


@registry.register("policy", "central_critic", backend="mindspore")
@documented
class CentralCritic(_MLPHead):
    def __init__(self, spec: AgentSpec, hidden_sizes: Sequence[int], share_parameters: bool) -> None:
        A = spec.n_agents
        super().__init__(input_dims(spec, share_parameters)[1], hidden_sizes, 1, groups(spec, share_parameters))
        self.share_parameters = share_parameters
        self.n_agents = A
        self.agent_ids = _agent_ids(A)

    def construct(self, joint: Tensor) -> Tensor:
        A, B = self.n_agents, joint.shape[1]
        joint = ops.broadcast_to(joint, (A, B, joint.shape[2]))
        if self.share_parameters:
            joint = ops.cat((joint, ops.broadcast_to(self.agent_ids, (A, B, A))), -1)
        return super().construct(joint).squeeze(-1)


@registry.register("policy", "coma_actor", backend="mindspore")
@documented
class COMAActor(nn.Cell, COMAPolicy):
    """Decentralised categorical actor ``pi_a(u | tau_a)``: logits over the agent's actions
    from its observation (plus its one-hot id with shared weights), through an MLP or, when
    ``recurrent``, a dense layer and a :class:`GRU` over the episode."""

    def __init__(self, spec: AgentSpec, hidden_sizes: Sequence[int], share_parameters: bool, recurrent: bool,
                 rnn_hidden_dim: int) -> None:
        super().__init__()
        A, G = spec.n_agents, coma.groups(spec, share_parameters)
        in_dim = coma.input_dims(spec, share_parameters)[0]
        self.spec, self.share_parameters, self.recurrent = spec, share_parameters, recurrent
        self.torso = MLP(in_dim, [rnn_hidden_dim] if recurrent else hidden_sizes, G)
        self.gru = GRU(rnn_hidden_dim, rnn_hidden_dim, G) if recurrent else None
        self.hidden_dim = rnn_hidden_dim
        self.head_kernel = Parameter(_zeros(G, self.torso.output_dim, spec.act_dim), name="head_kernel")
        self.head_bias = Parameter(_zeros(G, 1, spec.act_dim), name="head_bias")
        self.agent_ids = _agent_ids(A)  # [A, 1, A]

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
            return logits.asnumpy().swapaxes(0, 1), h.asnumpy().swapaxes(0, 1)
        return self._logits(x).asnumpy().swapaxes(0, 1), None


@registry.register("policy", "coma_critic", backend="mindspore")
@documented
class COMACritic(_MLPHead):
    """Centralised critic ``Q_a(s, u^-a, .)``: inputs ``[A, N, in]`` (built by
    :func:`xmarl.core.coma.critic_inputs`) to one value per action of agent ``a``, ``[A, N, n]``."""

    def __init__(self, spec: AgentSpec, hidden_sizes: Sequence[int], share_parameters: bool) -> None:
        super().__init__(coma.input_dims(spec, share_parameters)[1], hidden_sizes, spec.act_dim,
                         coma.groups(spec, share_parameters))

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
    def __init__(self, spec: AgentSpec, config: commnet.CommNetConfig) -> None:
        super().__init__()
        self.spec, self.cfg = spec, config
        G, H, n = commnet.groups(spec, config.share_parameters), config.hidden_size, spec.act_dim
        self.rep = CommNet(commnet.encoder_in(spec, config), H, config.comm_steps, G,
                           activation=config.activation, embedding=config.encoder == "embedding",
                           skip_connection=config.skip_connection, recurrent=config.recurrent,
                           communicate=config.communicate)
        self.policy_kernel = Parameter(_zeros(G, H, n), name="policy.kernel")
        self.policy_bias = Parameter(_zeros(G, 1, n), name="policy.bias")
        self.value_kernel = Parameter(_zeros(G, H, 1), name="value.kernel")
        self.value_bias = Parameter(_zeros(G, 1, 1), name="value.bias")
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
        if self.recurrent:
            return out[0].asnumpy().swapaxes(0, 1), out[1].asnumpy().swapaxes(0, 1)
        return out.asnumpy().swapaxes(0, 1), None

    def probe_numpy(self, obs: np.ndarray, state: np.ndarray | None = None, agent_mask: np.ndarray | None = None,
                    comm_mask: np.ndarray | None = None) -> dict[str, np.ndarray | None]:
        """Every intermediate of one step, env-major: ``hiddens [K+1, E, A, H]``, ``logits``,
        ``values [E, A]`` and ``state`` (``h^K`` when recurrent)."""
        logits, values, hiddens = self._forward(*self._inputs(obs, state, agent_mask, comm_mask))
        hiddens = np.stack([h.asnumpy() for h in hiddens]).swapaxes(1, 2)
        return {"hiddens": hiddens, "logits": logits.asnumpy().swapaxes(0, 1), "values": values.asnumpy().T,
                "state": hiddens[-1] if self.recurrent else None}
