"""Closed-form cases of the neural-collapse metrics (shared.toolkit.neural_collapse)."""
import numpy as np
import pytest
import scipy.linalg
import torch

from shared.toolkit.neural_collapse import collapse_metrics, etf_gap, nc1, nc2_classifier, nc2_means, nc3, nc4

K, D = 5, 12


def simplex_etf(k: int, d: int, seed: int = 0) -> np.ndarray:
    """K x d rows forming a simplex ETF (unit norm, pairwise cosine -1/(K-1)) in a random subspace."""
    basis, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, k)))
    centred = np.eye(k) - np.ones((k, k)) / k
    return np.sqrt(k / (k - 1)) * centred @ basis.T


def collapsed(n_per_class: int = 4, offset: float = 0.0):
    """Features equal to their class's ETF vertex (plus a common offset), W = the vertices."""
    means = simplex_etf(K, D)
    y = np.repeat(np.arange(K), n_per_class)
    return means[y] + offset, y, means


def gaussian_mixture(n_per_class: int = 50, seed: int = 1):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(K), n_per_class)
    H = rng.normal(size=(K, D))[y] + rng.normal(size=(len(y), D))
    return H, y, rng.normal(size=(K, D))


def test_simplex_etf_is_collapse():
    H, y, W = collapsed(offset=3.0)
    metrics = collapse_metrics(H, y, W, b=-W @ H.mean(0))
    for name, value in metrics.items():
        assert value == pytest.approx(0, abs=1e-12), name


def test_random_features_are_far_from_collapse():
    H, y, W = gaussian_mixture()
    assert 0.1 < nc1(H, y, K) < 10
    for value in (nc2_classifier(W), nc2_means(H, y, K), nc3(W, H, y, K)):
        assert 0.1 < value < 2


def test_nc1_matches_scipy_pinv_in_float64():
    H, y, _ = gaussian_mixture()
    mu_g = H.mean(0)
    means = np.stack([H[y == k].mean(0) for k in range(K)])
    sigma_w = (H - means[y]).T @ (H - means[y]) / len(H)
    sigma_b = (means - mu_g).T @ (means - mu_g) / K
    expected = np.trace(sigma_w @ scipy.linalg.pinv(sigma_b)) / K
    assert nc1(H, y, K) == pytest.approx(expected, rel=1e-10)


def test_nc1_ignores_round_off_directions_of_float32_features():
    """d >> K float32 features: inverting Sigma_B only on its top K-1 eigenpairs stays finite and exact."""
    H, y, _ = gaussian_mixture()
    wide = np.concatenate([H, np.zeros((len(H), 200))], axis=1).astype(np.float32)
    assert nc1(wide, y, K) == pytest.approx(nc1(H.astype(np.float32), y, K), rel=1e-6)


def test_metrics_are_scale_invariant():
    H, y, W = gaussian_mixture()
    base, scaled = collapse_metrics(H, y, W), collapse_metrics(7.5 * H, y, 0.3 * W)
    for name in ("nc1", "nc2_w", "nc2_h", "nc3"):
        assert scaled[name] == pytest.approx(base[name], rel=1e-10), name


def test_centring_w_removes_a_common_row_offset():
    _, _, W = collapsed()
    shifted = W + np.arange(D)
    assert nc2_classifier(shifted, center_w=True) == pytest.approx(0, abs=1e-12)
    assert nc2_classifier(shifted, center_w=False) > 0.1


def test_nc4_is_the_bias_relation():
    H, y, W = gaussian_mixture()
    b = np.arange(K, dtype=float)
    assert nc4(W, b, H) == pytest.approx(np.linalg.norm(W @ H.mean(0) + b))
    assert nc4(W, None, H) == pytest.approx(np.linalg.norm(W @ H.mean(0)))


def test_etf_gap_of_the_etf_gram_is_zero():
    vertices = simplex_etf(K, D)
    assert etf_gap(vertices @ vertices.T) == pytest.approx(0, abs=1e-12)
    assert etf_gap(np.eye(K)) > 0


def test_torch_tensors_are_accepted():
    H, y, W = gaussian_mixture()
    from_numpy = collapse_metrics(H, y, W)
    from_torch = collapse_metrics(torch.tensor(H), torch.tensor(y), torch.tensor(W, requires_grad=True))
    assert from_torch == pytest.approx(from_numpy)


def test_a_class_without_samples_is_an_error():
    H, y, W = gaussian_mixture()
    with pytest.raises(ValueError, match=r"classes \[4\] have no samples"):
        collapse_metrics(H[y < 4], y[y < 4], W)
