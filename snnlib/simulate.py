"""A fast, batched, time-stepped simulator of a converted network with spiking neurons.

With the default neuron (``neuron="spiking_relu"``) configured like NengoDL
(``max_spikes_per_step=None``, ``reset="subtract"``, constant input), it computes what
``nengo.Simulator`` computes for the network ``nengo_dl.Converter`` builds with
``nengo.SpikingRectifiedLinear`` neurons, step for step:

- a spiking layer with firing-rate scale ``s`` receives ``J = s * (W h + b)`` (the converter sets
  gain ``s`` and multiplies biases by ``s``);
- ``v += max(J, 0) * dt``; ``n = floor(v)`` spikes; ``v -= n``; output ``(1 / s) / dt * n``
  (amplitude ``1 / s``), so the next layer receives, on average, the ReLU rate. The neuron
  model (:mod:`snnlib.neurons`) owns this rule; ``neuron="if"`` integrates the signed current
  instead, as the integrate-and-fire neuron of the conversion papers, and ``neuron="lif"`` is
  ``nengo.LIF`` (what ``nengo_dl.Converter`` builds with ``swap_activations`` to ``nengo.LIF``);
- a synapse ``tau`` is a :class:`snnlib.synapses.Lowpass` (``nengo.Lowpass(tau)`` with a
  zero-order hold) on every connection out of a spiking layer; as in Nengo, the next layer
  reads its value before the step's update, so a synapse also delays the signal by one step;
- the linear output layer is a non-spiking readout of the last spiking layer.

Two engines give the same spikes (``method=``): the *dense* engine updates every neuron and
computes every linear operation at each step, vectorized over the batch and the neurons; the
*event-driven* engine (:mod:`snnlib.event_driven`) computes the linear operations out of
spiking layers from the spikes alone, which is faster at the usual low rates.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from snnlib import event_driven, measures, protocol
from snnlib.config import CHUNK, DT
from snnlib.network import SpikingNetwork, Stage
from snnlib.neurons import NeuronModel, get_neuron_model
from snnlib.progress import progress_bar
from snnlib.synapses import Lowpass

INPUTS = ("constant", "poisson")
READOUTS = protocol.READOUTS
DEFAULT_READOUT = protocol.DEFAULT_READOUT
METHODS = ("auto", "dense", "event")


class SimulationResult:
    """Output and spike statistics of :func:`simulate`.

    Attributes
    ----------
    output : ndarray, shape (batch, n_steps, n_out)
        The network's output at every time step (the linear readout, in Keras output units).
    spike_counts : dict
        Spiking layer name -> total spikes per neuron over the run, int array (batch,) + shape.
    spikes : dict
        Layer name -> spikes per step, int array (batch, n_steps) + shape, only for the layers
        named in ``record_spikes``.
    n_steps : int
        Number of time steps.
    dt : float
        Time step (seconds).
    """

    def __init__(self, output: np.ndarray, spike_counts: dict, spikes: dict, n_steps: int,
                 dt: float) -> None:
        self.output = output
        self.spike_counts = spike_counts
        self.spikes = spikes
        self.n_steps = n_steps
        self.dt = dt

    @property
    def duration(self) -> float:
        """Simulated time (seconds)."""
        return self.n_steps * self.dt

    @property
    def rates(self) -> dict[str, np.ndarray]:
        """dict: layer name -> firing rate of every neuron (Hz), shape (batch,) + layer shape."""
        return measures.rates(self)

    @property
    def mean_rates(self) -> dict[str, float]:
        """dict: layer name -> firing rate averaged over neurons and examples (Hz)."""
        return measures.mean_rates(self)

    def scores(self, readout: str = DEFAULT_READOUT) -> np.ndarray:
        """Class scores over time, (batch, n_steps, n_out), under a readout.

        ``"mean"`` (default, the book's protocol, :mod:`snnlib.protocol`): the output averaged
        from the first step to each step, i.e. the spike count of a spiking readout.
        ``"last"``: the output at each step alone (NengoDL's example reads the last step).
        """
        return protocol.scores_over_time(self.output, readout)

    def predictions(self, readout: str = DEFAULT_READOUT) -> np.ndarray:
        """Predicted class per example at the end of the run, int array (batch,).

        ``readout``: "mean" (default: output averaged over the run) or "last" (last step only).
        """
        return np.argmax(self.scores(readout)[:, -1], axis=-1)

    def correct(self, labels: np.ndarray, readout: str = DEFAULT_READOUT) -> np.ndarray:
        """Per example, whether it is classified correctly at the end of the run: bool (batch,).

        The input of a paired test (:func:`snnlib.stats.compare_paired`).
        """
        return protocol.correct_over_time(self.output, labels, readout)[:, -1]

    def accuracy_over_time(self, labels: np.ndarray,
                           readout: str = DEFAULT_READOUT) -> np.ndarray:
        """Fraction of correct predictions (0-1) after each step, array (n_steps,).

        Parameters
        ----------
        labels : ndarray of int, shape (batch,)
            One integer class per example (not one-hot).
        readout : {"mean", "last"}
            "mean" (default): the output averaged from the first step (spike count); "last":
            the output at each step alone (NengoDL's example). See :mod:`snnlib.protocol`.
        """
        return protocol.correct_over_time(self.output, labels, readout).mean(axis=0)

    def accuracy(self, labels: np.ndarray, readout: str = DEFAULT_READOUT) -> float:
        """Fraction of correct predictions (0-1) at the end of the run.

        Parameters
        ----------
        labels : ndarray of int, shape (batch,)
            One integer class per example.
        readout : {"mean", "last"}
            "mean" (default, the book's protocol): the class with the largest output averaged
            over the whole run. "last": the class with the largest output at the last step, as
            NengoDL's example reads it; without a synapse that is a snapshot of one step's
            spikes and can be far lower (chapter 3).
        """
        return float(self.accuracy_over_time(labels, readout)[-1])

    def evaluate(self, labels: np.ndarray, *, ann_accuracy: float,
                 readout: str = DEFAULT_READOUT) -> protocol.Evaluation:
        """Accuracy with its 95 % interval, latency relative to the ANN, per-example results.

        See :func:`snnlib.protocol.evaluate`; ``ann_accuracy`` is the ANN's accuracy (0-1) on
        the same examples.
        """
        return protocol.evaluate(self.output, labels, ann_accuracy=ann_accuracy, dt=self.dt,
                                 readout=readout)


def check_options(network: SpikingNetwork, n_steps: int, dt: float, input: str,
                  synapse: float | None, initial_voltage: float | str, method: str) -> None:
    """Fail early, naming the bad option (the neuron model checks its own)."""
    if not isinstance(network, SpikingNetwork):
        raise TypeError(f"network must be a SpikingNetwork (from snnlib.convert), got "
                        f"{type(network).__name__}")
    if not isinstance(n_steps, (int, np.integer)) or n_steps <= 0:
        raise ValueError(f"n_steps={n_steps!r} must be a positive integer")
    if not np.isscalar(dt) or not np.isfinite(dt) or dt <= 0:
        raise ValueError(f"dt={dt!r} must be a positive number of seconds")
    if input not in INPUTS:
        raise ValueError(f"unknown input {input!r}; use one of {INPUTS}")
    if synapse is not None and (not np.isscalar(synapse) or not synapse > 0):
        raise ValueError(f"synapse={synapse!r} must be None or a positive time constant (s)")
    is_number = isinstance(initial_voltage, (int, float, np.number)) and np.isfinite(
        initial_voltage)
    if not (is_number or (isinstance(initial_voltage, str) and initial_voltage == "uniform")):
        raise ValueError(f"initial_voltage={initial_voltage!r} must be a number or 'uniform'")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {METHODS}")


class LayerState:
    """The state of one spiking layer during a run, and the dense engine's step of it.

    Holds the voltages, the spike counts, preallocated buffers, the synapse's state and the
    recorded spikes; the neuron model does the update (:meth:`NeuronModel.step`).
    """

    def __init__(self, model: NeuronModel, shape: tuple, gain: float, *, dt: float,
                 dtype: np.dtype, initial_voltage: float | np.ndarray,
                 synapse: Lowpass | None, n_steps: int, record: bool) -> None:
        self.model, self.gain, self.dt, self.synapse = model, gain, dt, synapse
        if isinstance(initial_voltage, np.ndarray):
            self.voltage = initial_voltage.astype(dtype)  # a copy: drawn voltages, sliced
        else:
            self.voltage = np.full(shape, initial_voltage, dtype=dtype)
        self.state = model.initial_state(shape, dtype)  # e.g. LIF's refractory times
        # counts in floating point (exact below 2**24 spikes per neuron) avoid a cast per step
        self.counts = np.zeros(shape, dtype=dtype)
        self.drive = np.empty(shape, dtype=dtype)
        self.n = np.empty(shape, dtype=dtype)
        # amplitude / gain (nengo_dl divides the amplitude by the scale), computed as nengo
        # does: (amplitude / dt) * n
        self.out_scale = (model.amplitude / gain) / dt
        self.filtered = np.zeros(shape, dtype=dtype) if synapse is not None else None
        self.spikes = np.zeros((shape[0], n_steps) + shape[1:], np.int32) if record else None

    def step(self, current: np.ndarray, t: int) -> np.ndarray:
        """Advance one step given the input ``W h + b``; return what the next layer receives."""
        # in-place arithmetic on preallocated buffers: this is the simulator's inner loop
        n = self.n
        # the state only for models that have some (a subclass's own step() may not take it)
        extra = {"state": self.state} if self.state else {}
        self.model.step(self.voltage, current, gain=self.gain, dt=self.dt, drive=self.drive,
                        spikes=n, **extra)
        self.counts += n
        if self.spikes is not None:
            self.spikes[:, t] = n
        out = np.multiply(n, self.out_scale, out=self.drive)
        return out if self.synapse is None else self.synapse.step(self.filtered, out)


def simulate(network: SpikingNetwork, x: np.ndarray, *, n_steps: int, dt: float = DT,
             scale_firing_rates: float | dict = 1.0, synapse: float | None = None,
             neuron: str | NeuronModel = "spiking_relu", reset: str = "subtract",
             max_spikes_per_step: int | None = None, initial_voltage: float | str = 0.0,
             input: str = "constant", seed: int | None = None,
             record_spikes: tuple | list = (), dtype: Any = np.float32,
             batch_size: int | None = None, method: str = "auto",
             progress: bool | None = False) -> SimulationResult:
    """Run the converted network with spiking neurons.

    Parameters
    ----------
    network : SpikingNetwork
        From :func:`snnlib.convert.convert`.
    x : ndarray, shape (batch,) + input shape
        Inputs, e.g. images in [0, 1].
    n_steps : int
        Number of time steps; the simulated time is ``n_steps * dt`` seconds.
    dt : float
        Time step (seconds). Each neuron's voltage grows by ``J * dt`` per step.
    scale_firing_rates : float or dict
        Firing-rate scale ``s`` (Hz per unit of activation): a neuron whose rate-mode activation
        is ``a`` fires at ``s * a`` Hz, and its spikes have height ``1 / (s dt)`` so the next
        layer still receives ``a`` on average. Larger ``s``: more spikes, less quantization
        noise, more energy. A dict keyed by spiking layer name scales layers one by one (missing
        layers get 1, as in nengo_dl). For a normalized network, ``s`` is the rate in Hz that
        activation lambda maps to (e.g. 1000 = one spike per step at dt = 1 ms).
    synapse : float or None
        Time constant (seconds) of a lowpass filter on every connection out of a spiking layer,
        or None for none. Filtering smooths the spike trains (less noise) but makes the network
        slower to respond, and adds a one-step delay per layer, as in Nengo.
    neuron : str or NeuronModel
        "spiking_relu" (default): NengoDL's ``nengo.SpikingRectifiedLinear``, which rectifies
        its input current every step (``v += max(J, 0) * dt``). "if": the integrate-and-fire
        neuron of Diehl 2015 / Rueckauer 2017 / SNN Toolbox, which integrates the signed current
        (``v += J * dt``; the voltage may go below zero). "lif": ``nengo.LIF`` with its
        defaults (``tau_rc`` 20 ms, ``tau_ref`` 2 ms), the neuron of NengoLoihi users: a leak,
        a refractory period, at most one spike per step; its rate is not proportional to ``J``,
        so ``scale_firing_rates`` changes the function the network computes (train with
        :func:`snnlib.activations.soft_lif` at the scale you run at). Other LIF parameters:
        pass ``snnlib.neurons.LIF(tau_rc=..., tau_ref=..., min_voltage=..., amplitude=...)``.
        Or any :class:`NeuronModel` instance (it carries its own reset and spike cap).
    reset : {"subtract", "zero"}
        After a spike, subtract the threshold (keeps the excess charge; as Nengo) or set the
        voltage to zero (loses it: rates are biased low). Not for "lif" (its reset to zero and
        refractory period are part of the model).
    max_spikes_per_step : None or 1
        None: ``floor(v)`` spikes per step (Nengo). 1: a spike when ``v >= 1``, at most one per
        step (rates saturate at ``1 / dt``; the papers' neurons). Not for "lif" (one at most).
    initial_voltage : float or "uniform"
        Starting voltage of every neuron (0 by default), or "uniform" for Nengo's default random
        start, uniform in [0, 1), drawn with ``seed``.
    input : {"constant", "poisson"}
        "constant": the input is presented unchanged at every step (as NengoDL with tiled input).
        "poisson": each input value (must be in [0, 1]) emits at most one spike of height 1 per
        step with probability ``x`` (Bernoulli; rate ``x / dt`` Hz), so its mean equals ``x``.
    seed : int or None
        Seed of the random initial voltages and Poisson input.
    record_spikes : sequence of str
        Spiking layers whose spikes per step are kept in ``result.spikes`` (memory: batch x
        n_steps x neurons).
    dtype : numpy dtype
        float32 (fast) or float64 (matches Nengo to float tolerance: near-integer voltages can
        round differently in float32 and flip a spike).
    batch_size : int or None
        Simulate this many examples at a time (bounds memory); None: all at once. Either way
        a constant input is computed in chunks of :data:`snnlib.config.CHUNK` examples (for
        speed; no result changes).
    method : {"auto", "dense", "event"}
        The engine. "dense": every neuron and every linear operation at each step. "event": the
        event-driven engine (:mod:`snnlib.event_driven`), which computes the linear operations
        out of spiking layers from the spikes alone; it needs a constant input, initial voltages
        >= 0, a neuron model without other state (not "lif") and stages it can handle (dense
        and convolution layers between spiking layers, average pooling and flatten before
        them), and raises a ValueError saying which is missing. "auto" (default): the event-driven
        engine where it applies and the first layer fires sparsely (at most
        ``event_driven.SPARSE_THRESHOLD`` spikes per neuron and step), else the dense one. In
        float64 both give the same spikes; in float32 a rare neuron may spike a step earlier or
        later (the summation order differs).
    progress : bool or None
        Show a progress bar over the batches (``tqdm``; None: on unless ``SNNLIB_PROGRESS=0``,
        see :mod:`snnlib.progress`).

    Returns
    -------
    SimulationResult
        ``.output`` (batch, n_steps, n_out), ``.spike_counts``, ``.rates`` (Hz),
        ``.accuracy_over_time(labels, readout=...)``, ``.predictions(readout=...)``.
    """
    check_options(network, n_steps, dt, input, synapse, initial_voltage, method)
    model = get_neuron_model(neuron, reset=reset, max_spikes_per_step=max_spikes_per_step)
    x = network.check_input(x)
    if input == "poisson" and (x.min() < 0 or x.max() > 1):
        raise ValueError("input='poisson' needs input values in [0, 1] (spike probabilities)")
    scales = network.firing_rate_scales(scale_firing_rates)
    unknown = [name for name in record_spikes if name not in scales]
    if unknown:
        raise ValueError(f"record_spikes names {unknown}, not spiking layers {list(scales)}")
    segments = _engine(network, method, input, initial_voltage, model)
    rng = np.random.default_rng(seed)
    options = dict(n_steps=n_steps, dt=dt, scales=scales,
                   synapse=None if synapse is None else Lowpass(synapse, dt), model=model,
                   initial_voltage=initial_voltage, input=input, rng=rng,
                   record=set(record_spikes), dtype=np.dtype(dtype), segments=segments,
                   forced=method == "event")
    batch_size = batch_size or len(x)
    parts = []
    starts = range(0, len(x), batch_size)
    for start in progress_bar(starts, desc="simulate (batches)", progress=progress):
        parts.append(_run(network, x[start:start + batch_size], **options))
    return _join(parts, n_steps, dt)


def _engine(network: SpikingNetwork, method: str, input: str,
            initial_voltage: float | str, model: NeuronModel) -> list | None:
    """The event-driven engine's plan (its segments), or None for the dense engine.

    Raises a ValueError saying why when ``method="event"`` cannot apply.
    """
    if method == "dense":
        return None
    reason = None
    if model.event_driven_unsupported:
        reason = model.event_driven_unsupported
    elif input != "constant":
        reason = (f"input={input!r} changes at every step; it needs a constant input "
                  "(input='constant')")
    elif initial_voltage != "uniform" and initial_voltage < 0:
        reason = f"it needs initial voltages >= 0 (initial_voltage={initial_voltage!r})"
    else:
        try:
            return event_driven.segments(network)
        except event_driven.Unsupported as err:
            reason = str(err)
    if method == "event":
        raise ValueError(f"method='event' cannot simulate this: {reason}; use method='dense' "
                         "or 'auto'")
    return None


def _run(network: SpikingNetwork, x: np.ndarray, *, n_steps: int, dt: float, scales: dict,
         synapse: Lowpass | None, model: NeuronModel, initial_voltage: float | str,
         input: str, rng: np.random.Generator, record: set, dtype: np.dtype,
         segments: list | None, forced: bool) -> tuple:
    """Simulate one batch; with a constant input, in chunks of :data:`snnlib.config.CHUNK`.

    Random initial voltages are drawn for the whole batch first, layer by layer (the order of
    the draws does not depend on the chunking), then sliced.
    """
    voltages = {s.name: (rng.uniform(0, 1, size=(len(x),) + s.output_shape)
                         if initial_voltage == "uniform" else initial_voltage)
                for s in network.stages if s.spiking}
    stages = [_cast(stage, dtype) for stage in network.stages]
    options = dict(n_steps=n_steps, dt=dt, scales=scales, synapse=synapse, model=model,
                   input=input, rng=rng, record=record, dtype=dtype, segments=segments,
                   forced=forced)
    if input != "constant" or len(x) <= CHUNK:
        return _run_chunk(network, stages, x, voltages, **options)
    parts = []
    for start in range(0, len(x), CHUNK):
        part = slice(start, start + CHUNK)
        sliced = {name: v[part] if isinstance(v, np.ndarray) else v
                  for name, v in voltages.items()}
        parts.append(_run_chunk(network, stages, x[part], sliced, **options))
    return (np.concatenate([p[0] for p in parts]),
            {name: np.concatenate([p[1][name] for p in parts]) for name in parts[0][1]},
            {name: np.concatenate([p[2][name] for p in parts]) for name in parts[0][2]})


def _run_chunk(network: SpikingNetwork, stages: list[Stage], x: np.ndarray, voltages: dict, *,
               n_steps: int, dt: float, scales: dict, synapse: Lowpass | None,
               model: NeuronModel, input: str, rng: np.random.Generator, record: set,
               dtype: np.dtype, segments: list | None, forced: bool) -> tuple:
    first = next((i for i, s in enumerate(network.stages) if s.spiking), len(stages))
    neurons = {
        s.name: LayerState(model, (len(x),) + s.output_shape, scales[s.name], dt=dt,
                           dtype=dtype, initial_voltage=voltages[s.name], synapse=synapse,
                           n_steps=n_steps, record=s.name in record)
        for s in network.stages if s.spiking}
    # With a constant input, everything up to the first neurons' input current is constant too.
    constant = _prefix(stages, first, x.astype(dtype)) if input == "constant" else None
    if segments is not None:
        # spikes per neuron and step of the first layer (its rate): dense ones are faster dense
        rate = np.maximum(constant * scales[network.stages[first].name] * dt, 0)
        if model.max_spikes_per_step is not None:
            rate = np.minimum(rate, 1)
        if forced or rate.mean() <= event_driven.SPARSE_THRESHOLD:
            return event_driven.run_chunk(network, stages, segments, x, neurons, constant,
                                          n_steps=n_steps, dtype=dtype, synapse=synapse)
    output = np.zeros((len(x), n_steps, int(np.prod(network.output_shape))), dtype=dtype)
    for t in range(n_steps):
        if constant is None:
            spikes_in = (rng.random(x.shape) < x).astype(dtype)
            h = _prefix(stages, first, spikes_in)
        else:
            h = constant
        for stage, name in zip(stages[first:], [s.name for s in network.stages[first:]],
                               strict=True):
            if stage is not stages[first]:
                h = stage.linear(h)
            h = neurons[name].step(h, t) if name in neurons else h
        output[:, t] = h.reshape(len(x), -1)
    counts = {name: layer.counts.astype(np.int64) for name, layer in neurons.items()}
    spikes = {name: layer.spikes for name, layer in neurons.items() if layer.spikes is not None}
    return output, counts, spikes


def _prefix(stages: list[Stage], first: int, h: np.ndarray) -> np.ndarray:
    """Run the linear stages before the first spiking one, then that one's input current."""
    for stage in stages[:first]:
        h = stage.linear(h)
    return stages[first].linear(h) if first < len(stages) else h


def _cast(stage: Stage, dtype: np.dtype) -> Stage:
    """A copy of ``stage`` whose kernel and bias are in ``dtype`` (cast once, not every step)."""
    op = stage.op
    if stage.has_weights:
        op = op.with_kernel(np.asarray(op.kernel, dtype=dtype))
    bias = None if stage.bias is None else np.asarray(stage.bias, dtype=dtype)
    return dataclasses.replace(stage, op=op, bias=bias)


def _join(parts: list, n_steps: int, dt: float) -> SimulationResult:
    output = np.concatenate([p[0] for p in parts])
    counts = {name: np.concatenate([p[1][name] for p in parts]) for name in parts[0][1]}
    spikes = {name: np.concatenate([p[2][name] for p in parts]) for name in parts[0][2]}
    return SimulationResult(output, counts, spikes, n_steps, dt)
