"""CommNet's backend-neutral parts (:data:`COMMNET`, its method core): parameter layouts, numpy
initialisation, communication masks, batch preparation, action selection and the value
targets' running statistics. The framework math lives in each backend's
``representations.CommNet``, ``policies.CommNetPolicy`` and ``learners/commnet.py``, and reads as
Sukhbaatar et al. (2016), section 2; the numpy reference of the forward pass and the losses that
every backend is tested against is :mod:`xmarl.compare.reference.commnet`.

The network (one set of weights, ``G`` = 1 with parameter sharing, else one slice per agent;
``H`` hidden units, ``n`` actions; ``sigma`` is tanh or ReLU)::

    h^0_j     = sigma(s_j W_enc + b_enc)              (linear encoder r(s_j))
              = sigma(W_enc[id_j] + b_enc)            (embedding: the agent's id looks up a row)
    h^(i+1)_j = sigma(h^i_j H^i + b^i + c^i_j C^i [+ h^0_j B^i])    i = 0 .. K-1
    c^(i+1)_j = mean of h^(i+1)_j' over the agents j' != j that j may hear
    logits_j  = h^K_j W_pi + b_pi,   b(s)_j = h^K_j W_v + b_v

``c^0 = 0``, so module 0 has no ``C`` weights; with communication switched off no module has.
Who hears whom: every other active agent (agent mask ``[.., A]``; a mean over the others as a
sum minus self, linear in the number of agents), a static adjacency ``[A, A]``
(``comm_mask``), or per-step masks ``[.., A, A]`` from positions read off the observations
(``comm_range``); both masks are one matrix product per step. An agent no one may talk to
gets ``c = 0``.

Temporal recurrence (``recurrent``): the hidden state ``h^K`` of step ``t - 1`` is ``h^0`` of
step ``t`` (zeros at an episode's start), ``c^0`` is the mean of those carried states, and the
encoding ``e_t = sigma(r(s_t))`` enters every module through ``B``.

Training (section 2.1): with returns ``R_t`` (discounted, per agent), baseline
``b_t = mu + sigma v_t`` from the value head's output ``v_t`` and weights ``w = mask * agent_mask``::

    policy_loss = -sum w log pi(a_t | s_t) (R_t - b_t) / sum w      (advantage without gradient)
    value_loss  =  sum w ((R_t - b_t) / sigma)^2 / sum w
    loss        = policy_loss + value_coef * value_loss - entropy_coef * entropy

``[mu, sigma]`` (the batch's ``value_stats``) are running statistics of the returns
(:class:`~xmarl.core.value_norm.ValueNorm`) with ``value_norm``, else ``[0, 1]`` (the paper's
loss). The baseline shares the whole network with the policy; regressing it on raw returns of
a dense-reward task (about -10 per agent on simple_spread) saturates the shared tanh units in
every state and leaves the policy state-independent, which the normalisation prevents.

``R_t`` is the Monte-Carlo return (REINFORCE with the learned baseline, as in the paper) or,
with ``actor_critic``, the TD(lambda) target ``G = P b`` bootstrapped from the value head
(:func:`xmarl.core.coma.td_matrix`; ``b_t = mask_t (r_t + gamma (1 - term_t) (1 - lambda k_t)
V_(t+1) m_(t+1))`` with ``k_t = 1`` while step ``t + 1`` is in the episode and ``m`` the agent
mask, so an agent that leaves is not bootstrapped past its last step).

Agents that have left an episode (or not joined it yet; ``agent_mask`` 0) neither send nor
receive, get no weight in the losses and act 0; the trainer fills the mask from the env's
:meth:`~xmarl.envs.base.VectorEnvBase.alive`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xmarl.core.actions import NEG_INF, gumbel
from xmarl.core.coma import td_matrix
from xmarl.core.config import CommNetConfig
from xmarl.core.interfaces import Batch, Policy, Weights, mask_actions
from xmarl.core.layout import Layout, groups, init_output_layer
from xmarl.core.learner import LearnerBase
from xmarl.core.method import MethodCore
from xmarl.core.spaces import AgentSpec
from xmarl.core.value_norm import IDENTITY, ValueNorm
from xmarl.errors import ConfigError, EnvError

NET = "commnet"  # the one network: canonical names are "commnet/<part>/<kernel|bias>"


# -- layout ---------------------------------------------------------------------------------------
def encoder_in(spec: AgentSpec, cfg: CommNetConfig) -> int:
    """Rows of the encoder kernel: the observation size, or the id pool size (embedding)."""
    return int(cfg.n_ids) if cfg.encoder == "embedding" else spec.obs_dim


def has_comm(cfg: CommNetConfig, i: int) -> bool:
    """Whether module ``i`` reads a communication vector (``c^0 = 0`` unless recurrent)."""
    return cfg.communicate and (i > 0 or cfg.recurrent)


def has_skip(cfg: CommNetConfig) -> bool:
    """Whether modules read ``h^0`` through ``B`` (skip connection; always when recurrent)."""
    return cfg.skip_connection or cfg.recurrent


def comm_mode(cfg: CommNetConfig) -> str:
    """``"none"`` (no communication), ``"mean"`` (all other active agents), ``"static"``
    (``comm_mask`` adjacency) or ``"range"`` (per-step masks from positions)."""
    if not cfg.communicate:
        return "none"
    if cfg.comm_range is not None:
        return "range"
    return "static" if cfg.comm_mask is not None else "mean"


def representation_shapes(in_dim: int, hidden: int, comm_steps: int, groups: int, *, skip_connection: bool = False,
                          recurrent: bool = False, communicate: bool = True) -> Layout:
    """A CommNet representation, named relative to it: the encoder, then per module ``i`` its
    ``H`` weights, its ``C`` weights when it reads a communication vector (``c^0 = 0`` unless
    recurrent) and its skip weights ``B`` (with the skip connection; always when recurrent).
    Backends allocate from this and read the structure off its names."""
    G, H = groups, hidden
    shapes: Layout = {"encoder/kernel": (G, in_dim, H), "encoder/bias": (G, H)}
    for i in range(comm_steps):
        shapes[f"comm_{i}/hidden/kernel"] = (G, H, H)
        shapes[f"comm_{i}/hidden/bias"] = (G, H)
        if communicate and (i > 0 or recurrent):
            shapes[f"comm_{i}/comm/kernel"] = (G, H, H)
        if skip_connection or recurrent:
            shapes[f"comm_{i}/skip/kernel"] = (G, H, H)
    return shapes


def check_config(spec: AgentSpec, cfg: CommNetConfig) -> None:
    """One-line errors for configs that do not fit the task."""
    A, od = spec.n_agents, spec.obs_dim
    if not spec.discrete:
        raise ConfigError(f"commnet needs discrete actions, the task has {spec.action_kind} ones; pick another env")
    if cfg.encoder == "embedding":
        if cfg.n_ids is None:
            raise ConfigError("commnet.encoder 'embedding' needs commnet.n_ids, the size of the id pool (e.g. 500)")
        if od != 1:
            raise ConfigError(f"commnet.encoder 'embedding' reads one integer id per agent, but observations have "
                              f"{od} entries; use commnet.encoder: linear")
    if cfg.comm_mask is not None and cfg.comm_range is not None:
        raise ConfigError("set either commnet.comm_mask or commnet.comm_range, not both")
    if cfg.comm_mask is not None:
        m = np.asarray(cfg.comm_mask)
        if m.shape != (A, A) or not np.isin(m, (0, 1)).all():
            raise ConfigError(f"commnet.comm_mask must be a {A}x{A} matrix of 0/1 (one row per listening agent), "
                              f"got shape {m.shape}")
    if cfg.comm_range is not None:
        dims = list(cfg.position_dims)
        if not dims or min(dims) < 0 or max(dims) >= od:
            raise ConfigError(f"commnet.position_dims {dims} must index the {od} observation entries "
                              "(the agent's own position, for comm_range)")


def static_mask(spec: AgentSpec, cfg: CommNetConfig) -> np.ndarray | None:
    """The ``comm_mask`` adjacency ``[A, A]`` float32 with a zero diagonal (None without one)."""
    if cfg.comm_mask is None:
        return None
    m = np.asarray(cfg.comm_mask, np.float32).reshape(spec.n_agents, spec.n_agents)
    return m * (1.0 - np.eye(spec.n_agents, dtype=np.float32))


def range_mask(cfg: CommNetConfig, obs: np.ndarray) -> np.ndarray:
    """Per-step hearing masks ``[..., A, A]`` from observations ``[..., A, obs_dim]``: ``j`` hears
    ``j'`` when their positions (``position_dims``) are within ``comm_range`` and ``j' != j``."""
    pos = obs[..., list(cfg.position_dims)].astype(np.float64)
    d2 = np.square(pos[..., :, None, :] - pos[..., None, :, :]).sum(-1)
    A = obs.shape[-2]
    return ((d2 <= float(cfg.comm_range) ** 2) & ~np.eye(A, dtype=bool)).astype(np.float32)


def check_ids(cfg: CommNetConfig, obs: np.ndarray) -> None:
    """Embedding encoders: every id must be an integer row of the table."""
    if cfg.encoder != "embedding" or obs.size == 0:
        return
    ids = obs[..., 0]
    lo, hi = float(ids.min()), float(ids.max())
    if lo < 0 or hi >= cfg.n_ids or not np.array_equal(ids, np.round(ids)):
        raise EnvError(f"commnet: observed ids span {lo:g}..{hi:g}, but the embedding has ids 0..{cfg.n_ids - 1}; "
                       f"set commnet.n_ids to the env's pool size")


# -- batches --------------------------------------------------------------------------------------
def monte_carlo_returns(rew: np.ndarray, mask: np.ndarray, gamma: float) -> np.ndarray:
    """Discounted returns ``[..., B, T]`` of padded episodes (``mask`` ``[B, T]``), one product
    with ``P[t, s] = gamma^(s - t)`` (padded steps contribute nothing)."""
    T = rew.shape[-1]
    return (rew * mask) @ td_matrix(T, gamma, 1.0).T


class CommNetCore(MethodCore):
    """CommNet's method contract (see :class:`xmarl.core.method.MethodCore`)."""

    networks = (NET,)
    policy_network = NET
    batch = {"obs": ("A", None, None, "obs"), "act_onehot": ("A", None, None, "act"),
             "avail": ("A", None, None, "act"), "rew": ("A", None, None), "returns": ("A", None, None),
             "term": (None, None), "mask": (None, None), "agent_mask": ("A", None, None), "td_matrix": (None, None),
             "comm_mask": (None, None, "A", "A"), "value_stats": (2,)}
    optional_batch = ("comm_mask",)
    metrics = ("loss", "policy_loss", "value_loss", "entropy", "grad_norm")

    def check(self, spec: AgentSpec, cfg: CommNetConfig) -> None:
        check_config(spec, cfg)

    def param_shapes(self, spec: AgentSpec, cfg: CommNetConfig) -> Layout:
        """The representation, the policy head and the value head."""
        G, H, n = groups(spec, cfg.share_parameters), cfg.hidden_size, spec.act_dim
        rep = representation_shapes(encoder_in(spec, cfg), H, cfg.comm_steps, G, skip_connection=cfg.skip_connection,
                                    recurrent=cfg.recurrent, communicate=cfg.communicate)
        heads = {"policy/kernel": (G, H, n), "policy/bias": (G, n), "value/kernel": (G, H, 1), "value/bias": (G, 1)}
        return {f"{NET}/{k}": v for k, v in {**rep, **heads}.items()}

    def init_weights(self, spec: AgentSpec, cfg: CommNetConfig, seed: int) -> Weights:
        """Uniform fan-in ``U(-1/sqrt(in), 1/sqrt(in))`` for dense kernels and biases from the
        seed; the embedding table uses ``1/sqrt(H)`` (a looked-up row is one input, not
        ``n_ids`` of them). With ``policy_output_gain`` the policy head is then re-drawn from
        the same generator, after every other weight: orthogonal kernel times the gain, zero
        bias; the other weights are unchanged."""
        check_config(spec, cfg)
        rng = np.random.default_rng(np.random.SeedSequence([seed, 0x434E]))
        H = cfg.hidden_size
        w: Weights = {}
        for name, shape in self.param_shapes(spec, cfg).items():
            if name.endswith("kernel"):
                fan_in = H if (name == f"{NET}/encoder/kernel" and cfg.encoder == "embedding") else shape[1]
            else:  # a bias shares its kernel's bound
                kernel = w[name[: -len("bias")] + "kernel"]
                fan_in = H if (name == f"{NET}/encoder/bias" and cfg.encoder == "embedding") else kernel.shape[1]
            bound = 1.0 / np.sqrt(fan_in)
            w[name] = rng.uniform(-bound, bound, shape).astype(np.float32)
        init_output_layer(rng, w, f"{NET}/policy", getattr(cfg, "policy_output_gain", None))
        return w

    def learning_rates(self, cfg: CommNetConfig) -> dict[str, float]:
        return {NET: cfg.lr}

    def batch_keys(self, cfg: CommNetConfig) -> tuple[str, ...]:
        """Every entry; ``comm_mask`` only with ``comm_range``."""
        return tuple(k for k in self.batch if k != "comm_mask" or comm_mode(cfg) == "range")

    def prepare_batch(self, spec: AgentSpec, cfg: CommNetConfig, data: dict[str, np.ndarray],
                      rng: np.random.Generator, step: int) -> Batch:
        """An :class:`~xmarl.buffers.EpisodeBuffer` batch to what every backend's learner takes,
        agent-major: ``obs`` ``[A, B, T+1, obs_dim]``, ``act_onehot``/``avail`` ``[A, B, T+1, n]``,
        ``rew``/``returns`` ``[A, B, T]``, ``term``/``mask`` ``[B, T]``, ``agent_mask``
        ``[A, B, T+1]`` (the episodes' ``agent_mask`` ``[B, T+1, A]`` when given, else ones),
        ``td_matrix`` ``[T, T]`` and, with ``comm_range``, ``comm_mask`` ``[B, T+1, A, A]`` (the
        episodes' own when given, else from positions). The learner adds ``value_stats``."""
        obs, actions = data["obs"], data["actions"]
        B, T1, A = actions.shape
        T = T1 - 1
        check_ids(cfg, obs)
        avail = data["avail"] * spec.act_mask  # padded action entries are never available
        avail = np.where(avail.sum(-1, keepdims=True) > 0, avail, spec.act_mask)  # padded steps stay finite
        rew = np.ascontiguousarray(data["rew"].transpose(2, 0, 1), np.float32)
        mask = data["mask"].astype(np.float32)
        agent_mask = data.get("agent_mask")
        agent_mask = np.ones((A, B, T1), np.float32) if agent_mask is None else agent_mask.transpose(2, 0, 1)
        out = {
            "obs": np.ascontiguousarray(obs.transpose(2, 0, 1, 3), np.float32),
            "act_onehot": np.ascontiguousarray(np.eye(spec.act_dim, dtype=np.float32)[actions].transpose(2, 0, 1, 3)),
            "avail": np.ascontiguousarray(avail.transpose(2, 0, 1, 3), np.float32),
            "rew": rew,
            "returns": monte_carlo_returns(rew, mask, cfg.gamma).astype(np.float32),
            "term": data["term"].astype(np.float32),
            "mask": mask,
            "agent_mask": np.ascontiguousarray(agent_mask, np.float32),
            "td_matrix": td_matrix(T, cfg.gamma, cfg.td_lambda),
        }
        if comm_mode(cfg) == "range":
            cm = data.get("comm_mask")
            if cm is None:
                cm = range_mask(cfg, obs)
            else:
                cm = np.asarray(cm, np.float32) * (1.0 - np.eye(A, dtype=np.float32))
            out["comm_mask"] = np.ascontiguousarray(cm, np.float32)
        return out

    def update_epochs(self, cfg: CommNetConfig) -> int:
        return cfg.update_epochs


