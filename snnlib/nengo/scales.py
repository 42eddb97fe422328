"""The literature's normalization as NengoDL's per-layer ``scale_firing_rates``, for any model
``nengo_dl.Converter`` converts: chains, residual ``Add``, ``Concatenate``, ``Average``, nested
models, batch normalization, pooling, a softmax output.

``nengo_dl.Converter`` gives ReLU neurons to every layer whose activation is a ReLU (a Dense
or convolution layer with ``activation="relu"`` or ``tf.nn.relu``, an ``Activation("relu")``
layer, a ``ReLU()`` layer; :func:`neuron_layers` lists them). With
``scale_firing_rates={layer: s_l}`` the neurons of layer l get gain ``s_l`` (bias current
``s_l * b``) and output amplitude ``1 / s_l``: they fire at ``s_l * a_l`` Hz for a Keras
activation ``a_l``, and what they pass on is still ``a_l`` on average, in Keras units. So
**the scales of different layers never need to agree**, wherever branches meet: an ``Add`` or
``Concatenate`` after neurons sums or stacks Keras-unit signals, whatever each branch's scale.

The normalization of Diehl et al. 2015 and Rueckauer et al. 2017 rescales the *weights*
instead, ``W_l * lambda_{l-1} / lambda_l``, so that every layer's activations are in units of
its own lambda. In that form branches are constrained: the signals that meet at an ``Add``
(or are stacked by a ``Concatenate``) must be in the same units, so the weights on each branch
into the merge must carry that branch's factor (Rueckauer et al. 2017 and SNN Toolbox give the
merge one lambda and rescale each incoming branch by ``lambda_branch / lambda_merge``). NengoDL's
parametrization has no such constraint because the amplitude ``1 / s_l`` converts every layer's
spikes back into Keras units before they leave the layer. Both give the same spikes: a neuron
of layer l fires at ``max_rate * a_l / lambda_l`` Hz either way.

:func:`layer_lambdas` measures lambda_l for every neuron layer on calibration data (the rules of
:mod:`snnlib.normalize`: Rueckauer's percentile of the non-zero activations, 99.9 by default, or
Diehl's max), and :func:`snnlib.nengo.bridge.nengo_scale_firing_rates` turns them into
``s_l = max_rate / lambda_l``. Where snnlib converts the model itself (``snnlib.check(model).ok``)
its spiking layers take snnlib's own lambdas (calibrated in float64, so that the dict spikes
exactly like ``snnlib.convert(..., normalization=...)``'s network); every other neuron layer (all
of them in a graph snnlib does not convert, a ReLU output layer, which snnlib reads out without
neurons) is measured on Keras's own activations with the same rule. The memory kept does not
grow with the calibration set for rules that are an order statistic
(:mod:`snnlib.normalize.quantiles`).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from snnlib import validation
from snnlib.normalize import quantiles
from snnlib.normalize.rules import NormalizationRule, get_rule

if TYPE_CHECKING:
    import tensorflow as tf

__all__ = [
    "BATCH_SIZE",
    "neuron_kind",
    "neuron_layers",
    "keras_lambdas",
    "layer_lambdas",
]

#: Calibration images per forward pass.
BATCH_SIZE = 256


def _relu_functions() -> tuple:
    import tensorflow as tf

    return tf.nn.relu, tf.keras.activations.relu


def neuron_kind(layer: tf.keras.layers.Layer) -> str | None:
    """What ``nengo_dl.Converter`` makes of the layer's output: "relu" (ReLU neurons, the ones
    ``scale_firing_rates`` scales and ``swap_activations`` can make spiking), "leaky_relu"
    (``nengo_dl.LeakyReLU`` neurons) or None (no neurons: a linear node, a fallback
    TensorNode, a layer without an activation of its own).

    Mirrors NengoDL 3.6's converters: ``Dense``, ``Conv1D/2D/3D`` and ``Activation`` layers
    convert their ``activation`` (``tf.nn.relu`` and ``"relu"`` both become
    ``nengo.RectifiedLinear``); a ``ReLU`` layer becomes one without ``max_value`` or
    ``threshold`` (else a fallback TensorNode), a leaky one with ``negative_slope``;
    ``LeakyReLU`` layers become ``nengo_dl.LeakyReLU``.
    """
    import tensorflow as tf

    L = tf.keras.layers
    # NengoDL looks its layer converters up by exact type (a subclass falls back)
    if type(layer) in (L.Dense, L.Conv1D, L.Conv2D, L.Conv3D, L.Activation):
        return "relu" if getattr(layer, "activation", None) in _relu_functions() else None
    if type(layer) is L.ReLU:
        if layer.max_value is not None or float(layer.threshold) != 0:
            return None
        return "relu" if float(layer.negative_slope) == 0 else "leaky_relu"
    if type(layer) is L.LeakyReLU:
        return "leaky_relu"
    return None


def _is_model(layer: Any) -> bool:
    import tensorflow as tf

    return isinstance(layer, tf.keras.Model)


def neuron_layers(model: tf.keras.Model, *, leaky: bool = True) -> list:
    """The Keras layers to which ``nengo_dl.Converter`` gives neurons, in model order, nested
    models' layers included: the keys of a per-layer ``scale_firing_rates`` dict.

    Parameters
    ----------
    model : tf.keras.Model
    leaky : bool
        Include leaky ReLU layers (``nengo_dl.LeakyReLU`` neurons, made spiking by swapping them
        for ``nengo_dl.SpikingLeakyReLU``; the papers' neuron does not replace them).
    """
    found = []
    for layer in model.layers:
        if _is_model(layer):
            found += neuron_layers(layer, leaky=leaky)
        elif neuron_kind(layer) == "relu" or (leaky and neuron_kind(layer) == "leaky_relu"):
            found.append(layer)
    return found


def _nodes(model: tf.keras.Model, layer: tf.keras.layers.Layer) -> list[int]:
    """Indices of the layer's calls (inbound nodes) that belong to ``model``'s graph."""
    network_nodes = getattr(model, "_network_nodes", None)
    indices = range(len(layer.inbound_nodes))
    if network_nodes is None:
        return list(indices)
    return [i for i in indices if f"{layer.name}_ib-{i}" in network_nodes]


class _Extractor:
    """Runs a (possibly nested) Keras model on batches and hands back the activations of its
    neuron layers: layer -> list of arrays (one per call of the layer in the graph)."""

    def __init__(self, model: tf.keras.Model, layers: list) -> None:
        import tensorflow as tf

        if len(model.inputs) != 1:
            raise validation.ArgumentError(
                f"model {model.name!r} has {len(model.inputs)} inputs; the calibration takes "
                "models with one input")
        wanted = {id(layer) for layer in layers}
        self.targets, tensors = [], []
        self.nested = []
        for layer in model.layers:
            if _is_model(layer) and any(id(inner) in wanted for inner in neuron_layers(layer)):
                for i in _nodes(model, layer):
                    inputs = layer.get_input_at(i)
                    if isinstance(inputs, (list, tuple)) and len(inputs) != 1:
                        raise validation.ArgumentError(
                            f"nested model {layer.name!r} has several inputs; flatten it into "
                            "the outer model to calibrate it")
                    self.nested.append((_Extractor(layer, layers), len(tensors)))
                    tensors.append(inputs[0] if isinstance(inputs, (list, tuple)) else inputs)
            elif id(layer) in wanted:
                for i in _nodes(model, layer):
                    self.targets.append((layer, len(tensors)))
                    tensors.append(layer.get_output_at(i))
        self.model = tf.keras.Model(model.inputs, tensors) if tensors else None

    def __call__(self, x: np.ndarray) -> dict:
        found: dict = {}
        if self.model is None:
            return found
        outputs = self.model(x, training=False)
        outputs = [outputs] if not isinstance(outputs, (list, tuple)) else outputs
        for layer, index in self.targets:
            found.setdefault(layer, []).append(np.asarray(outputs[index]))
        for extractor, index in self.nested:
            for layer, values in extractor(np.asarray(outputs[index])).items():
                found.setdefault(layer, []).extend(values)
        return found


def _batches(calibration: np.ndarray) -> Any:
    for start in range(0, len(calibration), BATCH_SIZE):
        yield calibration[start:start + BATCH_SIZE]


def keras_lambdas(model: tf.keras.Model, calibration: np.ndarray, layers: list, *,
                  rule: NormalizationRule) -> dict:
    """lambda of each given neuron layer, from Keras's own (float32) activations.

    An order-statistic rule (max, percentile) keeps the top of each layer's values only (at
    most :data:`snnlib.normalize.quantiles.TAIL_SIZE`), and falls back to keeping every value where
    that
    is not enough; any other rule gets every value of the layer, zeros included.
    """
    if not layers:
        return {}
    extractor = _Extractor(model, layers)
    order = rule.order_statistic()
    quantile, nonzero_only = order if order is not None else (1.0, True)
    batches = _batches(calibration)
    first = extractor(next(batches))
    n_first = min(len(calibration), BATCH_SIZE)
    tops, values = {}, {}
    for layer in layers:
        per_image = sum(a.size for a in first.get(layer, [])) // n_first
        needed = quantiles.tail_needed(len(calibration) * per_image, quantile)
        if order is None or needed > quantiles.TAIL_SIZE:
            values[layer] = []
        else:
            tops[layer] = quantiles.TopValues(1, nonzero_only=nonzero_only, size=needed)

    def take(found: dict) -> None:
        for layer, arrays in found.items():
            for array in arrays:
                if layer in tops:
                    tops[layer].add(array)
                else:
                    values[layer].append(array.ravel())

    take(first)
    for batch in batches:
        take(extractor(batch))
    lambdas = {}
    for layer in layers:
        if layer in tops:
            top = tops[layer]
            if top.count[0] == 0 or not top.max[0] > 0:
                lambdas[layer] = 1.0  # a layer that never activates keeps its scale
                continue
            value = top.quantile(0, quantile)
            # a percentile of values that are mostly zero can be 0: the largest value then
            lambdas[layer] = _named(layer, rule, value if value > 0 else top.max[0])
            continue
        every = np.concatenate(values[layer]) if values[layer] else np.zeros(0, np.float32)
        lambdas[layer] = _named(layer, rule, None, every)
    return lambdas


def _named(layer: tf.keras.layers.Layer, rule: NormalizationRule, value: float | None,
           every: np.ndarray | None = None) -> float:
    """lambda from an order statistic (``value``) or from every activation, errors naming the
    layer."""
    try:
        if value is not None:
            return rule.checked(float(value))
        return rule.scale(every.astype(np.float64))
    except ValueError as err:
        raise validation.ArgumentError(f"layer {layer.name!r}: {err}") from None


def layer_lambdas(model: tf.keras.Model, calibration: np.ndarray, *,
                  normalization: str | Callable | NormalizationRule = "percentile",
                  percentile: float = 99.9, include_zeros: bool = False) -> dict:
    """lambda_l of every layer with neurons in NengoDL (:func:`neuron_layers`), and where it
    was measured.

    Parameters
    ----------
    model : tf.keras.Model
        The trained model given to ``nengo_dl.Converter`` (any graph NengoDL converts).
    calibration : ndarray, shape (n,) + input shape
        Calibration inputs (training images, never test images), floating point.
    normalization, percentile, include_zeros
        The rule, as :func:`snnlib.convert.convert` takes it.

    Returns
    -------
    dict
        Keras layer -> (lambda, source), source "snnlib" (snnlib's float64 calibration of the
        same layer, where snnlib converts the model) or "keras" (Keras's activations).
    """
    from snnlib.convert import check, convert

    if normalization is None:
        raise validation.ArgumentError(
            "the per-layer scales need normalization='max' or 'percentile' (or a rule)")
    rule = get_rule(normalization, percentile=percentile, include_zeros=include_zeros)
    calibration = validation.images(calibration, "calibration")
    if len(calibration) == 0:
        raise validation.ArgumentError("calibration is empty: give a few hundred training "
                                       "images")
    layers = neuron_layers(model)
    if not layers:
        raise validation.ArgumentError(
            f"model {model.name!r} has no layer that nengo_dl.Converter gives ReLU neurons "
            "(a Dense or convolution with a ReLU activation, an Activation('relu') or ReLU() "
            "layer): there is nothing to scale")
    found: dict = {}
    if check(model).ok:
        network = convert(model, calibration=calibration, normalization=rule,
                          percentile=percentile, include_zeros=include_zeros)
        for name in network.spiking_layers:
            found[model.get_layer(name)] = (float(network.stage(name).scale), "snnlib")
    rest = [layer for layer in layers if layer not in found]
    for layer, value in keras_lambdas(model, calibration, rest, rule=rule).items():
        found[layer] = (float(value), "keras")
    return {layer: found[layer] for layer in layers if layer in found}
