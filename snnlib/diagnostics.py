"""Diagnostics of a spiking simulation: rate-vs-activation agreement, firing summaries, sweeps.

- :func:`layer_rate_correlation`: does each layer's firing rate follow its ANN activation?
- :func:`firing_rate_summary`: per layer, mean / median rate (Hz), silent and saturated neurons.
- :func:`sweep`: simulate a grid of settings and tabulate accuracy, latency, rates and operations.
- :func:`steps_to_accuracy`: the latency of one accuracy-over-time curve.

The counts themselves (rates, spikes, synaptic operations, MACs, fan-out) are computed in
:mod:`snnlib.measures`.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from snnlib import measures

if TYPE_CHECKING:
    import pandas as pd

    from snnlib.network import SpikingNetwork
    from snnlib.simulate import SimulationResult


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
    x = network.check_input(x)
    _check_result_matches(x, result)
    network.firing_rate_scales(scale_firing_rates)  # same checks as simulate
    _, activations = network.forward(x, return_all=True)
    return {name: _pearson(activations[name], result.spike_counts[name])
            for name in network.spiking_layers if name in result.spike_counts}


def firing_rate_summary(result: SimulationResult) -> pd.DataFrame:
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
    rates = measures.rates(result)
    spikes = measures.spikes_per_example(result, by_layer=True)
    for name, counts in result.spike_counts.items():
        counts = np.asarray(counts)
        per_example = counts.reshape(len(counts), -1)
        layer_rates = rates[name]
        rows.append(dict(
            layer=name, neurons=per_example.shape[1],
            mean_rate_hz=float(layer_rates.mean()), median_rate_hz=float(np.median(layer_rates)),
            fraction_silent=float(np.mean(per_example == 0)),
            fraction_never_active=float(np.mean(per_example.max(axis=0) == 0)),
            fraction_saturated=float(np.mean(per_example >= result.n_steps)),
            spikes_per_example=spikes[name],
        ))
    return pd.DataFrame(rows, columns=["layer", "neurons", "mean_rate_hz", "median_rate_hz",
                                       "fraction_silent", "fraction_never_active",
                                       "fraction_saturated", "spikes_per_example"])


# --------------------------------------------------------------------------------------------
# Sweeps
# --------------------------------------------------------------------------------------------

def steps_to_accuracy(accuracy_over_time: np.ndarray, target: float | None = None,
                      tolerance: float = 0.01) -> float:
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


def _combinations(grid: dict) -> Iterator[dict]:
    if not isinstance(grid, dict) or not grid:
        raise ValueError("grid must be a non-empty dict: parameter name -> list of values")
    for key, values in grid.items():
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            raise ValueError(f"grid[{key!r}] must be a list of values, got {values!r}")
    keys = list(grid)
    for values in itertools.product(*(list(grid[k]) for k in keys)):
        yield dict(zip(keys, values, strict=True))


def sweep(network: SpikingNetwork, x: np.ndarray, labels: np.ndarray, *, n_steps: int,
          grid: dict, readout: str = "last", target_accuracy: float | None = None,
          progress: bool = False, **fixed: Any) -> pd.DataFrame:
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
        ``synops_per_example`` (see :func:`snnlib.measures.synaptic_operations`),
        ``steps_to_within_1pt``
        (1-based step, nan if never) and ``latency_ms`` (that step x dt, in ms). Spike counts
        are not kept.
    """
    import pandas as pd

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
        summary = evaluate(net, x, labels, n_steps=n_steps, readout=readout,
                           target_accuracy=target_accuracy, **options)[0]
        row.update(summary)
        rows.append(row)
        if progress:
            shown = ", ".join(f"{k}={row[k]!r}" for k in params)
            print(f"sweep {i + 1}/{len(combinations)}: {shown}: accuracy "
                  f"{100 * row['accuracy']:.2f}%, {row['mean_rate_hz']:.1f} Hz", flush=True)
    return pd.DataFrame(rows)


def evaluate(network: SpikingNetwork, x: np.ndarray, labels: np.ndarray, *, n_steps: int,
             readout: str = "last", target_accuracy: float | None = None,
             **simulate_kwargs: Any) -> tuple[dict, SimulationResult]:
    """Simulate once and summarize: one row of :func:`sweep`, and the simulation result.

    Returns
    -------
    summary : dict
        ``accuracy``, ``accuracy_over_time``, ``mean_rate_hz``, ``synops_per_example``,
        ``steps_to_within_1pt``, ``latency_ms`` (as the columns of :func:`sweep`).
    result : SimulationResult
    """
    from snnlib.config import DT
    from snnlib.simulate import simulate

    result = simulate(network, x, n_steps=n_steps, **simulate_kwargs)
    curve = result.accuracy_over_time(labels, readout=readout)
    step = steps_to_accuracy(curve, target_accuracy)
    dt = simulate_kwargs.get("dt", DT)
    summary = dict(
        accuracy=float(curve[-1]), accuracy_over_time=curve,
        mean_rate_hz=measures.mean_rate(result),
        synops_per_example=measures.synaptic_operations(network, result)["total"],
        steps_to_within_1pt=step, latency_ms=step * dt * 1000.0,
    )
    return summary, result
