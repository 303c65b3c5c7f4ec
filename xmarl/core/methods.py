"""Backend-neutral description of each method: its config section, training loop and the
action spaces it accepts. Learners themselves are registered per backend."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from xmarl import registry
from xmarl.config.schema import COMAConfig, CommNetConfig, MADDPGConfig


@dataclass(frozen=True)
class MethodSpec:
    """What the core needs to know about a method."""

    name: str
    config_model: type[BaseModel]
    trainer: str  # "off_policy" or "on_policy"
    action_kinds: tuple[str, ...]  # kinds of xmarl.core.spaces.ACTION_KINDS it accepts; others are refused
    paper: str
    core: str  # module with the method's neutral parts: init_weights, prepare_batch, stored_actions
    defaults: dict[str, Any] = field(default_factory=dict)  # for plugin methods; built-ins use defaults.yaml


def method_specs() -> dict[str, MethodSpec]:
    """Every registered method, by name."""
    return {n: registry.get("method", n) for n in registry.names("method")}


registry.add(
    "method",
    "maddpg",
    MethodSpec(
        name="maddpg",
        config_model=MADDPGConfig,
        trainer="off_policy",
        action_kinds=("discrete", "continuous", "hybrid"),
        core="xmarl.core.maddpg",
        paper="Lowe et al., Multi-Agent Actor-Critic for Mixed Cooperative-Competitive Environments, NeurIPS 2017",
    ),
)

registry.add(
    "method",
    "coma",
    MethodSpec(
        name="coma",
        config_model=COMAConfig,
        trainer="on_policy",
        action_kinds=("discrete",),
        core="xmarl.core.coma",
        paper="Foerster et al., Counterfactual Multi-Agent Policy Gradients, AAAI 2018",
    ),
)

registry.add(
    "method",
    "commnet",
    MethodSpec(
        name="commnet",
        config_model=CommNetConfig,
        trainer="on_policy",
        action_kinds=("discrete",),
        core="xmarl.core.commnet",
        paper="Sukhbaatar et al., Learning Multiagent Communication with Backpropagation, NeurIPS 2016",
    ),
)
