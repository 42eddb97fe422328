"""From a trained Keras model to a :class:`~snnlib.network.SpikingNetwork`, layer by layer.

One small converter class per Keras layer type, registered with :func:`register` (as
``nengo_dl.Converter.register`` does). The registry (:data:`CONVERTERS`) is filled with the
built-in converters when this module is imported (which imports TensorFlow), is safe to use from
several threads, and warns when a registration replaces another. A layer type with no registered
converter, or a layer setting a converter cannot honour (max pooling, sigmoid, channels_first,
...), stops the conversion with an error that names the layer, its type, the supported types
(read from the registry) and how to register a converter.

:func:`verify` is the self-check: the converted network in rate mode must reproduce the Keras
outputs.

Adding a layer type = an op (:mod:`snnlib.ops`) and a converter::

    @snnlib.convert.register(MyLayer)
    class MyLayerConverter(snnlib.convert.LayerConverter):
        def convert(self, builder):
            builder.add(self.layer.name, MyOp(...), self.output_shape())
"""
from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

import numpy as np
import tensorflow as tf

from snnlib import validation
from snnlib.network import SpikingNetwork, Stage
from snnlib.normalize import NormalizationRule, check_normalization_args, normalize
from snnlib.ops import AvgPool2DOp, Conv2DOp, DenseOp, IdentityOp, Op, ReshapeOp

layers = tf.keras.layers


class ConversionError(ValueError):
    """The Keras model cannot be converted; the message names the layer and the reason."""


class ConverterRegistry(Mapping):
    """Keras layer type -> converter class: a read-only mapping with a thread-safe ``register``.

    Exact types are looked up (a subclass may change ``call``, so it needs its own converter).
    """

    def __init__(self) -> None:
        self._converters: dict[type, type[LayerConverter]] = {}
        self._lock = threading.Lock()

    def __getitem__(self, keras_type: type) -> type[LayerConverter]:
        return self._converters[keras_type]

    def __iter__(self) -> Iterator[type]:
        return iter(dict(self._converters))

    def __len__(self) -> int:
        return len(self._converters)

    def register(self, keras_type: type, converter_class: type[LayerConverter]) -> None:
        """Use ``converter_class`` for layers of exactly ``keras_type`` (warns on a replacement)."""
        if not (isinstance(converter_class, type) and issubclass(converter_class, LayerConverter)):
            raise TypeError(f"{converter_class!r} is not a LayerConverter subclass")
        with self._lock:
            old = self._converters.get(keras_type)
            if old is not None and old is not converter_class:
                warnings.warn(f"the converter for {keras_type.__name__} ({old.__name__}) is "
                              f"replaced by {converter_class.__name__}", stacklevel=3)
            self._converters[keras_type] = converter_class

    def supported(self) -> str:
        """The supported layer types, as a sentence fragment built from the registry."""
        with self._lock:
            items = list(self._converters.items())
        return ", ".join(converter.description or keras_type.__name__
                         for keras_type, converter in items if converter.supported)

    def converter(self, layer: tf.keras.layers.Layer) -> LayerConverter:
        """The registered converter for ``layer``; fails naming the layer and what to do."""
        converter_class = self._converters.get(type(layer))
        if converter_class is None:
            raise ConversionError(
                f"Cannot convert layer {layer.name!r} ({type(layer).__name__}): this layer type "
                f"is not supported. Supported: {self.supported()}. To convert another layer "
                "type, register a converter for it: decorate a snnlib.convert.LayerConverter "
                f"subclass with @snnlib.convert.register({type(layer).__name__}) and add a stage "
                "in its convert(builder) (see 'Extending snnlib' in the README)")
        return converter_class(layer)


#: The converter registry: Keras layer type -> converter class.
CONVERTERS = ConverterRegistry()


def register(keras_type: type) -> Callable[[type], type]:
    """Class decorator: use the decorated converter for layers of exactly ``keras_type``.

    Registering a type again replaces its converter, with a warning.
    """
    def decorator(converter_class: type) -> type:
        CONVERTERS.register(keras_type, converter_class)
        return converter_class
    return decorator


