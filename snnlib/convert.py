"""From a trained Keras model to a :class:`~snnlib.network.SpikingNetwork`, layer by layer.

One small converter class per Keras layer type, registered with :func:`register` (as
``nengo_dl.Converter.register`` does). A layer type with no registered converter, or a layer
setting a converter cannot honour (max pooling, sigmoid, channels_first, ...), stops the
conversion with an error that names the layer, its type and what is supported.

:func:`verify` is the self-check: the converted network in rate mode must reproduce the Keras
outputs.
"""
import numpy as np

from snnlib.network import (
    AvgPool2DOp, Conv2DOp, DenseOp, IdentityOp, ReshapeOp, SpikingNetwork, Stage,
)

#: Keras layer type -> converter class. Exact types: a subclass may change ``call``.
CONVERTERS = {}

SUPPORTED = ("InputLayer, Dense, Conv2D, AveragePooling2D, Flatten, ReLU, Activation('relu' or "
             "'linear'), Dropout, BatchNormalization (directly after a linear Dense/Conv2D)")
NORMALIZATIONS = (None, "max", "percentile")


class ConversionError(ValueError):
    """The Keras model cannot be converted; the message names the layer and the reason."""


def register(keras_type):
    """Class decorator: use the decorated converter for layers of exactly ``keras_type``."""
    def decorator(converter_class):
        CONVERTERS[keras_type] = converter_class
        return converter_class
    return decorator


class Builder:
    """Collects the stages while the converters run, in model order."""

    def __init__(self, input_shape):
        self.stages = []
        self.shape = tuple(input_shape)

    @property
    def last(self):
        return self.stages[-1] if self.stages else None

    def add(self, name, kind, op, output_shape, bias=None, activation=None, kernel=None):
        self.stages.append(Stage(
            name=name, kind=kind, keras_layers=[name], op=op, bias=bias, activation=activation,
            input_shape=self.shape, output_shape=tuple(output_shape), kernel_original=kernel,
            bias_original=bias,
        ))
        self.shape = tuple(output_shape)


class LayerConverter:
    """Base class: converts one Keras layer by adding to (or merging into) the stages."""

    def __init__(self, layer):
        self.layer = layer

    def fail(self, reason):
        """Raise a :class:`ConversionError` naming this layer and its type."""
        raise ConversionError(
            f"Cannot convert layer {self.layer.name!r} ({type(self.layer).__name__}): {reason}")

    def output_shape(self):
        return tuple(self.layer.output_shape[1:])

    def activation(self):
        """'relu' or None for the layer's ``activation`` argument; fails for any other."""
        return activation_name(self.layer.activation, self)

    def check_channels_last(self):
        if getattr(self.layer, "data_format", "channels_last") != "channels_last":
            self.fail(f"data_format={self.layer.data_format!r}; only channels_last is supported")

    def weights(self):
        """(kernel, bias or None) as NumPy arrays, checked to be finite."""
        kernel = self.layer.kernel.numpy()
        bias = self.layer.bias.numpy() if self.layer.use_bias else None
        for value in (kernel, bias):
            if value is not None and not np.all(np.isfinite(value)):
                self.fail("its weights contain NaN or infinite values")
        return kernel, bias

    def convert(self, builder):
        raise NotImplementedError


def activation_name(function, converter):
    """Map a Keras/TensorFlow activation function to 'relu' or None (linear)."""
    import tensorflow as tf

    if function is None or function is tf.keras.activations.linear:
        return None
    if function in (tf.keras.activations.relu, tf.nn.relu):
        return "relu"
    name = getattr(function, "__name__", repr(function))
    converter.fail(f"activation {name!r} is not supported; only ReLU (spiking neurons) and "
                   "linear (a non-spiking readout) activations can be converted")


def _register_all():
    """Define the converters (TensorFlow is imported only when converting)."""
    import tensorflow as tf

    layers = tf.keras.layers

    @register(layers.InputLayer)
    class InputConverter(LayerConverter):
        def convert(self, builder):
            pass  # the input shape is read from the model

    @register(layers.Dropout)
    class DropoutConverter(LayerConverter):
        def convert(self, builder):
            pass  # identity at inference

    @register(layers.Dense)
    class DenseConverter(LayerConverter):
        def convert(self, builder):
            kernel, bias = self.weights()
            builder.add(self.layer.name, "dense", DenseOp(kernel), self.output_shape(), bias=bias,
                        activation=self.activation(), kernel=kernel)

    @register(layers.Conv2D)
    class Conv2DConverter(LayerConverter):
        def convert(self, builder):
            self.check_channels_last()
            if tuple(self.layer.dilation_rate) != (1, 1) or self.layer.groups != 1:
                self.fail("dilated and grouped convolutions are not supported")
            kernel, bias = self.weights()
            op = Conv2DOp(kernel, tuple(self.layer.strides), self.layer.padding)
            builder.add(self.layer.name, "conv2d", op, self.output_shape(), bias=bias,
                        activation=self.activation(), kernel=kernel)

    @register(layers.AveragePooling2D)
    class AvgPool2DConverter(LayerConverter):
        def convert(self, builder):
            self.check_channels_last()
            op = AvgPool2DOp(tuple(self.layer.pool_size), tuple(self.layer.strides),
                             self.layer.padding)
            builder.add(self.layer.name, "avgpool2d", op, self.output_shape())

    @register(layers.Flatten)
    class FlattenConverter(LayerConverter):
        def convert(self, builder):
            self.check_channels_last()
            builder.add(self.layer.name, "flatten", ReshapeOp(self.output_shape()),
                        self.output_shape())

    @register(layers.ReLU)
    class ReLUConverter(LayerConverter):
        def convert(self, builder):
            layer = self.layer
            if layer.max_value is not None or float(layer.negative_slope) != 0 \
                    or float(layer.threshold) != 0:
                self.fail("only the plain ReLU (no max_value, negative_slope or threshold) "
                          "is supported")
            add_relu(builder, layer.name)

    @register(layers.Activation)
    class ActivationConverter(LayerConverter):
        def convert(self, builder):
            if self.activation() == "relu":
                add_relu(builder, self.layer.name)

    @register(layers.BatchNormalization)
    class BatchNormConverter(LayerConverter):
        def convert(self, builder):
            last = builder.last
            if last is None or not last.has_weights or last.spiking:
                self.fail("batch normalization can only be folded into a Dense or Conv2D layer "
                          "with a linear activation directly before it (put the ReLU after the "
                          "BatchNormalization)")
            axis = self.layer.axis
            if list(axis) != [len(builder.shape)]:
                self.fail(f"axis={list(axis)}; only the last (channel) axis is supported")
            fold_batch_norm(last, self.layer)

    register(layers.MaxPooling2D)(_MaxPoolConverter)


