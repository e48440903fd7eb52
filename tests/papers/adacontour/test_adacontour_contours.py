"""adacontour: radial signatures, the hierarchical split, decoding and the mask metrics."""
import numpy as np
import pytest
from skimage import draw

from shared.errors import ParameterError
from shared.papers.adacontour.contours import (components, decode, f_measure, find_center, hierarchical_encode,
                                               iou, radial_signature, split_region)
from shared.papers.adacontour.data import disk_mask


def square(size=81, half=15):
    mask = np.zeros((size, size), dtype=bool)
    c = size // 2
    mask[c - half:c + half + 1, c - half:c + half + 1] = True
    return mask


def u_shape():
    mask = np.zeros((80, 80), dtype=bool)
    mask[10:70, 10:25] = True
    mask[10:70, 55:70] = True
    mask[55:70, 10:70] = True
    return mask


def test_a_disk_has_constant_radii_and_survives_the_round_trip():
    disk = disk_mask(101, 30.0)
    r = radial_signature(disk, (50.0, 50.0))
    assert r.std() < 0.5 and abs(r.mean() - 30) < 1
    enc = hierarchical_encode(disk, 0)
    assert enc.n_centers == 1
    assert iou(decode(enc), disk) > 0.99


def test_a_square_follows_h_over_cos():
    mask = square()
    r = radial_signature(mask, (40.0, 40.0))
    t = np.deg2rad(np.arange(360) + 0.5)
    h = 15.5  # the 0.5 iso-line lies half a pixel outside the pixel centers
    expected = h / np.maximum(np.abs(np.cos(t)), np.abs(np.sin(t)))
    assert np.abs(r - expected).max() < 1.0


def test_rot90_shifts_the_signature_by_90_bins():
    mask = np.zeros((101, 101), dtype=bool)
    mask[draw.ellipse(50, 50, 12, 30, shape=mask.shape)] = True
    mask[draw.disk((50, 75), 10, shape=mask.shape)] = True
    r = radial_signature(mask, (50.0, 50.0))
    rotated = radial_signature(np.rot90(mask), (50.0, 50.0))  # counter-clockwise on screen
    # rot90 maps (row, col) -> (100 - col, row): the angle atan2(dr, dc) becomes atan2(-dc, dr) = theta - 90 deg
    assert np.abs(rotated - np.roll(r, -90)).max() < 1.0


def test_a_convex_shape_stops_at_depth_zero_with_one_center():
    enc = hierarchical_encode(disk_mask(), 3)
    assert enc.n_centers == 1 and enc.depths.tolist() == [0] and enc.splits == []


def test_a_non_convex_shape_is_split_and_reconstructs_better():
    mask = u_shape()
    shallow, deep = hierarchical_encode(mask, 0), hierarchical_encode(mask, 3)
    assert deep.n_centers > 1 and deep.depths.max() >= 1
    assert iou(decode(deep), mask) > iou(decode(shallow), mask) + 0.05


def test_split_halves_are_disjoint_cover_the_region_and_are_connected():
    for mask in (u_shape(), square(), disk_mask()):
        a, b, line = split_region(mask)
        assert not (a & b).any()
        np.testing.assert_array_equal(a | b, mask)
        assert len(components(a)) == 1 and len(components(b)) == 1


def test_components_drop_small_pieces_and_sort_by_size():
    mask = np.zeros((30, 30), dtype=bool)
    mask[2:12, 2:12] = True
    mask[20:23, 20:23] = True
    mask[15, 5] = True
    parts = components(mask, min_px=5)
    assert [p.sum() for p in parts] == [100, 9]


def test_centers_lie_inside_and_an_unknown_mode_is_refused():
    mask = u_shape()
    for mode in ("hybrid", "inscribed", "ese"):
        r, c = np.round(find_center(mask, mode)).astype(int)
        assert mask[r, c], mode
    with pytest.raises(ParameterError, match="center_mode"):
        find_center(mask, "middle")
    with pytest.raises(ParameterError, match="max_depth"):
        hierarchical_encode(mask, -1)


def test_iou_basics():
    a = square()
    assert iou(a, a) == 1.0
    assert iou(a, ~a) == 0.0
    assert iou(np.zeros((4, 4), bool), np.zeros((4, 4), bool)) == 1.0
    b = np.zeros_like(a)
    b[:, :41] = a[:, :41]
    assert iou(b, a) == pytest.approx(b.sum() / a.sum())


def test_f_measure_is_one_for_identical_masks_and_tolerates_a_one_pixel_shift_only_with_tolerance():
    a = square()
    shifted = np.roll(a, 1, axis=1)
    assert f_measure(a, a, 0) == 1.0
    assert f_measure(shifted, a, 1) == 1.0
    assert f_measure(shifted, a, 0) < 1.0
    assert f_measure(np.zeros_like(a), a) == 0.0
