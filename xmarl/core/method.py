"""The method contract: everything the trainer and the learners know about a method, the same
calls with the same signatures for every method, so that neither branches on a method's name.

A method is a :class:`MethodCore` (its backend-neutral part: layouts, initial weights, batch
preparation and schema, exploration schedule, after-update hook) held by a :class:`MethodSpec`
(what the registry and the config loader need: name, paper, config section, training loop,
accepted action kinds). Backends implement only the framework math, in learners built on
:class:`xmarl.core.learner.LearnerBase`. Verification code (numpy references, parity cases) is
not part of the core: :mod:`xmarl.compare.reference` registers it beside.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel

from xmarl.core.interfaces import Batch, Weights
from xmarl.core.layout import Layout, relative
from xmarl.core.spaces import AgentSpec

if TYPE_CHECKING:
    from xmarl.core.learner import LearnerBase

#: a batch entry's shape: ints, names of sizes (see :meth:`MethodCore.sizes`), or None for the
#: axes that vary between batches (episodes, steps, transitions)
Dims = tuple[int | str | None, ...]


class MethodCore:
    """One method's backend-neutral part. Subclass it per method and register one instance in
    a :class:`MethodSpec`; override what the method needs (the defaults suit a method without
    that step)."""

    #: canonical network names (the first part of every weight name), in the order of the weights
    networks: tuple[str, ...] = ()
    #: the network that acts (``learner.policy``)
    policy_network: str = ""
    #: the batch entries a learner's update takes, in the order compiled steps take them
    batch: dict[str, Dims] = {}
    #: batch entries that only some configs have (see :meth:`batch_keys`)
    optional_batch: tuple[str, ...] = ()
    #: what ``update`` returns, in order
    metrics: tuple[str, ...] = ()
    #: what ``diagnostics`` returns (intermediate quantities for tests and parity), if anything
    diagnostics: tuple[str, ...] = ()

    # -- networks and weights ----------------------------------------------------------------
    def check(self, spec: AgentSpec, cfg: Any) -> None:
        """One-line errors (:class:`~xmarl.errors.ConfigError`) for configs that do not fit the task."""

    def param_shapes(self, spec: AgentSpec, cfg: Any) -> Layout:
        """Canonical names and shapes of every weight, targets included."""
        raise NotImplementedError

    def layout(self, spec: AgentSpec, cfg: Any, net: str) -> Layout:
        """One network's weights, named relative to it; backends allocate from this."""
        return relative(self.param_shapes(spec, cfg), net)

    def init_weights(self, spec: AgentSpec, cfg: Any, seed: int) -> Weights:
        """Initial weights in numpy from the seed (targets start as copies)."""
        raise NotImplementedError

    def learning_rates(self, cfg: Any) -> dict[str, float]:
        """The networks an optimiser trains, each with its learning rate (one Adam each)."""
        raise NotImplementedError

    # -- batches -------------------------------------------------------------------------------
    def sizes(self, spec: AgentSpec, cfg: Any) -> dict[str, int]:
        """Named sizes the batch schema uses: ``A`` agents, ``obs`` and ``act`` per-agent sizes."""
        return {"A": spec.n_agents, "obs": spec.obs_dim, "act": spec.act_dim}

    def batch_keys(self, cfg: Any) -> tuple[str, ...]:
        """The batch entries of this config, in schema order (optional ones only when used)."""
        return tuple(k for k in self.batch if k not in self.optional_batch)

    def batch_shapes(self, spec: AgentSpec, cfg: Any) -> dict[str, tuple[int | None, ...]]:
        """The shape of each batch entry of this config (None: varies between batches)."""
        sizes = self.sizes(spec, cfg)
        return {k: tuple(sizes[d] if isinstance(d, str) else d for d in self.batch[k]) for k in self.batch_keys(cfg)}

    def prepare_batch(self, spec: AgentSpec, cfg: Any, data: dict[str, np.ndarray], rng: np.random.Generator,
                      step: int) -> Batch:
        """A buffer's sample (replay transitions or padded episodes) to the learner's batch,
        in numpy (everything random drawn here, so every backend sees the same numbers)."""
        raise NotImplementedError

    # -- the training loop's hooks ----------------------------------------------------------------
    def exploration(self, cfg: Any, step: int) -> float:
        """The exploration amount after ``step`` env steps (``noise_scale`` of ``Policy.act``)."""
        return 0.0

    def stored_actions(self, spec: AgentSpec, actions: np.ndarray) -> np.ndarray:
        """Env actions as the replay buffer stores them (off-policy methods)."""
        return actions

    def update_epochs(self, cfg: Any) -> int:
        """Updates on each on-policy batch."""
        return 1

    def lr_scale(self, cfg: Any, step: int) -> float | None:
        """The learning rates' factor after ``step`` env steps: linear from 1 to
        ``cfg.lr_final_fraction`` over ``cfg.lr_decay_steps`` steps, then constant; None (leave the
        rates alone) for a section without ``lr_decay_steps`` or with it None."""
        steps = getattr(cfg, "lr_decay_steps", None)
        if steps is None:
            return None
        frac = min(1.0, step / steps)
        return 1.0 + frac * (cfg.lr_final_fraction - 1.0)

    def before_batch(self, learner: LearnerBase, cfg: Any, step: int) -> None:
        """Called before the updates on each on-policy batch with the env step: sets the learning
        rates of the schedule (:meth:`lr_scale`), when the config has one."""
        scale = self.lr_scale(cfg, step)
        if scale is not None:
            learner.set_lr_scale(scale)

    def after_update(self, learner: LearnerBase, cfg: Any, updates: int) -> None:
        """Called after every update with the number of updates so far (e.g. target copies)."""


@dataclass(frozen=True)
class MethodSpec:
    """A registered method: what the registry, the config loader and the trainer need."""

    name: str
    config_model: type[BaseModel]
    trainer: Literal["off_policy", "on_policy"]
    action_kinds: tuple[str, ...]  # kinds of xmarl.core.spaces.ACTION_KINDS it accepts; others are refused
    paper: str
    core: MethodCore
    defaults: dict[str, Any] = field(default_factory=dict)  # for plugin methods; built-ins use defaults.yaml
