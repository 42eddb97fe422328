"""Diagnostics of a spiking simulation: rate-vs-activation agreement, firing summaries, sweeps.

- :func:`layer_rate_correlation`: does each layer's firing rate follow its ANN activation?
- :func:`firing_rate_summary`: per layer, mean / median rate (Hz), silent and saturated neurons.
- :func:`neuron_trace`: one neuron's spike train from a real simulation, with its ANN activation.
- :func:`sweep`, :func:`evaluate`, :func:`summarize`: simulate settings and tabulate accuracy
  (with its 95 % interval), latency relative to the ANN, rates and operations, measured with the
  book's protocol (:mod:`snnlib.analysis.protocol`).

The counts themselves (rates, spikes, synaptic operations, MACs, fan-out) are computed in
:mod:`snnlib.analysis.measures`.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from snnlib import validation
from snnlib.analysis import measures, protocol
from snnlib.config import DT, MAX_STEPS
from snnlib.progress import progress_bar

if TYPE_CHECKING:
    import pandas as pd

    from snnlib.network import SpikingNetwork
    from snnlib.sim.simulator import SimulationResult

__all__ = [
    "layer_rate_correlation",
    "firing_rate_summary",
    "ann_accuracy_of",
    "summarize",
    "sweep",
    "evaluate",
    "neuron_trace",
]


# --------------------------------------------------------------------------------------------
# Rates
# --------------------------------------------------------------------------------------------

def _check_result_matches(x: np.ndarray, result: SimulationResult) -> None:
    if len(x) != result.output.shape[0]:
        raise ValueError(f"x has {len(x)} examples but the simulation result has "
                         f"{result.output.shape[0]}; pass the inputs that were simulated")


def _pearson(a: Any, b: Any) -> float:
    """Pearson r of two flat arrays in float64; nan when either is constant (e.g. all silent)."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    a = a - a.mean()
    b = b - b.mean()
    denominator = np.sqrt(np.dot(a, a) * np.dot(b, b))
    if not denominator > 0:
        return float("nan")
    return float(np.dot(a, b) / denominator)


def layer_rate_correlation(network: SpikingNetwork, x: np.ndarray, result: SimulationResult, *,
                           scale_firing_rates: float | dict = 1.0) -> dict[str, float]:
    """Pearson correlation, per spiking layer, of ANN activations and SNN firing rates.

    Parameters
    ----------
    network : SpikingNetwork
        The network that was simulated.
    x : ndarray, shape (batch,) + input shape
        The inputs that were simulated (same examples, same order).
    result : SimulationResult
        From :func:`snnlib.sim.simulator.simulate` on ``network`` and ``x``, with the full
        per-example counts (kept by default for a run in one batch or with small counts, or
        with ``keep_counts=True``; otherwise this raises, saying so).
    scale_firing_rates : float or dict
        The scale used in the simulation. Pearson's r does not change when a layer's values are
        multiplied by a positive number, so this only checks the argument; it is accepted so
        that calls mirror :func:`snnlib.sim.simulator.simulate`.

    Returns
    -------
    dict
        Spiking layer name -> r over all neurons and examples (1: the rates follow the
        activations exactly, up to a factor). ``nan`` when a layer is silent (or its activations
        are constant): a correlation is undefined without variation.
    """
    x = network.check_input(x)
    _check_result_matches(x, result)
    network.firing_rate_scales(scale_firing_rates)  # same checks as simulate
    counts = result.spike_counts  # needs every neuron's count on every example (keep_counts)
    _, activations = network.forward(x, return_all=True)
    return {name: _pearson(activations[name], counts[name])
            for name in network.spiking_layers if name in counts}


