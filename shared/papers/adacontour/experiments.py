"""adacontour's experiments: the horse at each depth, the shared basis on blobs (SVD vs FMS, IoU against M
and depth), the rank of local contours, and robustness to outlier rows of the contour matrix."""
from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from shared.errors import ParameterError
from shared.parallel import parallel_map
from shared.papers.adacontour.contours import N_BINS, Encoding, decode, f_measure, hierarchical_encode, iou
from shared.papers.adacontour.data import fit_instance
from shared.toolkit.robust_subspace import fms_basis, gaussian_outliers, svd_basis

OUTLIER_MODELS = ("gaussian", "uniform")
METHODS = ("svd", "fms")


def blas_threads():
    """Limit numpy's BLAS to $PAPERSUITE_THREADS (the suite only limits torch): on a busy 2-core machine
    two BLAS threads made the repeated SVDs of FMS about 17x slower than one."""
    n = int(os.environ.get("PAPERSUITE_THREADS", 0) or 0)
    return threadpool_limits(limits=n, user_api="blas") if n > 0 else nullcontext()


def max_dist(shape) -> float:
    """Half the image diagonal: the radii of the contour matrix are divided by it."""
    return float(np.hypot(*shape) / 2)


# ----------------------------------------------------------------------------- horse
def depth_curve(mask: np.ndarray, depths, center_mode="hybrid", min_component_px=8, closing_radius=1,
                bound_th=0.008):
    """IoU and F of the uncompressed hierarchical descriptor at each depth: (table, {depth: Encoding})."""
    rows, encodings = [], {}
    for depth in depths:
        enc = hierarchical_encode(mask, depth, center_mode, min_component_px)
        rec = decode(enc, closing_radius=closing_radius)
        encodings[depth] = enc
        rows.append({"depth": depth, "centers": enc.n_centers, "iou": iou(rec, mask),
                     "f": f_measure(rec, mask, bound_th)})
    return pd.DataFrame(rows), encodings


# ----------------------------------------------------------------------------- basis and coding
@dataclass
class Basis:
    """A shared basis U (n x M, orthonormal columns) of normalized radial signatures, and the row mean
    subtracted before coding (zero unless the PCA variant ``center_rows`` is used)."""
    U: np.ndarray
    mean: np.ndarray
    method: str

    @property
    def M(self) -> int:
        return self.U.shape[1]

    def code(self, r: np.ndarray, scale: float) -> np.ndarray:
        return (r / scale - self.mean) @ self.U

    def radii(self, coeffs: np.ndarray, scale: float) -> np.ndarray:
        return (coeffs @ self.U.T + self.mean) * scale


def contour_matrix(encodings: list[Encoding]) -> np.ndarray:
    """Every local signature of ``encodings`` as a row, divided by half the image diagonal."""
    rows = [e.radii / max_dist(e.shape) for e in encodings if e.n_centers]
    return np.vstack(rows) if rows else np.zeros((0, N_BINS))


def fit_basis(R: np.ndarray, M: int, method: str = "svd", center_rows: bool = False, fms_iters: int = 200,
              fms_dim: int | None = None) -> Basis:
    """The top-M basis of the rows of R by SVD, or by FMS with dimension ``fms_dim`` (None: M; a larger
    FMS subspace is truncated to its top-M directions by an SVD of the projected rows)."""
    if method not in METHODS:
        raise ParameterError("method", f"unknown basis method {method!r}", METHODS)
    mean = R.mean(0) if center_rows else np.zeros(R.shape[1])
    X = R - mean
    with blas_threads():
        if method == "svd":
            return Basis(svd_basis(X, M), mean, method)
        d = M if fms_dim is None else max(M, fms_dim)
        V = fms_basis(X, d, iters=fms_iters)
        if d > M:
            V = V @ svd_basis(X @ V, M)
    return Basis(V, mean, method)


def _score_one(enc: Encoding, mask: np.ndarray, basis: Basis | None, closing_radius: int, bound_th: float):
    radii = None
    if basis is not None and enc.n_centers:
        scale = max_dist(enc.shape)
        radii = basis.radii(basis.code(enc.radii, scale), scale)
    rec = decode(enc, radii, closing_radius)
    return iou(rec, mask), f_measure(rec, mask, bound_th)


