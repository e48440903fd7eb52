"""icl_compression: the claims of the Verdict cell, computed here so that tests can feed them broken inputs.

Inputs of :func:`record_claims`:
- ``curves``: :func:`experiments.k_sweep_tables` per-layer table (K, layer, tdnv);
- ``k_summary``: its per-K table (K, icl_acc, ...);
- ``null_curve``: (L,) TDNV at K = k_main with the task labels shuffled (:func:`experiments.shuffled_label_tdnv`);
- ``bv_mean``: mean bias and variance per K (index K, columns bias, variance) of the bias-variance sweep;
- ``model_depths``: at ``paper`` scale, model name -> l*/L at K = k_main for every model run;
- ``readout``: held-out accuracy per layer (index 1..L) of the linear readout of the answer at K = k_main
  (:mod:`readout`, the early-exit substitute), and ``readout_chance`` its majority-answer chance level.

The TDNV-shape claims (location of the minimum, compression, expansion) are only meaningful if the curve
reflects the tasks: they FAIL (value NaN, with the reason in the note) unless the minimum sits well below the
shuffled-label null at the same layer (ratio < 0.25) and below 1 (the paper's ICL failure line). With shuffled
labels, min TDNV / TDNV(layer 1) still looks like compression (0.27-0.33): the control is what fails then.
Every value propagates NaN, and NaN FAILs.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

NULL_RATIO = 0.25             # min TDNV / shuffled-label TDNV at the same layer: "well below" the null
FAILURE_LINE = 1.0            # the paper: ICL fails once TDNV > 1
SMOLLM_WINDOW = (0.5, 0.9)    # l*/L of SmolLM2-135M at smoke / cpu (measured l* 21-22 of 30, with margin)
PAPER_WINDOW = (0.2, 0.5)     # the paper's figures: l*/L about 0.30-0.38 (GPT-J, Pythia-2.8B, Mamba), with margin
PAPER_COMPRESSING = ("gpt-j-6b", "pythia-2.8b", "mamba-2.8b-hf")
READOUT_GAIN = 0.075         # readout accuracy: mean over expansion layers - mean over compression layers
READOUT_OVER_CHANCE = 0.15    # readout accuracy at layer L-1 - its chance level


def ratio_of_neighbours(values) -> float:
    """The largest ratio of consecutive values (< 1 exactly when they strictly decrease); NaN propagates."""
    v = np.asarray(list(values), dtype=float)
    if v.size < 2 or np.isnan(v).any():
        return math.nan
    return float(np.max(v[1:] / v[:-1]))


def curve_values(curve, null_curve) -> dict[str, float]:
    """Location and ratios of the minimum of one TDNV curve, and its control against the shuffled-label null."""
    c = np.asarray(curve, dtype=float)
    n = np.asarray(null_curve, dtype=float)
    keys = ("L", "l_star", "depth", "min", "layer1", "final", "pre_final", "null_at_min", "min_over_null",
            "min_over_layer1", "min_over_final", "min_over_pre_final")
    if c.size < 2 or n.shape != c.shape or not np.isfinite(c).all() or not np.isfinite(n).all():
        return dict.fromkeys(keys, math.nan) | {"L": float(c.size)}
    i = int(np.argmin(c))
    return {"L": float(c.size), "l_star": float(i + 1), "depth": (i + 1) / c.size, "min": float(c[i]),
            "layer1": float(c[0]), "final": float(c[-1]), "pre_final": float(c[-2]), "null_at_min": float(n[i]),
            "min_over_null": float(c[i] / n[i]), "min_over_layer1": float(c[i] / c[0]),
            "min_over_final": float(c[i] / c[-1]), "min_over_pre_final": float(c[i] / c[-2])}


def control_holds(v: dict) -> tuple[bool, str]:
    """Does the curve reflect the tasks? (min well below the shuffled-label null, and below the failure line)."""
    ok = v["min_over_null"] < NULL_RATIO and v["min"] < FAILURE_LINE
    if ok:
        return True, ""
    return False, (f"control failed: min TDNV {v['min']:.3g} vs shuffled-label null {v['null_at_min']:.3g} "
                   f"(needs ratio < {NULL_RATIO} and min < {FAILURE_LINE})")


def gated(value, ok: bool) -> float:
    return float(value) if ok else math.nan


def worst(values, how: str = "max") -> float:
    arr = np.asarray(list(values), dtype=float)
    if arr.size == 0 or np.isnan(arr).any():
        return math.nan
    return float(arr.max() if how == "max" else arr.min())


def readout_values(readout: pd.Series, l_star: float, chance: float) -> dict[str, float]:
    """The readout's accuracy at layer L-1 and above chance; its mean accuracy over the compression layers (1..l*)
    and the expansion layers (l*+1..L), and their gain. NaN propagates (an unknown l* gives a NaN gain)."""
    acc = pd.Series(readout, dtype=float).sort_index()
    out = dict.fromkeys(("late", "over_chance", "compression", "expansion", "gain"), math.nan)
    if len(acc) < 3 or acc.isna().any():
        return out
    out["late"] = float(acc.iloc[-2])
    out["over_chance"] = out["late"] - float(chance)
    early, late_layers = acc[acc.index <= l_star], acc[acc.index > l_star]
    if math.isfinite(l_star) and len(early) and len(late_layers):
        out.update(compression=float(early.mean()), expansion=float(late_layers.mean()),
                   gain=float(late_layers.mean() - early.mean()))
    return out


def record_claims(book, curves: pd.DataFrame, k_summary: pd.DataFrame, null_curve, bv_mean: pd.DataFrame, *,
                  k_main: int, scale: str, pipeline_only: bool = False, model_depths: dict | None = None,
                  readout: pd.Series | None = None, readout_chance: float = math.nan):
    """Check every claim of the paper on ``book`` (a ClaimBook, which applies the preset's seed rule); returns it."""
    real = not pipeline_only
    full, quick, paper = real and scale != "smoke", real and scale == "smoke", scale == "paper"
    note = "pipeline-only: random 2-layer model" if pipeline_only else ""
    k_list = sorted(int(k) for k in k_summary["K"])
    main = curves.loc[curves["K"] == k_main].sort_values("layer")["tdnv"].to_numpy()
    v = curve_values(main, null_curve)
    ok, why = control_holds(v)
    shape_note = "; ".join(x for x in (note, why) if x)
    by_k = k_summary.set_index("K")
    mins, acc = by_k["min_tdnv"].reindex(k_list), by_k["icl_acc"]
    k_low = k_list[0]
    bias_curve = bv_mean["bias"].iloc[:-1] if len(bv_mean) else pd.Series(dtype=float)  # largest K is mu(inf)
    var_ratio = (bv_mean["variance"].iloc[-1] / bv_mean["variance"].get(4, np.nan)) if len(bv_mean) else math.nan
    r = readout_values(pd.Series(dtype=float) if readout is None else readout, v["l_star"], readout_chance)

    def check(name, statement, measured, op, threshold, applies=True, note=note):
        return book.check(name, statement, measured, op, threshold, applies=applies, note=note)

    lo, hi = SMOLLM_WINDOW
    check("argmin_after_half", f"TDNV minimum in middle-late layers: l*/L >= {lo} (K = {k_main}, SmolLM2)",
          gated(v["depth"], ok), ">=", lo, applies=real and not paper, note=shape_note)
    check("argmin_before_0.9", f"TDNV minimum in middle-late layers: l*/L <= {hi} (K = {k_main}, SmolLM2)",
          gated(v["depth"], ok), "<=", hi, applies=real and not paper, note=shape_note)
    check("compression_vs_null", f"control: min TDNV / TDNV with shuffled task labels at the same layer < {NULL_RATIO}",
          v["min_over_null"], "<", NULL_RATIO, applies=real, note=note)
    check("compression_below_one", f"control: min TDNV < {FAILURE_LINE} (the paper's ICL failure line)",
          v["min"], "<", FAILURE_LINE, applies=full, note=note)
    check("compression", "compression: min TDNV / TDNV(layer 1) < 0.4", gated(v["min_over_layer1"], ok),
          "<", 0.4, applies=full, note=shape_note)
    check("expansion", "expansion: min TDNV / TDNV(layer L, after the final norm) < 0.8",
          gated(v["min_over_final"], ok), "<", 0.8, applies=full, note=shape_note)
    check("expansion_pre_norm", "expansion before the final norm: min TDNV / TDNV(layer L-1) < 0.8",
          gated(v["min_over_pre_final"], ok), "<", 0.8, applies=full, note=shape_note)
    check("compression_smoke", "smoke (4 tasks): min TDNV / TDNV(layer 1) < 0.5",
          gated(v["min_over_layer1"], ok), "<", 0.5, applies=quick, note=shape_note)
    check("expansion_smoke", "smoke (4 tasks): min TDNV / TDNV(layer L) < 0.6",
          gated(v["min_over_final"], ok), "<", 0.6, applies=quick, note=shape_note)
    check("k_compresses", f"min TDNV strictly falls over K = {k_list} (paired prompts): largest ratio of neighbours < 1",
          ratio_of_neighbours(mins), "<", 1.0, applies=full)
    check("icl_improves_with_k", f"ICL accuracy gain from K = {k_low} to K = {k_main} > 0.3",
          acc.get(k_main, np.nan) - acc.get(k_low, np.nan), ">", 0.3, applies=full)
    check("bias_falls", f"relative bias strictly falls over K = {bias_curve.index.tolist()}: largest ratio < 1",
          ratio_of_neighbours(bias_curve), "<", 1.0, applies=full)
    check("variance_falls", f"variance(K = {bv_mean.index[-1] if len(bv_mean) else '-'}) / variance(K = 4) < 1",
          var_ratio, "<", 1.0, applies=full)
    check("readout_rises_in_expansion", "early-exit substitute: held-out linear-readout accuracy, mean over the "
          f"expansion layers (l*+1..L) - mean over the compression layers (1..l*) > {READOUT_GAIN}",
          gated(r["gain"], ok), ">", READOUT_GAIN, applies=full, note=shape_note)
    check("readout_above_chance", f"early-exit substitute: readout accuracy at layer L-1 - chance (majority answer) "
          f"> {READOUT_OVER_CHANCE}", r["over_chance"], ">", READOUT_OVER_CHANCE, applies=full)
    # paper scale: the location of the minimum for the paper's compressing models, from the paper's figures
    depths = {m: d for m, d in (model_depths or {}).items() if m in PAPER_COMPRESSING}
    why_na = "" if depths else f"needs at least one of {list(PAPER_COMPRESSING)} in model_paths (paper scale)"
    plo, phi = PAPER_WINDOW
    check("paper_argmin_after_0.2", f"paper models {sorted(depths)}: min over models of l*/L >= {plo} "
          "(paper: about 0.30-0.38)", worst(depths.values(), "min"), ">=", plo, applies=paper and bool(depths),
          note=why_na)
    check("paper_argmin_before_0.5", f"paper models {sorted(depths)}: max over models of l*/L <= {phi} "
          "(paper: about 0.30-0.38)", worst(depths.values(), "max"), "<=", phi, applies=paper and bool(depths),
          note=why_na)
    book.info("icl_accuracy", f"ICL accuracy at K = {k_main} (all tasks)", acc.get(k_main, np.nan), note=note)
    book.info("min_tdnv", f"min TDNV at K = {k_main} (paper: 0.2-0.75)", v["min"], note=note)
    book.info("null_tdnv_at_argmin", "TDNV with shuffled task labels at l* (the null)", v["null_at_min"], note=note)
    book.info("argmin_depth", f"l*/L at K = {k_main}", v["depth"], note=note)
    book.info("readout_layer_L-1", "linear-readout accuracy at layer L-1 (early-exit substitute; paper's early exit: "
              "about 1)", r["late"], note=note)
    return book
