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
