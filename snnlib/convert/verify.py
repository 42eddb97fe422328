"""The self-check: the converted network in rate mode reproduces the Keras outputs."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from snnlib import validation
from snnlib.convert.pipeline import check, convert
from snnlib.convert.registry import supported_layers
from snnlib.keras_predict import keras_lock, predict
from snnlib.network import SpikingNetwork

__all__ = [
    "keras_reference",
    "verify",
]

layers = tf.keras.layers


# --------------------------------------------------------------------------------------------
# The self-check
# --------------------------------------------------------------------------------------------

def keras_reference(network: SpikingNetwork, model: tf.keras.Model) -> tf.keras.Model:
    """The Keras model the network reproduces in rate mode.

    ``model`` itself, or, when the conversion changed the function on purpose, a copy of it
    with the same weights and the same change: without the final softmax it dropped (the
    copy outputs the logits), with average instead of max pooling (``max_to_avg_pool``). The
    copy is a new model, so no predict function compiled for ``model`` (which would still apply
    the softmax) is reused. Layers in ``network.relu_stand_ins`` (QCFS activations) become
    ``ReLU`` layers: the rate mode is their unquantized, unclipped limit.
    """
    stand_ins = getattr(network, "relu_stand_ins", [])
    if network.dropped_softmax is None and not network.swapped_pooling and not stand_ins:
        return model

    def clone(layer: tf.keras.layers.Layer) -> tf.keras.layers.Layer:
        config = layer.get_config()
        if layer.name in stand_ins:
            return layers.ReLU(name=layer.name)
        if layer.name == network.dropped_softmax:
            if isinstance(layer, (layers.Softmax, layers.Activation)):
                return layers.Activation("linear", name=layer.name)
            config["activation"] = "linear"
        elif layer.name in network.swapped_pooling:
            if isinstance(layer, layers.GlobalMaxPooling2D):
                return layers.GlobalAveragePooling2D(keepdims=layer.keepdims, name=layer.name)
            return layers.AveragePooling2D(layer.pool_size, layer.strides, layer.padding,
                                           name=layer.name)
        return type(layer).from_config(config)

    with keras_lock():  # Keras 2.12 builds layers through global state: one copy at a time
        try:
            reference = tf.keras.models.clone_model(model, clone_function=clone)
        except Exception as err:  # e.g. a custom layer without get_config
            raise ValueError(f"cannot build {_reference_text(network)} to compare with: "
                             f"{type(err).__name__}: {err}") from err
        for layer in model.layers:  # a stand-in has no weights (a QCFS threshold): by layer
            if layer.weights and layer.name not in stand_ins:
                reference.get_layer(layer.name).set_weights(layer.get_weights())
    return reference


def _reference_text(network: SpikingNetwork) -> str:
    parts = []
    if network.dropped_softmax is not None:
        parts.append(f"the logits of {network.dropped_softmax!r} (its softmax is dropped)")
    if getattr(network, "relu_stand_ins", []):
        parts.append("ReLU in place of the QCFS layers " + ", ".join(
            repr(n) for n in network.relu_stand_ins))
    if network.swapped_pooling:
        parts.append("average instead of max pooling in "
                     + ", ".join(repr(n) for n in network.swapped_pooling))
    return "Keras" if not parts else "the Keras model with " + " and ".join(parts)


def _softmax_hint(keras: np.ndarray, ours: np.ndarray) -> str:
    """A hint when the Keras outputs are probabilities and the network's are not."""
    keras, ours = keras.reshape(len(keras), -1), ours.reshape(len(ours), -1)
    sums_to_one = np.allclose(keras.sum(axis=1), 1, atol=1e-3) and keras.min() >= -1e-6
    if not sums_to_one or np.allclose(ours.sum(axis=1), 1, atol=1e-3):
        return ""
    return (". The Keras outputs are probabilities (non-negative, summing to 1 for each "
            "example) and the network's are not: the Keras model still applies a softmax. "
            "Setting layer.activation = 'linear' after the model has predicted once leaves "
            "Keras's compiled predict function applying it; convert the model with its final "
            "softmax instead (the conversion drops it, and verify compares with the logits), or "
            "verify against a model built to the logits")


def verify(network: SpikingNetwork, model: tf.keras.Model, x: np.ndarray, *, atol: float = 1e-4,
           rtol: float = 1e-4, batch_size: int = 256) -> float:
    """Check that the network in rate mode (ReLU rates, no spikes) reproduces the Keras outputs.

    What it compares with (:func:`keras_reference`): the Keras model's outputs; its logits (the
    input of the final softmax) when the conversion dropped that softmax
    (``network.dropped_softmax``); the Keras model with average pooling when max pooling was
    swapped (``max_to_avg_pool=True``, whose change ``convert`` reports). The error message
    names the reference.

    Parameters
    ----------
    network : SpikingNetwork
        From :func:`convert` (normalized or not: the readout is never rescaled).
    model : tf.keras.Model
        The model it was converted from.
    x : ndarray, shape (n,) + input shape
        Test inputs.
    atol, rtol : float
        Passes when ``max|difference| <= atol + rtol * max|keras output|`` (float32 arithmetic
        in Keras and here differ by rounding only).
    batch_size : int
        Examples per chunk.

    Returns
    -------
    float
        The largest absolute difference between the two outputs. For a quantized network
        (:func:`snnlib.quantize`), the float network it came from is checked within the
        tolerance, and the return value is the quantized network's largest difference from
        the Keras outputs: the rate-mode error the quantization introduces (not checked
        against the tolerance; :func:`snnlib.quantization_report` gives it layer by layer).

    Raises
    ------
    ValueError
        The difference exceeds the tolerance (the message gives it and where it occurs, and
        hints at a leftover softmax when the Keras outputs are probabilities and the network's
        are not), or the outputs have different sizes.
    """
    x = network.check_input(x)
    atol = validation.real(atol, "atol", low=0)
    rtol = validation.real(rtol, "rtol", low=0)
    if getattr(network, "quantization", None) is not None:
        # the conversion must be exact; the quantization's error is what is reported
        verify(network.unquantized, model, x, atol=atol, rtol=rtol, batch_size=batch_size)
        keras = np.asarray(predict(keras_reference(network, model), x, batch_size=batch_size),
                           dtype=np.float64)
        ours = network.forward(x, dtype=np.float64, batch_size=batch_size)
        return float(np.abs(ours.reshape(keras.shape) - keras).max())
    reference = keras_reference(network, model)
    what = _reference_text(network)
    ours = network.forward(x, dtype=np.float64, batch_size=batch_size)
    keras = np.asarray(predict(reference, x, batch_size=batch_size), dtype=np.float64)
    if ours.size != keras.size:
        raise ValueError(f"the converted network outputs {ours.shape[1:]} per example and "
                         f"{what} {keras.shape[1:]}: was the network converted from this model?")
    diff = np.abs(ours.reshape(keras.shape) - keras)
    largest = float(diff.max())
    tolerance = atol + rtol * float(np.abs(keras).max())
    if largest > tolerance:
        where = np.unravel_index(int(diff.argmax()), diff.shape)
        raise ValueError(f"converted network differs from {what} by up to {largest:.3g} (at "
                         f"index {where}), more than the tolerance {tolerance:.3g}"
                         + _softmax_hint(keras, ours))
    return largest


# The docstrings of check() and convert() list the supported layers from the registry.
for _function in (check, convert):
    _function.__doc__ = _function.__doc__.replace("{supported}", supported_layers())
