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

from snnlib import protocol, stats, validation
from snnlib.config import DT, MAX_STEPS
from snnlib.progress import progress_bar

if TYPE_CHECKING:
    import pandas as pd


def compare_methods(methods: Sequence[tuple], x: np.ndarray, labels: np.ndarray, *,
                    n_steps: int, dt: float = DT,
                    readout: str | Sequence[str] = protocol.DEFAULT_READOUT,
                    ann_accuracy: float | None = None,
                    progress: bool | None = None) -> pd.DataFrame:
    """Simulate each method once and tabulate its accuracy, latency and spikes (the protocol).

    Parameters
    ----------
    methods : sequence of (str, SpikingNetwork, dict)
        ``(label, network, simulate_kwargs)``: the method's name, the converted (possibly
        normalized) network, and the keywords of :func:`snnlib.simulate.simulate` it uses
        (``scale_firing_rates``, ``synapse``, ``neuron``...).
    x : ndarray, shape (batch,) + input shape
        Inputs (the book uses the whole 1,000-image test split).
    labels : ndarray of int, shape (batch,)
    n_steps : int
        Time steps of every simulation.
    dt : float
        Time step (seconds).
    readout : {"mean", "last"} or sequence of them
        "mean" (default): output averaged over time; "last": the last step (NengoDL's
        example). Several give one row per method and readout, from one simulation.
    ann_accuracy : float, optional
        The ANN's accuracy on ``x`` (latency reference); default: each network in rate mode.
    progress : bool or None
        Progress bar over the methods (None: on unless ``SNNLIB_PROGRESS=0``).

    Returns
    -------
    pandas.DataFrame
        One row per method (and readout): ``method``, ``readout``, ``accuracy`` (final, 0-1),
        ``ci_low``, ``ci_high`` (95 % Wilson interval), ``spikes_per_example`` (all spiking
        layers, over the run), ``latency_ms`` (first time from which the accuracy stays within
        1 point of the ANN; NaN: never), ``latency_steps``, ``mean_rate_hz``,
        ``synops_per_example``, ``ann_accuracy``, ``accuracy_over_time``, ``correct`` (per
        example, for paired tests), ``settings``.
    """
    import pandas as pd

    from snnlib.diagnostics import _readouts, ann_accuracy_of, summarize
    from snnlib.simulate import simulate

    readouts = _readouts(readout)
    x = validation.images(x, "x")
    labels = validation.labels(labels, len(x))
    validation.integer(n_steps, "n_steps", low=1, high=MAX_STEPS)
    validation.real(dt, "dt", low=0, low_open=True, hint="seconds")
    if ann_accuracy is not None:
        validation.real(ann_accuracy, "ann_accuracy", low=0, high=1, hint="a fraction")
    seen, rows = set(), []
    for label, _, _ in methods:
        if label in seen:
            raise ValueError(f"method label {label!r} is used twice")
        seen.add(label)
    for label, network, settings in progress_bar(list(methods), desc="methods",
                                                 progress=progress):
        settings = dict(settings)
        reference = ann_accuracy_of(network, x, labels) if ann_accuracy is None else ann_accuracy
        # a table is returned: the per-example counts would only cost memory
        result = simulate(network, x, n_steps=n_steps, dt=dt,
                          **{"keep_counts": False, **settings})
        for name in readouts:
            row = summarize(network, result, labels, readout=name, ann_accuracy=reference)
            row["method"] = label
            row["settings"] = ", ".join(f"{k}={v}" for k, v in settings.items()) or "defaults"
            rows.append(row)
        del result
    columns = ["method", "readout", "accuracy", "ci_low", "ci_high", "spikes_per_example",
               "latency_ms", "latency_steps", "mean_rate_hz", "synops_per_example",
               "ann_accuracy", "accuracy_over_time", "correct", "settings"]
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


def pareto_ties(table: pd.DataFrame, front: np.ndarray, *, alpha: float = 0.05,
                costs: Sequence[str] = ("spikes_per_example", "latency_ms")) -> np.ndarray:
    """Front rows whose place on the front rests on an accuracy lead the data cannot resolve.

    A row on the Pareto front is *tied* when another row costs no more on every cost and less on
    one (fewer spikes, an earlier latency), so that only a higher accuracy keeps the row on the
    front, and an exact McNemar test on the same images (:func:`snnlib.stats.compare_paired`
    on the ``correct`` column) finds no measurable difference between their accuracies at level
    ``alpha``. At this sample size such a row is not distinguishable from a dominated one.

    Parameters
    ----------
    table : pandas.DataFrame
        Rows of :func:`compare_methods`: ``correct`` (per-image bool arrays, the same images in
        every row) and the cost columns.
    front : array_like of bool, shape (len(table),)
        :func:`pareto_front` of ``table``.
    alpha : float
        Level of the paired test, in (0, 1).
    costs : sequence of str
        Columns to minimize (NaN: the row never gives a tie).

    Returns
    -------
    ndarray of bool, shape (len(table),)
        True for tied front rows; False off the front.
    """
    front = np.asarray(front, dtype=bool)
    if front.shape != (len(table),):
        raise ValueError(f"front has shape {front.shape}; expected ({len(table)},): one flag per "
                         "row of table (pareto_front(table))")
    validation.real(alpha, "alpha", low=0, high=1, low_open=True, high_open=True, hint="e.g. 0.05")
    cost = np.column_stack([np.asarray(table[c], dtype=np.float64) for c in costs])
    correct = list(table["correct"])
    tied = np.zeros(len(table), dtype=bool)
    for i in np.flatnonzero(front):
        cheaper = (np.all(np.isfinite(cost), axis=1) & np.all(cost <= cost[i], axis=1)
                   & np.any(cost < cost[i], axis=1))
        tied[i] = any(not stats.compare_paired(correct[i], correct[j]).significant(alpha)
                      for j in np.flatnonzero(cheaper))
    return tied

