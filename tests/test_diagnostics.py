"""Diagnostics: rate correlation, firing summaries, sweeps."""
import numpy as np
import pytest

from snnlib.analysis.measures import synaptic_operations
from snnlib.convert import convert
from snnlib.experiments.diagnostics import (
    ann_accuracy_of,
    evaluate,
    firing_rate_summary,
    layer_rate_correlation,
    neuron_trace,
    sweep,
)
from snnlib.sim.simulator import SimulationResult, simulate


@pytest.fixture
def dense_net(dense_model):
    return convert(dense_model)


@pytest.fixture
def conv_net(conv_model):
    return convert(conv_model)


def test_rate_correlation_high_for_long_runs(dense_net, images6):
    result = simulate(dense_net, images6, n_steps=1000, scale_firing_rates=1000.0, synapse=0.005)
    r = layer_rate_correlation(dense_net, images6, result, scale_firing_rates=1000.0)
    # one value per spiking layer
    assert sorted(r) == ["hidden0", "hidden1"]
    # after 1 s at up to ~1000 Hz, with a synapse smoothing the spikes into hidden1, the rates
    # follow the activations closely
    assert min(r.values()) > 0.99
    unfiltered = simulate(dense_net, images6, n_steps=1000, scale_firing_rates=1000.0)
    # without a synapse, steps with a negative current into hidden1 are clipped one by one
    # (max(J, 0) per step): its rates follow less closely than the first layer's
    r_unfiltered = layer_rate_correlation(dense_net, images6, unfiltered)
    assert r_unfiltered["hidden1"] < r_unfiltered["hidden0"]


def test_rate_correlation_silent_layer_is_nan(dense_net, images6):
    result = simulate(dense_net, images6, n_steps=1, scale_firing_rates=1e-3)
    r = layer_rate_correlation(dense_net, images6, result)
    # nothing spikes in one step at 1 mHz: the correlation is undefined, not an error
    assert np.isnan(r["hidden0"]) and np.isnan(r["hidden1"])
    with pytest.raises(ValueError, match="examples"):
        layer_rate_correlation(dense_net, images6[:2], result)


def test_firing_rate_summary_counts():
    counts = {
        # 2 examples x 4 neurons, 10 steps of 1 ms
        "a": np.array([[0, 0, 10, 5], [0, 3, 12, 0]]),
        "b": np.zeros((2, 3), dtype=int),
    }
    result = SimulationResult(np.zeros((2, 10, 2)), counts, {}, n_steps=10, dt=0.001)
    table = firing_rate_summary(result).set_index("layer")
    # neurons per example
    assert table.loc["a", "neurons"] == 4
    # 4 of the 8 (neuron, example) pairs never spike; neuron 0 is silent on both examples
    assert table.loc["a", "fraction_silent"] == 4 / 8
    assert table.loc["a", "fraction_never_active"] == 1 / 4
    # 10 and 12 spikes in 10 steps: a spike (or more) every step
    assert table.loc["a", "fraction_saturated"] == 2 / 8
    # 15 and 15 spikes per example; mean rate = 30 spikes / 8 / 0.01 s
    assert table.loc["a", "spikes_per_example"] == 15
    assert table.loc["a", "mean_rate_hz"] == pytest.approx(30 / 8 / 0.01)
    assert table.loc["a", "median_rate_hz"] == pytest.approx(np.median([0, 0, 10, 5, 0, 3, 12, 0])
                                                             / 0.01)
    # a layer without spikes is fully silent
    assert table.loc["b", "fraction_silent"] == 1.0 and table.loc["b", "mean_rate_hz"] == 0


