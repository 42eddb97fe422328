"""Keras predictions that several threads may ask for at once.

Keras 2.12 builds a model's predict function on the model's first ``predict`` call and stores
it on the model; two threads predicting with one model can race there (one reads the function
while the other is still building it: ``'Functional' object has no attribute
'predict_function'``). snnlib's own calls (:func:`snnlib.convert.verify`, ``convert``'s
pooling report, :func:`snnlib.ann.models.accuracy`) go through :func:`predict`, which runs one
at a time; each already uses every core. ``verify``'s copy of a model (``clone_model``) is made
under the same lock (:func:`keras_lock`), so ``convert`` and ``verify`` may be called from
several threads at once (tests/test_convert.py runs eight).
"""
from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import tensorflow as tf

__all__ = [
    "keras_lock",
    "predict",
]

_LOCK = threading.RLock()


def keras_lock() -> AbstractContextManager:
    """The lock that :func:`predict` holds: hold it around other Keras calls that build on a
    shared model (``clone_model``, ``set_weights``), so that they never overlap a prediction.
    Re-entrant, so code holding it may call :func:`predict`."""
    return _LOCK


def predict(model: tf.keras.Model, x: np.ndarray, *, batch_size: int | None = None
            ) -> np.ndarray:
    """``model.predict(x, batch_size=batch_size, verbose=0)``, one call at a time."""
    with _LOCK:
        return np.asarray(model.predict(x, batch_size=batch_size, verbose=0))
