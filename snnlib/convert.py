"""From a trained Keras model to a :class:`~snnlib.network.SpikingNetwork`, layer by layer.

One small converter class per Keras layer type, registered with :func:`register` (as
``nengo_dl.Converter.register`` does). The registry (:data:`CONVERTERS`) is filled with the
built-in converters when this module is imported (which imports TensorFlow), is safe to use from
several threads, and warns when a registration replaces another. Layer types that cannot be
converted (max pooling, leaky ReLU, ``Lambda``, ...) are registered too, with the reason
and the fix, so that the messages come from one place. The model may be a graph: joins
(``Add``, ``Subtract``, ``Average``, ``Concatenate``) are converters like any other, whose stage
reads every input of the layer (:class:`JoinConverter`).

:func:`check` inspects a model without converting it and lists *every* layer that will not
convert, each with its fix, and what the conversion will change (a dropped softmax, a folded
batch normalization); :func:`convert` raises a :class:`ConversionError` with the same full list.
:func:`verify` is the self-check: the converted network in rate mode must reproduce the Keras
outputs.

Adding a layer type = an op (:mod:`snnlib.ops`) and a converter::

    @snnlib.register_converter(MyLayer)  # the same as snnlib.convert.register
    class MyLayerConverter(snnlib.convert.LayerConverter):
        def problems(self):          # optional: what stops this layer, each with its fix
            return []

        def convert(self, builder):
            builder.add(self.layer.name, MyOp(...), self.output_shape())
"""
from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, NoReturn

import numpy as np
import tensorflow as tf

from snnlib import stats, validation
from snnlib.network import SpikingNetwork, Stage
from snnlib.normalize import NormalizationRule, check_normalization_args, normalize
from snnlib.ops import (
    AddOp,
    AffineOp,
    AvgPool1DOp,
    AvgPool2DOp,
    ConcatOp,
    Conv1DOp,
    Conv2DOp,
    Cropping2DOp,
    DenseOp,
    GlobalAvgPool1DOp,
    GlobalAvgPool2DOp,
    IdentityOp,
    Op,
    ReshapeLayerOp,
    ReshapeOp,
    UpSampling2DOp,
    ZeroPad2DOp,
    same_padding,
)

layers = tf.keras.layers

#: Where the README explains how to add a converter (named in the messages).
EXTENDING = "see 'Extending snnlib' in the README"


# --------------------------------------------------------------------------------------------
# Problems, the report of check(), and the error
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    """Something that stops a model from converting, and how to fix it.

    Attributes
    ----------
    name : str
        The layer's name (the model's, for a problem of the model as a whole).
    type : str
        The layer's (or model's) class name, e.g. "MaxPooling2D".
    reason : str
        Why it cannot be converted.
    fix : str
        What to do instead ("" when there is nothing to add).
    model_level : bool
        A problem of the whole model (not built, subclassed, several inputs, ...).
    """

    name: str
    type: str
    reason: str
    fix: str = ""
    model_level: bool = False

    def __str__(self) -> str:
        where = (f"model {self.name!r} ({self.type})" if self.model_level
                 else f"{self.type} {self.name!r}")
        return f"{where}: {self.reason}" + (f"; {self.fix}" if self.fix else "")


@dataclass
class CheckReport:
    """What :func:`check` found: the problems (each with its fix) and what conversion changes.

    Attributes
    ----------
    model : str
        The model's name.
    problems : list of Problem
        Every layer (or model property) that will not convert; empty when it converts.
    notes : list of str
        What the conversion changes or decides (a dropped softmax, a folded batch
        normalization, ...), as far as known: the notes that depend on the neighbouring layers
        are only listed once there is no problem.
    supported : str
        The supported layer types, from the registry.
    """

    model: str
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    supported: str = ""

    @property
    def ok(self) -> bool:
        """True when the model converts."""
        return not self.problems

    def __str__(self) -> str:
        if self.ok:
            lines = [f"Model {self.model!r} converts."]
        else:
            count = len(self.problems)
            lines = [f"Cannot convert model {self.model!r}: {count} "
                     f"{'problem' if count == 1 else 'problems'}, each with its fix:"]
            lines += [f"  - {problem}" for problem in self.problems]
        if self.notes:
            lines.append("What the conversion changes:")
            lines += [f"  - {note}" for note in self.notes]
        if not self.ok:
            lines.append(f"Supported: {self.supported}.")
        return "\n".join(lines)

    def error(self) -> ConversionError:
        """The :class:`ConversionError` that :func:`convert` raises for these problems."""
        return ConversionError(str(self), self.problems)


class ConversionError(ValueError):
    """The Keras model cannot be converted; the message lists every problem with its fix.

    Attributes
    ----------
    problems : list of Problem
        The same problems, one object each.
    """

    def __init__(self, message: str, problems: list[Problem] | tuple = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)


# --------------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------------

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

    def unknown(self, layer: tf.keras.layers.Layer) -> Problem:
        """The problem of a layer whose type has no registered converter."""
        kind = type(layer).__name__
        if isinstance(layer, tf.keras.Model):
            return Problem(layer.name, kind, "a model nested in the model",
                           "build one Sequential or functional model from its layers")
        return Problem(layer.name, kind, "this layer type is not supported (no converter is "
                       "registered for it)", "to convert it, register a converter: decorate a "
                       "snnlib.convert.LayerConverter subclass with "
                       f"@snnlib.register_converter({kind}) (the same as "
                       "snnlib.convert.register, imported with 'from snnlib.convert import "
                       f"register') and add a stage in its convert(builder) ({EXTENDING})")

    def converter(self, layer: tf.keras.layers.Layer, **options: Any) -> LayerConverter:
        """The registered converter for ``layer``; fails naming the layer and what to do.

        ``options`` (``is_output``, ``max_to_avg_pool``) are passed to the converter.
        """
        converter_class = self._converters.get(type(layer))
        if converter_class is None:
            problem = self.unknown(layer)
            raise ConversionError(f"Cannot convert {problem}. Supported: {self.supported()}",
                                  [problem])
        return converter_class(layer, **options)


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


# --------------------------------------------------------------------------------------------
# The builder and the converters' base class
# --------------------------------------------------------------------------------------------

class Builder:
    """Collects the stages while the converters run, in model order, and what they changed.

    The model's layers are visited in an order where each comes after its inputs. Before each
    layer's converter runs, :meth:`read` says which stages the layer reads: ``shape`` and
    ``last`` then describe its input, and :meth:`add` makes the new stage read them.

    Attributes
    ----------
    stages : list of Stage
    shape : tuple
        Shape of one example of the current layer's (first) input.
    notes : list of str
        What the conversion changed (folds, affine stages, the readout), one sentence each.
    dropped_softmax : str or None
        The layer whose final softmax was dropped (see :meth:`drop_softmax`).
    swapped_pooling : list of str
        Max-pooling layers converted as average pooling.
    layer_types : dict
        Keras layer name -> class name, for the notes.
    """

    def __init__(self, input_shape: tuple, input_name: str = "input") -> None:
        self.stages: list[Stage] = []
        self.input_shape = self.shape = tuple(input_shape)
        self.input_name = input_name
        self.notes: list[str] = []
        self.dropped_softmax: str | None = None
        self.swapped_pooling: list[str] = []
        self.layer_types: dict[str, str] = {}
        self.reading: list[Stage | None] = [None]
        self._sources: dict[int, list[Stage | None]] = {}
        self._shared: dict[int, bool] = {}

    def read(self, stages: list[Stage | None]) -> None:
        """The current layer reads these stages' outputs (None: the network's input)."""
        self.reading = list(stages)
        first = self.reading[0]
        self.shape = self.input_shape if first is None else first.output_shape

    def share(self, stage: Stage | None, shared: bool) -> None:
        """Record that ``stage``'s output is (also) read by more than one layer."""
        if stage is not None:
            self._shared[id(stage)] = self._shared.get(id(stage), False) or shared

    @property
    def last(self) -> Stage | None:
        """The stage the current layer reads, when a converter may merge into it: the layer
        reads one stage and is its only reader (None otherwise, and before the first)."""
        if len(self.reading) != 1 or self.reading[0] is None:
            return None
        stage = self.reading[0]
        return None if self._shared.get(id(stage), False) else stage

    def add(self, name: str, op: Op, output_shape: tuple, *, bias: np.ndarray | None = None,
            activation: str | None = None, kernel: np.ndarray | None = None) -> Stage:
        """Append a stage ``activation(op(x) + bias)`` that reads the current layer's input.

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
            "relu": the stage has spiking neurons (unless it ends up in the readout).
        kernel : ndarray, optional
            The op's kernel, for a stage with weights (normalization rescales it).
        """
        stage = Stage(
            name=name, kind=op.kind, keras_layers=[name], op=op, bias=bias,
            activation=activation, input_shape=self.shape, output_shape=tuple(output_shape),
            kernel_original=kernel, bias_original=bias,
        )
        self._sources[id(stage)] = list(self.reading)
        self.stages.append(stage)
        self.read([stage])
        return stage

    def note(self, text: str) -> None:
        """Record what the conversion changed (shown by :func:`check` and on the network)."""
        self.notes.append(text)

    def drop_softmax(self, name: str) -> None:
        """The model's final softmax (in layer ``name``) is left out: the readout gives logits."""
        self.dropped_softmax = name

    def is_chain(self) -> bool:
        """True while every stage reads the stage before it (or the input, the first)."""
        return all(self._sources.get(id(stage)) == [self.stages[i - 1] if i else None]
                   for i, stage in enumerate(self.stages))

    def link(self) -> None:
        """Set each stage's ``inputs`` by name (empty where it reads the stage before it)."""
        for i, stage in enumerate(self.stages):
            sources = self._sources.get(id(stage), [self.stages[i - 1] if i else None])
            if sources == [self.stages[i - 1] if i else None]:
                stage.inputs = ()
            else:
                stage.inputs = tuple(self.input_name if s is None else s.name for s in sources)


