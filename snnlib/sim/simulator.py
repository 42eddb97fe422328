"""A fast, batched, time-stepped simulator of a converted network with spiking neurons.

With the default neuron (``neuron="spiking_relu"``) configured like NengoDL
(``max_spikes_per_step=None``, ``reset="subtract"``, constant input), it computes what
``nengo.Simulator`` computes for the network ``nengo_dl.Converter`` builds with
``nengo.SpikingRectifiedLinear`` neurons, step for step:

- a spiking layer with firing-rate scale ``s`` receives ``J = s * (W h + b)`` (the converter sets
  gain ``s`` and multiplies biases by ``s``);
- ``v += max(J, 0) * dt``; ``n = floor(v)`` spikes; ``v -= n``; output ``(1 / s) / dt * n``
  (amplitude ``1 / s``), so the next layer receives, on average, the ReLU rate. The neuron
  model (:mod:`snnlib.sim.neurons`) owns this rule; ``neuron="if"`` integrates the signed current
  instead, as the integrate-and-fire neuron of the conversion papers, and ``neuron="lif"`` is
  ``nengo.LIF`` (what ``nengo_dl.Converter`` builds with ``swap_activations`` to ``nengo.LIF``);
- a synapse ``tau`` is a :class:`snnlib.sim.synapses.Lowpass` (``nengo.Lowpass(tau)`` with a
  zero-order hold) on every connection out of a spiking layer; as in Nengo, the next layer
  reads its value before the step's update, so a synapse also delays the signal by one step;
- the output layer is a non-spiking readout of the last spiking layer (a ReLU output layer
  applies its ReLU to the readout at every step, as Keras does).

Three engines give the same spikes (``method=``): the *dense* engine updates every neuron and
computes every linear operation at each step, vectorized over the batch and the neurons; the
*event-driven* engine (:mod:`snnlib.sim.event_driven`) computes the linear operations out of
spiking layers from the spikes alone, which is faster at the usual low rates; the *compiled*
engine (:mod:`snnlib.sim.compiled`, the default where it applies) does the same in machine
code, fusing each layer's neuron update with the listing of its spikes.
"""
from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from snnlib import config, validation
from snnlib.analysis import measures, protocol
from snnlib.config import CHUNK, DT, MAX_STEPS
from snnlib.network import SpikingNetwork, Stage
from snnlib.progress import progress_bar
from snnlib.sim import compiled, event_driven
from snnlib.sim.counts import LayerCounts
from snnlib.sim.neurons import NeuronModel, get_neuron_model
from snnlib.sim.synapses import Lowpass

__all__ = [
    "INPUTS",
    "READOUTS",
    "DEFAULT_READOUT",
    "METHODS",
    "CountsNotKept",
    "SimulationResult",
    "KEEP_COUNTS_BYTES",
    "EVENT_MEMORY",
    "DTYPES",
    "check_initial_voltage",
    "simulate",
]

INPUTS = ("constant", "poisson")
READOUTS = protocol.READOUTS
DEFAULT_READOUT = protocol.DEFAULT_READOUT
METHODS = ("auto", "compiled", "dense", "event")


class CountsNotKept(AttributeError):
    """The full per-example spike counts of a run were not kept (see :func:`simulate`'s
    ``keep_counts``); the message says what to use instead."""


class SimulationResult:
    """Output and spike statistics of :func:`simulate`.

    Attributes
    ----------
    output : ndarray, shape (batch, n_steps, n_out)
        The network's output at every time step (the linear readout, in Keras output units).
    spike_counts : dict
        Spiking layer name -> total spikes per neuron over the run, int array (batch,) + shape.
        Kept only when small or asked for (``simulate(..., keep_counts=True)``); otherwise
        reading it raises :class:`CountsNotKept`. Everything the library reports from the
        counts (``mean_rates``, :mod:`snnlib.analysis.measures`, ``firing_rate_summary``) works from
        :attr:`layer_counts` either way; only per-neuron, per-example analyses (``rates``,
        ``layer_rate_correlation``, the rate histograms) need the full counts.
    layer_counts : dict
        Spiking layer name -> :class:`snnlib.sim.counts.LayerCounts`: spikes per example, per
        neuron over the examples, and a histogram of the counts (always there; memory grows
        with the examples by one number per example).
    counts_kept : bool
        Whether ``spike_counts`` is available.
    spikes : dict
        Layer name -> spikes per step, int array (batch, n_steps) + shape, only for the layers
        named in ``record_spikes``.
    n_steps : int
        Number of time steps.
    dt : float
        Time step (seconds).
    """

    def __init__(self, output: np.ndarray, spike_counts: dict | None, spikes: dict,
                 n_steps: int, dt: float, *,
                 layer_counts: dict[str, LayerCounts] | None = None) -> None:
        if spike_counts is None and layer_counts is None:
            raise ValueError("a SimulationResult needs spike_counts or layer_counts")
        self.output = output
        self._spike_counts = spike_counts
        self._layer_counts = layer_counts
        self.spikes = spikes
        self.n_steps = n_steps
        self.dt = dt

    @property
    def spike_counts(self) -> dict[str, np.ndarray]:
        """Spiking layer name -> spikes of every neuron on every example (see the class)."""
        if self._spike_counts is None:
            neurons = sum(c.neurons for c in self._layer_counts.values())
            raise CountsNotKept(
                f"the spike counts per neuron and example were not kept ({len(self.output)} "
                f"examples x {neurons:,} neurons): simulate(..., keep_counts=True) keeps them "
                "(memory: 8 bytes per neuron and example). Summaries are here without them: "
                "result.layer_counts, result.mean_rates, snnlib.analysis.measures "
                "(spikes_per_example, synaptic_operations, mean_rate), "
                "snnlib.firing_rate_summary")
        return self._spike_counts

    @spike_counts.setter
    def spike_counts(self, value: dict) -> None:
        self._spike_counts = value
        self._layer_counts = None

    @property
    def counts_kept(self) -> bool:
        """Whether the full per-example counts (:attr:`spike_counts`) are available."""
        return self._spike_counts is not None

    @property
    def layer_counts(self) -> dict[str, LayerCounts]:
        """Spiking layer name -> :class:`snnlib.sim.counts.LayerCounts` (summaries of the
        counts)."""
        if self._layer_counts is None:
            self._layer_counts = {name: LayerCounts.from_counts(counts)
                                  for name, counts in self._spike_counts.items()}
        return self._layer_counts

    @property
    def duration(self) -> float:
        """Simulated time (seconds)."""
        return self.n_steps * self.dt

    @property
    def rates(self) -> dict[str, np.ndarray]:
        """dict: layer name -> firing rate of every neuron (Hz), shape (batch,) + layer shape
        (needs the full counts: see :attr:`spike_counts`)."""
        return measures.rates(self)

    @property
    def mean_rates(self) -> dict[str, float]:
        """dict: layer name -> firing rate averaged over neurons and examples (Hz)."""
        return measures.mean_rates(self)

    def scores(self, readout: str = DEFAULT_READOUT) -> np.ndarray:
        """Class scores over time, (batch, n_steps, n_out), under a readout.

        ``"mean"`` (default, the book's protocol, :mod:`snnlib.analysis.protocol`): the output
        averaged
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

        The input of a paired test (:func:`snnlib.analysis.stats.compare_paired`).
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
            the output at each step alone (NengoDL's example). See :mod:`snnlib.analysis.protocol`.
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

        See :func:`snnlib.analysis.protocol.evaluate`; ``ann_accuracy`` is the ANN's accuracy (0-1)
        on
        the same examples.
        """
        return protocol.evaluate(self.output, labels, ann_accuracy=ann_accuracy, dt=self.dt,
                                 readout=readout)


