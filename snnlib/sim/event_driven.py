"""The event-driven engine of :func:`snnlib.sim.simulator.simulate`: compute from the spikes alone.

At the usual firing-rate scales only a few percent of the neurons spike in a step, so the
linear operation out of a spiking layer is computed from its spikes alone, as the op's sparse
form (:meth:`snnlib.network.ops.Op.sparse`): a convolution as a sparse "im2col" matrix times the
kernel,
a dense layer as a sparse (examples x inputs) matrix times the kernel. Ops without weights
between a spiking layer and the next weighted op map the events first
(:meth:`snnlib.network.ops.Op.sparse_events`): average pooling sends each spike, scaled by 1 /
(cells
in the window), to the pooled cell(s) it falls in; a flatten passes it on. When more than
:data:`SPARSE_THRESHOLD` of a layer's neurons spike in a step (:data:`DENSE_THRESHOLD` for a
dense layer, whose sparse product is cheap), that step uses the dense operation.
The neurons are updated by the neuron model's sparse step
(:meth:`snnlib.sim.neurons.NeuronModel.step_sparse`: the spike condition and the reset only where
a neuron reaches the threshold). The first spiking layer, whose input is constant, is computed
in closed form when its model has one
(:meth:`~snnlib.sim.neurons.NeuronModel.constant_drive_spikes`:
its spikes are enumerated at once), else step by step.

A graph (joins, fan-out: :func:`run_graph_chunk`) runs stage by stage: a spiking stage's
output is its events, a stage with a sparse form reads them (a weighted op, or an event map
such as pooling, whose output stays events), and a join (``Add``, ``Concatenate``) reads its
inputs densely, as the dense engine. Graphs run without a synapse; a spiking max pool (its
gate's state) runs on the dense engine only.

Results: the spike counts are those of the dense engine except where a changed summation order
(the sparse sums, the synapse applied after the linear operation rather than before) moves a
voltage across an integer by rounding: in float64 this changes no spike count in the tests
(tests/test_event_driven.py compares both engines on the book's convnet, on networks with
batch normalization and average pooling between spiking layers, and on a graph with a
residual sum, a concatenation, a subtraction, an average and fan-out); in float32 a rare
neuron may spike a step earlier or later and outputs differ by float32 rounding.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from snnlib.network import SpikingNetwork, Stage
    from snnlib.network.ops import SparseLinear
    from snnlib.sim.simulator import LayerState
    from snnlib.sim.synapses import Lowpass

__all__ = [
    "SPARSE_THRESHOLD",
    "DENSE_THRESHOLD",
    "Unsupported",
    "run_graph_chunk",
]

#: Largest fraction of a layer's neurons spiking in a step for which the next linear operation
#: is computed from the spikes alone (above it, the dense operation is used for that step).
#: With ``method="auto"`` it also decides, per chunk of examples, whether this engine runs: the
#: first spiking layer's mean spikes per neuron and step must not exceed it.
SPARSE_THRESHOLD = 0.015
#: The same for a dense layer (its sparse product costs ~ spikes x outputs: cheap).
DENSE_THRESHOLD = 0.3


class Unsupported(ValueError):
    """The network has a stage this engine cannot compute from spikes (the message says which)."""


def segments(network: SpikingNetwork, weighted_op: Callable[[Stage], bool] | None = None
             ) -> list[tuple[tuple[int, ...], int, int | None]]:
    """The linear maps between spiking layers, for this engine (or, with ``weighted_op``, for
    an engine that computes the stages it accepts: the compiled one).

    Returns a list of (event map stage indices, weighted stage index, spiking stage index or
    None) for each group of stages after the first spiking one: stages without weights or bias
    whose op maps events to events (:meth:`snnlib.network.ops.Op.sparse_events`: reshape, identity,
    average pooling), then exactly one stage whose op has a sparse form (dense, convolution),
    then stages that only move elements, ending in a spiking stage or in the output.

    Raises
    ------
    Unsupported
        Saying which stage (or what) this engine cannot handle.
    """
    if weighted_op is None:
        def weighted_op(stage: Stage) -> bool:
            return stage.op.sparse(stage.input_shape, stage.output_shape) is not None
    stages = network.stages
    if not network.is_chain:
        check_graph(network)
        return []  # a graph runs stage by stage (run_graph_chunk): no segments
    first = next((i for i, s in enumerate(stages) if s.spiking), None)
    if first is None:
        raise Unsupported("the network has no spiking layer")
    gated = [s.name for s in stages[first + 1:] if s.op.gated]
    if gated:
        raise Unsupported(f"stage {gated[0]!r} is a spiking max pool (its gate keeps each "
                          "input's spike count); this engine has no such state")
    if stages[-1].spiking:
        raise Unsupported(f"the last stage {stages[-1].name!r} spikes; it needs a linear readout")
    rectified = [s.name for s in stages if s.activation is not None and not s.spiking]
    if rectified:
        raise Unsupported(f"stage {rectified[0]!r} applies a ReLU without neurons (a rectified "
                          "readout); this engine reads linear outputs only")
    found, maps, weighted = [], [], None
    for i in range(first + 1, len(stages)):
        s = stages[i]
        if weighted_op(s):
            if weighted is not None:
                raise Unsupported(f"stages {stages[weighted].name!r} and {s.name!r} follow each "
                                  "other without spiking neurons in between")
            weighted = i
        elif s.bias is not None or s.spiking:
            what = ("weights without a sparse form" if s.has_weights
                    else "a bias or neurons but no weights")
            raise Unsupported(f"stage {s.name!r} ({s.kind}) has no sparse form ({what})")
        elif weighted is None:
            if s.op.sparse_events(s.input_shape, s.output_shape) is None:
                raise Unsupported(f"stage {s.name!r} ({s.kind}) has no sparse form on spikes")
            maps.append(i)  # e.g. average pooling of the spikes
        elif s.op.arithmetic:
            raise Unsupported(f"stage {s.name!r} ({s.kind}) has no sparse form after the "
                              f"weighted stage {stages[weighted].name!r}")
        if s.spiking or i == len(stages) - 1:
            if weighted is None:
                raise Unsupported(f"nothing with weights leads to stage {s.name!r}")
            found.append((tuple(maps), weighted, i if s.spiking else None))
            maps, weighted = [], None
    return found


def check_graph(network: SpikingNetwork) -> None:
    """Raise :class:`Unsupported` unless :func:`run_graph_chunk` can run the graph ``network``."""
    if not any(s.spiking for s in network.stages):
        raise Unsupported("the network has no spiking layer")
    if network.stages[-1].spiking:
        raise Unsupported(f"the last stage {network.stages[-1].name!r} spikes; it needs a "
                          "linear readout")
    # a max pool reading spikes needs its gate; before any neurons (a constant input) it is
    # exact, computed once
    sources, static = network.sources(), []
    for i, stage in enumerate(network.stages):
        static.append(not stage.spiking and all(j < 0 or static[j] for j in sources[i]))
    gated = [s.name for i, s in enumerate(network.stages)
             if s.op.gated and any(j >= 0 and not static[j] for j in sources[i])]
    if gated:
        raise Unsupported(f"stage {gated[0]!r} is a spiking max pool (its gate keeps each "
                          "input's spike count); this engine has no such state")


def _record(layer: LayerState, flat: np.ndarray, n: np.ndarray, t: int) -> None:
    if layer.spikes is not None:
        spikes = layer.spikes.reshape(layer.spikes.shape[0], layer.spikes.shape[1], -1)
        example, j = np.divmod(flat, spikes.shape[2])
        spikes[example, t, j] = n


def _constant_drive_events(layer: LayerState, current: np.ndarray, n_steps: int
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spikes of a layer with a constant current, by step: (flat, count, bounds).

    The spikes of step t are ``flat[bounds[t]:bounds[t + 1]]`` (counts likewise); the layer's
    spike counts are updated.
    """
    dtype = layer.voltage.dtype
    drive = layer.model.drive(current.reshape(-1), layer.gain, layer.dt).astype(dtype, copy=False)
    step, flat, count = layer.model.constant_drive_spikes(layer.voltage.reshape(-1), drive,
                                                          n_steps, layer.dt)
    # a stable sort of 16-bit keys is a radix sort in NumPy: linear in the number of events
    order = np.argsort(step.astype(np.uint16 if n_steps < 2 ** 16 else np.int64), kind="stable")
    flat, count = flat[order], count[order]
    counts = layer.counts.reshape(-1)
    counts += np.bincount(flat, weights=count, minlength=len(counts)).astype(dtype)
    bounds = np.concatenate([[0], np.cumsum(np.bincount(step, minlength=n_steps))])
    return flat, count, bounds


