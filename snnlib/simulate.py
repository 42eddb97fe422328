"""A fast, batched, time-stepped simulator of a converted network with integrate-and-fire neurons.

Configured like NengoDL (``max_spikes_per_step=None``, ``reset="subtract"``, constant input),
it computes what ``nengo.Simulator`` computes for the network ``nengo_dl.Converter`` builds with
``nengo.SpikingRectifiedLinear`` neurons, step for step:

- a spiking layer with firing-rate scale ``s`` receives ``J = s * (W h + b)`` (the converter sets
  gain ``s`` and multiplies biases by ``s``);
- ``v += max(J, 0) * dt``; ``n = floor(v)`` spikes; ``v -= n``; output ``(1 / s) / dt * n``
  (amplitude ``1 / s``), so the next layer receives, on average, the ReLU rate;
- a synapse ``tau`` is a ``nengo.Lowpass(tau)`` on every connection out of a spiking layer,
  discretized with zero-order hold: ``y[t] = a y[t-1] + (1 - a) x[t]``, ``a = exp(-dt / tau)``.
  Nengo updates a synapse's output after the step's readers have used it, so a synapse also
  delays the signal by one step; this simulator does the same;
- the linear output layer is a non-spiking readout of the last spiking layer.

Everything is vectorized over the batch and the neurons; only time steps are looped over.
"""
import numpy as np

from snnlib import event_driven
from snnlib.network import SpikingNetwork

RESETS = ("subtract", "zero")
INPUTS = ("constant", "poisson")
READOUTS = ("last", "mean")


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

    def __init__(self, output, spike_counts, spikes, n_steps, dt):
        self.output = output
        self.spike_counts = spike_counts
        self.spikes = spikes
        self.n_steps = n_steps
        self.dt = dt

    @property
    def duration(self):
        """Simulated time (seconds)."""
        return self.n_steps * self.dt

    @property
    def rates(self):
        """dict: layer name -> firing rate of every neuron (Hz), shape (batch,) + layer shape."""
        return {name: counts / self.duration for name, counts in self.spike_counts.items()}

    @property
    def mean_rates(self):
        """dict: layer name -> firing rate averaged over neurons and examples (Hz)."""
        return {name: float(np.mean(counts)) / self.duration
                for name, counts in self.spike_counts.items()}

    def scores(self, readout="last"):
        """Class scores over time, (batch, n_steps, n_out).

        ``"last"``: the output at each step (NengoDL's way: the last step's output decides).
        ``"mean"``: the output averaged from the first step to each step.
        """
        if readout not in READOUTS:
            raise ValueError(f"unknown readout {readout!r}; use one of {READOUTS}")
        if readout == "last":
            return self.output
        steps = np.arange(1, self.n_steps + 1).reshape(1, -1, 1)
        return np.cumsum(self.output, axis=1, dtype=np.float64) / steps

    def predictions(self, readout="last"):
        """Predicted class per example at the end of the run, int array (batch,)."""
        return np.argmax(self.scores(readout)[:, -1], axis=-1)

    def accuracy_over_time(self, labels, readout="last"):
        """Fraction of correct predictions (0-1) after each step, array (n_steps,)."""
        labels = np.asarray(labels)
        if labels.shape != (self.output.shape[0],):
            raise ValueError(f"labels have shape {labels.shape}; expected ({self.output.shape[0]},)")
        correct = np.argmax(self.scores(readout), axis=-1) == labels[:, None]
        return correct.mean(axis=0)

    def accuracy(self, labels, readout="last"):
        """Fraction of correct predictions (0-1) at the end of the run."""
        return float(self.accuracy_over_time(labels, readout)[-1])


