"""Radial (angle-based) contour descriptors, AdaContour's hierarchical split, decoding and mask metrics.

Conventions: points are (row, col); the angle of a point is ``arctan2(row - c_r, col - c_c)``, so bin b
(b = 0..n-1, width 360/n degrees) holds the boundary points with angle in [b, b+1) bins and the contour
point of radius r at angle t is (c_r + r sin t, c_c + r cos t). Written from the paper's description;
nothing is taken from the (unlicensed) official code.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi
from skimage import draw, measure, morphology

from shared.errors import ParameterError

N_BINS = 360
CENTER_MODES = ("hybrid", "centroid", "inscribed", "ese")
EIGHT = np.ones((3, 3), dtype=bool)


# ----------------------------------------------------------------------------- signatures
def _densify(c: np.ndarray, spacing: float) -> np.ndarray:
    """Points along the polyline ``c`` (k x 2) at most ``spacing`` apart (vectorized)."""
    seg = np.diff(c, axis=0)
    if len(seg) == 0:
        return c
    k = np.maximum(1, np.ceil(np.hypot(seg[:, 0], seg[:, 1]) / spacing)).astype(int)
    which = np.repeat(np.arange(len(seg)), k)
    start = np.repeat(np.cumsum(k) - k, k)
    t = (np.arange(k.sum()) - start) / np.repeat(k, k)
    return np.vstack([c[which] + t[:, None] * seg[which], c[-1:]])


def boundary_points(mask: np.ndarray, spacing: float = 0.25) -> np.ndarray:
    """Sub-pixel boundary points of ``mask`` (iso-line 0.5 of the padded mask), densified to ``spacing``."""
    padded = np.pad(np.asarray(mask, dtype=float), 1)
    lines = [_densify(c - 1.0, spacing) for c in measure.find_contours(padded, 0.5)]
    return np.vstack(lines) if lines else np.zeros((0, 2))


def radial_signature(mask: np.ndarray, center, n: int = N_BINS, spacing: float = 0.25) -> np.ndarray:
    """The largest boundary distance from ``center`` in each of ``n`` angle bins; empty bins interpolated."""
    pts = boundary_points(mask, spacing)
    r = np.zeros(n)
    if len(pts) == 0:
        return r
    dy, dx = pts[:, 0] - center[0], pts[:, 1] - center[1]
    bins = np.floor((np.rad2deg(np.arctan2(dy, dx)) % 360.0) * n / 360.0).astype(int) % n
    np.maximum.at(r, bins, np.hypot(dy, dx))
    ok = r > 0
    if not ok.all() and ok.any():
        idx = np.arange(n)
        r = np.interp(idx, np.r_[idx[ok] - n, idx[ok], idx[ok] + n], np.tile(r[ok], 3))
    return r


def angles(n: int = N_BINS) -> np.ndarray:
    return np.deg2rad(np.arange(n) * 360.0 / n)


def polygon_mask(center, r: np.ndarray, shape) -> np.ndarray:
    """Rasterize the star polygon of radii ``r`` around ``center`` (negative radii are clipped to 0)."""
    t = angles(len(r))
    r = np.maximum(np.asarray(r, dtype=float), 0.0)
    rr, cc = draw.polygon(center[0] + r * np.sin(t), center[1] + r * np.cos(t), shape)
    out = np.zeros(shape, dtype=bool)
    out[rr, cc] = True
    return out


def close(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary closing with ``disk(radius)`` (the image is padded so the border does not erode)."""
    if radius <= 0:
        return mask
    padded = np.pad(mask, radius + 1)
    closed = ndi.binary_closing(padded, structure=morphology.disk(radius))
    return closed[radius + 1:-radius - 1, radius + 1:-radius - 1]


# ----------------------------------------------------------------------------- centers
def solidity(mask: np.ndarray) -> float:
    """Area over convex-hull area (1 for convex shapes); 0 for an empty mask."""
    if not mask.any():
        return 0.0
    props = measure.regionprops(mask.astype(np.uint8))
    return float(props[0].solidity)