#: The full per-example spike counts are kept by default (``keep_counts=None``) when they take
#: at most this many bytes (8 per neuron and example), or when the examples fit in one batch.
KEEP_COUNTS_BYTES = 32 * 2 ** 20
#: Bytes the event-driven engine may use for the first layer's spikes of one chunk of examples
#: (it lists them all at once); above it, ``method="auto"`` runs that chunk with the dense engine.
EVENT_MEMORY = 2 ** 28
#: Bytes per listed spike event (step, neuron, count, and the sort's temporaries).
_EVENT_BYTES = 40
#: The precisions a simulation can run in.
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def count_limit(dtype: Any) -> int:
    """Spikes one neuron may emit in a run with voltages and counts in ``dtype``: 2**24 for
    float32, 2**53 for float64. Below it every count is an exact integer (floats hold every
    integer up to 2**(mantissa bits + 1)); from it on, adding a spike may change nothing."""
    return 2 ** (np.finfo(dtype).nmant + 1)


def check_initial_voltage(initial_voltage: float | str | dict, model: NeuronModel,
                          network: SpikingNetwork | None = None) -> float | str | dict:
    """``initial_voltage`` checked for the neuron model: "uniform", a number in [0, 1) (in
    units of the threshold 1: a start at or above it would fire before any input, a negative one
    would make the rectified spiking ReLU emit negative spikes), or a dict of per-neuron
    voltages, one array per spiking layer of ``network`` (e.g. Nengo's own random draws, from
    :func:`snnlib.nengo.bridge.nengo_initial_voltages`). A model that integrates a signed
    current (:attr:`NeuronModel.signed_voltage`, ``neuron="if"``) also accepts a negative
    start: its membrane goes below zero anyway, and such a start delays the first spike by
    ``|v0| / (s * a * dt)`` steps (it needs that much more charge).

    Returns the checked value; a dict comes back as layer name -> float64 array of the layer's
    output shape (every input of a run starts from these voltages, as in Nengo)."""
    low = -np.inf if model.signed_voltage else 0.0
    if isinstance(initial_voltage, dict):
        if network is None:
            raise validation.ArgumentError("initial_voltage as a dict of per-layer voltages "
                                           "needs the network to check it against")
        spiking = [s.name for s in network.stages if s.spiking]
        unknown = sorted(set(initial_voltage) - set(spiking))
        missing = [name for name in spiking if name not in initial_voltage]
        if unknown or missing:
            raise validation.ArgumentError(
                f"initial_voltage: the dict must have one entry per spiking layer {spiking}"
                + (f"; unknown {unknown}" if unknown else "")
                + (f"; missing {missing}" if missing else ""))
        checked = {}
        for stage in network.stages:
            if not stage.spiking:
                continue
            name = f"initial_voltage[{stage.name!r}]"
            values = np.asarray(initial_voltage[stage.name])
            if values.dtype.kind not in "iuf" or not np.all(np.isfinite(values)):
                raise validation.ArgumentError(f"{name} must be finite real numbers")
            try:
                values = np.broadcast_to(values.astype(np.float64), stage.output_shape)
            except ValueError:
                raise validation.ArgumentError(
                    f"{name} has shape {values.shape}; expected the layer's output shape "
                    f"{stage.output_shape} (or one that broadcasts to it)") from None
            if values.size and not (values.min() >= low and values.max() < 1):
                raise validation.ArgumentError(
                    f"{name} must be in [{low:g}, 1) (units of the threshold 1; negative only "
                    f"for a signed-current neuron such as 'if'); got {values.min():g} to "
                    f"{values.max():g}")
            checked[stage.name] = values.copy()
        return checked
    if isinstance(initial_voltage, str):
        return validation.choice(initial_voltage, "initial_voltage", ("uniform",))
    if model.signed_voltage:
        return validation.real(initial_voltage, "initial_voltage", high=1, high_open=True,
                               hint=f"below the threshold 1; negative values are allowed for "
                               f"the signed-current neuron {model.name!r}")
    return validation.real(initial_voltage, "initial_voltage", low=0, high=1, high_open=True,
                           hint="a voltage in units of the threshold 1, 'uniform', or a dict "
                           "of per-layer voltages; a negative start is meaningful only for "
                           "neuron='if'")


