"""Agent groups: the ``groups`` config section maps agent-name patterns to named groups (e.g.
predators ``adversary_*`` and prey ``agent_*`` in simple_tag), each of which learns (with the run's
method or one of its own), acts uniformly at random (``random``), acts greedily with the weights
of a checkpoint (``frozen``: e.g. trained prey kept fixed while new predators learn against them)
or follows the scripted policy the env ships (``heuristic``), in training and in evaluation.
Evaluation reports the return of each group beside the mean over all agents.

Who trains which agents (:func:`learner_slots`):

* **one learner** (learning groups that share the run's method and config): a learner over every
  agent of the env, so that MADDPG's critics see all groups' observations and actions, as in
  Lowe et al.'s self-play; the fixed groups' slots are overridden when acting. A fixed group then
  needs per-agent weights (``share_parameters: false``) so that its agents' actions never train
  the weights the learning agents act with.
* **a learner per group** (some learning group names its own ``method`` or ``config``): each
  learning group trains a learner of that method over its own agents only (:class:`Slots`), with
  its own buffer, schedule and weights; every other group is part of its environment.

Inside a group, parameter sharing is the method's ``share_parameters`` switch.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xmarl import registry
from xmarl.core.interfaces import Policy, Weights, mask_actions
from xmarl.core.spaces import AgentSpec
from xmarl.errors import ConfigError, one_line

#: evaluation reports each agent's return when an env has at most this many agents
PER_AGENT_MAX = 16


@dataclass(frozen=True)
class AgentGroups:
    """The groups of one env's agents: ``slots[name]`` the agent indices of each group (in
    config order), ``random`` and ``heuristic`` ``[A]`` bool for agents that act uniformly at
    random or with the env's scripted policy, ``frozen`` the checkpoint each frozen group acts with."""

    slots: dict[str, np.ndarray]
    random: np.ndarray
    heuristic: np.ndarray
    frozen: dict[str, str] = field(default_factory=dict)

    @classmethod
    def resolve(cls, groups: Mapping[str, Any], agents: Sequence[str]) -> AgentGroups:
        """Match each group's patterns against ``agents``; every agent must fall in exactly one
        group (one-line :class:`ConfigError` otherwise). No groups: one group ``all``, learning."""
        if not groups:
            return cls({"all": np.arange(len(agents))}, np.zeros(len(agents), bool), np.zeros(len(agents), bool))
        owner: dict[str, str] = {}
        slots: dict[str, np.ndarray] = {}
        random = np.zeros(len(agents), bool)
        frozen = {name: str(g.checkpoint) for name, g in groups.items() if g.policy == "frozen"}
        heuristic = np.zeros(len(agents), bool)
        for name, group in groups.items():
            hits = [i for i, a in enumerate(agents) if any(fnmatch.fnmatchcase(a, p) for p in group.agents)]
            if not hits:
                raise ConfigError(f"groups.{name}.agents {list(group.agents)} match none of the env's agents "
                                  f"{list(agents)}; fix the patterns (shell-style, e.g. 'agent_*')")
            for i in hits:
                if agents[i] in owner:
                    raise ConfigError(f"agent '{agents[i]}' is in groups '{owner[agents[i]]}' and '{name}'; "
                                      "make the patterns of the groups disjoint")
                owner[agents[i]] = name
            slots[name] = np.asarray(hits)
            random[hits] = group.policy == "random"
            heuristic[hits] = group.policy == "heuristic"
        left = [a for a in agents if a not in owner]
        if left:
            raise ConfigError(f"agents {left} are in no group; add them to a group's agents (e.g. '*' in the last "
                              "group)")
        return cls(slots, random, heuristic, frozen)

    @property
    def fixed(self) -> bool:
        """Whether some group does not learn (random, frozen or heuristic)."""
        return bool(self.random.any() or self.heuristic.any() or self.frozen)

    @property
    def named(self) -> bool:
        """Whether the config named groups (else one group ``all``)."""
        return list(self.slots) != ["all"]

    def metrics(self, returns: np.ndarray, lengths: np.ndarray, agents: Sequence[str] = ()) -> dict[str, float]:
        """Evaluation metrics of episodes' per-agent returns ``[E, A]`` and lengths ``[E]``: the
        mean over all agents (``eval_return``), per group (``eval_return/<group>``, when the config
        names groups), per agent (``eval_agent/<name>``, for the names given, when there are at
        most :data:`PER_AGENT_MAX` of them) and the mean episode length (``eval_length``)."""
        out = {"eval_return": float(returns.mean(axis=1).mean()), "eval_length": float(np.mean(lengths))}
        if self.named:
            out.update({f"eval_return/{g}": float(returns[:, idx].mean()) for g, idx in self.slots.items()})
        if 0 < len(agents) <= PER_AGENT_MAX:
            out.update({f"eval_agent/{a}": float(returns[:, i].mean()) for i, a in enumerate(agents)})
        return out


