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


# --- issue 10: NC1 on rank-deficient features, the two NC3 definitions --------------------

def reference_nc1(H, y, k, rcond=None):
    """tr(Sigma_W Sigma_B^+) / K with scipy's pinv at a relative tolerance max(K, d) * eps."""
    H = np.asarray(H, dtype=np.float64)
    mu_g = H.mean(0)
    means = np.stack([H[y == c].mean(0) for c in range(k)])
    sigma_w = (H - means[y]).T @ (H - means[y]) / len(H)
    sigma_b = (means - mu_g).T @ (means - mu_g) / k
    rtol = max(k, H.shape[1]) * np.finfo(np.float64).eps if rcond is None else rcond
    return np.trace(sigma_w @ scipy.linalg.pinv(sigma_b, rtol=rtol, atol=0)) / k


def test_nc1_with_duplicated_class_means_does_not_invert_round_off():
    """Classes 0 and 1 hold the same samples: Sigma_B has rank K-2, its (K-1)-th eigenvalue is round-off."""
    H, y, _ = gaussian_mixture()
    H = H.copy()
    H[y == 1] = H[y == 0]
    value = nc1(H, y, K)
    assert np.isfinite(value) and value < 10
    assert value == pytest.approx(reference_nc1(H, y, K), rel=1e-8)


def test_nc1_of_two_identical_classes_is_undefined_not_perfect():
    H, y, _ = gaussian_mixture()
    two = np.isin(y, [0, 1])
    H2, y2 = H[two].copy(), y[two]
    H2[y2 == 1] = H2[y2 == 0]
    assert np.isnan(nc1(H2, y2, 2))


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_nc1_with_features_of_rank_below_k_minus_1(rank):
    rng = np.random.default_rng(3)
    y = np.repeat(np.arange(K), 40)
    basis = rng.normal(size=(rank, D))
    H = (rng.normal(size=(K, rank))[y] + 0.3 * rng.normal(size=(len(y), rank))) @ basis
    value = nc1(H, y, K)
    assert value == pytest.approx(reference_nc1(H, y, K), rel=1e-6)
    assert value < 5


def test_nc3_definitions_are_named_and_pinned():
    """A change of either definition (or of which one `nc3` is) fails here."""
    from shared.toolkit.neural_collapse import NC3_DEFINITIONS, nc3_self_duality, nc3_wm_relation
    assert set(NC3_DEFINITIONS) == {"wm_relation", "self_duality"}
    H, y, W = gaussian_mixture()
    mu_g = H.mean(0)
    M = np.stack([H[y == k].mean(0) for k in range(K)]) - mu_g
    Wc = W - W.mean(0)
    gram = Wc @ M.T
    etf = (np.eye(K) - np.ones((K, K)) / K) / np.sqrt(K - 1)
    wm = np.linalg.norm(gram / np.linalg.norm(gram) - etf)
    dual = np.linalg.norm(W / np.linalg.norm(W) - M / np.linalg.norm(M))
    assert nc3(W, H, y, K) == pytest.approx(wm, rel=1e-12)
    assert nc3_wm_relation(W, H, y, K) == pytest.approx(wm, rel=1e-12)
    assert NC3_DEFINITIONS["wm_relation"](W, H, y, K) == pytest.approx(wm, rel=1e-12)
    assert nc3_self_duality(W, H, y, K) == pytest.approx(dual, rel=1e-12)
    assert NC3_DEFINITIONS["self_duality"](W, H, y, K) == pytest.approx(dual, rel=1e-12)
    assert collapse_metrics(H, y, W)["nc3"] == pytest.approx(wm, rel=1e-12)


def test_nc3_definitions_differ_where_they_should():
    """W = 2 M: both are 0. W = M rotated inside span(M) by a permutation: W M^T changes, so both see it;
    W = -M: self-duality is 2, the W-M relation too (gram = -ETF)."""
    from shared.toolkit.neural_collapse import nc3_self_duality, nc3_wm_relation
    H, y, M = collapsed()
    assert nc3_self_duality(2 * M, H, y, K) == pytest.approx(0, abs=1e-12)
    assert nc3_wm_relation(2 * M, H, y, K) == pytest.approx(0, abs=1e-12)
    assert nc3_self_duality(-M, H, y, K) == pytest.approx(2, rel=1e-12)
    assert nc3_wm_relation(-M, H, y, K) == pytest.approx(2, rel=1e-12)
