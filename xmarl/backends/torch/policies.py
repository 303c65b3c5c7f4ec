"""Policies and critics in PyTorch. Inputs and outputs inside a backend are agent-major:
``[A, B, features]``."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from xmarl import registry
from xmarl.backends.torch import ops
from xmarl.backends.torch.representations import GRU, MLP, BiCNet, CommNet
from xmarl.core import bicnet, commnet
from xmarl.core.coma import COMA, COMAPolicy
from xmarl.core.config import BiCNetConfig, COMAConfig, CommNetConfig, MADDPGConfig
from xmarl.core.interfaces import Policy
from xmarl.core.layout import Layout, mlp_sizes
from xmarl.core.maddpg import MADDPG
from xmarl.core.spaces import AgentSpec
from xmarl.docschema import documented


class _MLPHead(nn.Module):
    """An :class:`MLP` torso followed by a linear head, allocated from a core layout
    (``torso/dense_k/*``, ``head/*``)."""

    def __init__(self, layout: Layout) -> None:
        super().__init__()
        G, in_dim, hidden, out_dim = mlp_sizes(layout)
        self.torso = MLP(in_dim, hidden, G)
        self.head_kernel = ops.parameter(layout["head/kernel"])
        self.head_bias = ops.parameter((G, 1, out_dim))

    def canonical(self) -> dict[str, nn.Parameter]:
        return {**self.torso.canonical(), "head/kernel": self.head_kernel, "head/bias": self.head_bias}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.matmul(self.torso(x), self.head_kernel) + self.head_bias


@registry.register("policy", "maddpg_actor", backend="torch")
@documented
class MADDPGActor(_MLPHead, Policy):
    def __init__(self, spec: AgentSpec, config: MADDPGConfig) -> None:
        super().__init__(MADDPG.layout(spec, config, "actor"))
        self.spec = spec
        self.share_parameters = config.share_parameters
        ids = torch.eye(spec.n_agents, device=ops.device()).unsqueeze(1)  # [A, 1, A]
        self.register_buffer("agent_ids", ids, persistent=False)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if self.share_parameters:
            obs = torch.cat([obs, self.agent_ids.expand(-1, obs.shape[1], -1)], dim=-1)
        return super().forward(obs)

    @torch.no_grad()
    def forward_numpy(self, obs: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        out = self(ops.tensor(obs).transpose(0, 1))
        return ops.numpy(out.transpose(0, 1)), None


@registry.register("policy", "central_critic", backend="torch")
@documented
class CentralCritic(_MLPHead):
    def __init__(self, spec: AgentSpec, config: MADDPGConfig) -> None:
        super().__init__(MADDPG.layout(spec, config, "critic"))
        self.share_parameters = config.share_parameters
        self.n_agents = spec.n_agents
        ids = torch.eye(spec.n_agents, device=ops.device()).unsqueeze(1)
        self.register_buffer("agent_ids", ids, persistent=False)

    def forward(self, joint: torch.Tensor) -> torch.Tensor:
        joint = joint.expand(self.n_agents, -1, -1)
        if self.share_parameters:
            joint = torch.cat([joint, self.agent_ids.expand(-1, joint.shape[1], -1)], dim=-1)
        return super().forward(joint).squeeze(-1)


@registry.register("policy", "coma_actor", backend="torch")
@documented
class COMAActor(nn.Module, COMAPolicy):
    def __init__(self, spec: AgentSpec, config: COMAConfig) -> None:
        super().__init__()
        layout = COMA.layout(spec, config, "actor")
        G, in_dim, hidden, _ = mlp_sizes(layout)
        self.spec, self.share_parameters, self.recurrent = spec, config.share_parameters, config.recurrent
        self.torso = MLP(in_dim, hidden, G)
        self.hidden_dim = self.torso.output_dim
        self.gru = GRU(self.hidden_dim, self.hidden_dim, G) if "gru/kernel" in layout else None
        self.head_kernel = ops.parameter(layout["head/kernel"])
        self.head_bias = ops.parameter((G, 1, spec.act_dim))
        ids = torch.eye(spec.n_agents, device=ops.device()).unsqueeze(1)  # [A, 1, A]
        self.register_buffer("agent_ids", ids, persistent=False)

    def canonical(self) -> dict[str, nn.Parameter]:
        gru = self.gru.canonical() if self.gru is not None else {}
        return {**self.torso.canonical(), **gru, "head/kernel": self.head_kernel, "head/bias": self.head_bias}

    def _inputs(self, obs: torch.Tensor) -> torch.Tensor:
        """``[A, N, obs_dim]`` -> torso output ``[A, N, width]``."""
        if self.share_parameters:
            obs = torch.cat([obs, self.agent_ids.expand(-1, obs.shape[1], -1)], -1)
        return self.torso(obs)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Feed-forward logits ``[A, N, n]`` for observations ``[A, N, obs_dim]``."""
        return torch.matmul(self._inputs(obs), self.head_kernel) + self.head_bias

    def sequence(self, obs: torch.Tensor) -> torch.Tensor:
        """Recurrent logits ``[A, B, T, n]`` over episodes ``[A, B, T, obs_dim]`` (hidden starts at zero)."""
        A, B, T, _ = obs.shape
        x = self._inputs(obs.reshape(A, B * T, -1)).reshape(A, B, T, -1)
        hs = self.gru(x, x.new_zeros(A, B, self.hidden_dim))
        return torch.matmul(hs.reshape(A, B * T, -1), self.head_kernel).reshape(A, B, T, -1) + \
            self.head_bias.unsqueeze(1)

    @torch.no_grad()
    def forward_numpy(self, obs: np.ndarray, state: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        x = self._inputs(ops.tensor(obs).transpose(0, 1))  # [A, E, width]
        if self.gru is not None:
            gx = torch.matmul(x, self.gru.kernel) + self.gru.bias
            h = self.gru.cell(gx, ops.tensor(self.state_or_zeros(obs, state)).transpose(0, 1))
            logits = torch.matmul(h, self.head_kernel) + self.head_bias
            return ops.numpy(logits.transpose(0, 1)), ops.numpy(h.transpose(0, 1))
        logits = torch.matmul(x, self.head_kernel) + self.head_bias
        return ops.numpy(logits.transpose(0, 1)), None


@registry.register("policy", "coma_critic", backend="torch")
@documented
class COMACritic(_MLPHead):
    def __init__(self, spec: AgentSpec, config: COMAConfig) -> None:
        super().__init__(COMA.layout(spec, config, "critic"))


@registry.register("policy", "commnet", backend="torch")
@documented
class CommNetPolicy(nn.Module, commnet.CommNetPolicyBase):
    def __init__(self, spec: AgentSpec, config: CommNetConfig) -> None:
        super().__init__()
        self.spec, self.cfg = spec, config
        layout = commnet.COMMNET.layout(spec, config, commnet.NET)
        G, H = layout["encoder/kernel"][0], config.hidden_size
        self.rep = CommNet(commnet.encoder_in(spec, config), H, config.comm_steps, G,
                           activation=config.activation, embedding=config.encoder == "embedding",
                           skip_connection=config.skip_connection, recurrent=config.recurrent,
                           communicate=config.communicate)
        self.policy_kernel = ops.parameter(layout["policy/kernel"])
        self.policy_bias = ops.parameter((G, 1, spec.act_dim))
        self.value_kernel = ops.parameter(layout["value/kernel"])
        self.value_bias = ops.parameter((G, 1, 1))
        static = commnet.static_mask(spec, config)
        self.register_buffer("static_mask", None if static is None else ops.tensor(static), persistent=False)

    def canonical(self) -> dict[str, nn.Parameter]:
        return {**self.rep.canonical(), "policy/kernel": self.policy_kernel, "policy/bias": self.policy_bias,
                "value/kernel": self.value_kernel, "value/bias": self.value_bias}

    def forward(self, x: torch.Tensor, agent_mask: torch.Tensor, comm_mask: torch.Tensor | None = None,
                state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """``agent_mask [A, N, 1]``; ``comm_mask [N, A, A]`` with ``comm_range`` (the static
        adjacency is held by the policy)."""
        hiddens = self.rep(x, agent_mask, self.static_mask if comm_mask is None else comm_mask, state)
        h = hiddens[-1]
        logits = CommNet.dense(h, self.policy_kernel, self.policy_bias)
        values = CommNet.dense(h, self.value_kernel, self.value_bias).squeeze(-1)
        return logits, values, hiddens

    @torch.no_grad()
    def _step(self, obs: np.ndarray, state: np.ndarray | None, agent_mask: np.ndarray | None,
              comm_mask: np.ndarray | None) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        am, cm = self.masks(obs, agent_mask, comm_mask)
        state = self.state_or_zeros(obs, state)
        return self(ops.tensor(obs).transpose(0, 1), ops.tensor(am).T.unsqueeze(-1),
                    None if cm is None else ops.tensor(cm),
                    None if state is None else ops.tensor(state).transpose(0, 1))

    def forward_numpy(self, obs: np.ndarray, state: np.ndarray | None = None, agent_mask: np.ndarray | None = None,
                      comm_mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Logits ``[E, A, n]`` for observations ``[E, A, obs_dim]`` and the next recurrent state."""
        logits, _, hiddens = self._step(obs, state, agent_mask, comm_mask)
        state = ops.numpy(hiddens[-1].transpose(0, 1)) if self.cfg.recurrent else None
        return ops.numpy(logits.transpose(0, 1)), state

    def probe_numpy(self, obs: np.ndarray, state: np.ndarray | None = None, agent_mask: np.ndarray | None = None,
                    comm_mask: np.ndarray | None = None) -> dict[str, np.ndarray | None]:
        """Every intermediate of one step, env-major: ``hiddens [K+1, E, A, H]``, ``logits``,
        ``values [E, A]`` and ``state`` (``h^K`` when recurrent)."""
        logits, values, hiddens = self._step(obs, state, agent_mask, comm_mask)
        return {"hiddens": ops.numpy(torch.stack(hiddens).transpose(1, 2)), "logits": ops.numpy(logits.transpose(0, 1)),
                "values": ops.numpy(values.T),
                "state": ops.numpy(hiddens[-1].transpose(0, 1)) if self.cfg.recurrent else None}


class _BiCNetNet(nn.Module):
    """A :class:`BiCNet` representation and a linear head on ``[f_i, g_i]``, allocated from the
    core's layout of network ``net``."""

    def __init__(self, spec: AgentSpec, config: BiCNetConfig, net: str) -> None:
        super().__init__()
        layout = bicnet.BICNET.layout(spec, config, net)
        G, in_dim, _ = layout["torso/dense_0/kernel"]
        self.rep = BiCNet(in_dim, config.hidden_size, G)
        self.head_kernel = ops.parameter(layout["head/kernel"])
        self.head_bias = ops.parameter((G, 1, layout["head/bias"][1]))

    def canonical(self) -> dict[str, nn.Parameter]:
        return {**self.rep.canonical(), "head/kernel": self.head_kernel, "head/bias": self.head_bias}

    def features_and_outputs(self, x: torch.Tensor, alive: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``([f_i, g_i] [A, B, 2H], head outputs [A, B, out])``."""
        h = self.rep(x, alive)
        return h, torch.matmul(h, self.head_kernel) + self.head_bias


@registry.register("policy", "bicnet_actor", backend="torch")
@documented
class BiCNetActor(_BiCNetNet, bicnet.BiCNetPolicyBase):
    def __init__(self, spec: AgentSpec, config: BiCNetConfig) -> None:
        super().__init__(spec, config, "actor")
        self.spec = spec

    def forward(self, obs: torch.Tensor, alive: torch.Tensor) -> torch.Tensor:
        return self.features_and_outputs(obs, alive)[1]

    @torch.no_grad()
    def forward_numpy(self, obs: np.ndarray, state: Any = None,
                      agent_mask: np.ndarray | None = None) -> tuple[np.ndarray, Any]:
        alive = ops.tensor(bicnet.alive_or_ones(obs, agent_mask)).T.unsqueeze(-1)
        return ops.numpy(self(ops.tensor(obs).transpose(0, 1), alive).transpose(0, 1)), None


@registry.register("policy", "bicnet_critic", backend="torch")
@documented
class BiCNetCritic(_BiCNetNet):
    def __init__(self, spec: AgentSpec, config: BiCNetConfig) -> None:
        super().__init__(spec, config, "critic")

    def forward(self, obs: torch.Tensor, act: torch.Tensor, alive: torch.Tensor) -> torch.Tensor:
        return self.features_and_outputs(torch.cat([obs, act], -1), alive)[1].squeeze(-1)
