"""The compiled engine of :func:`snnlib.sim.simulator.simulate`: the inner loop in machine code.

The dense and event-driven engines (:mod:`snnlib.sim.simulator`, :mod:`snnlib.sim.event_driven`)
pay NumPy's dispatch on every step and every array, and a convolution at every step on the
dense path. This engine compiles (with numba) two kernels that do the work of one step for a
whole chunk of examples, the examples shared among the CPU cores:

- the neuron update (:func:`_neuron_step`): drive, integrate, fire and reset in one pass over a
  layer's neurons, counting, recording, and listing the spikes as events (the neuron's index and
  the value the next layer receives, ``n * amplitude / (s dt)``);
- the fan-out (:func:`_scatter_conv`, :func:`_scatter_dense`): each event adds its value times
  its weights to the neurons it reaches, so a step costs spikes x fan-out synaptic operations,
  not the layer's multiply-accumulates. Average pooling between layers maps events to events
  (:func:`_map_events`).

A chain's first spiking layer with a constant input gets the same drive at every step: it is
computed once. The rules are those of the neuron models (:mod:`snnlib.sim.neurons`), written
again in scalar form, in the same order of floating-point operations as their NumPy form, in the
simulation's dtype. The linear operations add in another order than TensorFlow's and NumPy's
(as on the event-driven engine), so the spike counts are the dense engine's except where that
rounding moves a voltage across an integer: in float64 this changes no spike count in the tests
(tests/test_compiled.py: every neuron model, reset, spike cap, synapse, input, and the layer
types this engine runs, on the book's networks); in float32 a rare neuron may spike a step
earlier or later.

It runs chains of spiking layers joined by dense layers (on vectors) and convolutions (any
strides, padding, dilation and groups; ``Conv1D`` too), with average pooling, flatten and
reshape between them, and a linear readout (a max pool only before the first spiking layer,
with a constant input: computed once there); the neuron models ``spiking_relu``, ``if`` and
``lif`` as registered in snnlib (not subclasses). It runs graphs (residual sums,
concatenations, fan-out) stage by stage (:func:`run_graph`): spikes are scattered through the
weighted ops that read one spiking stage, and a join, or an op without a compiled form, runs
its NumPy form on dense inputs, as the dense engine. :func:`plan` says why anything else runs
on the other engines (a spiking max pool, a rectified readout or a stage without a compiled
form in a chain, user-defined neuron models).
The kernels are compiled on first use in a process (a few seconds; cached on disk by numba
afterwards). Runs are serialized by a lock: numba's default threading layer may not be entered
by two threads at once, and each run already uses every core.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from snnlib.network.ops import (
    AvgPool1DOp,
    AvgPool2DOp,
    Conv1DOp,
    Conv2DOp,
    DenseOp,
    IdentityOp,
    ReshapeLayerOp,
    ReshapeOp,
    same_padding,
)
from snnlib.sim import event_driven
from snnlib.sim.neurons import LIF, IntegrateAndFire, NeuronModel, SpikingReLU

if TYPE_CHECKING:
    from snnlib.network import SpikingNetwork, Stage
    from snnlib.sim.simulator import LayerState
    from snnlib.sim.synapses import Lowpass

__all__ = [
    "CHUNK",
    "available",
    "run_graph",
]

#: Neuron model class -> the code the kernel switches on.
_KINDS = {SpikingReLU: 0, IntegrateAndFire: 1, LIF: 2}
#: One run at a time (numba's default "workqueue" threading layer is not re-entrant).
_LOCK = threading.Lock()
_KERNELS: dict = {}
#: Examples simulated together on a constant input: their state fits the CPU's caches, and the
#: kernels share them among the cores.
CHUNK = 32


def _compile() -> dict:
    """The numba kernels, compiled (or loaded from numba's cache) on first use."""
    if _KERNELS:
        return _KERNELS
    import numba
    from numba import prange

    jit = numba.njit(parallel=True, cache=True, nogil=True)

    inline = numba.njit(inline="always")

    @inline
    def fire(v, zero, one, zero_reset, capped):
        """Spikes at voltage ``v`` and the voltage after the reset (NeuronModel.fire)."""
        if capped:
            n = one if v >= one else zero
        else:
            n = max(np.floor(v), zero)  # a signed voltage below zero: no spike
        if zero_reset:
            return n, zero if n > zero else v
        return n, v - n

    @inline
    def lif(v, J, ref, dt, zero, one, tau_rc, tau_ref, min_voltage):
        """One step of nengo.LIF (LIF.step): spikes, voltage, refractory time."""
        ref = ref - dt
        delta = dt - ref
        if delta < zero:
            delta = zero
        elif delta > dt:
            delta = dt
        v -= (J - v) * np.expm1(-delta / tau_rc)
        if v > one:  # solve v(t) = 1 for the spike time; refractory from then
            return one, zero, tau_ref + (dt + tau_rc * np.log1p(-(v - one) / (J - one)))
        if v < min_voltage:
            v = min_voltage
        return zero, v, ref

    @jit
    def neuron_step(voltage, inp, bias, active, n_active, refractory, counts, record,
                    recording, t, kind, is_drive, gain, dt, zero_reset, capped, tau_rc,
                    tau_ref, min_voltage, out_scale, ev_index, ev_value, ev_count):
        """One step of a layer (examples x neurons) given its input current ``inp`` (+ bias)
        or, with ``is_drive``, its drive; the spikes become events (index, value).

        When ``n_active[0] >= 0`` the arrays hold, for example ``b``, only the neurons
        ``active[b, :n_active[b]]`` (gathered: a constant drive that can never make the others
        spike); the events name the neurons by their index in the layer.
        """
        n_examples, n_neurons = voltage.shape
        zero = voltage.dtype.type(0)
        one = voltage.dtype.type(1)
        subset = n_active[0] >= 0
        for b in prange(n_examples):
            v_row, in_row, n_row, spikes = voltage[b], inp[b], counts[b], ev_value[b]
            todo = n_active[b] if subset else n_neurons
            # pass 1: every neuron's update, its spikes into ev_value; the loops are split by
            # model and input so that the common ones have no branch the compiler cannot turn
            # into vector instructions
            if kind == 2:  # nengo.LIF
                for j in range(todo):
                    J = in_row[j] if is_drive else (in_row[j] + bias[j]) * gain
                    n, v, ref = lif(v_row[j], J, refractory[b, j], dt, zero, one, tau_rc,
                                    tau_ref, min_voltage)
                    refractory[b, j] = ref
                    v_row[j] = v
                    n_row[j] += n
                    spikes[j] = n
            elif is_drive:
                for j in range(todo):
                    n, v = fire(v_row[j] + in_row[j], zero, one, zero_reset, capped)
                    v_row[j] = v
                    n_row[j] += n
                    spikes[j] = n
            else:
                rectify = kind == 0  # spiking ReLU: rectify the drive, then * dt
                for j in range(todo):
                    d = (in_row[j] + bias[j]) * gain
                    if rectify:
                        d = max(d, zero)
                    n, v = fire(v_row[j] + d * dt, zero, one, zero_reset, capped)
                    v_row[j] = v
                    n_row[j] += n
                    spikes[j] = n
            # pass 2: the spikes as events, in place (k <= a), skipping blocks without any;
            # within a block each is written and kept by advancing k (no branch to mispredict)
            k = 0
            index = ev_index[b]
            for a in range(todo):
                n = spikes[a]
                j = active[b, a] if subset else a
                if recording and n > zero:
                    record[b, t, j] = np.int32(n)
                index[k] = j
                spikes[k] = n * out_scale
                k += 1 if n > zero else 0
            ev_count[b] = k

    @jit
    def scatter_conv(ev_index, ev_value, ev_count, kernel, tap_out, tap_kernel, tap_count,
                     channels, groups, out):
        """Events of a (positions x channels) input through a convolution, added into ``out``
        (examples x output size). ``kernel`` is (taps, channels / groups, c_out); input position
        ``p`` reaches output position ``tap_out[p, t]`` through kernel tap ``tap_kernel[p, t]``
        for ``t < tap_count[p]`` (the geometry, tabulated once: no division per tap)."""
        per_group, c_out = kernel.shape[1], kernel.shape[2]
        per_out = c_out // groups
        for b in prange(out.shape[0]):
            out_b = out[b]
            for e in range(ev_count[b]):
                i = ev_index[b, e]
                value = ev_value[b, e]
                position = i // channels
                c = i - position * channels
                g = 0 if groups == 1 else c // per_group
                ci = c - g * per_group
                first = g * per_out
                for t in range(tap_count[position]):
                    base = tap_out[position, t] * c_out + first
                    # contiguous rows: the inner loop vectorizes
                    row = out_b[base:base + per_out]
                    weights = kernel[tap_kernel[position, t], ci, first:first + per_out]
                    for o in range(per_out):
                        row[o] += value * weights[o]

    @jit
    def scatter_dense(ev_index, ev_value, ev_count, kernel, out):
        """Events through a dense layer (kernel inputs x outputs), added into ``out``."""
        n_out = kernel.shape[1]
        for b in prange(out.shape[0]):
            row = out[b]
            for e in range(ev_count[b]):
                value = ev_value[b, e]
                weights = kernel[ev_index[b, e]]
                for o in range(n_out):
                    row[o] += value * weights[o]

    @jit
    def map_events(ev_index, ev_value, ev_count, targets, weights, channels, new_index,
                   new_value, new_count):
        """Events through average pooling: each to every pooled cell whose window holds it,
        times 1 / (cells in that window) (``SparsePool``'s tables)."""
        for b in prange(ev_index.shape[0]):
            k = 0
            for e in range(ev_count[b]):
                i = ev_index[b, e]
                c = i % channels
                position = i // channels
                for w in range(targets.shape[1]):
                    weight = weights[position, w]
                    if weight != 0:
                        new_index[b, k] = targets[position, w] * channels + c
                        new_value[b, k] = ev_value[b, e] * weight
                        k += 1
            new_count[b] = k

    @jit
    def gather_active(drive, voltage, active, n_active, drive_out, voltage_out):
        """The neurons with a positive drive (or a voltage at the threshold), first in each
        row: their indices, drives and voltages."""
        for b in prange(drive.shape[0]):
            k = 0
            for j in range(drive.shape[1]):
                # (a start at the threshold: a float64 draw below 1 rounded up in float32)
                if drive[b, j] > 0 or voltage[b, j] >= 1:
                    active[b, k] = j
                    drive_out[b, k] = drive[b, j]
                    voltage_out[b, k] = voltage[b, j]
                    k += 1
            n_active[b] = k

    @jit
    def return_counts(active, n_active, gathered, counts):
        """The gathered neurons' counts, added back at their indices."""
        for b in prange(counts.shape[0]):
            for a in range(n_active[b]):
                counts[b, active[b, a]] += gathered[b, a]

    @jit
    def events_to_dense(ev_index, ev_value, ev_count, out):
        """Events written into a dense array (several events to one cell add up)."""
        for b in prange(out.shape[0]):
            row = out[b]
            row[:] = 0
            for e in range(ev_count[b]):
                row[ev_index[b, e]] += ev_value[b, e]

    _KERNELS.update(gather_active=gather_active, return_counts=return_counts,
                    neuron_step=neuron_step, scatter_conv=scatter_conv,
                    scatter_dense=scatter_dense, map_events=map_events,
                    events_to_dense=events_to_dense)
    return _KERNELS


def available() -> bool:
    """Whether numba imports (the engine's one extra dependency)."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


#: The ops this engine computes (exact types: a subclass may compute something else).
_WEIGHTED = (DenseOp, Conv2DOp, Conv1DOp)
_POOLS = (AvgPool2DOp, AvgPool1DOp)
_MOVES = (ReshapeOp, ReshapeLayerOp, IdentityOp)  # no-ops on flat, C-ordered examples


def _compiled_op(stage: Stage) -> bool:
    """Whether this engine computes the stage's weighted op (a dense layer only on vectors:
    Keras applies one on a sequence position by position)."""
    if type(stage.op) is DenseOp:
        return len(stage.input_shape) == 1
    return type(stage.op) in _WEIGHTED


def plan(network: SpikingNetwork, model: NeuronModel, input: str
         ) -> tuple[list | None, str | None]:
    """(segments, None) when this engine can run the simulation, else (None, why not).

    The segments of a chain are :func:`snnlib.sim.event_driven.segments`' with the weighted
    stages this engine computes (dense and convolution layers of any geometry); a graph has
    none (``[]``: :func:`run_graph` runs it stage by stage).
    """
    if not available():
        return None, "numba is not installed (pip install numba)"
    if type(model) not in _KINDS:
        return None, (f"the neuron model {type(model).__name__} is not one of snnlib's own "
                      f"({', '.join(kind.name for kind in _KINDS)}); the other engines run it")
    if not network.is_chain:
        try:
            event_driven.check_graph(network)
        except event_driven.Unsupported as err:
            return None, str(err)
        if input != "constant" and any(s.op.gated for s in network.stages):
            return None, "a spiking max pool reads the Poisson input"
        return [], None  # a graph runs stage by stage (run_graph): no segments
    try:
        segments = event_driven.segments(network, weighted_op=_compiled_op)
    except event_driven.Unsupported as err:
        return None, str(err)
    stages = network.stages
    first = next(i for i, s in enumerate(stages) if s.spiking)
    if input != "constant" and any(s.op.gated for s in stages[:first + 1]):
        return None, "a spiking max pool reads the Poisson input"
    for maps, weighted, spiking in segments:
        for i in maps:
            if type(stages[i].op) not in _POOLS + _MOVES:
                return None, f"stage {stages[i].name!r} ({stages[i].kind}) has no compiled form"
        for i in range(weighted + 1, len(stages) if spiking is None else spiking):
            if type(stages[i].op) not in _MOVES:
                return None, (f"stage {stages[i].name!r} ({stages[i].kind}) follows the "
                              f"weighted stage {stages[weighted].name!r}; it needs neurons "
                              "between them")
    return segments, None


def _conv_arguments(stage: Stage, dtype: np.dtype) -> tuple:
    """:func:`scatter_conv`'s kernel and tables for a convolution stage (a Conv1D as a
    height-1 image): for every input position, the output positions it reaches and through
    which kernel tap, from the strides, padding and dilation."""
    op = stage.op
    if type(op) is Conv1DOp:
        kernel = op.kernel[None]
        (h, w, c), (oh, ow) = (1,) + tuple(stage.input_shape), (1, stage.output_shape[0])
        (sy, sx), (dy, dx) = (1,) + tuple(op.strides), (1,) + tuple(op.dilation)
        pt = 0
        if op.padding == "causal":
            pl = (op.kernel.shape[0] - 1) * dx
        elif op.padding == "same":
            pl = same_padding(w, (op.kernel.shape[0] - 1) * dx + 1, sx)[0]
        else:
            pl = 0
    else:
        kernel = op.kernel
        h, w, c = stage.input_shape
        oh, ow = stage.output_shape[:2]
        (sy, sx), (dy, dx) = tuple(op.strides), tuple(op.dilation)
        pt = pl = 0
        if op.padding == "same":
            pt = same_padding(h, (kernel.shape[0] - 1) * dy + 1, sy)[0]
            pl = same_padding(w, (kernel.shape[1] - 1) * dx + 1, sx)[0]
    kh, kw = kernel.shape[:2]
    y, x = np.divmod(np.arange(h * w), w)
    outs, taps = [], []
    for ky in range(kh):
        for kx in range(kw):
            oy, ry = np.divmod(y + pt - ky * dy, sy)
            ox, rx = np.divmod(x + pl - kx * dx, sx)
            reached = (ry == 0) & (rx == 0) & (oy >= 0) & (oy < oh) & (ox >= 0) & (ox < ow)
            outs.append(np.where(reached, oy * ow + ox, -1))
            taps.append(np.full(h * w, ky * kw + kx))
    outs, taps = np.stack(outs, axis=1), np.stack(taps, axis=1)
    # the reached taps of each position first (a stable sort keeps them in kernel order)
    order = np.argsort(outs < 0, axis=1, kind="stable")
    tap_out = np.take_along_axis(outs, order, axis=1).astype(np.int64)
    tap_kernel = np.take_along_axis(taps, order, axis=1).astype(np.int64)
    tap_count = (outs >= 0).sum(axis=1).astype(np.int64)
    kernel = np.ascontiguousarray(kernel.reshape(kh * kw, *kernel.shape[2:]), dtype=dtype)
    return kernel, tap_out, tap_kernel, tap_count, int(c), int(op.groups)


class _Pool:
    """Average pooling of events (``SparsePool``'s tables) into buffers of its own."""

    def __init__(self, stage: Stage, batch: int, dtype: np.dtype, capacity: int) -> None:
        # ``capacity``: the most events per example it reads; each goes to up to ``width``
        # cells, which may repeat (no merging)
        pool = stage.op.sparse_events(stage.input_shape, stage.output_shape)
        self.capacity = capacity * pool.targets.shape[1]
        self.tables = (pool.targets.astype(np.int64), pool.weights.astype(dtype), int(pool.c))
        self.buffers = (np.empty((batch, self.capacity), np.int64),
                        np.empty((batch, self.capacity), dtype), np.empty(batch, np.int64))

    def __call__(self, kernels: dict, events: tuple, batch: int) -> tuple:
        """The pooled events of the first ``batch`` examples."""
        pooled = tuple(buffer[:batch] for buffer in self.buffers)
        kernels["map_events"](*events, *self.tables, *pooled)
        return pooled


class _Scatter:
    """A weighted stage (dense or convolution) computed from its input's events."""

    def __init__(self, stage: Stage, batch: int, dtype: np.dtype) -> None:
        self.conv = None if type(stage.op) is DenseOp else _conv_arguments(stage, dtype)
        self.kernel = np.ascontiguousarray(stage.op.kernel, dtype=dtype)
        self.size = int(np.prod(stage.output_shape))
        bias = np.zeros(1, dtype) if stage.bias is None else np.asarray(stage.bias, dtype)
        self.bias = np.ascontiguousarray(np.broadcast_to(bias, stage.output_shape)).reshape(-1)
        self.z = np.empty((batch, self.size), dtype)

    def __call__(self, kernels: dict, events: tuple, batch: int) -> np.ndarray:
        """This step's ``W h`` (without the bias) of the first ``batch`` examples."""
        z = self.z[:batch]
        z.fill(0)
        if self.conv is None:
            kernels["scatter_dense"](*events, self.kernel, z)
        else:
            kernels["scatter_conv"](*events, *self.conv, z)
        return z


class _Link:
    """One segment of a chain: the events of a spiking layer, through its maps and its
    weighted stage, to the next spiking layer (or the output)."""

    def __init__(self, stages: list[Stage], maps: tuple, weighted: int, batch: int,
                 dtype: np.dtype, events: int) -> None:
        # (buffers for ``batch`` examples; a step may use the first rows only; ``events``: the
        # most events the source layer lists per example, one per neuron)
        self.maps = []
        for i in maps:
            if type(stages[i].op) in _POOLS:  # (reshapes move nothing)
                self.maps.append(_Pool(stages[i], batch, dtype, events))
                events = self.maps[-1].capacity
        self.scatter = _Scatter(stages[weighted], batch, dtype)
        self.size, self.bias = self.scatter.size, self.scatter.bias

    def current(self, kernels: dict, events: tuple, batch: int) -> np.ndarray:
        """This step's ``W h`` (without the bias) of the first ``batch`` examples of the
        buffers, from the source layer's events."""
        for pool in self.maps:
            events = pool(kernels, events, batch)
        return self.scatter(kernels, events, batch)


def run_chunk(network: SpikingNetwork, stages: list[Stage], segments: list, x: np.ndarray,
              neurons: dict[str, LayerState], current: np.ndarray | None, *, n_steps: int,
              dtype: np.dtype, synapse: Lowpass | None, rng: np.random.Generator,
              prefix: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Simulate a batch of a chain on this engine; return its output (examples x steps x
    outputs). The layers' counts and recorded spikes are updated in ``neurons``.

    ``current`` is the first spiking layer's input current for a constant input, simulated in
    parts of :data:`CHUNK` examples (whose state stays in the CPU's caches). None: a Poisson
    input, whose spikes ``prefix(h)`` turns into that current at every step, as the dense
    engine's :func:`snnlib.sim.simulator._prefix`; then the whole batch runs at once, so that
    the random draws are the dense engine's.
    """
    kernels = _compile()
    output = np.zeros((len(x), n_steps, int(np.prod(network.output_shape))), dtype=dtype)
    size = len(x) if current is None else min(CHUNK, len(x))
    first = next(i for i, s in enumerate(stages) if s.spiking)
    sources = [first] + [s for _, _, s in segments[:-1]]
    links = [_Link(stages, maps, weighted, size, dtype, int(np.prod(stages[source].output_shape)))
             for (maps, weighted, _), source in zip(segments, sources, strict=True)]
    widest = max(int(np.prod(s.output_shape)) for s in stages if s.spiking)
    events = (np.empty((size, widest), np.int64), np.empty((size, widest), dtype),
              np.empty(size, np.int64))
    with _LOCK:
        for start in range(0, len(x), size):
            part = slice(start, start + size)
            _run(network, stages, segments, x[part], neurons, kernels, links, events,
                 None if current is None else current[part], part, output[part],
                 n_steps=n_steps, dtype=dtype, synapse=synapse, rng=rng, prefix=prefix)
    return output


def _layer_arguments(layer: LayerState, part: slice, dtype: np.dtype) -> dict:
    """The kernel's arguments that describe a layer's examples ``part``."""
    model, cast = layer.model, dtype.type
    lif = isinstance(model, LIF)
    voltage = layer.voltage[part]
    rows = (len(voltage), -1)
    recording = layer.spikes is not None
    record = layer.spikes[part] if recording else np.zeros((1, 1, 1), np.int32)
    return dict(
        voltage=voltage.reshape(rows),
        refractory=(layer.state["refractory_time"][part].reshape(rows) if lif
                    else np.zeros((1, 1), dtype)),
        counts=layer.counts[part].reshape(rows),
        record=record.reshape(record.shape[0], record.shape[1], -1), recording=recording,
        kind=_KINDS[type(model)], gain=cast(layer.gain), dt=cast(layer.dt),
        zero_reset=model.reset == "zero", capped=model.max_spikes_per_step is not None,
        tau_rc=cast(model.tau_rc if lif else 1.0), tau_ref=cast(model.tau_ref if lif else 0.0),
        min_voltage=cast(model.min_voltage if lif else 0.0), out_scale=cast(layer.out_scale))


def _call(kernel: Callable, arguments: dict, **more: Any) -> None:
    """A kernel called with its arguments in order (numba's keyword matching costs more)."""
    arguments = {**arguments, **more}
    kernel(*(arguments[name] for name in _NEURON_ARGUMENTS))


#: neuron_step's parameters, in order.
_NEURON_ARGUMENTS = ("voltage", "inp", "bias", "active", "n_active", "refractory", "counts",
                     "record", "recording", "t", "kind", "is_drive", "gain", "dt",
                     "zero_reset", "capped", "tau_rc", "tau_ref", "min_voltage", "out_scale",
                     "ev_index", "ev_value", "ev_count")


def _run(network: SpikingNetwork, stages: list[Stage], segments: list, x: np.ndarray,
         neurons: dict, kernels: dict, links: list[_Link], events: tuple,
         current: np.ndarray | None, part: slice, output: np.ndarray, *, n_steps: int,
         dtype: np.dtype, synapse: Lowpass | None, rng: np.random.Generator,
         prefix: Callable[[np.ndarray], np.ndarray]) -> None:
    """Simulate the examples ``part`` of the batch (``x``: theirs) into ``output``, with the
    links' and the events' buffers."""
    batch = len(x)
    first = next(i for i, s in enumerate(stages) if s.spiking)
    layer0 = neurons[network.stages[first].name]
    arguments = [_layer_arguments(layer0, part, dtype)] + [
        None if s is None else _layer_arguments(neurons[network.stages[s].name], part, dtype)
        for _, _, s in segments]
    events = tuple(buffer[:batch] for buffer in events)
    events_of = dict(ev_index=events[0], ev_value=events[1], ev_count=events[2])
    every = dict(active=np.zeros((1, 1), np.int64), n_active=np.full(1, -1, np.int64))
    constant = current is not None
    first_layer = (_constant_drive(kernels, layer0, arguments[0], current, dtype) if constant
                   else {**arguments[0], **every, "bias": np.zeros(arguments[0]["voltage"].shape[1],
                                                                   dtype)})
    filtered = [np.zeros((batch, link.size), dtype) if synapse is not None else None
                for link in links]
    for t in range(n_steps):
        if not constant:
            spikes_in = (rng.random(x.shape) < x).astype(dtype)
            first_layer.update(inp=np.ascontiguousarray(prefix(spikes_in).reshape(batch, -1)),
                               is_drive=False)
        _call(kernels["neuron_step"], first_layer, t=t, **events_of)
        for link, layer_arguments, state in zip(links, arguments[1:], filtered, strict=True):
            z = link.current(kernels, events, batch)
            if state is None:
                h, bias = z, link.bias
            else:  # as the event-driven engine: read the filter, then update it with W h
                h, bias = state + link.bias, np.zeros_like(link.bias)
                synapse.update(state, z)
            if layer_arguments is None:
                output[:, t] = h + bias
            else:
                _call(kernels["neuron_step"], layer_arguments, inp=np.ascontiguousarray(h),
                      bias=bias, t=t, is_drive=False, **every, **events_of)
    _return_counts(kernels, first_layer, arguments[0])


def _constant_drive(kernels: dict, layer: LayerState, arguments: dict, current: np.ndarray,
                    dtype: np.dtype) -> dict:
    """The kernel's arguments for a layer with a constant input ``current`` (examples x
    neurons): its drive, computed once (the neuron model's own NumPy rule; LIF's "drive" is
    its input current J).

    A constant drive d <= 0 never lifts a voltage that starts below the threshold, so those
    neurons never spike: only the others are updated, gathered (their voltages are not
    returned, their counts by :func:`_return_counts`; a start at the threshold itself counts
    as another). LIF neurons are all updated (a voltage decays).
    """
    batch = len(current)
    drive = layer.model.drive(current.reshape(batch, -1), layer.gain, layer.dt)
    out = {**arguments, "active": np.zeros((1, 1), np.int64), "n_active": np.full(1, -1, np.int64),
           "bias": np.zeros(1, dtype), "is_drive": True,
           "inp": np.ascontiguousarray(drive.astype(dtype, copy=False))}
    if not isinstance(layer.model, LIF):
        gathered = dict(active=np.empty(drive.shape, np.int64),
                        n_active=np.empty(batch, np.int64), inp=np.empty_like(out["inp"]),
                        voltage=np.empty_like(out["voltage"]),
                        counts=np.zeros_like(out["voltage"]))
        kernels["gather_active"](out["inp"], out["voltage"], gathered["active"],
                                 gathered["n_active"], gathered["inp"], gathered["voltage"])
        out.update(gathered)
    return out


def _return_counts(kernels: dict, gathered: dict, arguments: dict) -> None:
    """A gathered layer's counts (:func:`_constant_drive`), back in the layer's."""
    if gathered["n_active"][0] >= 0:
        kernels["return_counts"](gathered["active"], gathered["n_active"], gathered["counts"],
                                 arguments["counts"])


# --------------------------------------------------------------------------------------------
# Graphs: joins and fan-out, stage by stage
# --------------------------------------------------------------------------------------------

class _GraphStage:
    """How this engine computes one stage of a graph at every step, with its buffers.

    A stage passes on either events (a spiking stage's spikes, or their image through average
    pooling, flatten or reshape) or a dense array (anything else, and a spiking stage's
    filtered spikes when there is a synapse). A weighted op reading one stage's events
    scatters them (``how = "scatter"``); a join, or an op without a compiled form, reads its
    inputs densely (events are first written into a dense array) and runs its NumPy form, as
    the dense engine (``how = "dense"``).
    """

    def __init__(self, stages: list[Stage], i: int, sources: list[int], emits: dict,
                 capacity: dict, batch: int, dtype: np.dtype, *, spiking: bool,
                 synapse: bool) -> None:
        stage = stages[i]
        self.stage, self.sources, self.spiking = stage, sources, spiking
        self.shape = tuple(stage.output_shape)
        self.size = int(np.prod(self.shape))
        single_events = len(sources) == 1 and emits[sources[0]]
        plain = stage.bias is None and stage.activation is None and not spiking
        self.pool = self.scatter = None
        if single_events and plain and type(stage.op) in _MOVES:
            self.how = "move"  # flat, C-ordered events stay what they are
            capacity[i] = capacity[sources[0]]
        elif single_events and plain and type(stage.op) in _POOLS:
            self.how = "pool"
            self.pool = _Pool(stage, batch, dtype, capacity[sources[0]])
            capacity[i] = self.pool.capacity
        else:
            self.how = "scatter" if single_events and _compiled_op(stage) else "dense"
            if self.how == "scatter":
                self.scatter = _Scatter(stage, batch, dtype)
            capacity[i] = self.size
        emits[i] = self.how in ("move", "pool") or (spiking and not synapse)
        self.events = ((np.empty((batch, self.size), np.int64),
                        np.empty((batch, self.size), dtype), np.empty(batch, np.int64))
                       if spiking else None)
        self.dense = np.empty((batch, self.size), dtype)  # where events are written densely
        self.filtered = np.zeros((batch, self.size), dtype) if spiking and synapse else None
        self.no_bias = np.zeros(self.size, dtype)  # (the kernel reads one per neuron)

    def current(self, kernels: dict, values: dict, batch: int, dtype: np.dtype
                ) -> tuple[np.ndarray, np.ndarray | None]:
        """This step's linear output (batch x size) and the bias still to add to it (None:
        added)."""
        if self.scatter is not None:
            return self.scatter(kernels, values[self.sources[0]].events, batch), \
                self.scatter.bias
        args = [_dense(kernels, values[j], batch) for j in self.sources]
        z = self.stage.linear(args if self.stage.op.join else args[0])
        return np.ascontiguousarray(z.reshape(batch, -1), dtype=dtype), None


class _Events:
    """A stage's events at one step, and its dense value on demand: a spiking stage's events
    written into a dense array (each neuron once: exact), a move's or a pool's computed from
    its source's dense value (``source``, ``op``) as the dense engine computes it (pooled
    events add ``spike / cells`` products one by one, which rounds otherwise than the pool's
    ``sum / cells``)."""

    __slots__ = ("events", "out", "shape", "source", "op", "dense")

    def __init__(self, events: tuple, out: np.ndarray, shape: tuple,
                 source: _Events | None = None, op: Callable | None = None) -> None:
        self.events, self.out, self.shape, self.source, self.op = events, out, shape, source, op
        self.dense = None


def _dense(kernels: dict, value: _Events | np.ndarray, batch: int) -> np.ndarray:
    """A stage's value as a dense array (batch, ...)."""
    if not isinstance(value, _Events):
        return value
    if value.dense is None:
        if value.source is None:
            out = value.out[:batch]
            kernels["events_to_dense"](*value.events, out)
            value.dense = out.reshape((batch,) + value.shape)
        else:
            source = _dense(kernels, value.source, batch)
            value.dense = (source if value.op is None else value.op(source)).reshape(
                (batch,) + value.shape)
    return value.dense


def run_graph(network: SpikingNetwork, stages: list[Stage], x: np.ndarray,
              neurons: dict[str, LayerState], *, fixed: dict, currents: dict, n_steps: int,
              dtype: np.dtype, synapse: Lowpass | None, rng: np.random.Generator,
              ) -> np.ndarray:
    """Simulate a batch of a graph (joins, fan-out) on this engine; return its output
    (examples x steps x outputs). The layers' counts and recorded spikes are updated in
    ``neurons``.

    ``fixed``: index -> the batch's output of each stage that no neurons feed (index -1: the
    input), computed once; ``currents``: index -> the constant input current of each spiking
    stage that reads only those (as a chain's first layer: its drive is computed once). Both
    empty: a Poisson input, drawn at every step for the whole batch as the dense engine
    draws it. Every other stage is computed at every step, in order (:class:`_GraphStage`);
    with a synapse, a spiking stage passes on its filtered spikes, as the dense engine.
    """
    kernels = _compile()
    constant = -1 in fixed
    size = min(CHUNK, len(x)) if constant else len(x)
    sources = network.sources()
    emits: dict = {-1: False} | {j: False for j in fixed}
    capacity: dict = {}
    nodes = {}
    for i in range(len(stages)):
        if i not in fixed:
            nodes[i] = _GraphStage(stages, i, sources[i], emits, capacity, size, dtype,
                                   spiking=network.stages[i].spiking,
                                   synapse=synapse is not None)
    output = np.zeros((len(x), n_steps, int(np.prod(network.output_shape))), dtype=dtype)
    with _LOCK:
        for start in range(0, len(x), size):
            part = slice(start, start + size)
            _run_graph_part(network, nodes, x[part], neurons, kernels, part, output[part],
                            fixed={j: v[part] for j, v in fixed.items()},
                            currents={i: c[part] for i, c in currents.items()},
                            n_steps=n_steps, dtype=dtype, synapse=synapse, rng=rng)
    return output


def _run_graph_part(network: SpikingNetwork, nodes: dict, x: np.ndarray, neurons: dict,
                    kernels: dict, part: slice, output: np.ndarray, *, fixed: dict,
                    currents: dict, n_steps: int, dtype: np.dtype, synapse: Lowpass | None,
                    rng: np.random.Generator) -> None:
    """Simulate the examples ``part`` of a graph's batch (``x``, ``fixed``, ``currents``:
    theirs) into ``output``."""
    batch = len(x)
    every = dict(active=np.zeros((1, 1), np.int64), n_active=np.full(1, -1, np.int64))
    arguments, own, events_of = {}, {}, {}
    for i, node in nodes.items():
        if node.filtered is not None:  # (buffers shared by the parts of a batch)
            node.filtered.fill(0)
        if node.spiking:
            layer = neurons[network.stages[i].name]
            own[i] = _layer_arguments(layer, part, dtype)
            arguments[i] = (_constant_drive(kernels, layer, own[i], currents[i], dtype)
                            if i in currents else {**own[i], **every})
            events = tuple(buffer[:batch] for buffer in node.events)
            events_of[i] = (events, dict(ev_index=events[0], ev_value=events[1],
                                         ev_count=events[2]))
    last = len(network.stages) - 1
    for t in range(n_steps):
        values = dict(fixed)
        if -1 not in values:  # a Poisson input
            values[-1] = (rng.random(x.shape) < x).astype(dtype)
        for i, node in nodes.items():
            if node.how in ("move", "pool"):
                source = values[node.sources[0]]
                events = (source.events if node.pool is None
                          else node.pool(kernels, source.events, batch))
                values[i] = _Events(events, node.dense, node.shape, source,
                                    None if node.pool is None else node.stage.op)
                continue
            if node.spiking:
                events, named = events_of[i]
                if i in currents:
                    _call(kernels["neuron_step"], arguments[i], t=t, **named)
                else:
                    z, bias = node.current(kernels, values, batch, dtype)
                    _call(kernels["neuron_step"], arguments[i], inp=z, t=t, is_drive=False,
                          bias=node.no_bias if bias is None else bias, **named)
                value = _Events(events, node.dense, node.shape)
                if node.filtered is not None:  # read the filter, then update it (as Nengo)
                    value = synapse.step(node.filtered[:batch],
                                         _dense(kernels, value, batch).reshape(batch, -1))
                    value = value.reshape((batch,) + node.shape)
                values[i] = value
            else:
                z, bias = node.current(kernels, values, batch, dtype)
                z = z if bias is None else z + bias
                values[i] = node.stage.activate(z).reshape((batch,) + node.shape)
        output[:, t] = _dense(kernels, values[last], batch).reshape(batch, -1)
    for i in currents:
        _return_counts(kernels, arguments[i], own[i])
