"""adacontour's shapes: scikit-image's horse and generated blobs (offline), and SBD / COCO instance masks
from local folders at ``paper`` scale."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from skimage import data, draw, transform

from shared.errors import MissingInputError, ParameterError, reading, require_files
from shared.papers.adacontour.contours import components

SBD_FILES = ("inst", "cls", "train.txt", "val.txt")
COCO_FILES = ("annotations/instances_train2017.json", "annotations/instances_val2017.json")


def horse() -> np.ndarray:
    """scikit-image's horse silhouette (328 x 400) as a boolean mask, True on the horse."""
    return ~data.horse().astype(bool)


def disk_mask(size: int = 101, radius: float = 30.0) -> np.ndarray:
    mask = np.zeros((size, size), dtype=bool)
    mask[draw.disk((size // 2, size // 2), radius, shape=mask.shape)] = True
    return mask


def blob_shapes(seed: int, n_images: int = 12, length: int = 192, min_area: int = 300) -> list[np.ndarray]:
    """Connected blobs of ``binary_blobs`` images rng = 12·seed … 12·seed + n_images − 1 with
    ``min_area`` < area < length²/2 that do not touch the border; each as a full-size boolean mask."""
    shapes = []
    for rng in range(12 * seed, 12 * seed + n_images):
        img = data.binary_blobs(length=length, blob_size_fraction=0.12, volume_fraction=0.3, rng=rng)
        for comp in components(img):
            area = int(comp.sum())
            touches = comp[0].any() or comp[-1].any() or comp[:, 0].any() or comp[:, -1].any()
            if min_area < area < 0.5 * length * length and not touches:
                shapes.append(comp)
    return shapes


def train_test(shapes: list) -> tuple[list, list]:
    """Even indices train, odd ones test."""
    return shapes[0::2], shapes[1::2]


def fit_instance(mask: np.ndarray, size: int) -> np.ndarray:
    """Crop an instance to its bounding box (with a 10% margin, square) and resize it to size x size."""
    rows, cols = np.nonzero(mask)
    r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    side = int(np.ceil(max(r1 - r0, c1 - c0) * 1.2)) + 2
    box = np.zeros((side, side), dtype=bool)
    dr, dc = (side - (r1 - r0)) // 2, (side - (c1 - c0)) // 2
    box[dr:dr + r1 - r0, dc:dc + c1 - c0] = mask[r0:r1, c0:c1]
    return transform.resize(box, (size, size), order=0, anti_aliasing=False, preserve_range=True).astype(bool)


# ----------------------------------------------------------------------------- SBD
def _sbd_ids(root: Path, split: str) -> list[str]:
    with reading("sbd_dir", root / f"{split}.txt", "a list of image ids, one per line"):
        return [line.strip() for line in (root / f"{split}.txt").read_text().splitlines() if line.strip()]


def read_sbd_instances(path: Path) -> list[np.ndarray]:
    """The instance masks of one SBD ``inst/<id>.mat`` (GTinst.Segmentation: 0 background, k instance k,
    255 void)."""
    from scipy.io import loadmat

    with reading("sbd_dir", path, "an SBD instance file with GTinst.Segmentation"):
        seg = np.asarray(loadmat(path, squeeze_me=True, struct_as_record=False)["GTinst"].Segmentation)
        if seg.ndim != 2:
            raise ValueError(f"Segmentation has shape {seg.shape}, not 2-D")
    return [seg == k for k in np.unique(seg) if k not in (0, 255)]


def sbd_instances(sbd_dir, split: str, max_instances: int | None = None) -> list[np.ndarray]:
    """Every instance mask of the SBD ``split`` (train | val) under ``sbd_dir`` (inst/, cls/, train.txt, val.txt)."""
    root = require_files("sbd_dir", sbd_dir, SBD_FILES, "the SBD benchmark (benchmark_RELEASE/dataset)")
    out = []
    for image_id in _sbd_ids(root, split):
        path = root / "inst" / f"{image_id}.mat"
        if not path.exists():
            raise MissingInputError("sbd_dir", root, f"the SBD benchmark with inst/{image_id}.mat "
                                    f"(listed in {split}.txt)")
        out += read_sbd_instances(path)
        if max_instances and len(out) >= max_instances:
            return out[:max_instances]
    return out


# ----------------------------------------------------------------------------- COCO
def _coco_mask(ann: dict, height: int, width: int) -> np.ndarray | None:
    """A COCO annotation's mask from its polygons (crowd / RLE annotations are skipped: None)."""
    seg = ann.get("segmentation")
    if ann.get("iscrowd") or not isinstance(seg, list):
        return None
    mask = np.zeros((height, width), dtype=bool)
    for poly in seg:
        xy = np.asarray(poly, dtype=float).reshape(-1, 2)
        rr, cc = draw.polygon(xy[:, 1], xy[:, 0], (height, width))
        mask[rr, cc] = True
    return mask if mask.any() else None


def coco_instances(coco_dir, split: str, max_instances: int | None = None) -> list[np.ndarray]:
    """Instance masks of COCO 2017 ``split`` (train | val) from ``annotations/instances_<split>2017.json``
    (polygon annotations, rasterized with skimage.draw; crowd RLEs are skipped, so pycocotools is not needed)."""
    root = require_files("coco_dir", coco_dir, COCO_FILES, "COCO 2017 with its instance annotations")
    path = root / "annotations" / f"instances_{split}2017.json"
    with reading("coco_dir", path, "a COCO instances JSON (images, annotations)"):
        doc = json.loads(path.read_text())
        sizes = {im["id"]: (im["height"], im["width"]) for im in doc["images"]}
        anns = doc["annotations"]
    out = []
    for ann in anns:
        mask = _coco_mask(ann, *sizes[ann["image_id"]])
        if mask is not None:
            out.append(mask)
        if max_instances and len(out) >= max_instances:
            break
    return out


DATASETS = ("none", "sbd", "coco")


def instances(dataset: str, sbd_dir, coco_dir, split: str, max_instances: int | None = None) -> list[np.ndarray]:
    if dataset == "sbd":
        return sbd_instances(sbd_dir, split, max_instances)
    if dataset == "coco":
        return coco_instances(coco_dir, split, max_instances)
    raise ParameterError("instances", f"unknown dataset {dataset!r}", DATASETS[1:])


def check_instances(dataset: str, sbd_dir, coco_dir) -> None:
    """Fail early (before the toy studies run) if the real instance masks asked for are not there."""
    if dataset == "none":
        return
    if dataset == "sbd":
        require_files("sbd_dir", sbd_dir, SBD_FILES, "the SBD benchmark (benchmark_RELEASE/dataset)")
    elif dataset == "coco":
        require_files("coco_dir", coco_dir, COCO_FILES, "COCO 2017 with its instance annotations")
    else:
        raise ParameterError("instances", f"unknown dataset {dataset!r}", DATASETS)