def _lowest_voltage(initial_voltage: float | str | dict) -> float:
    """The lowest starting voltage (0 for "uniform")."""
    if isinstance(initial_voltage, dict):
        return min((float(v.min()) for v in initial_voltage.values() if v.size), default=0.0)
    return 0.0 if isinstance(initial_voltage, str) else float(initial_voltage)


def check_options(network: SpikingNetwork, n_steps: int, dt: float, input: str,
                  synapse: float | None, initial_voltage: float | str, method: str, *,
                  model: NeuronModel | None = None) -> None:
    """Fail early, naming the bad option (the neuron model checks its own)."""
    if not isinstance(network, SpikingNetwork):
        raise TypeError(f"network must be a SpikingNetwork (from snnlib.convert), got "
                        f"{type(network).__name__}")
    validation.integer(n_steps, "n_steps", low=1, high=MAX_STEPS,
                       hint="time steps; the upper bound limits the run time, see "
                       "snnlib.config.MAX_STEPS")
    validation.real(dt, "dt", low=0, low_open=True, hint="seconds")
    validation.choice(input, "input", INPUTS)
    validation.optional(synapse, validation.real, "synapse", low=0, low_open=True,
                        hint="a time constant in seconds, or None")
    if model is not None:
        check_initial_voltage(initial_voltage, model, network)
    elif isinstance(initial_voltage, dict):
        pass  # checked against the model and the network's layers by check_initial_voltage
    elif not (isinstance(initial_voltage, str) and initial_voltage == "uniform"):
        validation.real(initial_voltage, "initial_voltage", high=1, high_open=True)
    validation.choice(method, "method", METHODS)


def _check_memory(n_examples: int, n_steps: int, n_out: int, dtype: np.dtype,
                  recorded: int) -> None:
    """Refuse a run whose output over time (and recorded spikes) cannot fit in memory."""
    need = n_examples * n_steps * (n_out * dtype.itemsize + recorded * 4)
    available = validation.memory_available()
    if need > available:
        what = "the output over time" + (" and the recorded spikes" if recorded else "")
        raise validation.ArgumentError(
            f"n_steps={n_steps} would need {validation.format_bytes(need)} for {what} of "
            f"{n_examples} examples, more than the {validation.format_bytes(available)} of "
            "memory available: simulate fewer steps or examples" +
            (", or record fewer layers" if recorded else ""))


