"""A linear readout of the answer at each layer: the substitute for the early-exit curve.

The paper's early exit decodes the layer-l state of the last prompt token with the model's own final norm and
unembedding (logit lens). On SmolLM2-135M that gives 0 until the last two layers, so a labelled substitute
asks instead whether the answer is *linearly* decodable from the layer-l state:
at each layer a linear classifier is trained to predict the answer's first token on some prompts and scored
on the others: sklearn's ``RidgeClassifier`` (least squares on one-hot answers with an L2 penalty ``alpha``,
argmax), on features standardised with the training fold's mean and spread. The
folds split the prompts, stratified by task and seeded, and each prompt is scored once, by the readout that
did not see it. It reads the states the K sweep already holds: no forward pass.

A ridge readout is closed-form: 60 fits (30 layers x 2 folds, 200 prompts of 576 features, 54 answers) take
0.3-0.5 s in a `cpu` run, where a logistic regression took about 1 s per fit (lbfgs) for the same held-out accuracy
within 0.05 (layers 1, 21, 29, one seed). The fits run with one BLAS thread, which keeps them from fighting
torch's threads on a busy machine.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from threadpoolctl import threadpool_limits

from shared.errors import ParameterError


def stratified_folds(labels, n_folds: int, seed: int) -> np.ndarray:
    """Fold id (0..n_folds-1) of every sample: each task's samples, in a seeded random order, dealt in turn."""
    labels = np.asarray(labels)
    if n_folds < 2:
        raise ParameterError("readout_folds", f"needs at least 2 folds, got {n_folds}")
    rng = np.random.default_rng([seed, n_folds])
    folds = np.empty(len(labels), dtype=int)
    for task in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == task))
        folds[members] = np.arange(len(members)) % n_folds
    return folds


def fit_predict(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """Predictions on ``test_x`` of a ridge classifier fit on standardised ``train_x`` (float64)."""
    from sklearn.linear_model import RidgeClassifier

    if len(np.unique(train_y)) < 2:  # one class only: the readout can only say that class
        return np.full(len(test_x), train_y[0])
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    clf = RidgeClassifier(alpha=alpha).fit((train_x - mean) / std, train_y)
    return clf.predict((test_x - mean) / std)


def readout_predictions(states, targets, labels, n_folds: int = 2, seed: int = 0, alpha: float = 1.0) -> np.ndarray:
    """(L, n) held-out predictions of a per-layer readout of ``targets`` from (L, n, d) ``states``.

    Prompt i is predicted by the readout trained on the folds that do not hold it
    (:func:`stratified_folds` of the task ``labels``).
    """
    X = torch.as_tensor(states).detach().to("cpu", torch.float64).numpy()
    y, folds = np.asarray(targets), stratified_folds(labels, n_folds, seed)
    predictions = np.empty(X.shape[:2], dtype=y.dtype)
    with threadpool_limits(limits=1):
        for layer in range(X.shape[0]):
            for fold in range(n_folds):
                test = folds == fold
                predictions[layer, test] = fit_predict(X[layer, ~test], y[~test], X[layer, test], alpha)
    return predictions


def majority_chance(targets, labels, n_folds: int = 2, seed: int = 0) -> float:
    """Held-out accuracy of always saying the training folds' most frequent answer (the chance level)."""
    y, folds = np.asarray(targets), stratified_folds(labels, n_folds, seed)
    correct = []
    for fold in range(n_folds):
        values, counts = np.unique(y[folds != fold], return_counts=True)
        correct.append(y[folds == fold] == values[np.argmax(counts)])
    return float(np.concatenate(correct).mean())


def readout_table(predictions: np.ndarray, targets, labels, tasks: list[str]) -> pd.DataFrame:
    """Rows (layer 1..L, task, accuracy): held-out readout accuracy per layer and task."""
    correct = predictions == np.asarray(targets)[None]
    labels = np.asarray(labels)
    return pd.DataFrame([{"layer": layer + 1, "task": t, "accuracy": float(correct[layer, labels == i].mean())}
                         for layer in range(correct.shape[0]) for i, t in enumerate(tasks)])


def readout_accuracy(states, targets, labels, tasks: list[str], n_folds: int = 2, seed: int = 0,
                     alpha: float = 1.0) -> pd.DataFrame:
    """Per-layer, per-task held-out accuracy of the linear readout (:func:`readout_predictions`)."""
    return readout_table(readout_predictions(states, targets, labels, n_folds, seed, alpha), targets, labels, tasks)
