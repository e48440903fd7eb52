"""projector_alignment: the claims of the Verdict cell, computed here so that tests can feed them broken inputs.

``metrics`` maps lambda -> the dict of ``experiments.evaluate`` (lambda 0 = caption only, 1 = patch-aligned).
"""
from __future__ import annotations

import math

import numpy as np

from shared.claims import ClaimBook


def all_finite(metrics: dict) -> float:
    """1.0 if every metric of every arm is a finite number, else 0.0."""
    values = [v for m in metrics.values() for v in m.values()]
    return float(bool(values) and bool(np.all(np.isfinite(np.asarray(values, dtype=float)))))


def _get(metrics: dict, lam: float, key: str) -> float:
    m = metrics.get(float(lam))
    return math.nan if m is None else float(m.get(key, math.nan))


def record_claims(book: ClaimBook, metrics: dict, scale: str, pipeline_only: bool = False) -> ClaimBook:
    """The toy MLLM's claims: caption-only (lambda 0) vs patch-aligned (lambda 1) projectors."""
    g = lambda lam, key: _get(metrics, lam, key)  # noqa: E731
    smoke, full = scale == "smoke", scale != "smoke" and not pipeline_only
    book.sanity("all_finite", "every alignment, entropy and caption metric of both arms is finite",
               all_finite(metrics), "==", 1.0)

    def check(name, statement, value, op, threshold):  # the preset's seed rule may show it as INFO at cpu
        book.check(name, statement, value, op, threshold, applies=full,
                   note="needs the cpu budget (trained encoder)" if smoke else "")

    check("caption_aligns_weakly", "caption loss aligns patches with their words: lambda=0 cos_own - cos_other >= 0.09",
              g(0, "cos_gap"), ">=", 0.09)
    check("caption_above_chance", "... above chance: lambda=0 patch -> digit word top-1 >= 0.3 (chance 0.1)",
              g(0, "digit_top1"), ">=", 0.3)
    check("aligned_cos_gain", "patch-aligned training aligns much better: cos_own(1) - cos_own(0) >= 0.18",
              g(1, "cos_own") - g(0, "cos_own"), ">=", 0.18)
    check("aligned_span_gain", "... multi-semantically: span fraction(1) - span fraction(0) >= 0.2",
              g(1, "span_fraction") - g(0, "span_fraction"), ">=", 0.2)
    check("aligned_retrieval_gain", "... with better retrieval: digit top-1(1) - digit top-1(0) >= 0.07",
              g(1, "digit_top1") - g(0, "digit_top1"), ">=", 0.07)
    book.sanity("both_words_color", "the lambda=1 arm reads the color word it is trained on: color top-1 >= 0.5 "
                "(chance 1/3)", g(1, "color_top1"), ">=", 0.5, applies=full,
                note="needs the cpu budget (trained encoder)" if smoke else "")
    check("both_words_digit", "... and lambda=1 digit top-1 >= 0.4 (chance 0.1)", g(1, "digit_top1"), ">=", 0.4)
    check("no_caption_cost", "no caption cost: caption acc(0) - caption acc(1) <= 0.03",
              g(0, "caption_acc") - g(1, "caption_acc"), "<=", 0.03)

    quick = smoke and not pipeline_only
    note = "" if quick else "smoke-only thresholds (the cpu checks above apply at cpu)"
    book.info("smoke_caption_aligns", "smoke: lambda=0 cos_own - cos_other > 0.1 (a longer smoke run's check) NOT REPRODUCED at this smoke "
              "preset: 0.083-0.085 at seed 0, so shown, not asserted", g(0, "cos_gap"))
    book.check("smoke_cos_gain", "smoke: cos_own(1) - cos_own(0) > 0.1", g(1, "cos_own") - g(0, "cos_own"), ">", 0.1,
               applies=quick, note=note)
    book.check("smoke_span_gain", "smoke: span fraction(1) - span fraction(0) > 0.15",
               g(1, "span_fraction") - g(0, "span_fraction"), ">", 0.15, applies=quick, note=note)

    book.info("projector_compresses",
              "NOT REPRODUCED (shown, never asserted): 'the projector compresses' = entropy(P(v)) - entropy(v) < 0, "
              "lambda=0, uncentered", g(0, "projector_entropy_uncentered") - g(0, "encoder_entropy_uncentered"))
    book.info("projector_compresses_centered", "same, centered rows",
              g(0, "projector_entropy_centered") - g(0, "encoder_entropy_centered"))
    book.info("aligned_compresses_more", "patch-aligned compresses more: entropy(P(v)) at lambda=1 minus lambda=0, "
              "uncentered (shown, not asserted)",
              g(1, "projector_entropy_uncentered") - g(0, "projector_entropy_uncentered"))
    book.info("grounding", "grounding proxy at lambda=1 (near ceiling; shown, not asserted)", g(1, "grounding"))
    return book


def record_llava_claims(book: ClaimBook, analysis: dict) -> ClaimBook:
    """LLaVA-1.5 on COCO (paper scale): the released projector's entropy and alignment, shown, not asserted."""
    book.sanity("llava_finite", "every LLaVA/COCO metric is finite", all_finite({0: analysis}), "==", 1.0)
    book.info("llava_projector_compresses", "entropy(projector output) - entropy(vision features), uncentered",
              analysis.get("projector_entropy_uncentered", math.nan) - analysis.get("encoder_entropy_uncentered", math.nan))
    book.info("llava_cos_gap", "released projector: cos_own - cos_other over COCO category words",
              analysis.get("cos_gap", math.nan))
    book.info("llava_category_top1", "patch -> category word top-1 (80 COCO categories)",
              analysis.get("category_top1", math.nan))
    return book
