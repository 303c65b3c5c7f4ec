"""MADDPG's backend-neutral parts: parameter names and shapes, numpy initialisation and
batch preparation. The update itself (framework math) lives in each backend's
``learners/maddpg.py`` and reads as Lowe et al. (2017), Algorithm 1.

Networks (``G`` = 1 with parameter sharing, else the number of agents ``A``):

* actor ``mu_i(o_i [, id_i])``: MLP over the agent's observation (plus its one-hot id when
  shared) to ``act_dim`` raw outputs (logits on categorical entries, pre-tanh values on bounded
  ones; a hybrid action has both, see :mod:`xmarl.core.spaces`);
* critic ``Q_i(x, a_1..a_N [, id_i])``: MLP over all agents' observations and actions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from xmarl.config.schema import MADDPGConfig
from xmarl.core.actions import gumbel
from xmarl.core.init import init_mlp, mlp_shapes
from xmarl.core.interfaces import Learner, Weights
from xmarl.core.spaces import AgentSpec

if TYPE_CHECKING:
    from xmarl.compare.parity import ParityCase

NETWORKS = ("actor", "critic", "target_actor", "target_critic")


def input_dims(spec: AgentSpec, share_parameters: bool) -> tuple[int, int]:
    """Input sizes of the actor and the critic (plus the one-hot agent id when shared)."""
    A = spec.n_agents
    ident = A if share_parameters else 0
    return spec.obs_dim + ident, A * (spec.obs_dim + spec.act_dim) + ident


def groups(spec: AgentSpec, share_parameters: bool) -> int:
    """Leading axis of every weight: 1 with parameter sharing, else one slice per agent."""
    return 1 if share_parameters else spec.n_agents


def param_shapes(spec: AgentSpec, cfg: MADDPGConfig) -> dict[str, tuple[int, ...]]:
    """Canonical names and shapes of every network, targets included."""
    G = groups(spec, cfg.share_parameters)
    actor_in, critic_in = input_dims(spec, cfg.share_parameters)
    shapes: dict[str, tuple[int, ...]] = {}
    for net, in_dim, out_dim in (("actor", actor_in, spec.act_dim), ("critic", critic_in, 1)):
        for prefix in (net, f"target_{net}"):
            shapes.update(mlp_shapes(prefix, G, in_dim, cfg.hidden_sizes, out_dim))
    return shapes


def init_weights(spec: AgentSpec, cfg: MADDPGConfig, seed: int) -> dict[str, np.ndarray]:
    """Initial weights in numpy from the seed; targets start as copies."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x4D41]))
    G = groups(spec, cfg.share_parameters)
    actor_in, critic_in = input_dims(spec, cfg.share_parameters)
    w: dict[str, np.ndarray] = {}
    w.update(init_mlp(rng, "actor", G, actor_in, cfg.hidden_sizes, spec.act_dim))
    w.update(init_mlp(rng, "critic", G, critic_in, cfg.hidden_sizes, 1))
    for k in list(w):
        w["target_" + k] = w[k].copy()
    return w


def prepare_batch(spec: AgentSpec, batch: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Add the Gumbel noise of the update's action samples to a batch, so that every backend
    draws the same sample and runs stay reproducible. The noise covers the categorical
    entries (``spec.disc_mask``) and is zero on continuous ones; continuous tasks draw none."""
    shape = batch["act"].shape
    if spec.discrete:
        batch["gumbel"] = gumbel(rng, shape)
        batch["next_gumbel"] = gumbel(rng, shape)
    elif spec.hybrid:
        disc = spec.disc_mask[:, None, :]  # batch["act"] is [A, B, act_dim]
        batch["gumbel"] = gumbel(rng, shape) * disc
        batch["next_gumbel"] = gumbel(rng, shape) * disc
    else:
        batch["gumbel"] = np.zeros(shape, np.float32)
        batch["next_gumbel"] = np.zeros(shape, np.float32)
    return batch


def stored_actions(spec: AgentSpec, actions: np.ndarray) -> np.ndarray:
    """Env actions (:func:`xmarl.core.actions.select_actions`' layout) to the float vectors
    critics take: one-hot ``[E, A, act_dim]`` for discrete ``[E, A]`` choices; continuous and
    hybrid actions already are those vectors (hybrid: ``[one-hot (n_i), continuous (d_i)]``)."""
    if spec.discrete:
        return np.eye(spec.act_dim, dtype=np.float32)[actions]
    return actions.astype(np.float32)


def exploration(cfg: MADDPGConfig) -> float:
    """Action-noise scale used while collecting (continuous actions)."""
    return cfg.exploration_noise


def parity_cases(method: str = "maddpg", seed: int = 0, updates: int = 3) -> list[ParityCase]:
    """Parity hook (:mod:`xmarl.compare.parity`): every action kind, with and without
    parameter sharing, on a heterogeneous synthetic task; ``updates`` frozen batches of 32
    transitions with their Gumbel noise, small networks and equal learning rates."""
    from xmarl.compare.parity import ParityCase, method_config, parity_spec, random_transitions

    out = []
    for kind in ("discrete", "continuous", "hybrid"):
        for share in (True, False):
            cfg = method_config(method, {"share_parameters": share, "hidden_sizes": [16, 16],
                                           "lr_actor": 1e-3, "lr_critic": 1e-3})
            spec = parity_spec(kind)
            batches = []
            for k in range(updates):
                rng = np.random.default_rng(seed + 1 + k)
                batches.append(prepare_batch(spec, random_transitions(spec, 32, rng), rng))
            out.append(ParityCase(
                name=f"{method}-{kind}-{'shared' if share else 'per_agent'}", spec=spec, config=cfg,
                weights=init_weights(spec, cfg, seed), batches=batches,
                obs=np.ascontiguousarray(batches[0]["obs"].swapaxes(0, 1))))
    return out


class MADDPGLearnerBase(Learner):
    """What every backend's ``MADDPGLearner`` shares: it builds the actor, the critic, their
    targets and two optimisers from the backend's classes (``Actor``, ``Critic``,
    ``Optimizer``), then calls :meth:`build` for the backend's compiled steps and loads the
    initial weights. Backends supply the math: ``build``, ``update``, ``gradients`` and the
    parameter hooks ``_read``/``_write``."""

    Actor: type
    Critic: type
    Optimizer: type

    def __init__(self, spec: AgentSpec, config: MADDPGConfig, weights: Weights) -> None:
        self.spec, self.cfg = spec, config
        hidden, share = config.hidden_sizes, config.share_parameters
        self.actor, self.target_actor = self.Actor(spec, hidden, share), self.Actor(spec, hidden, share)
        self.critic, self.target_critic = self.Critic(spec, hidden, share), self.Critic(spec, hidden, share)
        self.policy = self.actor
        self.nets = {"actor": self.actor, "critic": self.critic,
                     "target_actor": self.target_actor, "target_critic": self.target_critic}
        self.shapes = param_shapes(spec, config)
        self.name_parameters()
        betas, eps = config.adam.betas, config.adam.eps
        self.actor_opt = self.Optimizer(list(self.actor.canonical().values()), config.lr_actor, betas, eps,
                                        name="actor_opt")
        self.critic_opt = self.Optimizer(list(self.critic.canonical().values()), config.lr_critic, betas, eps,
                                         name="critic_opt")
        self.optimizers = {"actor": self.actor_opt, "critic": self.critic_opt}
        self.build()
        self.set_weights(weights)

    def name_parameters(self) -> None:
        """Backend hook, before the optimisers exist (e.g. unique names within a graph)."""

    def build(self) -> None:
        """Backend hook: constants and compiled update steps."""
