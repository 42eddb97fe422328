"""The model: its graph of layers, :func:`check` and :func:`convert`."""
from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

from snnlib.analysis import stats
from snnlib.convert.assemble import finish, readout_note
from snnlib.convert.builder import Builder, LayerConverter
from snnlib.convert.registry import CONVERTERS, supported_layers
from snnlib.convert.report import CheckReport, ConversionError, Problem
from snnlib.keras_predict import predict
from snnlib.network import SpikingNetwork, Stage
from snnlib.normalize.rules import (
    NormalizationRule,
    apply_normalization,
    apply_scales,
    assign_scales,
    check_normalization_args,
    measured,
)

__all__ = [
    "model_graph",
    "check",
    "layer_converter",
    "convert",
]

layers = tf.keras.layers


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


def _inspect(model: tf.keras.Model, *, max_to_avg_pool: bool, spiking_max_pool: bool = False
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
                                    max_to_avg_pool=max_to_avg_pool,
                                    spiking_max_pool=spiking_max_pool)
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
    options = dict(max_to_avg_pool=max_to_avg_pool, spiking_max_pool=spiking_max_pool)
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


def check(model: tf.keras.Model, *, max_to_avg_pool: bool = False,
          spiking_max_pool: bool = False) -> CheckReport:
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
    spiking_max_pool : bool
        As in :func:`convert`: MaxPooling2D is then not a problem (kept, gated on spikes).

    Returns
    -------
    CheckReport
        ``.ok``, ``.problems`` (list of :class:`Problem`), ``.notes``; ``print(report)`` gives
        the readable list.
    """
    return _inspect(model, max_to_avg_pool=max_to_avg_pool,
                    spiking_max_pool=spiking_max_pool)[0]


def layer_converter(layer: tf.keras.layers.Layer, **options: Any) -> LayerConverter:
    """The registered converter for ``layer``; fails naming the layer and what is supported."""
    return CONVERTERS.converter(layer, **options)


def convert(model: tf.keras.Model, *, calibration: np.ndarray | None = None,
            normalization: str | Callable | NormalizationRule | None = None,
            percentile: float = 99.9, include_zeros: bool = False,
            batch_size: int = 256, granularity: str = "layer", max_to_avg_pool: bool = False,
            spiking_max_pool: bool = False, x: np.ndarray | None = None,
            y: np.ndarray | None = None) -> SpikingNetwork:
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
        None keeps the Keras weights (for a model with QCFS layers, :mod:`snnlib.ann.qcfs`:
        each layer's lambda is then its trained threshold). "max" (Diehl et al. 2015,
        data-based): lambda_l is the largest activation of layer l on the calibration set; no
        neuron then needs more than the maximum rate, but one outlier makes every other neuron
        fire slowly. "percentile"
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
    spiking_max_pool : bool
        Keep MaxPooling2D layers as max pooling (:class:`snnlib.network.ops.MaxPool2DOp`): in
        rate mode the Keras function (``verify`` holds); on spikes each pooling window passes
        the spikes of the input with the most spikes so far, the gate of Rueckauer et al.
        (2017, section 2.2.5) with SNN Toolbox's estimate. The simulator runs it on the dense
        engine (the event-driven one has no gate state); NengoDL does not have it.
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
    # the one check of the normalization arguments: the rule is resolved here and passed down
    args = check_normalization_args(normalization, calibration, percentile,
                                    include_zeros=include_zeros, batch_size=batch_size,
                                    granularity=granularity)
    report, builder, chain = _inspect(model, max_to_avg_pool=max_to_avg_pool,
                                      spiking_max_pool=spiking_max_pool)
    if not report.ok:
        raise report.error()
    input_name = chain[0].name if isinstance(chain[0], layers.InputLayer) else "input"
    network = SpikingNetwork(builder.stages, model.input_shape[1:], input_name=input_name)
    network.notes = list(report.notes)
    network.readout_note = readout_note(builder)
    network.dropped_softmax = builder.dropped_softmax
    network.swapped_pooling = list(builder.swapped_pooling)
    if network.swapped_pooling:
        _pooling_change(network, model, x if x is not None else calibration, y, args.batch_size)
    network.relu_stand_ins = list(builder.relu_stand_ins)
    network.trained_scales = dict(builder.trained_scales)
    if args.rule is not None:
        apply_normalization(network, calibration, args)
        if network.trained_scales:
            network.notes.append("the data rule's lambdas replace the thresholds the model "
                                 f"learned ({sorted(network.trained_scales)})")
    elif network.trained_scales:
        _use_trained_scales(network)
    return network


def _use_trained_scales(network: SpikingNetwork) -> None:
    """Normalize with the lambdas the model learned (QCFS thresholds); every spiking layer
    whose lambda is measured must have one."""
    stages = {stage.name: stage for stage in network.stages}
    unused = [name for name in network.trained_scales
              if name in stages and not measured(stages[name]) and not stages[name].readout]
    if unused:
        raise ConversionError(
            f"Cannot convert: the QCFS layers {unused} have no weighted layer of their own "
            "(they follow the input, a layer without weights such as pooling, or other "
            "neurons), so their thresholds cannot become a lambda; put a Dense or Conv layer "
            "before each QCFS layer")
    missing = [stage.name for stage in network.stages
               if measured(stage) and stage.name not in network.trained_scales]
    if missing:
        raise ConversionError(
            f"Cannot convert: layers {missing} have ReLU neurons but no trained threshold, "
            f"while {sorted(network.trained_scales)} have one (QCFS layers); give every "
            "spiking layer a QCFS activation (snnlib.ann.qcfs.use_qcfs), or normalize all of "
            "them with data (normalization='percentile' and calibration images)")
    apply_scales(network, assign_scales(network, lambda i, stage: network.trained_scales[
        stage.name]))
    network.normalization = "trained"
    network.granularity = "layer"


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
        keras = predict(model, x, batch_size=batch_size)
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