def _keep_counts(keep_counts: bool | None, n_examples: int, batch_size: int | None,
                 neurons: int) -> bool:
    if keep_counts is not None:
        return validation.boolean(keep_counts, "keep_counts")
    return (batch_size is None or n_examples <= batch_size
            or n_examples * neurons * 8 <= KEEP_COUNTS_BYTES)


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
            # a C-ordered copy (the engines work on reshaped views of it in place): drawn or
            # given voltages, sliced, possibly a broadcast view of one layer's voltages
            self.voltage = np.array(initial_voltage, dtype=dtype, order="C")
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
             max_spikes_per_step: int | None = None,
             initial_voltage: float | str | dict = 0.0, input: str = "constant",
             seed: int | None = None,
             record_spikes: str | tuple | list | None = (), dtype: Any = np.float32,
             batch_size: int | None = None, method: str = "auto",
             progress: bool | None = False, keep_counts: bool | None = None
             ) -> SimulationResult:
    """Run the converted network with spiking neurons.

    Parameters
    ----------
    network : SpikingNetwork
        From :func:`snnlib.convert.convert`.
    x : ndarray, shape (batch,) + input shape
        Inputs, e.g. images in [0, 1].
    n_steps : int
        Number of time steps; the simulated time is ``n_steps * dt`` seconds. At most
        :data:`snnlib.config.MAX_STEPS` (10**7, a bound on run time), and the output over
        time (``len(x) * n_steps * n_out`` numbers) must fit in the memory available.
    dt : float
        Time step (seconds). Each neuron's voltage grows by ``J * dt`` per step.
    scale_firing_rates : float or dict
        Firing-rate scale ``s`` (Hz per unit of activation): a neuron whose rate-mode activation
        is ``a`` fires at ``s * a`` Hz, and its spikes have height ``1 / (s dt)`` so the next
        layer still receives ``a`` on average. Larger ``s``: more spikes, less quantization
        noise, more energy. A dict keyed by spiking layer name scales layers one by one (missing
        layers get 1, as in nengo_dl). For a normalized network, ``s`` is the rate in Hz that
        activation lambda maps to (e.g. 1000 = one spike per step at dt = 1 ms). A scale so
        large that a neuron would emit more spikes in the run than ``dtype`` counts exactly
        (:func:`count_limit`: 2**24 in float32, 2**53 in float64; per step, that limit divided
        by ``n_steps``) is refused with a ValueError that gives the bound, before the run for
        the first layer and after each chunk for the others: counts never wrap around.
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
        :func:`snnlib.ann.activations.soft_lif` at the scale you run at). Other LIF parameters:
        pass ``snnlib.sim.neurons.LIF(tau_rc=..., tau_ref=..., min_voltage=..., amplitude=...)``.
        "loihi_relu" and "loihi_lif": NengoLoihi's ``LoihiSpikingRectifiedLinear`` and
        ``LoihiLIF`` (:mod:`snnlib.sim.loihi`: one spike per step at most, reset to zero, a
        strict threshold; dense engine). Or any :class:`NeuronModel` instance (it carries its
        own reset and spike cap).
    reset : {"subtract", "zero"}
        After a spike, subtract the threshold (keeps the excess charge; as Nengo) or set the
        voltage to zero (loses it: rates are biased low). Not for "lif" (its reset to zero and
        refractory period are part of the model).
    max_spikes_per_step : None or 1
        None: ``floor(v)`` spikes per step (Nengo). 1: a spike when ``v >= 1``, at most one per
        step (rates saturate at ``1 / dt``; the papers' neurons). Not for "lif" (one at most).
    initial_voltage : float, "uniform" or dict
        Starting voltage of every neuron (0 by default), in [0, 1) (units of the threshold);
        "uniform": a random start, uniform in [0, 1), drawn with ``seed`` afresh for every
        input (Nengo's distribution, not its draws); or a dict spiking layer name -> array of
        per-neuron voltages (the layer's output shape), the same for every input: Nengo's own
        draws, which every input of a Nengo run starts from, come from
        :func:`snnlib.nengo.bridge.nengo_initial_voltages`.
        With ``neuron="if"`` (signed current) a negative start is allowed too: it delays the
        first spike (see :func:`check_initial_voltage`); the event-driven engine needs >= 0.
    input : {"constant", "poisson"}
        "constant": the input is presented unchanged at every step (as NengoDL with tiled input).
        "poisson": each input value (must be in [0, 1]) emits at most one spike of height 1 per
        step with probability ``x`` (Bernoulli; rate ``x / dt`` Hz), so its mean equals ``x``.
    seed : int or None
        Seed of the random initial voltages and Poisson input.
    record_spikes : str, sequence of str or None
        Spiking layers (one name, or several; None: none) whose spikes per step are kept in
        ``result.spikes`` (memory: examples x n_steps x neurons, 4 bytes each).
    dtype : numpy dtype
        float32 (fast) or float64 (matches Nengo to float tolerance: near-integer voltages can
        round differently in float32 and flip a spike; counts exact to 2**53 instead of 2**24).
    batch_size : int or None
        Simulate this many examples at a time (bounds memory: the neurons' state, and the spike
        counts unless kept); None: all at once. Either way a constant input is computed in
        chunks of :data:`snnlib.config.CHUNK` examples (for speed; no result changes).
    method : {"auto", "compiled", "dense", "event"}
        The engine. "compiled" (:mod:`snnlib.sim.compiled`): the neuron updates and the
        linear operations out of spiking layers computed from the spikes alone, in machine code
        compiled with numba (on first use in a process: a few seconds), on every core; it runs
        chains of dense, convolution, average pooling and flatten layers, and graphs (joins
        and other ops on dense inputs, as the dense engine), with snnlib's own neuron models,
        any reset, spike cap, synapse and initial voltage, and either input (a spiking max
        pool reading spikes excepted). "dense": every
        neuron and every linear operation at each step, in NumPy and TensorFlow. "event": the
        event-driven engine (:mod:`snnlib.sim.event_driven`), which computes the linear
        operations out of spiking layers from the spikes alone in NumPy; it needs a constant
        input, initial voltages >= 0, a neuron model without other state (not "lif") and, in a
        chain, stages it can handle (dense and convolution layers between spiking layers,
        average pooling and flatten before them; a graph runs whole, without a synapse).
        "compiled" and "event" raise a ValueError saying what is missing. "auto" (default): the
        compiled engine where it applies; else the event-driven one where it applies and the
        first layer(s) fire sparsely (at most ``event_driven.SPARSE_THRESHOLD`` spikes per
        neuron and step), else the dense one. A spiking max pool runs on the dense one. In
        float64 all give the same spikes; in float32 a rare neuron may spike a step earlier or
        later (the summation order differs).
    progress : bool or None
        Show a progress bar over the batches (``tqdm``; None: on unless ``SNNLIB_PROGRESS=0``,
        see :mod:`snnlib.progress`).
    keep_counts : bool or None
        Keep every neuron's spike count on every example (``result.spike_counts``; 8 bytes per
        neuron and example: 2 GB for 8,000 images of the book's convnet). False keeps only
        their summaries (``result.layer_counts``: per example, per neuron over the examples, a
        histogram), so that memory is bounded by ``batch_size``, not by the number of examples;
        every measure and ``firing_rate_summary`` work from them. None (default): keep them
        when the examples fit in one batch (``batch_size`` None or >= ``len(x)``) or the counts
        take at most :data:`KEEP_COUNTS_BYTES` (32 MiB).

    Returns
    -------
    SimulationResult
        ``.output`` (batch, n_steps, n_out), ``.layer_counts``, ``.spike_counts`` (if kept),
        ``.rates`` (Hz; if kept), ``.accuracy_over_time(labels, readout=...)``,
        ``.predictions(readout=...)``.
    """
    model = get_neuron_model(neuron, reset=_reset(reset),
                             max_spikes_per_step=_spike_cap(max_spikes_per_step))
    check_options(network, n_steps, dt, input, synapse, initial_voltage, method, model=model)
    # the checked values from here on (a 0-d array or NumPy scalar becomes a plain number)
    n_steps, dt = int(n_steps), float(dt)
    synapse = None if synapse is None else float(synapse)
    initial_voltage = check_initial_voltage(initial_voltage, model, network)
    x = network.check_input(x)
    if input == "poisson" and (x.min() < 0 or x.max() > 1):
        raise ValueError("input='poisson' needs input values in [0, 1] (spike probabilities)")
    scales = network.firing_rate_scales(scale_firing_rates)
    record = validation.names((), "record_spikes") if record_spikes is None else \
        validation.names(record_spikes, "record_spikes", allowed=list(scales))
    seed = validation.seed(seed)
    batch_size = validation.optional(batch_size, validation.integer, "batch_size", low=1)
    dtype = _dtype(dtype)
    if progress is not None:
        validation.boolean(progress, "progress")
    stages = {s.name: s for s in network.stages}
    n_out = int(np.prod(network.output_shape))
    _check_memory(len(x), n_steps, n_out, dtype,
                  sum(int(np.prod(stages[name].output_shape)) for name in set(record)))
    neurons = sum(int(np.prod(stages[name].output_shape)) for name in scales)
    keep = _keep_counts(keep_counts, len(x), batch_size, neurons)
    engine, segments = _engine(network, method, input, initial_voltage, model,
                               synapse=synapse is not None)
    rng = np.random.default_rng(seed)
    options = dict(n_steps=n_steps, dt=dt, scales=scales,
                   synapse=None if synapse is None else Lowpass(synapse, dt), model=model,
                   initial_voltage=initial_voltage, input=input, rng=rng,
                   record=set(record), dtype=dtype, segments=segments,
                   forced=method == "event", engine=engine)
    collector = _Collector(len(x), n_steps, n_out, dtype,
                           {name: stages[name].output_shape for name in dict.fromkeys(record)},
                           keep)
    batch_size = batch_size or len(x)
    starts = range(0, len(x), batch_size)
    for start in progress_bar(starts, desc="simulate (batches)", progress=progress):
        collector.add(start, *_run(network, x[start:start + batch_size], **options))
    return collector.result(n_steps, dt)