def reset_state(state: Any, done: np.ndarray) -> Any:
    """Zero a recurrent policy's state ``[E, ...]`` (or each of a tuple of them) in the envs whose
    episode ended."""
    if isinstance(state, tuple):
        return tuple(reset_state(s, done) for s in state)
    if state is not None and done.any():
        state = np.array(state)
        state[done] = 0.0
    return state


def sample_available(env: Any, rng: np.random.Generator, avail: np.ndarray | None) -> np.ndarray:
    """Uniform random actions for every copy and agent of ``env``, among the available ones
    (``avail`` ``[E, A, n]``) where the env reports them."""
    if avail is None or not env.spec.discrete:
        return env.sample_actions(rng)
    return np.argmax(np.where(avail > 0, rng.random(avail.shape), -1.0), -1).astype(np.int64)


class UniformPolicy(Policy):
    """Uniformly random actions for every copy and agent of ``env`` (among the available ones
    where the env reports them; a Gumbel-max draw): the random-play baseline of the benchmarks."""

    def __init__(self, env: Any, seed: int) -> None:
        self.env, self.spec, self.rng = env, env.spec, np.random.default_rng(seed)

    def act(self, obs: np.ndarray, state: Any = None, explore: bool = False, avail: np.ndarray | None = None,
            **_: Any) -> tuple[np.ndarray, Any]:
        spec = self.spec
        if spec.discrete:
            ok = spec.act_mask if avail is None else avail * spec.act_mask
            ok = np.broadcast_to(ok, obs.shape[:2] + (spec.act_dim,))
            return np.where(ok > 0, self.rng.gumbel(size=ok.shape), -np.inf).argmax(-1), state
        return self.env.sample_actions(self.rng), state


