"""Statistics of a comparison: point estimates with bootstrap confidence intervals, and a test
of whether backends differ.

* Interquartile mean (IQM): the mean of the middle 50% of runs (``scipy.stats.trim_mean`` with
  a quarter cut from each end), robust to one outlying seed (Agarwal et al., "Deep RL at the
  edge of the statistical precipice", NeurIPS 2021).
* 95% confidence intervals: percentile bootstrap over runs (runs resampled with replacement,
  :data:`BOOTSTRAP_RESAMPLES` resamples, a fixed seed so that a report is reproducible).
* Verdict: a k-sample permutation test (exact when there are few enough arrangements) of the
  share of the final returns' variance that lies between backends,
  ``eta^2 = sum_g n_g (mean_g - mean)^2 / sum_i (x_i - mean)^2`` (rounded to 12 decimals, so
  that arrangements with the same groups tie exactly): its null hypothesis is that the
  backend labels are exchangeable, i.e. that every backend draws final returns from the same
  distribution. With two backends it is the two-sided test of the difference of means.
  Pairwise Welch's t-tests (Holm-adjusted) are reported beside it.

scipy is imported on first use.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import combinations
from typing import Any

import numpy as np

BOOTSTRAP_RESAMPLES = 2000
CONFIDENCE = 0.95
ALPHA = 0.05
PERMUTATION_RESAMPLES = 9999
TEST_NAME = "permutation test of the between-backend share of final-return variance (eta squared)"


def iqm(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Interquartile mean along ``axis`` (the plain mean for fewer than 4 values)."""
    from scipy.stats import trim_mean

    return trim_mean(np.asarray(x, np.float64), 0.25, axis=axis)


def mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.asarray(x, np.float64).mean(axis=axis)


def bootstrap_ci(values: Sequence[float] | np.ndarray, stat: Callable[..., np.ndarray] = mean,
                 confidence: float = CONFIDENCE, resamples: int = BOOTSTRAP_RESAMPLES,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of ``stat`` over the first axis of ``values`` (runs).

    ``values`` is ``[runs]`` or ``[runs, points]`` (then the interval is per point, returned
    as two arrays). One run gives a zero-width interval at its value.
    """
    x = np.asarray(values, np.float64)
    if len(x) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), size=(resamples, len(x)))
    stats = stat(np.moveaxis(x[idx], 1, -1), axis=-1)  # [resamples] or [resamples, points]
    lo, hi = np.quantile(stats, [(1 - confidence) / 2, (1 + confidence) / 2], axis=0)
    if np.ndim(lo) == 0:
        return float(lo), float(hi)
    return lo, hi


def describe(values: Sequence[float], seed: int = 0) -> dict[str, Any]:
    """``{n, mean, mean_ci, iqm, iqm_ci, std}`` of one group of final returns."""
    x = np.asarray(values, np.float64)
    return {"n": int(len(x)), "mean": float(x.mean()) if len(x) else float("nan"),
            "mean_ci": list(bootstrap_ci(x, mean, seed=seed)),
            "iqm": float(iqm(x)) if len(x) else float("nan"),
            "iqm_ci": list(bootstrap_ci(x, iqm, seed=seed)),
            "std": float(x.std(ddof=1)) if len(x) > 1 else float("nan")}


def eta_squared(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
    """Between-group sum of squares over the total sum of squares, rounded to 12 decimals
    (0 when every value is the same)."""
    everything = np.concatenate(samples, axis=axis)
    grand = everything.mean(axis=axis, keepdims=True)
    total = ((everything - grand) ** 2).sum(axis=axis)
    grand = np.squeeze(grand, axis=axis)
    between = sum(s.shape[axis] * (s.mean(axis=axis) - grand) ** 2 for s in samples)
    return np.round(np.divide(between, total, out=np.zeros_like(total), where=total > 0), 12)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (NaN stays NaN)."""
    p = np.asarray(pvalues, np.float64)
    out = np.full(len(p), np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    order = ok[np.argsort(p[ok])]
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p[i]))
        out[i] = running
    return out.tolist()


def backends_differ(groups: dict[str, Sequence[float]], alpha: float = ALPHA, seed: int = 0) -> dict[str, Any]:
    """Test whether final returns differ between backends (``{backend: [return per seed]}``).

    Returns ``{test, statistic, pvalue, alpha, differ, exact, verdict, pairwise}``; ``pairwise``
    lists Welch's t-tests per pair with Holm-adjusted p-values (``None`` where both groups have
    no variance or fewer than two runs).
    """
    from scipy import stats

    names = [b for b, v in groups.items() if len(v) > 0]
    samples = [np.asarray(groups[b], np.float64) for b in names]
    out: dict[str, Any] = {"test": TEST_NAME, "alpha": alpha, "backends": names}
    if len(samples) < 2:
        return {**out, "statistic": None, "pvalue": None, "differ": None, "exact": None, "pairwise": [],
                "verdict": "not tested: fewer than two backends have finished runs"}
    res = stats.permutation_test(samples, eta_squared, permutation_type="independent", vectorized=True,
                                 n_resamples=PERMUTATION_RESAMPLES, alternative="greater", rng=seed)
    p = float(res.pvalue)
    exact = len(res.null_distribution) < PERMUTATION_RESAMPLES
    differ = p < alpha
    sizes = "/".join(str(len(s)) for s in samples)
    effect = f"eta squared = {float(res.statistic):.2f}"
    if differ:
        verdict = f"backends differ: {TEST_NAME}, {effect}, p = {p:.4f} < {alpha} ({sizes} runs per backend)"
    else:
        verdict = (f"no detectable difference between backends: {TEST_NAME}, {effect}, p = {p:.4f} >= {alpha} "
                   f"({sizes} runs per backend; with few seeds only large differences are detectable)")
    pairs = []
    for (a, xa), (b, xb) in combinations(zip(names, samples), 2):
        t = pw = None
        if len(xa) > 1 and len(xb) > 1 and (xa.std() > 0 or xb.std() > 0):
            r = stats.ttest_ind(xa, xb, equal_var=False)
            t, pw = float(r.statistic), float(r.pvalue)
        pairs.append({"a": a, "b": b, "mean_diff": float(xa.mean() - xb.mean()), "t": t, "pvalue": pw})
    adjusted = holm([np.nan if q["pvalue"] is None else q["pvalue"] for q in pairs])
    for q, adj in zip(pairs, adjusted):
        q["pvalue_holm"] = None if np.isnan(adj) else adj
    return {**out, "statistic": float(res.statistic), "pvalue": p, "differ": differ, "exact": exact,
            "verdict": verdict, "pairwise": pairs}


def curve_band(steps_by_run: list[list[float]], values_by_run: list[list[float]],
               seed: int = 0) -> dict[str, list[float]]:
    """Mean and 95% bootstrap CI of the mean at each step that every run evaluated."""
    common = sorted(set.intersection(*(set(s) for s in steps_by_run))) if steps_by_run else []
    if not common:
        return {"steps": [], "mean": [], "lo": [], "hi": []}
    table = np.array([[dict(zip(s, v))[c] for c in common] for s, v in zip(steps_by_run, values_by_run)],
                     np.float64)  # [runs, points]
    lo, hi = bootstrap_ci(table, mean, seed=seed)
    return {"steps": [float(c) for c in common], "mean": table.mean(axis=0).tolist(),
            "lo": np.atleast_1d(lo).tolist(), "hi": np.atleast_1d(hi).tolist()}
