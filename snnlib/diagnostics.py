"""Diagnostics of a spiking simulation: rates, rate-vs-activation agreement, operations, sweeps.

- :func:`layer_rate_correlation`: does each layer's firing rate follow its ANN activation?
- :func:`firing_rate_summary`: per layer, mean / median rate (Hz), silent and saturated neurons.
- :func:`synaptic_operations` and :func:`ann_operations`: event counts of the SNN against the
  multiply-accumulates of the ANN (an *energy proxy*, see the caveat in
  :func:`synaptic_operations`).
- :func:`sweep`: simulate a grid of settings and tabulate accuracy, latency, rates and operations.
- :func:`steps_to_accuracy`: the latency of one accuracy-over-time curve.

Connection counts are *structural*: a connection counts whether its weight is zero or not, as on
hardware that stores the full kernel.
"""
import itertools

import numpy as np

from snnlib.network import AvgPool2DOp, Conv2DOp, DenseOp, IdentityOp, ReshapeOp


# --------------------------------------------------------------------------------------------
# Rates
# --------------------------------------------------------------------------------------------

def _check_result_matches(x, result):
    if len(x) != result.output.shape[0]:
        raise ValueError(f"x has {len(x)} examples but the simulation result has "
                         f"{result.output.shape[0]}; pass the inputs that were simulated")