def firing_rate_summary(result: SimulationResult) -> pd.DataFrame:
    """Firing statistics of every spiking layer.

    Parameters
    ----------
    result : SimulationResult
        Works from its summaries (``layer_counts``), whether or not the full per-example
        counts were kept.

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
    duration = result.duration
    spikes = measures.spikes_per_example(result, by_layer=True)
    for name, counts in result.layer_counts.items():
        rows.append(dict(
            layer=name, neurons=counts.neurons,
            mean_rate_hz=counts.total / max(counts.pairs, 1) / duration,
            median_rate_hz=counts.median_rate(duration),
            fraction_silent=counts.fraction(0, 0),
            fraction_never_active=float(np.mean(counts.per_neuron_max == 0)),
            fraction_saturated=counts.fraction(result.n_steps),
            spikes_per_example=spikes[name],
        ))
    return pd.DataFrame(rows, columns=["layer", "neurons", "mean_rate_hz", "median_rate_hz",
                                       "fraction_silent", "fraction_never_active",
                                       "fraction_saturated", "spikes_per_example"])


# --------------------------------------------------------------------------------------------
# Sweeps
# --------------------------------------------------------------------------------------------

def _combinations(grid: dict) -> Iterator[dict]:
    if not isinstance(grid, dict) or not grid:
        raise ValueError("grid must be a non-empty dict: parameter name -> list of values")
    for key, values in grid.items():
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            raise ValueError(f"grid[{key!r}] must be a list of values, got {values!r}")
    keys = list(grid)
    for values in itertools.product(*(list(grid[k]) for k in keys)):
        yield dict(zip(keys, values, strict=True))


def ann_accuracy_of(network: SpikingNetwork, x: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy (0-1) of the network in rate mode on ``x``: the ANN's accuracy (see ``verify``)."""
    scores = network.forward(x)
    scores = scores.reshape(len(scores), -1)
    labels = validation.labels(labels, len(scores), n_classes=scores.shape[-1])
    return float(np.mean(np.argmax(scores, axis=-1) == labels))


def _readouts(readout: str | Sequence[str]) -> list[str]:
    names = [readout] if isinstance(readout, str) else list(readout)
    if not names:
        raise ValueError("readout must name at least one readout ('mean' or 'last')")
    for name in names:
        protocol.check_readout(name)
    return names


def summarize(network: SpikingNetwork, result: SimulationResult, labels: np.ndarray, *,
              readout: str = protocol.DEFAULT_READOUT, ann_accuracy: float) -> dict:
    """One row of :func:`sweep` for a finished simulation, measured with the book's protocol.

    Returns
    -------
    dict
        ``readout``; ``accuracy`` (final, 0-1) with its 95 % Wilson interval ``ci_low`` and
        ``ci_high``; ``ann_accuracy`` (the reference, same images); ``latency_steps`` and
        ``latency_ms`` (first time from which the accuracy stays within 1 point of the ANN,
        read over the book's 50 ms horizon; NaN: never); ``latency_horizon_ms``;
        ``accuracy_over_time`` (array); ``correct`` (bool array per example, for
        paired tests); ``correct_over_time`` (bool array, examples x steps, for
        :func:`snnlib.analysis.protocol.latency_interval`); ``mean_rate_hz``;
        ``spikes_per_example``;
        ``synops_per_example``.
    """
    evaluation = result.evaluate(labels, ann_accuracy=ann_accuracy, readout=readout)
    accuracy = evaluation.accuracy
    return dict(
        readout=readout, accuracy=accuracy.value, ci_low=accuracy.low, ci_high=accuracy.high,
        ann_accuracy=float(ann_accuracy),
        latency_steps=float(np.round(evaluation.latency_ms / (1000.0 * result.dt))),
        latency_ms=evaluation.latency_ms, latency_horizon_ms=evaluation.latency_horizon_ms,
        accuracy_over_time=evaluation.accuracy_over_time,
        correct=evaluation.correct, correct_over_time=evaluation.correct_over_time,
        mean_rate_hz=measures.mean_rate(result),
        spikes_per_example=measures.spikes_per_example(result),
        synops_per_example=measures.synaptic_operations(network, result)["total"],
    )