class LayerConverter:
    """Base class: converts one Keras layer by adding to (or merging into) the stages.

    Subclasses implement :meth:`convert` and, when some settings of the layer type cannot be
    converted, :meth:`problems` (each with its fix; :func:`check` lists them for every layer
    before any conversion). :meth:`notes` says what the conversion will change about the layer.

    Parameters
    ----------
    layer : tf.keras.layers.Layer
    is_output : bool
        The layer is the model's output layer (a softmax is only converted there).
    max_to_avg_pool : bool
        ``convert(..., max_to_avg_pool=True)``: max pooling is converted as average pooling.

    Class attributes
    ----------------
    description : str or None
        How the supported layer type is listed in messages (None: its class name).
    supported : bool
        False for a converter registered only to explain why a layer type cannot be converted.
    """

    description: ClassVar[str | None] = None
    supported: ClassVar[bool] = True

    def __init__(self, layer: tf.keras.layers.Layer, *, is_output: bool = False,
                 max_to_avg_pool: bool = False) -> None:
        self.layer = layer
        self.is_output = is_output
        self.max_to_avg_pool = max_to_avg_pool

    # -- what check() asks ------------------------------------------------------------------

    def problems(self) -> list[Problem]:
        """Everything that stops this layer from converting, each with its fix (empty: none)."""
        return []

    def notes(self) -> list[str]:
        """What the conversion will change about this layer, known without converting."""
        return []

    def problem(self, reason: str, fix: str = "") -> Problem:
        """A :class:`Problem` of this layer."""
        return Problem(self.layer.name, type(self.layer).__name__, reason, fix)

    def fail(self, reason: str, fix: str = "") -> NoReturn:
        """Raise a :class:`ConversionError` naming this layer and its type."""
        problem = self.problem(reason, fix)
        raise ConversionError(f"Cannot convert {problem}", [problem])

    # -- helpers ----------------------------------------------------------------------------

    def output_shape(self) -> tuple:
        """Shape of one output example of the layer."""
        return tuple(self.layer.output_shape[1:])

    def activation_name(self) -> str:
        """The name of the layer's ``activation`` ("linear" for None)."""
        function = self.layer.activation
        if function is None or function is tf.keras.activations.linear:
            return "linear"
        if function in RELUS:
            return "relu"
        if function is tf.keras.activations.softmax or function is tf.nn.softmax:
            return "softmax"
        return getattr(function, "__name__", repr(function))

    def activation_problems(self) -> list[Problem]:
        """The problem of an activation other than ReLU, linear, or a final softmax."""
        name = self.activation_name()
        if name in ("relu", "linear") or (name == "softmax" and self.is_output):
            return []
        if name == "softmax":
            return [self.problem(
                "a softmax inside the network has no rate equivalent (it normalizes across "
                "units)", "use ReLU there and retrain; a softmax converts only in the output "
                "layer, where it is dropped (argmax is unchanged)")]
        reason, fix = ACTIVATION_FIXES.get(name, (
            f"activation {name!r} is not supported: only ReLU (spiking neurons), linear and a "
            "final softmax convert", "use ReLU and retrain"))
        return [self.problem(f"activation {name!r}: {reason}", fix)]

    def activation(self) -> str | None:
        """'relu', None (linear) or 'softmax' (output layer only); fails for any other."""
        for problem in self.activation_problems():
            self.fail(problem.reason, problem.fix)
        name = self.activation_name()
        return None if name == "linear" else name

    def softmax_notes(self) -> list[str]:
        """The note of a final softmax that the conversion drops."""
        if self.is_output and self.activation_name() == "softmax":
            return [softmax_note(self.layer.name)]
        return []

    def channels_last_problems(self) -> list[Problem]:
        """The problem of a channels_first layer."""
        if getattr(self.layer, "data_format", "channels_last") != "channels_last":
            return [self.problem(f"data_format={self.layer.data_format!r}: only channels_last "
                                 "is supported", "build the model channels_last (the Keras "
                                 "default) and copy the weights")]
        return []

    def check_channels_last(self) -> None:
        """Fail unless the layer is channels last."""
        for problem in self.channels_last_problems():
            self.fail(problem.reason, problem.fix)

    def weight_problems(self) -> list[Problem]:
        """The problem of weights that are NaN or infinite."""
        values = [w.numpy() for w in self.layer.weights]
        if any(not np.all(np.isfinite(v)) for v in values):
            return [self.problem("its weights contain NaN or infinite values",
                                 "retrain (e.g. with a smaller learning rate)")]
        return []

    def weights(self) -> tuple[np.ndarray, np.ndarray | None]:
        """(kernel, bias or None) as NumPy arrays, checked to be finite.

        For layers with ``.kernel`` and ``.bias`` (Dense, Conv1D, Conv2D); a converter of any
        other layer reads ``self.layer.get_weights()`` (or the layer's own attributes) itself.
        """
        if not hasattr(self.layer, "kernel"):
            names = [w.name for w in self.layer.weights] or "none"
            self.fail(f"{type(self).__name__} calls LayerConverter.weights(), which reads "
                      f"layer.kernel and layer.bias, but this layer has no .kernel (its "
                      f"weights: {names})", "read the weights in the converter from "
                      "self.layer.get_weights() or the layer's own attributes "
                      f"(e.g. depthwise_kernel) ({EXTENDING})")
        kernel = self.layer.kernel.numpy()
        use_bias = getattr(self.layer, "use_bias", getattr(self.layer, "bias", None) is not None)
        bias = self.layer.bias.numpy() if use_bias else None
        return self.finite(kernel), self.finite(bias)

    def finite(self, value: np.ndarray | None) -> np.ndarray | None:
        """``value`` unchanged, after checking that it is finite (None passes)."""
        if value is not None and not np.all(np.isfinite(value)):
            self.fail("its weights contain NaN or infinite values",
                      "retrain (e.g. with a smaller learning rate)")
        return value

    def convert(self, builder: Builder) -> None:
        """Add this layer's stage to ``builder`` (or merge it into ``builder.last``)."""
        raise NotImplementedError


#: The activation functions converted as ReLU neurons.
RELUS = (tf.keras.activations.relu, tf.nn.relu, tf.keras.backend.relu)

_NEGATIVE = ("negative rates need negative spikes",
             "use ReLU and retrain")
