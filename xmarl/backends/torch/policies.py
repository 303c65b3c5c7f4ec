"""Policies and critics in PyTorch. Inputs and outputs inside a backend are agent-major:
``[A, B, features]``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from xmarl import registry
from xmarl.backends.torch.representations import MLP
from xmarl.core.interfaces import Policy
from xmarl.core.maddpg import groups, input_dims
from xmarl.core.spaces import AgentSpec
from xmarl.docschema import documented


class _MLPHead(nn.Module):
    """An :class:`MLP` torso followed by a linear head, with canonical parameter names."""

    def __init__(self, in_dim: int, hidden_sizes: Sequence[int], out_dim: int, groups: int) -> None:
        super().__init__()
        self.torso = MLP(in_dim, hidden_sizes, groups)
        self.head_kernel = nn.Parameter(torch.zeros(groups, self.torso.output_dim, out_dim))
        self.head_bias = nn.Parameter(torch.zeros(groups, 1, out_dim))

    def canonical(self) -> dict[str, nn.Parameter]:
        return {**self.torso.canonical(), "head/kernel": self.head_kernel, "head/bias": self.head_bias}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.matmul(self.torso(x), self.head_kernel) + self.head_bias


@registry.register("policy", "maddpg_actor", backend="torch")
@documented
class MADDPGActor(_MLPHead, Policy):
    def __init__(self, spec: AgentSpec, hidden_sizes: Sequence[int], share_parameters: bool) -> None:
        A = spec.n_agents
        super().__init__(input_dims(spec, share_parameters)[0], hidden_sizes, spec.act_dim,
                         groups(spec, share_parameters))
        self.spec = spec
        self.share_parameters = share_parameters
        self.register_buffer("agent_ids", torch.eye(A).unsqueeze(1), persistent=False)  # [A, 1, A]

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if self.share_parameters:
            obs = torch.cat([obs, self.agent_ids.expand(-1, obs.shape[1], -1)], dim=-1)
        return super().forward(obs)

    @torch.no_grad()
    def forward_numpy(self, obs: np.ndarray) -> np.ndarray:
        out = self(torch.from_numpy(obs).transpose(0, 1))
        return out.transpose(0, 1).numpy()


@registry.register("policy", "central_critic", backend="torch")
@documented
class CentralCritic(_MLPHead):
    def __init__(self, spec: AgentSpec, hidden_sizes: Sequence[int], share_parameters: bool) -> None:
        A = spec.n_agents
        super().__init__(input_dims(spec, share_parameters)[1], hidden_sizes, 1, groups(spec, share_parameters))
        self.share_parameters = share_parameters
        self.n_agents = A
        self.register_buffer("agent_ids", torch.eye(A).unsqueeze(1), persistent=False)

    def forward(self, joint: torch.Tensor) -> torch.Tensor:
        joint = joint.expand(self.n_agents, -1, -1)
        if self.share_parameters:
            joint = torch.cat([joint, self.agent_ids.expand(-1, joint.shape[1], -1)], dim=-1)
        return super().forward(joint).squeeze(-1)
