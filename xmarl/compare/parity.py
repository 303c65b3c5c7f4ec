"""Parity: the same canonical weights and the same frozen batch, fed to every backend.

For each backend this records the policy's forward outputs, the losses and gradients at the
initial weights, the metrics of ``K`` updates and the weights (and optimiser moments) after
them; :func:`compare` reports the largest absolute and relative differences between
backends against a stated tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xmarl import registry
from xmarl.config import load_config
from xmarl.core import maddpg as maddpg_core
from xmarl.core.spaces import AgentSpec

#: |a - b| <= ATOL + RTOL * |b|, elementwise, for every quantity
ATOL = 1e-5
RTOL = 1e-5


def parity_spec(kind: str, n_agents: int = 3) -> AgentSpec:
    """A synthetic task: heterogeneous observation and action sizes, so padding is exercised.

    ``"hybrid"`` agents have ``n_i = 2 + i % 2`` choices and ``d_i = 1 + i % 3`` continuous
    entries (for three agents: 2+1, 3+2 and 2+3 entries, padded to 5).
    """
    agents = tuple(f"agent_{i}" for i in range(n_agents))
    obs_dims = tuple(6 + 2 * i for i in range(n_agents))
    disc_dims: tuple[int, ...] = ()
    if kind == "hybrid":
        disc_dims = tuple(2 + i % 2 for i in range(n_agents))
        act_dims = tuple(n + 1 + i % 3 for i, n in enumerate(disc_dims))
    else:
        act_dims = tuple(3 + (i % 2) for i in range(n_agents))
    ad = max(act_dims)
    low = np.zeros((n_agents, ad), np.float32)
    high = np.zeros((n_agents, ad), np.float32)
    if kind in ("continuous", "hybrid"):
        for i, d in enumerate(act_dims):
            start = disc_dims[i] if disc_dims else 0
            low[i, start:d], high[i, start:d] = -1.0 - i, 1.0 + 0.5 * i
    return AgentSpec(agents, obs_dims, kind, act_dims, low, high, disc_dims)


def maddpg_batch(spec: AgentSpec, batch_size: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    A, od, ad = spec.n_agents, spec.obs_dim, spec.act_dim
    obs_mask = np.zeros((A, 1, od), np.float32)
    for i, d in enumerate(spec.obs_dims):
        obs_mask[i, :, :d] = 1.0
    if spec.discrete:
        idx = (rng.random((A, batch_size)) * np.asarray(spec.act_dims)[:, None]).astype(int)
        act = np.eye(ad, dtype=np.float32)[idx] * spec.act_mask[:, None, :]
    else:
        u = rng.random((A, batch_size, ad)).astype(np.float32)
        act = spec.low[:, None] + u * (spec.high - spec.low)[:, None]
        if spec.hybrid:  # one-hot choice on the categorical entries, the uniform point after them
            idx = (rng.random((A, batch_size)) * np.asarray(spec.disc_dims)[:, None]).astype(int)
            act = np.where(spec.disc_mask[:, None] > 0, np.eye(ad, dtype=np.float32)[idx], act)
    batch = {
        "obs": rng.standard_normal((A, batch_size, od)).astype(np.float32) * obs_mask,
        "act": act.astype(np.float32),
        "rew": rng.standard_normal((A, batch_size)).astype(np.float32),
        "next_obs": rng.standard_normal((A, batch_size, od)).astype(np.float32) * obs_mask,
        "done": (rng.random((A, batch_size)) < 0.1).astype(np.float32),
    }
    return maddpg_core.prepare_batch(spec, batch, rng)


@dataclass
class Case:
    """One parity scenario."""

    method: str
    action_kind: str
    share_parameters: bool

    @property
    def name(self) -> str:
        return f"{self.method}-{self.action_kind}-{'shared' if self.share_parameters else 'per_agent'}"


def run_backend(backend: str, case: Case, updates: int = 3, seed: int = 0) -> dict[str, np.ndarray]:
    """Every parity quantity of ``case`` in ``backend``, as flat ``{name: array}``."""
    cfg = load_config(case.method, backend=backend, overrides={
        f"{case.method}.share_parameters": case.share_parameters,
        f"{case.method}.hidden_sizes": [16, 16],
        f"{case.method}.lr_actor": 1e-3,
        f"{case.method}.lr_critic": 1e-3,
    })
    mcfg = getattr(cfg, case.method)
    spec = parity_spec(case.action_kind)
    weights = maddpg_core.init_weights(spec, mcfg, seed)
    batches = [maddpg_batch(spec, 32, seed + 1 + k) for k in range(updates)]
    learner = registry.get("learner", case.method, backend)(spec, mcfg, weights)
    out: dict[str, np.ndarray] = {}
    obs = np.ascontiguousarray(batches[0]["obs"].swapaxes(0, 1))
    out["forward/actor"] = learner.policy.forward_numpy(obs)
    out.update({f"grad/{k}": v for k, v in learner.gradients(batches[0]).items()})
    for k, b in enumerate(batches):
        for m, v in learner.update(b).items():
            out[f"update_{k}/{m}"] = np.array(v)
    out.update({f"weights/{k}": v for k, v in learner.get_weights().items()})
    out.update({f"optimizer/{k}": v for k, v in learner.get_optimizer_state().items()})
    return out


def compare(results: dict[str, dict[str, np.ndarray]], atol: float = ATOL, rtol: float = RTOL) -> list[dict]:
    """Rows ``{quantity, backend, reference, max_abs, max_rel, ok}`` against the first backend."""
    backends = list(results)
    ref = backends[0]
    rows = []
    for other in backends[1:]:
        for key, a in results[ref].items():
            b = results[other].get(key)
            if b is None or np.shape(a) != np.shape(b):
                rows.append({"quantity": key, "backend": other, "reference": ref, "max_abs": np.inf,
                             "max_rel": np.inf, "ok": False})
                continue
            a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
            diff = np.abs(a64 - b64)
            rel = diff / np.maximum(np.abs(a64), 1e-12)
            ok = bool(np.all(diff <= atol + rtol * np.abs(a64)))
            rows.append({"quantity": key, "backend": other, "reference": ref,
                         "max_abs": float(diff.max(initial=0.0)), "max_rel": float(rel.max(initial=0.0)), "ok": ok})
    return rows
