"""Plot helpers. Each returns a :class:`matplotlib.figure.Figure` with labelled axes."""
import matplotlib.pyplot as plt
import numpy as np


def plot_digits(images, labels, predictions=None, *, n=12, ncols=6, title=None):
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


def plot_training_history(history):
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


def _spiking_counts(result):
    if not result.spike_counts:
        raise ValueError("the simulation result has no spiking layers")
    return result.spike_counts


def plot_rate_histograms(result, *, bins=30):
    """Histogram of the neurons' firing rates, one panel per spiking layer.

    Parameters
    ----------
    result : SimulationResult
        From :func:`snnlib.simulate.simulate`; every (neuron, example) pair is one count.
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
    for ax, (name, c) in zip(axes[0], counts.items()):
        rates = np.asarray(c, dtype=np.float64).ravel() / result.duration
        top = rates.max() if rates.max() > 0 else 1.0 / result.duration
        ax.hist(rates, bins=bins, range=(0, top), color="C0")
        ax.set_yscale("log")
        ax.set_xlabel("firing rate (Hz)")
        ax.set_ylabel("neurons x examples")
        ax.set_title(f"{name}: {np.mean(rates == 0):.0%} silent")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_spike_raster(result, layer, *, example=0, n_neurons=50, seed=0):
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


def plot_accuracy_over_time(curves, *, dt=0.001, ann_accuracy=None, title=None):
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


def plot_rate_correlation(network, x, result, layer, *, scale_firing_rates=1.0, max_points=5000,
                          seed=0):
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
    from snnlib.diagnostics import _pearson, expected_rates

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


def plot_output_over_time(result, *, example=0, dt=None):
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


def plot_heatmap(table, *, row, column, value, fmt="{:.1%}", title=None):
    """Heat map of a sweep table, the values written in the cells.

    Parameters
    ----------
    table : pandas.DataFrame
        E.g. from :func:`snnlib.diagnostics.sweep`; one value per (row, column) pair (duplicates
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
