"""nc_losses: the Verdict (shared.papers.nc_losses.verdict), one sabotage test per checked claim.

A healthy run (values like the measured `cpu` ones) passes every claim; each sabotage feeds the
matching broken input (a UFM or network that does not train, shuffled labels, an untrained
classifier, one loss far off) and asserts FAIL; a NaN anywhere gives FAIL too.
"""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from shared import claims
from shared.papers.nc_losses.experiments import load_data, paper_loss
from shared.config import load_expected_na
from shared.papers.nc_losses.verdict import record_claims, record_map_claims, worst

EXPECTED_NA = load_expected_na("nc_losses")
from shared.toolkit.models import create_model
from shared.toolkit.neural_collapse import collapse_metrics
from shared.papers.nc_losses.width_epochs import grid_network, train_grid
from shared.toolkit.train import TrainSettings, log_spaced, predict
from shared.toolkit.ufm import UFMSettings, train_ufm

LOSSES = ["ce", "ls", "fl", "mse"]
EPOCHS, UFM_STEPS, RESCALE = 200, 15000, 15.0
CHECKED = ["ufm_nc1", "ufm_nc2", "ufm_nc3", "train_acc", "nc1_halves", "nc1_fall", "nc1_final", "nc23_final",
           "acc_band"]


def healthy_ufm() -> pd.DataFrame:
    rows = []
    for loss in LOSSES:
        for step in (1, 100, UFM_STEPS):
            late = step == UFM_STEPS
            rows.append({"step": step, "loss": loss, "objective": 1.0, "nc1": 2e-5 if late else 1.0,
                         "nc2_w": 0.04 if late else 0.5, "nc2_h": 0.05 if late else 0.6,
                         "nc3": 0.04 if late else 0.7, "nc4": 0.1})
    return pd.DataFrame(rows)


def healthy_history(seeds=(0, 1)) -> pd.DataFrame:
    rows = []
    for loss in LOSSES:
        for seed in seeds:
            for epoch in log_spaced(EPOCHS, 20):
                late = epoch == EPOCHS
                fl = loss == "fl"
                rows.append({"epoch": epoch, "loss": loss, "seed": seed, "train_acc": 1.0 if late else 0.9,
                             "test_acc": 0.932 + 0.001 * LOSSES.index(loss), "nc1": 0.005 if late else 0.3,
                             "nc2_w": (0.22 if fl else 0.09) if late else 0.3,
                             "nc2_h": (0.2 if fl else 0.08) if late else 0.3,
                             "nc3": (0.22 if fl else 0.09) if late else 0.4,
                             "nc4": 0.99 * RESCALE / np.sqrt(10) if loss == "mse" else 0.1})
    return pd.DataFrame(rows)


def verdicts(ufm=None, history=None, scale="cpu", losses=LOSSES) -> claims.ClaimBook:
    book = claims.ClaimBook("nc_losses", scale=scale, expected_na=EXPECTED_NA)
    return record_claims(book, healthy_ufm() if ufm is None else ufm,
                         healthy_history() if history is None else history,
                         losses=losses, epochs=EPOCHS, ufm_steps=UFM_STEPS, mse_rescale=RESCALE)


def set_final(history, column, value, loss=None, seed=None):
    history = history.copy()
    rows = history.epoch == EPOCHS
    if loss is not None:
        rows &= history.loss == loss
    if seed is not None:
        rows &= history.seed == seed
    history.loc[rows, column] = value
    return history


def test_a_healthy_run_passes_every_claim_and_reproduces():
    book = verdicts()
    assert {c.name: c.verdict for c in book.claims if c.verdict != "INFO"} == {name: "PASS" for name in CHECKED}
    assert not book.reproduces and "not checked by this run: map_acc_gap" in book.judgement.why_not
    book = record_map_claims(book, healthy_cells(), losses=LOSSES)  # the Verdict cell's two calls together
    assert book.reproduces and book.na == 0


def test_smoke_marks_the_budget_claims_na_with_a_reason():
    """The Verdict cell's two calls (network and map claims) together."""
    book = record_map_claims(verdicts(scale="smoke"), healthy_cells(), losses=LOSSES)
    na = [c for c in book.claims if c.verdict == "N/A"]
    assert len(na) == EXPECTED_NA["smoke"] and all(c.note for c in na)
    assert not book.reproduces


def test_worst_does_not_skip_nan():
    assert np.isnan(worst(pd.Series([1.0, np.nan]), "min")) and np.isnan(worst([], "max"))


# --- sabotage: one per checked claim id -------------------------------------------------------

def untrained_ufm() -> pd.DataFrame:
    """A UFM that does not train (lr ~ 0): the features stay at their random start."""
    settings = UFMSettings(dim=20, per_class=5, lr=1e-9, steps=30, eval_points=3)
    return pd.concat([train_ufm(paper_loss(name, SimpleNamespace(ls_alpha=0.05, fl_gamma=3.0, mse_rescale=RESCALE)),
                                settings).assign(loss=name) for name in LOSSES], ignore_index=True)


