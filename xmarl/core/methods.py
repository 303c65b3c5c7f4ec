"""The built-in methods, registered under kind ``"method"`` as :class:`~xmarl.core.method.MethodSpec`:
config section, training loop, accepted action kinds and the method core. Learners themselves
are registered per backend."""

from __future__ import annotations

from xmarl import registry
from xmarl.core.bicnet import BICNET
from xmarl.core.coma import COMA
from xmarl.core.commnet import COMMNET
from xmarl.core.config import BiCNetConfig, COMAConfig, CommNetConfig, MADDPGConfig
from xmarl.core.maddpg import MADDPG
from xmarl.core.method import MethodSpec


def method_specs() -> dict[str, MethodSpec]:
    """Every registered method, by name."""
    return {n: registry.get("method", n) for n in registry.names("method")}


registry.add("method", "maddpg", MethodSpec(
    name="maddpg", config_model=MADDPGConfig, trainer="off_policy", action_kinds=("discrete", "continuous", "hybrid"),
    paper="Lowe et al., Multi-Agent Actor-Critic for Mixed Cooperative-Competitive Environments, NeurIPS 2017",
    core=MADDPG))

registry.add("method", "coma", MethodSpec(
    name="coma", config_model=COMAConfig, trainer="on_policy", action_kinds=("discrete",),
    paper="Foerster et al., Counterfactual Multi-Agent Policy Gradients, AAAI 2018", core=COMA))

registry.add("method", "commnet", MethodSpec(
    name="commnet", config_model=CommNetConfig, trainer="on_policy", action_kinds=("discrete",),
    paper="Sukhbaatar et al., Learning Multiagent Communication with Backpropagation, NeurIPS 2016", core=COMMNET))

registry.add("method", "bicnet", MethodSpec(
    name="bicnet", config_model=BiCNetConfig, trainer="off_policy", action_kinds=("discrete", "continuous", "hybrid"),
    paper="Peng et al., Multiagent Bidirectionally-Coordinated Nets: Emergence of Human-level Coordination in "
          "Learning to Play StarCraft Combat Games, arXiv:1703.10069, 2017",
    core=BICNET))
