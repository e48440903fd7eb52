"""icl_compression: the per-layer linear readout (early-exit substitute) on synthetic states."""
import numpy as np
import pytest

from shared.errors import ParameterError
from shared.papers.icl_compression.readout import (majority_chance, readout_accuracy, readout_predictions,
                                                   stratified_folds)

TASKS = ["a", "b", "c"]


def synthetic(n_per_task: int = 40, d: int = 16, seed: int = 0):
    """(3, n, d) states: layer 1 noise, layers 2-3 encode the target (5 classes) more and more clearly."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(TASKS)), n_per_task)
    targets = rng.integers(0, 5, size=labels.size)
    code = 3 * np.eye(5, d)[targets]
    noise = rng.standard_normal((3, labels.size, d))
    states = np.stack([noise[0], noise[1] + 0.5 * code, noise[2] + 2 * code]).astype(np.float32)
    return states, targets, labels


def test_folds_are_stratified_seeded_and_balanced():
    labels = np.repeat([0, 1, 2], [10, 7, 12])
    folds = stratified_folds(labels, 2, seed=3)
    assert np.array_equal(folds, stratified_folds(labels, 2, seed=3))
    assert not np.array_equal(folds, stratified_folds(labels, 2, seed=4))
    for t in range(3):
        counts = np.bincount(folds[labels == t], minlength=2)
        assert abs(counts[0] - counts[1]) <= 1
    with pytest.raises(ParameterError, match="readout_folds"):
        stratified_folds(labels, 1, seed=0)


def test_readout_finds_the_encoded_answer_and_not_noise():
    states, targets, labels = synthetic()
    table = readout_accuracy(states, targets, labels, TASKS, n_folds=2, seed=0)
    by_layer = table.groupby("layer")["accuracy"].mean()
    assert set(table["task"]) == set(TASKS) and by_layer.index.tolist() == [1, 2, 3]
    assert by_layer[3] > 0.95 and by_layer[1] < 0.4 and by_layer[1] < by_layer[2] < by_layer[3]


def test_readout_is_scored_on_held_out_prompts_only():
    """Each prompt has its own feature (memorizable) and a random target: held out, nothing is learnable."""
    n = 120
    labels = np.repeat(np.arange(3), n // 3)
    targets = np.random.default_rng(1).integers(0, 4, size=n)
    states = 5 * np.eye(n, dtype=np.float32)[None]
    accuracy = (readout_predictions(states, targets, labels, n_folds=2, seed=0) == targets).mean()
    assert accuracy <= majority_chance(targets, labels, 2, 0) + 0.05


def test_shuffled_targets_fall_to_chance():
    states, targets, labels = synthetic()
    shuffled = np.random.default_rng(2).permutation(targets)
    acc = readout_accuracy(states, shuffled, labels, TASKS).groupby("layer")["accuracy"].mean()
    assert acc.max() < 0.45


def test_majority_chance():
    labels = np.repeat([0, 1], 10)
    targets = np.array([7] * 15 + [3] * 5)
    assert majority_chance(targets, labels, 2, 0) == pytest.approx(0.75)