def _sparse_step(layer: LayerState, drive: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray]:
    """One step of a layer on flat arrays: the model's sparse step, counted and recorded."""
    flat, n = layer.model.step_sparse(layer.voltage.reshape(-1), drive, layer.dt)
    layer.counts.reshape(-1)[flat] += n
    _record(layer, flat, n, t)
    return flat, n


def _dense(flat: np.ndarray, values: np.ndarray, batch: int, size: int, shape: tuple,
           pre: list, linear: SparseLinear) -> np.ndarray:
    """A step with many spikes: the ops on the dense spike array, as the dense engine."""
    h = np.zeros(size, dtype=values.dtype)
    h[flat] = values
    h = h.reshape(shape)
    for op in pre:
        h = op(h)
    return linear.op(h).reshape(batch, -1)


def run_chunk(network: SpikingNetwork, stages: list[Stage], segments: list, x: np.ndarray,
              neurons: dict[str, LayerState], current: np.ndarray, *, n_steps: int,
              dtype: np.dtype, synapse: Lowpass | None) -> tuple:
    """Simulate one chunk with this engine (``current``: the first layer's input)."""
    batch = len(x)
    first = next(i for i, s in enumerate(network.stages) if s.spiking)
    layer0 = neurons[network.stages[first].name]
    closed = layer0.model.has_closed_form
    if closed:
        flat0, count0, bounds0 = _constant_drive_events(layer0, current, n_steps)
    else:
        drive0 = layer0.model.drive(current.reshape(-1), layer0.gain, layer0.dt,
                                    out=layer0.drive.reshape(-1))
    links = []
    for map_stages, weighted, spiking in segments:
        maps = [stages[i].op.sparse_events(stages[i].input_shape, stages[i].output_shape)
                for i in map_stages]
        pre = [stages[i].op for i in map_stages]  # the same maps, dense (for dense steps)
        stage = stages[weighted]
        linear = stage.op.sparse(stage.input_shape, stage.output_shape)
        layer = neurons[network.stages[spiking].name] if spiking else None
        bias = stage.bias
        bias = (np.zeros(1, dtype) if bias is None else bias).astype(dtype)
        bias = np.broadcast_to(bias, (batch,) + tuple(stage.output_shape))
        bias = np.ascontiguousarray(bias).reshape(batch, -1)
        filtered = np.zeros_like(bias) if synapse is not None else None
        links.append((maps, pre, linear, layer, bias, filtered))
    output = np.zeros((batch, n_steps, links[-1][2].out_size), dtype=dtype)
    size0 = batch * int(np.prod(network.stages[first].output_shape))
    for t in range(n_steps):
        if closed:
            part = slice(bounds0[t], bounds0[t + 1])
            flat, n = flat0[part], count0[part]
            _record(layer0, flat, n, t)
        else:
            flat, n = _sparse_step(layer0, drive0, t)
        out_scale, size, shape = layer0.out_scale, size0, layer0.voltage.shape
        for maps, pre, linear, layer, bias, filtered in links:
            values = np.multiply(n, out_scale, dtype=dtype)
            if len(flat) > (DENSE_THRESHOLD if linear.cheap else SPARSE_THRESHOLD) * size:
                z = _dense(flat, values, batch, size, shape, pre, linear)
            else:
                for events in maps:  # e.g. pooling: the events of the weighted op's input
                    flat, values = events(flat, values)
                z = linear(flat, values, batch)
            if filtered is None:
                z += bias
                h = z
            else:
                h = filtered + bias
                synapse.update(filtered, z)
            if layer is None:
                output[:, t] = h
            else:
                drive = layer.model.drive(h.reshape(-1), layer.gain, layer.dt,
                                          out=layer.drive.reshape(-1))
                flat, n = _sparse_step(layer, drive, t)
                out_scale, size, shape = layer.out_scale, h.size, layer.voltage.shape
    counts = {name: layer.counts.astype(np.int64) for name, layer in neurons.items()}
    spikes = {name: layer.spikes for name, layer in neurons.items() if layer.spikes is not None}
    return output, counts, spikes


