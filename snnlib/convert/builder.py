"""The builder a converter adds stages with, and the converters' base class."""
from __future__ import annotations

from typing import ClassVar, NoReturn

import numpy as np
import tensorflow as tf

from snnlib.convert.activation_rules import ACTIVATION_FIXES, RELUS, softmax_note
from snnlib.convert.report import EXTENDING, ConversionError, Problem
from snnlib.network import Stage
from snnlib.network.ops import (
    Op,
)

__all__ = [
    "Builder",
    "LayerConverter",
]

layers = tf.keras.layers


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
    trained_scales : dict
        Spiking layer name -> a lambda the model learned (a QCFS layer's threshold,
        :mod:`snnlib.ann.qcfs`); ``convert`` normalizes with them when no data rule is given.
    relu_stand_ins : list of str
        Layers that :func:`snnlib.verify` compares as ReLU (their rate-mode equivalent).
    """

    def __init__(self, input_shape: tuple, input_name: str = "input") -> None:
        self.stages: list[Stage] = []
        self.input_shape = self.shape = tuple(input_shape)
        self.input_name = input_name
        self.notes: list[str] = []
        self.dropped_softmax: str | None = None
        self.swapped_pooling: list[str] = []
        self.layer_types: dict[str, str] = {}
        self.trained_scales: dict[str, float] = {}
        self.relu_stand_ins: list[str] = []
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
    spiking_max_pool : bool
        ``convert(..., spiking_max_pool=True)``: max pooling is kept, gated on spikes
        (:class:`snnlib.network.ops.MaxPool2DOp`).

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
                 max_to_avg_pool: bool = False, spiking_max_pool: bool = False) -> None:
        self.layer = layer
        self.is_output = is_output
        self.max_to_avg_pool = max_to_avg_pool
        self.spiking_max_pool = spiking_max_pool

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
