"""Accuracy, latency and spikes of every conversion method, side by side, and their Pareto front.

:func:`compare_methods` simulates each method once (a labelled network and its simulation
settings) and tabulates it as a row of :func:`snnlib.diagnostics.sweep` plus the spikes per
example; :func:`pareto_front` marks the methods that no other method beats on every objective at
once. The figure is :func:`snnlib.plots.plot_tradeoffs`.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from snnlib import measures
from snnlib.config import DT

if TYPE_CHECKING:
    import pandas as pd


def compare_methods(methods: Sequence[tuple], x: np.ndarray, labels: np.ndarray, *,
                    n_steps: int, dt: float = DT, readout: str = "last") -> pd.DataFrame:
    """Simulate each method once and tabulate its accuracy, latency and spikes.

    Parameters
    ----------
    methods : sequence of (str, SpikingNetwork, dict)
        ``(label, network, simulate_kwargs)``: the method's name, the converted (possibly
        normalized) network, and the keywords of :func:`snnlib.simulate.simulate` it uses
        (``scale_firing_rates``, ``synapse``...).
    x : ndarray, shape (batch,) + input shape
        Inputs (a fixed subset of the test images).
    labels : ndarray of int, shape (batch,)
    n_steps : int
        Time steps of every simulation.
    dt : float
        Time step (seconds).
    readout : {"last", "mean"}
        How the output is read (see :meth:`snnlib.simulate.SimulationResult.scores`).

    Returns
    -------
    pandas.DataFrame
        One row per method: ``method``, ``accuracy`` (final, 0-1), ``accuracy_over_time``,
        ``spikes_per_example`` (all spiking layers, over the run), ``mean_rate_hz``,
        ``synops_per_example``, ``steps_to_within_1pt`` and ``latency_ms`` (time from which the
        accuracy stays within one point of its final value; nan if it never settles), then the
        settings.
    """
    import pandas as pd

    from snnlib.diagnostics import evaluate

    labels_seen, rows = set(), []
    for label, network, settings in methods:
        if label in labels_seen:
            raise ValueError(f"method label {label!r} is used twice")
        labels_seen.add(label)
        settings = dict(settings)
        row, result = evaluate(network, x, np.asarray(labels), n_steps=n_steps, dt=dt,
                               readout=readout, **settings)
        row["method"] = label
        row["spikes_per_example"] = measures.spikes_per_example(result)
        del result
        row["settings"] = ", ".join(f"{k}={v}" for k, v in settings.items()) or "defaults"
        rows.append(row)
    columns = ["method", "accuracy", "spikes_per_example", "latency_ms", "steps_to_within_1pt",
               "mean_rate_hz", "synops_per_example", "accuracy_over_time", "settings"]
    return pd.DataFrame(rows)[columns]


def pareto_front(table: pd.DataFrame, *, maximize: Sequence[str] = ("accuracy",),
                 minimize: Sequence[str] = ("spikes_per_example", "latency_ms")) -> np.ndarray:
    """Which rows no other row dominates (at least as good on every objective, better on one).

    Parameters
    ----------
    table : pandas.DataFrame
        One row per method.
    maximize, minimize : sequence of str
        Columns to maximize and to minimize. Rows with a nan objective are never on the front
        (and do not dominate others).

    Returns
    -------
    ndarray of bool, shape (len(table),)
    """
    values = np.column_stack([np.asarray(table[c], dtype=np.float64) for c in maximize]
                             + [-np.asarray(table[c], dtype=np.float64) for c in minimize])
    valid = np.all(np.isfinite(values), axis=1)
    on_front = valid.copy()
    for i in np.flatnonzero(valid):
        others = values[valid]
        dominated = np.any(np.all(others >= values[i], axis=1) & np.any(others > values[i], axis=1))
        on_front[i] = not dominated
    return on_front
