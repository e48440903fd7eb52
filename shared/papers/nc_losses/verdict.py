"""The Verdict of nc_losses: the claims, their thresholds and when they apply.

Inputs are the notebook's tables: ``ufm`` (UFM curves: step, loss, nc1, nc2_w, nc2_h, nc3, nc4),
``history`` (training curves: epoch, loss, seed, train_acc, test_acc, nc1, nc2_w, nc2_h, nc3, nc4; with
``val_acc`` when a validation split picks the checkpoint) and, for :func:`record_map_claims`, ``cells``
(the width x epochs grid of ``width_epochs.train_grid``). Every worst case propagates NaN (:func:`worst`):
a NaN anywhere in a claim's inputs FAILs it.

NC3 is the official code's W-M relation (``shared.toolkit.neural_collapse.nc3_wm_relation``, the
``nc3`` column), not the self-duality distance of Papyan et al.; NC2 of the ``nc23_final`` claim is the one
of the centred class means (``nc2_h``): the classifier's NC2 is already about 0.13 for an untrained
10 x 512 classifier, so it is shown (INFO), not asserted.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from shared.claims import ClaimBook
from shared.papers.nc_losses.width_epochs import accuracy_gaps, seed_means
from shared.toolkit.train import best_validation

NC3_DEFINITION = "wm_relation"  # which of shared.toolkit.neural_collapse.NC3_DEFINITIONS the claims use
FL_BOUND = 0.25                 # a prototype's bound on FL's final NC2/NC3 (docs/papers/nc_losses.md); shown only


def worst(values, how: str) -> float:
    """max or min that does not skip NaN (pandas' does); nothing measured gives NaN."""
    values = np.asarray(values, dtype=float).ravel()
    if values.size == 0:
        return float("nan")
    return float(np.max(values) if how == "max" else np.min(values))


def early_epoch(epochs_logged, epochs: int) -> int:
    """The logged epoch nearest to 5% of training."""
    return int(min(epochs_logged, key=lambda e: abs(e - 0.05 * epochs)))


def final_rows(history: pd.DataFrame, epochs: int) -> pd.DataFrame:
    return history[history.epoch == epochs]


def record_claims(book: ClaimBook, ufm: pd.DataFrame, history: pd.DataFrame, *, losses, epochs: int,
                  ufm_steps: int, mse_rescale: float, num_classes: int = 10) -> ClaimBook:
    """Check the claims of the UFM runs (``ufm``) and of the trained networks (``history``)."""
    scale, losses = book.scale, list(losses)
    full = scale != "smoke"
    budget = "" if full else "needs the cpu budget"
    ufm_final = ufm[ufm.step == ufm_steps].set_index("loss")
    final = final_rows(history, epochs)
    early = history[history.epoch == early_epoch(history.epoch.unique(), epochs)].set_index(["loss", "seed"])
    last = final.set_index(["loss", "seed"])
    # A (loss, seed) missing at either end gives NaN after alignment, which fails.
    nc1_ratio = (last.nc1 / early.nc1).reindex(last.index.union(early.index))
    not_fl = final[final.loss.isin([name for name in losses if name != "fl"])]
    fl = final[final.loss == "fl"]

    book.check("ufm_nc1", "UFM: every loss reaches NC1 <= 1e-4", worst(ufm_final.nc1, "max"), "<=", 1e-4,
               applies=full, note=budget)
    book.check("ufm_nc2", "UFM: every loss reaches NC2 (classifier and means) <= 0.12",
               worst(ufm_final[["nc2_w", "nc2_h"]], "max"), "<=", 0.12, applies=full, note=budget)
    book.check("ufm_nc3", "UFM: every loss reaches NC3 (W-M relation) <= 0.1", worst(ufm_final.nc3, "max"),
               "<=", 0.1, applies=full, note=budget)
    others = ufm_final.nc1.drop("fl", errors="ignore")
    book.info("ufm_slowest", "UFM: final NC1 of FL / the largest of the other losses (FL converges slowest)",
              ufm_final.nc1.get("fl", np.nan) / worst(others, "max") if len(others) else None)
    book.check("train_acc", "every loss reaches 100% training accuracy", worst(final.train_acc, "min"), ">=", 1.0)
    book.check("nc1_halves", "every loss's NC1 at least halves from its early value (final/early)",
               worst(nc1_ratio, "max"), "<=", 0.5)
    book.check("nc1_fall", "every loss's NC1 falls by at least 10x from its early value (early/final)",
               worst(1 / nc1_ratio, "min"), ">=", 10, applies=full, note=budget)
    book.check("nc1_final", "every loss's final NC1 <= 0.02", worst(final.nc1, "max"), "<=", 0.02,
               applies=full, note=budget)
    book.check("nc23_final", "CE, LS, MSE: final NC2 (class means) and NC3 (W-M relation) <= 0.2",
               worst(not_fl[["nc2_h", "nc3"]], "max"), "<=", 0.2, applies=full and len(not_fl) > 0,
               note=budget or ("" if len(not_fl) else "only FL was run"))
    book.info("nc2_classifier_final", "CE, LS, MSE: final NC2 of the classifier (shown: an untrained "
              "classifier already scores about 0.13, so it is no evidence of collapse)",
              worst(not_fl.nc2_w, "max") if len(not_fl) else None)
    book.info("nc23_final_fl", f"FL: final NC2 (class means, classifier) and NC3 <= {FL_BOUND} (shown, not "
              "asserted: FL meets this bound by about 5%, not with a 2x margin)",
              worst(fl[["nc2_w", "nc2_h", "nc3"]], "max") if len(fl) else None)
    book.info("nc23_fall", "smallest fall (early/final) of NC2 (classifier, means) and NC3 over losses: "
              "a 10x fall did not reproduce, see Deviations",
              worst(early[["nc2_w", "nc2_h", "nc3"]] / last[["nc2_w", "nc2_h", "nc3"]], "min"))
    reported = best_validation(history, keys=("loss", "seed"))  # the last epoch without a validation split
    seed_mean_acc = reported.groupby("loss").test_acc.agg(lambda acc: float(np.mean(acc.to_numpy())))  # NaN stays
    two = len(set(losses)) >= 2
    book.check("acc_band", "final test accuracies (seed means) of the losses lie within 1.5 points",
               worst(seed_mean_acc, "max") - worst(seed_mean_acc, "min") if two else None, "<=", 0.015,
               applies=full and two,
               note=budget or ("" if two else "needs at least two losses"))
    mse = final[final.loss == "mse"]
    book.info("mse_nc4", "MSE: final NC4 / (rescale / sqrt(K)) (tends to 1, not 0)",
              float(np.mean(mse.nc4.to_numpy())) / (mse_rescale / np.sqrt(num_classes)) if len(mse) else None)
    return book


def corner(table: pd.Series, width: str, epochs: str) -> pd.Series:
    """The rows of a (width, epochs, ...) indexed series at the ``width`` ("min"/"max") and ``epochs`` corner."""
    widths, epochs_ = table.index.get_level_values("width"), table.index.get_level_values("epochs")
    pick = {"min": np.min, "max": np.max}
    return table[(widths == pick[width](widths)) & (epochs_ == pick[epochs](epochs_))]


def record_map_claims(book: ClaimBook, cells: pd.DataFrame, *, losses, reference: str = "ce") -> ClaimBook:
    """Check the width x epochs grid (``cells``: width, epochs, loss, seed, test_acc, nc1; see
    ``width_epochs.train_grid``): equal accuracy at the widest, longest cell, and more collapse with training."""
    full = book.scale != "smoke"
    gaps = accuracy_gaps(cells, reference).set_index(["width", "epochs", "loss"]).gap
    compared = full and len(gaps) > 0
    why = "needs the cpu budget" if not full else ("" if len(gaps) else f"needs {reference} and another loss")
    book.check("map_acc_gap", f"widest network, most epochs: |Acc_{reference} - Acc_X| (seed means) <= 1.5 points "
               "for every other loss X", worst(corner(gaps, "max", "max"), "max") if len(gaps) else None, "<=", 0.015,
               applies=compared, note=why)
    book.info("map_acc_gap_smallest", f"narrowest network, fewest epochs: largest |Acc_{reference} - Acc_X| "
              "(the paper: the losses differ before the network is large and trained enough)",
              worst(corner(gaps, "min", "min"), "max") if len(gaps) else None)
    nc1 = seed_means(cells, "nc1").unstack("epochs")
    longest, shortest = nc1.columns.max(), nc1.columns.min()
    two_counts = longest != shortest
    book.check("map_nc1_epochs", f"every width and loss: final NC1 after {longest} epochs / after {shortest} <= 0.5 "
               "(largest ratio)", worst(nc1[longest] / nc1[shortest], "max") if two_counts else None, "<=", 0.5,
               applies=full and two_counts, note="needs the cpu budget" if not full else
               ("" if two_counts else "needs two epoch counts"))
    by_width = nc1[longest].unstack("width")
    book.info("map_nc1_width", f"after {longest} epochs: final NC1 of the widest / the narrowest network "
              "(largest ratio over losses)", worst(by_width[by_width.columns.max()] / by_width[by_width.columns.min()],
                                                   "max") if by_width.shape[1] > 1 else None)
    return book