def _reset(reset: Any) -> str:
    return validation.choice(reset, "reset", ("subtract", "zero"))


def _spike_cap(max_spikes_per_step: Any) -> int | None:
    if max_spikes_per_step is None:
        return None
    validation.integer(max_spikes_per_step, "max_spikes_per_step", low=1, high=1,
                       hint="None (floor(v) spikes per step, as Nengo) or 1")
    return 1


def _dtype(dtype: Any) -> np.dtype:
    try:
        checked = np.dtype(dtype)
    except TypeError:
        checked = None
    if checked is None or checked not in DTYPES:  # (np.dtype(None) is float64: None == it)
        raise validation.ArgumentError(f"dtype={dtype!r} must be float32 or float64")
    return checked


class _Collector:
    """Gathers the batches of a run: the output and recorded spikes into arrays allocated once,
    the counts' summaries merged batch by batch, the full counts only if kept."""

    def __init__(self, n: int, n_steps: int, n_out: int, dtype: np.dtype, record: dict,
                 keep: bool) -> None:
        self.output = np.empty((n, n_steps, n_out), dtype=dtype)
        self.spikes = {name: np.empty((n, n_steps) + tuple(shape), np.int32)
                       for name, shape in record.items()}
        self.counts: dict[str, list] | None = {} if keep else None
        self.summary: dict[str, LayerCounts] = {}

    def add(self, start: int, output: np.ndarray, counts: dict, spikes: dict) -> None:
        part = slice(start, start + len(output))
        self.output[part] = output
        for name, recorded in spikes.items():
            self.spikes[name][part] = recorded
        for name, layer in counts.items():
            summary = LayerCounts.from_counts(layer)
            old = self.summary.get(name)
            self.summary[name] = summary if old is None else old.merge(summary)
            if self.counts is not None:
                self.counts.setdefault(name, []).append(layer)

    def result(self, n_steps: int, dt: float) -> SimulationResult:
        counts = None if self.counts is None else {
            name: parts[0] if len(parts) == 1 else np.concatenate(parts)
            for name, parts in self.counts.items()}
        return SimulationResult(self.output, counts, self.spikes, n_steps, dt,
                                layer_counts=self.summary)


def _engine(network: SpikingNetwork, method: str, input: str,
            initial_voltage: float | str | dict, model: NeuronModel, *,
            synapse: bool = False) -> tuple[str, list | None]:
    """The engine that runs the simulation and its plan: ("compiled", segments), ("event",
    segments) or ("dense", None).

    "auto" takes the compiled engine where it applies, else the event-driven one where it
    applies (it still falls back to the dense one per chunk when the first layer fires
    densely), else the dense one. Raises a ValueError saying why when the engine named by
    ``method`` cannot run it.
    """
    if method in ("auto", "compiled"):
        plan, why = compiled.plan(network, model, input)
        if why is None:
            return "compiled", plan
        if method == "compiled":
            raise ValueError(f"method='compiled' cannot simulate this: {why}; use "
                             "method='auto', 'event' or 'dense'")
    if method == "dense":
        return "dense", None
    reason = None
    if model.event_driven_unsupported:
        reason = model.event_driven_unsupported
    elif input != "constant":
        reason = (f"input={input!r} changes at every step; it needs a constant input "
                  "(input='constant')")
    elif synapse and not network.is_chain:
        reason = ("on a graph it runs without a synapse (synapse=None); the chain's engine "
                  "filters after each weighted op, which a join would mix")
    elif _lowest_voltage(initial_voltage) < 0:
        reason = (f"it needs initial voltages >= 0 (the lowest is "
                  f"{_lowest_voltage(initial_voltage):g})")
    else:
        try:
            return "event", event_driven.segments(network)
        except event_driven.Unsupported as err:
            reason = str(err)
    if method == "event":
        raise ValueError(f"method='event' cannot simulate this: {reason}; use method='dense' "
                         "or 'auto'")
    return "dense", None