def _pearson(a, b):
    """Pearson r of two flat arrays in float64; nan when either is constant (e.g. all silent)."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    a = a - a.mean()
    b = b - b.mean()
    denominator = np.sqrt(np.dot(a, a) * np.dot(b, b))
    if not denominator > 0:
        return float("nan")
    return float(np.dot(a, b) / denominator)


def expected_rates(network, x, *, scale_firing_rates=1.0):
    """Firing rates (Hz) the neurons should have: rate-mode activation x scale, per layer.

    Parameters
    ----------
    network : SpikingNetwork
    x : ndarray, shape (batch,) + input shape
    scale_firing_rates : float or dict
        As in :func:`snnlib.simulate.simulate` (Hz per unit of the network's activation).

    Returns
    -------
    dict
        Spiking layer name -> rates (Hz), shape (batch,) + layer shape, float32.
    """
    from snnlib.simulate import resolve_scales

    scales = resolve_scales(network, scale_firing_rates)
    _, activations = network.forward(x, return_all=True)
    return {name: activations[name] * np.float32(scales[name]) for name in network.spiking_layers}


def layer_rate_correlation(network, x, result, *, scale_firing_rates=1.0):
    """Pearson correlation, per spiking layer, of ANN activations and SNN firing rates.

    Parameters
    ----------
    network : SpikingNetwork
        The network that was simulated.
    x : ndarray, shape (batch,) + input shape
        The inputs that were simulated (same examples, same order).
    result : SimulationResult
        From :func:`snnlib.simulate.simulate` on ``network`` and ``x``.
    scale_firing_rates : float or dict
        The scale used in the simulation. Pearson's r does not change when a layer's values are
        multiplied by a positive number, so this only checks the argument; it is accepted so
        that calls mirror :func:`snnlib.simulate.simulate`.

    Returns
    -------
    dict
        Spiking layer name -> r over all neurons and examples (1: the rates follow the
        activations exactly, up to a factor). ``nan`` when a layer is silent (or its activations
        are constant): a correlation is undefined without variation.
    """
    from snnlib.simulate import resolve_scales

    x = network.check_input(x)
    _check_result_matches(x, result)
    resolve_scales(network, scale_firing_rates)  # same checks as simulate
    _, activations = network.forward(x, return_all=True)
    return {name: _pearson(activations[name], result.spike_counts[name])
            for name in network.spiking_layers if name in result.spike_counts}


def firing_rate_summary(result):
    """Firing statistics of every spiking layer.

    Parameters
    ----------
    result : SimulationResult

    Returns
    -------
    pandas.DataFrame
        One row per spiking layer, columns:

        - ``layer``; ``neurons``: neurons per example;
        - ``mean_rate_hz``, ``median_rate_hz``: over all neurons and examples (Hz);
        - ``fraction_silent``: fraction of (neuron, example) pairs without a single spike during
          the run;
        - ``fraction_never_active``: fraction of neurons silent on every example;
        - ``fraction_saturated``: fraction of (neuron, example) pairs with at least ``n_steps``
          spikes, i.e. a rate >= 1 / dt (a spike every step: with ``max_spikes_per_step=1`` such
          a neuron cannot represent a larger activation);
        - ``spikes_per_example``: spikes of the whole layer per example, over the run.
    """
    import pandas as pd

    rows = []
    for name, counts in result.spike_counts.items():
        counts = np.asarray(counts)
        per_example = counts.reshape(len(counts), -1)
        rates = per_example / result.duration
        rows.append(dict(
            layer=name, neurons=per_example.shape[1],
            mean_rate_hz=float(rates.mean()), median_rate_hz=float(np.median(rates)),
            fraction_silent=float(np.mean(per_example == 0)),
            fraction_never_active=float(np.mean(per_example.max(axis=0) == 0)),
            fraction_saturated=float(np.mean(per_example >= result.n_steps)),
            spikes_per_example=float(per_example.sum(axis=1).mean()),
        ))
    return pd.DataFrame(rows, columns=["layer", "neurons", "mean_rate_hz", "median_rate_hz",
                                       "fraction_silent", "fraction_never_active",
                                       "fraction_saturated", "spikes_per_example"])


# --------------------------------------------------------------------------------------------
# Operations
# --------------------------------------------------------------------------------------------

def _reach_positions(ops, shape):
    """Per spatial input position (h, w), how many output positions the chain ``ops`` reaches.

    Brute force over positions with a single channel and all-ones kernels (structure only):
    one one-hot image per position, pushed through the convolutions / poolings.
    """
    h, w = shape[:2]
    probe = np.eye(h * w, dtype=np.float32).reshape(h * w, h, w, 1)
    for op in ops:
        if isinstance(op, Conv2DOp):
            ones = np.ones(op.kernel.shape[:2] + (1, 1), dtype=np.float32)
            probe = Conv2DOp(ones, op.strides, op.padding)(probe)
        elif isinstance(op, AvgPool2DOp):
            probe = op(probe)
        elif isinstance(op, IdentityOp):
            pass
        else:  # pragma: no cover - guarded by the caller
            raise TypeError(f"no spatial fan-out rule for {type(op).__name__}")
    return (probe.reshape(h * w, -1) > 0).sum(axis=1).reshape(h, w)


def _fan_out(stages, shape):
    """Connections of each element of an input of ``shape`` through ``stages``.

    ``stages`` is a chain without neurons in between, ending at a stage with weights (or with
    neurons). Dense: every input element reaches every unit (n_out). Convolution: the number of
    output positions whose window contains the element, times the output channels (exact,
    padding and stride included). Pooling before a convolution is folded in (the pooled value
    is a fixed average of the spikes): the count is then of distinct target neurons reached.
    Reshape and identity stages only move elements.

    Returns
    -------
    ndarray of int, ``shape``
    """
    last = stages[-1]
    if isinstance(last.op, DenseOp):
        return np.full(shape, last.op.kernel.shape[1], dtype=np.int64)
    spatial = []
    for stage in stages:
        if isinstance(stage.op, ReshapeOp):
            raise ValueError(f"cannot count connections through reshape {stage.name!r} into "
                             f"a non-dense stage {last.name!r}")
        spatial.append(stage.op)
    if len(shape) != 3:
        if all(isinstance(op, IdentityOp) for op in spatial):
            return np.ones(shape, dtype=np.int64)
        raise ValueError(f"expected an (h, w, channels) input for stage {last.name!r}")
    channels_out = last.op.kernel.shape[-1] if isinstance(last.op, Conv2DOp) else 1
    positions = _reach_positions(spatial, shape) * channels_out
    return np.broadcast_to(positions[..., None], shape).astype(np.int64)


def _targets(network, index):
    """Stages from ``index + 1`` up to the next one with weights or neurons (None: none)."""
    chain = []
    for stage in network.stages[index + 1:]:
        chain.append(stage)
        if stage.has_weights or stage.spiking:
            return chain
    return None


def fan_out(network, layer):
    """Synapses each neuron of ``layer`` drives in the next layer with weights (or neurons).

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
    index = [s.name for s in network.stages].index(network.stage(layer).name)
    chain = _targets(network, index)
    if chain is None:
        return np.zeros(network.stages[index].output_shape, dtype=np.int64)
    return _fan_out(chain, network.stages[index].output_shape)


def synaptic_operations(network, result):
    """Synaptic operations per example: each spike times the synapses it drives.

    A spike of a neuron reaches every synapse of that neuron into the next layer with weights:
    for a dense layer of ``n_out`` units, ``n_out``; for a convolution, the number of output
    positions whose receptive field contains the neuron times the output channels, counted
    exactly from the layer's kernel size, stride and padding (about
    ``kh * kw * c_out / (sh * sw)`` away from the borders). Average pooling or flatten stages
    in between are folded in (distinct target neurons reached). Connections count whether or
    not their weight is zero.

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
    ops = {}
    for name in network.spiking_layers:
        counts = np.asarray(result.spike_counts[name], dtype=np.float64)
        ops[name] = float((counts.mean(axis=0) * fan_out(network, name)).sum())
    ops["total"] = float(sum(ops.values()))
    return ops


def ann_operations(network, *, by_layer=False):
    """Multiply-accumulates (MACs) of one forward pass of the ANN, per example.

    Counted per stage with weights as its connections: each input element times its fan-out
    (dense: ``n_in * n_out``; convolution: exact count with padding, about
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
    macs = {}
    for stage in network.stages:
        if stage.has_weights or isinstance(stage.op, AvgPool2DOp):
            macs[stage.name] = int(_fan_out([stage], stage.input_shape).sum())
    if not by_layer:
        return int(sum(macs.values()))
    macs["total"] = int(sum(macs.values()))
    return macs


# --------------------------------------------------------------------------------------------
# Sweeps
# --------------------------------------------------------------------------------------------

def steps_to_accuracy(accuracy_over_time, target=None, tolerance=0.01):
    """First time step (1-based) from which the accuracy stays near its final value or a target.

    Parameters
    ----------
    accuracy_over_time : array (n_steps,)
        Accuracy (0-1) after each step.
    target : float, optional
        None: the step from which the accuracy stays within ``tolerance`` of its final value
        (|a - final| <= tolerance). A number (0-1): the step from which it stays
        >= ``target - tolerance``.
    tolerance : float
        0.01 = one percentage point.

    Returns
    -------
    float
        The step (1-based), or nan if the accuracy never settles there.
    """
    accuracy = np.asarray(accuracy_over_time, dtype=np.float64)
    eps = 1e-9  # accuracies are fractions of a count: compare with a little slack
    if target is None:
        good = np.abs(accuracy - accuracy[-1]) <= tolerance + eps
    else:
        good = accuracy >= target - tolerance - eps
    if not good[-1]:
        return float("nan")
    bad = np.flatnonzero(~good)
    return float(bad[-1] + 2 if bad.size else 1)


def _combinations(grid):
    if not isinstance(grid, dict) or not grid:
        raise ValueError("grid must be a non-empty dict: parameter name -> list of values")
    for key, values in grid.items():
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            raise ValueError(f"grid[{key!r}] must be a list of values, got {values!r}")
    keys = list(grid)
    for values in itertools.product(*(list(grid[k]) for k in keys)):
        yield dict(zip(keys, values))


def sweep(network, x, labels, *, n_steps, grid, readout="last", target_accuracy=None,
          progress=False, **fixed):
    """Simulate every combination of ``grid`` and tabulate accuracy, latency, rates, operations.

    Parameters
    ----------
    network : SpikingNetwork
        Network used when the grid has no ``"network"`` key.
    x : ndarray, shape (batch,) + input shape
        Inputs (e.g. test images).
    labels : ndarray of int, shape (batch,)
    n_steps : int
        Time steps of every simulation.
    grid : dict
        Parameter name -> list of values; any keyword of :func:`snnlib.simulate.simulate`
        (``scale_firing_rates``, ``synapse``, ``reset``, ``initial_voltage``, ``dt``...). The
        special key ``"network"`` takes ``(label, SpikingNetwork)`` pairs, to compare e.g.
        normalizations; its column holds the labels.
    readout : {"last", "mean"}
        How the output is read (see :meth:`SimulationResult.scores`).
    target_accuracy : float, optional
        For ``steps_to_within_1pt``: None measures the settling to the run's own final accuracy;
        a number (0-1, e.g. the ANN's accuracy) the step from which the accuracy stays at least
        ``target_accuracy - 0.01``.
    progress : bool
        Print one line per combination (simulations of large networks take seconds each).
    **fixed
        Keywords passed unchanged to every simulation (e.g. ``max_spikes_per_step=1``,
        ``batch_size=200`` to bound memory).

    Returns
    -------
    pandas.DataFrame
        One row per combination, in the order of ``itertools.product`` over the grid: a column
        per grid key, then ``accuracy`` (final, 0-1), ``accuracy_over_time`` (array of n_steps
        values, object column), ``mean_rate_hz`` (all spiking neurons and examples),
        ``synops_per_example`` (see :func:`synaptic_operations`), ``steps_to_within_1pt``
        (1-based step, nan if never) and ``latency_ms`` (that step x dt, in ms). Spike counts
        are not kept.
    """
    import pandas as pd

    from snnlib.simulate import simulate

    overlap = [key for key in grid if key in fixed]
    if overlap:
        raise ValueError(f"{overlap} given both in grid and as fixed keywords")
    for reserved in ("x", "n_steps"):
        if reserved in grid or reserved in fixed:
            raise ValueError(f"{reserved!r} cannot be swept; it is an argument of sweep")
    labels = np.asarray(labels)
    combinations = list(_combinations(grid))
    rows = []
    for i, params in enumerate(combinations):
        options = dict(fixed)
        options.update({k: v for k, v in params.items() if k != "network"})
        net = network
        row = dict(params)
        if "network" in params:
            label, net = params["network"]
            row["network"] = label
        result = simulate(net, x, n_steps=n_steps, **options)
        curve = result.accuracy_over_time(labels, readout=readout)
        total_spikes = sum(float(np.sum(c)) for c in result.spike_counts.values())
        total_neurons = sum(np.size(c) for c in result.spike_counts.values())
        step = steps_to_accuracy(curve, target_accuracy)
        dt = options.get("dt", 0.001)
        row.update(
            accuracy=float(curve[-1]), accuracy_over_time=curve,
            mean_rate_hz=total_spikes / max(total_neurons, 1) / result.duration,
            synops_per_example=synaptic_operations(net, result)["total"],
            steps_to_within_1pt=step, latency_ms=step * dt * 1000.0,
        )
        rows.append(row)
        del result
        if progress:
            shown = ", ".join(f"{k}={row[k]!r}" for k in params)
            print(f"sweep {i + 1}/{len(combinations)}: {shown}: accuracy "
                  f"{100 * row['accuracy']:.2f}%, {row['mean_rate_hz']:.1f} Hz", flush=True)
    return pd.DataFrame(rows)