def score(encodings, masks, basis: Basis | None, closing_radius=1, bound_th=0.008, n_jobs=1):
    """Mean IoU and mean F of the shapes decoded from ``basis`` coefficients (None: the full signatures)."""
    pairs = parallel_map(partial(_score_one, basis=basis, closing_radius=closing_radius, bound_th=bound_th),
                         zip(encodings, masks), n_jobs)
    values = np.array(pairs, dtype=float).reshape(-1, 2)
    return float(np.mean(values[:, 0])), float(np.mean(values[:, 1]))


def encode_all(masks, depth, center_mode="hybrid", min_component_px=8, n_jobs=1) -> list[Encoding]:
    encode = partial(hierarchical_encode, max_depth=depth, center_mode=center_mode, min_component_px=min_component_px)
    return parallel_map(encode, [(m,) for m in masks], n_jobs)


def residual_energy(R: np.ndarray, k: int = 8) -> float:
    """The share of the (uncentered) energy of R outside its top-k singular directions."""
    with blas_threads():
        s2 = np.linalg.svd(R, compute_uv=False) ** 2
    return float(s2[k:].sum() / s2.sum()) if s2.sum() > 0 else float("nan")


@dataclass
class Study:
    """The encodings of one train/test split at each depth, their contour matrices and the IoU table."""
    table: pd.DataFrame
    train: dict
    test: dict
    R: dict
    bases: dict


def basis_study(train_masks, test_masks, depths, Ms, center_mode="hybrid", min_component_px=8, closing_radius=1,
                bound_th=0.008, center_rows=False, fms_iters=200, fms_dim=None, fms_Ms=None, full=True,
                n_jobs=1, progress=lambda x, **k: x) -> Study:
    """Fit the shared basis on the train shapes at each depth (SVD for every M; FMS for ``fms_Ms``) and score
    the test shapes: one row per (depth, method, M) with IoU, F, centers and stored numbers per shape
    (NaN scores where M exceeds the number of train contours)."""
    fms_Ms = list(Ms) if fms_Ms is None else list(fms_Ms)
    rows, train, test, Rs, bases = [], {}, {}, {}, {}
    for depth in progress(list(depths), desc="depths"):
        train[depth] = encode_all(train_masks, depth, center_mode, min_component_px, n_jobs)
        test[depth] = encode_all(test_masks, depth, center_mode, min_component_px, n_jobs)
        R = Rs[depth] = contour_matrix(train[depth])
        centers = float(np.mean([e.n_centers for e in test[depth]]))
        settings = [(m, "svd") for m in Ms] + [(m, "fms") for m in fms_Ms]
        for M, method in settings:
            if M > min(R.shape):  # too few train contours for this M: recorded as NaN, never dropped
                i = f = float("nan")
            else:
                basis = bases[depth, method, M] = fit_basis(R, M, method, center_rows, fms_iters, fms_dim)
                i, f = score(test[depth], test_masks, basis, closing_radius, bound_th, n_jobs)
            rows.append({"depth": depth, "method": method, "M": M, "iou": i, "f": f, "centers": centers,
                         "stored": centers * (2 + M)})
        if full:
            i, f = score(test[depth], test_masks, None, closing_radius, bound_th, n_jobs)
            rows.append({"depth": depth, "method": "full", "M": N_BINS, "iou": i, "f": f, "centers": centers,
                         "stored": centers * (2 + N_BINS)})
    return Study(pd.DataFrame(rows), train, test, Rs, bases)


def lookup(table: pd.DataFrame, **where) -> float:
    """The ``iou`` of the one row matching ``where`` (NaN if none)."""
    sel = np.ones(len(table), dtype=bool)
    for k, v in where.items():
        sel &= (table[k] == v).to_numpy()
    return float(table.loc[sel, "iou"].iloc[0]) if sel.any() else float("nan")


# ----------------------------------------------------------------------------- robustness
def add_outliers(R: np.ndarray, fraction: float, model: str, seed: int) -> np.ndarray:
    """Append outlier rows making up ``fraction`` of all rows: ``gaussian`` (isotropic, each of the mean
    inlier norm) or ``uniform`` (entries uniform on [0, 3]: non-negative, sharing the mean direction)."""
    if model not in OUTLIER_MODELS:
        raise ParameterError("outlier_models", f"unknown outlier model {model!r}", OUTLIER_MODELS)
    rng = np.random.default_rng(seed)
    if fraction <= 0:
        return R
    if model == "gaussian":
        extra = gaussian_outliers(R, fraction, rng)
    else:
        extra = rng.uniform(0.0, 3.0, (int(fraction / (1 - fraction) * len(R) + 1e-9), R.shape[1]))
    return np.vstack([R, extra])


