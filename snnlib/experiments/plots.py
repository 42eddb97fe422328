"""Every figure of the library. Each function returns a :class:`matplotlib.figure.Figure` with
labelled axes (units in the labels); the chapters show them with ``plt.show()``.

- Data and training: :func:`plot_digits`, :func:`plot_training_history`.
- Simulations: :func:`plot_rate_histograms`, :func:`plot_spike_raster`,
  :func:`plot_accuracy_over_time`, :func:`plot_rate_correlation`, :func:`plot_output_over_time`,
  :func:`plot_heatmap` (a sweep table).
- Single neurons and rate curves: :func:`plot_voltage_trace`, :func:`plot_rate_quantization`,
  :func:`plot_scaled_rate_curves`.
- The synapse: :func:`plot_filtered_spike_train`, :func:`plot_step_response`.
- Methods compared: :func:`plot_tradeoffs`.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import matplotlib
import matplotlib.pyplot as plt
import matplotlib.text
import matplotlib.transforms
import numpy as np
from matplotlib.figure import Figure

from snnlib.analysis import protocol
from snnlib.config import DT
from snnlib.sim.neurons import rate_error_bound
from snnlib.sim.synapses import lowpass, step_response, synapse_label

if TYPE_CHECKING:
    import pandas as pd

    from snnlib.network import SpikingNetwork
    from snnlib.sim.simulator import SimulationResult

__all__ = [
    "plot_digits",
    "plot_training_history",
    "plot_rate_histograms",
    "plot_spike_raster",
    "plot_accuracy_over_time",
    "plot_accuracy_against_steps",
    "plot_rate_correlation",
    "plot_output_over_time",
    "plot_heatmap",
    "plot_voltage_trace",
    "plot_rate_quantization",
    "plot_scaled_rate_curves",
    "plot_filtered_spike_train",
    "plot_step_response",
    "TRADEOFF_COSTS",
    "plot_tradeoffs",
    "text_overlaps",
]


def plot_digits(images: np.ndarray, labels: np.ndarray, predictions: np.ndarray | None = None, *,
                n: int = 12, ncols: int = 6, title: str | None = None) -> Figure:
    """Show the first ``n`` digits with their labels (and predictions, wrong ones in red).

    Parameters
    ----------
    images : ndarray, shape (m, 28, 28) or (m, 28, 28, 1)
        Pixel intensities in [0, 1].
    labels : ndarray of int, shape (m,)
        True digits.
    predictions : ndarray of int, shape (m,), optional
        Predicted digits; each title reads "label 3 / pred 5", in red where they differ.
    n : int
        How many digits to show (at most ``m``).
    ncols : int
        Digits per row.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    n = min(n, len(images))
    if n < 1:
        raise ValueError("plot_digits needs at least one image")
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.6 * ncols, 1.9 * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(np.asarray(images[i]).reshape(28, 28), cmap="gray_r", vmin=0, vmax=1)
        text = f"label {labels[i]}"
        color = "black"
        if predictions is not None:
            text += f" / pred {predictions[i]}"
            color = "black" if predictions[i] == labels[i] else "red"
        ax.set_title(text, fontsize=9, color=color)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_training_history(history: dict) -> Figure:
    """Accuracy per epoch on the training and validation sets.

    Parameters
    ----------
    history : dict
        As returned by :func:`snnlib.train_convnet`: ``accuracy`` and optionally ``val_accuracy``
        lists, one value (0-1) per epoch.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = plt.subplots(figsize=(5, 3.2))
    epochs = np.arange(1, len(history["accuracy"]) + 1)
    ax.plot(epochs, 100 * np.asarray(history["accuracy"]), "o-", label="training images")
    if "val_accuracy" in history:
        ax.plot(epochs, 100 * np.asarray(history["val_accuracy"]), "s-", label="test images")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)")
    ax.set_xticks(epochs)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def _spiking_counts(result: SimulationResult) -> dict:
    if not result.layer_counts:
        raise ValueError("the simulation result has no spiking layers")
    return result.layer_counts


def plot_rate_histograms(result: SimulationResult, *, bins: int = 30) -> Figure:
    """Histogram of the neurons' firing rates, one panel per spiking layer.

    Parameters
    ----------
    result : SimulationResult
        From :func:`snnlib.sim.simulator.simulate`; every (neuron, example) pair is one count.
    bins : int
        Number of bins between 0 and the layer's highest rate (Hz).

    Returns
    -------
    matplotlib.figure.Figure
        Counts on a log axis (silent neurons are often the majority); each title gives the layer
        and the fraction of (neuron, example) pairs without a spike.
    """
    counts = _spiking_counts(result)
    n = len(counts)
    fig, axes = plt.subplots(1, n, figsize=(4 * n, 3.2), squeeze=False)
    for ax, (name, c) in zip(axes[0], counts.items(), strict=True):
        # the histogram of the counts: distinct rates, weighted by their (neuron, example) pairs
        rates = c.values.astype(np.float64) / result.duration
        top = rates.max() if rates.size and rates.max() > 0 else 1.0 / result.duration
        ax.hist(rates, bins=bins, range=(0, top), weights=c.frequencies, color="C0")
        ax.set_yscale("log")
        ax.set_xlabel("firing rate (Hz)")
        ax.set_ylabel("neurons x examples")
        # one decimal: 99.8 % silent is not "100 %" when a bar shows the few that fired
        ax.set_title(f"{name}: {100 * c.fraction(0, 0):.1f} % silent")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_spike_raster(result: SimulationResult, layer: str, *, example: int = 0,
                      n_neurons: int = 50, seed: int = 0) -> Figure:
    """Spike raster of some neurons of one layer for one example.

    Parameters
    ----------
    result : SimulationResult
        Simulated with ``record_spikes=[layer]``.
    layer : str
        Spiking layer name.
    example : int
        Which example of the batch.
    n_neurons : int
        How many neurons to show, drawn at random (with ``seed``) among those that spiked at
        least once for this example (all if fewer); indices are the flat neuron indices.
    seed : int

    Returns
    -------
    matplotlib.figure.Figure
        x: time (ms), y: neuron index; a step with several spikes is drawn as one mark.

    Raises
    ------
    ValueError
        The spikes of ``layer`` were not recorded.
    """
    if layer not in result.spikes:
        raise ValueError(f"no recorded spikes for layer {layer!r}: simulate with "
                         f"record_spikes=[{layer!r}] (recorded: {list(result.spikes)})")
    spikes = np.asarray(result.spikes[layer][example]).reshape(result.n_steps, -1)
    active = np.flatnonzero(spikes.sum(axis=0) > 0)
    if active.size > n_neurons:
        active = np.sort(np.random.default_rng(seed).choice(active, n_neurons, replace=False))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    steps, rows = np.nonzero(spikes[:, active] > 0)
    times = (steps + 1) * result.dt * 1000.0
    ax.scatter(times, active[rows], marker="|", s=40, color="black")
    ax.set_xlim(0, result.n_steps * result.dt * 1000.0)
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("neuron index")
    ax.set_title(f"{layer}, example {example}: {active.size} active neurons shown")
    fig.tight_layout()
    return fig


def plot_accuracy_over_time(curves: dict, *, dt: float = DT, ann_accuracy: float | None = None,
                            title: str | None = None) -> Figure:
    """Accuracy after each time step, one line per curve.

    Parameters
    ----------
    curves : dict
        Label -> accuracy (0-1) per step, e.g. ``result.accuracy_over_time(labels)``.
    dt : float
        Time step (seconds) for the time axis.
    ann_accuracy : float, optional
        Accuracy (0-1) of the ANN, drawn as a dashed horizontal line.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        x: time (ms), y: accuracy (%).
    """
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for label, curve in curves.items():
        curve = np.asarray(curve, dtype=np.float64)
        ax.plot(np.arange(1, len(curve) + 1) * dt * 1000.0, 100 * curve, label=str(label))
    if ann_accuracy is not None:
        ax.axhline(100 * ann_accuracy, color="gray", linestyle="--",
                   label=f"ANN ({100 * ann_accuracy:.1f}%)")
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("accuracy (%)")
    ax.grid(alpha=0.3)
    if len(ax.get_lines()) > 1:
        ax.legend()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_accuracy_against_steps(table: pd.DataFrame, references: dict[str, float], *,
                                title: str | None = None) -> Figure:
    """Accuracy after T steps, one line per method, against T (log scale).

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`snnlib.experiments.few_steps.steps_table` (``method``, ``T``,
        ``accuracy``).
    references : dict
        Label -> ANN accuracy (0-1), each drawn as a dashed horizontal line.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        x: time steps T (log scale), y: accuracy (%) with 95 % intervals as error bars.
    """
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for method, rows in table.groupby("method", sort=False):
        values = np.array([100 * a.value for a in rows["accuracy"]])
        low = values - np.array([100 * a.low for a in rows["accuracy"]])
        high = np.array([100 * a.high for a in rows["accuracy"]]) - values
        ax.errorbar(rows["T"], values, yerr=[low, high], marker="o", capsize=3, label=method)
    for (label, value), style in zip(references.items(), ("--", ":", "-."), strict=False):
        ax.axhline(100 * value, color="gray", linestyle=style,
                   label=f"{label} ({100 * value:.1f}%)")
    ax.set_xscale("log", base=2)
    steps = sorted(set(table["T"]))
    ax.set_xticks(steps, [str(t) for t in steps])
    ax.set_xlabel("time steps T (1 ms each)")
    ax.set_ylabel("accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_rate_correlation(network: SpikingNetwork, x: np.ndarray, result: SimulationResult,
                          layer: str, *, scale_firing_rates: float | dict = 1.0,
                          max_points: int = 5000, seed: int = 0) -> Figure:
    """Measured SNN firing rate against the rate the ANN activation asks for, one layer.

    Parameters
    ----------
    network : SpikingNetwork
    x : ndarray
        The simulated inputs.
    result : SimulationResult
    layer : str
        Spiking layer name.
    scale_firing_rates : float or dict
        The scale of the simulation: expected rate = activation x scale (Hz).
    max_points : int
        At most this many (neuron, example) pairs, drawn at random with ``seed``.
    seed : int

    Returns
    -------
    matplotlib.figure.Figure
        Scatter with the identity line; the title gives Pearson's r over all pairs.
    """
    from snnlib.analysis.measures import expected_rates
    from snnlib.experiments.diagnostics import _pearson

    network.stage(layer)
    expected = expected_rates(network, x, scale_firing_rates=scale_firing_rates)[layer].ravel()
    measured = np.asarray(result.rates[layer], dtype=np.float64).ravel()
    if expected.shape != measured.shape:
        raise ValueError("x and result do not match: pass the inputs that were simulated")
    r = _pearson(expected, measured)
    keep = np.arange(expected.size)
    if keep.size > max_points:
        keep = np.random.default_rng(seed).choice(keep, max_points, replace=False)
    fig, ax = plt.subplots(figsize=(4.5, 4.2))
    ax.scatter(expected[keep], measured[keep], s=4, alpha=0.4, label="neuron x example")
    top = max(float(expected.max()), float(measured.max()), 1e-9)
    ax.plot([0, top], [0, top], "k--", lw=1, label="identity")
    ax.set_xlabel("ANN activation x scale (Hz)")
    ax.set_ylabel("SNN firing rate (Hz)")
    ax.set_title(f"{layer}: Pearson r = {r:.3f}")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_output_over_time(result: SimulationResult, *, example: int = 0,
                          dt: float | None = None) -> Figure:
    """The output scores of one example at every step, one line per class.

    Parameters
    ----------
    result : SimulationResult
    example : int
    dt : float, optional
        Time step (seconds); default ``result.dt``.

    Returns
    -------
    matplotlib.figure.Figure
        x: time (ms), y: output score (Keras output units).
    """
    dt = result.dt if dt is None else dt
    output = np.asarray(result.output[example])
    times = np.arange(1, output.shape[0] + 1) * dt * 1000.0
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for k in range(output.shape[1]):
        ax.plot(times, output[:, k], label=f"class {k}")
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("output score")
    ax.set_title(f"example {example}: predicted {int(np.argmax(output[-1]))} at the end")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_heatmap(table: pd.DataFrame, *, row: str, column: str, value: str,
                 fmt: str = "{:.1%}", title: str | None = None) -> Figure:
    """Heat map of a sweep table, the values written in the cells.

    Parameters
    ----------
    table : pandas.DataFrame
        E.g. from :func:`snnlib.experiments.diagnostics.sweep`; one value per (row, column) pair
        (duplicates
        are averaged).
    row, column, value : str
        Column names: rows of the map, columns of the map, the colour.
    fmt : str
        Format of the cell text (default: percent with one decimal, for accuracies in 0-1).
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    for name in (row, column, value):
        if name not in table.columns:
            raise ValueError(f"no column {name!r} in the table; columns: {list(table.columns)}")
    keys = table[[row, column]].astype(str)
    frame = table.assign(_row=keys[row], _col=keys[column])
    rows = list(dict.fromkeys(frame["_row"]))
    cols = list(dict.fromkeys(frame["_col"]))
    grid = frame.pivot_table(index="_row", columns="_col", values=value, aggfunc="mean")
    grid = grid.reindex(index=rows, columns=cols).to_numpy(dtype=np.float64)
    fig, ax = plt.subplots(figsize=(1.2 * len(cols) + 2.5, 0.6 * len(rows) + 1.8))
    image = ax.imshow(grid, cmap="viridis", aspect="auto")
    middle = np.nanmean(grid) if np.isfinite(grid).any() else 0
    for i in range(len(rows)):
        for j in range(len(cols)):
            if np.isfinite(grid[i, j]):
                ax.text(j, i, fmt.format(grid[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if grid[i, j] < middle else "black")
    ax.set_xticks(range(len(cols)), cols)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel(column)
    ax.set_ylabel(row)
    fig.colorbar(image, ax=ax, label=value)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# Single neurons and rate curves (chapters 3 and 4)
# --------------------------------------------------------------------------------------------

def plot_voltage_trace(voltage: np.ndarray, spikes: np.ndarray, currents: Sequence[float], *,
                       dt: float = DT) -> Figure:
    """Voltage and spikes of a few IF neurons over time, one panel per neuron.

    Parameters
    ----------
    voltage, spikes : ndarray, shape (n_steps, n_neurons)
        From :func:`snnlib.sim.neurons.integrate_and_fire` with a 1-D array of currents.
    currents : sequence of float
        The neurons' input currents (Hz), for the panel titles.
    dt : float
        Time step (seconds).

    Returns
    -------
    matplotlib.figure.Figure
        x: time (ms); y: voltage (threshold 1, dashed); a tick above the threshold per spike.
    """
    voltage, spikes = np.asarray(voltage), np.asarray(spikes)
    n_steps, n = voltage.shape
    times = np.arange(1, n_steps + 1) * dt * 1000.0
    fig, axes = plt.subplots(n, 1, figsize=(7, 1.9 * n + 0.4), sharex=True, squeeze=False)
    for i, ax in enumerate(axes[:, 0]):
        ax.plot(np.concatenate([[0.0], times]), np.concatenate([[0.0], voltage[:, i]]),
                drawstyle="steps-post", label="voltage v")
        ax.axhline(1.0, color="gray", linestyle="--", lw=1, label="threshold")
        spike_times = times[spikes[:, i] > 0]
        ax.plot(spike_times, np.full(spike_times.shape, 1.15), "|", color="C3", ms=12, mew=2,
                label=f"spikes ({int(spikes[:, i].sum())})")
        ax.set_ylim(-0.05, 1.3)
        ax.set_ylabel("voltage")
        ax.set_title(f"input current J = {currents[i]:g} Hz", fontsize=10)
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    axes[-1, 0].set_xlabel("time (ms)")
    fig.tight_layout()
    return fig


def plot_rate_quantization(true_rates: np.ndarray, measured: dict, errors: dict, *,
                           dt: float = DT) -> Figure:
    """Rate read from spike counts against the true rate, and the largest error against time.

    Parameters
    ----------
    true_rates : ndarray, shape (n,)
        Input currents (Hz), increasing.
    measured : dict
        ``n_steps`` -> measured rates (Hz), shape (n,), reset by subtraction; drawn left.
    errors : dict
        Label (e.g. "reset to zero") -> dict ``n_steps`` -> largest ``|measured - true|`` (Hz);
        drawn right on log-log axes with the bound ``1 / (n_steps dt)``.
    dt : float
        Time step (seconds).

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    for n_steps, rates in measured.items():
        left.plot(true_rates, rates, drawstyle="steps-post",
                  label=f"read over {n_steps * dt * 1000:g} ms")
    left.plot(true_rates, true_rates, "k--", lw=1, label="true rate")
    left.set_xlabel("true rate J (Hz)")
    left.set_ylabel("measured rate (Hz)")
    left.legend(fontsize=8)
    steps = sorted({n for curve in errors.values() for n in curve})
    durations = np.array(steps) * dt * 1000.0
    for (label, curve), marker in zip(errors.items(), "os^v", strict=False):
        right.plot(durations, [curve[n] for n in steps], marker + "-", label=label)
    right.plot(durations, [rate_error_bound(n, dt) for n in steps], "k--", lw=1,
               label="bound 1 / (T dt)")
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("reading time T dt (ms)")
    right.set_ylabel("largest rate error (Hz)")
    right.legend(fontsize=8)
    for ax in (left, right):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_scaled_rate_curves(x: np.ndarray, curves: dict, *, title: str | None = None
                            ) -> Figure:
    """Average neuron output against the ANN unit's input, one line per neuron type and scale.

    Parameters
    ----------
    x : ndarray, shape (n,)
        ANN unit inputs (activation units), positive and increasing (log axes).
    curves : dict
        Label -> :func:`snnlib.sim.neurons.scaled_rates` values on ``x``. Zeros (below a neuron's
        threshold) are not drawn on the log axes.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        Log-log axes; the ReLU (identity) line dashed black.
    """
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, values in curves.items():
        values = np.asarray(values, dtype=np.float64)
        ax.plot(x, np.where(values > 0, values, np.nan), label=label)
    ax.plot(x, x, "k--", lw=1.5, label="ReLU: max(0, x)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("input of the ANN unit x = Wh + b (activation units)")
    ax.set_ylabel("average output rates(s x) / s\n(activation units)")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.grid(alpha=0.3, which="both")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# The synapse (chapter 5)
# --------------------------------------------------------------------------------------------

def plot_filtered_spike_train(trace: dict, taus: Sequence[float]) -> Figure:
    """A neuron's spikes and their lowpass-filtered versions over time.

    Parameters
    ----------
    trace : dict
        From :func:`snnlib.experiments.diagnostics.neuron_trace`.
    taus : sequence of float
        Time constants (seconds) to show.

    Returns
    -------
    matplotlib.figure.Figure
        Top: the spike times (ms). Bottom: the filtered signal for each tau and the neuron's ANN
        activation (dashed), in activation units.
    """
    signal, dt = trace["signal"], trace["dt"]
    times = np.arange(1, len(signal) + 1) * dt * 1000.0
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 4.2), sharex=True,
                                      gridspec_kw=dict(height_ratios=[1, 3]))
    spike_times = times[trace["spikes"] > 0]
    top.vlines(spike_times, 0, 1, color="black", lw=1)
    top.set_yticks([])
    top.set_ylabel("spikes")
    top.set_title(f"one neuron at {trace['rate_hz']:.0f} Hz: each spike is a pulse of "
                  f"height 1/(s dt) = {1 / (trace['scale'] * dt):g}")
    for tau in taus:
        bottom.plot(times, lowpass(signal, tau, dt=dt),
                    label=f"filtered, tau = {synapse_label(tau)}")
    bottom.axhline(trace["activation"], color="gray", ls="--",
                   label=f"ANN activation ({trace['activation']:.2f})")
    bottom.set_xlabel("time (ms)")
    bottom.set_ylabel("signal (activation units)")
    bottom.grid(alpha=0.3)
    bottom.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_step_response(taus: Sequence[float], n_steps: int, *, dt: float = DT) -> Figure:
    """Step responses of lowpass filters, with each time constant marked.

    Parameters
    ----------
    taus : sequence of float
        Time constants (seconds).
    n_steps : int
        Steps to show.
    dt : float
        Time step (seconds).

    Returns
    -------
    matplotlib.figure.Figure
        x: time (ms), y: filter output (fraction of the input step); a dot at t = tau, where
        the output reaches 1 - 1/e = 63 %.
    """
    fig, ax = plt.subplots(figsize=(6, 3.3))
    times = np.arange(1, n_steps + 1) * dt * 1000.0
    for i, tau in enumerate(taus):
        response = step_response(tau, n_steps, dt=dt)
        ax.plot(times, response, color=f"C{i}", label=f"tau = {synapse_label(tau)}")
        k = int(round(tau / dt))
        if k <= n_steps:
            ax.plot(times[k - 1], response[k - 1], "o", color=f"C{i}")
    ax.axhline(1 - np.exp(-1), color="gray", ls=":", label="1 - 1/e = 63 %")
    ax.set_xlabel("time since the input switched on (ms)")
    ax.set_ylabel("filter output (fraction of input)")
    ax.set_ylim(0, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# Methods compared (chapter 8)
# --------------------------------------------------------------------------------------------

#: The costs :func:`plot_tradeoffs` can put on its shared axis, with their axis labels.
TRADEOFF_COSTS = {
    "spikes_per_example": "spikes per image (all layers, whole run)",
    "synops_per_example": "synaptic operations per image (spikes x fan-out, whole run)",
    "synops_to_latency": "synaptic operations per image, up to the latency",
}


def plot_tradeoffs(table: pd.DataFrame, *, front: np.ndarray | None = None,
                   ann_accuracy: float | None = None, title: str | None = None,
                   cost: str = "spikes_per_example") -> Figure:
    """Accuracy and latency against a cost per example, one numbered point per method.

    Two panels share the cost axis (log): the final accuracy with its 95 % interval, and the
    latency (time to come within 1 point of the ANN). Each point carries its row number in
    ``table`` (1-based), placed where it overlaps no other label or point, so that the figure
    stays legible however close the methods are; print the table with the same numbers beside
    it. Runs that never reach the ANN are drawn at the top of the latency panel as open markers
    ("never").

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`snnlib.experiments.tradeoffs.compare_methods` (one readout): columns
        ``accuracy``,
        the ``cost`` column, ``latency_ms``, and ``ci_low``/``ci_high`` if present. Rows with
        zero cost cannot sit on a log axis and are left out (say so in the text).
    front : ndarray of bool, optional
        From :func:`snnlib.experiments.tradeoffs.pareto_front`; those points get a black ring.
    ann_accuracy : float, optional
        Accuracy of the ANN (0-1), drawn as a dashed line.
    title : str, optional
    cost : {"spikes_per_example", "synops_per_example", "synops_to_latency"}
        The cost on the shared axis: spikes, or synaptic operations (what a spike costs
        depends on its fan-out: :func:`snnlib.analysis.measures.synaptic_operations`), over the
        whole
        run or up to the latency (:func:`snnlib.experiments.tradeoffs.costs_to_latency`: the cost at
        matched accuracy; rows without a latency have none and are left out).

    Returns
    -------
    matplotlib.figure.Figure
    """
    if cost not in TRADEOFF_COSTS:
        raise ValueError(f"cost={cost!r}; use one of {sorted(TRADEOFF_COSTS)}")
    if cost not in table:
        raise ValueError(f"table has no column {cost!r} "
                         "(snnlib.experiments.tradeoffs.compare_methods gives it)")
    numbers = np.arange(1, len(table) + 1)
    values = np.asarray(table[cost], dtype=np.float64)
    shown = np.isfinite(values) & (values > 0)
    data = table[shown]
    numbers = numbers[shown]
    front = np.zeros(len(table), bool) if front is None else np.asarray(front, dtype=bool)
    front = front[shown]
    spikes = np.asarray(data[cost], dtype=np.float64)
    accuracy = 100 * np.asarray(data["accuracy"], dtype=np.float64)
    latency = np.asarray(data["latency_ms"], dtype=np.float64)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2), sharex=True)
    if "ci_low" in data and "ci_high" in data:
        low = accuracy - 100 * np.asarray(data["ci_low"], dtype=np.float64)
        high = 100 * np.asarray(data["ci_high"], dtype=np.float64) - accuracy
        left.errorbar(spikes, accuracy, yerr=[low, high], fmt="none", ecolor="gray", lw=1,
                      zorder=2, label="95 % interval")
    left.scatter(spikes, accuracy, s=36, zorder=3, color="C0")
    reached = np.isfinite(latency)
    ceiling = (np.nanmax(latency) if reached.any() else 1.0) * 1.15 + 1.0
    right.scatter(spikes[reached], latency[reached], s=36, zorder=3, color="C1")
    if not reached.all():  # no legend entry for points that are not drawn
        right.scatter(spikes[~reached], np.full((~reached).sum(), ceiling), s=36, zorder=3,
                      facecolors="none", edgecolors="C1", label="never: not within 1 point of "
                      f"the ANN in {protocol.LATENCY_HORIZON_MS:g} ms")
    for ax, ys in ((left, accuracy), (right, np.where(reached, latency, ceiling))):
        ax.scatter(spikes[front], ys[front], s=160, facecolors="none", edgecolors="black",
                   linewidths=1.3, zorder=4, label="Pareto-optimal")
    if ann_accuracy is not None:
        left.axhline(100 * ann_accuracy, color="gray", linestyle="--", label="ANN")
    left.set_xscale("log")
    left.set_xlabel(TRADEOFF_COSTS[cost])
    right.set_xlabel(TRADEOFF_COSTS[cost])
    left.set_ylabel("accuracy at the end of the run (%)")
    right.set_ylabel("latency: time to within 1 point of the ANN (ms)")
    right.set_ylim(0, ceiling * 1.12)
    for ax in (left, right):
        ax.grid(alpha=0.3, which="both")
        ax.legend(loc="lower left" if ax is left else "upper right", fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    labels = [str(n) for n in numbers]
    _place_labels(left, spikes, accuracy, labels, front)
    _place_labels(right, spikes, np.where(reached, latency, ceiling), labels, front)
    return fig


def text_overlaps(fig: Figure) -> list[tuple[str, str]]:
    """Pairs of text elements of a figure whose boxes overlap.

    Checks what the figure adds: point labels (annotations), titles, axis labels and legend
    entries (tick labels are matplotlib's own layout and not checked). A self-check for figures
    with many labels: an empty list means none of them sits on top of another.
    """
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = []
    for ax in fig.axes:
        texts += list(ax.texts) + [ax.title, ax.xaxis.label, ax.yaxis.label]
        if ax.get_legend() is not None:
            texts += list(ax.get_legend().get_texts())
    if fig._suptitle is not None:
        texts.append(fig._suptitle)
    texts = [t for t in texts if t.get_visible() and t.get_text().strip()]
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts]
    overlaps = []
    for i, (a, box_a) in enumerate(boxes):
        for b, box_b in boxes[i + 1:]:
            if box_a.overlaps(box_b) and box_a.width > 0 and box_b.width > 0:
                overlaps.append((a, b))
    return overlaps


# Offsets (points) tried in turn for a label: right of the point first, then above/below, then
# left.
_LABEL_OFFSETS = [(6, 4), (6, -12), (6, 14), (6, -22), (6, 24), (-6, 4), (-6, -12), (-6, 14)]


def _place_labels(ax: Any, xs: Any, ys: Any, texts: Any, bold: Any) -> None:
    """Label each point where the label overlaps no other label and no point (first free offset)."""
    ax.figure.canvas.draw()
    renderer = ax.figure.canvas.get_renderer()
    # every point's marker is taken space too (about 8 points across)
    points = np.column_stack([np.asarray(xs, float), np.asarray(ys, float)])
    centres = ax.transData.transform(points)
    half = 4 * ax.figure.dpi / 72
    taken = [matplotlib.transforms.Bbox([[x - half, y - half], [x + half, y + half]])
             for x, y in centres]
    for x, y, text, best in zip(xs, ys, texts, bold, strict=True):
        for dx, dy in _LABEL_OFFSETS:
            label = ax.annotate(text, (x, y), textcoords="offset points", xytext=(dx, dy),
                                fontsize=8, fontweight="bold" if best else "normal",
                                ha="left" if dx > 0 else "right")
            box = label.get_window_extent(renderer)
            if not any(box.overlaps(other) for other in taken):
                break
            label.remove()
        else:  # no free place: keep the first choice rather than drop the label
            label = ax.annotate(text, (x, y), textcoords="offset points", xytext=_LABEL_OFFSETS[0],
                                fontsize=8, fontweight="bold" if best else "normal")
            box = label.get_window_extent(renderer)
        taken.append(box)