# --------------------------------------------------------------------------------------------
# Graphs: stage by stage, each output either events or a dense array
# --------------------------------------------------------------------------------------------

class _Events:
    """One step's spikes (or their image through an event map) of a stage: flat indices into
    the batch's ``shape`` and their values (spike amplitudes).

    The image through an event map keeps its ``source`` and the map's dense ``op``: its dense
    value is the op of the source's, as the dense engine computes it (pooled events add
    ``spike / cells`` products, which round otherwise than the pool's ``sum / cells``).
    """

    __slots__ = ("flat", "values", "shape", "source", "op")

    def __init__(self, flat: np.ndarray, values: np.ndarray, shape: tuple,
                 source: _Events | None = None, op: Callable | None = None) -> None:
        self.flat, self.values, self.shape, self.source, self.op = flat, values, shape, source, op

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def dense(self) -> np.ndarray:
        if self.source is not None:
            return self.op(self.source.dense()).reshape(self.shape)
        # a spiking stage's events: each neuron at most once
        h = np.bincount(self.flat, weights=self.values, minlength=self.size)
        return h.astype(self.values.dtype, copy=False).reshape(self.shape)


def _dense_value(value: np.ndarray | _Events) -> np.ndarray:
    return value.dense() if isinstance(value, _Events) else value


