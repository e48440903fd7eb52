"""nc_transfer: a sabotage test for every checked claim (synthetic tables shaped like the brief's measurements)."""
import math

import pandas as pd
import pytest

from shared.claims import ClaimBook
from shared.papers.nc_transfer.verdict import record_claims

# variant: (source NC1, downstream NC1, probe acc), seed 0; seed 1 shifts them a little
BRIEF = {
    "random": (0.64, 1.15, 0.81), "ce_3ep": (0.077, 1.8, 0.895), "ce": (0.043, 1.6, 0.887),
    "ce_wd5e-3": (0.010, 3.5, 0.893), "ce_wd2e-2": (0.0035, 60.0, 0.66), "ce_ls0.3": (0.028, 0.9, 0.916),
    "ce_head": (0.065, 2.0, 0.890), "ce_aug": (0.073, 1.2, 0.922), "ce_head_aug": (0.095, 1.6, 0.918),
}
FT = {"lp": (645, 0.70, 0.80, 1.5, 1.7), "layer": (66565, 0.77, 0.89, 0.3, 0.32),
      "scl": (264325, 0.79, 0.91, 0.18, 0.2), "full": (733189, 0.81, 0.912, 0.12, 0.14)}


def probes_table() -> pd.DataFrame:
    rows = []
    for seed in (0, 1):
        for v, (s, d, a) in BRIEF.items():
            rows.append({"variant": v, "seed": seed, "source_nc1": s * (1 + 0.05 * seed), "downstream_nc1": d * (1 + 0.1 * seed),
                         "probe_acc": a - 0.003 * seed})
    return pd.DataFrame(rows)


def ft_table() -> pd.DataFrame:
    rows = []
    for seed in (0, 1):
        for m, (p, a10, a50, n10, n50) in FT.items():
            rows.append({"encoder": "ce", "seed": seed, "n": 10, "method": m, "params": p, "test_acc": a10 - 0.01 * seed, "train_nc1": n10})
            rows.append({"encoder": "ce", "seed": seed, "n": 50, "method": m, "params": p, "test_acc": a50 - 0.01 * seed, "train_nc1": n50})
    return pd.DataFrame(rows)


def verdicts(probes=None, ft=None, scale="cpu") -> dict[str, str]:
    book = record_claims(ClaimBook("nc_transfer", scale=scale), probes_table() if probes is None else probes,
                         ft_table() if ft is None else ft, scale)
    return {c.name: c.verdict for c in book.claims}


def test_the_brief_values_pass_every_check():
    v = verdicts(scale="paper")
    checked = ["ce_beats_random", "downstream_nc1_predicts_transfer", "overcollapse_lowest_source_nc1",
               "overcollapse_hurts_transfer", "aug_keeps_variability", "aug_transfers_better",
               "ft_collapse_goes_with_acc", "scl_beats_lp", "scl_on_par_with_full"]
    assert {k: v[k] for k in checked} == {k: "PASS" for k in checked}
    assert v["scl_overfits_less"] == "INFO" and v["scl_param_saving"] == "INFO"


def test_a_claim_that_fails_for_some_seed_is_info_at_cpu():
    book = record_claims(ClaimBook("nc_transfer", scale="cpu"), probes_table(), ft_table(), "cpu")
    claim = next(c for c in book.claims if c.name == "aug_transfers_better")
    assert claim.verdict == "INFO" and "3/5" in claim.note


def test_smoke_asserts_only_ce_beats_random():
    p = probes_table()
    p = p[p.variant.isin(["random", "ce", "ce_wd2e-2", "ce_aug"]) & (p.seed == 0)]
    ft = ft_table()
    v = verdicts(p, ft[ft.method.isin(["lp", "scl"]) & (ft.n == 10) & (ft.seed == 0)], "smoke")
    assert v["ce_beats_random"] == "PASS"
    assert all(v[k] == "N/A" for k in ["downstream_nc1_predicts_transfer", "overcollapse_hurts_transfer",
                                        "ft_collapse_goes_with_acc", "scl_beats_lp", "scl_on_par_with_full"])


def _set(df, mask, **values):
    df = df.copy()
    for k, val in values.items():
        df.loc[mask, k] = val
    return df


def test_sabotage_ce_beats_random():
    p = probes_table()
    untrained = _set(p, p.variant == "ce", probe_acc=p[p.variant == "random"].probe_acc.to_numpy())
    assert verdicts(untrained)["ce_beats_random"] == "FAIL"
    assert verdicts(_set(p, p.variant == "ce", probe_acc=math.nan))["ce_beats_random"] == "FAIL"


