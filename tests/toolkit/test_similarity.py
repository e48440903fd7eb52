"""Closed-form checks of sample-wise COS, linear CKA and their agreement."""
import numpy as np
import pytest
import torch

from shared.toolkit.similarity import agreement, cka_matrix, class_mean_projection, cos_matrix, linear_cka, upper_pairs


@pytest.fixture
def X() -> torch.Tensor:
    return torch.randn(200, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def orthogonal(d: int, seed: int = 1) -> torch.Tensor:
    A = torch.randn(d, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return torch.linalg.qr(A).Q


def cos(X: torch.Tensor, Y: torch.Tensor) -> float:
    return float(cos_matrix([X, Y])[0, 1])


def test_cos_of_a_layer_with_itself_is_one(X):
    assert cos(X, X) == pytest.approx(1.0)
    assert torch.allclose(cos_matrix([X, X, X]).diagonal(), torch.ones(3, dtype=torch.float64))


def test_cos_with_the_negated_layer_is_minus_one(X):
    assert cos(X, -X) == pytest.approx(-1.0)


def test_cos_ignores_scale_and_a_constant_shift(X):
    Y = X + 0.5 * torch.randn_like(X)
    shifted = 3.0 * Y + torch.arange(8, dtype=torch.float64)
    assert cos(X, shifted) == pytest.approx(cos(X, Y))


def test_cos_centres_over_samples_not_features(X):
    """A shift that is constant over samples leaves COS at 1; per-sample shifts do not."""
    assert cos(X, X + 10.0) == pytest.approx(1.0)
    per_sample = X + torch.linspace(-5, 5, 200, dtype=torch.float64)[:, None]
    assert cos(X, per_sample) < 0.99


def test_cos_matches_a_per_sample_loop(X):
    Y = X @ orthogonal(8) + 0.1
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    expected = np.mean([float(a @ b / (a.norm() * b.norm())) for a, b in zip(Xc, Yc)])
    assert cos(X, Y) == pytest.approx(expected)


def test_cos_is_not_rotation_invariant_but_cka_is(X):
    Q = orthogonal(8)
    assert cos(X, X @ Q) < 0.9
    assert linear_cka(X, X @ Q) == pytest.approx(1.0)


def test_cka_ignores_isotropic_scale(X):
    assert linear_cka(X, 2.5 * X) == pytest.approx(1.0)
    assert linear_cka(X, -X, unbiased=True) == pytest.approx(1.0)


def test_cka_of_independent_layers_is_small():
    g = torch.Generator().manual_seed(2)
    A, B = torch.randn(5000, 4, generator=g), torch.randn(5000, 4, generator=g)
    assert linear_cka(A, B) < 0.01
    assert abs(linear_cka(A, B, unbiased=True)) < 0.01


def test_cka_accepts_different_widths(X):
    assert linear_cka(X, X[:, :3]) < 1.0
    assert linear_cka(X, torch.cat([X, X], 1)) == pytest.approx(1.0)


def test_unbiased_hsic_matches_the_gram_formula():
    g = torch.Generator().manual_seed(3)
    X = torch.randn(30, 5, generator=g, dtype=torch.float64)
    Y = X[:, :3] + torch.randn(30, 3, generator=g, dtype=torch.float64)

    def hsic(K, L):
        n = K.shape[0]
        K, L = K - torch.diag(K.diagonal()), L - torch.diag(L.diagonal())
        one = torch.ones(n, dtype=torch.float64)
        return (torch.trace(K @ L) + (one @ K @ one) * (one @ L @ one) / ((n - 1) * (n - 2))
                - 2 / (n - 2) * (one @ K @ L @ one)) / (n * (n - 3))

    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    K, L = Xc @ Xc.T, Yc @ Yc.T
    expected = hsic(K, L) / torch.sqrt(hsic(K, K) * hsic(L, L))
    assert linear_cka(X, Y, unbiased=True) == pytest.approx(float(expected))


def test_biased_and_unbiased_cka_agree_at_large_n():
    g = torch.Generator().manual_seed(4)
    X = torch.randn(20000, 16, generator=g, dtype=torch.float64)
    Y = X @ torch.randn(16, 16, generator=g, dtype=torch.float64) + 2 * torch.randn(20000, 16, generator=g, dtype=torch.float64)
    assert linear_cka(X, Y) == pytest.approx(linear_cka(X, Y, unbiased=True), abs=1e-2)


def test_matrices_are_symmetric_with_unit_diagonal(X):
    H = torch.stack([X, X + 0.3 * torch.randn_like(X), torch.randn_like(X)])
    for M in (cos_matrix(H), cka_matrix(H), cka_matrix(H, unbiased=True)):
        assert torch.allclose(M, M.T)
        assert torch.allclose(M.diagonal(), torch.ones(3, dtype=torch.float64))


def test_upper_pairs_reads_l_less_than_l_prime():
    M = np.arange(9).reshape(3, 3)
    assert upper_pairs(M).tolist() == [1, 2, 5]


def test_agreement_is_spearman_over_upper_pairs():
    A = np.array([[1, .9, .5], [.9, 1, .8], [.5, .8, 1]])
    assert agreement(A, A ** 3) == pytest.approx(1.0)
    B = np.array([[1, .1, .9], [.1, 1, .5], [.9, .5, 1]])
    assert agreement(A, B) == pytest.approx(-1.0)


def test_class_mean_projection_puts_every_layer_on_the_reference_plane():
    labels = np.repeat(np.arange(3), 10)
    corners = torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]], dtype=torch.float64)
    last = corners[labels] + 0.01 * torch.randn(30, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    P = class_mean_projection([5.0 * last, last], labels)
    assert P.shape == (2, 3, 2)
    assert np.allclose(P[0], P[1])  # the scale of a layer does not matter
    assert np.allclose((P[1] ** 2).sum() / 3, 1.0)  # three centred means span a plane: nothing is lost