class _GraphStage:
    """What the engine needs of one stage of a graph, built once per chunk."""

    def __init__(self, stage: Stage, batch: int, dtype: np.dtype) -> None:
        self.stage, self.batch = stage, batch
        self.shape = (batch,) + tuple(stage.output_shape)
        op = stage.op
        single = not op.join
        self.linear = op.sparse(stage.input_shape, stage.output_shape) if single else None
        # an event map (pooling, flatten) only where nothing else happens in the stage
        plain = stage.bias is None and stage.activation is None and not stage.spiking
        self.events = (op.sparse_events(stage.input_shape, stage.output_shape)
                       if single and plain and self.linear is None else None)
        bias = np.zeros(1, dtype) if stage.bias is None else np.asarray(stage.bias, dtype)
        self.bias = np.ascontiguousarray(np.broadcast_to(bias, self.shape)).reshape(batch, -1)

    def current(self, args: list) -> np.ndarray | _Events:
        """The stage's linear output ``op(inputs) + bias``: from the events where the op has a
        sparse form and few inputs spike, else from the dense inputs."""
        stage, first = self.stage, args[0]
        if isinstance(first, _Events) and len(args) == 1:
            if self.events is not None and len(first.flat) <= SPARSE_THRESHOLD * first.size:
                flat, values = self.events(first.flat, first.values)
                return _Events(flat, values, self.shape, first, stage.op)
            limit = DENSE_THRESHOLD if self.linear is not None and self.linear.cheap \
                else SPARSE_THRESHOLD
            if self.linear is not None and len(first.flat) <= limit * first.size:
                z = self.linear(first.flat, first.values, self.batch)
                z += self.bias
                return z.reshape(self.shape)
        dense = [_dense_value(a) for a in args]
        return stage.linear(dense if stage.op.join else dense[0])


def run_graph_chunk(network: SpikingNetwork, stages: list[Stage], x: np.ndarray,
                    neurons: dict[str, LayerState], *, fixed: dict, currents: dict,
                    n_steps: int, dtype: np.dtype) -> np.ndarray:
    """Simulate one chunk of a graph (joins, fan-out) with this engine; return the output.

    ``fixed``: index -> output of the stages that no neurons feed (computed once, index -1 the
    input); ``currents``: index -> the constant input current of each spiking stage that reads
    only those. Each other stage is computed every step, in order, from its inputs: a spiking
    stage's output is its spikes as events, a stage with a sparse form reads events (a weighted
    op, an event map such as pooling), anything else (a join, a step with many spikes) reads
    dense inputs, as the dense engine. The spike counts are updated in
    ``neurons``.
    """
    batch = len(x)
    sources = network.sources()
    last_read: dict[int, int] = {}
    for i, row in enumerate(sources):
        for j in row:
            last_read[j] = i
    plans = {i: _GraphStage(stage, batch, dtype) for i, stage in enumerate(stages)
             if i not in fixed and i not in currents}
    closed, drives = {}, {}
    for i, current in currents.items():
        layer = neurons[network.stages[i].name]
        if layer.model.has_closed_form:
            closed[i] = _constant_drive_events(layer, current, n_steps)
        else:
            drives[i] = layer.model.drive(current.reshape(-1), layer.gain, layer.dt,
                                          out=layer.drive.reshape(-1))
    output = np.zeros((batch, n_steps, int(np.prod(network.output_shape))), dtype=dtype)
    for t in range(n_steps):
        values: dict = dict(fixed)
        for i, stage in enumerate(stages):
            if i in values:
                continue
            layer = neurons.get(network.stages[i].name)
            if i in closed:
                flat_all, count_all, bounds = closed[i]
                part = slice(bounds[t], bounds[t + 1])
                flat, n = flat_all[part], count_all[part]
                _record(layer, flat, n, t)
            elif i in drives:
                flat, n = _sparse_step(layer, drives[i], t)
            else:
                z = plans[i].current([values[j] for j in sources[i]])
                if layer is None:
                    values[i] = z if isinstance(z, _Events) else stage.activate(z)
                    flat = None
                else:
                    drive = layer.model.drive(_dense_value(z).reshape(-1), layer.gain,
                                              layer.dt, out=layer.drive.reshape(-1))
                    flat, n = _sparse_step(layer, drive, t)
            if layer is not None:
                values[i] = _Events(flat, np.multiply(n, layer.out_scale, dtype=dtype),
                                    (batch,) + tuple(stage.output_shape))
            for j in set(sources[i]):  # an output no later stage reads is dropped
                if last_read[j] == i:
                    values.pop(j, None)
        output[:, t] = _dense_value(values[len(stages) - 1]).reshape(batch, -1)
    return output

