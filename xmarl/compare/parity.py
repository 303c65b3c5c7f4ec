"""Parity: the same canonical weights and the same frozen batches, fed to every backend.

:func:`parity` builds each of a method's parity cases once in numpy, loads it into a fresh
learner in every backend and records, per backend:

* ``forward/policy``: ``learner.policy.forward_numpy(case.obs)`` at the initial weights (when
  the case gives ``obs``), plus ``forward/<name>`` for each array the case's ``probes``
  returns (e.g. a recurrent policy's logits, critic values, intermediate quantities);
* ``loss/<name>`` and ``grad/<param>``: ``learner.gradients(case.batches[0])`` at the initial
  weights (its ``loss/...`` entries are the losses, the rest gradients under canonical names);
* ``update_<k>/<metric>``: the metrics (losses) of update ``k`` on ``case.batches[k]``
  (``learner.update(batch)``, or the case's ``update`` function);
* ``weights/<param>`` and ``optimizer/<name>``: every weight (targets included) and the
  optimiser moments and step counts after the ``K = len(case.batches)`` updates.

Each quantity of each backend is compared with the first backend elementwise:
``|x - x_ref| <= atol + rtol * |x_ref|`` (:data:`ATOL`, :data:`RTOL` unless the case states
others). The report gives the largest absolute difference and the largest relative one,
``|x - x_ref| / max(|x_ref|, atol)`` (entries smaller than ``atol`` count as ``atol``, so that
values near zero do not inflate it). A case also fails when it proves nothing: gradients that
are all zero, or weights that did not move in ``K`` updates.

**The per-method hook.** A method takes part by registering one function under
``("parity", <method name>)`` in :mod:`xmarl.registry`::

    def parity_cases(method: str, seed: int = 0, updates: int = 3) -> list[ParityCase]: ...

``method`` is the registered name being checked (several methods may share one function): use
it for the config section and as the prefix of every case name. Each :class:`ParityCase` is
plain numpy, built deterministically from ``seed``: the method's validated config section
(:func:`xmarl.compare.reference.data.method_config` gives one with small networks), an
:class:`~xmarl.core.spaces.AgentSpec` (:func:`~xmarl.compare.reference.data.parity_spec` gives
heterogeneous ones, so that padding is exercised), canonical initial weights (the method
core's ``init_weights``), ``updates`` frozen batches in exactly the layout the method's
``Learner.update`` takes (with any random noise the update needs drawn in numpy, as the
method core's ``prepare_batch`` does), and the observations for the policy's forward pass.
The learner is built as ``registry.get("learner", method, backend)(case.spec, case.config,
case.weights)``, which is how the trainer builds it. The built-in methods' cases live in
:mod:`xmarl.compare.reference` (beside the numpy references they are checked against), e.g.
:mod:`xmarl.compare.reference.maddpg`; a plugin registers its own.

A method whose update is more than ``learner.update(batch)`` (a target copy every n updates)
or whose policy's forward takes more than observations sets the case's ``update`` and
``probes`` (and ``obs=None``), e.g.::

    def parity_cases(method: str, seed: int = 0, updates: int = 3) -> list:
        out = []
        for recurrent in (False, True):
            cfg = method_config(method, {"recurrent": recurrent, "hidden_sizes": [16, 16]})
            spec = parity_spec("discrete")
            batches = [...]  # `updates` frozen batches, from np.random.default_rng(seed + 1 + k)

            def update(learner, batch, k, cfg=cfg):
                metrics = learner.update(batch)
                METHOD.after_update(learner, cfg, k + 1)  # as the trainer does after update k
                return metrics

            out.append(ParityCase(
                f"{method}-{'gru' if recurrent else 'mlp'}", spec, cfg, METHOD.init_weights(spec, cfg, seed),
                batches, obs=None, probes=lambda learner, b=batches[0]: learner.diagnostics(b), update=update))
        return out

    registry.add("parity", "my_method", parity_cases)

``xmarl parity`` and ``tests/test_parity.py`` pick the method up from then on.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xmarl import registry
from xmarl.core.spaces import AgentSpec
from xmarl.errors import RegistryError, XmarlError, did_you_mean

#: ``|a - b| <= ATOL + RTOL * |b|``, elementwise, for every quantity (unless a case states its own)
ATOL = 1e-5
RTOL = 1e-5

#: registry kind of the per-method hook
HOOK = "parity"

#: default order of backends (the first installed one is the reference); others follow by name
PREFERRED = ("torch", "tensorflow", "mindspore")

#: quantity groups of the report, in order: a quantity's group is the part of its name before '/'
GROUPS = ("forward", "loss", "grad", "update", "weights", "optimizer")


@dataclass
class ParityCase:
    """One parity scenario of a method: everything every backend is fed, in numpy.

    ``name``: unique within the method (``"maddpg-discrete-shared"``). ``spec``: the task's
    shapes. ``config``: the method's validated config section (e.g. ``MADDPGConfig``).
    ``weights``: canonical initial weights. ``batches``: one frozen batch per update, in the
    layout ``Learner.update`` takes; ``Learner.gradients`` is taken on ``batches[0]``.
    ``obs``: ``[E, A, obs_dim]`` observations for ``learner.policy.forward_numpy(obs)``, or
    None when the policy's forward takes more (then give it through ``probes``).
    ``probes``: optional, called with the freshly built learner before any update, returns
    more ``{name: array}`` to compare (recorded as ``forward/<name>``; e.g. a recurrent
    policy's logits, critic values, messages). ``update``: optional
    ``update(learner, batch, k) -> metrics`` for update ``k`` (0-based) when one update is more
    than ``learner.update(batch)``, e.g. a target copy every n updates as the trainer does it.
    ``atol``/``rtol``: the tolerance this case is held to.
    """

    name: str
    spec: AgentSpec
    config: Any
    weights: dict[str, np.ndarray]
    batches: list[dict[str, np.ndarray]]
    obs: np.ndarray | None
    probes: Callable[[Any], dict[str, np.ndarray]] | None = None
    update: Callable[[Any, dict[str, np.ndarray], int], dict[str, float]] | None = None
    atol: float = ATOL
    rtol: float = RTOL


# -- running and comparing -----------------------------------------------------------------------

def hook(method: str) -> Callable[..., list[ParityCase]] | None:
    """``method``'s registered ``parity_cases`` function, or None when it has none."""
    import xmarl.compare.reference  # noqa: F401  (registers the built-in methods' cases)

    registry.get("method", method)  # unknown method -> closest name
    return registry.find(HOOK, method)


def parity_methods(backends: Sequence[str] | None = None) -> list[str]:
    """Registered methods with parity cases (and, when ``backends`` is given, with a learner in
    each of them; this imports those backends)."""
    found = [m for m in registry.names("method") if hook(m) is not None]
    if backends is not None:
        found = [m for m in found if all(m in registry.names("learner", b) for b in backends)]
    return found


def cases(method: str, seed: int = 0, updates: int = 3) -> list[ParityCase]:
    """The parity cases of ``method``; a one-line error when it registered none."""
    fn = hook(method)
    if fn is None:
        raise XmarlError(f"method '{method}' has no parity cases: register parity_cases(method, seed, updates) -> "
                         f"list[ParityCase] as registry.add('{HOOK}', '{method}', ...) (see xmarl.compare.parity)")
    made = list(fn(method, seed=seed, updates=updates))
    names = [c.name for c in made]
    if not made or len(set(names)) != len(names):
        raise XmarlError(f"{method}'s parity cases must be at least one, with unique names, got {names}")
    return made


def _copy(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.array(v, copy=True) for k, v in arrays.items()}


def run_case(backend: str, method: str, case: ParityCase) -> dict[str, np.ndarray]:
    """Every parity quantity of ``case`` in ``backend``, as flat ``{name: array}``."""
    learner = registry.get("learner", method, backend)(case.spec, case.config, _copy(case.weights))
    out: dict[str, np.ndarray] = {}
    if case.obs is not None:
        out["forward/policy"] = np.asarray(learner.policy.forward_numpy(case.obs.copy())[0])
    if case.probes is not None:
        out.update({f"forward/{k}": np.asarray(v) for k, v in case.probes(learner).items()})
    for k, v in learner.gradients(_copy(case.batches[0])).items():
        out[k if k.startswith("loss/") else f"grad/{k}"] = np.asarray(v)
    for k, b in enumerate(case.batches):
        metrics = learner.update(_copy(b)) if case.update is None else case.update(learner, _copy(b), k)
        for m, v in metrics.items():
            out[f"update_{k}/{m}"] = np.array(v)
    out.update({f"weights/{k}": v for k, v in learner.get_weights().items()})
    out.update({f"optimizer/{k}": v for k, v in learner.get_optimizer_state().items()})
    return out


def group_of(quantity: str) -> str:
    """Report group of a quantity name (``update_2/critic_loss`` -> ``update``)."""
    head = quantity.split("/", 1)[0]
    return "update" if head.startswith("update_") else head


def compare_quantities(results: dict[str, dict[str, np.ndarray]], atol: float = ATOL,
                       rtol: float = RTOL) -> list[dict[str, Any]]:
    """Rows ``{quantity, backend, reference, max_abs, max_rel, ok}`` of every backend against
    the first one in ``results`` (``{backend: {quantity: array}}``)."""
    backends = list(results)
    ref = backends[0]
    rows = []
    for other in backends[1:]:
        for key in sorted(set(results[ref]) | set(results[other])):
            a, b = results[ref].get(key), results[other].get(key)
            row: dict[str, Any] = {"quantity": key, "backend": other, "reference": ref}
            if a is None or b is None or np.shape(a) != np.shape(b):
                why = (f"missing in {ref}" if a is None else f"missing in {other}" if b is None
                       else f"shape {np.shape(b)} != {np.shape(a)}")
                rows.append({**row, "max_abs": float("inf"), "max_rel": float("inf"), "ok": False, "note": why})
                continue
            a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
            diff = np.abs(a64 - b64)
            diff = np.where(np.isnan(a64) & np.isnan(b64), 0.0, diff)
            rel = diff / np.maximum(np.abs(a64), atol)
            ok = bool(np.all(diff <= atol + rtol * np.abs(a64)))  # NaN on one side only: fails
            rows.append({**row, "max_abs": float(np.nan_to_num(diff, nan=np.inf).max(initial=0.0)),
                         "max_rel": float(np.nan_to_num(rel, nan=np.inf).max(initial=0.0)), "ok": ok})
    return rows


def sanity_rows(backend: str, case: ParityCase, result: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """Checks that a case tests something: some gradient is non-zero and the updates moved
    some weight (equal numbers from a learner that does nothing would pass trivially)."""
    grads = [v for k, v in result.items() if k.startswith("grad/")]
    moved = [float(np.abs(result[f"weights/{k}"] - w).max(initial=0.0))
             for k, w in case.weights.items() if f"weights/{k}" in result]
    return [
        {"quantity": "sanity/gradients_nonzero", "backend": backend, "reference": "-", "max_abs": float("nan"),
         "max_rel": float("nan"), "ok": any(np.abs(g).max(initial=0.0) > 0 for g in grads)},
        {"quantity": "sanity/weights_moved", "backend": backend, "reference": "-",
         "max_abs": max(moved, default=0.0), "max_rel": float("nan"), "ok": max(moved, default=0.0) > 0},
    ]


@dataclass
class ParityReport:
    """Result of :func:`parity`: one row per (method, case, backend, quantity).

    ``results[method][case][backend]`` holds the raw quantities; ``rows`` the comparisons
    (see :func:`compare_quantities`) and sanity checks; ``ok`` is True when every row passes.
    """

    backends: list[str]
    rows: list[dict[str, Any]]
    tolerances: dict[str, dict[str, float]]  # case name -> {"atol", "rtol"}
    results: dict[str, dict[str, dict[str, dict[str, np.ndarray]]]] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return bool(self.rows) and all(r["ok"] for r in self.rows)

    @property
    def failures(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if not r["ok"]]

    def group_rows(self) -> list[dict[str, Any]]:
        """One row per (method, case, backend, group): the largest differences and pass/fail."""
        out: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        for r in self.rows:
            group = group_of(r["quantity"])
            key = (r["method"], r["case"], r["backend"], group)
            g = out.setdefault(key, {"method": r["method"], "case": r["case"], "backend": r["backend"],
                                     "reference": r["reference"], "group": group, "quantities": 0,
                                     "max_abs": float("nan"), "max_rel": float("nan"), "ok": True})
            g["quantities"] += 1
            for m in ("max_abs", "max_rel"):
                if not np.isnan(r[m]):
                    g[m] = r[m] if np.isnan(g[m]) else max(g[m], r[m])
            g["ok"] = g["ok"] and r["ok"]
        order = {g: i for i, g in enumerate(GROUPS + ("sanity",))}
        cases = {c: i for i, c in enumerate(self.tolerances)}
        return sorted(out.values(), key=lambda g: (cases[g["case"]], self.backends.index(g["backend"]),
                                                   order.get(g["group"], 99)))

    def table(self) -> str:
        """The grouped rows as a Markdown table, with the tolerance of each case."""
        lines = ["| case | backend vs | quantity | n | max abs diff | max rel diff | tolerance | result |",
                 "|---|---|---|---:|---:|---:|---|---|"]
        for g in self.group_rows():
            tol = self.tolerances[g["case"]]
            tol_s = "-" if g["group"] == "sanity" else f"{tol['atol']:.0e} + {tol['rtol']:.0e}·|ref|"
            vs = g["backend"] if g["reference"] == "-" else f"{g['backend']} vs {g['reference']}"
            lines.append(f"| {g['case']} | {vs} | {g['group']} | {g['quantities']} | {_num(g['max_abs'])} | "
                         f"{_num(g['max_rel'])} | {tol_s} | {'pass' if g['ok'] else 'FAIL'} |")
        return "\n".join(lines)

    def summary(self) -> str:
        """One line: PASS or FAIL with counts."""
        n_cases = len(self.tolerances)
        if self.ok:
            return f"parity PASS: {len(self.rows)} checks, {n_cases} cases, backends {', '.join(self.backends)}"
        bad = self.failures
        first = ", ".join(f"{r['case']}/{r['backend']}/{r['quantity']}" for r in bad[:3])
        return f"parity FAIL: {len(bad)} of {len(self.rows)} checks outside tolerance or trivial ({first}, ...)"

    def to_json(self) -> str:
        """The rows (every quantity) and tolerances as JSON (infinities as strings)."""
        def clean(v: Any) -> Any:
            return v if not isinstance(v, float) or np.isfinite(v) else str(v)

        return json.dumps({"ok": self.ok, "backends": self.backends, "tolerances": self.tolerances,
                           "rows": [{k: clean(v) for k, v in r.items()} for r in self.rows]}, indent=1)


def _num(x: float) -> str:
    return "-" if np.isnan(x) else f"{x:.2e}"


def installed_backends() -> list[str]:
    """Installed backends, torch, tensorflow and mindspore first, then others by name."""
    names = [b for b in registry.backends() if registry.backend_installed(b)]
    return sorted(names, key=lambda b: (PREFERRED.index(b) if b in PREFERRED else len(PREFERRED), b))


def check_backends(backends: Sequence[str]) -> list[str]:
    """``backends`` without repeats; one-line errors for unknown names and missing frameworks."""
    known = registry.backends()
    out = []
    for b in backends:
        if b not in known:
            raise RegistryError(f"unknown backend '{b}'{did_you_mean(b, known)} (valid: {', '.join(known)})")
        if not registry.backend_installed(b):
            registry.load_backend(b)  # raises the one-line "pip install 'xmarl[...]'" error
        if b not in out:
            out.append(b)
    return out


def parity(
    method: str | Sequence[str] | None = None,
    backends: Sequence[str] | None = None,
    *,
    case: str | None = None,
    updates: int = 3,
    seed: int = 0,
    atol: float | None = None,
    rtol: float | None = None,
    out: str | os.PathLike[str] | None = None,
) -> ParityReport:
    """Feed one set of canonical weights and frozen batches to every backend and compare.

    ``method``: a name, several, or None for every method whose core has the parity hook
    and that has a learner in every chosen backend.
    ``backends``: default every installed backend; the first is the reference. ``case``:
    only cases whose name contains this text. ``updates``: K, the updates before weights are
    compared. ``atol``/``rtol``: override every case's tolerance. ``out``: also write the
    report as JSON (every quantity) to this path, atomically. See the module docstring.
    """
    from xmarl.files import atomic_write_text

    if updates < 1:
        raise XmarlError(f"updates={updates}: parity needs at least one update (weights after K >= 1 updates)")
    methods = [method] if isinstance(method, str) else list(method or [])
    for m in methods:
        registry.get("method", m)  # unknown method -> closest name
    chosen = check_backends(installed_backends() if backends is None else backends)
    if method is None:
        methods = parity_methods(chosen)
    if len(chosen) < 2:
        missing = [b for b in registry.backends() if b not in chosen]
        raise XmarlError(f"parity needs at least two backends, got {chosen}: install another, e.g. "
                         f"pip install 'xmarl[{missing[0] if missing else 'torch'}]'")
    built: dict[str, list[ParityCase]] = {}
    seen: set[str] = set()
    for m in methods:
        for b in chosen:
            registry.get("learner", m, b)  # a backend without the method fails before any work
        picked = [c for c in cases(m, seed=seed, updates=updates) if case is None or case in c.name]
        if not picked:
            names = [c.name for c in cases(m, seed=seed, updates=updates)]
            raise XmarlError(f"no {m} parity case matches '{case}' (cases: {', '.join(names)})")
        clash = seen & {c.name for c in picked}
        if clash:
            raise XmarlError(f"parity case names must be unique across methods; {m} repeats {sorted(clash)}")
        seen |= {c.name for c in picked}
        built[m] = picked
    rows: list[dict[str, Any]] = []
    tolerances: dict[str, dict[str, float]] = {}
    results: dict[str, dict[str, dict[str, dict[str, np.ndarray]]]] = {}
    for m, made in built.items():
        for c in made:
            tol = {"atol": c.atol if atol is None else atol, "rtol": c.rtol if rtol is None else rtol}
            tolerances[c.name] = tol
            per_backend = {b: run_case(b, m, c) for b in chosen}
            results.setdefault(m, {})[c.name] = per_backend
            found = compare_quantities(per_backend, **tol)
            for b in chosen:
                found += sanity_rows(b, c, per_backend[b])
            rows += [{"method": m, "case": c.name, **r} for r in found]
    report = ParityReport(chosen, rows, tolerances, results)
    if out is not None:
        atomic_write_text(out, report.to_json())
    return report


__all__ = ["ParityCase", "ParityReport", "parity", "run_case", "compare_quantities", "cases", "parity_methods",
           "ATOL", "RTOL"]