_SMOOTH = ("a spiking neuron's rate is a ReLU of its input current, so this curve has no "
           "rate equivalent", "use ReLU and retrain")
_SATURATING = ("a saturating curve: a spiking neuron's rate is a ReLU of its input current",
               "use ReLU and retrain (at the output, a linear layer trained with "
               "from_logits=True)")
#: Why a clipped ReLU is refused (after "a clipped ReLU (...)").
_CLIPPED = ("snnlib's rate mode (and verify) has no ceiling; a neuron limited to one spike per "
            "step does saturate, at 1/dt, but that is the clip only where lambda = max_value x "
            "scale x dt, and with reset by subtraction its voltage keeps the excess above the "
            "ceiling, which fires later as extra spikes: not the same function")
#: Activation name -> (reason, fix), for the messages.
ACTIVATION_FIXES = {
    "relu6": (f"a clipped ReLU (relu6, like ReLU(max_value=6)): {_CLIPPED}",
              "use ReLU without max_value and retrain"),
    "leaky_relu": _NEGATIVE,
    "elu": _NEGATIVE, "selu": _NEGATIVE, "gelu": _SMOOTH, "swish": _SMOOTH, "silu": _SMOOTH,
    "softplus": _SMOOTH, "exponential": _SMOOTH, "mish": _SMOOTH,
    "sigmoid": _SATURATING, "hard_sigmoid": _SATURATING, "tanh": _SATURATING,
    "softsign": _SATURATING,
    "soft_lif": ("a LIF neuron's rate curve (snnlib.soft_lif, nengo_dl.SoftLIFRate): the "
                 "converted network's rate mode computes ReLU, so verify() would not match",
                 "copy the weights into the same model built with ReLU (model.set_weights), "
                 "convert that, and simulate with neuron='lif' at the scale the curve was "
                 "trained for, with a synapse (chapter 7)"),
}


def softmax_note(name: str) -> str:
    """The note of a final softmax dropped from layer ``name``."""
    return (f"the softmax of {name!r} is dropped: the readout outputs its logits (the "
            "predicted class, the argmax, is unchanged); verify() compares with the Keras "
            "model's logits")


# --------------------------------------------------------------------------------------------
# The built-in converters, registered at import
# --------------------------------------------------------------------------------------------

@register(layers.InputLayer)
class InputConverter(LayerConverter):
    def convert(self, builder: Builder) -> None:
        pass  # the input shape is read from the model


@register(layers.Dense)
class DenseConverter(LayerConverter):
    description = "Dense (ReLU or linear; softmax in the output layer)"

    def problems(self) -> list[Problem]:
        return self.activation_problems() + self.weight_problems()

    def notes(self) -> list[str]:
        return self.softmax_notes()

    def convert(self, builder: Builder) -> None:
        kernel, bias = self.weights()
        activation = self.activation()
        builder.add(self.layer.name, DenseOp(kernel), self.output_shape(), bias=bias,
                    activation="relu" if activation == "relu" else None, kernel=kernel)
        if activation == "softmax":
            builder.drop_softmax(self.layer.name)