#: CommNet's method core, registered in :mod:`xmarl.core.methods`
COMMNET = CommNetCore()


# -- the shared parts of every backend's classes --------------------------------------------------------
class CommNetPolicyBase(Policy):
    """Action selection of the CommNet policy (numpy, shared by every backend): sample the
    softmax over available actions (Gumbel-max, an exact sample) or take the greedy available
    action. Backends implement ``forward_numpy(obs, state, agent_mask, comm_mask) -> (logits,
    state)`` and ``probe_numpy`` (the same arguments, returning every intermediate); ``state``
    is ``h^K`` ``[E, A, H]`` of a recurrent net (zeros when ``None``) and ``None`` otherwise."""

    cfg: CommNetConfig

    def masks(self, obs: np.ndarray, agent_mask: np.ndarray | None,
              comm_mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        """The agent mask ``[E, A]`` (default ones) and, with ``comm_range``, the hearing masks
        ``[E, A, A]`` (default from positions) for observations ``[E, A, obs_dim]``."""
        E, A = obs.shape[:2]
        am = np.ones((E, A), np.float32) if agent_mask is None else np.asarray(agent_mask, np.float32)
        if am.shape != (E, A):
            raise ValueError(f"commnet: agent_mask must have shape {(E, A)} like the observations, got {am.shape}")
        if comm_mode(self.cfg) != "range":
            return am, None
        cm = range_mask(self.cfg, obs) if comm_mask is None else np.asarray(comm_mask, np.float32)
        if cm.shape != (E, A, A):
            raise ValueError(f"commnet: comm_mask must have shape {(E, A, A)}, got {cm.shape}")
        return am, np.ascontiguousarray(cm * (1.0 - np.eye(A, dtype=np.float32)), np.float32)

    def initial_state(self, num_envs: int) -> np.ndarray | None:
        return (np.zeros((num_envs, self.spec.n_agents, self.cfg.hidden_size), np.float32)
                if self.cfg.recurrent else None)

    def state_or_zeros(self, obs: np.ndarray, state: np.ndarray | None) -> np.ndarray | None:
        """The recurrent state to step from: ``state``, or zeros at an episode's start."""
        if not self.cfg.recurrent:
            return None
        return np.ascontiguousarray(self.initial_state(obs.shape[0]) if state is None else state, np.float32)

    def act(self, obs: np.ndarray, state: Any = None, explore: bool = False, rng: np.random.Generator | None = None,
            noise_scale: float = 0.0, avail: np.ndarray | None = None, agent_mask: np.ndarray | None = None,
            comm_mask: np.ndarray | None = None) -> tuple[np.ndarray, Any]:
        """Actions ``[E, A]`` int64 for observations ``[E, A, obs_dim]`` and the next state.
        ``noise_scale`` is unused (sampling the softmax is CommNet's exploration)."""
        obs = np.ascontiguousarray(obs, dtype=np.float32)
        check_ids(self.cfg, obs)
        logits, state = self.forward_numpy(obs, state, agent_mask, comm_mask)
        ok = self.spec.act_mask if avail is None else avail * self.spec.act_mask
        ok = np.where(np.sum(ok, -1, keepdims=True) > 0, ok, self.spec.act_mask)
        z = np.where(ok > 0, logits, NEG_INF)
        if explore:
            assert rng is not None, "exploration needs an rng"
            z = z + gumbel(rng, z.shape)
        return mask_actions(np.argmax(z, -1).astype(np.int64), agent_mask), state


class CommNetLearnerBase(LearnerBase):
    """What every backend's ``CommNetLearner`` shares beyond :class:`LearnerBase`: the value
    targets' running statistics (:meth:`_prepare` adds ``value_stats`` to each batch), saved with
    the optimiser state."""

    method = COMMNET

    def __init__(self, spec: AgentSpec, config: CommNetConfig, weights: Weights) -> None:
        self.value_norm = ValueNorm()
        super().__init__(spec, config, weights)

    def _prepare(self, batch: Batch, learn: bool) -> Batch:
        """``batch`` with ``value_stats`` ``[mu, sigma]`` for the backend (``[0, 1]`` without
        ``value_norm``). With ``learn`` (an update, not a probe) the statistics first take in the
        batch's discounted returns, which the value targets estimate."""
        if not self.cfg.value_norm:
            return {**batch, "value_stats": IDENTITY}
        if learn:
            T = batch["mask"].shape[1]
            self.value_norm.update(batch["returns"], batch["mask"][None] * batch["agent_mask"][:, :, :T])
        return {**batch, "value_stats": self.value_norm.stats()}

    def get_optimizer_state(self) -> Weights:
        """Adam's state plus the value statistics (``value_norm/mean``, ``/mean_sq``, ``/debias``)."""
        return {**super().get_optimizer_state(), **self.value_norm.state_dict("value_norm")}

    def set_optimizer_state(self, state: Weights) -> None:
        super().set_optimizer_state(state)
        if "value_norm/mean" in state:
            self.value_norm.load_state_dict(state, "value_norm")

    def steps(self, batch: Batch) -> int:
        """Time steps the forward pass covers: ``T`` (REINFORCE) or ``T + 1`` (the value at the
        final observation bootstraps the actor-critic targets)."""
        T = batch["rew"].shape[-1]
        return T + 1 if self.cfg.actor_critic else T
