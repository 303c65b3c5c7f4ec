"""COMA's backend-neutral parts: parameter names and shapes, numpy initialisation, the
critic's inputs, the exploration schedule, and numpy references of the counterfactual
advantage and the TD(lambda) targets. The update itself (framework math) lives in each
backend's ``learners/coma.py`` and reads as Foerster et al. (2018), Algorithm 1.

Networks (``G`` = 1 with parameter sharing, else the number of agents ``A``; ``n`` actions):

* actor ``pi_a(u | tau_a)``: feed-forward MLP over ``[o_a, id_a]``, or (``recurrent``) a dense
  layer, a GRU over the episode and a linear head; logits ``[.., n]``;
* critic ``Q_a(s, u^-a, .)``: MLP over ``[s, u^-a (one-hot, own slot zeroed), id_a]`` with one
  output per action of agent ``a``; ``s`` is the concatenation of every agent's observation.

Exploration: ``pi = (1 - eps) softmax(logits over available actions) + eps / |available|``
with ``eps`` annealed linearly from ``epsilon_start`` to ``epsilon_finish``.

TD(lambda) targets (per agent, over one episode of length ``L``, ``c_t = 1`` while ``t + 1 < L``)::

    G_t = r_t + gamma (1 - term_t) [(1 - lambda c_t) Qt_{t+1} + lambda c_t G_{t+1}]

where ``Qt_{t+1}`` is the target critic at the taken actions of step ``t + 1`` (for the last
step, the final observation and the actions the policy sampled there). Unrolled, ``G = P b``
with ``b_t = mask_t (r_t + gamma (1 - term_t) (1 - lambda c_t) Qt_{t+1})`` and
``P[t, s] = (gamma lambda)^(s - t)`` for ``s >= t``: one matrix product, no loop over time
(:func:`td_matrix`; :func:`td_lambda_targets` is the recursive reference).

Counterfactual advantage (the paper's eq. 4): ``A_a = Q_a(s, u) - sum_u' pi_a(u') Q_a(s, (u^-a, u'))``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xmarl.buffers.episode import synthetic_episodes
from xmarl.config.schema import COMAConfig
from xmarl.core.actions import NEG_INF
from xmarl.core.init import init_mlp, mlp_shapes
from xmarl.core.interfaces import Learner, Policy, Weights
from xmarl.core.spaces import AgentSpec

NETWORKS = ("actor", "critic", "target_critic")


def groups(spec: AgentSpec, share_parameters: bool) -> int:
    """Leading axis of every weight: 1 with parameter sharing, else one slice per agent."""
    return 1 if share_parameters else spec.n_agents


def input_dims(spec: AgentSpec, share_parameters: bool) -> tuple[int, int]:
    """Input sizes of the actor (observation [+ id]) and the critic (state, others' actions [+ id])."""
    A, ident = spec.n_agents, spec.n_agents if share_parameters else 0
    return spec.obs_dim + ident, A * spec.obs_dim + A * spec.act_dim + ident


def gru_shapes(prefix: str, G: int, in_dim: int, hidden: int) -> dict[str, tuple[int, ...]]:
    """A GRU layer, gates in the order (reset, update, candidate)."""
    return {f"{prefix}/kernel": (G, in_dim, 3 * hidden), f"{prefix}/recurrent_kernel": (G, hidden, 3 * hidden),
            f"{prefix}/bias": (G, 3 * hidden), f"{prefix}/recurrent_bias": (G, 3 * hidden)}


def actor_shapes(spec: AgentSpec, cfg: COMAConfig) -> dict[str, tuple[int, ...]]:
    G, (actor_in, _) = groups(spec, cfg.share_parameters), input_dims(spec, cfg.share_parameters)
    if not cfg.recurrent:
        return mlp_shapes("actor", G, actor_in, cfg.hidden_sizes, spec.act_dim)
    H = cfg.rnn_hidden_dim
    shapes = mlp_shapes("actor", G, actor_in, [H], spec.act_dim)
    head = {k: shapes.pop(k) for k in ("actor/head/kernel", "actor/head/bias")}
    return {**shapes, **gru_shapes("actor/gru", G, H, H), "actor/head/kernel": (G, H, spec.act_dim),
            "actor/head/bias": head["actor/head/bias"]}


def param_shapes(spec: AgentSpec, cfg: COMAConfig) -> dict[str, tuple[int, ...]]:
    """Canonical names and shapes of the actor, the critic and the target critic."""
    G, (_, critic_in) = groups(spec, cfg.share_parameters), input_dims(spec, cfg.share_parameters)
    shapes = actor_shapes(spec, cfg)
    for prefix in ("critic", "target_critic"):
        shapes.update(mlp_shapes(prefix, G, critic_in, cfg.critic_hidden_sizes, spec.act_dim))
    return shapes


def init_weights(spec: AgentSpec, cfg: COMAConfig, seed: int) -> Weights:
    """Initial weights in numpy from the seed (uniform fan-in; the GRU uses ``1/sqrt(hidden)``
    for every entry); the target critic starts as a copy."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x434F]))
    G, (actor_in, critic_in) = groups(spec, cfg.share_parameters), input_dims(spec, cfg.share_parameters)
    w: Weights = {}
    if cfg.recurrent:
        H = cfg.rnn_hidden_dim
        w.update(init_mlp(rng, "actor", G, actor_in, [H], spec.act_dim))
        bound = 1.0 / np.sqrt(H)
        w.update({k: rng.uniform(-bound, bound, s).astype(np.float32)
                  for k, s in gru_shapes("actor/gru", G, H, H).items()})
    else:
        w.update(init_mlp(rng, "actor", G, actor_in, cfg.hidden_sizes, spec.act_dim))
    w.update(init_mlp(rng, "critic", G, critic_in, cfg.critic_hidden_sizes, spec.act_dim))
    w.update({"target_" + k: v.copy() for k, v in w.items() if k.startswith("critic/")})
    return {k: w[k] for k in param_shapes(spec, cfg)}


def epsilon(cfg: COMAConfig, step: int) -> float:
    """The exploration floor after ``step`` env steps (linear annealing)."""
    if cfg.epsilon_anneal_steps == 0:
        return cfg.epsilon_finish
    frac = min(1.0, step / cfg.epsilon_anneal_steps)
    return cfg.epsilon_start + frac * (cfg.epsilon_finish - cfg.epsilon_start)


exploration = epsilon  # the on-policy trainer's name for the schedule


# -- numpy references (tests check every backend against these) ------------------------------------
def policy_probs(logits: np.ndarray, avail: np.ndarray, eps: float) -> np.ndarray:
    """``(1 - eps) softmax(logits over available actions) + eps / |available|`` on the last axis."""
    z = np.where(avail > 0, logits, NEG_INF).astype(np.float64)
    p = np.exp(z - z.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    return (1.0 - eps) * p + eps * avail / avail.sum(-1, keepdims=True)


def counterfactual_advantage(q: np.ndarray, pi: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """``Q(s, u) - sum_u' pi(u') Q(s, (u^-a, u'))`` from ``q``/``pi`` ``[..., n]`` and actions ``[...]``."""
    taken = np.take_along_axis(q, actions[..., None], -1)[..., 0]
    return taken - (pi * q).sum(-1)


def td_lambda_targets(rew: np.ndarray, q_next: np.ndarray, term: np.ndarray, mask: np.ndarray, gamma: float,
                      lam: float) -> np.ndarray:
    """The recursive definition (module docstring) over padded episodes: ``rew``/``q_next``
    ``[..., B, T]`` (``q_next[..., t]`` is the target critic at step ``t + 1``), ``term``/``mask``
    ``[B, T]``. Zero on padded steps."""
    T = rew.shape[-1]
    cont = np.concatenate([mask[:, 1:], np.zeros_like(mask[:, :1])], 1)
    G = np.zeros(np.broadcast_shapes(rew.shape, mask.shape), np.float64)
    nxt = np.zeros(G.shape[:-1])
    for t in reversed(range(T)):
        c = cont[:, t]
        G[..., t] = mask[:, t] * (rew[..., t] + gamma * (1 - term[:, t]) * (
            (1 - lam * c) * q_next[..., t] + lam * c * nxt))
        nxt = G[..., t]
    return G


def td_matrix(T: int, gamma: float, lam: float) -> np.ndarray:
    """``P[t, s] = (gamma lambda)^(s - t)`` for ``s >= t``, else 0 (``[T, T]``, float32)."""
    d = np.arange(T)[None, :] - np.arange(T)[:, None]
    return np.where(d >= 0, (gamma * lam) ** np.maximum(d, 0), 0.0).astype(np.float32)


# -- batches ------------------------------------------------------------------------------------------
def critic_inputs(spec: AgentSpec, share_parameters: bool, obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """Critic input of every agent: ``obs`` ``[B, T, A, obs_dim]``, ``actions`` ``[B, T, A]`` ->
    ``[A, B, T, A*obs_dim + A*n (+ A)]``: the state, the others' one-hot actions (agent ``a``'s
    own slot zeroed) and, with shared weights, ``a``'s one-hot id."""
    B, T, A, od = obs.shape
    n = spec.act_dim
    state = np.broadcast_to(obs.reshape(1, B, T, A * od), (A, B, T, A * od))
    onehot = np.eye(n, dtype=np.float32)[actions]  # [B, T, A, n]
    others = (1.0 - np.eye(A, dtype=np.float32))[:, None, None, :, None] * onehot[None]  # [A, B, T, A, n]
    parts = [state, others.reshape(A, B, T, A * n)]
    if share_parameters:
        parts.append(np.broadcast_to(np.eye(A, dtype=np.float32)[:, None, None, :], (A, B, T, A)))
    return np.concatenate(parts, -1).astype(np.float32)


def prepare_batch(spec: AgentSpec, cfg: COMAConfig, episodes: dict[str, np.ndarray], rng: np.random.Generator,
                  step: int) -> dict[str, np.ndarray]:
    """An :class:`~xmarl.buffers.EpisodeBuffer` batch to what every backend's learner takes,
    agent-major: ``obs`` ``[A, B, T+1, obs_dim]``, ``critic_in`` ``[A, B, T+1, critic_in]``,
    ``act_onehot``/``avail`` ``[A, B, T+1, n]``, ``rew`` ``[A, B, T]``, ``term``/``mask``
    ``[B, T]``, ``td_matrix`` ``[T, T]`` and the exploration floor ``epsilon`` (a scalar array,
    so compiled steps take it as an input)."""
    obs, actions = episodes["obs"], episodes["actions"]
    T = episodes["rew"].shape[1]
    avail = episodes["avail"] * spec.act_mask  # padded action entries are never available
    # padded steps (no entry available) get every real action, so that pi stays finite there
    avail = np.where(avail.sum(-1, keepdims=True) > 0, avail, spec.act_mask)
    return {
        "obs": np.ascontiguousarray(obs.transpose(2, 0, 1, 3)),
        "critic_in": critic_inputs(spec, cfg.share_parameters, obs, actions),
        "act_onehot": np.ascontiguousarray(np.eye(spec.act_dim, dtype=np.float32)[actions].transpose(2, 0, 1, 3)),
        "avail": np.ascontiguousarray(avail.transpose(2, 0, 1, 3), np.float32),
        "rew": np.ascontiguousarray(episodes["rew"].transpose(2, 0, 1), np.float32),
        "term": episodes["term"].astype(np.float32),
        "mask": episodes["mask"].astype(np.float32),
        "td_matrix": td_matrix(T, cfg.gamma, cfg.td_lambda),
        "epsilon": np.array(epsilon(cfg, step), np.float32),
    }


def after_update(learner: Learner, cfg: COMAConfig, updates: int) -> None:
    """Hard-copy the critic into the target critic every ``target_update_interval`` updates."""
    if updates % cfg.target_update_interval == 0:
        learner.sync_target()


# -- the shared parts of every backend's classes --------------------------------------------------------
class COMAPolicy(Policy):
    """Action selection of the COMA actor (numpy, shared by every backend): sample from the
    epsilon-floored policy over available actions, or take the greedy available action.
    Backends implement ``forward_numpy(obs, state) -> (logits, state)``; ``state`` is the GRU
    hidden ``[E, A, H]`` of a recurrent actor (zeros when ``None``) and ``None`` otherwise."""

    recurrent: bool
    hidden_dim: int

    def initial_state(self, num_envs: int) -> np.ndarray | None:
        return np.zeros((num_envs, self.spec.n_agents, self.hidden_dim), np.float32) if self.recurrent else None

    def state_or_zeros(self, obs: np.ndarray, state: np.ndarray | None) -> np.ndarray:
        """The recurrent state to step from: ``state``, or zeros at an episode's start."""
        return np.ascontiguousarray(self.initial_state(obs.shape[0]) if state is None else state, np.float32)

    def act(self, obs: np.ndarray, state: Any = None, explore: bool = False, rng: np.random.Generator | None = None,
            noise_scale: float = 0.0, avail: np.ndarray | None = None) -> tuple[np.ndarray, Any]:
        if self.recurrent and state is None:
            state = self.initial_state(obs.shape[0])
        logits, state = self.forward_numpy(np.ascontiguousarray(obs, dtype=np.float32), state)
        avail = self.spec.act_mask if avail is None else avail * self.spec.act_mask
        if not explore:
            return np.argmax(np.where(avail > 0, logits, NEG_INF), -1), state
        assert rng is not None, "exploration needs an rng"
        p = policy_probs(logits, np.broadcast_to(avail, logits.shape), noise_scale)
        u = rng.random(p.shape[:-1] + (1,))
        choice = (np.cumsum(p, -1) < u * p.sum(-1, keepdims=True)).sum(-1)
        return np.minimum(choice, self.spec.act_dim - 1), state


class COMALearnerBase(Learner):
    """What every backend's ``COMALearner`` shares: it builds the actor, the critic, the
    target critic and two optimisers from the backend's classes (``Actor``, ``Critic``,
    ``Optimizer``), calls :meth:`build`, and loads the initial weights. Backends supply the
    math: ``build``, ``update``, ``update_recurrent``, ``gradients``, ``diagnostics`` and the
    parameter hooks ``_read``/``_write``."""

    Actor: type
    Critic: type
    Optimizer: type

    def __init__(self, spec: AgentSpec, config: COMAConfig, weights: Weights) -> None:
        self.spec, self.cfg = spec, config
        share = config.share_parameters
        self.actor = self.Actor(spec, config.hidden_sizes, share, config.recurrent, config.rnn_hidden_dim)
        self.critic = self.Critic(spec, config.critic_hidden_sizes, share)
        self.target_critic = self.Critic(spec, config.critic_hidden_sizes, share)
        self.policy = self.actor
        self.nets = {"actor": self.actor, "critic": self.critic, "target_critic": self.target_critic}
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

    def update(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        """One update of the critic and the actor (feed-forward or recurrent, as configured)."""
        raise NotImplementedError

    def update_recurrent(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        """One update of the recurrent actor over whole padded episodes (and the critic)."""
        if not self.cfg.recurrent:
            raise ValueError("update_recurrent needs a recurrent actor (coma.recurrent: true); call update")
        return self.update(batch)

    def diagnostics(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Intermediate quantities at the current weights (for tests and parity): ``q``
        ``[A, B, T, n]``, ``target_q_next`` ``[A, B, T]``, ``targets``, ``pi``, ``advantages``."""
        raise NotImplementedError

    def sync_target(self) -> None:
        """Copy the critic's weights into the target critic."""
        for (_, src), (_, dst) in zip(self.critic.canonical().items(), self.target_critic.canonical().items()):
            self._write(dst, self._read(src).reshape(tuple(dst.shape)))


def parity_cases(method: str = "coma", seed: int = 0, updates: int = 3) -> list[Any]:
    """COMA's parity cases (see :mod:`xmarl.compare.parity`): shared and per-agent weights,
    feed-forward and recurrent actors, on heterogeneous agents with random action masks and
    padded episodes of mixed lengths. Probes: the actor's logits (and GRU state) on the first
    steps, the critic's Q-values, the TD(lambda) targets, the policy and the counterfactual
    advantages. Each update is ``update``/``update_recurrent`` followed by :func:`after_update`
    with a target copy every 2 updates, so the copy is compared too."""
    from xmarl.compare.parity import ParityCase, method_config, parity_spec

    spec = parity_spec("discrete")
    out = []
    for recurrent in (False, True):
        for share in (True, False):
            cfg = method_config(method, {"share_parameters": share, "recurrent": recurrent, "hidden_sizes": [16, 16],
                                         "critic_hidden_sizes": [16, 16], "rnn_hidden_dim": 8, "lr_actor": 1e-3,
                                         "lr_critic": 1e-3, "target_update_interval": 2})
            batches = []
            for k in range(updates):
                rng = np.random.default_rng([seed, 100 + k])
                batches.append(prepare_batch(spec, cfg, synthetic_episodes(spec, 4, 6, rng), rng, 30_000 * k))
            obs = np.ascontiguousarray(batches[0]["obs"][:, :, 0].transpose(1, 0, 2))  # first steps, [B, A, od]

            def probes(learner: Any, b: dict = batches[0], o: np.ndarray = obs) -> dict[str, np.ndarray]:
                logits, state = learner.policy.forward_numpy(o.copy(), None)
                extra = {"policy_state": state} if state is not None else {}
                return {"policy_logits": logits, **extra, **learner.diagnostics(b)}

            def update(learner: Any, batch: dict, k: int, c: COMAConfig = cfg) -> dict[str, float]:
                metrics = learner.update_recurrent(batch) if c.recurrent else learner.update(batch)
                after_update(learner, c, k + 1)
                return metrics

            out.append(ParityCase(
                name=f"{method}-{'shared' if share else 'per_agent'}-{'gru' if recurrent else 'mlp'}",
                spec=spec, config=cfg, weights=init_weights(spec, cfg, seed), batches=batches, obs=None,
                probes=probes, update=update))
    return out
