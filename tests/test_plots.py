"""Plots: the figures have the expected panels, lines and labelled axes (with units)."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from snnlib.convert import convert  # noqa: E402
from snnlib.experiments.diagnostics import neuron_trace  # noqa: E402
from snnlib.experiments.plots import (  # noqa: E402
    plot_accuracy_over_time,
    plot_digits,
    plot_filtered_spike_train,
    plot_heatmap,
    plot_output_over_time,
    plot_rate_correlation,
    plot_rate_histograms,
    plot_rate_quantization,
    plot_scaled_rate_curves,
    plot_spike_raster,
    plot_step_response,
    plot_tradeoffs,
    plot_training_history,
    plot_voltage_trace,
    text_overlaps,
)
from snnlib.sim.neurons import integrate_and_fire  # noqa: E402
from snnlib.sim.simulator import simulate  # noqa: E402


@pytest.fixture
def network(dense_model):
    return convert(dense_model)


@pytest.fixture
def result(network, images6):
    return simulate(network, images6, n_steps=40, scale_firing_rates=500.0,
                    record_spikes=["hidden1"])


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_rate_histograms(result):
    fig = plot_rate_histograms(result, bins=10)
    # one panel per spiking layer, rates in Hz on x, counts on a log axis
    assert len(fig.axes) == 2
    assert all(ax.get_xlabel() == "firing rate (Hz)" for ax in fig.axes)
    assert all(ax.get_yscale() == "log" for ax in fig.axes)
    # the title names the layer and the silent fraction
    assert fig.axes[0].get_title().startswith("hidden0:") and "silent" in fig.axes[0].get_title()


def test_spike_raster(result):
    fig = plot_spike_raster(result, "hidden1", n_neurons=5)
    ax = fig.axes[0]
    # time in ms on x, neuron index on y
    assert ax.get_xlabel() == "time (ms)" and ax.get_ylabel() == "neuron index"
    # at most 5 neurons shown, one mark per step with spikes
    offsets = ax.collections[0].get_offsets()
    assert len(np.unique(offsets[:, 1])) <= 5 and len(offsets) > 0
    # the x axis covers the 40 ms of the run
    assert ax.get_xlim() == (0, 40.0)
    # spikes that were not recorded: a clear error naming the option
    with pytest.raises(ValueError, match="record_spikes"):
        plot_spike_raster(result, "hidden0")


def test_accuracy_over_time():
    curves = {"a": np.linspace(0.1, 0.9, 20), "b": np.linspace(0.2, 0.8, 20)}
    fig = plot_accuracy_over_time(curves, dt=0.002, ann_accuracy=0.95, title="t")
    ax = fig.axes[0]
    # two curves and the dashed ANN line, with a legend
    assert len(ax.get_lines()) == 3 and ax.get_legend() is not None
    assert ax.get_lines()[2].get_linestyle() == "--"
    # axes in ms and %: the last step of 20 at 2 ms is at 40 ms, 90 %
    assert ax.get_xlabel() == "time (ms)" and ax.get_ylabel() == "accuracy (%)"
    assert ax.get_lines()[0].get_xdata()[-1] == pytest.approx(40.0)
    assert ax.get_lines()[0].get_ydata()[-1] == pytest.approx(90.0)


def test_rate_correlation_plot(network, images6, result):
    fig = plot_rate_correlation(network, images6, result, "hidden0", scale_firing_rates=500.0,
                                max_points=30)
    ax = fig.axes[0]
    # expected and measured rates in Hz, with the identity line, r in the title
    assert ax.get_xlabel() == "ANN activation x scale (Hz)"
    assert ax.get_ylabel() == "SNN firing rate (Hz)"
    assert len(ax.get_lines()) == 1 and "Pearson r" in ax.get_title()
    # at most max_points points (4 examples x 16 neurons = 64 pairs)
    assert len(ax.collections[0].get_offsets()) == 30


def test_output_over_time(result):
    fig = plot_output_over_time(result, example=1)
    ax = fig.axes[0]
    # one line per class, time in ms
    assert len(ax.get_lines()) == 4
    assert ax.get_xlabel() == "time (ms)"
    np.testing.assert_allclose(ax.get_lines()[2].get_ydata(), result.output[1, :, 2])


def test_heatmap():
    table = pd.DataFrame({"scale": [1, 1, 10, 10, 100, 100],
                          "synapse": [None, 0.005] * 3,
                          "accuracy": [0.1, 0.2, 0.5, 0.6, 0.9, 0.95]})
    fig = plot_heatmap(table, row="scale", column="synapse", value="accuracy", title="acc")
    ax, colorbar = fig.axes
    # rows and columns labelled, a colorbar, the values written in the 6 cells
    assert ax.get_xlabel() == "synapse" and ax.get_ylabel() == "scale"
    assert colorbar.get_ylabel() == "accuracy"
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 6 and "95.0%" in texts
    # the image has 3 rows x 2 columns in the table's order
    assert ax.images[0].get_array().shape == (3, 2)
    assert ax.images[0].get_array()[2, 1] == pytest.approx(0.95)
    with pytest.raises(ValueError, match="no column"):
        plot_heatmap(table, row="scale", column="tau", value="accuracy")


def test_plot_digits_marks_wrong_predictions_in_red():
    images = np.zeros((3, 28, 28, 1), np.float32)
    fig = plot_digits(images, np.array([1, 2, 3]), np.array([1, 5, 3]), n=3, ncols=3)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    colors = [ax.title.get_color() for ax in fig.axes if ax.get_title()]
    # one panel per digit, titled label / prediction, the wrong one (2 -> 5) in red
    assert titles == ["label 1 / pred 1", "label 2 / pred 5", "label 3 / pred 3"]
    assert colors == ["black", "red", "black"]
    with pytest.raises(ValueError, match="at least one image"):
        plot_digits(images[:0], np.array([]))


def test_plot_training_history_has_one_line_per_set():
    fig = plot_training_history({"accuracy": [0.5, 0.9], "val_accuracy": [0.6, 0.8]})
    ax = fig.axes[0]
    # training and test curves, in percent, against the epoch number
    assert [line.get_label() for line in ax.get_lines()] == ["training images", "test images"]
    assert ax.get_ylabel() == "accuracy (%)" and ax.get_xlabel() == "epoch"
    assert np.allclose(ax.get_lines()[1].get_ydata(), [60, 80])


def test_neuron_figures_have_labelled_axes():
    voltage, spikes = integrate_and_fire([70.0, 230.0], 50)
    figs = [
        plot_voltage_trace(voltage, spikes, [70.0, 230.0]),
        plot_rate_quantization(np.linspace(0, 100, 11), {10: np.zeros(11)},
                               {"subtract": {10: 100.0, 100: 10.0}}),
        plot_scaled_rate_curves(np.logspace(-1, 1, 5), {"LIF s=10": np.ones(5)}),
    ]
    for fig in figs:
        for ax in fig.axes:
            # every panel names its axes (units in the labels)
            assert ax.get_ylabel()
        assert fig.axes[-1].get_xlabel()


def test_synapse_figures(conv_model, images12):
    trace = neuron_trace(convert(conv_model), images12[:1], "conv_a", scale_firing_rates=300.0,
                         n_steps=50)
    fig = plot_filtered_spike_train(trace, [0.005, 0.02])
    # two panels, the lower one with a line per tau plus the activation, time in ms
    bottom = fig.axes[1]
    assert len(bottom.get_lines()) == 3 and "ms" in bottom.get_xlabel()
    fig = plot_step_response([0.005, 0.02], 60)
    assert "ms" in fig.axes[0].get_xlabel() and fig.axes[0].get_legend() is not None


def test_plot_tradeoffs():
    table = pd.DataFrame({"method": ["a", "b", "zero"], "accuracy": [0.9, 0.95, 0.1],
                          "ci_low": [0.88, 0.93, 0.08], "ci_high": [0.92, 0.96, 0.12],
                          "spikes_per_example": [100.0, 1000.0, 0.0],
                          "latency_ms": [10.0, np.nan, 1.0]})
    fig = plot_tradeoffs(table, front=np.array([True, True, False]), ann_accuracy=0.97)
    left, right = fig.axes[:2]
    # log spike axis with units in the labels; zero-spike rows are left out (2 numbers per panel)
    assert left.get_xscale() == "log" and "spikes" in left.get_xlabel()
    assert sorted(t.get_text() for t in left.texts) == ["1", "2"]
    assert sorted(t.get_text() for t in right.texts) == ["1", "2"]
    # latency is an axis of its own, with its unit; a run that never reaches the ANN is shown
    assert "latency" in right.get_ylabel() and "ms" in right.get_ylabel()
    assert any("never" in t.get_text() for t in right.get_legend().get_texts())


def test_plot_tradeoffs_on_synaptic_operations():
    table = pd.DataFrame({"method": ["a", "b"], "accuracy": [0.9, 0.95],
                          "spikes_per_example": [100.0, 1000.0],
                          "synops_per_example": [5e4, 2e4], "latency_ms": [10.0, 3.0]})
    fig = plot_tradeoffs(table, cost="synops_per_example")
    left = fig.axes[0]
    assert "synaptic operations" in left.get_xlabel()
    assert sorted(left.collections[0].get_offsets()[:, 0].tolist()) == [2e4, 5e4]
    # the cost at matched accuracy: rows that never reach the ANN have none and are left out,
    # and the legend names no "never" points when none is drawn
    table["synops_to_latency"] = [np.nan, 8e3]
    table["latency_ms"] = [np.nan, 3.0]
    fig = plot_tradeoffs(table, cost="synops_to_latency")
    left, right = fig.axes
    assert "up to the latency" in left.get_xlabel()
    assert left.collections[0].get_offsets()[:, 0].tolist() == [8e3]
    assert not any("never" in t.get_text() for t in right.get_legend().get_texts())
    with pytest.raises(ValueError, match="cost='neurons'"):
        plot_tradeoffs(table, cost="neurons")
    with pytest.raises(ValueError, match="no column 'synops_per_example'"):
        plot_tradeoffs(table.drop(columns="synops_per_example"), cost="synops_per_example")


def test_plot_tradeoffs_labels_do_not_overlap():
    # eight methods at almost the same place: their labels must be moved apart, off the points
    table = pd.DataFrame({"method": [f"method number {i}" for i in range(8)],
                          "accuracy": 0.960 + 0.001 * np.arange(8),
                          "spikes_per_example": 1000.0 + 10 * np.arange(8),
                          "latency_ms": 10.0 + np.arange(8)})
    fig = plot_tradeoffs(table)
    for ax in fig.axes[:2]:
        assert len(ax.texts) == 8
    # no text of the figure overlaps another (labels, titles, tick labels, legends)
    assert text_overlaps(fig) == []