def supported_layers() -> str:
    """The layer types the registered converters support (e.g. for error messages)."""
    return CONVERTERS.supported()


class Builder:
    """Collects the stages while the converters run, in model order."""

    def __init__(self, input_shape: tuple) -> None:
        self.stages: list[Stage] = []
        self.shape = tuple(input_shape)

    @property
    def last(self) -> Stage | None:
        """The stage added last (None before the first)."""
        return self.stages[-1] if self.stages else None

    def add(self, name: str, op: Op, output_shape: tuple, *, bias: np.ndarray | None = None,
            activation: str | None = None, kernel: np.ndarray | None = None) -> Stage:
        """Append a stage ``activation(op(x) + bias)``.

        Parameters
        ----------
        name : str
            The Keras layer whose output the stage computes.
        op : Op
            Its linear operation.
        output_shape : tuple of int
            Shape of one output example.
        bias : ndarray, optional
            Per output channel / unit.
        activation : {None, "relu"}
            "relu": the stage has spiking neurons.
        kernel : ndarray, optional
            The op's kernel, for a stage with weights (normalization rescales it).
        """
        stage = Stage(
            name=name, kind=op.kind, keras_layers=[name], op=op, bias=bias,
            activation=activation, input_shape=self.shape, output_shape=tuple(output_shape),
            kernel_original=kernel, bias_original=bias,
        )
        self.stages.append(stage)
        self.shape = tuple(output_shape)
        return stage


class LayerConverter:
    """Base class: converts one Keras layer by adding to (or merging into) the stages.

    Class attributes
    ----------------
    description : str or None
        How the supported layer type is listed in error messages (None: its class name).
    supported : bool
        False for a converter registered only to explain why a layer type cannot be converted.
    """

    description: ClassVar[str | None] = None
    supported: ClassVar[bool] = True

    def __init__(self, layer: tf.keras.layers.Layer) -> None:
        self.layer = layer

    def fail(self, reason: str) -> None:
        """Raise a :class:`ConversionError` naming this layer and its type."""
        raise ConversionError(
            f"Cannot convert layer {self.layer.name!r} ({type(self.layer).__name__}): {reason}")

    def output_shape(self) -> tuple:
        """Shape of one output example of the layer."""
        return tuple(self.layer.output_shape[1:])

    def activation(self) -> str | None:
        """'relu' or None for the layer's ``activation`` argument; fails for any other."""
        return activation_name(self.layer.activation, self)

    def check_channels_last(self) -> None:
        """Fail unless the layer is channels last."""
        if getattr(self.layer, "data_format", "channels_last") != "channels_last":
            self.fail(f"data_format={self.layer.data_format!r}; only channels_last is supported")

    def weights(self) -> tuple[np.ndarray, np.ndarray | None]:
        """(kernel, bias or None) as NumPy arrays, checked to be finite."""
        kernel = self.layer.kernel.numpy()
        bias = self.layer.bias.numpy() if self.layer.use_bias else None
        for value in (kernel, bias):
            if value is not None and not np.all(np.isfinite(value)):
                self.fail("its weights contain NaN or infinite values")
        return kernel, bias

    def convert(self, builder: Builder) -> None:
        """Add this layer's stage to ``builder`` (or merge it into ``builder.last``)."""
        raise NotImplementedError


def activation_name(function: Any, converter: LayerConverter) -> str | None:
    """Map a Keras/TensorFlow activation function to 'relu' or None (linear)."""
    if function is None or function is tf.keras.activations.linear:
        return None
    if function in (tf.keras.activations.relu, tf.nn.relu):
        return "relu"
    name = getattr(function, "__name__", repr(function))
    converter.fail(f"activation {name!r} is not supported; only ReLU (spiking neurons) and "
                   "linear (a non-spiking readout) activations can be converted")


# --------------------------------------------------------------------------------------------
# The built-in converters, registered at import
# --------------------------------------------------------------------------------------------

