"""adacontour: the shared basis (coding round trip), the studies and the outlier models."""
import numpy as np
import pytest

from shared.errors import ParameterError
from shared.papers.adacontour import data, experiments as ex
from shared.papers.adacontour.contours import N_BINS, decode, iou


@pytest.fixture(scope="module")
def blobs():
    train, test = data.train_test(data.blob_shapes(0, n_images=1))
    return train, test


def test_blob_shapes_are_connected_inside_and_large(blobs):
    shapes = blobs[0] + blobs[1]
    assert len(shapes) >= 4
    for m in shapes:
        assert 300 < m.sum() < 0.5 * 192 ** 2
        assert not (m[0].any() or m[-1].any() or m[:, 0].any() or m[:, -1].any())


def test_encode_decode_round_trip_through_a_full_rank_basis_is_exact(blobs):
    train = ex.encode_all(blobs[0], 3)
    R = ex.contour_matrix(train)
    assert R.shape[1] == N_BINS and np.all(R >= 0) and R.max() < 1
    basis = ex.fit_basis(R, len(R), "svd")
    for enc, mask in zip(train, blobs[0]):
        scale = ex.max_dist(enc.shape)
        coeffs = basis.code(enc.radii, scale)
        assert coeffs.shape == (enc.n_centers, len(R))
        np.testing.assert_allclose(basis.radii(coeffs, scale), enc.radii, atol=1e-8)
        assert iou(decode(enc, basis.radii(coeffs, scale)), mask) == iou(decode(enc), mask)


def test_centered_basis_codes_around_the_mean(blobs):
    R = ex.contour_matrix(ex.encode_all(blobs[0], 0))
    basis = ex.fit_basis(R, 2, "svd", center_rows=True)
    np.testing.assert_allclose(basis.mean, R.mean(0))
    np.testing.assert_allclose(basis.code(R.mean(0, keepdims=True), 1.0), 0.0, atol=1e-12)


def test_more_coefficients_and_depth_reconstruct_better(blobs):
    study = ex.basis_study(*blobs, depths=[0, 3], Ms=[1, 4, 300], fms_Ms=[4], fms_iters=5)
    t = study.table
    assert set(t.method) == {"svd", "fms", "full"}
    assert ex.lookup(t, depth=0, M=4, method="svd") > ex.lookup(t, depth=0, M=1, method="svd")
    assert ex.lookup(t, depth=3, M=4, method="svd") > ex.lookup(t, depth=0, M=4, method="svd")
    assert np.isnan(ex.lookup(t, depth=0, M=300, method="svd"))  # more coefficients than train contours
    assert ex.lookup(t, depth=3, M=N_BINS, method="full") > 0.95
    assert np.isnan(ex.lookup(t, depth=5, M=8, method="svd"))
    assert (t.stored == t.centers * (2 + t.M)).all()


def test_fms_dimension_above_M_is_truncated_to_M(blobs):
    R = ex.contour_matrix(ex.encode_all(blobs[0], 3))
    basis = ex.fit_basis(R, 3, "fms", fms_iters=5, fms_dim=6)
    assert basis.U.shape == (N_BINS, 3)
    np.testing.assert_allclose(basis.U.T @ basis.U, np.eye(3), atol=1e-10)


def test_outlier_models_and_the_method_gap(blobs):
    R = ex.contour_matrix(ex.encode_all(blobs[0], 0))
    g = ex.add_outliers(R, 0.5, "gaussian", 0)
    assert len(g) == 2 * len(R)
    np.testing.assert_allclose(np.linalg.norm(g[len(R):], axis=1), np.linalg.norm(R, axis=1).mean())
    u = ex.add_outliers(R, 0.5, "uniform", 0)[len(R):]
    assert u.min() >= 0 and u.max() <= 3
    assert ex.add_outliers(R, 0.0, "gaussian", 0) is R
    with pytest.raises(ParameterError, match="outlier_models"):
        ex.add_outliers(R, 0.3, "cauchy", 0)
    with pytest.raises(ParameterError, match="method"):
        ex.fit_basis(R, 2, "rpca")


def test_residual_energy():
    R = np.diag([3.0, 2.0, 1.0])
    assert ex.residual_energy(R, 2) == pytest.approx(1 / 14)
    assert ex.residual_energy(R, 3) == 0.0


def test_horse_depth_curve_at_two_depths():
    table, encodings = ex.depth_curve(data.horse(), [0, 1])
    assert table.centers.tolist() == [1, 2]
    assert table.iou.iloc[1] > table.iou.iloc[0] + 0.05
    assert 0.7 < table.iou.iloc[0] < 0.8


def test_every_figure_draws(blobs):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from shared.papers.adacontour import figures

    study = ex.basis_study(*blobs, depths=[0, 2], Ms=[2, 4], fms_Ms=[4], fms_iters=3)
    robust = ex.robustness(study.R[2], study.test[2], blobs[1], 2, [0.3], ["gaussian", "uniform"], fms_iters=3)
    mask = blobs[0][0]
    table, encodings = ex.depth_curve(mask, [0, 2])
    made = [figures.horse_depths(mask, encodings), figures.depth_curve(table), figures.iou_vs_M(study.table),
            figures.spectra(study.R), figures.basis_shapes(study.bases[2, "svd", 4].U, 8), figures.robustness(robust)]
    assert all(isinstance(f, plt.Figure) for f in made)
    plt.close("all")
