"""adacontour at paper scale: SBD and COCO instance masks from local folders, on tiny fakes written here in
the same on-disk formats; clear errors for missing or broken inputs."""
import json

import numpy as np
import pytest
from scipy.io import savemat

from shared.errors import CorruptInputError, MissingInputError, ParameterError
from shared.papers.adacontour import data
from shared.papers.adacontour.experiments import instance_study


def instance_image(seed: int, size=(60, 80)) -> np.ndarray:
    """An instance-id image: 0 background, 1..k instances, 255 void pixels on their borders."""
    rng = np.random.default_rng(seed)
    seg = np.zeros(size, dtype=np.uint8)
    rows, cols = np.mgrid[:size[0], :size[1]]
    for k in (1, 2):
        r0, c0 = rng.integers(12, size[0] - 12), 20 + 40 * (k - 1) + rng.integers(-3, 4)
        blob = (((rows - r0) / rng.uniform(6, 11)) ** 2 + ((cols - c0) / rng.uniform(6, 11)) ** 2) < 1
        if k == 2:  # an L-shaped instance, not star-convex around its centroid
            blob |= (abs(rows - r0) < 3) & (cols > c0) & (cols < c0 + 15)
        seg[blob] = k
    seg[0, :] = 255
    return seg


def write_sbd(root, n_train=3, n_val=2):
    (root / "inst").mkdir(parents=True)
    (root / "cls").mkdir()
    (root / "img").mkdir()
    ids = [f"2008_{i:06d}" for i in range(n_train + n_val)]
    for i, image_id in enumerate(ids):
        seg = instance_image(i)
        savemat(root / "inst" / f"{image_id}.mat",
                {"GTinst": {"Segmentation": seg, "Categories": np.array([[15], [12]]), "Boundaries": np.zeros(1)}})
        savemat(root / "cls" / f"{image_id}.mat", {"GTcls": {"Segmentation": (seg > 0).astype(np.uint8)}})
    (root / "train.txt").write_text("\n".join(ids[:n_train]) + "\n")
    (root / "val.txt").write_text("\n".join(ids[n_train:]) + "\n")
    return root


def write_coco(root):
    (root / "annotations").mkdir(parents=True)
    for split, offset in (("train", 0), ("val", 10)):
        images, anns = [], []
        for i in range(3):
            images.append({"id": offset + i, "height": 60, "width": 80, "file_name": f"{offset + i:012d}.jpg"})
            x, y = 10 + 5 * i, 10
            square = [x, y, x + 20, y, x + 20, y + 30, x, y + 30]
            ell = [50, 10, 70, 10, 70, 15, 58, 15, 58, 40, 50, 40]
            anns.append({"id": 2 * i + offset, "image_id": offset + i, "category_id": 1, "iscrowd": 0,
                         "segmentation": [square]})
            anns.append({"id": 2 * i + 1 + offset, "image_id": offset + i, "category_id": 2, "iscrowd": 0,
                         "segmentation": [ell]})
        anns.append({"id": 99 + offset, "image_id": offset, "category_id": 1, "iscrowd": 1,
                     "segmentation": {"counts": [0, 10], "size": [60, 80]}})
        doc = {"images": images, "annotations": anns, "categories": [{"id": 1}, {"id": 2}]}
        (root / "annotations" / f"instances_{split}2017.json").write_text(json.dumps(doc))
    return root


def test_sbd_instances_are_read_per_split_without_void(tmp_path):
    root = write_sbd(tmp_path / "sbd")
    train = data.sbd_instances(root, "train")
    val = data.sbd_instances(root, "val")
    assert len(train) == 6 and len(val) == 4
    assert all(m.dtype == bool and m.any() and not m[0].any() for m in train)
    assert len(data.sbd_instances(root, "train", max_instances=4)) == 4


def test_coco_instances_rasterize_polygons_and_skip_crowds(tmp_path):
    root = write_coco(tmp_path / "coco")
    train = data.coco_instances(root, "train")
    assert len(train) == 6
    assert train[0].shape == (60, 80) and 500 < train[0].sum() < 800
    assert len(data.instances("coco", None, root, "val", max_instances=2)) == 2