@pytest.mark.sabotage("ufm_nc1", "ufm_nc2", "ufm_nc3")
def test_sabotage_ufm_that_does_not_train():
    ufm = untrained_ufm()
    book = claims.ClaimBook("nc_losses", scale="cpu")
    record_claims(book, ufm, healthy_history(), losses=LOSSES, epochs=EPOCHS, ufm_steps=30, mse_rescale=RESCALE)
    for name in ("ufm_nc1", "ufm_nc2", "ufm_nc3"):
        assert book.verdict_of(name) == "FAIL", name


@pytest.mark.parametrize("name, column", [("ufm_nc1", "nc1"), ("ufm_nc2", "nc2_h"), ("ufm_nc3", "nc3")])
def test_sabotage_ufm_one_loss_not_collapsed(name, column):
    ufm = healthy_ufm()
    ufm.loc[(ufm.step == UFM_STEPS) & (ufm.loss == "fl"), column] = 0.5
    assert verdicts(ufm=ufm).verdict_of(name) == "FAIL"


def test_sabotage_train_acc():
    """Shuffled labels: the network cannot fit every training label."""
    assert verdicts(history=set_final(healthy_history(), "train_acc", 0.93, loss="ls", seed=1)).verdict_of("train_acc") == "FAIL"


def test_sabotage_nc1_halves():
    """A network that does not train: NC1 at the end equals its early value."""
    history = healthy_history()
    history["nc1"] = 0.3
    assert verdicts(history=history).verdict_of("nc1_halves") == "FAIL"


def test_sabotage_nc1_fall():
    assert verdicts(history=set_final(healthy_history(), "nc1", 0.1, loss="mse", seed=0)).verdict_of("nc1_fall") == "FAIL"


def test_sabotage_nc1_final():
    assert verdicts(history=set_final(healthy_history(), "nc1", 0.05, loss="ce", seed=1)).verdict_of("nc1_final") == "FAIL"


@pytest.fixture(scope="module")
def untrained_network_metrics():
    """NC metrics of an untrained 3x512 MLP on MNIST training images (what the claim must not pass on)."""
    torch.manual_seed(0)
    cfg = SimpleNamespace(dataset="mnist", train_per_class=30, test_per_class=1, seed=0, cifar_dir=None,
                          cifar100_dir=None)
    (x, y), _ = load_data(cfg)
    model = create_model("mlp", num_classes=10, in_features=x[0].numel(), widths=[512] * 3)
    _, features = predict(model, x, 256, torch.device("cpu"))
    return collapse_metrics(features.numpy(), y.numpy(), model.fc.weight, model.fc.bias)


def test_sabotage_nc23_final(untrained_network_metrics):
    """The untrained network's class-mean NC2 and NC3 fail the 0.2 bound (the classifier's NC2 alone would pass)."""
    untrained = untrained_network_metrics
    assert untrained["nc2_w"] < 0.2  # why the classifier's NC2 is not the asserted half
    history = healthy_history()
    for column in ("nc2_w", "nc2_h", "nc3"):
        history = set_final(history, column, untrained[column])
    book = verdicts(history=history)
    assert book.verdict_of("nc23_final") == "FAIL"
    assert max(untrained["nc2_h"], untrained["nc3"]) > 0.2


def test_sabotage_acc_band():
    history = set_final(healthy_history(), "test_acc", 0.9, loss="fl")
    assert verdicts(history=history).verdict_of("acc_band") == "FAIL"


def test_acc_band_is_na_with_one_loss_and_applies_at_paper():
    history = healthy_history()
    one = verdicts(history=history[history.loss == "ce"], losses=["ce"])
    claim = next(c for c in one.claims if c.name == "acc_band")
    assert claim.verdict == "N/A" and "two losses" in claim.note
    assert not one.reproduces
    assert verdicts(scale="paper").verdict_of("acc_band") == "PASS"


def test_fl_is_shown_not_asserted():
    book = verdicts(history=set_final(healthy_history(), "nc3", 0.24, loss="fl"))
    assert book.verdict_of("nc23_final_fl") == "INFO" and book.verdict_of("nc23_final") == "PASS"


@pytest.mark.sabotage(*CHECKED)
@pytest.mark.parametrize("name", CHECKED)
def test_sabotage_nan_fails_every_claim(name):
    """A NaN in the inputs of each claim gives FAIL, never PASS."""
    ufm, history = healthy_ufm(), healthy_history()
    column = {"ufm_nc1": "nc1", "ufm_nc2": "nc2_w", "ufm_nc3": "nc3", "train_acc": "train_acc", "nc1_halves": "nc1",
              "nc1_fall": "nc1", "nc1_final": "nc1", "nc23_final": "nc2_h", "acc_band": "test_acc"}[name]
    if name.startswith("ufm"):
        ufm.loc[(ufm.step == UFM_STEPS) & (ufm.loss == "ce"), column] = np.nan
    elif name == "nc1_halves":
        history.loc[(history.epoch == 9) & (history.loss == "ls") & (history.seed == 0), column] = np.nan
    else:
        history = set_final(history, column, np.nan, loss="ce", seed=1)
    assert verdicts(ufm=ufm, history=history).verdict_of(name) == "FAIL"


