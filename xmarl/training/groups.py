"""Agent groups: the ``groups`` config section maps agent-name patterns to named groups (e.g.
predators ``adversary_*`` and prey ``agent_*`` in simple_tag), each of which learns (the run's
method), acts uniformly at random (``random``), acts greedily with the weights of a checkpoint
(``frozen``: e.g. trained prey kept fixed while new predators learn against them) or follows the
scripted policy the env ships (``heuristic``), in training and in evaluation. Evaluation
reports the return of each group beside the mean over all agents.

Learning groups of one run share its method and weights object; inside a group, parameter sharing
is the method's ``share_parameters`` switch. A fixed group needs per-agent weights
(``share_parameters: false``) so that its agents' actions, which the learning agents' critics see,
never train the weights the learning agents act with.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xmarl.core.interfaces import Policy, mask_actions
from xmarl.errors import ConfigError

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


def sample_available(env: Any, rng: np.random.Generator, avail: np.ndarray | None) -> np.ndarray:
    """Uniform random actions for every copy and agent of ``env``, among the available ones
    (``avail`` ``[E, A, n]``) where the env reports them."""
    if avail is None or not env.spec.discrete:
        return env.sample_actions(rng)
    return np.argmax(np.where(avail > 0, rng.random(avail.shape), -1.0), -1).astype(np.int64)


class GroupPolicy(Policy):
    """A policy whose fixed groups' agents act uniformly at random (``random``), greedily with a
    frozen policy (``frozen``: ``{group: Policy}``) or with the env's scripted policy
    (``heuristic``: a callable giving its actions now), and the wrapped policy's agents elsewhere.
    ``rng`` draws the random actions when ``act`` gets none (greedy evaluation)."""

    def __init__(self, policy: Policy, groups: AgentGroups,
                 sample: Callable[[np.random.Generator, np.ndarray | None], np.ndarray],
                 rng: np.random.Generator, frozen: Mapping[str, Policy] | None = None,
                 heuristic: Callable[[], np.ndarray | None] | None = None) -> None:
        self.policy, self.groups, self.sample, self.rng = policy, groups, sample, rng
        self.frozen = dict(frozen or {})
        self.heuristic = heuristic
        self.spec = policy.spec

    def forward_numpy(self, obs: np.ndarray, state: Any = None) -> tuple[np.ndarray, Any]:
        return self.policy.forward_numpy(obs, state)

    def act(self, obs: np.ndarray, state: Any = None, explore: bool = False, rng: np.random.Generator | None = None,
            noise_scale: float = 0.0, avail: np.ndarray | None = None, agent_mask: np.ndarray | None = None,
            **kwargs: Any) -> tuple[np.ndarray, Any]:
        extra = {k: v for k, v in (("avail", avail), ("agent_mask", agent_mask)) if v is not None}
        actions, state = self.policy.act(obs, state, explore=explore, rng=rng, noise_scale=noise_scale, **extra,
                                         **kwargs)
        actions = np.array(actions)
        random, scripted = self.groups.random, self.groups.heuristic
        if random.any():
            actions[:, random] = self.sample(rng if rng is not None else self.rng, avail)[:, random]
        if scripted.any():
            assert self.heuristic is not None, "a heuristic group needs the env's heuristic"
            actions[:, scripted] = np.asarray(self.heuristic())[:, scripted]
        for g, frozen in self.frozen.items():
            slots = self.groups.slots[g]
            actions[:, slots] = frozen.act(obs, None, explore=False, **extra)[0][:, slots]
        return mask_actions(actions, agent_mask), state


__all__ = ["AgentGroups", "GroupPolicy", "sample_available"]