def check_options(network, n_steps, dt, reset, input, max_spikes_per_step, synapse,
                  initial_voltage):
    """Fail early, naming the bad option."""
    if not isinstance(network, SpikingNetwork):
        raise TypeError(f"network must be a SpikingNetwork (from snnlib.convert), got "
                        f"{type(network).__name__}")
    if not isinstance(n_steps, (int, np.integer)) or n_steps <= 0:
        raise ValueError(f"n_steps={n_steps!r} must be a positive integer")
    if not np.isscalar(dt) or not np.isfinite(dt) or dt <= 0:
        raise ValueError(f"dt={dt!r} must be a positive number of seconds")
    if reset not in RESETS:
        raise ValueError(f"unknown reset {reset!r}; use one of {RESETS}")
    if input not in INPUTS:
        raise ValueError(f"unknown input {input!r}; use one of {INPUTS}")
    if max_spikes_per_step not in (None, 1):
        raise ValueError(f"max_spikes_per_step={max_spikes_per_step!r} must be None or 1")
    if synapse is not None and (not np.isscalar(synapse) or not synapse > 0):
        raise ValueError(f"synapse={synapse!r} must be None or a positive time constant (s)")
    is_number = isinstance(initial_voltage, (int, float, np.number)) and np.isfinite(
        initial_voltage)
    if not (is_number or (isinstance(initial_voltage, str) and initial_voltage == "uniform")):
        raise ValueError(f"initial_voltage={initial_voltage!r} must be a number or 'uniform'")


def resolve_scales(network, scale_firing_rates):
    """Firing-rate scale per spiking layer; a dict may omit layers (they get 1, as in nengo_dl)."""
    names = network.spiking_layers
    if isinstance(scale_firing_rates, dict):
        unknown = [key for key in scale_firing_rates if key not in names]
        if unknown:
            raise ValueError(f"scale_firing_rates has keys {unknown} that are not spiking layers "
                             f"of the network; its spiking layers are {names}")
        scales = {name: scale_firing_rates.get(name, 1.0) for name in names}
    else:
        scales = {name: scale_firing_rates for name in names}
    for name, value in scales.items():
        if not np.isscalar(value) or not np.isfinite(value) or value <= 0:
            raise ValueError(f"scale_firing_rates for layer {name!r} is {value!r}; it must be a "
                             "positive number")
    return {name: float(value) for name, value in scales.items()}


class NeuronLayer:
    """State of one spiking layer: voltages, spike counts, optional synapse and recording."""

    def __init__(self, shape, scale, *, dt, dtype, initial_voltage, reset, max_spikes,
                 synapse, n_steps, record):
        self.scale, self.dt, self.reset, self.max_spikes = scale, dt, reset, max_spikes
        if isinstance(initial_voltage, np.ndarray):
            self.voltage = initial_voltage.astype(dtype)  # a copy: drawn voltages, sliced
        else:
            self.voltage = np.full(shape, initial_voltage, dtype=dtype)
        # counts in floating point (exact below 2**24 spikes per neuron) avoid a cast per step
        self.counts = np.zeros(shape, dtype=dtype)
        self.drive = np.empty(shape, dtype=dtype)
        self.n = np.empty(shape, dtype=dtype)
        # amplitude 1 / scale, computed as nengo does: (amplitude / dt) * n
        self.out_scale = (1.0 / scale) / dt
        self.decay = None if synapse is None else float(np.exp(-dt / synapse))
        self.filtered = np.zeros(shape, dtype=dtype) if synapse is not None else None
        self.spikes = np.zeros((shape[0], n_steps) + shape[1:], np.int32) if record else None

    def step(self, current, t):
        """Advance one step given the input ``W h + b``; return what the next layer receives."""
        # in-place arithmetic on preallocated buffers: this is the simulator's inner loop
        v, drive, n = self.voltage, self.drive, self.n
        np.multiply(current, self.scale, out=drive)
        np.maximum(drive, 0, out=drive)
        drive *= self.dt
        v += drive
        if self.max_spikes is None:
            np.floor(v, out=n)
        else:
            np.greater_equal(v, 1, out=n, casting="unsafe")
        if self.reset == "subtract":
            v -= n
        else:
            v[n > 0] = 0
        self.counts += n
        if self.spikes is not None:
            self.spikes[:, t] = n
        out = np.multiply(n, self.out_scale, out=drive)
        return out if self.decay is None else self.filter(out)

    def filter(self, out):
        """Lowpass, read before update (nengo's one-step synaptic delay)."""
        delayed = self.filtered.copy()
        self.filtered *= self.decay
        self.filtered += (1 - self.decay) * out
        return delayed