@register(layers.Conv2D)
class Conv2DConverter(LayerConverter):
    description = "Conv2D (ReLU or linear; dilated and grouped too)"

    def problems(self) -> list[Problem]:
        return self.channels_last_problems() + self.activation_problems() + \
            self.weight_problems()

    def notes(self) -> list[str]:
        return self.softmax_notes()

    def op(self, kernel: np.ndarray) -> Op:
        layer = self.layer
        return Conv2DOp(kernel, tuple(layer.strides), layer.padding,
                        tuple(layer.dilation_rate), int(layer.groups))

    def kernel_and_bias(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The op's kernel and the bias (the layer's own, checked to be finite)."""
        return self.weights()

    def convert(self, builder: Builder) -> None:
        kernel, bias = self.kernel_and_bias()
        activation = self.activation()
        builder.add(self.layer.name, self.op(kernel), self.output_shape(), bias=bias,
                    activation="relu" if activation == "relu" else None, kernel=kernel)
        if activation == "softmax":
            builder.drop_softmax(self.layer.name)


@register(layers.Conv1D)
class Conv1DConverter(Conv2DConverter):
    description = "Conv1D (ReLU or linear; causal, dilated and grouped too)"

    def op(self, kernel: np.ndarray) -> Op:
        layer = self.layer
        return Conv1DOp(kernel, tuple(layer.strides), layer.padding,
                        tuple(layer.dilation_rate), int(layer.groups))


@register(layers.DepthwiseConv2D)
class DepthwiseConv2DConverter(Conv2DConverter):
    description = "DepthwiseConv2D (ReLU or linear; a grouped convolution)"

    def kernel_and_bias(self) -> tuple[np.ndarray, np.ndarray | None]:
        # (kh, kw, c, m) -> (kh, kw, 1, c * m): output channel c * m + j, as Keras orders them
        kernel = self.layer.depthwise_kernel.numpy()
        kh, kw, channels, multiplier = kernel.shape
        bias = self.layer.bias.numpy() if self.layer.use_bias else None
        return self.finite(kernel.reshape(kh, kw, 1, channels * multiplier)), self.finite(bias)

    def op(self, kernel: np.ndarray) -> Op:
        layer = self.layer
        return Conv2DOp(kernel, tuple(layer.strides), layer.padding,
                        tuple(layer.dilation_rate), int(layer.input_shape[-1]))


@register(layers.SeparableConv2D)
class SeparableConv2DConverter(Conv2DConverter):
    description = "SeparableConv2D (ReLU or linear; one convolution, kernels composed)"

    def notes(self) -> list[str]:
        return [f"SeparableConv2D {self.layer.name!r} becomes one Conv2D whose kernel is its "
                "depthwise kernel composed with its pointwise kernel: the same linear map (no "
                "neurons lie between the two), so each input spike drives kh * kw * filters "
                "synapses"] + self.softmax_notes()

    def kernel_and_bias(self) -> tuple[np.ndarray, np.ndarray | None]:
        depthwise = self.layer.depthwise_kernel.numpy().astype(np.float64)  # (kh, kw, c, m)
        pointwise = self.layer.pointwise_kernel.numpy().astype(np.float64)  # (1, 1, c*m, f)
        kh, kw, channels, multiplier = depthwise.shape
        pointwise = pointwise.reshape(channels, multiplier, -1)
        kernel = np.einsum("hwcm,cmf->hwcf", depthwise, pointwise).astype(np.float32)
        bias = self.layer.bias.numpy() if self.layer.use_bias else None
        return self.finite(kernel), self.finite(bias)

    def op(self, kernel: np.ndarray) -> Op:
        layer = self.layer
        return Conv2DOp(kernel, tuple(layer.strides), layer.padding,
                        tuple(layer.dilation_rate))


@register(layers.AveragePooling2D)
class AvgPool2DConverter(LayerConverter):
    def problems(self) -> list[Problem]:
        return self.channels_last_problems()

    def convert(self, builder: Builder) -> None:
        op = AvgPool2DOp(tuple(self.layer.pool_size), tuple(self.layer.strides),
                         self.layer.padding)
        builder.add(self.layer.name, op, self.output_shape())


@register(layers.GlobalAveragePooling2D)
class GlobalAvgPool2DConverter(LayerConverter):
    op_class: ClassVar[type] = GlobalAvgPool2DOp

    def problems(self) -> list[Problem]:
        return self.channels_last_problems()

    def convert(self, builder: Builder) -> None:
        op = self.op_class(bool(self.layer.keepdims))
        builder.add(self.layer.name, op, self.output_shape())


@register(layers.GlobalAveragePooling1D)
class GlobalAvgPool1DConverter(GlobalAvgPool2DConverter):
    op_class = GlobalAvgPool1DOp


@register(layers.AveragePooling1D)
class AvgPool1DConverter(LayerConverter):
    def problems(self) -> list[Problem]:
        return self.channels_last_problems()

    def convert(self, builder: Builder) -> None:
        op = AvgPool1DOp(tuple(self.layer.pool_size), tuple(self.layer.strides),
                         self.layer.padding)
        builder.add(self.layer.name, op, self.output_shape())


@register(layers.UpSampling2D)
class UpSampling2DConverter(LayerConverter):
    description = "UpSampling2D (nearest)"

    def problems(self) -> list[Problem]:
        found = self.channels_last_problems()
        if self.layer.interpolation != "nearest":
            found.append(self.problem(
                f"interpolation={self.layer.interpolation!r}: only 'nearest' converts (it "
                "copies spikes; an interpolation would mix them with fractional weights that "
                "no op here computes)", "use interpolation='nearest' and retrain"))
        return found

    def convert(self, builder: Builder) -> None:
        op = UpSampling2DOp(tuple(int(v) for v in self.layer.size))
        builder.add(self.layer.name, op, self.output_shape())


@register(layers.Cropping2D)
class Cropping2DConverter(LayerConverter):
    def problems(self) -> list[Problem]:
        return self.channels_last_problems()

    def convert(self, builder: Builder) -> None:
        cropping = tuple(tuple(int(c) for c in pair) for pair in self.layer.cropping)
        builder.add(self.layer.name, Cropping2DOp(cropping), self.output_shape())


@register(layers.Flatten)
class FlattenConverter(LayerConverter):
    def problems(self) -> list[Problem]:
        return self.channels_last_problems()

    def convert(self, builder: Builder) -> None:
        builder.add(self.layer.name, ReshapeOp(self.output_shape()), self.output_shape())


@register(layers.Reshape)
class ReshapeConverter(LayerConverter):
    def convert(self, builder: Builder) -> None:
        builder.add(self.layer.name, ReshapeLayerOp(self.output_shape()), self.output_shape())


@register(layers.ZeroPadding2D)
class ZeroPadding2DConverter(LayerConverter):
    def problems(self) -> list[Problem]:
        return self.channels_last_problems()

    def convert(self, builder: Builder) -> None:
        padding = tuple(tuple(int(p) for p in pair) for pair in self.layer.padding)
        builder.add(self.layer.name, ZeroPad2DOp(padding), self.output_shape())


@register(layers.ReLU)
class ReLUConverter(LayerConverter):
    description = "ReLU (plain)"

    def problems(self) -> list[Problem]:
        layer, found = self.layer, []
        if layer.max_value is not None:
            found.append(self.problem(
                f"a clipped ReLU (max_value={float(layer.max_value):g}; relu6 when 6): "
                f"{_CLIPPED}", "use ReLU() without max_value and retrain"))
        if float(layer.negative_slope) != 0:
            found.append(self.problem(
                f"a leaky ReLU (negative_slope={float(layer.negative_slope):g}): "
                f"{_NEGATIVE[0]}", _NEGATIVE[1]))
        if float(layer.threshold) != 0:
            found.append(self.problem(
                f"a thresholded ReLU (threshold={float(layer.threshold):g}) is not supported",
                "use ReLU() and retrain"))
        return found

    def convert(self, builder: Builder) -> None:
        add_relu(builder, self.layer.name)


@register(layers.Activation)
class ActivationConverter(LayerConverter):
    description = "Activation('relu', 'linear'; 'softmax' in the output layer)"

    def problems(self) -> list[Problem]:
        return self.activation_problems()

    def notes(self) -> list[str]:
        return self.softmax_notes()

    def convert(self, builder: Builder) -> None:
        activation = self.activation()
        if activation == "relu":
            add_relu(builder, self.layer.name)
        elif activation == "softmax":
            builder.drop_softmax(self.layer.name)


@register(layers.Softmax)
class SoftmaxConverter(LayerConverter):
    description = "Softmax (as the output layer)"

    def problems(self) -> list[Problem]:
        axis = self.layer.axis
        if not self.is_output:
            return [self.problem("a softmax inside the network has no rate equivalent",
                                 "remove it and retrain; a softmax converts only as the output "
                                 "layer, where it is dropped (argmax is unchanged)")]
        if axis not in (-1, len(self.layer.input_shape) - 1):
            return [self.problem(f"a softmax over axis {axis} (not the last) is not supported",
                                 "use axis=-1")]
        return []

    def notes(self) -> list[str]:
        return [softmax_note(self.layer.name)]

    def convert(self, builder: Builder) -> None:
        builder.drop_softmax(self.layer.name)


class IdentityConverter(LayerConverter):
    """Layers that are the identity at inference (dropout, noise, regularization)."""

    def convert(self, builder: Builder) -> None:
        pass  # identity at inference


for _keras_type in (layers.Dropout, layers.SpatialDropout2D, layers.GaussianDropout,
                    layers.GaussianNoise, layers.AlphaDropout, layers.ActivityRegularization):
    register(_keras_type)(type(f"{_keras_type.__name__}Converter", (IdentityConverter,), {}))


@register(layers.BatchNormalization)
class BatchNormConverter(LayerConverter):
    description = ("BatchNormalization (anywhere: folded into a neighbour's weights where exact, "
                   "else a per-channel affine stage)")

    def problems(self) -> list[Problem]:
        layer, found = self.layer, []
        rank = len(layer.input_shape)
        if list(layer.axis) not in ([rank - 1], [-1]):
            found.append(self.problem(f"axis={list(layer.axis)}: only the last (channel) axis "
                                      "is supported", "use axis=-1 (channels last)"))
        if any(not np.all(np.isfinite(w.numpy())) for w in layer.weights):
            found.append(self.problem("its parameters contain NaN or infinite values",
                                      "retrain (e.g. with a smaller learning rate)"))
        variance = layer.moving_variance.numpy()
        if np.any(variance < 0):
            found.append(self.problem(
                f"its moving variance is negative ({int(np.sum(variance < 0))} of "
                f"{variance.size} channels; smallest {float(np.nanmin(variance)):.3g}), so "
                "its scale 1 / sqrt(variance + epsilon) is not a number",
                "set the moving variance from data (retrain, or recompute the statistics)"))
        return found

    def convert(self, builder: Builder) -> None:
        layer = self.layer
        gamma = layer.gamma.numpy().astype(np.float64) if layer.scale else 1.0
        beta = layer.beta.numpy().astype(np.float64) if layer.center else 0.0
        std = np.sqrt(layer.moving_variance.numpy().astype(np.float64) + layer.epsilon)
        scale = gamma / std
        shift = beta - layer.moving_mean.numpy().astype(np.float64) * scale
        add_affine(builder, layer.name, "BatchNormalization", scale, shift)


@register(layers.Rescaling)
class RescalingConverter(LayerConverter):
    description = "Rescaling (folded where exact, else an affine stage)"

    def values(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(scale, offset) per channel, or None when they are not per channel."""
        channels = int(self.layer.input_shape[-1])
        out = []
        for value in (self.layer.scale, self.layer.offset):
            value = np.asarray(value, dtype=np.float64)
            if value.size == 1:
                value = np.full(channels, float(value.ravel()[0]))
            elif value.size != channels or value.shape[-1] != channels:
                return None
            out.append(value.reshape(channels))
        return out[0], out[1]

    def problems(self) -> list[Problem]:
        values = self.values()
        if values is None:
            return [self.problem("its scale or offset is not a scalar or one value per channel",
                                 "use per-channel values, or rescale the inputs before the "
                                 "model")]
        if not all(np.all(np.isfinite(v)) for v in values):
            return [self.problem("its scale or offset is NaN or infinite", "use finite values")]
        return []

    def convert(self, builder: Builder) -> None:
        scale, offset = self.values()
        add_affine(builder, self.layer.name, "Rescaling", scale, offset)