@register(layers.InputLayer)
class InputConverter(LayerConverter):
    def convert(self, builder: Builder) -> None:
        pass  # the input shape is read from the model


@register(layers.Dense)
class DenseConverter(LayerConverter):
    def convert(self, builder: Builder) -> None:
        kernel, bias = self.weights()
        builder.add(self.layer.name, DenseOp(kernel), self.output_shape(), bias=bias,
                    activation=self.activation(), kernel=kernel)


@register(layers.Conv2D)
class Conv2DConverter(LayerConverter):
    def convert(self, builder: Builder) -> None:
        self.check_channels_last()
        if tuple(self.layer.dilation_rate) != (1, 1) or self.layer.groups != 1:
            self.fail("dilated and grouped convolutions are not supported")
        kernel, bias = self.weights()
        op = Conv2DOp(kernel, tuple(self.layer.strides), self.layer.padding)
        builder.add(self.layer.name, op, self.output_shape(), bias=bias,
                    activation=self.activation(), kernel=kernel)


@register(layers.AveragePooling2D)
class AvgPool2DConverter(LayerConverter):
    def convert(self, builder: Builder) -> None:
        self.check_channels_last()
        op = AvgPool2DOp(tuple(self.layer.pool_size), tuple(self.layer.strides),
                         self.layer.padding)
        builder.add(self.layer.name, op, self.output_shape())


@register(layers.Flatten)
class FlattenConverter(LayerConverter):
    def convert(self, builder: Builder) -> None:
        self.check_channels_last()
        builder.add(self.layer.name, ReshapeOp(self.output_shape()), self.output_shape())


@register(layers.ReLU)
class ReLUConverter(LayerConverter):
    def convert(self, builder: Builder) -> None:
        layer = self.layer
        if layer.max_value is not None or float(layer.negative_slope) != 0 \
                or float(layer.threshold) != 0:
            self.fail("only the plain ReLU (no max_value, negative_slope or threshold) "
                      "is supported")
        add_relu(builder, layer.name)


@register(layers.Activation)
class ActivationConverter(LayerConverter):
    description = "Activation('relu' or 'linear')"

    def convert(self, builder: Builder) -> None:
        if self.activation() == "relu":
            add_relu(builder, self.layer.name)


@register(layers.Dropout)
class DropoutConverter(LayerConverter):
    def convert(self, builder: Builder) -> None:
        pass  # identity at inference


@register(layers.BatchNormalization)
class BatchNormConverter(LayerConverter):
    description = "BatchNormalization (directly after a linear Dense/Conv2D)"

    def convert(self, builder: Builder) -> None:
        last = builder.last
        if last is None or not last.has_weights or last.spiking:
            self.fail("batch normalization can only be folded into a Dense or Conv2D layer "
                      "with a linear activation directly before it (put the ReLU after the "
                      "BatchNormalization)")
        axis = self.layer.axis
        if list(axis) != [len(builder.shape)]:
            self.fail(f"axis={list(axis)}; only the last (channel) axis is supported")
        fold_batch_norm(last, self.layer)


@register(layers.MaxPooling2D)
class MaxPoolConverter(LayerConverter):
    supported = False

    def convert(self, builder: Builder) -> None:
        self.fail("max pooling has no rate-based spiking equivalent here; replace it with "
                  "AveragePooling2D and retrain the model")


def add_relu(builder: Builder, name: str) -> None:
    """Give the last stage ReLU neurons, or add an identity stage when it already has them."""
    last = builder.last
    if last is not None and not last.spiking:
        last.activation = "relu"
        last.name = name  # the neurons belong to the ReLU layer, as in nengo_dl
        last.keras_layers.append(name)
    else:
        builder.add(name, IdentityOp(), builder.shape, activation="relu")