def simulate(network, x, *, n_steps, dt=0.001, scale_firing_rates=1.0, synapse=None,
             reset="subtract", max_spikes_per_step=None, initial_voltage=0.0, input="constant",
             seed=None, record_spikes=(), dtype=np.float32, batch_size=None, progress=False):
    """Run the converted network with spiking integrate-and-fire neurons.

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
    reset : {"subtract", "zero"}
        After a spike, subtract the threshold (keeps the excess charge; as Nengo) or set the
        voltage to zero (loses it: rates are biased low).
    max_spikes_per_step : None or 1
        None: ``floor(v)`` spikes per step (Nengo). 1: a spike when ``v >= 1``, at most one per
        step (Diehl/Rueckauer IF neuron; rates saturate at ``1 / dt``).
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
        a constant input is computed in chunks of :data:`CHUNK` examples (for speed; no result
        changes).
    progress : bool
        Print the progress of the batches.

    Returns
    -------
    SimulationResult
        ``.output`` (batch, n_steps, n_out), ``.spike_counts``, ``.rates`` (Hz),
        ``.accuracy_over_time(labels, readout=...)``, ``.predictions(readout=...)``.
    """
    check_options(network, n_steps, dt, reset, input, max_spikes_per_step, synapse,
                  initial_voltage)
    x = network.check_input(x)
    if input == "poisson" and (x.min() < 0 or x.max() > 1):
        raise ValueError("input='poisson' needs input values in [0, 1] (spike probabilities)")
    scales = resolve_scales(network, scale_firing_rates)
    unknown = [name for name in record_spikes if name not in scales]
    if unknown:
        raise ValueError(f"record_spikes names {unknown}, not spiking layers {list(scales)}")
    rng = np.random.default_rng(seed)
    options = dict(n_steps=n_steps, dt=dt, scales=scales, synapse=synapse, reset=reset,
                   max_spikes=max_spikes_per_step, initial_voltage=initial_voltage, input=input,
                   rng=rng, record=set(record_spikes), dtype=np.dtype(dtype))
    batch_size = batch_size or len(x)
    parts = []
    for start in range(0, len(x), batch_size):
        if progress:
            print(f"simulate: examples {start}-{min(start + batch_size, len(x))} of {len(x)}")
        parts.append(_run(network, x[start:start + batch_size], **options))
    return _join(parts, n_steps, dt)


#: Examples simulated together when the input is constant. The neuron updates are elementwise
#: passes over (examples x neurons) arrays; for 32 examples of the book's convnet (21,632
#: neurons in its first layer) the state stays in the CPU caches between passes, which made the
#: simulation ~2x faster than one pass over 200 examples (benchmarks/speed.py). Results do not
#: depend on it: every example is simulated independently.
CHUNK = 32


def _run(network, x, *, n_steps, dt, scales, synapse, reset, max_spikes, initial_voltage,
         input, rng, record, dtype):
    """Simulate one batch; with a constant input, in chunks of :data:`CHUNK` examples.

    Random initial voltages are drawn for the whole batch first, layer by layer (the order of
    the draws does not depend on the chunking), then sliced.
    """
    voltages = {s.name: (rng.uniform(0, 1, size=(len(x),) + s.output_shape)
                         if initial_voltage == "uniform" else initial_voltage)
                for s in network.stages if s.spiking}
    stages = [_cast(stage, dtype) for stage in network.stages]
    options = dict(n_steps=n_steps, dt=dt, scales=scales, synapse=synapse, reset=reset,
                   max_spikes=max_spikes, input=input, rng=rng, record=record, dtype=dtype)
    chunk = CHUNK
    if _event_driven(network, input, initial_voltage):
        options["segments"] = event_driven.segments(network)
        chunk = event_driven.CHUNK
    if input != "constant" or len(x) <= chunk:
        return _run_chunk(network, stages, x, voltages, **options)
    parts = []
    for start in range(0, len(x), chunk):
        part = slice(start, start + chunk)
        sliced = {name: v[part] if isinstance(v, np.ndarray) else v
                  for name, v in voltages.items()}
        parts.append(_run_chunk(network, stages, x[part], sliced, **options))
    return (np.concatenate([p[0] for p in parts]),
            {name: np.concatenate([p[1][name] for p in parts]) for name in parts[0][1]},
            {name: np.concatenate([p[2][name] for p in parts]) for name in parts[0][2]})


