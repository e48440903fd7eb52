"""generalized_nc: the claims of the Verdict cell, computed here so that tests can feed them broken inputs.

``results`` holds the tables the notebook builds:
- ``closed``: closed_forms() (case, measured, exact, error);
- ``codes``: solve_codes() (K, d, rho);
- ``ufm``: final rows of the spherical-UFM claim runs (inv_tau, seed, gnc1, gnc2, gnc3, ratio), with
  ``ufm_K``/``ufm_steps`` the setting;
- ``heat``: the UFM heat map (K, d, inv_tau, ratio);
- ``mnist``: final rows of MNIST d = 3 per inv_tau (gnc1, gnc2, gnc3, ratio, train_acc, test_acc);
- ``net``: final rows of the K > d + 1 network experiment per inv_tau (test_acc, ncc_test, ratio, ...).
"""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd

from shared.claims import ClaimBook

CIRCLE_10 = 1 - math.cos(math.radians(36))
OFFICIAL_RHO_100_10 = 0.61416
PAPER_CIFAR100 = {"acc_tau1": 0.420, "acc_tau7": 0.7414, "gnc2_tau7": 0.591}


def worst(values, how: str) -> float:
    """max or min that propagates NaN (an empty input is NaN)."""
    arr = np.asarray(list(values), dtype=float)
    if arr.size == 0 or np.isnan(arr).any():
        return math.nan
    return float(arr.max() if how == "max" else arr.min())


def _rho(codes: pd.DataFrame, K: int, d: int) -> float:
    hit = codes[(codes.K == K) & (codes.d == d)]
    return float(hit.rho.iloc[0]) if len(hit) else math.nan


def _at(final: pd.DataFrame, inv_tau: float, column: str) -> pd.Series:
    return final.loc[final.inv_tau == inv_tau].sort_values("seed")[column] if "seed" in final else \
        final.loc[final.inv_tau == inv_tau, column]


def small_tau(final: pd.DataFrame, prefer: float = 5) -> float:
    """The small temperature a claim looks at: inv_tau = ``prefer`` if run, else the largest inv_tau."""
    taus = sorted(final.inv_tau.unique())
    return prefer if prefer in taus else taus[-1]


def per_seed_gap(final: pd.DataFrame, column: str, hi: float, lo: float = 1) -> float:
    """min over seeds of column(inv_tau = hi) - column(inv_tau = lo) (NaN if any is NaN or missing)."""
    a = final[final.inv_tau == hi].set_index("seed")[column]
    b = final[final.inv_tau == lo].set_index("seed")[column]
    gaps = (a - b).reindex(sorted(set(a.index) | set(b.index)))
    return worst(gaps.to_numpy(), "min")