def fold_batch_norm(stage: Stage, layer: tf.keras.layers.BatchNormalization) -> None:
    """Fold inference-mode batch normalization into the weights of ``stage`` (in place)."""
    gamma = layer.gamma.numpy() if layer.scale else 1.0
    beta = layer.beta.numpy() if layer.center else 0.0
    std = np.sqrt(layer.moving_variance.numpy() + layer.epsilon)
    factor = gamma / std
    bias = stage.bias_original if stage.bias_original is not None else 0.0
    stage.kernel_original = (stage.kernel_original * factor).astype(np.float32)
    stage.bias_original = ((bias - layer.moving_mean.numpy()) * factor + beta).astype(np.float32)
    stage.op = stage.op.with_kernel(stage.kernel_original)
    stage.bias = stage.bias_original
    stage.name = layer.name
    stage.keras_layers.append(layer.name)


def chain_layers(model: tf.keras.Model) -> list[tf.keras.layers.Layer]:
    """The model's layers in order, input layer first; fails unless it is a simple chain."""
    if isinstance(model, tf.keras.Sequential):
        return list(model.layers)
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ConversionError(
            f"Cannot convert model {model.name!r}: it has {len(model.inputs)} inputs and "
            f"{len(model.outputs)} outputs; only single-input, single-output chains are supported")
    chain, tensor = [], model.outputs[0]
    while True:
        layer = tensor._keras_history.layer
        chain.append(layer)
        if isinstance(layer, tf.keras.layers.InputLayer):
            break
        inputs = layer.input
        if isinstance(inputs, (list, tuple)):
            raise ConversionError(
                f"Cannot convert layer {layer.name!r} ({type(layer).__name__}): it merges "
                f"{len(inputs)} inputs; only simple chains (one input per layer) are supported")
        tensor = inputs
    chain.reverse()
    extra = [layer.name for layer in model.layers if layer not in chain]
    if extra:
        raise ConversionError(f"Cannot convert model {model.name!r}: layers {extra} are on a "
                              "branch off the input-to-output chain; only simple chains are "
                              "supported")
    return chain


def check_model(model: tf.keras.Model) -> None:
    """Fail clearly for an unbuilt model or one whose weights are all zero / not finite."""
    if not getattr(model, "built", False):
        raise ConversionError(
            f"Model {getattr(model, 'name', model)!r} is not built (it has no weights yet): "
            "build it with an input shape (tf.keras.Input or model.build) and train it first")
    if len(model.inputs) != 1:
        raise ConversionError(f"Model {model.name!r} has {len(model.inputs)} inputs; only "
                              "single-input chains are supported")
    kernels = [w.numpy() for w in model.weights if "kernel" in w.name]
    if kernels and all(not np.any(k) for k in kernels):
        raise ConversionError(f"Model {model.name!r} has all-zero kernels: its weights are "
                              "uninitialized or untrained")
    shape = model.input_shape
    if any(d is None for d in shape[1:]):
        raise ConversionError(f"Model {model.name!r} has input shape {shape}: every axis but "
                              "the batch axis must be known")


def layer_converter(layer: tf.keras.layers.Layer) -> LayerConverter:
    """The registered converter for ``layer``; fails naming the layer and what is supported."""
    return CONVERTERS.converter(layer)