def _event_driven(network, input, initial_voltage):
    """Whether the event-driven path applies (constant input, voltages >= 0, known stages)."""
    if not event_driven.ENABLED or input != "constant" or event_driven.segments(network) is None:
        return False
    if initial_voltage == "uniform":
        return True
    return initial_voltage >= 0


def _run_chunk(network, stages, x, voltages, *, n_steps, dt, scales, synapse, reset,
               max_spikes, input, rng, record, dtype, segments=None):
    first = next((i for i, s in enumerate(network.stages) if s.spiking), len(stages))
    neurons = {
        s.name: NeuronLayer((len(x),) + s.output_shape, scales[s.name], dt=dt, dtype=dtype,
                            initial_voltage=voltages[s.name], reset=reset,
                            max_spikes=max_spikes, synapse=synapse, n_steps=n_steps,
                            record=s.name in record)
        for s in network.stages if s.spiking}
    # With a constant input, everything up to the first neurons' input current is constant too.
    constant = _prefix(stages, first, x.astype(dtype)) if input == "constant" else None
    if segments is not None:
        # spikes per neuron and step of the first layer (its rate): dense ones are faster dense
        rate = np.maximum(constant * scales[network.stages[first].name] * dt, 0)
        if max_spikes is not None:
            rate = np.minimum(rate, 1)
        if rate.mean() <= event_driven.SPARSE_THRESHOLD:
            return event_driven.run_chunk(network, stages, segments, x, neurons, constant,
                                     n_steps=n_steps, dtype=dtype, synapse=synapse)
    output = np.zeros((len(x), n_steps, int(np.prod(network.output_shape))), dtype=dtype)
    for t in range(n_steps):
        if constant is None:
            spikes_in = (rng.random(x.shape) < x).astype(dtype)
            h = _prefix(stages, first, spikes_in)
        else:
            h = constant
        for stage, name in zip(stages[first:], [s.name for s in network.stages[first:]]):
            if stage is not stages[first]:
                h = stage.linear(h)
            h = neurons[name].step(h, t) if name in neurons else h
        output[:, t] = h.reshape(len(x), -1)
    counts = {name: layer.counts.astype(np.int64) for name, layer in neurons.items()}
    spikes = {name: layer.spikes for name, layer in neurons.items() if layer.spikes is not None}
    return output, counts, spikes


def _prefix(stages, first, h):
    """Run the linear stages before the first spiking one, then that one's input current."""
    for stage in stages[:first]:
        h = stage.linear(h)
    return stages[first].linear(h) if first < len(stages) else h


def _cast(stage, dtype):
    """A copy of ``stage`` whose kernel and bias are in ``dtype`` (cast once, not every step)."""
    import dataclasses

    op = stage.op
    if stage.has_weights:
        op = dataclasses.replace(op, kernel=np.asarray(op.kernel, dtype=dtype))
    bias = None if stage.bias is None else np.asarray(stage.bias, dtype=dtype)
    return dataclasses.replace(stage, op=op, bias=bias)


def _join(parts, n_steps, dt):
    output = np.concatenate([p[0] for p in parts])
    counts = {name: np.concatenate([p[1][name] for p in parts]) for name in parts[0][1]}
    spikes = {name: np.concatenate([p[2][name] for p in parts]) for name in parts[0][2]}
    return SimulationResult(output, counts, spikes, n_steps, dt)
