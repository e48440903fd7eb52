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
    cols = [*PAIR_KEYS, "kappa0", "ratio", "r2"]
    res = runs.loc[runs.alpha == residual, cols]
    nores = runs.loc[runs.alpha == 0.0, cols]
    pairs = res.merge(nores, on=PAIR_KEYS, suffixes=("_res", "_nores"))
    pairs["kappa_gap"] = pairs.kappa0_nores / pairs.kappa0_res
    pairs["speedup"] = pairs.ratio_nores / pairs.ratio_res
    return pairs


def claim_values(pairs: pd.DataFrame, stable_ranks: pd.DataFrame) -> dict[str, float]:
    """Worst cases over every (seed, beta) pair, the residual R^2 at each beta, stable rank at beta=1."""
    values = {
        "kappa_res_max": pairs.kappa0_res.max(),
        "kappa_nores_min": pairs.kappa0_nores.min(),
        "kappa_gap_min": pairs.kappa_gap.min(),
        "ratio_res_max": pairs.ratio_res.max(),
        "ratio_nores_min": pairs.ratio_nores.min(),
        "speedup_min": pairs.speedup.min(),
    }
    for beta, r2 in pairs.groupby("beta").r2_res.min().items():
        values[f"r2_res_min_beta{beta:g}"] = r2
    at_one = stable_ranks.loc[stable_ranks.beta == 1.0, "stable_rank"]
    values["stable_rank_beta1"] = at_one.iloc[0] if len(at_one) else np.nan
    return {k: float(v) for k, v in values.items()}


def rate_correlation(runs: pd.DataFrame) -> float:
    """Spearman correlation of the fitted rate rho with 1/kappa(Z_0)^2 over finished runs."""
    done = runs[(runs.status == "finished") & np.isfinite(runs.rho)]
    if len(done) < 3:
        return float("nan")
    return float(stats.spearmanr(done.rho, 1 / done.kappa0**2).statistic)
