"""Tests of snnlib.tradeoffs: method comparison table, Pareto front, figure."""
import matplotlib
import numpy as np
import pandas as pd
import pytest

from snnlib import tradeoffs
from snnlib.convert import convert
from snnlib.regularize import spikes_per_example
from snnlib.simulate import simulate


def test_pareto_front_known_answer():
    table = pd.DataFrame({
        "accuracy": [0.9, 0.9, 0.95, 0.8, 0.95, np.nan],
        "spikes_per_example": [100, 200, 300, 50, 300, 10],
        "latency_ms": [20, 20, 30, 50, 25, 1],
    })
    front = tradeoffs.pareto_front(table)
    # row 1 is dominated by row 0 (same accuracy and latency, more spikes); row 2 by row 4
    # (same accuracy and spikes, later); rows with nan are never on the front
    assert front.tolist() == [True, False, False, True, True, False]


def test_pareto_front_single_objective():
    table = pd.DataFrame({"accuracy": [0.5, 0.7, 0.7], "spikes_per_example": [1, 1, 1],
                          "latency_ms": [1, 1, 1]})
    # ties are not dominated; the lower accuracy is
    assert tradeoffs.pareto_front(table).tolist() == [False, True, True]


def test_spiking_neurons(dense_model):
    # hidden0 (16) + hidden1 (12) spiking neurons; the readout does not spike
    assert tradeoffs.spiking_neurons(convert(dense_model)) == 28


def test_compare_methods(dense_model, images6):
    network = convert(dense_model)
    labels = np.array([0, 1, 2, 3])
    methods = [("low", network, {"scale_firing_rates": 50.0}),
               ("high, filtered", network, {"scale_firing_rates": 400.0, "synapse": 0.005})]
    table = tradeoffs.compare_methods(methods, images6, labels, n_steps=20)
    # one row per method, in order
    assert table["method"].tolist() == ["low", "high, filtered"]
    for (_, _, settings), (_, row) in zip(methods, table.iterrows()):
        result = simulate(network, images6, n_steps=20, **settings)
        # spikes per example are the simulation's
        assert row["spikes_per_example"] == pytest.approx(spikes_per_example(result), rel=1e-9)
        assert row["accuracy"] == pytest.approx(result.accuracy(labels))
    # more rate, more spikes
    assert table["spikes_per_example"][1] > table["spikes_per_example"][0]
    with pytest.raises(ValueError, match="twice"):
        tradeoffs.compare_methods(methods[:1] * 2, images6, labels, n_steps=5)


def test_plot_tradeoffs():
    table = pd.DataFrame({"method": ["a", "b", "zero"], "accuracy": [0.9, 0.95, 0.1],
                          "spikes_per_example": [100.0, 1000.0, 0.0],
                          "latency_ms": [10.0, 20.0, 1.0]})
    fig = tradeoffs.plot_tradeoffs(table, front=np.array([True, True, False]), ann_accuracy=0.97)
    ax = fig.axes[0]
    # log spike axis with units in the labels; zero-spike rows are left out (2 labels drawn)
    assert ax.get_xscale() == "log" and "spikes" in ax.get_xlabel()
    assert len(ax.texts) == 2
    matplotlib.pyplot.close(fig)


def test_plot_tradeoffs_labels_do_not_overlap():
    # four methods at almost the same place: their labels must be moved apart
    table = pd.DataFrame({"method": [f"method number {i}" for i in range(4)],
                          "accuracy": [0.960, 0.961, 0.962, 0.963],
                          "spikes_per_example": [1000.0, 1010.0, 1020.0, 1030.0],
                          "latency_ms": [10.0, 20.0, 30.0, 40.0]})
    fig = tradeoffs.plot_tradeoffs(table)
    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    boxes = [text.get_window_extent(renderer) for text in ax.texts]
    assert len(boxes) == 4
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    matplotlib.pyplot.close(fig)
