"""The shared training loop on a tiny problem (shared.toolkit.train)."""
import numpy as np
import pandas as pd
import torch

from shared.toolkit.losses import make_loss
from shared.toolkit.models import create_model
from shared.toolkit.train import TrainSettings, best_validation, log_spaced, train_classifier, train_runs


def blobs(n_per_class=20, k=3, d=8, seed=0):
    """Gaussian blobs around fixed class centres; ``seed`` draws the samples."""
    centres = 3 * torch.randn(k, d, generator=torch.Generator().manual_seed(0))
    y = torch.arange(k).repeat_interleave(n_per_class)
    return centres[y] + torch.randn(len(y), d, generator=torch.Generator().manual_seed(seed + 1)), y


def test_log_spaced_grid():
    assert log_spaced(1, 5) == [1]
    grid = log_spaced(200, 10)
    assert grid[0] == 1 and grid[-1] == 200 and grid == sorted(set(grid)) and len(grid) <= 11
    assert log_spaced(7, 50) == list(range(1, 8))


def test_training_fits_and_logs_the_grid():
    torch.manual_seed(0)
    train, test = blobs(), blobs(seed=1)
    model = create_model("mlp", in_features=8, num_classes=3, widths=(32,))
    settings = TrainSettings(epochs=30, batch_size=16, lr=0.05, weight_decay=1e-3, eval_points=6)
    history = train_classifier(model, make_loss("ce"), train, test, settings, seed=0)
    assert list(history["epoch"]) == log_spaced(30, 6)
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0] / 2
    assert history["train_acc"].iloc[-1] == 1.0 and history["test_acc"].iloc[-1] > 0.9
    assert history["nc1"].iloc[-1] < history["nc1"].iloc[0]
    assert {"lr", "nc2_w", "nc2_h", "nc3", "nc4"} <= set(history.columns)


def test_learning_rate_steps_at_three_and_five_sevenths():
    torch.manual_seed(0)
    model = create_model("mlp", in_features=8, num_classes=3, widths=(4,))
    settings = TrainSettings(epochs=14, batch_size=60, lr=1.0, eval_points=50)
    history = train_classifier(model, make_loss("ce"), blobs(), None, settings).set_index("epoch")
    np.testing.assert_allclose(history.loc[[6, 7, 10, 11], "lr"], [1.0, 0.1, 0.1, 0.01])
    assert "test_acc" not in history


def test_training_is_deterministic():
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = create_model("mlp", in_features=8, num_classes=3, widths=(8,))
        runs.append(train_classifier(model, make_loss("fl"), blobs(), None, TrainSettings(epochs=3, batch_size=16, eval_points=3), seed=5))
    assert runs[0].equals(runs[1])


def test_train_runs_stacks_histories_and_reseeds():
    def build(name):
        return create_model("mlp", in_features=8, num_classes=3, widths=(8,)), make_loss(name)

    settings = TrainSettings(epochs=2, batch_size=30, eval_points=2)
    history = train_runs(build, ["ce", "mse"], [0, 1], blobs(), None, settings)
    assert len(history) == 8 and set(history["run"]) == {"ce", "mse"} and set(history["seed"]) == {0, 1}
    again = train_runs(build, ["mse"], [1], blobs(), None, settings)
    mse1 = history[(history["run"] == "mse") & (history["seed"] == 1)].reset_index(drop=True)
    assert mse1.equals(again)


def test_train_runs_in_two_processes_equal_the_loop():
    """A local ``build`` (as a notebook's lambda) reaches the worker processes; the rows are the loop's."""
    def build(name):
        return create_model("mlp", in_features=8, num_classes=3, widths=(8,)), make_loss(name)

    settings = TrainSettings(epochs=2, batch_size=30, eval_points=2)
    loop = train_runs(build, ["ce", "mse"], [0, 1], blobs(), None, settings)
    two = train_runs(build, ["ce", "mse"], [0, 1], blobs(), None, settings, n_jobs=2)
    assert list(two["run"]) == list(loop["run"]) and list(two["seed"]) == list(loop["seed"])
    np.testing.assert_allclose(two.drop(columns="run").to_numpy(float), loop.drop(columns="run").to_numpy(float),
                               rtol=1e-6)


def test_best_validation_reports_the_test_accuracy_of_the_best_validation_epoch():
    history = pd.DataFrame({"run": ["ce"] * 3 + ["mse"] * 3, "seed": 0, "epoch": [1, 2, 4] * 2,
                            "val_acc": [0.5, 0.9, 0.8, 0.7, 0.7, np.nan], "test_acc": [0.4, 0.85, 0.9, 0.6, 0.65, 0.7],
                            "nc1": [1.0, 0.5, 0.1, 1.0, 0.5, 0.2]})
    rows = best_validation(history).set_index("run")
    assert rows.loc["ce", ["test_acc", "best_epoch", "nc1"]].tolist() == [0.85, 2, 0.1]  # NC from the last epoch
    assert rows.loc["mse", ["test_acc", "best_epoch"]].tolist() == [0.6, 1]  # ties: the first; NaN never best
    last = best_validation(history.drop(columns="val_acc")).set_index("run")
    assert last.test_acc.tolist() == [0.9, 0.7] and last.best_epoch.tolist() == [4, 4]


def test_validation_accuracy_is_logged():
    torch.manual_seed(0)
    model = create_model("mlp", num_classes=3, in_features=8, widths=[16])
    history = train_classifier(model, make_loss("ce"), blobs(), None, TrainSettings(epochs=2, batch_size=16, eval_points=2),
                               val=blobs(n_per_class=5, seed=3))
    assert history.val_acc.between(0, 1).all() and "test_acc" not in history