class _MaxPoolConverter(LayerConverter):
    def convert(self, builder):
        self.fail("max pooling has no rate-based spiking equivalent here; replace it with "
                  "AveragePooling2D and retrain the model")


def add_relu(builder, name):
    """Give the last stage ReLU neurons, or add an identity stage when it already has them."""
    last = builder.last
    if last is not None and not last.spiking:
        last.activation = "relu"
        last.name = name  # the neurons belong to the ReLU layer, as in nengo_dl
        last.keras_layers.append(name)
    else:
        builder.add(name, "identity", IdentityOp(), builder.shape, activation="relu")


def fold_batch_norm(stage, layer):
    """Fold inference-mode batch normalization into the weights of ``stage`` (in place)."""
    gamma = layer.gamma.numpy() if layer.scale else 1.0
    beta = layer.beta.numpy() if layer.center else 0.0
    std = np.sqrt(layer.moving_variance.numpy() + layer.epsilon)
    factor = gamma / std
    bias = stage.bias_original if stage.bias_original is not None else 0.0
    stage.kernel_original = (stage.kernel_original * factor).astype(np.float32)
    stage.bias_original = ((bias - layer.moving_mean.numpy()) * factor + beta).astype(np.float32)
    stage.op.kernel = stage.kernel_original
    stage.bias = stage.bias_original
    stage.name = layer.name
    stage.keras_layers.append(layer.name)


def chain_layers(model):
    """The model's layers in order, input layer first; fails unless it is a simple chain."""
    import tensorflow as tf

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


def check_model(model):
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


def layer_converter(layer):
    """The registered converter for ``layer``; fails naming the layer and what is supported."""
    if not CONVERTERS:
        _register_all()
    converter_class = CONVERTERS.get(type(layer))
    if converter_class is None:
        raise ConversionError(f"Cannot convert layer {layer.name!r} ({type(layer).__name__}): "
                              f"this layer type is not supported. Supported: {SUPPORTED}")
    return converter_class(layer)


def convert(model, *, calibration=None, normalization=None, percentile=99.9,
            include_zeros=False, batch_size=256):
    """Convert a trained Keras chain model to a spiking network, optionally normalized.

    Parameters
    ----------
    model : tf.keras.Model
        Trained Sequential or functional model: a single chain of the layer types in
        :data:`SUPPORTED`, channels last, ReLU hidden activations, a linear (or ReLU) output.
    calibration : ndarray, shape (n,) + input shape, optional
        Inputs (e.g. a few hundred training images in [0, 1]) on which the activations are
        measured for normalization. Needed when ``normalization`` is not None.
    normalization : {None, "max", "percentile"}
        None keeps the Keras weights. "max" (Diehl et al. 2015, data-based): lambda_l is the
        largest activation of layer l on the calibration set; no neuron then needs more than the
        maximum rate, but one outlier makes every other neuron fire slowly. "percentile"
        (Rueckauer et al. 2017): lambda_l is the ``percentile``-th percentile of the layer's
        non-zero activations, trading a few saturated neurons for higher rates everywhere else.
        Weights become ``W * lambda_prev / lambda`` and biases ``b / lambda``.
    percentile : float
        In (0, 100]. 100 is the same as "max" (over the non-zero activations).
    include_zeros : bool
        Take the percentile over all activations, zeros included (as sinabs), instead of the
        non-zero ones only (as SNN Toolbox). Zeros pull it down, so lambda gets smaller.
    batch_size : int
        Examples per chunk when measuring activations (bounds memory).

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
        Unknown normalization, percentile outside (0, 100], missing or bad calibration data.
    """
    from snnlib.normalize import check_normalization_args, normalize

    check_normalization_args(normalization, calibration, percentile)
    check_model(model)
    layers = chain_layers(model)
    builder = Builder(model.input_shape[1:])
    for layer in layers:
        layer_converter(layer).convert(builder)
    if not builder.stages:
        raise ConversionError(f"Model {model.name!r} has no layers to convert")
    input_name = layers[0].name if type(layers[0]).__name__ == "InputLayer" else "input"
    network = SpikingNetwork(builder.stages, model.input_shape[1:], input_name=input_name)
    if normalization is not None:
        normalize(network, calibration, method=normalization, percentile=percentile,
                  include_zeros=include_zeros, batch_size=batch_size)
    return network


def verify(network, model, x, *, atol=1e-4, rtol=1e-4, batch_size=256):
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