def _run(network: SpikingNetwork, x: np.ndarray, *, n_steps: int, dt: float, scales: dict,
         synapse: Lowpass | None, model: NeuronModel, initial_voltage: float | str | dict,
         input: str, rng: np.random.Generator, record: set, dtype: np.dtype,
         segments: list | None, forced: bool, engine: str) -> tuple:
    """Simulate one batch; with a constant input, in chunks of :data:`snnlib.config.CHUNK`,
    :data:`snnlib.config.THREADS` of them at a time (the compiled engine chunks the batch
    itself: :data:`snnlib.sim.compiled.CHUNK`).

    Random initial voltages are drawn for the whole batch first, layer by layer (the order of
    the draws does not depend on the chunking), then sliced.
    """
    def start(stage: Stage) -> float | np.ndarray:
        if isinstance(initial_voltage, dict):  # the same voltages for every input (as Nengo)
            return np.broadcast_to(initial_voltage[stage.name], (len(x),) + stage.output_shape)
        if isinstance(initial_voltage, str):
            return rng.uniform(0, 1, size=(len(x),) + stage.output_shape)
        return initial_voltage

    voltages = {s.name: start(s) for s in network.stages if s.spiking}
    stages = [_cast(stage, dtype) for stage in network.stages]
    options = dict(n_steps=n_steps, dt=dt, scales=scales, synapse=synapse, model=model,
                   input=input, rng=rng, record=record, dtype=dtype, segments=segments,
                   forced=forced, engine=engine)
    if input != "constant" or len(x) <= CHUNK or engine == "compiled":
        return _run_chunk(network, stages, x, voltages, **options)

    def run_part(start: int) -> tuple:
        part = slice(start, start + CHUNK)
        sliced = {name: v[part] if isinstance(v, np.ndarray) else v
                  for name, v in voltages.items()}
        return _run_chunk(network, stages, x[part], sliced, **options)

    starts = range(0, len(x), CHUNK)
    if config.THREADS == 1:
        parts = [run_part(start) for start in starts]
    else:  # chunks are independent: the same results, in the same order
        with ThreadPoolExecutor(max_workers=config.THREADS) as pool:
            parts = list(pool.map(run_part, starts))
    return (np.concatenate([p[0] for p in parts]),
            {name: np.concatenate([p[1][name] for p in parts]) for name in parts[0][1]},
            {name: np.concatenate([p[2][name] for p in parts]) for name in parts[0][2]})


def _run_chunk(network: SpikingNetwork, stages: list[Stage], x: np.ndarray, voltages: dict, *,
               n_steps: int, dt: float, scales: dict, synapse: Lowpass | None,
               model: NeuronModel, input: str, rng: np.random.Generator, record: set,
               dtype: np.dtype, segments: list | None, forced: bool, engine: str) -> tuple:
    first = next((i for i, s in enumerate(network.stages) if s.spiking), len(stages))
    neurons = {
        s.name: LayerState(model, (len(x),) + s.output_shape, scales[s.name], dt=dt,
                           dtype=dtype, initial_voltage=voltages[s.name], synapse=synapse,
                           n_steps=n_steps, record=s.name in record)
        for s in network.stages if s.spiking}
    if not network.is_chain:
        return _run_graph_chunk(network, stages, x, neurons, n_steps=n_steps, dt=dt,
                                scales=scales, model=model, input=input, rng=rng, dtype=dtype,
                                segments=segments, forced=forced, engine=engine,
                                synapse=synapse)
    # With a constant input, everything up to the first neurons' input current is constant too.
    constant = _prefix(stages, first, x.astype(dtype)) if input == "constant" else None
    if constant is not None and first < len(stages):
        _check_drive(network.stages[first].name, constant, scales[network.stages[first].name],
                     dt=dt, n_steps=n_steps, model=model, dtype=dtype)
    if engine == "compiled":
        output = compiled.run_chunk(network, stages, segments, x, neurons, constant,
                                    n_steps=n_steps, dtype=dtype, synapse=synapse, rng=rng,
                                    prefix=lambda h: _prefix(stages, first, h))
        return _chunk_result(neurons, output, n_steps=n_steps, dtype=dtype)
    if segments is not None:
        # spikes per neuron and step of the first layer (its rate): dense ones are faster dense
        rate = np.maximum(constant * scales[network.stages[first].name] * dt, 0)
        if model.max_spikes_per_step is not None:
            rate = np.minimum(rate, 1)
        # the closed form lists every spike of the first layer at once: bound its memory
        events = (float(rate.sum(dtype=np.float64)) * n_steps * _EVENT_BYTES
                  if model.has_closed_form else 0.0)
        if forced and events > validation.memory_available():
            raise validation.ArgumentError(
                f"method='event' would list {validation.format_bytes(events)} of spikes of the "
                f"first layer for {len(x)} examples x {n_steps} steps, more than the memory "
                "available; use method='auto' or 'dense', or fewer steps")
        if forced or (rate.mean() <= event_driven.SPARSE_THRESHOLD and events <= EVENT_MEMORY):
            result = event_driven.run_chunk(network, stages, segments, x, neurons, constant,
                                            n_steps=n_steps, dtype=dtype, synapse=synapse)
            _check_counts(neurons, result[0], n_steps=n_steps, dtype=dtype)
            return result
    output = np.zeros((len(x), n_steps, int(np.prod(network.output_shape))), dtype=dtype)
    gates = _gates(stages, first, spiking_input=constant is None)
    for t in range(n_steps):
        if constant is None:
            spikes_in = (rng.random(x.shape) < x).astype(dtype)
            h = _prefix(stages, first, spikes_in, gates)
        else:
            h = constant
        for i, stage in enumerate(stages[first:], start=first):
            name = network.stages[i].name
            if i != first:  # (the first stage's input current came from the prefix)
                h = _gated(gates[i], stage, h, dtype) if i in gates else stage.linear(h)
            h = neurons[name].step(h, t) if name in neurons else stage.activate(h)
        output[:, t] = h.reshape(len(x), -1)
    return _chunk_result(neurons, output, n_steps=n_steps, dtype=dtype)