@register(layers.Normalization)
class NormalizationConverter(LayerConverter):
    description = "Normalization (axis=-1; folded where exact, else an affine stage)"

    def values(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(mean, variance) per channel, or None when they are not per channel."""
        channels = int(self.layer.input_shape[-1])
        out = []
        for value in (self.layer.mean, self.layer.variance):
            value = np.asarray(value, dtype=np.float64).ravel()
            if value.size not in (1, channels):
                return None
            out.append(np.broadcast_to(value, (channels,)).copy())
        return out[0], out[1]

    def problems(self) -> list[Problem]:
        if tuple(self.layer.axis) not in ((-1,), (len(self.layer.input_shape) - 1,)):
            return [self.problem(f"axis={self.layer.axis}: only the last (channel) axis is "
                                 "supported", "use axis=-1")]
        values = self.values()
        if values is None or not all(np.all(np.isfinite(v)) for v in values):
            return [self.problem("its mean or variance is not finite and per channel",
                                 "adapt it to data (layer.adapt) before training")]
        if np.any(values[1] < 0):
            return [self.problem("its variance is negative", "adapt it to data")]
        return []

    def convert(self, builder: Builder) -> None:
        mean, variance = self.values()
        std = np.maximum(np.sqrt(variance), tf.keras.backend.epsilon())  # as Keras does
        if self.layer.invert:
            scale, shift = std, mean
        else:
            scale, shift = 1 / std, -mean / std
        add_affine(builder, self.layer.name, "Normalization", scale, shift)


@register(layers.MaxPooling2D)
class MaxPoolConverter(LayerConverter):
    supported = False
    #: The average-pooling op that replaces it (``max_to_avg_pool=True``).
    swap = "AveragePooling2D"

    def problems(self) -> list[Problem]:
        if self.max_to_avg_pool:
            return self.channels_last_problems()
        return [self.problem(
            "snnlib has no spiking max pooling (it needs a pool gated by online rate "
            "estimates: Rueckauer et al. 2017, section 2.2.5)",
            f"use {self.swap} and retrain, or "
            "convert(..., max_to_avg_pool=True) (changes the function: convert reports the "
            "rate-mode change of the predictions)")]

    def notes(self) -> list[str]:
        if not self.max_to_avg_pool:
            return []
        return [f"{type(self.layer).__name__} {self.layer.name!r} is converted as average "
                "pooling (max_to_avg_pool=True): another function than the Keras model's"]

    def op(self) -> Op:
        layer = self.layer
        return AvgPool2DOp(tuple(layer.pool_size), tuple(layer.strides), layer.padding)

    def convert(self, builder: Builder) -> None:
        if not self.max_to_avg_pool:
            problem = self.problems()[0]
            self.fail(problem.reason, problem.fix)
        builder.add(self.layer.name, self.op(), self.output_shape())
        builder.swapped_pooling.append(self.layer.name)


@register(layers.GlobalMaxPooling2D)
class GlobalMaxPoolConverter(MaxPoolConverter):
    swap = "GlobalAveragePooling2D"

    def op(self) -> Op:
        return GlobalAvgPool2DOp(bool(self.layer.keepdims))


class JoinConverter(LayerConverter):
    """A layer with several inputs: one stage that reads them all (a graph's join)."""

    joins: ClassVar[bool] = True

    def problems(self) -> list[Problem]:
        shapes = [tuple(shape[1:]) for shape in self.layer.input_shape]
        if len(set(shapes)) > 1:
            return [self.problem(f"its inputs have different shapes {shapes} (Keras "
                                 "broadcasts them); snnlib joins inputs of one shape",
                                 "bring the inputs to one shape before the join (e.g. "
                                 "UpSampling2D, or GlobalAveragePooling2D without keepdims "
                                 "and a Dense layer)")]
        return []

    def weights_per_input(self, n: int) -> tuple:
        return (1.0,) * n

    def op(self, n: int) -> Op:
        return AddOp(self.weights_per_input(n))

    def convert(self, builder: Builder) -> None:
        builder.add(self.layer.name, self.op(len(builder.reading)), self.output_shape())


@register(layers.Add)
class AddConverter(JoinConverter):
    description = "Add (a residual connection)"


@register(layers.Subtract)
class SubtractConverter(JoinConverter):
    def weights_per_input(self, n: int) -> tuple:
        return (1.0, -1.0)


@register(layers.Average)
class AverageConverter(JoinConverter):
    def weights_per_input(self, n: int) -> tuple:
        return (1.0 / n,) * n


@register(layers.Concatenate)
class ConcatenateConverter(JoinConverter):
    description = "Concatenate (channel axis)"

    def problems(self) -> list[Problem]:  # its inputs may differ in channels
        rank = len(self.layer.output_shape)
        if self.layer.axis not in (-1, rank - 1):
            return [self.problem(
                f"axis={self.layer.axis}: only the channel (last) axis converts (each input "
                "keeps its own lambda per channel)", "concatenate along axis=-1")]
        return []

    def op(self, n: int) -> Op:
        return ConcatOp((1.0,) * n)


class RefusedConverter(LayerConverter):
    """A layer type that cannot be converted: registered only to say why, and what to do."""

    supported = False
    reason: ClassVar[str] = ""
    fix: ClassVar[str] = ""

    def problems(self) -> list[Problem]:
        return [self.problem(self.reason, self.fix)]

    def convert(self, builder: Builder) -> None:
        self.fail(self.reason, self.fix)


_SIGNED = ("snnlib's neurons fire for positive currents only; NengoDL converts it to "
           "nengo_dl.SpikingLeakyReLU, a neuron that also fires negative spikes")
#: Refused layer types -> (reason, fix).
REFUSED = {
    layers.LeakyReLU: (f"negative outputs (slope alpha below zero): {_SIGNED}",
                       "use ReLU and retrain, or run the model with nengo_dl.Converter"),
    layers.PReLU: (f"negative outputs (a learned slope below zero): {_SIGNED}",
                   "use ReLU and retrain"),
    layers.ELU: ("negative outputs (down to -alpha) need negative spikes",
                 "use ReLU and retrain"),
    layers.ThresholdedReLU: ("a thresholded ReLU is not supported", "use ReLU and retrain"),
    layers.Multiply: ("a product of two paths has no rate equivalent",
                      "remove it and retrain"),
    layers.Maximum: ("a maximum of two paths has no rate equivalent", "remove it and retrain"),
    layers.Minimum: ("a minimum of two paths has no rate equivalent", "remove it and retrain"),
    layers.Lambda: ("a Lambda layer runs Python code that snnlib cannot read",
                    "where a built-in layer computes the same with the same weights, use it "
                    "(a constant factor or offset, e.g. Lambda(lambda x: 2 * x): "
                    "Rescaling(2.0); a reshape: Reshape), rebuild the model with it and copy "
                    "the weights (model.set_weights): no retraining; otherwise write the "
                    f"computation as your own layer class and register a converter "
                    f"({EXTENDING})"),
}
for _keras_type, (_reason, _fix) in REFUSED.items():
    register(_keras_type)(type(f"{_keras_type.__name__}Converter", (RefusedConverter,),
                               {"reason": _reason, "fix": _fix}))


# --------------------------------------------------------------------------------------------
# Merging layers into stages: ReLU, affine maps (batch normalization, rescaling), the readout
# --------------------------------------------------------------------------------------------

def add_relu(builder: Builder, name: str) -> None:
    """Give the stage the ReLU reads neurons, or add a stage of its own for them.

    The ReLU merges into the stage it reads when that stage has no neurons and no other layer
    reads it. After neurons it adds an identity stage (its input is already rectified: the
    lambda carries through). After a linear stage that other layers also read (a graph), it
    adds a per-channel map of ones with neurons: a stage with weights, so that its lambda is
    measured on its own activations and normalization rescales what enters it.
    """
    last = builder.last
    if last is not None and not last.spiking:
        last.activation = "relu"
        last.name = name  # the neurons belong to the ReLU layer, as in nengo_dl
        last.keras_layers.append(name)
        return
    reads = builder.reading[0] if len(builder.reading) == 1 else None
    if reads is not None and not reads.spiking:
        ones = np.ones(builder.shape[-1], dtype=np.float32)
        builder.add(name, AffineOp(ones), builder.shape, activation="relu", kernel=ones)
    else:
        builder.add(name, IdentityOp(), builder.shape, activation="relu")


def add_affine(builder: Builder, name: str, layer_type: str, scale: np.ndarray,
               shift: np.ndarray) -> None:
    """A per-channel affine map ``scale * x + shift`` (batch normalization, rescaling).

    Folded into the weights of the stage before it when that stage is linear (a Dense or
    Conv2D without activation, or another affine stage): exact. Otherwise added as an affine
    stage, which :func:`finish` folds into the layer after it where that is exact.
    """
    builder.layer_types[name] = layer_type
    last = builder.last
    if (last is not None and not last.spiking and last.has_weights
            and isinstance(last.op, (DenseOp, Conv2DOp, Conv1DOp, AffineOp))):
        fold_backward(last, scale, shift, name)
        builder.note(f"{layer_type} {name!r} is folded into the weights of "
                     f"{last.keras_layers[0]!r} before it")
        return
    kernel = np.asarray(scale, dtype=np.float32)
    builder.add(name, AffineOp(kernel), builder.shape, bias=np.asarray(shift, np.float32),
                kernel=kernel)


def fold_backward(stage: Stage, scale: np.ndarray, shift: np.ndarray, name: str) -> None:
    """Fold ``scale * x + shift`` into the weights of the linear ``stage`` it follows."""
    bias = stage.bias_original if stage.bias_original is not None else 0.0
    stage.kernel_original = (stage.kernel_original * scale).astype(np.float32)
    stage.bias_original = (np.asarray(bias, np.float64) * scale + shift).astype(np.float32)
    stage.op = stage.op.with_kernel(stage.kernel_original)
    stage.bias = stage.bias_original
    stage.name = name
    stage.keras_layers.append(name)


def _forward_target(stages: list[Stage], index: int) -> tuple[int | None, str]:
    """The stage an affine stage can be folded into, or None and why not."""
    affine = stages[index]
    for j in range(index + 1, len(stages)):
        stage = stages[j]
        if isinstance(stage.op, DenseOp) or (
                isinstance(stage.op, Conv2DOp) and stage.op.groups == 1
                and tuple(stage.op.dilation) == (1, 1)):
            return j, ""
        if not (isinstance(stage.op, (ReshapeOp, IdentityOp)) and stage.bias is None
                and not stage.spiking):
            return None, (f"{stage.name!r} ({stage.kind}) follows it, not a Dense or a plain "
                          "Conv2D layer (no groups, no dilation)")
    return None, f"nothing with weights follows {affine.name!r}"


def fold_forward(stages: list[Stage], index: int) -> str | None:
    """Fold the affine stage ``stages[index]`` into the Dense/Conv2D after it, where exact.

    Returns the Keras layer it was folded into (and removes it from ``stages``), or raises
    ``ValueError`` saying why it cannot be folded exactly.
    """
    affine = stages[index]
    target, why = _forward_target(stages, index)
    if target is None:
        raise ValueError(why)
    stage, between = stages[target], target > index + 1
    scale = np.asarray(affine.kernel_original, np.float64)
    shift = np.asarray(affine.bias_original, np.float64)
    kernel = np.asarray(stage.kernel_original, np.float64)
    bias = np.zeros(kernel.shape[-1]) if stage.bias_original is None else \
        np.asarray(stage.bias_original, np.float64)
    if isinstance(stage.op, DenseOp):
        n_in = kernel.shape[0]
        if len(stage.input_shape) == 1:  # flattened: one scale per input element
            scale = np.broadcast_to(scale, affine.output_shape).reshape(n_in)
            shift = np.broadcast_to(shift, affine.output_shape).reshape(n_in)
        elif between or stage.input_shape[-1] != scale.shape[-1]:
            raise ValueError(f"{stage.name!r} is a Dense layer on a reshaped "
                             f"{len(stage.input_shape)}-D input")
        new_kernel, new_bias = kernel * scale[:, None], bias + shift @ kernel
    else:
        if between:
            raise ValueError(f"a reshape lies between it and {stage.name!r}")
        op = stage.op
        (kh, kw), (sh, sw) = kernel.shape[:2], op.strides
        h, w = stage.input_shape[:2]
        pads = (same_padding(h, kh, sh) + same_padding(w, kw, sw)) if op.padding == "same" \
            else (0, 0, 0, 0)
        if any(pads) and np.any(shift != 0):
            raise ValueError(f"the 'same' padding of {stage.name!r} pads its output with zeros, "
                             "not with its offset, so folding it there would not be exact")
        new_kernel = kernel * scale[None, None, :, None]
        new_bias = bias + np.einsum("hwio,i->o", kernel, shift)
    stage.kernel_original = new_kernel.astype(np.float32)
    stage.bias_original = new_bias.astype(np.float32)
    stage.op = stage.op.with_kernel(stage.kernel_original)
    stage.bias = stage.bias_original
    target_layer = stage.keras_layers[0]
    stage.keras_layers[:0] = affine.keras_layers
    del stages[index]  # shape-preserving: the next stage's input shape is unchanged
    return target_layer


def finish(builder: Builder) -> None:
    """After the converters: fold affine stages forward where exact, mark the readout, and
    name each stage's inputs (a graph's joins and fan-outs)."""
    stages = builder.stages
    chain = builder.is_chain()  # folding forward follows the list: only along a chain
    index = 0
    while index < len(stages):
        stage = stages[index]
        if isinstance(stage.op, AffineOp) and not stage.spiking:
            if not chain:
                builder.note(f"{builder.layer_types.get(stage.name, 'affine map')} "
                             f"{stage.name!r} is kept as a non-spiking per-channel affine "
                             "stage (scale and shift): in a graph it is not folded forward")
                index += 1
                continue
            kind = builder.layer_types.get(stage.name, "affine map")
            try:
                target = fold_forward(stages, index)
            except ValueError as err:
                after_neurons = any(s.spiking for s in stages[:index])
                builder.note(f"{kind} {stage.name!r} is kept as a non-spiking per-channel "
                             f"affine stage (scale and shift): {err}" + (
                                 "; analog values, not spikes, reach the next layer, and the "
                                 "event-driven engine does not run it" if after_neurons else
                                 "; it runs on the input, before the first neurons"))
            else:
                builder.note(f"{kind} {stage.name!r} is folded into the weights of "
                             f"{target!r} after it")
                continue
        index += 1
    if chain:  # folding removed stages from the list: it is still a chain
        for stage in stages:
            stage.inputs = ()
    else:
        builder.link()
    readout = _readout(stages, chain, builder.input_name)
    if not readout:
        return
    for stage in readout:
        stage.readout = True
    rectified = [stage for stage in readout if stage.activation == "relu"]
    if rectified:
        builder.note(f"the output layer {rectified[0].keras_layers[0]!r} has a ReLU: it is a "
                     "non-spiking readout (lambda = 1, never normalized) whose ReLU is applied "
                     "to its output at every step, as Keras applies it")


def _readout(stages: list[Stage], chain: bool, input_name: str) -> list[Stage]:
    """The readout: in a chain the last stage with weights and the stages after it; in a graph
    every stage with weights that has none downstream, and every stage downstream of those."""
    weighted = [i for i, stage in enumerate(stages) if stage.has_weights]
    if not weighted:
        return []
    if chain:
        return stages[weighted[-1]:]
    network = SpikingNetwork(stages, (), input_name=input_name)  # only its graph is used
    sources = network.sources()
    downstream: list[set[int]] = [set() for _ in stages]
    for i in reversed(range(len(stages))):
        for j in sources[i]:
            if j >= 0:
                downstream[j] |= downstream[i] | {i}
    last = {i for i in weighted if not any(stages[k].has_weights for k in downstream[i])}
    chosen = set(last).union(*(downstream[i] for i in last))
    return [stages[i] for i in sorted(chosen)]


def readout_note(builder: Builder) -> str | None:
    """How the readout differs from the Keras output layer (None: it does not)."""
    if builder.dropped_softmax is not None:
        return (f"logits of {builder.dropped_softmax!r} (its softmax is dropped; the predicted "
                "class is unchanged)")
    rectified = [s for s in builder.stages if s.readout and s.activation == "relu"]
    if rectified:
        return (f"ReLU of {rectified[0].keras_layers[0]!r}, non-spiking (lambda = 1; its ReLU "
                "applied at every step, as Keras)")
    return None


# --------------------------------------------------------------------------------------------
# The model: its graph of layers, check() and convert()
# --------------------------------------------------------------------------------------------

def model_graph(model: tf.keras.Model
                ) -> tuple[list[tf.keras.layers.Layer], dict[str, list[tf.keras.layers.Layer]]]:
    """The model's layers in an order where each follows its inputs, and each one's inputs.

    Returns
    -------
    layers : list
        Input layer first (a Sequential model lists no input layer: its first layer reads the
        input), output layer last.
    inputs : dict
        Layer name -> the layers whose outputs it reads, in the order it takes them (empty for
        the input layer and for a Sequential model's first layer).

    Raises
    ------
    ConversionError
        Several inputs or outputs, a layer used more than once, or layers on a branch that
        does not reach the output.
    """
    if isinstance(model, tf.keras.Sequential):
        found = list(model.layers)
        return found, {layer.name: found[i - 1:i] for i, layer in enumerate(found)}
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ConversionError(
            f"Cannot convert model {model.name!r}: it has {len(model.inputs)} inputs and "
            f"{len(model.outputs)} outputs; only single-input, single-output models are "
            "supported")
    inputs: dict[str, list] = {}
    order: list = []

    def sources_of(layer: tf.keras.layers.Layer) -> list:
        if isinstance(layer, tf.keras.layers.InputLayer):
            return []
        try:
            tensors = layer.input
        except AttributeError:
            raise ConversionError(f"Cannot convert layer {layer.name!r} "
                                  f"({type(layer).__name__}): it is used more than once (shared "
                                  "weights); call each layer once") from None
        tensors = list(tensors) if isinstance(tensors, (list, tuple)) else [tensors]
        return [t._keras_history.layer for t in tensors]

    # depth-first, without recursion (a deep model must not exhaust Python's stack): a layer
    # is listed once all its inputs are
    stack = [(model.outputs[0]._keras_history.layer, False)]
    while stack:
        layer, expanded = stack.pop()
        if layer.name in inputs:
            continue
        sources = sources_of(layer)
        if expanded or not sources:
            inputs[layer.name] = sources
            order.append(layer)
            continue
        stack.append((layer, True))
        stack.extend((source, False) for source in reversed(sources)
                     if source.name not in inputs)
    extra = [layer.name for layer in model.layers if layer.name not in inputs]
    if extra:
        raise ConversionError(f"Cannot convert model {model.name!r}: layers {extra} are on a "
                              "branch that does not reach the output; remove them")
    return order, inputs


def _model_problems(model: tf.keras.Model) -> tuple[list[Problem], bool]:
    """Problems of the model as a whole, and whether its layers can be inspected further."""
    name, kind = getattr(model, "name", repr(model)), type(model).__name__

    def problem(reason: str, fix: str) -> Problem:
        return Problem(name, kind, reason, fix, model_level=True)

    if not isinstance(model, tf.keras.Model):
        return [problem("it is not a Keras model", "pass a trained tf.keras.Model (Sequential or "
                        "functional)")], False
    if not getattr(model, "built", False):
        return [problem("it is not built (it has no weights yet)", "build it with an input shape "
                        "(tf.keras.Input or model.build) and train it first")], False
    found = []
    graph = isinstance(model, tf.keras.Sequential) or getattr(model, "_is_graph_network", False)
    if not graph:
        found.append(problem(
            "a subclassed Keras model: its layers are connected by Python code (its call() "
            "method), which cannot be read", "build the same layers as a Sequential or "
            "functional model and copy the weights (new.set_weights(model.get_weights()), same "
            "layer order), then convert that"))
    elif model.inputs is None or len(model.inputs) != 1 or len(model.outputs) != 1:
        n_in = 0 if model.inputs is None else len(model.inputs)
        n_out = 0 if model.outputs is None else len(model.outputs)
        found.append(problem(f"it has {n_in} inputs and {n_out} outputs", "only single-input, "
                             "single-output models convert"))
    elif any(d is None for d in model.input_shape[1:]):
        found.append(problem(f"its input shape {model.input_shape} has unknown axes",
                             "give every axis but the batch axis a size (tf.keras.Input)"))
    kernels = [w.numpy() for w in model.weights if "kernel" in w.name]
    if kernels and all(not np.any(k) for k in kernels):
        found.append(problem("it has all-zero kernels: its weights are uninitialized or "
                             "untrained", "train it first"))
    return found, graph and not found


def _output_layer(model: tf.keras.Model) -> tf.keras.layers.Layer | None:
    if isinstance(model, tf.keras.Sequential):
        return model.layers[-1] if model.layers else None
    outputs = getattr(model, "outputs", None)
    return outputs[0]._keras_history.layer if outputs and len(outputs) == 1 else None


def _inspect(model: tf.keras.Model, *, max_to_avg_pool: bool
             ) -> tuple[CheckReport, Builder | None, list]:
    """The report of :func:`check`, and (when the model converts) the builder and the layers
    in order."""
    problems, inspectable = _model_problems(model)
    report = CheckReport(getattr(model, "name", repr(model)), problems, [], supported_layers())
    if not isinstance(model, tf.keras.Model) or not getattr(model, "built", False):
        return report, None, []
    output = _output_layer(model)
    graph = inspectable or not any(p.reason.startswith("a subclassed") for p in problems)
    for layer in model.layers:
        converter_class = CONVERTERS.get(type(layer))
        if converter_class is None:
            problems.append(CONVERTERS.unknown(layer))
            continue
        if not graph and converter_class.supported:
            continue  # a subclassed model's layers have no shapes to check: types only
        converter = converter_class(layer, is_output=layer is output,
                                    max_to_avg_pool=max_to_avg_pool)
        problems.extend(converter.problems())
        report.notes.extend(converter.notes())
    if not inspectable or problems:
        return report, None, []
    try:
        chain, sources = model_graph(model)
    except ConversionError as err:
        problems.append(Problem(model.name, type(model).__name__,
                                str(err).removeprefix("Cannot convert "), "build the model "
                                "with each layer called once, every layer on a path to the "
                                "output", model_level=True))
        return report, None, []
    input_name = chain[0].name if isinstance(chain[0], layers.InputLayer) else "input"
    builder = Builder(model.input_shape[1:], input_name)
    options = dict(max_to_avg_pool=max_to_avg_pool)
    readers: dict[str, int] = {}
    for layer in chain:
        for source in sources[layer.name]:
            readers[source.name] = readers.get(source.name, 0) + 1
    produced: dict[str, Stage | None] = {}
    try:
        for layer in chain:
            converter = CONVERTERS.converter(layer, is_output=layer is output, **options)
            reading = [produced[source.name] for source in sources[layer.name]] or [None]
            if len(reading) > 1 and not getattr(converter, "joins", False):
                converter.fail(f"it takes {len(reading)} inputs; only joins (Add, Subtract, "
                               "Average, Concatenate) take several", "give it one input")
            builder.read(reading)
            before = len(builder.stages)
            converter.convert(builder)
            # the stage that now computes this layer's output: a new one, or the one it read
            # (a layer merged into it, or an identity such as dropout)
            produced[layer.name] = builder.stages[-1] if len(builder.stages) > before \
                else reading[0]
            builder.share(produced[layer.name], readers.get(layer.name, 0) > 1)
    except ConversionError as err:  # a converter's convert() failed (e.g. a custom one)
        problems.extend(err.problems or [Problem(model.name, type(model).__name__, str(err),
                                                 model_level=True)])
        return report, None, []
    if not builder.stages:
        problems.append(Problem(model.name, type(model).__name__, "it has no layers to convert",
                                "add layers", model_level=True))
        return report, None, []
    finish(builder)
    report.notes.extend(builder.notes)
    return report, builder, chain


def check(model: tf.keras.Model, *, max_to_avg_pool: bool = False) -> CheckReport:
    """Inspect a Keras model without converting it: every problem at once, each with its fix.

    Lists every layer that will not convert (an unsupported layer type, activation or setting;
    max pooling; a ``Lambda``; channels_first ...) and every problem of the model as a
    whole (not built, subclassed, several inputs or outputs, a shared layer, untrained), each with
    what to do instead, and what the conversion changes (a dropped final softmax, a batch
    normalization folded or kept as an affine stage, a ReLU output layer read out without
    neurons). :func:`convert` raises a :class:`ConversionError` with the same text.

    Supported layer types (built in; :func:`supported_layers` gives the current registry):
    {supported}.

    Parameters
    ----------
    model : tf.keras.Model
        A trained Sequential or functional model.
    max_to_avg_pool : bool
        As in :func:`convert`: max pooling is then not a problem (it is converted as average
        pooling, which changes the function).

    Returns
    -------
    CheckReport
        ``.ok``, ``.problems`` (list of :class:`Problem`), ``.notes``; ``print(report)`` gives
        the readable list.
    """
    return _inspect(model, max_to_avg_pool=max_to_avg_pool)[0]


def layer_converter(layer: tf.keras.layers.Layer, **options: Any) -> LayerConverter:
    """The registered converter for ``layer``; fails naming the layer and what is supported."""
    return CONVERTERS.converter(layer, **options)


def convert(model: tf.keras.Model, *, calibration: np.ndarray | None = None,
            normalization: str | Callable | NormalizationRule | None = None,
            percentile: float = 99.9, include_zeros: bool = False,
            batch_size: int = 256, granularity: str = "layer", max_to_avg_pool: bool = False,
            x: np.ndarray | None = None, y: np.ndarray | None = None) -> SpikingNetwork:
    """Convert a trained Keras model to a spiking network, optionally normalized.

    Hidden ReLU layers become spiking neurons. The readout, the last layer with weights, has
    no neurons and is never normalized, so the network outputs what the Keras model outputs
    (rate mode): a final softmax is dropped (the network outputs the logits; the predicted
    class is unchanged), and a ReLU output layer (``Dense(10, activation="relu")``) keeps its
    ReLU as a rate, not as neurons. Batch normalization is folded into the weights of a
    neighbouring Dense/Conv2D where that is exact, else kept as a per-channel affine stage.
    ``network.notes`` and ``network.readout_note`` say what was changed; :func:`check` lists
    it, and every problem, without converting.

    Supported layer types (built in; :func:`supported_layers` gives the current registry):
    {supported}.

    Parameters
    ----------
    model : tf.keras.Model
        Trained Sequential or functional model of supported layers, channels last: a chain,
        or a graph with joins (``Add``, ``Subtract``, ``Average``, ``Concatenate``) and
        fan-out (one input, one output, each layer called once).
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
    max_to_avg_pool : bool
        Convert MaxPooling2D (and GlobalMaxPooling2D) layers as average pooling, as NengoDL's
        converter option of the same name. Off by default: it changes the function the network
        computes (the maximum of spike trains is not the spike train of the maximum, so max
        pooling has no rate equivalent). With it, ``convert`` warns (``UserWarning``) and, given
        ``x`` or ``calibration``, measures in rate mode how many predicted classes change
        against the Keras model (in the warning and in ``network.pooling_change``). Better:
        replace the layers by AveragePooling2D and retrain.
    x : ndarray, shape (n,) + input shape, optional
        Inputs on which the change of ``max_to_avg_pool`` is measured (default: ``calibration``).
    y : ndarray of int, shape (n,), optional
        Their labels: the change is then also given as accuracies (Keras vs converted).

    Returns
    -------
    SpikingNetwork
        ``.scales`` maps each layer name to lambda; ``.weights()`` gives the original and converted
        weights layer by layer; ``.normalization_report()`` the per-layer statistics;
        ``.notes`` what the conversion changed.

    Raises
    ------
    ConversionError
        Every unsupported layer, activation or setting, each named with its fix (the text of
        :func:`check`); unbuilt, subclassed or untrained model.
    ValueError
        Unknown normalization, percentile outside (0, 100], missing or bad calibration data
        (integer images: divide by 255), calibration data without a normalization.
    """
    check_normalization_args(normalization, calibration, percentile, include_zeros=include_zeros,
                             batch_size=batch_size, granularity=granularity)
    report, builder, chain = _inspect(model, max_to_avg_pool=max_to_avg_pool)
    if not report.ok:
        raise report.error()
    input_name = chain[0].name if isinstance(chain[0], layers.InputLayer) else "input"
    network = SpikingNetwork(builder.stages, model.input_shape[1:], input_name=input_name)
    network.notes = list(report.notes)
    network.readout_note = readout_note(builder)
    network.dropped_softmax = builder.dropped_softmax
    network.swapped_pooling = list(builder.swapped_pooling)
    if network.swapped_pooling:
        _pooling_change(network, model, x if x is not None else calibration, y, batch_size)
    if normalization is not None:
        normalize(network, calibration, method=normalization, percentile=percentile,
                  include_zeros=include_zeros, batch_size=batch_size, granularity=granularity)
    return network


def _pooling_change(network: SpikingNetwork, model: tf.keras.Model, x: np.ndarray | None,
                    y: np.ndarray | None, batch_size: int) -> None:
    """Warn that max pooling was swapped, with the rate-mode change of the predictions."""
    names = ", ".join(repr(name) for name in network.swapped_pooling)
    text = (f"max pooling in {names} is converted as average pooling (max_to_avg_pool=True): "
            "the network computes another function than the Keras model")
    if x is None:
        text += ("; pass calibration= or x= (and y=) to measure how much that changes the "
                 "predictions")
    else:
        x = network.check_input(x, what="x")
        keras = np.asarray(model.predict(x, batch_size=batch_size, verbose=0))
        keras = keras.reshape(len(x), -1).argmax(axis=1)
        ours = network.forward(x, batch_size=batch_size).reshape(len(x), -1).argmax(axis=1)
        changed = keras != ours
        change = dict(n=len(x), changed=float(changed.mean()))
        text += (f"; in rate mode, the predicted class changes for {100 * changed.mean():.1f} % "
                 f"of {len(x)} examples ({int(changed.sum())})")
        if y is not None:
            y = np.asarray(y)
            if y.shape != (len(x),):
                raise ValueError(f"y has shape {y.shape}; expected ({len(x)},): one integer "
                                 "class per example of x (or of calibration)")
            # the same examples through both: a paired test, not two separate intervals
            paired = stats.compare_paired(ours == y, keras == y)
            change.update(keras_accuracy=float(np.mean(keras == y)),
                          accuracy=float(np.mean(ours == y)), paired=paired,
                          difference_interval=stats.paired_difference_interval(ours == y,
                                                                               keras == y))
            text += (f", accuracy {100 * change['keras_accuracy']:.1f} % (Keras) -> "
                     f"{100 * change['accuracy']:.1f} % (converted; exact McNemar "
                     f"p = {paired.p_value:.2g})")
        network.pooling_change = change
    network.notes.append(text)
    warnings.warn(text, UserWarning, stacklevel=3)


# --------------------------------------------------------------------------------------------
# The self-check
# --------------------------------------------------------------------------------------------

def keras_reference(network: SpikingNetwork, model: tf.keras.Model) -> tf.keras.Model:
    """The Keras model the network reproduces in rate mode.

    ``model`` itself, or, when the conversion changed the function on purpose, a copy of it
    with the same weights and the same change: without the final softmax it dropped (the
    copy outputs the logits), with average instead of max pooling (``max_to_avg_pool``). The
    copy is a new model, so no predict function compiled for ``model`` (which would still apply
    the softmax) is reused.
    """
    if network.dropped_softmax is None and not network.swapped_pooling:
        return model

    def clone(layer: tf.keras.layers.Layer) -> tf.keras.layers.Layer:
        config = layer.get_config()
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

    try:
        reference = tf.keras.models.clone_model(model, clone_function=clone)
    except Exception as err:  # e.g. a custom layer without get_config
        raise ValueError(f"cannot build {_reference_text(network)} to compare with: "
                         f"{type(err).__name__}: {err}") from err
    reference.set_weights(model.get_weights())
    return reference


def _reference_text(network: SpikingNetwork) -> str:
    parts = []
    if network.dropped_softmax is not None:
        parts.append(f"the logits of {network.dropped_softmax!r} (its softmax is dropped)")
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
        The largest absolute difference between the two outputs.

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
    reference = keras_reference(network, model)
    what = _reference_text(network)
    ours = network.forward(x, dtype=np.float64, batch_size=batch_size)
    keras = np.asarray(reference.predict(x, batch_size=batch_size, verbose=0), dtype=np.float64)
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
