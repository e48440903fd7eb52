"""layerwise_similarity: the claims of the Verdict cell, computed here so that tests can feed them broken inputs.

Inputs of :func:`record_claims`:
- ``text``: :func:`experiments.text_similarity` (``cos``, ``cka`` (L, L) matrices of the text model);
- ``runs``: mode -> ``ExitRun`` (``accuracy`` (L,), ``cos``, ``cka``) of the vision exit models;
- ``lm``: mode -> GPT-2 results (``accuracy``, ``perplexity``, ``saturated``), paper scale only;
- ``lm_text``: COS and CKA across SmolLM2's layers (shown, not asserted).

Every value is NaN-propagating: a NaN anywhere in a claim's inputs gives NaN, and NaN FAILs.
The agreement claims are sensitive to the order of the layers (Spearman(COS, CKA) is not: it is the same
after the layers are shuffled), and the aligned-training claims are made relative to the standard run.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.stats import spearmanr

AGREEMENT = 0.9          # Spearman(COS, CKA) and the share of distance-ordered pairs, both > 0.9
ALIGNED_GAIN = 0.25      # acc_1(aligned) - acc_1(standard) at cpu / paper
ALIGNED_GAIN_SMOKE = 0.1


def worst(values, how: str = "min") -> float:
    """min or max that propagates NaN (Python's min(1.0, nan) is 1.0; an empty input is NaN)."""
    arr = np.asarray(list(values), dtype=float)
    if arr.size == 0 or np.isnan(arr).any():
        return math.nan
    return float(arr.min() if how == "min" else arr.max())


def _upper(M) -> np.ndarray:
    M = np.asarray(M, dtype=float)
    return M[np.triu_indices(M.shape[0], k=1)]


def spearman(cos, cka) -> float:
    """Spearman(COS, CKA) over layer pairs l < l' (NaN if any entry is NaN)."""
    a, b = _upper(cos), _upper(cka)
    if a.size < 2 or np.isnan(a).any() or np.isnan(b).any():
        return math.nan
    return float(spearmanr(a, b).statistic)


def distance_order(M) -> float:
    """Share of comparisons, over ALL rows, in which the nearer layer is the more similar one.

    For every layer l and every two layers a, b on the same side of l with |l - a| < |l - b|:
    is M[l, a] > M[l, b]? 1.0 for a matrix that decays away from its diagonal in every row; about 0.5
    for shuffled layers. NaN if M holds a NaN or has fewer than 3 layers.
    """
    M = np.asarray(M, dtype=float)
    L = M.shape[0]
    if L < 3 or np.isnan(M).any():
        return math.nan
    hits = total = 0
    for l in range(L):
        for side in (M[l, l + 1:], M[l, :l][::-1]):   # both sides, ordered from near to far
            for i in range(len(side)):
                for j in range(i + 1, len(side)):
                    hits += side[i] > side[j]
                    total += 1
    return hits / total if total else math.nan


def ordered_agreement(cos, cka) -> float:
    """min(Spearman(COS, CKA), distance_order(COS), distance_order(CKA)): high only if COS ranks layer pairs
    as CKA does AND both show adjacent layers more similar than distant ones (so a layer shuffle fails)."""
    return worst([spearman(cos, cka), distance_order(cos), distance_order(cka)])


def max_distance_step(M) -> float:
    """Largest step of similarity moving away from the diagonal, over every row and both sides.

    < 0 exactly when every row strictly decreases with the distance to its layer. NaN on NaN.
    """
    M = np.asarray(M, dtype=float)
    L = M.shape[0]
    steps = []
    for l in range(L):
        steps += list(np.diff(M[l, l:])) + list(np.diff(M[l, :l + 1][::-1]))
    return worst(steps, "max")


def text_claim_values(text: dict) -> dict[str, float]:
    cos, cka = np.asarray(text["cos"], dtype=float), np.asarray(text["cka"], dtype=float)
    return {
        "rho": spearman(cos, cka),
        "agreement": ordered_agreement(cos, cka),
        "min_cos": worst(_upper(cos)),
        "max_step": max_distance_step(cos),
    }


def vision_claim_values(runs: dict) -> dict[str, float]:
    """The values behind the vision claims (standard and aligned needed; multi-exit optional)."""
    std, ali = runs["standard"], runs["aligned"]
    a_std, a_ali = np.asarray(std.accuracy, dtype=float), np.asarray(ali.accuracy, dtype=float)
    values = {
        "acc1_gap": float(a_ali[0] - a_std[0]),
        "last_gap": float(abs(a_ali[-1] - a_std[-1])),
        # the shared head, relative to standard training: below the last layer, how far aligned is above it
        "min_gain_below_last": worst(a_ali[:-1] - a_std[:-1]) if len(a_ali) > 1 else math.nan,
        "aligned_min_step": worst(np.diff(a_ali)) if len(a_ali) > 1 else math.nan,
        "cos1L_gap": float(np.asarray(ali.cos)[0, -1] - np.asarray(std.cos)[0, -1]),
        "rho_min": worst([spearman(std.cos, std.cka), spearman(ali.cos, ali.cka)]),
        "agreement_min": worst([ordered_agreement(std.cos, std.cka), ordered_agreement(ali.cos, ali.cka)]),
    }
    if "alternating" in runs:
        a_alt = np.asarray(runs["alternating"].accuracy, dtype=float)
        values |= {"alternating_acc1_gap": float(a_alt[0] - a_std[0]),
                   "alternating_last_gap": float(abs(a_alt[-1] - a_std[-1]))}
    if "multi_exit" in runs:
        gap = np.abs(a_ali - np.asarray(runs["multi_exit"].accuracy, dtype=float))
        values |= {"multi_max_gap": worst(gap, "max"), "multi_mean_gap": float(np.mean(gap)),
                   "rho_multi_exit": spearman(runs["multi_exit"].cos, runs["multi_exit"].cka)}
    return values


def _relative(value: float, gain: float, threshold: float) -> tuple[float, str]:
    """``value`` if aligned training did lift the shallow layers (gain > threshold), else NaN (FAIL) with why."""
    if gain > threshold:
        return value, ""
    return math.nan, (f"aligned run not distinct from standard (layer-1 gain {gain:.3g} <= {threshold}): "
                      "the claim is about what aligned training keeps")


def lm_panel_values(lm_text: dict) -> dict[str, float]:
    """The decoder-LM panel's shown values: Spearman(COS, CKA) and the smallest adjacent-layer COS."""
    cos = np.asarray(lm_text["cos"], dtype=float)
    return {"rho": spearman(cos, lm_text["cka"]), "min_adjacent_cos": worst(np.diagonal(cos, 1))}


def record_claims(book, text: dict, runs: dict, lm: dict | None = None, scale: str = "cpu",
                  lm_text: dict | None = None):
    """Check every claim of the paper on ``book`` (a ClaimBook); returns it.

    ``lm_text`` (optional): :func:`experiments.lm_similarity` of SmolLM2, shown only (its CKA is erratic on a decoder LM).
    """
    lm = lm or {}
    full, quick = scale != "smoke", scale == "smoke"
    tv = text_claim_values(text)
    vis = vision_claim_values(runs)
    has_multi = "multi_exit" in runs
    gain_needed = ALIGNED_GAIN if full else ALIGNED_GAIN_SMOKE
    book.check("aligned_helps_shallow", "aligned lifts layer-1 accuracy of the shared head: acc_1(aligned) - acc_1(standard) > 0.25",
               vis["acc1_gap"], ">", ALIGNED_GAIN, applies=full)
    last, why = _relative(vis["last_gap"], vis["acc1_gap"], gain_needed)
    book.check("last_layer_kept", "last layer not sacrificed by an aligned run that lifts layer 1 (gain > 0.25): "
               "|acc_L(aligned) - acc_L(standard)| < 0.03", last, "<", 0.03, applies=full, note=why)
    book.check("on_par_multi_exit_max", "one head on par with per-layer heads: max_l |aligned - multi-exit| < 0.08",
               vis.get("multi_max_gap"), "<", 0.08, applies=full and has_multi,
               note="" if has_multi else "multi_exit not in modes")
    book.check("on_par_multi_exit_mean", "one head on par with per-layer heads: mean_l |aligned - multi-exit| < 0.03",
               vis.get("multi_mean_gap"), "<", 0.03, applies=full and has_multi,
               note="" if has_multi else "multi_exit not in modes")
    step, why = _relative(vis["aligned_min_step"], vis["min_gain_below_last"], 0.0)
    book.check("monotone_in_depth", "aligned accuracy, above standard at every layer < L, non-decreasing in depth: "
               "min_l (acc_l+1 - acc_l) >= -0.02", step, ">=", -0.02, applies=full,
               note=why.replace("layer-1 gain", "smallest gain below L"))
    book.check("aligned_raises_similarity", "aligned raises similarity: COS(1, L) aligned - standard > 0.15",
               vis["cos1L_gap"], ">", 0.15, applies=full)
    book.check("cos_agrees_with_cka_vision", "COS agrees with CKA, layer order kept: min over standard, aligned of "
               "min(Spearman, share of distance-ordered pairs of COS and of CKA, all rows) > 0.9",
               vis["agreement_min"], ">", AGREEMENT, applies=full)
    book.check("cos_agrees_with_cka_text", "COS agrees with CKA on the text model, layer order kept: "
               "min(Spearman, share of distance-ordered pairs of COS and of CKA, all rows) > 0.9",
               tv["agreement"], ">", AGREEMENT)
    book.check("positively_correlated", "layers positively correlated: min off-diagonal COS (text) > 0.2",
               tv["min_cos"], ">", 0.2)
    book.check("decays_with_distance", "similarity decays with distance: every COS row (text) strictly decreasing "
               "away from its layer (max step < 0)", tv["max_step"], "<", 0.0)
    book.check("smoke_aligned_helps_shallow", "smoke: acc_1(aligned) - acc_1(standard) > 0.1",
               vis["acc1_gap"], ">", ALIGNED_GAIN_SMOKE, applies=quick)
    book.check("smoke_aligned_raises_similarity", "smoke: COS(1, L) aligned > standard",
               vis["cos1L_gap"], ">", 0.0, applies=quick)
    if lm:
        both = {"aligned", "standard"} <= set(lm)
        book.check("gpt2_aligned_helps_shallow", "GPT-2: layer-1 token accuracy aligned > standard",
                   lm["aligned"].accuracy[0] - lm["standard"].accuracy[0] if both else None, ">", 0.0,
                   applies=both, note="" if both else "needs the standard and aligned GPT-2 modes")
        for mode, r in lm.items():
            book.info(f"gpt2_ppl_last_{mode}", f"GPT-2 {mode}: last-layer test perplexity (official: standard 27.9, aligned 43.4)",
                      r.perplexity[-1])
            book.info(f"gpt2_settled_{mode}", f"GPT-2 {mode}: tokens settled before the last layer (official .183 / .477 / .726)",
                      r.saturated)
    book.info("rho_text", "text: Spearman(COS, CKA) alone (shown; invariant to a layer shuffle)", tv["rho"])
    book.info("rho_vision_min", "vision: Spearman(COS, CKA) alone, min of standard, aligned (shown)", vis["rho_min"])
    for mode in ("standard", "aligned"):
        if hasattr(runs[mode], "saturation"):
            book.info(f"settled_{mode}", f"{mode}: test samples settled before the last layer (shown)",
                      runs[mode].saturated)
    if "alternating" in runs:
        book.info("alternating_acc1_gap", "alternating (last-layer CE and the aligned loss on alternate steps): "
                  "acc_1 - acc_1(standard) (shown)", vis["alternating_acc1_gap"])
        book.info("alternating_last_gap", "alternating: |acc_L - acc_L(standard)| (shown)", vis["alternating_last_gap"])
    if lm_text is not None:
        lv = lm_panel_values(lm_text)
        book.info("rho_smollm2", "SmolLM2-135M, token 0 dropped: Spearman(COS, CKA) (shown; a prototype run measured 0.50)",
                  lv["rho"])
        book.info("smollm2_min_adjacent_cos", "SmolLM2-135M: smallest COS of adjacent layers (shown; a prototype run measured .86)",
                  lv["min_adjacent_cos"])
    if has_multi:
        book.info("rho_multi_exit", "multi-exit: Spearman(COS, CKA) (shown; separate heads need no shared basis)",
                  vis["rho_multi_exit"])
    return book