def convert(model: tf.keras.Model, *, calibration: np.ndarray | None = None,
            normalization: str | Callable | NormalizationRule | None = None,
            percentile: float = 99.9, include_zeros: bool = False,
            batch_size: int = 256, granularity: str = "layer") -> SpikingNetwork:
    """Convert a trained Keras chain model to a spiking network, optionally normalized.

    Parameters
    ----------
    model : tf.keras.Model
        Trained Sequential or functional model: a single chain of the registered layer types
        (:func:`supported_layers`), channels last, ReLU hidden activations, a linear (or ReLU)
        output.
    calibration : ndarray, shape (n,) + input shape, optional
        Inputs (e.g. a few hundred training images in [0, 1]) on which the activations are
        measured for normalization. Needed when ``normalization`` is not None.
    normalization : {None, "max", "percentile"}, callable or NormalizationRule
        None keeps the Keras weights. "max" (Diehl et al. 2015, data-based): lambda_l is the
        largest activation of layer l on the calibration set; no neuron then needs more than the
        maximum rate, but one outlier makes every other neuron fire slowly. "percentile"
        (Rueckauer et al. 2017): lambda_l is the ``percentile``-th percentile of the layer's
        non-zero activations, trading a few saturated neurons for higher rates everywhere else.
        Weights become ``W * lambda_prev / lambda`` and biases ``b / lambda``. A callable
        (activations of one layer, a flat array of Keras activations on the calibration set ->
        lambda) or a :class:`~snnlib.normalize.NormalizationRule` defines another rule; see
        :mod:`snnlib.normalize` (the table of rules, :data:`~snnlib.normalize.NORMALIZATIONS`).
    percentile : float
        In (0, 100], for "percentile". 100 is the same as "max" (over the non-zero activations).
    include_zeros : bool
        Take the percentile over all activations, zeros included (as sinabs), instead of the
        non-zero ones only (as SNN Toolbox). Zeros pull it down, so lambda gets smaller.
    batch_size : int
        Examples per chunk when measuring activations (bounds memory).
    granularity : {"layer", "channel"}
        One lambda per layer (the papers'), or one per output channel of each spiking layer
        (the next kernel rescaled per input channel): see :mod:`snnlib.normalize`.

    Returns
    -------
    SpikingNetwork
        ``.scales`` maps each layer name to lambda; ``.weights()`` gives the original and converted
        weights layer by layer; ``.normalization_report()`` the per-layer statistics.

    Raises
    ------
    ConversionError
        Unsupported layer, activation or setting (named); unbuilt or untrained model.
    ValueError
        Unknown normalization, percentile outside (0, 100], missing or bad calibration data
        (integer images: divide by 255), calibration data without a normalization.
    """
    check_normalization_args(normalization, calibration, percentile, include_zeros=include_zeros,
                             batch_size=batch_size, granularity=granularity)
    check_model(model)
    chain = chain_layers(model)
    builder = Builder(model.input_shape[1:])
    for layer in chain:
        layer_converter(layer).convert(builder)
    if not builder.stages:
        raise ConversionError(f"Model {model.name!r} has no layers to convert")
    input_name = chain[0].name if type(chain[0]).__name__ == "InputLayer" else "input"
    network = SpikingNetwork(builder.stages, model.input_shape[1:], input_name=input_name)
    if normalization is not None:
        normalize(network, calibration, method=normalization, percentile=percentile,
                  include_zeros=include_zeros, batch_size=batch_size, granularity=granularity)
    return network


def verify(network: SpikingNetwork, model: tf.keras.Model, x: np.ndarray, *, atol: float = 1e-4,
           rtol: float = 1e-4, batch_size: int = 256) -> float:
    """Check that the network in rate mode (ReLU rates, no spikes) reproduces the Keras outputs.

    Parameters
    ----------
    network : SpikingNetwork
        From :func:`convert` (normalized or not: the output layer is never rescaled).
    model : tf.keras.Model
        The model it was converted from.
    x : ndarray, shape (n,) + input shape
        Test inputs.
    atol, rtol : float
        Passes when ``max|difference| <= atol + rtol * max|keras output|`` (float32 arithmetic
        in Keras and here differ by rounding only).

    Returns
    -------
    float
        The largest absolute difference between the two outputs.

    Raises
    ------
    ValueError
        The difference exceeds the tolerance (the message gives it and where it occurs).
    """
    x = network.check_input(x)
    atol = validation.real(atol, "atol", low=0)
    rtol = validation.real(rtol, "rtol", low=0)
    ours = network.forward(x, dtype=np.float64, batch_size=batch_size)
    keras = np.asarray(model.predict(x, batch_size=batch_size, verbose=0), dtype=np.float64)
    diff = np.abs(ours.reshape(keras.shape) - keras)
    largest = float(diff.max())
    tolerance = atol + rtol * float(np.abs(keras).max())
    if largest > tolerance:
        where = np.unravel_index(int(diff.argmax()), diff.shape)
        raise ValueError(f"converted network differs from Keras by up to {largest:.3g} (at index "
                         f"{where}), more than the tolerance {tolerance:.3g}")
    return largest