def _run_graph_chunk(network: SpikingNetwork, stages: list[Stage], x: np.ndarray,
                     neurons: dict, *, n_steps: int, dt: float, scales: dict,
                     model: NeuronModel, input: str, rng: np.random.Generator,
                     dtype: np.dtype, segments: list | None = None,
                     forced: bool = False, engine: str = "dense",
                     synapse: Lowpass | None = None) -> tuple:
    """A graph (joins, fan-out): every stage once per step, in order, on the compiled engine
    (``engine="compiled"``), the dense engine or (``segments`` not None: chosen or allowed) the
    event-driven one.

    With a constant input, the stages that no neurons feed are computed once, and so is the
    input current of every spiking stage that reads only them (as the chain's first layer).
    With ``method="auto"`` the event-driven engine runs where those spiking stages fire at
    most :data:`snnlib.sim.event_driven.SPARSE_THRESHOLD` spikes per neuron and step on
    average (as for a chain's first layer).
    """
    sources = network.sources()
    static: list[bool] = []
    for i, stage in enumerate(network.stages):
        static.append(not stage.spiking and all(j < 0 or static[j] for j in sources[i]))

    def inputs(values: dict, i: int) -> np.ndarray | list:
        args = [values[j] for j in sources[i]]
        return args if stages[i].op.join else args[0]

    fixed: dict = {}
    currents: dict = {}
    if input == "constant":
        fixed[-1] = x.astype(dtype)
        for i, stage in enumerate(stages):
            if static[i]:
                fixed[i] = stage.rates(inputs(fixed, i))
            elif all(j < 0 or static[j] for j in sources[i]):
                currents[i] = stage.linear(inputs(fixed, i))
                name = network.stages[i].name
                _check_drive(name, currents[i], scales[name], dt=dt, n_steps=n_steps,
                             model=model, dtype=dtype)
    if engine == "compiled":
        output = compiled.run_graph(network, stages, x, neurons, fixed=fixed, currents=currents,
                                    n_steps=n_steps, dtype=dtype, synapse=synapse, rng=rng)
        return _chunk_result(neurons, output, n_steps=n_steps, dtype=dtype)
    if segments is not None and currents and (forced or _sparse_enough(
            [currents[i] * scales[network.stages[i].name] * dt for i in currents], model,
            n_steps)):
        output = event_driven.run_graph_chunk(network, stages, x, neurons, fixed=fixed,
                                              currents=currents, n_steps=n_steps, dtype=dtype)
        return _chunk_result(neurons, output, n_steps=n_steps, dtype=dtype)
    last = len(stages) - 1
    last_read: dict[int, int] = {}
    for i, row in enumerate(sources):
        for j in row:
            last_read[j] = i
    output = np.zeros((len(x), n_steps, int(np.prod(network.output_shape))), dtype=dtype)
    # a max pool reading spikes (of neurons, or of a Poisson input) runs its gate
    gates = {i: stage.op.gate() for i, stage in enumerate(stages)
             if stage.op.gated and (input != "constant" or not static[i])}
    for t in range(n_steps):
        if input == "constant":
            values = dict(fixed)
        else:
            values = {-1: (rng.random(x.shape) < x).astype(dtype)}
        for i, stage in enumerate(stages):
            if i not in values:
                if i in gates:
                    z = _gated(gates[i], stages[i], inputs(values, i), dtype)
                else:
                    z = currents[i] if i in currents else stage.linear(inputs(values, i))
                name = network.stages[i].name
                values[i] = neurons[name].step(z, t) if name in neurons else stage.activate(z)
            for j in set(sources[i]):  # an output no later stage reads is dropped
                if last_read[j] == i:
                    values.pop(j, None)
        output[:, t] = values[last].reshape(len(x), -1)
    return _chunk_result(neurons, output, n_steps=n_steps, dtype=dtype)


def _chunk_result(neurons: dict, output: np.ndarray, *, n_steps: int, dtype: np.dtype
                  ) -> tuple:
    """(output, spike counts, recorded spikes) of a chunk, after checking the counts are exact."""
    _check_counts(neurons, output, n_steps=n_steps, dtype=dtype)
    counts = {name: layer.counts.astype(np.int64) for name, layer in neurons.items()}
    spikes = {name: layer.spikes for name, layer in neurons.items() if layer.spikes is not None}
    return output, counts, spikes