def test_sweep_rows_and_accuracy(dense_net, dense_model, images6, rng):
    x = rng.random((12, 6, 6, 1)).astype(np.float32)
    labels = dense_net.forward(x).argmax(axis=1)
    other = convert(dense_model, calibration=images6, normalization="max")
    grid = {"network": [("raw", dense_net), ("max", other)], "scale_firing_rates": [100, 1000],
            "synapse": [None, 0.005]}
    table = sweep(dense_net, x, labels, n_steps=15, grid=grid, max_spikes_per_step=1)
    # one row per combination, a column per parameter, the network column holds its label
    assert len(table) == 2 * 2 * 2
    assert list(table["network"]) == ["raw"] * 4 + ["max"] * 4
    # each accuracy equals a direct simulation with the same settings
    row = table.iloc[7]  # ("max", 1000, 0.005): the last combination
    direct = simulate(other, x, n_steps=15, scale_firing_rates=1000, synapse=0.005,
                      max_spikes_per_step=1)
    assert row["accuracy"] == direct.accuracy(labels)
    np.testing.assert_array_equal(row["accuracy_over_time"], direct.accuracy_over_time(labels))
    assert row["synops_per_example"] == pytest.approx(synaptic_operations(other, direct)["total"])
    # the protocol: mean readout, interval around the accuracy, latency relative to the ANN
    assert set(table["readout"]) == {"mean"}
    assert (table["ci_low"] <= table["accuracy"]).all()
    assert (table["accuracy"] <= table["ci_high"]).all()
    assert np.allclose(table["latency_ms"], table["latency_steps"] * 1.0, equal_nan=True)
    # the labels are the network's own rate-mode predictions: the ANN reference is 100 %
    assert (table["ann_accuracy"] == 1.0).all()
    np.testing.assert_array_equal(row["correct"], direct.correct(labels))
    # a parameter may not be both swept and fixed
    with pytest.raises(ValueError, match="both"):
        sweep(dense_net, x, labels, n_steps=5, grid={"synapse": [None]}, synapse=0.01)


def test_sweep_gives_both_readouts_from_one_run(dense_net, rng):
    x = rng.random((10, 6, 6, 1)).astype(np.float32)
    labels = dense_net.forward(x).argmax(axis=1)
    table = sweep(dense_net, x, labels, n_steps=12, grid={"scale_firing_rates": [200, 2000]},
                  readout=("mean", "last"))
    # two rows per combination, one per readout
    assert table["readout"].tolist() == ["mean", "last", "mean", "last"]
    direct = simulate(dense_net, x, n_steps=12, scale_firing_rates=2000)
    assert table.iloc[3]["accuracy"] == direct.accuracy(labels, readout="last")
    assert table.iloc[2]["accuracy"] == direct.accuracy(labels, readout="mean")
    with pytest.raises(ValueError, match="readout"):
        sweep(dense_net, x, labels, n_steps=5, grid={"synapse": [None]}, readout="median")


def test_latency_is_relative_to_the_ann(dense_net, rng):
    x = rng.random((10, 6, 6, 1)).astype(np.float32)
    labels = dense_net.forward(x).argmax(axis=1)
    assert ann_accuracy_of(dense_net, x, labels) == 1.0
    # a silent run stays at one class: it never gets within 1 point of the ANN (no latency),
    # although it "settles" at once on its own final value
    summary, result = evaluate(dense_net, x, labels, n_steps=5, scale_firing_rates=1e-6)
    assert sum(float(np.sum(c)) for c in result.spike_counts.values()) == 0
    assert np.isnan(summary["latency_ms"]) and summary["accuracy"] < 1.0


def test_neuron_trace(conv_model, images12):

    network = convert(conv_model)
    trace = neuron_trace(network, images12[:1], "conv_a", scale_firing_rates=300.0, n_steps=200)
    # the picked neuron is the most active one, and its spikes are what simulate counts
    assert trace["activation"] > 0
    assert trace["spikes"].sum() > 0
    assert trace["rate_hz"] == pytest.approx(trace["spikes"].sum() / 0.2)
    # the mean of its signal approaches its activation (first layer, constant input: within
    # one spike over the run, i.e. 1 / (s * duration))
    assert abs(trace["signal"].mean() - trace["activation"]) <= 1 / (300.0 * 0.2) + 1e-9
    with pytest.raises(ValueError, match="one input"):
        neuron_trace(network, images12[:2], "conv_a", scale_firing_rates=300.0, n_steps=10)
    with pytest.raises(ValueError, match="not a spiking layer"):
        neuron_trace(network, images12[:1], "pool", scale_firing_rates=300.0, n_steps=10)
