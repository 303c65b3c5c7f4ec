"""CommNet's backend-neutral parts: parameter names and shapes, numpy initialisation,
communication masks, batch preparation, action selection, and a numpy reference of the
forward pass and the losses that every backend is tested against. The framework math lives in
each backend's ``representations.CommNet``, ``policies.CommNetPolicy`` and
``learners/commnet.py``, and reads as Sukhbaatar et al. (2016), section 2.

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
V_(t+1))`` with ``k_t = 1`` while step ``t + 1`` is in the episode).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xmarl.config.schema import CommNetConfig
from xmarl.core.actions import NEG_INF, gumbel
from xmarl.core.coma import td_matrix
from xmarl.core.interfaces import Learner, Policy, Weights
from xmarl.core.spaces import AgentSpec
from xmarl.core.value_norm import IDENTITY, ValueNorm
from xmarl.errors import ConfigError

NET = "commnet"  # the one network: canonical names are "commnet/<part>/<kernel|bias>"


# -- layout ---------------------------------------------------------------------------------------
def groups(spec: AgentSpec, share_parameters: bool) -> int:
    """Leading axis of every weight: 1 with parameter sharing, else one slice per agent."""
    return 1 if share_parameters else spec.n_agents


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


def representation_shapes(in_dim: int, hidden: int, comm_steps: int, groups: int, comm: list[bool],
                          skip: bool) -> dict[str, tuple[int, ...]]:
    """Relative names and shapes of a CommNet representation (``comm[i]``: module ``i`` has ``C``)."""
    G, H = groups, hidden
    shapes: dict[str, tuple[int, ...]] = {"encoder/kernel": (G, in_dim, H), "encoder/bias": (G, H)}
    for i in range(comm_steps):
        shapes[f"comm_{i}/hidden/kernel"] = (G, H, H)
        shapes[f"comm_{i}/hidden/bias"] = (G, H)
        if comm[i]:
            shapes[f"comm_{i}/comm/kernel"] = (G, H, H)
        if skip:
            shapes[f"comm_{i}/skip/kernel"] = (G, H, H)
    return shapes


def param_shapes(spec: AgentSpec, cfg: CommNetConfig) -> dict[str, tuple[int, ...]]:
    """Canonical names and shapes: the representation, the policy head and the value head."""
    G, H, n = groups(spec, cfg.share_parameters), cfg.hidden_size, spec.act_dim
    rep = representation_shapes(encoder_in(spec, cfg), H, cfg.comm_steps, G,
                                [has_comm(cfg, i) for i in range(cfg.comm_steps)], has_skip(cfg))
    heads = {"policy/kernel": (G, H, n), "policy/bias": (G, n), "value/kernel": (G, H, 1), "value/bias": (G, 1)}
    return {f"{NET}/{k}": v for k, v in {**rep, **heads}.items()}


def init_weights(spec: AgentSpec, cfg: CommNetConfig, seed: int) -> Weights:
    """Initial weights in numpy from the seed: uniform fan-in ``U(-1/sqrt(in), 1/sqrt(in))`` for
    dense kernels and biases; the embedding table uses ``1/sqrt(H)`` (a looked-up row is one
    input, not ``n_ids`` of them)."""
    check_config(spec, cfg)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x434E]))
    H = cfg.hidden_size
    w: Weights = {}
    for name, shape in param_shapes(spec, cfg).items():
        if name.endswith("kernel"):
            fan_in = H if (name == f"{NET}/encoder/kernel" and cfg.encoder == "embedding") else shape[1]
        else:  # a bias shares its kernel's bound
            kernel = w[name[: -len("bias")] + "kernel"]
            fan_in = H if (name == f"{NET}/encoder/bias" and cfg.encoder == "embedding") else kernel.shape[1]
        bound = 1.0 / np.sqrt(fan_in)
        w[name] = rng.uniform(-bound, bound, shape).astype(np.float32)
    return w


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
        raise ValueError(f"commnet: observed ids span {lo:g}..{hi:g}, but the embedding has ids 0..{cfg.n_ids - 1}; "
                         f"set commnet.n_ids to the env's pool size")


# -- batches --------------------------------------------------------------------------------------
def monte_carlo_returns(rew: np.ndarray, mask: np.ndarray, gamma: float) -> np.ndarray:
    """Discounted returns ``[..., B, T]`` of padded episodes (``mask`` ``[B, T]``), one product
    with ``P[t, s] = gamma^(s - t)`` (padded steps contribute nothing)."""
    T = rew.shape[-1]
    return (rew * mask) @ td_matrix(T, gamma, 1.0).T


def prepare_batch(spec: AgentSpec, cfg: CommNetConfig, episodes: dict[str, np.ndarray], rng: np.random.Generator,
                  step: int) -> dict[str, np.ndarray]:
    """An :class:`~xmarl.buffers.EpisodeBuffer` batch to what every backend's learner takes,
    agent-major: ``obs`` ``[A, B, T+1, obs_dim]``, ``act_onehot``/``avail`` ``[A, B, T+1, n]``,
    ``rew``/``returns`` ``[A, B, T]``, ``term``/``mask`` ``[B, T]``, ``agent_mask``
    ``[A, B, T+1]`` (the episodes' ``agent_mask`` ``[B, T+1, A]`` when given, else ones),
    ``td_matrix`` ``[T, T]`` and, with ``comm_range``, ``comm_mask`` ``[B, T+1, A, A]`` (the
    episodes' own when given, else from positions)."""
    obs, actions = episodes["obs"], episodes["actions"]
    B, T1, A = actions.shape
    T = T1 - 1
    check_ids(cfg, obs)
    avail = episodes["avail"] * spec.act_mask  # padded action entries are never available
    avail = np.where(avail.sum(-1, keepdims=True) > 0, avail, spec.act_mask)  # padded steps stay finite
    rew = np.ascontiguousarray(episodes["rew"].transpose(2, 0, 1), np.float32)
    mask = episodes["mask"].astype(np.float32)
    agent_mask = episodes.get("agent_mask")
    agent_mask = np.ones((A, B, T1), np.float32) if agent_mask is None else agent_mask.transpose(2, 0, 1)
    out = {
        "obs": np.ascontiguousarray(obs.transpose(2, 0, 1, 3), np.float32),
        "act_onehot": np.ascontiguousarray(np.eye(spec.act_dim, dtype=np.float32)[actions].transpose(2, 0, 1, 3)),
        "avail": np.ascontiguousarray(avail.transpose(2, 0, 1, 3), np.float32),
        "rew": rew,
        "returns": monte_carlo_returns(rew, mask, cfg.gamma).astype(np.float32),
        "term": episodes["term"].astype(np.float32),
        "mask": mask,
        "agent_mask": np.ascontiguousarray(agent_mask, np.float32),
        "td_matrix": td_matrix(T, cfg.gamma, cfg.td_lambda),
    }
    if comm_mode(cfg) == "range":
        cm = episodes.get("comm_mask")
        cm = range_mask(cfg, obs) if cm is None else np.asarray(cm, np.float32) * (1.0 - np.eye(A, dtype=np.float32))
        out["comm_mask"] = np.ascontiguousarray(cm, np.float32)
    return out


def exploration(cfg: CommNetConfig, step: int) -> float:
    """CommNet explores by sampling its softmax policy; there is no extra noise (0)."""
    return 0.0


# -- numpy reference (tests check every backend against it) -------------------------------------------
def _sigma(cfg: CommNetConfig, x: np.ndarray) -> np.ndarray:
    return np.tanh(x) if cfg.activation == "tanh" else np.maximum(x, 0.0)


def _dense(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """``x`` ``[N, A, in]`` times per-group kernels ``[G, in, out]`` (G = 1 or A) -> ``[N, A, out]``."""
    y = np.einsum("nai,aio->nao", x.astype(np.float64), np.broadcast_to(kernel, (x.shape[1],) + kernel.shape[1:]))
    return y if bias is None else y + bias[None]


def comm_vectors(h: np.ndarray, agent_mask: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """``c_j`` = mean of ``h_j'`` over the active agents ``j' != j`` that ``j`` hears (0 if none);
    ``h`` ``[N, A, H]``, ``agent_mask`` ``[N, A]``, ``mask`` None (all) or ``[A, A]``/``[N, A, A]``."""
    m = agent_mask[..., None].astype(np.float64)
    hm = h * m
    if mask is None:
        return (hm.sum(1, keepdims=True) - hm) / np.maximum(m.sum(1, keepdims=True) - m, 1.0)
    W = np.broadcast_to(mask * (1.0 - np.eye(mask.shape[-1])), (h.shape[0],) + mask.shape[-2:])
    return (W @ hm) / np.maximum(W @ m, 1.0)


def reference_forward(spec: AgentSpec, cfg: CommNetConfig, weights: Weights, obs: np.ndarray,
                      agent_mask: np.ndarray | None = None, comm_mask: np.ndarray | None = None,
                      state: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """One step of the network in float64 numpy, env-major: ``obs`` ``[N, A, obs_dim]``,
    ``agent_mask`` ``[N, A]`` (default ones), ``comm_mask`` ``[N, A, A]`` for ``comm_range``
    (default from positions), ``state`` ``[N, A, H]`` (recurrent; default zeros). Returns
    ``hiddens`` ``[K+1, N, A, H]`` (``h^0`` .. ``h^K``), raw ``logits`` ``[N, A, n]``, ``values``
    ``[N, A]`` and ``state`` (``h^K``)."""
    w = {k[len(NET) + 1:]: np.asarray(v, np.float64) for k, v in weights.items()}
    N, A = obs.shape[:2]
    am = np.ones((N, A)) if agent_mask is None else agent_mask
    mode = comm_mode(cfg)
    mask = static_mask(spec, cfg)
    if mode == "range":
        mask = range_mask(cfg, obs) if comm_mask is None else comm_mask
    if cfg.encoder == "embedding":
        ids = obs[..., 0].astype(np.int64)
        table = np.broadcast_to(w["encoder/kernel"], (A,) + w["encoder/kernel"].shape[1:])
        e = _sigma(cfg, table[np.arange(A)[None, :], ids] + w["encoder/bias"][None])
    else:
        e = _sigma(cfg, _dense(obs, w["encoder/kernel"], w["encoder/bias"]))
    if cfg.recurrent:
        h = np.zeros_like(e) if state is None else state.astype(np.float64)
    else:
        h = e
    hiddens = [h]
    c = comm_vectors(h, am, mask) if (cfg.recurrent and mode != "none") else None
    for i in range(cfg.comm_steps):
        z = _dense(h, w[f"comm_{i}/hidden/kernel"], w[f"comm_{i}/hidden/bias"])
        if has_comm(cfg, i):
            z = z + _dense(c, w[f"comm_{i}/comm/kernel"])
        if has_skip(cfg):
            z = z + _dense(e, w[f"comm_{i}/skip/kernel"])
        h = _sigma(cfg, z)
        hiddens.append(h)
        if mode != "none":
            c = comm_vectors(h, am, mask)
    logits = _dense(h, w["policy/kernel"], w["policy/bias"])
    values = _dense(h, w["value/kernel"], w["value/bias"])[..., 0]
    return {"hiddens": np.stack(hiddens), "logits": logits, "values": values, "state": h}


def reference_losses(spec: AgentSpec, cfg: CommNetConfig, weights: Weights, batch: dict[str, np.ndarray]
                     ) -> dict[str, float]:
    """The losses of a prepared batch (:func:`prepare_batch`) in float64 numpy."""
    A, B, T1, od = batch["obs"].shape
    T = T1 - 1
    obs = batch["obs"].transpose(1, 2, 0, 3)  # [B, T+1, A, od]
    am = batch["agent_mask"].transpose(1, 2, 0)  # [B, T+1, A]
    cm = batch.get("comm_mask")
    steps = T1 if cfg.actor_critic else T
    mu, sigma = np.asarray(batch.get("value_stats", IDENTITY), np.float64)
    if cfg.recurrent:
        outs, state = [], None
        for t in range(steps):
            o = reference_forward(spec, cfg, weights, obs[:, t], am[:, t], None if cm is None else cm[:, t], state)
            state = o["state"]
            outs.append(o)
        logits = np.stack([o["logits"] for o in outs], 1)
        values = np.stack([o["values"] for o in outs], 1)
    else:
        o = reference_forward(spec, cfg, weights, obs[:, :steps].reshape(B * steps, A, od),
                              am[:, :steps].reshape(B * steps, A),
                              None if cm is None else cm[:, :steps].reshape(B * steps, A, A))
        logits = o["logits"].reshape(B, steps, A, -1)
        values = o["values"].reshape(B, steps, A)
    logits, values = logits.transpose(2, 0, 1, 3), mu + sigma * values.transpose(2, 0, 1)  # agent-major
    avail = batch["avail"][:, :, :T]
    z = np.where(avail > 0, logits[:, :, :T], NEG_INF)
    logp = z - z.max(-1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
    taken = (batch["act_onehot"][:, :, :T] * logp).sum(-1)
    mask = batch["mask"]
    v = values[:, :, :T]
    if cfg.actor_critic:
        cont = np.concatenate([mask[:, 1:], np.zeros_like(mask[:, :1])], 1)
        b = mask * (batch["rew"] + cfg.gamma * (1 - batch["term"]) * (1 - cfg.td_lambda * cont) * values[:, :, 1:])
        R = b @ batch["td_matrix"].T
    else:
        R = batch["returns"]
    wts = mask[None] * batch["agent_mask"][:, :, :T]
    n = max(wts.sum(), 1.0)
    adv = R - v
    entropy = -(wts * (np.exp(logp) * logp).sum(-1)).sum() / n
    policy_loss = -(wts * taken * adv).sum() / n
    value_loss = (wts * (adv / sigma) ** 2).sum() / n
    loss = policy_loss + cfg.value_coef * value_loss - cfg.entropy_coef * entropy
    return {"loss": loss, "policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy}


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
        return np.argmax(z, -1).astype(np.int64), state


class CommNetLearnerBase(Learner):
    """What every backend's ``CommNetLearner`` shares: it builds the network (the backend's
    ``Policy`` class: representation, policy head and value head) and one optimiser, calls
    :meth:`build`, and loads the initial weights; it keeps the value targets' running
    statistics (:meth:`value_batch`), saved with the optimiser state. Backends supply the math:
    ``build``, ``update``, ``gradients`` and the parameter hooks ``_read``/``_write``."""

    Policy: type
    Optimizer: type

    def __init__(self, spec: AgentSpec, config: CommNetConfig, weights: Weights) -> None:
        check_config(spec, config)
        self.spec, self.cfg = spec, config
        self.net = self.Policy(spec, config)
        self.policy = self.net
        self.nets = {NET: self.net}
        self.shapes = param_shapes(spec, config)
        self.name_parameters()
        self.opt = self.Optimizer(list(self.net.canonical().values()), config.lr, config.adam.betas,
                                  config.adam.eps, name="commnet_opt")
        self.optimizers = {NET: self.opt}
        self.value_norm = ValueNorm()
        self.build()
        self.set_weights(weights)

    def value_batch(self, batch: dict[str, np.ndarray], learn: bool = False) -> dict[str, np.ndarray]:
        """``batch`` with ``value_stats`` ``[mu, sigma]`` for the backend (``[0, 1]`` without
        ``value_norm``). With ``learn`` (an update, not a parity probe) the statistics first
        take in the batch's discounted returns, which the value targets estimate."""
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

    def name_parameters(self) -> None:
        """Backend hook, before the optimiser exists (e.g. unique names within a graph)."""

    def build(self) -> None:
        """Backend hook: constants and compiled update steps."""

    def update_recurrent(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        """The trainer's entry for recurrent configs: :meth:`update` handles both."""
        return self.update(batch)

    def steps(self, batch: dict[str, np.ndarray]) -> int:
        """Time steps the forward pass covers: ``T`` (REINFORCE) or ``T + 1`` (the value at
        the final observation bootstraps the actor-critic targets)."""
        T = batch["rew"].shape[-1]
        return T + 1 if self.cfg.actor_critic else T


# -- parity hook (xmarl.compare.parity) --------------------------------------------------------------
def parity_batch(spec: AgentSpec, cfg: CommNetConfig, n_episodes: int, max_len: int,
                 rng: np.random.Generator, agent_mask: bool = False) -> dict[str, np.ndarray]:
    """A prepared batch of random padded episodes (optionally with random agent masks, each
    step keeping at least one agent)."""
    from xmarl.buffers.episode import synthetic_episodes

    ep = synthetic_episodes(spec, n_episodes, max_len, rng)
    if cfg.encoder == "embedding":
        ep["obs"] = np.floor(rng.random(ep["obs"].shape[:-1] + (1,)) * cfg.n_ids).astype(np.float32)
    if agent_mask:
        am = (rng.random(ep["actions"].shape) < 0.7).astype(np.float32)
        am[..., 0] = 1.0
        ep["agent_mask"] = am
    return prepare_batch(spec, cfg, ep, rng, 0)


#: every option the parity cases and tests rely on, pinned (the shipped defaults are merged with the
#: default env's config, which may change them)
BASE_OPTIONS: dict[str, Any] = {
    "gamma": 0.99, "actor_critic": False, "td_lambda": 0.8, "lr": 1e-3, "grad_clip": 10.0, "value_coef": 0.03,
    "entropy_coef": 0.0, "value_norm": False, "hidden_size": 16, "comm_steps": 2, "activation": "tanh",
    "encoder": "linear", "n_ids": None,
    "skip_connection": False, "recurrent": False, "share_parameters": True, "communicate": True, "comm_mask": None,
    "comm_range": None, "position_dims": [2, 3]}


def parity_cases(method: str = "commnet", seed: int = 0, updates: int = 3) -> list:
    """Parity hook (:mod:`xmarl.compare.parity`): the paper's variants on small synthetic
    tasks. Probes record ``h^0 .. h^K`` (``forward/hidden_<i>``), logits, values and the
    recurrent state of one step on the first batch's observations; gradients, losses and 3
    updates follow. Cases: the levers network (embedding encoder, no masks, no skip connection,
    two rounds of communication); a linear encoder with the skip connection, a static adjacency
    and agent masks; per-agent weights with per-step range masks, ReLU and actor-critic targets;
    a recurrent net with agent masks and actor-critic targets."""
    from xmarl.compare.parity import ParityCase, method_config, parity_spec

    variants = {
        "plain-embedding": ({"encoder": "embedding", "n_ids": 11}, False),
        "skip-static-mask": ({"skip_connection": True, "value_norm": True,
                              "comm_mask": [[0, 1, 0, 1], [1, 0, 1, 0], [0, 0, 0, 1], [1, 1, 1, 0]]}, True),
        "range-mask-per-agent-ac": ({"comm_range": 1.2, "position_dims": [0, 1], "share_parameters": False,
                                     "actor_critic": True, "activation": "relu", "value_norm": True}, False),
        "recurrent-ac": ({"recurrent": True, "actor_critic": True, "value_norm": True}, True),
    }
    out = []
    for name, (over, agent_mask) in variants.items():
        cfg = method_config(method, {**BASE_OPTIONS, "comm_steps": 3 if name.startswith("plain") else 2,
                                     "entropy_coef": 0.01, **over})
        spec = parity_spec("discrete", n_agents=4)
        if cfg.encoder == "embedding":
            spec = AgentSpec(spec.agents, (1,) * 4, "discrete", spec.act_dims, spec.low, spec.high)
        batches = [parity_batch(spec, cfg, 6, 4, np.random.default_rng(seed + 1 + k), agent_mask)
                   for k in range(updates)]
        b0 = batches[0]
        obs = np.ascontiguousarray(b0["obs"][:, :, 0].transpose(1, 0, 2))  # [B, A, od], step 0
        am = np.ascontiguousarray(b0["agent_mask"][:, :, 0].T)
        cm = b0["comm_mask"][:, 0] if "comm_mask" in b0 else None
        state = (np.random.default_rng(seed).standard_normal((obs.shape[0], 4, cfg.hidden_size)) * 0.5
                 ).astype(np.float32) if cfg.recurrent else None

        def probes(learner: Any, obs: np.ndarray = obs, am: np.ndarray = am, cm: np.ndarray | None = cm,
                   state: np.ndarray | None = state) -> dict[str, np.ndarray]:
            got = learner.policy.probe_numpy(obs, state, am, cm)
            out = {f"hidden_{i}": h for i, h in enumerate(got["hiddens"])}
            out.update({k: got[k] for k in ("logits", "values", "state") if got[k] is not None})
            return out

        out.append(ParityCase(name=f"{method}-{name}", spec=spec, config=cfg, weights=init_weights(spec, cfg, seed),
                              batches=batches, obs=None, probes=probes))
    return out
