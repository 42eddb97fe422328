"""Tests of snnlib.sim.event_driven: computing from the spikes alone gives the dense path's
spikes."""
import itertools

import numpy as np
import pytest

from snnlib.ann.data import load_mnist
from snnlib.ann.models import load_pretrained_convnet
from snnlib.convert import convert
from snnlib.sim import compiled, event_driven
from snnlib.sim.simulator import simulate


@pytest.mark.parametrize("threshold", [None, 1.0])
def test_event_driven_path_gives_the_dense_path_spike_counts(monkeypatch, threshold):
    """The event-driven path (sparse linear operations, closed-form first layer) is exact."""
    module = event_driven
    calls = []
    run_chunk = event_driven.run_chunk
    monkeypatch.setattr(module, "run_chunk", lambda *a, **k: calls.append(1) or run_chunk(*a, **k))
    network = convert(load_pretrained_convnet())
    (_, _), (x_test, _) = load_mnist()
    x = x_test[:20]
    if threshold is not None:  # sparse products at every step and every rate
        monkeypatch.setattr(module, "SPARSE_THRESHOLD", threshold)
        monkeypatch.setattr(module, "DENSE_THRESHOLD", threshold)
    for scale, synapse, reset, max_spikes in itertools.product(
            [1.0, 100.0, 1000.0], [None, 0.005], ["subtract", "zero"], [None, 1]):
        kwargs = dict(n_steps=30, scale_firing_rates=scale, synapse=synapse, reset=reset,
                      max_spikes_per_step=max_spikes, dtype=np.float64)
        dense = simulate(network, x, method="dense", **kwargs)
        sparse = simulate(network, x, method="event", **kwargs)
        # float64: the same spikes; outputs agree to summation-order rounding
        for name in dense.spike_counts:
            np.testing.assert_array_equal(sparse.spike_counts[name], dense.spike_counts[name])
        np.testing.assert_allclose(sparse.output, dense.output, rtol=0, atol=1e-9)
    # the event-driven path did run, so this compared two different computations
    assert calls


def small_vgg(seed):
    """Conv (no bias) + BatchNormalization + ReLU blocks with average pooling between spiking
    layers: tiling (2x2), overlapping with "same" padding (3x3, stride 2) and global (3x3)."""
    import tensorflow as tf

    layers = tf.keras.layers
    tf.keras.utils.set_random_seed(seed)
    inp = tf.keras.Input((12, 12, 1), name="image")
    x = inp
    for i, (filters, pool) in enumerate([(4, layers.AveragePooling2D(2)), (6, None),
                                         (6, layers.AveragePooling2D(3, 2, padding="same")),
                                         (8, layers.AveragePooling2D(3))]):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = layers.BatchNormalization(name=f"bn{i}")(x)
        x = layers.Activation("relu", name=f"relu{i}")(x)
        x = pool(x) if pool is not None else x
    out = layers.Dense(3, name="out")(layers.Flatten(name="flatten")(x))
    model = tf.keras.Model(inp, out)
    rng = np.random.default_rng(seed)
    for layer in model.layers:  # batch statistics that move the folded biases off zero
        if isinstance(layer, layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, n), rng.uniform(-0.1, 0.3, n),
                               rng.uniform(-0.1, 0.1, n), rng.uniform(0.5, 2, n)])
    return model


@pytest.mark.parametrize("neuron", ["spiking_relu", "if"])
@pytest.mark.parametrize("threshold", [None, 1.0])
def test_event_driven_pools_spikes_exactly(monkeypatch, neuron, threshold):
    """Average pooling between spiking layers, batch normalization folded into bias-free
    convolutions: the event-driven engine gives the dense engine's spikes, for both neurons."""
    network = convert(small_vgg(0))
    # every pooling sits between spiking layers, and the engine takes the network
    assert [len(maps) for maps, _, _ in event_driven.segments(network)] == [1, 0, 1, 2]
    x = np.random.default_rng(1).random((6, 12, 12, 1))
    if threshold is not None:  # sparse products at every step and every rate
        monkeypatch.setattr(event_driven, "SPARSE_THRESHOLD", threshold)
        monkeypatch.setattr(event_driven, "DENSE_THRESHOLD", threshold)
    for scale, synapse, max_spikes, initial_voltage in [
            (100.0, None, None, 0.0), (1000.0, None, 1, 0.5), (300.0, 0.005, None, 0.5),
            (1000.0, 0.005, 1, 0.0)]:
        kwargs = dict(n_steps=30, scale_firing_rates=scale, synapse=synapse, neuron=neuron,
                      max_spikes_per_step=max_spikes, initial_voltage=initial_voltage,
                      dtype=np.float64)
        dense = simulate(network, x, method="dense", **kwargs)
        event = simulate(network, x, method="event", **kwargs)
        # float64: the same spikes in every layer; outputs agree to summation-order rounding
        for name in dense.spike_counts:
            np.testing.assert_array_equal(event.spike_counts[name], dense.spike_counts[name])
        np.testing.assert_allclose(event.output, dense.output, rtol=0, atol=1e-9)
        # not trivial: the last spiking layer, behind three poolings, spikes
        assert dense.spike_counts["relu3"].sum() > 0


