"""Tests of snnlib.ann.data: the offline subset and the full-MNIST cache/download path."""
import socket

import numpy as np
import pytest

from snnlib.ann.data import DataUnavailableError, load_mnist, mnist_cache_path


@pytest.fixture(scope="module")
def subset():
    return load_mnist()


def test_subset_shapes_and_dtypes(subset):
    (x_train, y_train), (x_test, y_test) = subset
    # 4,000 training and 1,000 test images, channels last, one label each
    assert x_train.shape == (4000, 28, 28, 1) and y_train.shape == (4000,)
    assert x_test.shape == (1000, 28, 28, 1) and y_test.shape == (1000,)
    assert x_train.dtype == x_test.dtype == np.float32
    assert y_train.dtype == y_test.dtype == np.int64


def test_subset_range(subset):
    (x_train, _), (x_test, _) = subset
    # pixels are scaled to [0, 1] and use the whole range (not left at 0-255 or squashed)
    for x in (x_train, x_test):
        assert x.min() == 0.0 and x.max() == 1.0
    # MNIST digits are mostly background: the mean intensity is about 0.13
    assert 0.08 < x_train.mean() < 0.2


def test_subset_is_stratified_and_shuffled(subset):
    (_, y_train), (_, y_test) = subset
    # every digit has 400 training and 100 test images
    assert np.bincount(y_train).tolist() == [400] * 10
    assert np.bincount(y_test).tolist() == [100] * 10
    # the order is shuffled: the first 50 test labels already hold many different digits
    assert len(np.unique(y_test[:50])) >= 8


def test_subset_train_and_test_are_disjoint(subset):
    (x_train, _), (x_test, _) = subset
    # no test image also appears in the training set (compare exact pixel content)
    train_rows = {row.tobytes() for row in x_train.reshape(len(x_train), -1)}
    assert not any(row.tobytes() in train_rows for row in x_test.reshape(len(x_test), -1))


def test_subset_is_deterministic(subset):
    (x_train, y_train), (x_test, y_test) = subset
    (x_train2, y_train2), (x_test2, y_test2) = load_mnist()
    # the same seed gives the same split, image for image
    np.testing.assert_array_equal(x_train, x_train2)
    np.testing.assert_array_equal(y_test, y_test2)
    # another seed gives another split of the same 5,000 digits
    (_, y_train_other), (_, y_test_other) = load_mnist(seed=1)
    assert not np.array_equal(y_test, y_test_other)
    assert np.bincount(y_test_other).tolist() == [100] * 10


def test_cache_path_follows_keras_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    # the file is looked for where Keras caches it: $KERAS_HOME/datasets/mnist.npz
    assert mnist_cache_path() == tmp_path / "datasets" / "mnist.npz"
    assert mnist_cache_path(tmp_path / "x") == tmp_path / "x" / "datasets" / "mnist.npz"


@pytest.fixture
def no_network(monkeypatch):
    """Make every socket connection fail, as on an offline machine."""
    def refuse(*args, **kwargs):
        raise OSError("network unavailable (blocked by the test)")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def test_full_offline_raises_error_naming_file_and_folder(tmp_path, no_network):
    expected = tmp_path / "datasets" / "mnist.npz"
    # with no file and no network the real download path is tried and fails with a clear message
    with pytest.raises(DataUnavailableError) as info:
        load_mnist(full=True, cache_dir=tmp_path)
    message = str(info.value)
    assert str(expected) in message and str(expected.parent) in message
    assert "mnist.npz" in message and "https://" in message
    # nothing was substituted or left half-written
    assert not expected.exists()


def _write_fake_full_mnist(path, n_train=60000, n_test=10000):
    rng = np.random.default_rng(0)
    path.parent.mkdir(parents=True)
    np.savez_compressed(
        path,
        x_train=(np.zeros((n_train, 28, 28), np.uint8)
                 + np.uint8(255) * (rng.random((1, 28, 28)) > 0.5)),
        y_train=(np.arange(n_train) % 10).astype(np.uint8),
        x_test=np.full((n_test, 28, 28), 51, np.uint8),
        y_test=(np.arange(n_test) % 10).astype(np.uint8),
    )


def test_full_reads_the_cached_file(tmp_path, no_network):
    path = tmp_path / "datasets" / "mnist.npz"
    _write_fake_full_mnist(path)
    (x_train, y_train), (x_test, y_test) = load_mnist(full=True, cache_dir=tmp_path)
    # the cached file is used (no download needed) and converted like the subset
    assert x_train.shape == (60000, 28, 28, 1) and x_test.shape == (10000, 28, 28, 1)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64
    assert x_train.max() == 1.0 and np.allclose(x_test, 51 / 255)
    assert y_test[:3].tolist() == [0, 1, 2]


def test_full_rejects_a_file_that_is_not_full_mnist(tmp_path):
    path = tmp_path / "datasets" / "mnist.npz"
    _write_fake_full_mnist(path, n_train=100, n_test=10)
    # a truncated file is an error naming the array and the expected shape, not a smaller data set
    with pytest.raises(ValueError,
                       match=r"x_train has shape \(100, 28, 28\), expected \(60000, 28, 28\)"):
        load_mnist(full=True, cache_dir=tmp_path)
