"""The converted network: a graph of stages, each a linear operation and an optional ReLU.

A *stage* is what one group of Nengo objects does in ``nengo_dl.Converter``'s network: a linear
operation (dense weights, a convolution, average pooling, a reshape, a per-channel affine map, a
join, or the identity) plus a bias, followed either by ReLU neurons (a *spiking* stage) or by
nothing (a linear, non-spiking stage such as a pooling layer or a flatten). Keras layers that
only modify their neighbour (ReLU / ``Activation("relu")`` layers, BatchNormalization, Dropout)
are merged into the stage they read when no other layer reads it (otherwise they get a stage of
their own), so a stage's ``name`` is the Keras layer whose output it computes: the layer that
owns the neurons, the same layer ``nengo_dl.Converter`` keys ``scale_firing_rates`` on.

The *readout* (``Stage.readout``) is the last stage with weights on every path to the output
and the stages after it (in a chain: the last stage with weights and the stages after it): it
has no neurons, is never normalized (lambda = 1, so the output is in Keras units), and a ReLU
there (a ``Dense(10, activation="relu")`` output layer) is applied to its output at every step,
as Keras applies it, instead of becoming spiking neurons.

**A graph.** The stages are listed in an order where each comes after its inputs. Most
networks are chains: each stage reads the one before it (``Stage.inputs`` is empty). A stage
that reads other stages names them in ``Stage.inputs``: a residual block's ``Add`` reads its
two paths, an inception block's ``Concatenate`` its branches, and a stage's output may feed
several stages (fan-out). :meth:`SpikingNetwork.run` evaluates any of them in that order, and
keeps each output only until its last reader has run.

The linear operations themselves (one class per layer type) are in :mod:`snnlib.network.ops`.
Everything here is NumPy, batched over the first axis, channels last.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from snnlib import validation
from snnlib.network.ops import (  # re-exported: the ops used to live here
    AvgPool2DOp,
    Conv2DOp,
    DenseOp,
    IdentityOp,
    Op,
    ReshapeOp,
    same_padding,
)

__all__ = ["AvgPool2DOp", "Conv2DOp", "DenseOp", "IdentityOp", "NormalizationReport", "Op",
           "ReshapeOp", "SpikingNetwork", "Stage", "same_padding"]


# --------------------------------------------------------------------------------------------
# Stages and the network
# --------------------------------------------------------------------------------------------

@dataclass
class Stage:
    """One step of the converted network: ``activation(op(x) + bias)``.

    Attributes
    ----------
    name : str
        Name of the Keras layer whose output this stage computes (the layer that owns the neurons
        of a spiking stage; the key of ``scale_firing_rates`` dicts).
    kind : str
        The op's kind: "dense", "conv2d", "conv1d", "avgpool2d", "avgpool1d",
        "globalavgpool2d", "globalavgpool1d", "flatten", "reshape", "zeropad2d",
        "upsampling2d", "cropping2d", "affine" (batch normalization or rescaling kept as a
        stage, or a ReLU of its own after a stage other layers also read), "add",
        "concatenate", "identity" (or a registered layer type's).
    keras_layers : list of str
        Names of the Keras layers merged into this stage, in order (e.g. conv, batch norm, ReLU).
    op : Op
        The linear operation (:mod:`snnlib.network.ops`), after normalization.
    bias : ndarray or None
        Bias after normalization, per output channel / unit (None: no bias).
    activation : str or None
        "relu" (spiking neurons in a simulation, unless the stage is part of the readout) or None
        (a linear, non-spiking stage).
    input_shape, output_shape : tuple of int
        Shapes of one example (no batch axis); a join's ``input_shape`` is its first input's.
    kernel_original, bias_original : ndarray or None
        The weights as in Keras (batch normalization folded in), before normalization.
    scale : float or ndarray
        Normalization factor lambda of this stage's output (1 when not normalized): the stage
        computes the Keras activations divided by ``scale``. One per output channel (an array
        over the last axis) after a channel-wise normalization.
    stats : dict
        Calibration statistics (set by normalization).
    readout : bool
        Part of the network's readout (set by :func:`snnlib.convert.convert`): no neurons even
        with ``activation="relu"`` (then the ReLU is applied to its output, as a rate), and
        never normalized.
    inputs : tuple of str
        The stages it reads (by name; the network's input by its ``input_name``), in the order
        its op takes them; empty: the stage listed before it (or the network's input for the
        first stage), as in a chain. A join (:class:`snnlib.network.ops.JoinOp`) reads several.
    """

    name: str
    kind: str
    keras_layers: list
    op: Op
    bias: np.ndarray | None
    activation: str | None
    input_shape: tuple
    output_shape: tuple
    kernel_original: np.ndarray | None = None
    bias_original: np.ndarray | None = None
    scale: float | np.ndarray = 1.0
    stats: dict = field(default_factory=dict)
    readout: bool = False
    inputs: tuple = ()

    @property
    def spiking(self) -> bool:
        """True when the stage ends in ReLU neurons (they spike in a simulation)."""
        return self.activation == "relu" and not self.readout

    @property
    def has_weights(self) -> bool:
        """True for dense and convolution stages (their weights are normalized)."""
        return self.kernel_original is not None

    @property
    def kernel(self) -> np.ndarray | None:
        """The kernel after normalization (None for stages without weights)."""
        return self.op.kernel if self.has_weights else None

    def linear(self, x: np.ndarray | list) -> np.ndarray:
        """``op(x) + bias`` for a batch ``x`` (the neurons' input current, before any gain);
        a list of batches, one per input, for a join."""
        z = self.op(x)
        if self.bias is not None:
            z = z + self.bias.astype(z.dtype, copy=False)
        return z

    def activate(self, z: np.ndarray) -> np.ndarray:
        """The activation applied to :meth:`linear`'s output: ReLU (or identity) of ``z``.

        The ReLU of a spiking stage in rate mode, or the ReLU of a rectified readout (in a
        simulation too, at every step: it has no neurons).
        """
        return np.maximum(z, 0) if self.activation == "relu" else z

    def rates(self, x: np.ndarray | list) -> np.ndarray:
        """The stage's output in rate mode: ReLU (or identity) of :meth:`linear`."""
        return self.activate(self.linear(x))


class SpikingNetwork:
    """A Keras model converted to stages, ready for rate-mode checks and spiking simulation.

    Built by :func:`snnlib.convert.convert`. In rate mode (:meth:`forward`) every stage applies
    ReLU to its input current, so the output equals the Keras model's output (the readout is
    never normalized, see :mod:`snnlib.normalize`), or its logits where the conversion dropped a
    final softmax (:attr:`readout_note` says so).

    Parameters
    ----------
    stages : list of Stage
        In execution order.
    input_shape : tuple of int
        Shape of one input example, e.g. (28, 28, 1).
    input_name : str
        Name of the Keras input layer.
    normalization : str or None
        The normalization applied ("max", "percentile", a custom rule's name, or None).
    granularity : {None, "layer", "channel"}
        One lambda per layer or per output channel (None: not normalized).

    Attributes
    ----------
    notes : list of str
        What the conversion changed or decided, one sentence each (batch normalization folded
        or kept as an affine stage, a dropped softmax, max pooling swapped, the ReLU readout).
    readout_note : str or None
        How the readout differs from the Keras output layer (a dropped softmax, a ReLU readout),
        or None when it computes the Keras output as it is.
    dropped_softmax : str or None
        The Keras layer whose final softmax the conversion dropped: the network outputs the
        logits (the softmax's input), and :func:`snnlib.convert.verify` compares with those.
    swapped_pooling : list of str
        Max-pooling layers replaced by average pooling (``convert(..., max_to_avg_pool=True)``).
    pooling_change : dict or None
        What that swap changed in rate mode, measured by ``convert`` on its ``x`` or
        calibration data: ``n`` examples, ``changed`` (fraction whose predicted class differs
        from the Keras model's), and with labels ``keras_accuracy`` and ``accuracy``
        (fractions), ``paired`` (a :class:`snnlib.analysis.stats.PairedComparison` of the converted
        network, A, against the Keras model, B, on the same examples: exact McNemar test) and
        ``difference_interval`` (95 % interval of accuracy(converted) - accuracy(Keras)).
    relu_stand_ins : list of str
        Layers whose rate-mode equivalent is ReLU although Keras computes something else
        (QCFS layers, :mod:`snnlib.ann.qcfs`): :func:`snnlib.convert.verify` compares with
        the model that has ReLU in their place.
    trained_scales : dict
        Spiking layer name -> the lambda the model learned (a QCFS threshold); the network
        was normalized with them when ``normalization == "trained"``.
    calibration : dict or None
        What :mod:`snnlib.sim.calibration` changed after the conversion (the method, the
        steps it was calibrated for), else None.
    quantization : dict or None
        The settings of :func:`snnlib.normalize.quantize.quantize` (bits, granularity, rule)
        when the weights are quantized, else None.
    unquantized : SpikingNetwork or None
        The network a quantized one was made from (float weights), else None.
    """

    def __init__(self, stages: list[Stage], input_shape: tuple, input_name: str = "input",
                 normalization: str | None = None, granularity: str | None = None) -> None:
        self.stages = list(stages)
        self.input_shape = tuple(input_shape)
        self.input_name = input_name
        self.normalization = normalization
        self.granularity = granularity
        self.notes: list[str] = []
        self.readout_note: str | None = None
        self.dropped_softmax: str | None = None
        self.swapped_pooling: list[str] = []
        self.pooling_change: dict | None = None
        self.relu_stand_ins: list[str] = []
        self.trained_scales: dict[str, float] = {}
        self.calibration: dict | None = None
        self.quantization: dict | None = None
        self.unquantized: SpikingNetwork | None = None

    def __repr__(self) -> str:
        def label(s: Stage) -> str:
            if s.spiking:
                return f"{s.name}({s.kind}+relu)"
            if s.readout and s.activation == "relu":
                return f"{s.name}({s.kind}, relu readout)"
            return f"{s.name}({s.kind})"

        text = f"SpikingNetwork(input {self.input_shape} -> {', '.join(map(label, self.stages))})"
        return text if self.readout_note is None else f"{text}; readout: {self.readout_note}"

    def sources(self) -> list[list[int]]:
        """For each stage, the indices of the stages it reads (-1: the network's input).

        Raises
        ------
        ValueError
            A stage reads a name that is no stage (nor the input), or one listed after it.
        """
        index = {stage.name: i for i, stage in enumerate(self.stages)}
        found = []
        for i, stage in enumerate(self.stages):
            if not stage.inputs:
                found.append([i - 1])
                continue
            row = []
            for name in stage.inputs:
                j = -1 if name == self.input_name and name not in index else index.get(name)
                if j is None or j >= i:
                    raise ValueError(f"stage {stage.name!r} reads {name!r}, which is "
                                     + ("no stage of the network" if j is None else
                                        "listed after it (stages must follow their inputs)"))
                row.append(j)
            found.append(row)
        return found

    @property
    def is_chain(self) -> bool:
        """True when every stage reads only the stage before it (no joins, no fan-out)."""
        return all(row == [i - 1] for i, row in enumerate(self.sources()))

    def consumers(self, index: int) -> list[int]:
        """Indices of the stages that read stage ``index`` (-1: the network's input)."""
        return [i for i, row in enumerate(self.sources()) if index in row]

    def run(self, x: Any, step: Any, *, keep: bool = False) -> Any:
        """Evaluate the stages in order: ``step(stage, inputs)`` gives each stage's output.

        Parameters
        ----------
        x : object
            What the first stages read (the network's input, or e.g. spikes).
        step : callable
            ``step(stage, h)``, where ``h`` is the output of the stage's input (a list of them
            for a join); returns the stage's output.
        keep : bool
            Return every stage's output (a dict name -> output) besides the last one; otherwise
            each output is dropped once its last reader has run.

        Returns
        -------
        object or (object, dict)
            The last stage's output (with ``keep``, also every stage's).
        """
        sources = self.sources()
        last_read = {}
        for i, row in enumerate(sources):
            for j in row:
                last_read[j] = i
        values, kept = {-1: x}, {}
        for i, stage in enumerate(self.stages):
            args = [values[j] for j in sources[i]]
            values[i] = step(stage, args if stage.op.join else args[0])
            if keep:
                kept[stage.name] = values[i]
            for j in set(sources[i]):
                if last_read[j] == i:
                    del values[j]
        out = values[len(self.stages) - 1] if self.stages else x
        return (out, kept) if keep else out

    @property
    def scales(self) -> dict[str, float | np.ndarray]:
        """dict: layer name -> normalization factor lambda (input: 1; all 1 if not normalized);
        an array of one lambda per channel for the spiking layers of a channel-wise
        normalization (``granularity == "channel"``), for a concatenation of inputs with
        different lambdas, and for the stages that carry them."""
        scales: dict[str, float | np.ndarray] = {self.input_name: 1.0}
        scales.update({s.name: float(s.scale) if np.ndim(s.scale) == 0
                       else np.array(s.scale, dtype=np.float64) for s in self.stages})
        return scales

    @property
    def spiking_layers(self) -> list[str]:
        """list of str: names of the stages with neurons (the keys a rate-scale dict may use)."""
        return [s.name for s in self.stages if s.spiking]

    @property
    def output_shape(self) -> tuple:
        """Shape of one output example."""
        return self.stages[-1].output_shape

    @property
    def readout_start(self) -> int:
        """Index of the first readout stage (``len(stages)``: none).

        The stages flagged ``readout`` by the conversion; in a network built by hand, without
        flags, the last stage with weights when it has no neurons.
        """
        flagged = [i for i, s in enumerate(self.stages) if s.readout]
        if flagged:
            return flagged[0]
        weighted = [i for i, s in enumerate(self.stages) if s.has_weights]
        if weighted and not self.stages[weighted[-1]].spiking:
            return weighted[-1]
        return len(self.stages)

    @property
    def readout_indices(self) -> set[int]:
        """Indices of the readout stages: those flagged ``readout`` by the conversion (in a
        graph, the last layers with weights on every path and what follows them), else every
        stage from :attr:`readout_start` on."""
        flagged = {i for i, s in enumerate(self.stages) if s.readout}
        return flagged or set(range(self.readout_start, len(self.stages)))

    def stage(self, name: str) -> Stage:
        """The stage called ``name``; KeyError listing the names otherwise."""
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(f"no layer {name!r} in the converted network; its layers are "
                       f"{[s.name for s in self.stages]}")

    def firing_rate_scales(self, scale_firing_rates: float | dict) -> dict[str, float]:
        """The firing-rate scale of every spiking layer, checked.

        Parameters
        ----------
        scale_firing_rates : float or dict
            One scale (Hz per unit of activation) for every spiking layer, or a dict spiking
            layer name -> scale; layers missing from the dict get 1, as in nengo_dl.

        Returns
        -------
        dict
            Spiking layer name -> scale (float).

        Raises
        ------
        ValueError
            A key that is not a spiking layer (the message lists them), or a scale that is not a
            positive finite number.
        """
        names = self.spiking_layers
        if isinstance(scale_firing_rates, dict):
            unknown = [key for key in scale_firing_rates if key not in names]
            if unknown:
                raise ValueError(f"scale_firing_rates has keys {unknown} that are not spiking "
                                 f"layers of the network; its spiking layers are {names}")
            return {name: validation.real(scale_firing_rates.get(name, 1.0),
                                          f"scale_firing_rates[{name!r}]", low=0, low_open=True,
                                          hint="Hz per unit of activation")
                    for name in names}
        scale = validation.real(scale_firing_rates, "scale_firing_rates", low=0, low_open=True,
                                hint="Hz per unit of activation, or a dict layer -> scale")
        return dict.fromkeys(names, scale)

    def check_input(self, x: Any, what: str = "input") -> np.ndarray:
        """Return ``x`` as an array after checking its dtype, shape and values
        (:func:`snnlib.validation.images`).

        Raises
        ------
        ValueError
            Integer images (the message says to divide by 255), wrong shape (the message gives
            the expected one), empty, or NaN / infinite values.
        """
        return validation.images(x, what, shape=self.input_shape)

    def forward(self, x: np.ndarray, *, dtype: Any = np.float32, return_all: bool = False,
                batch_size: int = 256) -> np.ndarray | tuple[np.ndarray, dict]:
        """Rate-mode output (ReLU rates, no spikes).

        Parameters
        ----------
        x : ndarray, shape (batch,) + input_shape
            Inputs (images in [0, 1]).
        dtype : numpy dtype
            Arithmetic precision; float64 for comparisons to float tolerance.
        return_all : bool
            Also return every stage's output.
        batch_size : int
            Examples per chunk (bounds memory).

        Returns
        -------
        ndarray or (ndarray, dict)
            The output (batch,) + output_shape; with ``return_all``, also a dict
            layer name -> that stage's outputs (normalized units: Keras activation / lambda).
        """
        x = self.check_input(x)
        validation.integer(batch_size, "batch_size", low=1)
        validation.boolean(return_all, "return_all")
        outs, alls = [], {s.name: [] for s in self.stages}
        for start in range(0, len(x), batch_size):
            h = x[start:start + batch_size].astype(dtype)
            if return_all:
                h, every = self.run(h, lambda stage, h: stage.rates(h), keep=True)
                for name, value in every.items():
                    alls[name].append(value)
            else:
                h = self.run(h, lambda stage, h: stage.rates(h))
            outs.append(h)
        out = np.concatenate(outs)
        if return_all:
            return out, {name: np.concatenate(v) for name, v in alls.items()}
        return out

    def weights(self) -> list[dict]:
        """Original and converted weights, layer by layer (stages with weights only).

        Returns
        -------
        list of dict
            Keys: ``layer`` (stage name), ``keras_layers``, ``kernel_original``, ``bias_original``
            (as in Keras, batch normalization folded in), ``kernel``, ``bias`` (after
            normalization: ``W * lambda_prev / lambda``, ``b / lambda``), ``scale_in``
            (lambda of the input), ``scale`` (lambda).
        """
        report, sources = [], self.sources()
        for i, s in enumerate(self.stages):
            if s.has_weights:
                j = sources[i][0]
                report.append(dict(
                    layer=s.name, keras_layers=list(s.keras_layers),
                    kernel_original=s.kernel_original, bias_original=s.bias_original,
                    kernel=s.kernel, bias=s.bias,
                    scale_in=1.0 if j < 0 else self.stages[j].scale, scale=s.scale,
                ))
        return report

    def normalization_report(self) -> NormalizationReport:
        """Per layer: lambda, the largest activation, and the fraction above lambda.

        Returns
        -------
        NormalizationReport
            A pandas DataFrame, one row per stage, columns ``layer``, ``kind``, ``spiking``,
            ``scale`` (lambda), ``max_activation`` (largest Keras activation on the calibration
            set), ``fraction_above_scale`` (fraction of all activations above lambda: neurons
            that will saturate at the maximum firing rate; NaN for layers without neurons, such
            as the readout, which cannot saturate), ``fraction_nonzero``. Without normalization
            the statistic columns are NaN. It prints whole: its ``repr`` is ``to_string()`` (no
            ``...`` for columns that do not fit the console's width), followed by the readout
            note when there is one (``.notes``). Selections and other derived frames are plain
            DataFrames.
        """
        rows = []
        for s in self.stages:
            rows.append(dict(layer=s.name, kind=s.kind, spiking=s.spiking, scale=s.scale,
                             max_activation=s.stats.get("max", np.nan),
                             fraction_above_scale=(s.stats.get("fraction_above", np.nan)
                                                   if s.spiking else np.nan),
                             fraction_nonzero=s.stats.get("fraction_nonzero", np.nan)))
        report = NormalizationReport(rows)
        report.notes = [] if self.readout_note is None else [f"readout: {self.readout_note}"]
        return report


class NormalizationReport(pd.DataFrame):
    """A DataFrame that prints whole: its ``repr`` is ``to_string()``, then its ``notes``.

    pandas shortens a wide frame with ``...`` at the console's width; this one never does.
    Frames derived from it (selections, ``assign``, ``pd.concat``) are plain DataFrames.
    """

    _metadata = ["notes"]

    @property
    def _constructor(self) -> type:
        return pd.DataFrame

    def __repr__(self) -> str:
        return self.to_string() + "".join(f"\n{note}" for note in getattr(self, "notes", []))

    def __str__(self) -> str:
        return repr(self)
