"""What a network and a spiking run cost: rates, spikes, synaptic operations, MACs, fan-out.

Every count the library reports is computed here, once:

- :func:`rates`, :func:`mean_rates`, :func:`mean_rate`: firing rates (Hz) of a simulation;
  :func:`expected_rates`: the rates the ANN activations ask for.
- :func:`spikes_per_example`: spikes of the spiking layers per example, over the run.
- :func:`spiking_neurons`: spiking neurons per example.
- :func:`fan_out`: synapses each neuron of a spiking layer drives in the next layer.
- :func:`synaptic_operations` (SNN) and :func:`ann_operations` (ANN multiply-accumulates): an
  *energy proxy*, see the caveat in :func:`synaptic_operations`.

A *result* is a :class:`snnlib.sim.simulator.SimulationResult` (its ``layer_counts``: the counts'
summaries, always there; ``output``, ``n_steps``, ``dt``). Only :func:`rates` needs the full
per-example counts (``spike_counts``). Connection counts are *structural*: a connection counts
whether its weight is zero or not, as on hardware that stores the full kernel. Each layer type
says how many synapses an input element drives (:meth:`snnlib.network.ops.Op.fan_out`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from snnlib import validation
from snnlib.network.ops import ReshapeOp, spatial_fan_out

if TYPE_CHECKING:
    from snnlib.network import SpikingNetwork, Stage
    from snnlib.sim.simulator import SimulationResult

__all__ = [
    "rates",
    "mean_rates",
    "mean_rate",
    "spikes_per_example",
    "spiking_neurons",
    "expected_rates",
    "chain_fan_out",
    "fan_out",
    "synaptic_operations",
    "ann_operations",
]


# --------------------------------------------------------------------------------------------
# Rates and spikes
# --------------------------------------------------------------------------------------------

def _check_result(result: SimulationResult) -> None:
    if not hasattr(result, "layer_counts"):
        raise TypeError(f"result must be a SimulationResult (from snnlib.simulate), got "
                        f"{type(result).__name__}")


def rates(result: SimulationResult) -> dict[str, np.ndarray]:
    """Spiking layer name -> firing rate of every neuron (Hz), shape (batch,) + layer shape.

    Needs the full per-example counts (``result.spike_counts``: see
    :func:`snnlib.sim.simulator.simulate`'s ``keep_counts``); the other measures here do not.
    """
    _check_result(result)
    duration = result.n_steps * result.dt
    return {name: counts / duration for name, counts in result.spike_counts.items()}


def mean_rates(result: SimulationResult) -> dict[str, float]:
    """Spiking layer name -> firing rate averaged over neurons and examples (Hz)."""
    _check_result(result)
    duration = result.n_steps * result.dt
    return {name: counts.total / max(counts.pairs, 1) / duration
            for name, counts in result.layer_counts.items()}


def mean_rate(result: SimulationResult) -> float:
    """Firing rate averaged over every spiking neuron and example (Hz); 0 without neurons."""
    _check_result(result)
    layers = result.layer_counts.values()
    total_spikes = sum(counts.total for counts in layers)
    total_neurons = sum(counts.pairs for counts in layers)
    return total_spikes / max(total_neurons, 1) / (result.n_steps * result.dt)


def spikes_per_example(result: SimulationResult, *, by_layer: bool = False
                       ) -> float | dict[str, float]:
    """Spikes per example over the whole run (mean over examples).

    Parameters
    ----------
    result : SimulationResult
    by_layer : bool
        Return a dict spiking layer name -> spikes of that layer instead of the total of all
        spiking layers.
    """
    _check_result(result)
    validation.boolean(by_layer, "by_layer")
    batch = result.output.shape[0]
    layers = result.layer_counts
    if by_layer:
        return {name: counts.total / batch for name, counts in layers.items()}
    return float(sum(counts.total for counts in layers.values())) / batch


def spiking_neurons(network: SpikingNetwork) -> int:
    """Number of spiking neurons per example (all spiking layers together)."""
    return int(sum(np.prod(network.stage(name).output_shape) for name in network.spiking_layers))


def expected_rates(network: SpikingNetwork, x: np.ndarray, *,
                   scale_firing_rates: float | dict = 1.0) -> dict[str, np.ndarray]:
    """Firing rates (Hz) the neurons should have: rate-mode activation x scale, per layer.

    Parameters
    ----------
    network : SpikingNetwork
    x : ndarray, shape (batch,) + input shape
    scale_firing_rates : float or dict
        As in :func:`snnlib.sim.simulator.simulate` (Hz per unit of the network's activation).

    Returns
    -------
    dict
        Spiking layer name -> rates (Hz), shape (batch,) + layer shape, float32.
    """
    scales = network.firing_rate_scales(scale_firing_rates)
    _, activations = network.forward(x, return_all=True)
    return {name: activations[name] * np.float32(scales[name]) for name in network.spiking_layers}


# --------------------------------------------------------------------------------------------
# Connections and operations
# --------------------------------------------------------------------------------------------

def chain_fan_out(stages: list[Stage], shape: tuple) -> np.ndarray:
    """Connections of each element of an input of ``shape`` through ``stages``.

    ``stages`` is a chain without neurons in between, ending at a stage with weights (or with
    neurons). The last op decides: a dense layer reaches all its units from every element; for
    spatial ops (convolution, pooling, identity) the chain is probed position by position
    (:func:`snnlib.network.ops.spatial_fan_out`): pooling before a convolution is folded in (the
    pooled
    value is a fixed average of the spikes), and the count is of distinct target neurons.

    Returns
    -------
    ndarray of int, ``shape``
    """
    last = stages[-1]
    if last.op.all_to_all:
        return last.op.fan_out(shape)
    for i, stage in enumerate(stages[:-1]):
        if isinstance(stage.op, ReshapeOp) and all(
                s.op.one_to_one and not s.op.arithmetic for s in stages[:i + 1]):
            # only moves so far, each element to one place (C order): count from its new place
            # with the ops after it (a Reshape from 2-D maps into a Conv1D), then move back
            after = chain_fan_out(stages[i + 1:], tuple(stage.output_shape))
            return after.reshape(shape)
    for stage in stages:
        if not stage.op.spatial:
            raise ValueError(f"cannot count connections through {stage.kind} {stage.name!r} "
                             f"into the stage {last.name!r}")
    if len(shape) not in (2, 3):
        if all(stage.op.one_to_one or not stage.op.arithmetic for stage in stages):
            return np.ones(shape, dtype=np.int64)
        raise ValueError(f"expected an (h, w, channels) or (length, channels) input for "
                         f"stage {last.name!r}")
    return spatial_fan_out([stage.op for stage in stages], shape)


def _paths(network: SpikingNetwork, index: int) -> list[list[Stage]]:
    """Every path from stage ``index`` to the next stages with weights or neurons.

    A chain has one (the stages after it up to the next one with weights or neurons); a graph
    has one per route: a fan-out into two layers, or a path through a join without neurons
    (a residual sum, a concatenation) that goes on to the layer after it.
    """
    paths, stack = [], [(index, [])]
    while stack:
        i, path = stack.pop()
        for j in network.consumers(i):
            stage = network.stages[j]
            if stage.has_weights or stage.spiking:
                paths.append(path + [stage])
            else:
                stack.append((j, path + [stage]))
    return paths


def fan_out(network: SpikingNetwork, layer: str) -> np.ndarray:
    """Synapses each neuron of ``layer`` drives in the next layers with weights (or neurons);
    in a graph, summed over every route its spikes take (:func:`synaptic_operations`).

    Parameters
    ----------
    network : SpikingNetwork
    layer : str
        A spiking layer.

    Returns
    -------
    ndarray of int, layer shape
        See :func:`synaptic_operations` for the counting rule.
    """
    if not isinstance(layer, str):
        raise validation.ArgumentError(f"layer={layer!r} must be a layer name (str), e.g. one "
                                       f"of {network.spiking_layers}")
    index = [s.name for s in network.stages].index(network.stage(layer).name)
    shape = network.stages[index].output_shape
    total = np.zeros(shape, dtype=np.int64)
    for path in _paths(network, index):  # each route a spike takes: their synapses add up
        total += chain_fan_out(path, shape)
    return total


def synaptic_operations(network: SpikingNetwork, result: SimulationResult) -> dict[str, float]:
    """Synaptic operations per example: each spike times the synapses it drives.

    A spike of a neuron reaches every synapse of that neuron into the next layer with weights:
    for a dense layer of ``n_out`` units, ``n_out``; for a convolution, the number of output
    positions whose receptive field contains the neuron times the output channels, counted
    exactly from the layer's kernel size, stride and padding (about
    ``kh * kw * c_out / (sh * sw)`` away from the borders). Average pooling or flatten stages
    in between are folded in (distinct target neurons reached). In a graph, a spike counts
    the synapses of every route it takes: a fan-out into two layers, and a residual sum or a
    concatenation without neurons passes it on to the layer after the join (a join with
    neurons receives it through one synapse). Connections count whether or not their weight
    is zero. Through a spiking max pool (``spiking_max_pool=True``) every spike is counted as
    if it passed: its gate passes only the spikes of each window's leader, so the count is an
    upper bound there (by at most the window's size).

    Energy-proxy caveat: a synaptic operation (an addition triggered by an event) is cheaper
    than a multiply-accumulate on most hardware, so ``synops / MACs`` is only a proxy; it ignores
    the neuron updates every step (``neurons x n_steps``), memory traffic (which dominates on
    real chips), the analog input layer (its current is computed like in the ANN: see
    :func:`ann_operations`, ``by_layer=True``) and the fact that a spike of height > 1 in this
    simulator (several spikes in one step) counts as several operations.

    Parameters
    ----------
    network : SpikingNetwork
    result : SimulationResult
        From simulating ``network`` (its ``spike_counts``).

    Returns
    -------
    dict
        Spiking layer name -> mean synaptic operations per example over the run (float), and
        ``"total"``: their sum.
    """
    _check_result(result)
    ops = {}
    layers = result.layer_counts
    for name in network.spiking_layers:
        if name not in layers:
            raise ValueError(f"the simulation result has no spikes of layer {name!r} (layers "
                             f"{list(layers)}): pass the network that was simulated")
        counts = layers[name]
        mean = counts.per_neuron / max(counts.n_examples, 1)  # spikes per neuron and example
        ops[name] = float((mean * fan_out(network, name)).sum())
    ops["total"] = float(sum(ops.values()))
    return ops


def ann_operations(network: SpikingNetwork, *, by_layer: bool = False) -> int | dict[str, int]:
    """Multiply-accumulates (MACs) of one forward pass of the ANN, per example.

    Counted per stage as its connections (:meth:`snnlib.network.ops.Op.macs`): each input element
    times
    its fan-out (dense: ``n_in * n_out``; convolution: exact count with padding, about
    ``out_h * out_w * c_out * kh * kw * c_in``), the first layer's (input image) included.
    Average pooling adds its connections (additions); reshapes and identities cost nothing.

    Parameters
    ----------
    network : SpikingNetwork
    by_layer : bool
        Return a dict layer name -> MACs (with ``"total"``) instead of the total.

    Returns
    -------
    int or dict
    """
    validation.boolean(by_layer, "by_layer")
    macs = {stage.name: stage.op.macs(stage.input_shape)
            for stage in network.stages if stage.op.arithmetic}
    if not by_layer:
        return int(sum(macs.values()))
    macs["total"] = int(sum(macs.values()))
    return macs
