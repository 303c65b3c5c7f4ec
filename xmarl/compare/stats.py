"""Statistics of a comparison: point estimates with bootstrap confidence intervals, the
probability that one backend's run beats another's, performance profiles, and a test of
whether backends differ. Everything a library computes is left to it (scipy.stats).

* Interquartile mean (IQM): the mean of the middle 50% of runs (``scipy.stats.trim_mean`` with
  a quarter cut from each end), robust to one outlying seed (Agarwal et al., "Deep RL at the
  edge of the statistical precipice", NeurIPS 2021).
* 95% confidence intervals: percentile bootstrap over runs (``scipy.stats.bootstrap``,
  :data:`BOOTSTRAP_RESAMPLES` resamples, a fixed seed so that a report is reproducible).
* Probability of improvement ``P(X > Y)``: the chance that a run of one backend ends above a run
  of another (ties count half), the Mann-Whitney U statistic over ``n m``
  (``scipy.stats.mannwhitneyu``), with a bootstrap interval over both sets of runs; 0.5 means
  neither tends to be better (Agarwal et al. 2021, as in the standard protocol of Gorsane et
  al. 2022).
* Performance profile: for each threshold ``tau``, the fraction of runs whose final return is
  above it (the empirical survival function), with bootstrap bands.
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
                 seed: int = 0) -> tuple[Any, Any]:
    """Percentile bootstrap interval of ``stat`` over the first axis of ``values`` (runs), by
    ``scipy.stats.bootstrap``.

    ``values`` is ``[runs]`` or ``[runs, points]`` (then the interval is per point, returned
    as two arrays). One run, or runs that all agree, give a zero-width interval at the value.
    """
    from scipy.stats import bootstrap

    x = np.asarray(values, np.float64)
    if len(x) == 0:
        return float("nan"), float("nan")
    if len(x) == 1 or np.all(x == x[0]):
        point = stat(np.moveaxis(x, 0, -1), axis=-1)
        return (float(point), float(point)) if np.ndim(point) == 0 else (point, point)
    res = bootstrap((x,), stat, n_resamples=resamples, confidence_level=confidence, method="percentile",
                    axis=0, vectorized=True, rng=np.random.default_rng(seed))
    lo, hi = res.confidence_interval.low, res.confidence_interval.high
    if np.ndim(lo) == 0:
        return float(lo), float(hi)
    return np.asarray(lo), np.asarray(hi)


def _p_improvement(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """``P(X > Y)`` (ties half) of samples along ``axis`` (the U statistic over ``n m``)."""
    a, b = np.moveaxis(x, axis, -1)[..., :, None], np.moveaxis(y, axis, -1)[..., None, :]
    return ((a > b) + 0.5 * (a == b)).mean(axis=(-2, -1))


def probability_of_improvement(x: Sequence[float], y: Sequence[float], seed: int = 0) -> dict[str, Any]:
    """``{p, ci}``: the probability that a run of ``x`` ends above a run of ``y`` (ties count half),
    from ``scipy.stats.mannwhitneyu``'s U statistic, with a percentile bootstrap interval."""
    from scipy.stats import bootstrap, mannwhitneyu

    a, b = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if len(a) == 0 or len(b) == 0:
        return {"p": float("nan"), "ci": [float("nan"), float("nan")]}
    p = float(mannwhitneyu(a, b).statistic) / (len(a) * len(b))
    if len(a) < 2 or len(b) < 2:
        return {"p": p, "ci": [p, p]}
    res = bootstrap((a, b), _p_improvement, n_resamples=BOOTSTRAP_RESAMPLES, confidence_level=CONFIDENCE,
                    method="percentile", vectorized=True, rng=np.random.default_rng(seed))
    return {"p": p, "ci": [float(res.confidence_interval.low), float(res.confidence_interval.high)]}


def performance_profile(values: Sequence[float], taus: Sequence[float], seed: int = 0) -> dict[str, list[float]]:
    """``{tau, fraction, lo, hi}``: the fraction of runs whose final return is above each
    threshold ``tau``, with percentile bootstrap bands over runs."""
    x = np.asarray(values, np.float64)
    out: dict[str, list[float]] = {"tau": [float(t) for t in taus], "fraction": [], "lo": [], "hi": []}
    for tau in out["tau"]:
        def above(v: np.ndarray, axis: int = -1, tau: float = tau) -> np.ndarray:
            return (np.asarray(v) > tau).mean(axis=axis)

        out["fraction"].append(float(above(x)) if len(x) else float("nan"))
        lo, hi = bootstrap_ci(x, above, seed=seed)
        out["lo"].append(float(lo))
        out["hi"].append(float(hi))
    return out


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
