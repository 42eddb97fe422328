"""Accuracy, latency and spikes of every conversion method, side by side, and their Pareto front.

:func:`compare_methods` simulates each method once (a labelled network and its simulation
settings) and tabulates it as a row of :func:`snnlib.experiments.diagnostics.sweep` plus the spikes
per
example; :func:`pareto_front` marks the methods that no other method beats on every objective at
once. The figure is :func:`snnlib.experiments.plots.plot_tradeoffs`.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from snnlib import validation
from snnlib.analysis import measures, protocol, stats
from snnlib.config import DT, MAX_STEPS
from snnlib.progress import progress_bar

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "compare_methods",
    "costs_to_latency",
    "pareto_front",
    "pareto_ties",
    "pareto_tie_tests",
]


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
        normalized) network, and the keywords of :func:`snnlib.sim.simulator.simulate` it uses
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
        1 point of the ANN, read over the 50 ms horizon of :mod:`snnlib.analysis.protocol`; NaN: not
        within it), ``latency_steps``, ``mean_rate_hz``,
        ``synops_per_example``, ``ann_accuracy``, ``accuracy_over_time``, ``correct`` (per
        example, for paired tests), ``settings``.
    """
    import pandas as pd

    from snnlib.experiments.diagnostics import _readouts, ann_accuracy_of, summarize
    from snnlib.sim.simulator import simulate

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


def costs_to_latency(methods: Sequence[tuple], x: np.ndarray, labels: np.ndarray,
                     table: pd.DataFrame, *, dt: float = DT,
                     progress: bool | None = None) -> pd.DataFrame:
    """What each method costs up to its latency: the cost at matched accuracy.

    A run's whole-length cost depends on an arbitrary length: a method that comes within 1
    point of the ANN after 2 ms of a 50 ms run pays 48 ms of spikes it does not need. This
    re-simulates every method of ``table`` that reaches the ANN (finite ``latency_ms``, mean
    readout) for exactly its latency and counts the spikes and synaptic operations of that run:
    what the method costs to be within 1 point of the ANN (the protocol's tolerance). The mean
    readout after ``k`` steps depends on the first ``k`` steps only, so a deterministic run (a
    constant input; the same start voltages) stopped at ``k`` is the first ``k`` steps of the
    table's run; the function checks it, on the accuracy at the stop.

    Parameters
    ----------
    methods : sequence of (str, SpikingNetwork, dict)
        The methods given to :func:`compare_methods`.
    x, labels : ndarray
        The images and labels given to :func:`compare_methods`.
    table : pandas.DataFrame
        :func:`compare_methods`'s rows for the mean readout (one per method: ``method``,
        ``latency_ms``, ``accuracy_over_time``).
    dt : float
        Time step (seconds), as given to :func:`compare_methods`.
    progress : bool or None
        Progress bar over the re-simulated methods (None: on unless ``SNNLIB_PROGRESS=0``).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``method`` in ``table``'s order: ``latency_steps``,
        ``spikes_to_latency`` and ``synops_to_latency`` (per image, up to and including the
        latency's step; NaN for a method that does not reach the ANN).

    Raises
    ------
    ValueError
        If ``table`` is not one mean-readout row per method, or a stopped run's accuracy
        differs from the table's at that step (a run that is not deterministic, e.g. Poisson
        input, cannot be stopped and compared this way).
    """
    import pandas as pd

    from snnlib.sim.simulator import simulate

    validation.real(dt, "dt", low=0, low_open=True, hint="seconds")
    if "readout" in table and set(table["readout"]) != {"mean"}:
        raise ValueError("costs_to_latency needs the mean-readout rows of compare_methods "
                         "(table[table.readout == 'mean']): the latency of the last-step "
                         "readout is not the time at which the stopped run is within 1 point")
    if not table["method"].is_unique:
        raise ValueError("table has several rows for one method; pass one readout's rows")
    by_label = {label: (network, dict(settings)) for label, network, settings in methods}
    missing = [m for m in table["method"] if m not in by_label]
    if missing:
        raise ValueError(f"table's methods {missing} are not in methods")
    x = validation.images(x, "x")
    labels = validation.labels(labels, len(x))
    rows = {method: dict(latency_steps=np.nan, spikes_to_latency=np.nan,
                         synops_to_latency=np.nan) for method in table["method"]}
    todo = [row for _, row in table.iterrows() if np.isfinite(row["latency_ms"])]
    for row in progress_bar(todo, desc="runs to the latency", progress=progress):
        network, settings = by_label[row["method"]]
        steps = int(round(row["latency_ms"] / (1000.0 * dt)))
        result = simulate(network, x, n_steps=steps, dt=dt, **{"keep_counts": False, **settings})
        stopped = float(np.mean(result.correct(labels, readout="mean")))
        expected = float(row["accuracy_over_time"][steps - 1])
        # method="auto" picks the engine per chunk by the run's memory, so the shorter run may
        # use the other engine, which rounds differently: one image may flip, not more
        if abs(stopped - expected) > 1.5 / len(labels):
            raise ValueError(
                f"method {row['method']!r} stopped at {steps} steps is {100 * stopped:.1f} % "
                f"accurate, the table's run {100 * expected:.1f} % at that step: the run is not "
                "deterministic (Poisson input? a random start drawn per run?), so its first "
                "steps cannot be re-simulated")
        rows[row["method"]] = dict(
            latency_steps=float(steps),
            spikes_to_latency=measures.spikes_per_example(result),
            synops_to_latency=measures.synaptic_operations(network, result)["total"])
        del result
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("method")


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
    front, and an exact McNemar test on the same images
    (:func:`snnlib.analysis.stats.compare_paired`
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
    validation.real(alpha, "alpha", low=0, high=1, low_open=True, high_open=True, hint="e.g. 0.05")
    tied = np.zeros(len(table), dtype=bool)
    for (i, _), test in pareto_tie_tests(table, front, costs=costs).items():
        tied[i] |= not test.significant(alpha)
    return tied


def pareto_tie_tests(table: pd.DataFrame, front: np.ndarray, *,
                     costs: Sequence[str] = ("spikes_per_example", "latency_ms")
                     ) -> dict[tuple[int, int], stats.PairedComparison]:
    """The paired tests behind :func:`pareto_ties`: each front row against each cheaper row.

    Parameters
    ----------
    table, front, costs
        As for :func:`pareto_ties`.

    Returns
    -------
    dict
        ``(i, j) -> PairedComparison`` of row ``i`` (on the front) against row ``j`` (0-based
        positions), for every ``j`` that costs no more than ``i`` on every cost and less on one;
        a chapter that states the front's verdicts adds these tests to its family (Holm).
    """
    front = np.asarray(front, dtype=bool)
    if front.shape != (len(table),):
        raise ValueError(f"front has shape {front.shape}; expected ({len(table)},): one flag per "
                         "row of table (pareto_front(table))")
    cost = np.column_stack([np.asarray(table[c], dtype=np.float64) for c in costs])
    correct = list(table["correct"])
    tests = {}
    for i in np.flatnonzero(front):
        cheaper = (np.all(np.isfinite(cost), axis=1) & np.all(cost <= cost[i], axis=1)
                   & np.any(cost < cost[i], axis=1))
        for j in np.flatnonzero(cheaper):
            tests[int(i), int(j)] = stats.compare_paired(correct[i], correct[j])
    return tests