def _inscribed(mask: np.ndarray) -> np.ndarray:
    dist = ndi.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    return np.array(np.unravel_index(np.argmax(dist), mask.shape), dtype=float)


def _ese(mask: np.ndarray, max_points: int = 1500) -> np.ndarray:
    rows, cols = np.nonzero(mask)
    box = np.array([(rows.min() + rows.max()) / 2, (cols.min() + cols.max()) / 2])
    if mask[int(round(box[0])), int(round(box[1]))]:
        return box
    inner = np.column_stack([rows, cols]).astype(float)
    bnd = boundary_points(mask, spacing=1.0)
    inner = inner[:: max(1, len(inner) // max_points)]
    bnd = bnd[:: max(1, len(bnd) // max_points)]
    total = np.sqrt(((inner[:, None, :] - bnd[None, :, :]) ** 2).sum(-1)).sum(1)
    return inner[np.argmin(total)]


def find_center(mask: np.ndarray, mode: str = "hybrid", solidity_threshold: float = 0.85) -> np.ndarray:
    """The center of a (connected) region: ``hybrid`` (centroid if solid and inside, else inscribed circle),
    ``centroid``, ``inscribed`` (argmax of the distance transform) or ``ese`` (bounding-box center if inside,
    else the interior point with the smallest summed distance to the boundary)."""
    if mode not in CENTER_MODES:
        raise ParameterError("center_mode", f"unknown value {mode!r}", CENTER_MODES)
    rows, cols = np.nonzero(mask)
    centroid = np.array([rows.mean(), cols.mean()])
    if mode == "centroid":
        return centroid
    if mode == "inscribed":
        return _inscribed(mask)
    if mode == "ese":
        return _ese(mask)
    inside = mask[int(round(centroid[0])), int(round(centroid[1]))]
    if inside and solidity(mask) > solidity_threshold:
        return centroid
    return _inscribed(mask)


# ----------------------------------------------------------------------------- hierarchy
@dataclass
class Encoding:
    """A shape as local contours: centers (k x 2, image coordinates), radii (k x n) and their depths."""
    shape: tuple
    centers: np.ndarray
    radii: np.ndarray
    depths: np.ndarray
    splits: list = field(default_factory=list)  # (depth, (r0, c0), (r1, c1)): the cut lines, for figures

    @property
    def n_centers(self) -> int:
        return len(self.centers)


def components(mask: np.ndarray, min_px: int = 0) -> list[np.ndarray]:
    """The 8-connected components of ``mask`` with at least ``min_px`` pixels, largest first."""
    labels, k = ndi.label(mask, structure=EIGHT)
    if k == 0:
        return []
    sizes = np.bincount(labels.ravel(), minlength=k + 1)[1:]
    order = [i + 1 for i in np.argsort(-sizes, kind="stable") if sizes[i] >= min_px]
    return [labels == i for i in order]


def split_region(mask: np.ndarray):
    """Cut a region through its centroid, perpendicular to its major (PCA) axis; repair connectivity.

    Returns (half_a, half_b, (p0, p1)) where p0, p1 are the ends of the cut line inside the region's box.
    """
    pts = np.column_stack(np.nonzero(mask)).astype(float)
    mu = pts.mean(0)
    cov = np.cov((pts - mu).T) if len(pts) > 1 else np.eye(2)
    w, v = np.linalg.eigh(cov)
    major = v[:, np.argmax(w)]
    side = (pts - mu) @ major >= 0
    a = np.zeros_like(mask, dtype=bool)
    b = np.zeros_like(mask, dtype=bool)
    idx = pts.astype(int)
    a[idx[side, 0], idx[side, 1]] = True
    b[idx[~side, 0], idx[~side, 1]] = True
    for _ in range(2):  # connectivity repair: pieces cut off from a half's largest part join the other half
        for one, other in ((a, b), (b, a)):
            parts = components(one)
            for extra in parts[1:]:
                one &= ~extra
                other |= extra
    minor = np.array([-major[1], major[0]])
    extent = (pts - mu) @ minor
    line = (mu + extent.min() * minor, mu + extent.max() * minor)
    return a, b, line


def hierarchical_encode(mask: np.ndarray, max_depth: int, center_mode: str = "hybrid",
                        min_component_px: int = 8, leaf_solidity: float = 0.9, min_area_frac: float = 0.001,
                        min_leaf_px: int = 8, n: int = N_BINS) -> Encoding:
    """Encode ``mask`` as local contours: each component is split recursively (PCA cut) until ``max_depth``,
    or it is solid (solidity > ``leaf_solidity``), or small (< max(min_area_frac * H * W, min_leaf_px) px).
    ``max_depth = 0`` gives one center per component (an Eigencontours-like single-center descriptor)."""
    if max_depth < 0:
        raise ParameterError("max_depth", f"{max_depth} is negative", ">= 0")
    mask = np.asarray(mask, dtype=bool)
    H, W = mask.shape
    min_area = max(min_area_frac * H * W, min_leaf_px)
    centers, radii, depths, splits = [], [], [], []

    def leaf(sub, off, depth):
        c = find_center(sub, center_mode)
        centers.append(c + off)
        radii.append(radial_signature(sub, c, n))
        depths.append(depth)

    def node(sub, off, depth):
        rows, cols = np.nonzero(sub)
        r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        sub, off = sub[r0:r1, c0:c1], off + np.array([r0, c0])
        area = int(sub.sum())
        if depth >= max_depth or area < min_area or solidity(sub) > leaf_solidity:
            return leaf(sub, off, depth)
        a, b, line = split_region(sub)
        splits.append((depth, tuple(line[0] + off), tuple(line[1] + off)))
        for half in (a, b):
            for part in components(half):
                node(part, off, depth + 1)

    for comp in components(mask, min_component_px):
        node(comp, np.zeros(2), 0)
    k = len(centers)
    return Encoding((H, W), np.array(centers).reshape(k, 2), np.array(radii).reshape(k, n),
                    np.array(depths, dtype=int), splits)


def decode(enc: Encoding, radii: np.ndarray | None = None, closing_radius: int = 1) -> np.ndarray:
    """The union of the local star polygons (``radii`` replaces the stored ones), then a binary closing."""
    radii = enc.radii if radii is None else radii
    out = np.zeros(enc.shape, dtype=bool)
    for c, r in zip(enc.centers, radii):
        out |= polygon_mask(c, r, enc.shape)
    return close(out, closing_radius)


# ----------------------------------------------------------------------------- metrics
def iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """Intersection over union of two boolean masks (1 when both are empty)."""
    pred, gt = np.asarray(pred, bool), np.asarray(gt, bool)
    union = np.logical_or(pred, gt).sum()
    return 1.0 if union == 0 else float(np.logical_and(pred, gt).sum() / union)


def mask_boundary(mask: np.ndarray) -> np.ndarray:
    """The mask minus its erosion (pixels at the image border count as boundary)."""
    mask = np.asarray(mask, bool)
    return mask & ~ndi.binary_erosion(np.pad(mask, 1), structure=EIGHT)[1:-1, 1:-1]


def f_measure(pred: np.ndarray, gt: np.ndarray, bound_th: float = 0.008) -> float:
    """DAVIS-style boundary F-measure; tolerance ``bound_th`` x image diagonal (pixels if ``bound_th >= 1``)."""
    tol = int(bound_th if bound_th >= 1 else np.ceil(bound_th * np.hypot(*np.shape(gt))))
    bp, bg = mask_boundary(pred), mask_boundary(gt)
    if not bp.any() and not bg.any():
        return 1.0
    if not bp.any() or not bg.any():
        return 0.0
    if tol > 0:
        dp = ndi.binary_dilation(bp, structure=morphology.disk(tol))
        dg = ndi.binary_dilation(bg, structure=morphology.disk(tol))
    else:
        dp, dg = bp, bg
    precision = (bp & dg).sum() / bp.sum()
    recall = (bg & dp).sum() / bg.sum()
    return 0.0 if precision + recall == 0 else float(2 * precision * recall / (precision + recall))