def robustness(R: np.ndarray, test_encodings, test_masks, M: int, fractions, models, outlier_seed: int = 0,
               closing_radius=1, bound_th=0.008, center_rows=False, fms_iters=200, fms_dim=None, n_jobs=1,
               progress=lambda x, **k: x) -> pd.DataFrame:
    """Test IoU of SVD and FMS bases fitted on R plus outlier rows, for each model and fraction (0: clean)."""
    rows = []
    settings = [("clean", 0.0)] + [(m, f) for m in models for f in fractions if f > 0]
    for model, fraction in progress(settings, desc="outliers"):
        Rx = R if model == "clean" else add_outliers(R, fraction, model, outlier_seed)
        for method in METHODS:
            basis = fit_basis(Rx, M, method, center_rows, fms_iters, fms_dim)
            i, f = score(test_encodings, test_masks, basis, closing_radius, bound_th, n_jobs)
            rows.append({"model": model, "fraction": fraction, "method": method, "M": M, "iou": i, "f": f})
    return pd.DataFrame(rows)


def method_gap(table: pd.DataFrame, model: str, fraction: float) -> float:
    """IoU(FMS) − IoU(SVD) at one (model, fraction) of the robustness table (NaN if absent)."""
    sel = (table.model == model) & np.isclose(table.fraction, fraction)
    by = table[sel].set_index("method")["iou"]
    return float(by.get("fms", np.nan) - by.get("svd", np.nan))


# ----------------------------------------------------------------------------- paper scale: real instances


def _cached_encodings(masks, depth, center_mode, min_component_px, n_jobs, cache_key, progress):
    """encode_all, cached under CACHE_DIR/adacontour/<key>.joblib when ``cache_key`` is given."""
    import hashlib

    import joblib

    from shared.paths import CACHE_DIR

    path = None
    if cache_key:
        digest = hashlib.sha1(f"{cache_key}|{len(masks)}|{depth}|{center_mode}|{min_component_px}".encode())
        path = CACHE_DIR / "adacontour" / f"{digest.hexdigest()[:16]}.joblib"
        if path.exists():
            return joblib.load(path)
    chunks = [masks[i:i + 256] for i in range(0, len(masks), 256)]
    encodings = []
    for chunk in progress(chunks, desc=f"encode depth {depth}"):
        encodings += encode_all(chunk, depth, center_mode, min_component_px, n_jobs)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        joblib.dump(encodings, path)
    return encodings


def instance_study(train_masks, test_masks, size=416, max_depth=5, Ms=(8, 16, 24, 36, 50), min_component_px=100,
                   closing_radius=2, bound_th=0.008, fms_iters=200, fms_dim=None, n_jobs=1, cache_key=None,
                   progress=lambda x, **k: x) -> pd.DataFrame:
    """The official setting on real instance masks (each cropped and resized to size x size): the
    Eigencontours baseline (depth 0, ``ese`` center) and AdaContour (depth ``max_depth``, hybrid centers),
    each with SVD and FMS bases of every M fitted on the train instances; mean IoU and F on the test ones."""
    if not train_masks or not test_masks:
        raise ParameterError("max_instances", "no train or no test instances were read", ">= 1 of each")
    train = [fit_instance(m, size) for m in train_masks]
    test = [fit_instance(m, size) for m in test_masks]
    rows = []
    for name, depth, mode in (("eigencontours", 0, "ese"), ("adacontour", max_depth, "hybrid")):
        key = f"{cache_key}|{size}" if cache_key else None
        enc_train = _cached_encodings(train, depth, mode, min_component_px, n_jobs, key and key + "|train", progress)
        enc_test = _cached_encodings(test, depth, mode, min_component_px, n_jobs, key and key + "|test", progress)
        R = contour_matrix(enc_train)
        centers = float(np.mean([e.n_centers for e in enc_test]))
        for M in progress([m for m in Ms if m <= min(R.shape)], desc=f"{name} bases"):
            for method in METHODS:
                basis = fit_basis(R, M, method, False, fms_iters, fms_dim)
                i, f = score(enc_test, test, basis, closing_radius, bound_th, n_jobs)
                rows.append({"descriptor": name, "depth": depth, "method": method, "M": M, "iou": i, "f": f,
                             "centers": centers, "stored": centers * (2 + M)})
    return pd.DataFrame(rows)