@dataclass(frozen=True)
class Slots:
    """Some agents of an env as a learner of just them sees them: ``idx`` their indices on the
    env's agent axis (None: every agent, nothing is cut), ``spec`` their own
    :class:`~xmarl.core.spaces.AgentSpec` (padded to their largest sizes). Cuts the env's arrays
    to theirs and puts their actions back."""

    idx: np.ndarray | None
    spec: AgentSpec

    @classmethod
    def of(cls, env_spec: AgentSpec, idx: Sequence[int] | np.ndarray | None = None) -> Slots:
        if idx is None or len(idx) == env_spec.n_agents and np.array_equal(idx, np.arange(env_spec.n_agents)):
            return cls(None, env_spec)
        return cls(np.asarray(idx), env_spec.subset(np.asarray(idx)))

    def agents(self, x: np.ndarray | None) -> np.ndarray | None:
        """``[E, A, ...]`` (rewards, masks, discrete actions) to ``[E, A_g, ...]``."""
        return x if x is None or self.idx is None else np.ascontiguousarray(x[:, self.idx])

    def obs(self, x: np.ndarray) -> np.ndarray:
        """Observations ``[E, A, obs_dim]`` to ``[E, A_g, obs_dim_g]``."""
        return x if self.idx is None else np.ascontiguousarray(x[:, self.idx, : self.spec.obs_dim])

    def vectors(self, x: np.ndarray | None) -> np.ndarray | None:
        """Action-sized arrays ``[E, A, act_dim]`` (available actions, action vectors) to ``[E, A_g, act_dim_g]``."""
        return x if x is None or self.idx is None else np.ascontiguousarray(x[:, self.idx, : self.spec.act_dim])

    def actions(self, x: np.ndarray) -> np.ndarray:
        """Env actions (``[E, A]`` choices or ``[E, A, act_dim]`` vectors) to the group's."""
        return self.agents(x) if x.ndim == 2 else self.vectors(x)

    def put(self, full: np.ndarray, actions: np.ndarray) -> None:
        """Write the group's actions into the env's action array ``full``, in place."""
        if self.idx is None:
            full[...] = actions
        elif full.ndim == 2:
            full[:, self.idx] = actions
        else:
            full[:, self.idx, : self.spec.act_dim] = actions

    def extra(self, avail: np.ndarray | None = None, agent_mask: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """:meth:`Policy.act`'s ``avail`` and ``agent_mask``, cut to the group (only those given)."""
        out = {"avail": self.vectors(avail), "agent_mask": self.agents(agent_mask)}
        return {k: v for k, v in out.items() if v is not None}


def empty_actions(spec: AgentSpec, num_envs: int) -> np.ndarray:
    """An env action array of zeros (``[E, A]`` int64 choices or ``[E, A, act_dim]`` float32)."""
    if spec.discrete:
        return np.zeros((num_envs, spec.n_agents), np.int64)
    return np.zeros((num_envs, spec.n_agents, spec.act_dim), np.float32)


@dataclass(frozen=True)
class LearnerSlots:
    """One learner of a run: ``name`` (``""`` for the learner of every agent, else its group),
    its method, the method's config and the agents it trains."""

    name: str
    method: str
    config: Any
    slots: Slots


def learner_slots(cfg: Any, groups: AgentGroups, env_spec: AgentSpec) -> list[LearnerSlots]:
    """The learners a run trains (see the module docstring): one over every agent, or one per
    learning group over its agents."""
    from xmarl.config import group_section, separate_learners

    if not separate_learners(cfg):
        return [LearnerSlots("", cfg.method, getattr(cfg, cfg.method), Slots.of(env_spec))]
    out = []
    for g, gcfg in cfg.groups.items():
        if gcfg.policy == "learn":
            method, section = group_section(cfg, g)
            out.append(LearnerSlots(g, method, section, Slots.of(env_spec, groups.slots[g])))
    return out


def part_weights(weights: Weights, name: str) -> Weights:
    """The weights of learner ``name`` in a run's weights (a learner per group stores its own under
    ``groups/<name>/``; the learner of every agent, ``""``, stores them as they are)."""
    if not name:
        return weights
    prefix = f"groups/{name}/"
    return {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}


def joint_weights(parts: Mapping[str, Weights]) -> Weights:
    """The inverse of :func:`part_weights`: every learner's weights in one dict."""
    out: Weights = {}
    for name, w in parts.items():
        out.update(w if not name else {f"groups/{name}/{k}": v for k, v in w.items()})
    return out


def frozen_policies(cfg: Any, groups: AgentGroups, env_spec: AgentSpec,
                    load: Callable[[str], Weights]) -> dict[str, tuple[Slots, Policy]]:
    """The policy each frozen group acts with: a learner of the group's method built from its
    checkpoint's weights (``load(path)``), over every agent when the checkpoint's run had one
    learner, or over the group's agents when it trained one per group (its ``groups/<name>/``
    weights)."""
    from xmarl.config import group_section

    out = {}
    for g, path in groups.frozen.items():
        method, section = group_section(cfg, g)
        weights = load(path)
        own = part_weights(weights, g)
        slots = Slots.of(env_spec, groups.slots[g]) if own else Slots.of(env_spec)
        try:
            learner = registry.get("learner", method, cfg.backend)(slots.spec, section, own or weights)
        except (ValueError, KeyError) as exc:
            raise ConfigError(f"groups.{g}.checkpoint '{path}' holds weights that do not fit a {method} learner of "
                              f"group '{g}' ({one_line(exc)}); give the group the method and config it was trained "
                              "with") from None
        out[g] = (slots, learner.policy)
    return out


class FixedGroups:
    """The actions of the groups that do not learn: uniformly random (drawn by ``sample(rng,
    avail)``, from the ``rng`` given or else ``rng``), a frozen policy's greedy ones (``frozen``:
    ``{group: (Slots, Policy)}``) or the env's scripted ones (``heuristic``: a callable giving the
    actions at the env's current state)."""

    def __init__(self, groups: AgentGroups, sample: Callable[[np.random.Generator, np.ndarray | None], np.ndarray],
                 rng: np.random.Generator, frozen: Mapping[str, tuple[Slots, Policy]] | None = None,
                 heuristic: Callable[[], np.ndarray | None] | None = None) -> None:
        self.groups, self.sample, self.rng = groups, sample, rng
        self.frozen = dict(frozen or {})
        self.heuristic = heuristic

    def override(self, actions: np.ndarray, obs: np.ndarray, rng: np.random.Generator | None = None,
                 avail: np.ndarray | None = None, agent_mask: np.ndarray | None = None) -> np.ndarray:
        """``actions`` (every agent's) with the fixed groups' slots replaced by their actions."""
        random, scripted = self.groups.random, self.groups.heuristic
        if not (random.any() or scripted.any() or self.frozen):
            return actions
        actions = np.array(actions)
        if random.any():
            actions[:, random] = self.sample(rng if rng is not None else self.rng, avail)[:, random]
        if scripted.any():
            assert self.heuristic is not None, "a heuristic group needs the env's heuristic"
            actions[:, scripted] = np.asarray(self.heuristic())[:, scripted]
        for g, (slots, policy) in self.frozen.items():
            mine = policy.act(slots.obs(obs), None, explore=False, **slots.extra(avail, agent_mask))[0]
            if slots.idx is None:
                idx = self.groups.slots[g]
                actions[:, idx] = mine[:, idx]
            else:
                slots.put(actions, mine)
        return actions


class GroupPolicy(Policy):
    """The policy of every agent of an env: each member ``(Slots, Policy)`` acts for its agents
    (the learner of every agent, or one learner per group), then the fixed groups' agents act as
    ``fixed`` says. Its recurrent state is the member's (one member) or a tuple of them."""

    def __init__(self, members: Sequence[tuple[Slots, Policy]], spec: AgentSpec,
                 fixed: FixedGroups | None = None) -> None:
        self.members, self.spec, self.fixed = list(members), spec, fixed

    def forward_numpy(self, obs: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        if len(self.members) != 1 or self.members[0][0].idx is not None:
            raise NotImplementedError("the raw outputs of one learner; this policy has one per group")
        return self.members[0][1].forward_numpy(obs, state)

    def act(self, obs: np.ndarray, state: Any = None, explore: bool = False, rng: np.random.Generator | None = None,
            noise_scale: float = 0.0, avail: np.ndarray | None = None, agent_mask: np.ndarray | None = None,
            **kwargs: Any) -> tuple[np.ndarray, Any]:
        one = len(self.members) == 1
        states = [state] if one else list(state or [None] * len(self.members))
        actions = empty_actions(self.spec, obs.shape[0])
        for k, (slots, policy) in enumerate(self.members):
            mine, states[k] = policy.act(slots.obs(obs), states[k], explore=explore, rng=rng, noise_scale=noise_scale,
                                         **slots.extra(avail, agent_mask), **kwargs)
            if slots.idx is None:
                actions = np.array(mine)
            else:
                slots.put(actions, mine)
        if self.fixed is not None:
            actions = self.fixed.override(actions, obs, rng, avail, agent_mask)
        out_state = states[0] if one else (None if all(s is None for s in states) else tuple(states))
        return mask_actions(actions, agent_mask), out_state


__all__ = ["AgentGroups", "GroupPolicy", "FixedGroups", "UniformPolicy", "Slots", "LearnerSlots", "learner_slots",
           "frozen_policies", "part_weights", "joint_weights", "empty_actions", "reset_state", "sample_available"]