def record_claims(book: ClaimBook, results: dict, cfg: SimpleNamespace) -> ClaimBook:
    """Record every claim of the paper in ``book``."""
    full = cfg.scale != "smoke"
    codes = results["codes"]

    # -- the science: exact GNC2 and the softmax-code solver
    book.sanity("gnc2_exact", "GNC2 (NNLS) matches the closed forms: K points on a circle 1 - cos(2pi/K), "
               "simplex K/(K-1) (max abs error, rounded to 1e-12)", round(worst(results["closed"].error, "max"), 12),
               "<=", 1e-6)
    solved_10_2 = bool(((codes.K == 10) & (codes.d == 2)).any())
    book.sanity("code_circle", "the solver finds the (10, 2) softmax code: |rho* - (1 - cos 36 deg)|",
               abs(_rho(codes, 10, 2) - CIRCLE_10), "<=", 1e-4, applies=solved_10_2,
               note="" if solved_10_2 else "(10, 2) is not solved at this scale")
    book.sanity("code_10_3", "the solver's rho*(10, 3) (full setting 0.5827)", _rho(codes, 10, 3), ">=", 0.55)
    rho_100 = _rho(codes, 100, 10)
    book.sanity("code_100_10", f"rho*(100, 10) >= 0.99 x the official optimum {OFFICIAL_RHO_100_10}",
               rho_100, ">=", 0.608, applies=full, note="" if full else "(100, 10) is solved at cpu scale")

    # -- A. spherical UFM
    ufm = results["ufm"]
    small = small_tau(ufm, prefer=7)
    big = results["ufm_K"] >= 100  # the paper's K = 100, d = 10 (cpu, paper); smoke runs (20, 3)
    setting = f"UFM ({results['ufm_K']}, {results['ufm_d']}), {results['ufm_steps']} steps"
    shortfall = 1 - _at(ufm, small, "ratio")
    book.check("ufm_code_reached", f"{setting}, tau = 1/{small:g}: worst seed's 1 - GNC2/rho*",
               worst(shortfall, "max"), "<=", 0.08 if big else 0.30,
               note="0.08 at (100, 10) (2x over seeds 0-2 at 6,000 steps); smoke's (20, 3) at 1,200 steps: 0.30")
    book.check("ufm_tau1_short", f"{setting}, tau = 1 stays short of the code: best seed's 1 - GNC2/rho*",
               worst(1 - _at(ufm, 1, "ratio"), "min"), ">=", 0.10)
    book.check("ufm_tau_gap", f"{setting}: GNC2/rho* at tau = 1/{small:g} minus at tau = 1, worst seed",
               per_seed_gap(ufm, "ratio", small), ">=", 0.10)
    book.check("ufm_gnc1", f"{setting}, tau = 1/{small:g}: GNC1 (worst seed)", worst(_at(ufm, small, "gnc1"), "max"),
               "<=", 1e-5, applies=big, note="" if big else "needs the (100, 10) setting of the cpu scale")
    book.check("ufm_gnc3", f"{setting}, tau = 1/{small:g}: GNC3 (worst seed)", worst(_at(ufm, small, "gnc3"), "max"),
               "<=", 1e-5, applies=big, note="" if big else "needs the (100, 10) setting of the cpu scale")
    heat = results["heat"]
    for inv_tau in sorted(heat.inv_tau.unique()):
        cells = heat[heat.inv_tau == inv_tau]
        book.info(f"heat_ratio_invtau{inv_tau:g}", f"UFM heat map, tau = 1/{inv_tau:g}: GNC2/rho* min over "
                  f"{len(cells)} (K, d) cells", worst(cells.ratio, "min"))

    # -- B. MNIST, K = 10, d = 3
    mnist = results["mnist"]
    m_small = small_tau(mnist, prefer=5)
    note = "" if full else "needs the cpu budget (40 epochs)"
    book.check("mnist_code_reached", f"MNIST d = 3, tau = 1/{m_small:g}: 1 - GNC2/rho*(10, 3)",
               worst(1 - _at(mnist, m_small, "ratio"), "max"), "<=", 0.08, applies=full, note=note)
    book.check("mnist_tau_spreads", f"MNIST d = 3: GNC2(tau = 1/{m_small:g}) - GNC2(tau = 1)",
               worst(_at(mnist, m_small, "gnc2").to_numpy() - _at(mnist, 1, "gnc2").to_numpy(), "min"),
               ">=", 0.045, applies=full, note=note)
    collapse = mnist[mnist.inv_tau.isin([1, m_small])]
    book.check("mnist_train_acc", f"MNIST d = 3, tau in {{1, 1/{m_small:g}}}: train accuracy (min)",
               worst(collapse.train_acc, "min"), ">=", 0.99, applies=full, note=note)
    book.check("mnist_gnc1", "MNIST d = 3: GNC1 of the train features (max)", worst(collapse.gnc1, "max"),
               "<=", 0.02, applies=full, note=note)
    book.check("mnist_gnc3", "MNIST d = 3: GNC3 (max)", worst(collapse.gnc3, "max"), "<=", 5e-4,
               applies=full, note=note)
    book.info("mnist_acc_gap", f"MNIST d = 3: test acc(tau = 1/{m_small:g}) - test acc(tau = 1) "
              "(not robust at K = 10: shown, not asserted)",
              worst(_at(mnist, m_small, "test_acc").to_numpy() - _at(mnist, 1, "test_acc").to_numpy(), "min"),
              note="cpu seeds 0-4: 0.006-0.022, positive for 5/5 but within the +-1 point sampling error")

    # -- C. K > d + 1 networks (two-digit MNIST at cpu; CIFAR-100 / Tiny-ImageNet at paper)
    net = results["net"]
    n_small = small_tau(net, prefer=5)
    acc_gap = worst(_at(net, n_small, "test_acc").to_numpy() - _at(net, 1, "test_acc").to_numpy(), "min")
    book.check("net_tau_generalizes", f"{results['net_name']}: test acc(tau = 1/{n_small:g}) - test acc(tau = 1)",
               acc_gap, ">=", 0.08, applies=full, note=note)
    for inv_tau in sorted(net.inv_tau.unique()):
        row = net[net.inv_tau == inv_tau].iloc[0]
        book.info(f"net_ratio_invtau{inv_tau:g}", f"{results['net_name']}, tau = 1/{inv_tau:g}: GNC2/rho*", row.ratio)
        book.info(f"net_ncc_invtau{inv_tau:g}", f"{results['net_name']}, tau = 1/{inv_tau:g}: NCC test accuracy",
                  row.ncc_test)
    if cfg.scale == "paper" and results["net_name"].startswith("CIFAR-100") and 7 in set(net.inv_tau):
        book.info("paper_acc_tau1", f"test acc at tau = 1 (paper {PAPER_CIFAR100['acc_tau1']})",
                  float(net[net.inv_tau == 1].test_acc.iloc[0]))
        book.info("paper_acc_tau7", f"test acc at tau = 1/7 (paper {PAPER_CIFAR100['acc_tau7']})",
                  float(net[net.inv_tau == 7].test_acc.iloc[0]))
        book.info("paper_gnc2_tau7", f"GNC2 at tau = 1/7 (paper {PAPER_CIFAR100['gnc2_tau7']})",
                  float(net[net.inv_tau == 7].gnc2.iloc[0]))
    return book