def test_sabotage_downstream_nc1_predicts_transfer():
    p = probes_table()
    pre = p.variant != "random"
    # shuffled downstream labels: NC1 no longer tracks accuracy (here it rises with it)
    broken = _set(p, pre, downstream_nc1=p[pre].probe_acc.rank().to_numpy())
    assert verdicts(broken)["downstream_nc1_predicts_transfer"] == "FAIL"
    assert verdicts(_set(p, p.index == 3, downstream_nc1=math.nan))["downstream_nc1_predicts_transfer"] == "FAIL"


def _swap(p, a, b, cols):
    p = p.copy()
    ia, ib = p.variant == a, p.variant == b
    for c in cols:
        va, vb = p.loc[ia, c].to_numpy(), p.loc[ib, c].to_numpy()
        p.loc[ia, c], p.loc[ib, c] = vb, va
    return p


@pytest.mark.sabotage("overcollapse_lowest_source_nc1", "overcollapse_hurts_transfer")
def test_sabotage_overcollapse():
    swapped = _swap(probes_table(), "ce_wd2e-2", "ce", ["source_nc1", "probe_acc"])
    v = verdicts(swapped)
    assert v["overcollapse_lowest_source_nc1"] == "FAIL" and v["overcollapse_hurts_transfer"] == "FAIL"
    p = probes_table()
    nan = verdicts(_set(p, p.variant == "ce_wd2e-2", source_nc1=math.nan, probe_acc=math.nan))
    assert nan["overcollapse_lowest_source_nc1"] == "FAIL" and nan["overcollapse_hurts_transfer"] == "FAIL"


@pytest.mark.sabotage("aug_keeps_variability", "aug_transfers_better")
def test_sabotage_augmentation():
    v = verdicts(_swap(probes_table(), "ce_aug", "ce", ["source_nc1", "probe_acc"]), scale="paper")
    assert v["aug_keeps_variability"] == "FAIL" and v["aug_transfers_better"] == "FAIL"
    p = probes_table()
    nan = verdicts(_set(p, p.variant == "ce_aug", source_nc1=math.nan, probe_acc=math.nan), scale="paper")
    assert nan["aug_keeps_variability"] == "FAIL" and nan["aug_transfers_better"] == "FAIL"


def test_sabotage_ft_collapse_goes_with_acc():
    ft = ft_table()
    reversed_nc1 = ft.assign(train_nc1=1.0 / ft.train_nc1)  # more collapse now goes with lower accuracy
    assert verdicts(ft=reversed_nc1)["ft_collapse_goes_with_acc"] == "FAIL"
    assert verdicts(ft=_set(ft, ft.index == 0, train_nc1=math.nan))["ft_collapse_goes_with_acc"] == "FAIL"


def test_sabotage_scl_beats_lp():
    ft = ft_table()
    frozen = ft.copy()
    frozen.loc[ft.method == "scl", "test_acc"] = ft[ft.method == "lp"].test_acc.to_numpy()  # SCL-FT that did not train
    assert verdicts(ft=frozen)["scl_beats_lp"] == "FAIL"
    assert verdicts(ft=_set(ft, ft.method == "scl", test_acc=math.nan))["scl_beats_lp"] == "FAIL"


def test_sabotage_scl_on_par_with_full():
    ft = ft_table()
    worse = ft.copy()
    worse.loc[ft.method == "scl", "test_acc"] = ft[ft.method == "lp"].test_acc.to_numpy()
    assert verdicts(ft=worse)["scl_on_par_with_full"] == "FAIL"
    assert verdicts(ft=_set(ft, ft.method == "scl", test_acc=math.nan))["scl_on_par_with_full"] == "FAIL"


@pytest.mark.parametrize("table, column", [("probes", "seed"), ("probes", "variant"), ("ft", "seed"), ("ft", "n")])
def test_a_row_without_its_id_fails_the_claims_instead_of_vanishing(table, column):
    """A NaN seed (or variant, n) would drop the row from every groupby while the others still PASS."""
    p, ft = probes_table(), ft_table()
    if table == "probes":
        p = _set(p, p.index == 3, **{column: math.nan})
        claim = "downstream_nc1_predicts_transfer"
    else:
        ft = _set(ft, ft.index == 0, **{column: math.nan})
        claim = "scl_beats_lp"
    assert verdicts(p, ft, scale="paper")[claim] == "FAIL"