def sweep(network: SpikingNetwork, x: np.ndarray, labels: np.ndarray, *, n_steps: int,
          grid: dict, readout: str | Sequence[str] = protocol.DEFAULT_READOUT,
          ann_accuracy: float | None = None, progress: bool | None = None,
          **fixed: Any) -> pd.DataFrame:
    """Simulate every combination of ``grid`` and tabulate accuracy, latency, rates, operations.

    Measured with the book's protocol (:mod:`snnlib.analysis.protocol`): accuracy with its 95 %
    interval,
    latency relative to the ANN on the same images.

    Parameters
    ----------
    network : SpikingNetwork
        Network used when the grid has no ``"network"`` key.
    x : ndarray, shape (batch,) + input shape
        Inputs (e.g. the 1,000 test images).
    labels : ndarray of int, shape (batch,)
    n_steps : int
        Time steps of every simulation.
    grid : dict
        Parameter name -> list of values; any keyword of :func:`snnlib.sim.simulator.simulate`
        (``scale_firing_rates``, ``synapse``, ``neuron``, ``reset``, ``initial_voltage``,
        ``dt``...). The special key ``"network"`` takes ``(label, SpikingNetwork)`` pairs, to
        compare e.g. normalizations; its column holds the labels.
    readout : {"mean", "last"} or sequence of them
        How the output is read (default "mean": averaged over time, the book's protocol;
        "last": the last step, NengoDL's example). Several readouts give one row each per
        combination, from the same simulation.
    ann_accuracy : float, optional
        The ANN's accuracy (0-1) on ``x``, the latency's reference. Default: measured from the
        network itself in rate mode (the converted network computes what the ANN computes).
    progress : bool or None
        Progress bar over the combinations (None: on unless ``SNNLIB_PROGRESS=0``).
    **fixed
        Keywords passed unchanged to every simulation (e.g. ``max_spikes_per_step=1``,
        ``batch_size=200`` to bound memory).

    Returns
    -------
    pandas.DataFrame
        One row per combination and readout, in the order of ``itertools.product`` over the
        grid: a column per grid key, then the columns of :func:`summarize`. Spike counts are
        not kept.
    """
    import pandas as pd

    overlap = [key for key in grid if key in fixed]
    if overlap:
        raise ValueError(f"{overlap} given both in grid and as fixed keywords")
    for reserved in ("x", "n_steps", "readout"):
        if reserved in grid or reserved in fixed:
            raise ValueError(f"{reserved!r} cannot be swept; it is an argument of sweep")
    readouts = _readouts(readout)
    x = network.check_input(x)
    labels = validation.labels(labels, len(x))
    validation.integer(n_steps, "n_steps", low=1, high=MAX_STEPS)
    if ann_accuracy is not None:
        validation.real(ann_accuracy, "ann_accuracy", low=0, high=1, hint="a fraction")
    # sweeps return tables: the per-example counts would only cost memory
    fixed.setdefault("keep_counts", False)
    combinations = list(_combinations(grid))
    references: dict[int, float] = {}
    rows = []
    for params in progress_bar(combinations, desc="sweep", progress=progress):
        options = dict(fixed)
        options.update({k: v for k, v in params.items() if k != "network"})
        net, base = network, dict(params)
        if "network" in params:
            label, net = params["network"]
            base["network"] = label
        if ann_accuracy is None and id(net) not in references:
            references[id(net)] = ann_accuracy_of(net, x, labels)
        reference = references[id(net)] if ann_accuracy is None else ann_accuracy
        from snnlib.sim.simulator import simulate

        result = simulate(net, x, n_steps=n_steps, **options)
        for name in readouts:
            rows.append({**base, **summarize(net, result, labels, readout=name,
                                             ann_accuracy=reference)})
        del result
    return pd.DataFrame(rows)


