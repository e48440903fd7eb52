"""The numbers the claims are checked on: residual and plain runs paired by (seed, beta)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

PAIR_KEYS = ["seed", "beta", "layers"]


def paired_runs(runs: pd.DataFrame, residual: float = 1.0) -> pd.DataFrame:
    """One row per (seed, beta, layers): kappa0, ratio and r2 of the residual and plain runs.

    Columns get the suffixes ``_res`` (alpha = ``residual``) and ``_nores`` (alpha = 0), plus
    the gaps ``kappa_gap`` = kappa_nores / kappa_res and ``speedup`` = ratio_nores / ratio_res.
    """
    cols = [*PAIR_KEYS, "kappa0", "ratio", "r2", "rho"]
    res = runs.loc[runs.alpha == residual, cols]
    nores = runs.loc[runs.alpha == 0.0, cols]
    pairs = res.merge(nores, on=PAIR_KEYS, suffixes=("_res", "_nores"))
    pairs["kappa_gap"] = pairs.kappa0_nores / pairs.kappa0_res
    pairs["speedup"] = pairs.ratio_nores / pairs.ratio_res
    return pairs


def worst(values, how: str) -> float:
    """min or max of ``values`` that does not skip NaN (pandas' ``.min()`` does): NaN anywhere gives NaN.

    No values at all give NaN too (nothing was measured)."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return float("nan")
    return float(np.min(values) if how == "min" else np.max(values))


def falling_fit_r2(r2, rho) -> np.ndarray:
    """R^2 of each run's log-linear fit, -inf where the fitted rate rho is not positive.

    A straight line through the log-loss of a diverging or stalled run has a high R^2 too; linear
    *convergence* needs the loss to fall (rho > 0). NaN R^2 stays NaN."""
    r2, rho = np.asarray(r2, dtype=float), np.asarray(rho, dtype=float)
    return np.where(rho > 0, r2, np.where(np.isnan(r2), np.nan, -np.inf))


def claim_values(pairs: pd.DataFrame, stable_ranks: pd.DataFrame) -> dict[str, float]:
    """Worst cases over every (seed, beta) pair, the residual R^2 at each beta, stable rank at beta=1.

    Every worst case propagates NaN (a NaN run makes the value NaN, which never passes a claim).
    ``linear_fit_min_beta<b>``: the smallest R^2 at beta = b, -inf if a residual run's loss does not fall.
    """
    values = {
        "kappa_res_max": worst(pairs.kappa0_res, "max"),
        "kappa_nores_min": worst(pairs.kappa0_nores, "min"),
        "kappa_gap_min": worst(pairs.kappa_gap, "min"),
        "ratio_res_max": worst(pairs.ratio_res, "max"),
        "ratio_nores_min": worst(pairs.ratio_nores, "min"),
        "speedup_min": worst(pairs.speedup, "min"),
    }
    for beta, group in pairs.groupby("beta"):
        values[f"r2_res_min_beta{beta:g}"] = worst(group.r2_res, "min")
        if "rho_res" in group:
            values[f"rho_res_min_beta{beta:g}"] = worst(group.rho_res, "min")
            values[f"linear_fit_min_beta{beta:g}"] = worst(falling_fit_r2(group.r2_res, group.rho_res), "min")
    at_one = stable_ranks.loc[stable_ranks.beta == 1.0, "stable_rank"]
    values["stable_rank_beta1"] = at_one.iloc[0] if len(at_one) else np.nan
    return {k: float(v) for k, v in values.items()}


def r2_pass_rate(runs: pd.DataFrame, beta: float, threshold: float = 0.95, residual: float = 1.0) -> tuple[int, int]:
    """(runs whose residual fit at ``beta`` has R^2 > threshold and rho > 0, runs) over the grid's seeds."""
    rows = runs[(runs.alpha == residual) & (runs.beta == beta)]
    score = falling_fit_r2(rows.r2, rows.rho)
    return int(np.sum(score > threshold)), len(rows)


def rate_correlation(runs: pd.DataFrame) -> float:
    """Spearman correlation of the fitted rate rho with 1/kappa(Z_0)^2 over finished runs (exploratory)."""
    done = runs[(runs.status == "finished") & np.isfinite(runs.rho)]
    if len(done) < 3:
        return float("nan")
    return float(stats.spearmanr(done.rho, 1 / done.kappa0**2).statistic)


def residual_rate_correlation(runs: pd.DataFrame) -> float:
    """Spearman correlation of rho with 1/kappa(Z_0)^2 over the finished residual runs (alpha > 0).

    The theory's claim within the residual model: better conditioning, faster rate. Unlike
    :func:`rate_correlation` nothing is skipped: a NaN rho or kappa0 gives NaN, fewer than three runs NaN."""
    done = runs[(runs.status == "finished") & (runs.alpha > 0)]
    rho, kappa = done.rho.to_numpy(float), done.kappa0.to_numpy(float)
    if len(done) < 3 or not (np.isfinite(rho).all() and np.isfinite(kappa).all()):
        return float("nan")
    return float(stats.spearmanr(rho, 1 / kappa**2).statistic)


def depth_rates(runs: pd.DataFrame) -> pd.DataFrame:
    """The finished residual depth runs: layers, eta, kappa0, rho and rho / eta (the rate per unit step size)."""
    done = runs[(runs.status == "finished") & (runs.alpha > 0)]
    return done.assign(rho_per_eta=done.rho / done.eta)[["beta", "layers", "eta", "kappa0", "rho", "rho_per_eta"]]
