"""shared.toolkit.robust_subspace: SVD and FMS bases, principal angles, the brief's planted-subspace test."""
import numpy as np
import pytest

from shared.errors import ParameterError
from shared.toolkit.robust_subspace import (fms_basis, gaussian_outliers, planted_subspace, principal_angles,
                                            svd_basis)


def test_svd_with_the_rank_reconstructs_exactly():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 4)) @ rng.standard_normal((4, 20))
    V = svd_basis(X, 4)
    assert V.shape == (20, 4)
    np.testing.assert_allclose(V.T @ V, np.eye(4), atol=1e-10)
    np.testing.assert_allclose(X @ V @ V.T, X, atol=1e-10)


def test_principal_angles_of_a_span_with_itself_are_zero_and_of_orthogonal_spans_ninety():
    E = np.eye(6)
    assert principal_angles(E[:, :3], E[:, :3] @ np.linalg.qr(np.random.default_rng(1).standard_normal((3, 3)))[0]).max() < 1e-6
    np.testing.assert_allclose(principal_angles(E[:, :2], E[:, 2:4]), [90.0, 90.0], atol=1e-9)
    tilted = np.c_[np.cos(np.deg2rad(10)) * E[:, 0] + np.sin(np.deg2rad(10)) * E[:, 1]]
    assert principal_angles(E[:, :1], tilted)[0] == pytest.approx(10.0, abs=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fms_recovers_a_planted_subspace_where_svd_is_off_by_degrees(seed):
    # the brief: D = 40, d = 5, 200 inliers plus 30% Gaussian outliers of inlier norm
    X, basis, is_outlier = planted_subspace(40, 5, 200, 0.3, seed)
    assert is_outlier.sum() == 85
    assert principal_angles(fms_basis(X, 5), basis).max() < 0.1
    assert principal_angles(svd_basis(X, 5), basis).max() > 1.0


def test_fms_without_iterations_is_the_svd_basis_and_on_clean_data_agrees_with_it():
    X, basis, _ = planted_subspace(20, 3, 100, 0.0, 0)
    np.testing.assert_allclose(fms_basis(X, 3, iters=0), svd_basis(X, 3))
    V, steps = fms_basis(X, 3, return_iters=True)
    assert principal_angles(V, basis).max() < 1e-3 and steps <= 200


def test_gaussian_outliers_have_the_mean_inlier_norm_and_the_right_count():
    inliers = np.random.default_rng(0).standard_normal((70, 8)) * 3
    out = gaussian_outliers(inliers, 0.3, np.random.default_rng(1))
    assert len(out) == 30
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), np.linalg.norm(inliers, axis=1).mean())


def test_bad_dimensions_name_the_parameter():
    with pytest.raises(ParameterError, match="'d'"):
        svd_basis(np.ones((5, 3)), 4)
    with pytest.raises(ParameterError, match="'X'"):
        fms_basis(np.ones(5), 1)
    with pytest.raises(ParameterError, match="outlier_fraction"):
        planted_subspace(10, 2, 20, 1.0, 0)