def evaluate(network: SpikingNetwork, x: np.ndarray, labels: np.ndarray, *, n_steps: int,
             readout: str = protocol.DEFAULT_READOUT, ann_accuracy: float | None = None,
             **simulate_kwargs: Any) -> tuple[dict, SimulationResult]:
    """Simulate once and summarize with the protocol: one row of :func:`sweep`, and the result.

    Returns
    -------
    summary : dict
        The columns of :func:`summarize`.
    result : SimulationResult
    """
    from snnlib.sim.simulator import simulate

    x = network.check_input(x)
    labels = validation.labels(labels, len(x))
    if ann_accuracy is None:
        ann_accuracy = ann_accuracy_of(network, x, labels)
    result = simulate(network, x, n_steps=n_steps, **simulate_kwargs)
    return summarize(network, result, labels, readout=readout, ann_accuracy=ann_accuracy), result


def neuron_trace(network: SpikingNetwork, x: np.ndarray, layer: str, *,
                 scale_firing_rates: float, n_steps: int, dt: float = DT,
                 target_activation: float | None = None, seed: int = 0,
                 **simulate_kwargs: Any) -> dict:
    """One neuron's spike train in a real simulation, in the units the next layer receives.

    Simulates the single input ``x`` (shape (1,) + input shape) without a synapse, recording
    ``layer``, and picks the neuron whose ANN activation is closest to ``target_activation``
    (default: the layer's largest activation for this input).

    Parameters
    ----------
    network : SpikingNetwork
    x : ndarray, shape (1,) + input shape
        One input.
    layer : str
        A spiking layer.
    scale_firing_rates : float
        Firing-rate scale ``s`` (Hz per unit of activation): spikes have height ``1 / (s dt)``.
    n_steps : int
        Time steps.
    dt : float
        Time step (seconds).
    target_activation : float, optional
        Pick the neuron with the ANN activation closest to this (Keras units).
    seed : int
        Passed to the simulation.
    **simulate_kwargs
        Other options of :func:`snnlib.sim.simulator.simulate` (not ``synapse``).

    Returns
    -------
    dict
        ``signal``: (n_steps,) the neuron's output per step in activation units (spike count x
        ``1 / (s dt)``); ``spikes``: (n_steps,) spike counts; ``activation``: the neuron's ANN
        activation (what the mean of ``signal`` should approach); ``rate_hz``: its measured rate;
        ``neuron``: the flat index; ``dt``, ``scale``.
    """
    from snnlib.sim.simulator import simulate

    x = network.check_input(x)
    if len(x) != 1:
        raise ValueError(f"neuron_trace takes one input, got {len(x)}")
    validation.real(scale_firing_rates, "scale_firing_rates", low=0, low_open=True,
                    hint="Hz per unit of activation")
    validation.optional(target_activation, validation.real, "target_activation")
    if not isinstance(layer, str):
        raise validation.ArgumentError(f"layer={layer!r} must be a layer name (str)")
    if "synapse" in simulate_kwargs:
        raise ValueError("neuron_trace records the unfiltered spikes; filter them with lowpass")
    _, activations = network.forward(x, return_all=True, dtype=np.float64)
    if layer not in network.spiking_layers:
        raise ValueError(f"{layer!r} is not a spiking layer; spiking layers: "
                         f"{network.spiking_layers}")
    values = activations[layer].ravel()
    target = values.max() if target_activation is None else target_activation
    neuron = int(np.argmin(np.abs(values - target)))
    result = simulate(network, x, n_steps=n_steps, dt=dt, scale_firing_rates=scale_firing_rates,
                      record_spikes=[layer], seed=seed, **simulate_kwargs)
    spikes = result.spikes[layer][0].reshape(n_steps, -1)[:, neuron].astype(np.int64)
    return dict(signal=spikes / (float(scale_firing_rates) * dt), spikes=spikes,
                activation=float(values[neuron]), rate_hz=float(spikes.sum() / (n_steps * dt)),
                neuron=neuron, dt=dt, scale=float(scale_firing_rates))
