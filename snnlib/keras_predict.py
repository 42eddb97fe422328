"""Keras predictions that several threads may ask for at once.

Keras 2.12 builds a model's predict function on the model's first ``predict`` call and stores
it on the model; two threads predicting with one model can race there (one reads the function
while the other is still building it: ``'Functional' object has no attribute
'predict_function'``). snnlib's own calls (:func:`snnlib.convert.verify`, ``convert``'s
pooling report, :func:`snnlib.ann.models.accuracy`) go through :func:`predict`, which runs one
at a time; each already uses every core.
"""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import tensorflow as tf

_LOCK = threading.Lock()


def predict(model: tf.keras.Model, x: np.ndarray, *, batch_size: int | None = None
            ) -> np.ndarray:
    """``model.predict(x, batch_size=batch_size, verbose=0)``, one call at a time."""
    with _LOCK:
        return np.asarray(model.predict(x, batch_size=batch_size, verbose=0))
