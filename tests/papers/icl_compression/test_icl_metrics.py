"""TDNV and the bias-variance split against closed forms and invariances."""
import numpy as np
import pytest
import torch

from shared.errors import ParameterError
from shared.papers.icl_compression.metrics import relative_bias_variance, strictly_decreasing_ratio, tdnv, tdnv_per_layer


def clusters(means, spreads, d=4):
    """Two points mu_t +- s_t e_1 per task: task mean mu_t, spread v_t = s_t^2."""
    H, labels = [], []
    for t, (mu, s) in enumerate(zip(means, spreads)):
        mu = np.asarray(mu, dtype=float)
        e = np.zeros(d)
        e[0] = s
        H += [mu + e, mu - e]
        labels += [t, t]
    return torch.tensor(np.array(H)), torch.tensor(labels)


def test_zero_spread_gives_zero():
    H, labels = clusters([[0, 0, 0, 0], [1, 2, 0, 0], [0, 0, 3, 1]], [0, 0, 0])
    assert tdnv(H, labels) == 0.0


def test_two_tasks_closed_form():
    D, s0, s1 = 3.0, 0.5, 2.0
    H, labels = clusters([[0, 0, 0, 0], [0, D, 0, 0]], [s0, s1])
    expected = (s0**2 + s1**2) / (2 * D**2)
    assert tdnv(H, labels) == pytest.approx(expected)
    assert tdnv(H, labels, reduce="sum") == pytest.approx(2 * expected)


def test_three_tasks_closed_form():
    means = [[0, 0, 0, 0], [0, 4, 0, 0], [0, 0, 2, 0]]
    spreads = [1.0, 0.5, 2.0]
    H, labels = clusters(means, spreads)
    v = np.square(spreads)
    terms = [(v[t] + v[u]) / (2 * np.sum(np.square(np.subtract(means[t], means[u]))))
             for t in range(3) for u in range(3) if t != u]
    assert tdnv(H, labels) == pytest.approx(np.mean(terms))


def test_sum_is_mean_times_ordered_pairs():
    rng = np.random.default_rng(0)
    H, labels = torch.tensor(rng.normal(size=(60, 8))), torch.tensor(np.repeat(np.arange(5), 12))
    assert tdnv(H, labels, "sum") == pytest.approx(tdnv(H, labels, "mean") * 5 * 4)


def test_invariant_to_scaling_translation_rotation():
    rng = np.random.default_rng(1)
    H = rng.normal(size=(40, 6)) + np.repeat(rng.normal(scale=3, size=(4, 6)), 10, axis=0)
    labels = np.repeat(np.arange(4), 10)
    Q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    base = tdnv(H, labels)
    assert tdnv(7.5 * H, labels) == pytest.approx(base)
    assert tdnv(H + rng.normal(size=6) * 100, labels) == pytest.approx(base)
    assert tdnv(H @ Q, labels) == pytest.approx(base)


def test_well_separated_clusters_tend_to_zero():
    rng = np.random.default_rng(2)
    labels = np.repeat(np.arange(3), 20)
    noise = rng.normal(size=(60, 5))
    centres = np.repeat(np.eye(5)[:3], 20, axis=0)
    assert tdnv(noise * 1e-3 + centres * 10, labels) < 1e-6 < tdnv(noise + centres, labels)


def test_per_layer_and_reduce_check():
    rng = np.random.default_rng(3)
    states, labels = torch.tensor(rng.normal(size=(3, 20, 4))), np.repeat(np.arange(2), 10)
    curve = tdnv_per_layer(states, labels)
    assert curve.shape == (3,) and curve[1] == pytest.approx(tdnv(states[1], labels))
    with pytest.raises(ParameterError):
        tdnv(states[0], labels, reduce="max")


def test_relative_bias_variance_closed_form():
    ref = torch.tensor([3.0, 4.0])                    # norm 5
    states = torch.tensor([[3.0, 6.0], [3.0, 4.0]])   # mean (3, 5), spread 1 per point
    bias, var = relative_bias_variance(states, ref)
    assert bias == pytest.approx(1 / 5)
    assert var == pytest.approx(1 / 25)
    assert relative_bias_variance(ref[None].repeat(3, 1), ref) == (0.0, 0.0)


def test_strictly_decreasing_ratio():
    assert strictly_decreasing_ratio([4, 2, 1]) == pytest.approx(0.5)
    assert strictly_decreasing_ratio([4, 2, 2]) == pytest.approx(1.0)
