"""Accuracy, latency and spikes of every conversion method, side by side, and their Pareto front.

:func:`compare_methods` runs :func:`snnlib.diagnostics.sweep` once per method (a labelled network
and its simulation settings) and adds the spikes per example; :func:`pareto_front` marks the
methods that no other method beats on every objective at once; :func:`plot_tradeoffs` draws
accuracy against spikes, coloured by latency.
"""
import numpy as np


def spiking_neurons(network):
    """Number of spiking neurons per example (all spiking layers together)."""
    return int(sum(np.prod(network.stage(name).output_shape) for name in network.spiking_layers))


def compare_methods(methods, x, labels, *, n_steps, dt=0.001, readout="last"):
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

    from snnlib.diagnostics import sweep

    labels_seen, rows = set(), []
    for label, network, settings in methods:
        if label in labels_seen:
            raise ValueError(f"method label {label!r} is used twice")
        labels_seen.add(label)
        settings = dict(settings)
        table = sweep(network, x, labels, n_steps=n_steps, grid={"dt": [dt]}, readout=readout,
                      **settings)
        row = table.iloc[0].to_dict()
        row["method"] = label
        duration = n_steps * dt
        row["spikes_per_example"] = row["mean_rate_hz"] * spiking_neurons(network) * duration
        row["settings"] = ", ".join(f"{k}={v}" for k, v in settings.items()) or "defaults"
        rows.append(row)
    columns = ["method", "accuracy", "spikes_per_example", "latency_ms", "steps_to_within_1pt",
               "mean_rate_hz", "synops_per_example", "accuracy_over_time", "settings"]
    return pd.DataFrame(rows)[columns]


def pareto_front(table, *, maximize=("accuracy",), minimize=("spikes_per_example", "latency_ms")):
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


def plot_tradeoffs(table, *, front=None, ann_accuracy=None, title=None):
    """Accuracy against spikes per example (log), coloured by latency; Pareto points circled.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`compare_methods`. Rows with zero spikes cannot sit on a log axis and are
        left out (say so in the text).
    front : ndarray of bool, optional
        From :func:`pareto_front`; those points get a black ring and bold labels.
    ann_accuracy : float, optional
        Accuracy of the ANN (0-1), drawn as a dashed line.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    shown = np.asarray(table["spikes_per_example"], dtype=np.float64) > 0
    data = table[shown]
    front = np.zeros(len(table), bool) if front is None else np.asarray(front)[shown]
    fig, ax = plt.subplots(figsize=(8.5, 5))
    latency = np.asarray(data["latency_ms"], dtype=np.float64)
    points = ax.scatter(data["spikes_per_example"], 100 * data["accuracy"], c=latency,
                        cmap="viridis", s=70, zorder=3)
    ax.scatter(data["spikes_per_example"][front], 100 * data["accuracy"][front], s=220,
               facecolors="none", edgecolors="black", linewidths=1.5, zorder=4,
               label="Pareto-optimal (accuracy, spikes, latency)")
    if ann_accuracy is not None:
        ax.axhline(100 * ann_accuracy, color="gray", linestyle="--", label="ANN")
    ax.set_xscale("log")
    ax.set_xlabel("spikes per image (all layers, whole run)")
    ax.set_ylabel("accuracy at the end of the run (%)")
    fig.colorbar(points, ax=ax, label="latency: time to within 1 point of final accuracy (ms)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    _place_labels(ax, data["spikes_per_example"], 100 * data["accuracy"], data["method"], front)
    return fig


# Offsets (points) tried in turn for a label: right of the point first, then above/below, then left.
_LABEL_OFFSETS = [(6, 4), (6, -12), (6, 14), (6, -22), (6, 24), (-6, 4), (-6, -12), (-6, 14)]


def _place_labels(ax, xs, ys, texts, bold):
    """Label each point where the label overlaps no earlier label (first free offset)."""
    renderer = ax.figure.canvas.get_renderer()
    taken = []
    for x, y, text, best in zip(xs, ys, texts, bold):
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