@pytest.mark.parametrize("dataset", ["sbd", "coco"])
def test_instance_study_runs_the_official_setting_on_fakes(tmp_path, dataset, monkeypatch):
    monkeypatch.setenv("PAPERSUITE_CACHE", str(tmp_path / "cache"))
    root = write_sbd(tmp_path / "sbd") if dataset == "sbd" else write_coco(tmp_path / "coco")
    train = data.instances(dataset, root, root, "train")
    val = data.instances(dataset, root, root, "val")
    table = instance_study(train, val, size=64, max_depth=3, Ms=(2, 4), min_component_px=8, closing_radius=1,
                           fms_iters=10, n_jobs=2)
    assert set(table.descriptor) == {"eigencontours", "adacontour"}
    assert set(table.method) == {"svd", "fms"} and set(table.M) == {2, 4}
    assert table.iou.between(0.3, 1.0).all() and table.f.between(0, 1).all()
    assert data.fit_instance(train[0], 64).shape == (64, 64)


def test_instance_encodings_are_cached(tmp_path):
    from shared.papers.adacontour import experiments

    root = write_sbd(tmp_path / "sbd", 2, 1)
    train, val = data.sbd_instances(root, "train"), data.sbd_instances(root, "val")
    experiments_cache = tmp_path / "cache"
    import shared.paths as paths
    old = paths.CACHE_DIR
    paths.CACHE_DIR = experiments_cache
    try:
        first = instance_study(train, val, size=48, max_depth=2, Ms=(2,), min_component_px=8, fms_iters=3,
                               cache_key="fake")
        assert len(list((experiments_cache / "adacontour").glob("*.joblib"))) == 4
        again = instance_study(train, val, size=48, max_depth=2, Ms=(2,), min_component_px=8, fms_iters=3,
                               cache_key="fake")
    finally:
        paths.CACHE_DIR = old
    assert first.equals(again)
    assert experiments is not None


@pytest.mark.parametrize("param,call", [
    ("sbd_dir", lambda root: data.sbd_instances(root, "train")),
    ("coco_dir", lambda root: data.coco_instances(root, "train")),
])
def test_missing_folders_name_the_parameter_and_the_expected_files(tmp_path, param, call):
    with pytest.raises(MissingInputError, match=param) as error:
        call(None)
    assert error.value.param == param
    with pytest.raises(MissingInputError, match="inst|instances_train2017.json"):
        call(tmp_path / "nowhere")


def test_a_listed_but_absent_sbd_file_and_a_broken_one_are_reported(tmp_path):
    root = write_sbd(tmp_path / "sbd")
    (root / "train.txt").write_text("2008_000000\n2008_999999\n")
    with pytest.raises(MissingInputError, match="2008_999999"):
        data.sbd_instances(root, "train")
    (root / "inst" / "2008_000000.mat").write_bytes(b"not a mat file")
    with pytest.raises(CorruptInputError, match="sbd_dir"):
        data.sbd_instances(root, "train")


def test_a_broken_coco_json_and_an_unknown_dataset_are_reported(tmp_path):
    root = write_coco(tmp_path / "coco")
    (root / "annotations" / "instances_val2017.json").write_text("{")
    with pytest.raises(CorruptInputError, match="coco_dir"):
        data.coco_instances(root, "val")
    with pytest.raises(ParameterError, match="instances"):
        data.instances("voc", None, None, "train")
    with pytest.raises(ParameterError, match="max_instances"):
        instance_study([], [], size=32)


def test_paper_inputs_are_checked_before_any_work(tmp_path):
    data.check_instances("none", None, None)
    data.check_instances("sbd", write_sbd(tmp_path / "sbd", 1, 1), None)
    with pytest.raises(MissingInputError, match="sbd_dir"):
        data.check_instances("sbd", None, None)
    with pytest.raises(MissingInputError, match="coco_dir"):
        data.check_instances("coco", None, tmp_path)
    with pytest.raises(ParameterError, match="instances"):
        data.check_instances("voc", None, None)
