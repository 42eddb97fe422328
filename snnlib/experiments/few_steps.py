"""Accuracy and cost after a few steps: one run per T, scored against the method's own ANN.

A spiking network that is read out after T steps costs what it spends in those T steps, so
each T gets a run of its own (:func:`run_at_steps`), and :func:`steps_table` puts the runs of
several methods side by side: accuracy with its 95 % interval, the paired difference from the
method's own ANN (exact McNemar test), spikes and synaptic operations per example. Chapter 13
and ``benchmarks/low_latency.py`` use them;
:func:`snnlib.experiments.plots.plot_accuracy_against_steps` draws the table.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from snnlib import validation
from snnlib.analysis import measures, stats
from snnlib.network import SpikingNetwork
from snnlib.progress import progress_bar

__all__ = ["STEPS", "StepRun", "run_at_steps", "steps_table"]

#: The run lengths the book compares (powers of two up to 32).
STEPS = (1, 2, 4, 8, 16, 32)


@dataclass
class StepRun:
    """One run of ``n_steps`` steps on every example.

    Attributes
    ----------
    n_steps : int
    correct : ndarray of bool
        Per example: the output averaged over the run has its largest value at the label.
    spikes, synaptic_operations : float
        Per example, over the run (mean over the examples).
    """

    n_steps: int
    correct: np.ndarray = field(repr=False)
    spikes: float
    synaptic_operations: float


def run_at_steps(network: SpikingNetwork, x: np.ndarray, labels: np.ndarray,
                 steps: Sequence[int] = STEPS, *, initial_voltage: Any = 0.5,
                 calibrate: Any = None, progress: bool | None = None,
                 **simulation: Any) -> dict[int, StepRun]:
    """Simulate ``network`` once for each T in ``steps`` and score each run.

    Parameters
    ----------
    network : SpikingNetwork
    x : ndarray
        Inputs (the whole test split, for claims).
    labels : ndarray of int
    steps : sequence of int
        The T values.
    initial_voltage : float, str or dict
        As ``simulate``.
    calibrate : callable, optional
        ``calibrate(n_steps) -> (network, initial_voltage)``: a network and start calibrated
        for each T (e.g. with :mod:`snnlib.sim.calibration`), used instead of ``network`` and
        ``initial_voltage`` for that T.
    progress : bool or None
        A progress bar over the T values (None: on unless ``SNNLIB_PROGRESS=0``).
    **simulation
        ``simulate``'s other settings (e.g. ``snnlib.zoo.RECOMMENDED_SIMULATION`` without
        ``initial_voltage``).

    Returns
    -------
    dict
        T -> :class:`StepRun`.
    """
    from snnlib.sim.simulator import simulate

    labels = validation.labels(labels, len(x), "labels")
    steps = [validation.integer(n, "steps", low=1) for n in steps]
    if not steps:
        raise validation.ArgumentError("steps is empty: give at least one T")
    runs = {}
    for n_steps in progress_bar(steps, progress=progress, desc="runs (one per T)"):
        net, start = calibrate(n_steps) if calibrate is not None else (network,
                                                                       initial_voltage)
        result = simulate(net, x, n_steps=n_steps, initial_voltage=start, **simulation)
        correct = np.argmax(result.output.mean(axis=1), axis=1) == labels
        runs[n_steps] = StepRun(n_steps, correct, measures.spikes_per_example(result),
                                measures.synaptic_operations(net, result)["total"])
    return runs


def steps_table(runs: Mapping[str, Mapping[int, StepRun]],
                references: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """The runs of several methods, one row per method and T.

    Parameters
    ----------
    runs : dict
        Method name -> :func:`run_at_steps`'s result.
    references : dict
        Method name -> per-example correctness of its own ANN (on the same examples).

    Returns
    -------
    pandas.DataFrame
        Columns ``method``, ``T``, ``accuracy`` (:class:`snnlib.analysis.stats.Accuracy`),
        ``vs_ann`` (:class:`snnlib.analysis.stats.PairedComparison`, the SNN as A against its
        ANN as B), ``spikes`` and ``synaptic_operations`` (per example).
    """
    missing = sorted(set(runs) - set(references))
    if missing:
        raise validation.ArgumentError(f"references lacks the ANN of {missing}")
    rows = []
    for method, by_steps in runs.items():
        for n_steps, run in by_steps.items():
            rows.append({"method": method, "T": n_steps,
                         "accuracy": stats.accuracy_interval(run.correct),
                         "vs_ann": stats.compare_paired(run.correct, references[method]),
                         "spikes": run.spikes,
                         "synaptic_operations": run.synaptic_operations})
    return pd.DataFrame(rows)
