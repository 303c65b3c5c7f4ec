"""Policies and critics in MindSpore. Inputs and outputs inside a backend are agent-major:
``[A, B, features]``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from mindspore import Parameter, Tensor, jit, nn, ops

from xmarl import registry
from xmarl.backends.mindspore.representations import MLP, _zeros
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
        return ops.matmul(self.torso(x), self.head_kernel) + self.head_bias


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