def _fix(dtype: np.dtype) -> str:
    return ("lower scale_firing_rates (or n_steps), or use max_spikes_per_step=1"
            + (", or dtype=np.float64 (exact up to 2**53 spikes)" if dtype.itemsize < 8 else ""))


def _check_drive(name: str, current: np.ndarray, gain: float, *, dt: float, n_steps: int,
                 model: NeuronModel, dtype: np.dtype) -> None:
    """Refuse a constant drive that would make a neuron count more spikes than ``dtype`` holds
    exactly (:func:`count_limit`), before simulating."""
    if model.max_spikes_per_step is not None or current.size == 0:
        return  # at most one spike per step: n_steps <= MAX_STEPS < 2**24
    peak = max(float(np.max(current)), 0.0)
    per_step = float(model.drive(np.array([peak]), gain, dt)[0])  # in float64: no overflow
    limit = count_limit(dtype)
    if per_step * n_steps + 1 < limit:
        return
    bits = int(np.log2(limit))
    raise validation.ArgumentError(
        f"scale_firing_rates={gain:g} makes layer {name!r} emit up to {per_step:.3g} spikes "
        f"per step (input {peak:.3g} x {gain:g} Hz x dt {dt:g} s); over n_steps={n_steps} "
        f"steps a neuron would count up to {per_step * n_steps:.3g} spikes, but {dtype.name} "
        f"counts exactly only below 2**{bits} = {limit:,} spikes per neuron and run (for "
        f"n_steps={n_steps}: {limit / n_steps:.4g} spikes per step): {_fix(dtype)}")


def _check_counts(neurons: dict, output: np.ndarray, *, n_steps: int, dtype: np.dtype) -> None:
    """After a chunk: every count exact (below :func:`count_limit`), the output finite."""
    limit = count_limit(dtype)
    for name, layer in neurons.items():
        top = layer.counts.max() if layer.counts.size else 0
        if np.isnan(top):  # inf - inf in a voltage, or weights that are not finite
            raise validation.ArgumentError(
                f"layer {name!r}: spike counts became NaN ({dtype.name} overflow, or weights "
                f"that are not finite): {_fix(dtype)}")
        if not top < limit:
            raise validation.ArgumentError(
                f"layer {name!r}: a neuron counted {top:.4g} spikes in {n_steps} steps, beyond "
                f"the 2**{int(np.log2(limit))} = {limit:,} that {dtype.name} counts exactly "
                f"(at most {limit / n_steps:.4g} spikes per step over n_steps={n_steps}): "
                f"{_fix(dtype)}")
    if not np.all(np.isfinite(output)):
        raise validation.ArgumentError(
            f"the output became NaN or infinite ({dtype.name} overflow): {_fix(dtype)}")


def _sparse_enough(rates: list[np.ndarray], model: NeuronModel, n_steps: int) -> bool:
    """Whether spiking stages with these constant drives (spikes per neuron and step, before
    rectification) fire sparsely enough for the event-driven engine, within its memory."""
    rates = [np.maximum(rate, 0) for rate in rates]
    if model.max_spikes_per_step is not None:
        rates = [np.minimum(rate, 1) for rate in rates]
    total = sum(float(rate.sum(dtype=np.float64)) for rate in rates)
    # the closed form lists every spike of these stages at once: bound its memory
    events = total * n_steps * _EVENT_BYTES if model.has_closed_form else 0.0
    return (total / sum(rate.size for rate in rates) <= event_driven.SPARSE_THRESHOLD
            and events <= EVENT_MEMORY)


def _gates(stages: list[Stage], first: int, *, spiking_input: bool = False) -> dict:
    """Index -> a fresh gate, for each stage whose op keeps state on spikes (a spiking max
    pool) and reads spikes: after the first neurons, or anywhere with a spiking (Poisson)
    input; before them a constant input is not spikes, and the op is exact."""
    return {i: stage.op.gate() for i, stage in enumerate(stages)
            if stage.op.gated and (i > first or spiking_input)}


def _gated(gate: Any, stage: Stage, h: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """A gated stage's linear output: the gate in place of the op, then the bias."""
    z = gate(h).astype(dtype, copy=False)
    return z if stage.bias is None else z + stage.bias


def _prefix(stages: list[Stage], first: int, h: np.ndarray, gates: dict | None = None
            ) -> np.ndarray:
    """Run the stages before the first spiking one, then that one's input current (with
    ``gates``, the gated stages among them run their gates: a spiking input)."""
    gates = gates or {}
    for i, stage in enumerate(stages[:first]):
        # no neurons: linear, or a rectified readout
        h = stage.activate(_gated(gates[i], stage, h, h.dtype)) if i in gates else stage.rates(h)
    if first < len(stages) and first in gates:
        return _gated(gates[first], stages[first], h, h.dtype)
    return stages[first].linear(h) if first < len(stages) else h


def _cast(stage: Stage, dtype: np.dtype) -> Stage:
    """A copy of ``stage`` whose kernel and bias are in ``dtype`` (cast once, not every step)."""
    op = stage.op
    if stage.has_weights:
        op = op.with_kernel(np.asarray(op.kernel, dtype=dtype))
    bias = None if stage.bias is None else np.asarray(stage.bias, dtype=dtype)
    return dataclasses.replace(stage, op=op, bias=bias)
