import numpy as np
import pytest

from shared import data


def test_fresh_materialization_matches_the_pinned_hash(tmp_path):
    data.materialize(tmp_path)
    assert data.dir_md5(tmp_path) == data.pinned_md5()


def test_data_folder_matches_data_dvc():
    assert data.dir_md5(data.DATA_DIR) == data.pinned_md5()


def test_mnist_subset_shape_and_range():
    X, y = data.load_mnist_subset()
    assert X.shape == (5000, 784) and X.dtype == np.float32 and 0 <= X.min() and X.max() <= 1
    assert np.bincount(y).tolist() == [500] * 10


def test_stratified_split_is_balanced_disjoint_and_seeded():
    _, y = data.load_mnist_subset()
    train, test = data.stratified_split(y, 30, 10, seed=0)
    assert np.bincount(y[train]).tolist() == [30] * 10 and np.bincount(y[test]).tolist() == [10] * 10
    assert not set(train) & set(test)
    assert np.array_equal(train, data.stratified_split(y, 30, 10, seed=0)[0])
    assert not np.array_equal(train, data.stratified_split(y, 30, 10, seed=1)[0])
    with pytest.raises(ValueError, match="fewer than"):
        data.stratified_split(y, 400, 200, seed=0)


def test_stratified_holdout_is_balanced_disjoint_and_seeded():
    y = np.repeat(np.arange(3), [5, 6, 7])
    kept, held = data.stratified_holdout(y, 2, seed=0)
    assert np.bincount(y[held]).tolist() == [2, 2, 2] and sorted(np.concatenate([kept, held])) == list(range(18))
    assert np.array_equal(held, data.stratified_holdout(y, 2, seed=0)[1])
    with pytest.raises(ValueError, match="class 0 has 5 samples"):
        data.stratified_holdout(y, 5, seed=0)


def test_a_fresh_build_is_what_the_pins_say(tmp_path):
    data.materialize(tmp_path)
    assert data.check_all(tmp_path) == []
    assert {p.relative_to(tmp_path).as_posix(): data.file_md5(p) for p in tmp_path.rglob("*.npy")} == data.BUILT_MD5


def test_one_flipped_byte_is_named_with_make_data_as_the_fix(tmp_path, monkeypatch):
    data.materialize(tmp_path)
    target = tmp_path / "mnist5k" / "X.npy"
    raw = bytearray(target.read_bytes())
    raw[-1] ^= 0xFF
    target.write_bytes(bytes(raw))
    problems = data.check_all(tmp_path)
    assert len(problems) == 1 and "mnist5k/X.npy" in problems[0] and "make data" in problems[0]
    monkeypatch.setattr(data, "DATA_DIR", tmp_path)
    with pytest.raises(data.DataIntegrityError, match="mnist5k/X.npy differs .* `make data`"):
        data.load_mnist_subset()
    (tmp_path / "digits" / "y.npy").unlink()
    with pytest.raises(data.DataIntegrityError, match="digits/y.npy is missing"):
        data.load_digits()


def test_check_does_not_trust_data_dvc(tmp_path, monkeypatch, capsys):
    """Even if data.dvc were re-pinned to a corrupted folder's hash, --check fails."""
    data.materialize(tmp_path)
    target = tmp_path / "digits" / "X.npy"
    raw = bytearray(target.read_bytes())
    raw[-1] ^= 0xFF
    target.write_bytes(bytes(raw))
    monkeypatch.setattr(data, "DATA_DIR", tmp_path)
    monkeypatch.setattr(data, "pinned_md5", lambda: data.dir_md5(tmp_path))
    assert data.main(["--check"]) == 1
    assert "digits/X.npy differs" in capsys.readouterr().err


def test_the_pin_computed_from_the_file_pins_is_data_dvc_and_a_fresh_build(tmp_path):
    data.materialize(tmp_path)
    assert data.built_pin()["md5"] == data.dir_md5(tmp_path) == data.pinned_md5()
    assert {p.relative_to(tmp_path).as_posix(): p.stat().st_size for p in tmp_path.rglob("*.npy")} == data.BUILT_SIZE


@pytest.mark.parametrize("field, value", [("md5", "0" * 32 + ".dir"), ("size", 1), ("nfiles", 5)])
def test_a_re_pinned_data_dvc_is_put_back(tmp_path, field, value):
    """dvc repro re-pins data.dvc to a corrupted data/ before the stages run: the runner puts the pin back."""
    import yaml

    dvc_file = tmp_path / "data.dvc"
    good = data.DVC_FILE.read_text()
    spec = yaml.safe_load(good)
    spec["outs"][0][field] = value
    dvc_file.write_text(yaml.safe_dump(spec, sort_keys=False))
    assert data.repair_pin(dvc_file) is True and dvc_file.read_text() == good
    assert data.repair_pin(dvc_file) is False
