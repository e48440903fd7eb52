"""The Verdict of residual_convergence: the claims, their thresholds and when they apply.

Every value is a worst case over the (seed, beta) grid (``summary.claim_values``, NaN-propagating),
so one broken run fails the claim. The full table applies at ``cpu`` and ``paper`` with nN <= d;
``smoke`` checks its three quick claims only.
"""
from __future__ import annotations

import math

import pandas as pd

from shared.claims import ClaimBook
from shared.papers.residual_convergence.summary import r2_pass_rate, residual_rate_correlation


# Spearman(rho, 1/kappa(Z_0)^2) over the residual runs of the grid and the alpha sweep was
# 0.724, 0.850, 0.831, 0.724, 0.641 for seeds 0-4 at cpu: asserted at > 0.3 (2.1x margin).
RATE_SPEARMAN_MIN = 0.3

# R^2 > 0.95 at beta = 1000 did not hold for every cpu seed (0.953 with the default seed,
# 0.948 and 0.922 with two other seeds: 1 of the 3 cpu runs measured), so it is shown (INFO), not asserted.


def record_claims(book: ClaimBook, values: dict[str, float], *, in_regime: bool, betas, stable_rank_betas,
                  spearman: float = math.nan, runs: pd.DataFrame | None = None,
                  rate_runs: pd.DataFrame | None = None) -> ClaimBook:
    """Check the claims on ``values`` (from ``summary.claim_values``); ``runs`` (the grid's runs)
    gives the per-run pass counts shown with the beta = 1000 fit, ``rate_runs`` (the grid's and the
    alpha sweep's runs) the rate-conditioning correlation (N/A without them)."""
    scale = book.scale
    full, quick = in_regime and scale != "smoke", in_regime and scale == "smoke"
    if not in_regime:
        note = "not applicable: nN > d (sigma_min(Z) is then the d-th singular value)"
    else:
        note = "the full table needs the cpu budget" if scale == "smoke" else ""
    smoke_note = "smoke-only quick check (the full table applies)" if in_regime and not quick else note
    betas, stable_rank_betas = [float(b) for b in betas], [float(b) for b in stable_rank_betas]

    book.sanity("residual_conditioning", "residual fixes conditioning: kappa(Z_0) with the residual < 20",
               values.get("kappa_res_max"), "<", 20, applies=full, note=note)
    book.sanity("softmax_ill_conditioning", "softmax makes the no-residual output ill-conditioned: kappa(Z_0) > 100",
               values.get("kappa_nores_min"), ">", 100, applies=full, note=note)
    book.sanity("conditioning_gap", "conditioning gap kappa_nores / kappa_res > 30",
               values.get("kappa_gap_min"), ">", 30, applies=full, note=note)
    book.check("residual_converges", "residual converges: L(T)/L(0) < 1e-3",
               values.get("ratio_res_max"), "<", 1e-3, applies=full, note=note)
    book.check("residual_much_faster", "residual is much faster: ratio_nores / ratio_res > 100",
               values.get("speedup_min"), ">", 100, applies=full, note=note)
    book.check("linear_convergence",
               "convergence is linear: the loss falls (rho > 0) and R^2 of the log-linear fit > 0.95 "
               "(residual, beta = 1; -inf when a run's loss does not fall)",
               values.get("linear_fit_min_beta1"), ">", 0.95, applies=full and 1.0 in betas,
               note=note or ("" if 1.0 in betas else "beta = 1 is not in the grid"))
    book.sanity("softmax_rank_one", "softmax is near rank 1 at init: mean stable rank of S at beta = 1 < 1.05",
               values.get("stable_rank_beta1"), "<", 1.05, applies=full and 1.0 in stable_rank_betas,
               note=note or ("" if 1.0 in stable_rank_betas else "beta = 1 is not in stable_rank_betas"))
    if 100.0 in betas:   # held for seeds 0-4 at cpu (R^2 >= 0.99): a check
        book.check("linear_convergence_beta100",
                   "R^2 of the residual runs' fit at beta = 100 > 0.95, with a falling loss (rho > 0)",
                   values.get("linear_fit_min_beta100"), ">", 0.95, applies=full, note=note)
    if 1000.0 in betas:  # the seed rule may show it as INFO at cpu (shared/presets/residual_convergence.yaml)
        passed = "" if runs is None else "{}/{} residual runs of this grid pass; ".format(*r2_pass_rate(runs, 1000.0))
        book.check("linear_convergence_beta1000",
                   "R^2 of the residual runs' fit at beta = 1000 > 0.95, with a falling loss (rho > 0)",
                   values.get("linear_fit_min_beta1000"), ">", 0.95, applies=full,
                   note=note or (passed + "worst R^2 over the grid's seeds"))
    for beta in betas:
        if beta in (1.0, 100.0, 1000.0):
            continue
        book.info(f"linear_convergence_beta{beta:g}",  # never measured over seeds: shown only
                  f"R^2 of the residual runs' fit at beta = {beta:g} > 0.95 (shown)",
                  values.get(f"linear_fit_min_beta{beta:g}"))
    book.check("rate_follows_conditioning",
               f"the rate follows the conditioning: Spearman(rho, 1/kappa(Z_0)^2) over the residual runs "
               f"(alpha > 0) of the grid and the alpha sweep > {RATE_SPEARMAN_MIN}",
               residual_rate_correlation(rate_runs) if rate_runs is not None else math.nan, ">", RATE_SPEARMAN_MIN,
               applies=full and rate_runs is not None,
               note=note or ("" if rate_runs is not None else "no grid and alpha-sweep runs given"))
    book.check("smoke_residual_converges", "smoke: residual L(T)/L(0) < 0.05",
               values.get("ratio_res_max"), "<", 0.05, applies=quick, note=smoke_note)
    book.check("smoke_plain_stalls", "smoke: no-residual L(T)/L(0) > 0.3",
               values.get("ratio_nores_min"), ">", 0.3, applies=quick, note=smoke_note)
    book.sanity("smoke_conditioning_gap", "smoke: kappa_nores / kappa_res > 100",
               values.get("kappa_gap_min"), ">", 100, applies=quick, note=smoke_note)
    book.info("rate_spearman", "Spearman correlation of rho with 1/kappa(Z_0)^2 (exploratory)", spearman)
    return book