@pytest.mark.parametrize("neuron", ["spiking_relu", "if"])
def test_event_driven_on_the_deep_network(neuron):
    from snnlib.ann.models import load_pretrained_deep_convnet

    (x_train, _), (x_test, _) = load_mnist()
    network = convert(load_pretrained_deep_convnet(), calibration=x_train[:200],
                      normalization="percentile")
    kwargs = dict(n_steps=24, scale_firing_rates=300.0, neuron=neuron, max_spikes_per_step=1,
                  initial_voltage=0.5, dtype=np.float64)
    dense = simulate(network, x_test[:3], method="dense", **kwargs)
    event = simulate(network, x_test[:3], method="event", **kwargs)
    # the book's deeper network: the same spikes in all six spiking layers
    for name in dense.spike_counts:
        np.testing.assert_array_equal(event.spike_counts[name], dense.spike_counts[name])
    assert len(dense.spike_counts) == 6 and dense.spike_counts["relu5"].sum() > 0


@pytest.mark.parametrize("threshold", [None, 1.0])
def test_the_event_driven_engine_runs_graphs(rng, monkeypatch, threshold):
    """Residual sum, concatenation, subtraction, average and fan-out: the same spikes."""
    from test_convert import residual_inception

    calls = []
    run_graph_chunk = event_driven.run_graph_chunk
    monkeypatch.setattr(event_driven, "run_graph_chunk",
                        lambda *a, **k: calls.append(1) or run_graph_chunk(*a, **k))
    model = residual_inception(rng)
    x = rng.random((12, 10, 10, 2)).astype(np.float32)
    network = convert(model, calibration=x, normalization="max")
    assert not network.is_chain
    if threshold is not None:  # sparse products and event maps at every step and every rate
        monkeypatch.setattr(event_driven, "SPARSE_THRESHOLD", threshold)
        monkeypatch.setattr(event_driven, "DENSE_THRESHOLD", threshold)
    for scale, neuron, reset, max_spikes in itertools.product(
            [20.0, 500.0], ["spiking_relu", "if"], ["subtract", "zero"], [None, 1]):
        kwargs = dict(n_steps=40, scale_firing_rates=scale, neuron=neuron, reset=reset,
                      max_spikes_per_step=max_spikes, dtype=np.float64)
        dense = simulate(network, x, method="dense", **kwargs)
        events = simulate(network, x, method="event", **kwargs)
        for name in dense.spike_counts:
            np.testing.assert_array_equal(events.spike_counts[name], dense.spike_counts[name])
        np.testing.assert_allclose(events.output, dense.output, rtol=0, atol=1e-9)
        if scale == 500.0:
            assert all(c.sum() > 0 for c in dense.spike_counts.values())
    assert calls
    # without the compiled engine, "auto" picks it where the first spiking layers fire
    # sparsely, and not at high rates
    calls.clear()
    monkeypatch.setattr(compiled, "available", lambda: False)
    monkeypatch.setattr(event_driven, "SPARSE_THRESHOLD", 0.015)
    simulate(network, x, n_steps=10, scale_firing_rates=5.0)
    assert calls
    calls.clear()
    simulate(network, x, n_steps=10, scale_firing_rates=2000.0)
    assert not calls
    # a synapse on a graph is the dense engine's: method="event" says so
    with pytest.raises(ValueError, match="graph it runs without a synapse"):
        simulate(network, x, n_steps=10, synapse=0.005, method="event")


def test_recorded_spikes_of_a_graph_are_the_dense_engine_s(rng):
    from test_convert import residual_inception

    model = residual_inception(rng)
    x = rng.random((4, 10, 10, 2)).astype(np.float32)
    network = convert(model, calibration=x, normalization="max")
    kwargs = dict(n_steps=15, scale_firing_rates=100.0, dtype=np.float64,
                  record_spikes=["c0", "add_relu", "b2"])
    dense = simulate(network, x, method="dense", **kwargs)
    events = simulate(network, x, method="event", **kwargs)
    for name in ("c0", "add_relu", "b2"):
        np.testing.assert_array_equal(events.spikes[name], dense.spikes[name])


def test_pooled_events_into_a_join_add_up(rng):
    # average pooling of one step's spikes can send several spikes to one pooled cell; a join
    # reads the pooled events densely, so they must add up (not overwrite each other)
    import tensorflow as tf

    layers = tf.keras.layers
    tf.keras.utils.set_random_seed(0)
    inp = tf.keras.Input((12, 12, 1))
    a = layers.AveragePooling2D(2, name="pool")(layers.Conv2D(4, 3, activation="relu",
                                                               name="a")(inp))
    b1 = layers.Conv2D(4, 3, padding="same", activation="relu", name="b1")(a)
    b2 = layers.Conv2D(4, 1, activation="relu", name="b2")(a)
    out = layers.Dense(3, name="out")(layers.Flatten(name="flat")(layers.Add(name="add")(
        [b1, layers.AveragePooling2D(1, name="same_pool")(b2)])))
    model = tf.keras.Model(inp, out)
    x = rng.random((6, 12, 12, 1)).astype(np.float32)
    network = convert(model, calibration=x, normalization="max")
    for scale in (30.0, 60.0, 300.0):  # default thresholds: sparse and dense steps
        kwargs = dict(n_steps=40, scale_firing_rates=scale, neuron="if", max_spikes_per_step=1,
                      dtype=np.float64)
        dense = simulate(network, x, method="dense", **kwargs)
        events = simulate(network, x, method="event", **kwargs)
        for name in dense.spike_counts:
            np.testing.assert_array_equal(events.spike_counts[name], dense.spike_counts[name])
        np.testing.assert_allclose(events.output, dense.output, rtol=0, atol=1e-9)
