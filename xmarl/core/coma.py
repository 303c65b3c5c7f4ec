"""COMA's backend-neutral parts (:data:`COMA`, its method core): parameter layouts, numpy
initialisation, the critic's inputs, the exploration schedule and the TD(lambda) matrix. The
update itself (framework math) lives in each backend's ``learners/coma.py`` and reads as
Foerster et al. (2018), Algorithm 1; numpy references of the targets and the counterfactual
advantage, which every backend is tested against, are in :mod:`xmarl.compare.reference.coma`.

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
(:func:`td_matrix`).

Counterfactual advantage (the paper's eq. 4): ``A_a = Q_a(s, u) - sum_u' pi_a(u') Q_a(s, (u^-a, u'))``.

Agents that leave (the paper's units that die): the batch's ``agent_mask`` ``m_a,t`` (1 while
agent ``a`` is in the episode) weighs every agent-step of both losses by ``w_a,t = mask_t m_a,t``
(normalised by ``sum w``), so an agent that has left gets no gradient; its action enters every
critic input as a zero one-hot (its observation is zeros already). Leaving ends the agent's own
episode: its targets use ``b_t = w_a,t (r_t + gamma (1 - term_t) (1 - lambda c_t) m_a,t+1 Qt_{t+1})``,
never bootstrapping from its critic once it has left (agents that rejoin within an episode are
not modelled: the matrix form would sum their rewards after the gap). With every agent in, these
are the formulas above.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xmarl.core.actions import NEG_INF
from xmarl.core.config import COMAConfig
from xmarl.core.interfaces import Batch, Policy, Weights, mask_actions
from xmarl.core.layout import Layout, groups, gru_shapes, init_mlp, init_output_layer, mlp_shapes
from xmarl.core.learner import LearnerBase
from xmarl.core.method import MethodCore
from xmarl.core.spaces import AgentSpec


def input_dims(spec: AgentSpec, share_parameters: bool) -> tuple[int, int]:
    """Input sizes of the actor (observation [+ id]) and the critic (state, others' actions [+ id])."""
    A, ident = spec.n_agents, spec.n_agents if share_parameters else 0
    return spec.obs_dim + ident, A * spec.obs_dim + A * spec.act_dim + ident


def policy_probs(logits: np.ndarray, avail: np.ndarray, eps: float) -> np.ndarray:
    """``(1 - eps) softmax(logits over available actions) + eps / |available|`` on the last axis."""
    z = np.where(avail > 0, logits, NEG_INF).astype(np.float64)
    p = np.exp(z - z.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    return (1.0 - eps) * p + eps * avail / avail.sum(-1, keepdims=True)


def td_matrix(T: int, gamma: float, lam: float) -> np.ndarray:
    """``P[t, s] = (gamma lambda)^(s - t)`` for ``s >= t``, else 0 (``[T, T]``, float32)."""
    d = np.arange(T)[None, :] - np.arange(T)[:, None]
    return np.where(d >= 0, (gamma * lam) ** np.maximum(d, 0), 0.0).astype(np.float32)


def critic_inputs(spec: AgentSpec, share_parameters: bool, obs: np.ndarray, actions: np.ndarray,
                  agent_mask: np.ndarray | None = None) -> np.ndarray:
    """Critic input of every agent: ``obs`` ``[B, T, A, obs_dim]``, ``actions`` ``[B, T, A]`` ->
    ``[A, B, T, A*obs_dim + A*n (+ A)]``: the state, the others' one-hot actions (agent ``a``'s
    own slot zeroed; all zeros for the agents ``agent_mask`` ``[B, T, A]`` marks as out of the
    episode) and, with shared weights, ``a``'s one-hot id."""
    B, T, A, od = obs.shape
    n = spec.act_dim
    state = np.broadcast_to(obs.reshape(1, B, T, A * od), (A, B, T, A * od))
    onehot = np.eye(n, dtype=np.float32)[actions]  # [B, T, A, n]
    if agent_mask is not None:
        onehot = onehot * np.asarray(agent_mask, np.float32)[..., None]
    others = (1.0 - np.eye(A, dtype=np.float32))[:, None, None, :, None] * onehot[None]  # [A, B, T, A, n]
    parts = [state, others.reshape(A, B, T, A * n)]
    if share_parameters:
        parts.append(np.broadcast_to(np.eye(A, dtype=np.float32)[:, None, None, :], (A, B, T, A)))
    return np.concatenate(parts, -1).astype(np.float32)


class COMACore(MethodCore):
    """COMA's method contract (see :class:`xmarl.core.method.MethodCore`)."""

    networks = ("actor", "critic", "target_critic")
    policy_network = "actor"
    batch = {"obs": ("A", None, None, "obs"), "critic_in": ("A", None, None, "critic_in"),
             "act_onehot": ("A", None, None, "act"), "avail": ("A", None, None, "act"), "rew": ("A", None, None),
             "term": (None, None), "mask": (None, None), "agent_mask": ("A", None, None), "td_matrix": (None, None),
             "epsilon": ()}
    metrics = ("critic_loss", "actor_loss", "q_taken")
    diagnostics = ("q", "target_q_next", "targets", "pi", "advantages")

    def param_shapes(self, spec: AgentSpec, cfg: COMAConfig) -> Layout:
        """The actor (an MLP, or a dense layer, a GRU and a head), the critic and its target."""
        G, (actor_in, critic_in) = groups(spec, cfg.share_parameters), input_dims(spec, cfg.share_parameters)
        if not cfg.recurrent:
            shapes = mlp_shapes("actor", G, actor_in, cfg.hidden_sizes, spec.act_dim)
        else:
            H = cfg.rnn_hidden_dim
            shapes = {**mlp_shapes("actor", G, actor_in, [H], None), **gru_shapes("actor/gru", G, H, H),
                      "actor/head/kernel": (G, H, spec.act_dim), "actor/head/bias": (G, spec.act_dim)}
        for prefix in ("critic", "target_critic"):
            shapes.update(mlp_shapes(prefix, G, critic_in, cfg.critic_hidden_sizes, spec.act_dim))
        return shapes

    def init_weights(self, spec: AgentSpec, cfg: COMAConfig, seed: int) -> Weights:
        """Uniform fan-in weights from the seed (the GRU uses ``1/sqrt(hidden)`` for every
        entry); the target critic starts as a copy. With ``actor_output_gain`` the actor's
        logits layer (``actor/head``) is then re-drawn from the same generator, after every
        other weight: orthogonal kernel times the gain, zero bias; the other weights are
        unchanged."""
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
        init_output_layer(rng, w, "actor/head", getattr(cfg, "actor_output_gain", None))
        w.update({"target_" + k: v.copy() for k, v in w.items() if k.startswith("critic/")})
        return {k: w[k] for k in self.param_shapes(spec, cfg)}

    def learning_rates(self, cfg: COMAConfig) -> dict[str, float]:
        return {"actor": cfg.lr_actor, "critic": cfg.lr_critic}

    def sizes(self, spec: AgentSpec, cfg: COMAConfig) -> dict[str, int]:
        return {**super().sizes(spec, cfg), "critic_in": input_dims(spec, cfg.share_parameters)[1]}

    def prepare_batch(self, spec: AgentSpec, cfg: COMAConfig, data: dict[str, np.ndarray],
                      rng: np.random.Generator, step: int) -> Batch:
        """An :class:`~xmarl.buffers.EpisodeBuffer` batch to what every backend's learner takes,
        agent-major: ``obs`` ``[A, B, T+1, obs_dim]``, ``critic_in`` ``[A, B, T+1, critic_in]``,
        ``act_onehot``/``avail`` ``[A, B, T+1, n]``, ``rew`` ``[A, B, T]``, ``term``/``mask``
        ``[B, T]``, ``agent_mask`` ``[A, B, T+1]`` (the episodes' ``agent_mask`` ``[B, T+1, A]``
        when given, else ones), ``td_matrix`` ``[T, T]`` and the exploration floor ``epsilon`` (a
        scalar array, so compiled steps take it as an input)."""
        obs, actions = data["obs"], data["actions"]
        B, T1, A = actions.shape
        T = T1 - 1
        agent_mask = data.get("agent_mask")
        agent_mask = np.ones((B, T1, A), np.float32) if agent_mask is None else np.asarray(agent_mask, np.float32)
        avail = data["avail"] * spec.act_mask  # padded action entries are never available
        # padded steps (no entry available) and the steps of agents that have left get every real
        # action, so that pi stays finite there (their loss weight is zero)
        avail = np.where((avail.sum(-1, keepdims=True) > 0) & (agent_mask[..., None] > 0), avail, spec.act_mask)
        return {
            "obs": np.ascontiguousarray(obs.transpose(2, 0, 1, 3)),
            "critic_in": critic_inputs(spec, cfg.share_parameters, obs, actions, agent_mask),
            "act_onehot": np.ascontiguousarray(np.eye(spec.act_dim, dtype=np.float32)[actions].transpose(2, 0, 1, 3)),
            "avail": np.ascontiguousarray(avail.transpose(2, 0, 1, 3), np.float32),
            "rew": np.ascontiguousarray(data["rew"].transpose(2, 0, 1), np.float32),
            "term": data["term"].astype(np.float32),
            "mask": data["mask"].astype(np.float32),
            "agent_mask": np.ascontiguousarray(agent_mask.transpose(2, 0, 1)),
            "td_matrix": td_matrix(T, cfg.gamma, cfg.td_lambda),
            "epsilon": np.array(self.exploration(cfg, step), np.float32),
        }

    def exploration(self, cfg: COMAConfig, step: int) -> float:
        """The exploration floor epsilon after ``step`` env steps (linear annealing)."""
        if cfg.epsilon_anneal_steps == 0:
            return cfg.epsilon_finish
        frac = min(1.0, step / cfg.epsilon_anneal_steps)
        return cfg.epsilon_start + frac * (cfg.epsilon_finish - cfg.epsilon_start)

    def update_epochs(self, cfg: COMAConfig) -> int:
        return cfg.update_epochs

    def after_update(self, learner: LearnerBase, cfg: COMAConfig, updates: int) -> None:
        """Hard-copy the critic into the target critic every ``target_update_interval`` updates."""
        if updates % cfg.target_update_interval == 0:
            learner.copy_weights("critic", "target_critic")


#: COMA's method core, registered in :mod:`xmarl.core.methods`
COMA = COMACore()


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
            noise_scale: float = 0.0, avail: np.ndarray | None = None,
            agent_mask: np.ndarray | None = None) -> tuple[np.ndarray, Any]:
        """Actions ``[E, A]`` for observations ``[E, A, obs_dim]``; the agents ``agent_mask``
        ``[E, A]`` marks as out of the episode (0) take action 0, as the trainer stores for them."""
        if self.recurrent and state is None:
            state = self.initial_state(obs.shape[0])
        logits, state = self.forward_numpy(np.ascontiguousarray(obs, dtype=np.float32), state)
        avail = self.spec.act_mask if avail is None else avail * self.spec.act_mask
        if agent_mask is not None:
            if np.shape(agent_mask) != logits.shape[:2]:
                raise ValueError(f"coma: agent_mask must have shape {logits.shape[:2]} like the observations, "
                                 f"got {np.shape(agent_mask)}")
            # an agent that has left may report no available action: keep its (discarded) policy finite
            avail = np.where(np.asarray(agent_mask)[..., None] > 0, avail, self.spec.act_mask)
        if not explore:
            return mask_actions(np.argmax(np.where(avail > 0, logits, NEG_INF), -1), agent_mask), state
        assert rng is not None, "exploration needs an rng"
        p = policy_probs(logits, np.broadcast_to(avail, logits.shape), noise_scale)
        u = rng.random(p.shape[:-1] + (1,))
        choice = (np.cumsum(p, -1) < u * p.sum(-1, keepdims=True)).sum(-1)
        return mask_actions(np.minimum(choice, self.spec.act_dim - 1), agent_mask), state


class COMALearnerBase(LearnerBase):
    """What every backend's ``COMALearner`` shares beyond :class:`LearnerBase`: the method core
    and the recurrent entry point XuanCe users know."""

    method = COMA

    def _prepare(self, batch: Batch, learn: bool) -> Batch:
        """``batch``, with an all-ones ``agent_mask`` when it has none (batches prepared before
        agents could leave)."""
        if "agent_mask" in batch:
            return batch
        A, B, T1 = batch["act_onehot"].shape[:3]
        return {**batch, "agent_mask": np.ones((A, B, T1), np.float32)}

    def update_recurrent(self, batch: Batch) -> dict[str, float]:
        """One update of the recurrent actor over whole padded episodes (and the critic): the
        name XuanCe gives it; :meth:`update` does the same for a recurrent config."""
        if not self.cfg.recurrent:
            raise ValueError("update_recurrent needs a recurrent actor (coma.recurrent: true); call update")
        return self.update(batch)