# --- the width x epochs map (section 3) -------------------------------------------------------

MAP_CHECKED = ["map_acc_gap", "map_nc1_epochs"]
WIDTHS, MAP_EPOCHS = (64, 512), (25, 200)


def healthy_cells(seeds=(0,)) -> pd.DataFrame:
    """A grid like the measured `cpu` one: losses within 0.6 points, NC1 about 10x lower after 200 epochs."""
    rows = []
    for width in WIDTHS:
        for epochs in MAP_EPOCHS:
            for loss in LOSSES:
                for seed in seeds:
                    rows.append({"width": width, "epochs": epochs, "loss": loss, "seed": seed, "train_acc": 1.0,
                                 "test_acc": 0.935 + 0.002 * LOSSES.index(loss),
                                 "nc1": (0.004 if epochs == 200 else 0.05) * (1.0 if width == 64 else 0.5)})
    return pd.DataFrame(rows)


def map_verdicts(cells=None, scale="cpu", losses=LOSSES) -> claims.ClaimBook:
    book = claims.ClaimBook("nc_losses", scale=scale, expected_na=EXPECTED_NA)
    return record_map_claims(book, healthy_cells() if cells is None else cells, losses=losses)


def test_a_healthy_map_passes_and_its_values_are_shown():
    book = map_verdicts()
    assert {c.name: c.verdict for c in book.claims} == {"map_acc_gap": "PASS", "map_acc_gap_smallest": "INFO",
                                                        "map_nc1_epochs": "PASS", "map_nc1_width": "INFO"}
    measured = {c.name: c.measured for c in book.claims}
    assert measured["map_acc_gap"] == pytest.approx(0.006) and measured["map_nc1_epochs"] == pytest.approx(0.08)
    assert measured["map_nc1_width"] == pytest.approx(0.5)


def test_map_claims_na_at_smoke_and_without_ce_and_nc_shown_at_paper():
    assert {c.verdict for c in map_verdicts(scale="smoke").claims if c.name in MAP_CHECKED} == {"N/A"}
    cells = healthy_cells()
    no_ce = map_verdicts(cells[cells.loss != "ce"], losses=LOSSES[1:])
    assert no_ce.verdict_of("map_acc_gap") == "N/A"
    one_count = map_verdicts(cells[cells.epochs == 200])
    assert one_count.verdict_of("map_nc1_epochs") == "N/A"
    paper = map_verdicts(scale="paper")
    assert paper.verdict_of("map_acc_gap") == "PASS" and paper.verdict_of("map_nc1_epochs") == "INFO"


def test_paper_scale_shows_the_network_nc_thresholds():
    book = verdicts(scale="paper")
    assert {name: book.verdict_of(name) for name in ("nc1_halves", "nc1_fall", "nc1_final", "nc23_final")} == \
        dict.fromkeys(("nc1_halves", "nc1_fall", "nc1_final", "nc23_final"), "INFO")
    assert book.verdict_of("train_acc") == book.verdict_of("acc_band") == book.verdict_of("ufm_nc1") == "PASS"


def test_sabotage_map_acc_gap():
    """One loss 3 points behind CE at the widest, longest cell (where the paper says they are equal)."""
    cells = healthy_cells()
    cells.loc[(cells.width == 512) & (cells.epochs == 200) & (cells.loss == "fl"), "test_acc"] = 0.905
    assert map_verdicts(cells).verdict_of("map_acc_gap") == "FAIL"


def test_sabotage_map_nc1_epochs():
    """A network that does not train (lr 1e-9): NC1 after more epochs is NC1 after fewer; trained for real."""
    cfg = SimpleNamespace(dataset="mnist", train_per_class=8, test_per_class=2, seed=0, ls_alpha=0.05, fl_gamma=3.0,
                          mse_rescale=RESCALE)
    train, test = load_data(cfg)
    cells = train_grid(lambda width, loss: (grid_network("mlp", width, num_classes=10, in_features=784, depth=1),
                                            paper_loss(loss, cfg)), [16], [1, 3], ["ce", "mse"], [0], train, test,
                       TrainSettings(epochs=1, batch_size=16, lr=1e-9, eval_points=2))
    assert map_verdicts(cells, losses=["ce", "mse"]).verdict_of("map_nc1_epochs") == "FAIL"


@pytest.mark.sabotage(*MAP_CHECKED)
@pytest.mark.parametrize("name, column", [("map_acc_gap", "test_acc"), ("map_nc1_epochs", "nc1")])
def test_sabotage_nan_fails_the_map_claims(name, column):
    cells = healthy_cells()
    cells.loc[(cells.width == 512) & (cells.epochs == 200) & (cells.loss == "mse"), column] = np.nan
    assert map_verdicts(cells).verdict_of(name) == "FAIL"
