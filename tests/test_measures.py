"""Measures: rates, spikes per example, fan-out, synaptic operations and ANN MACs."""
import numpy as np
import pytest

from snnlib.analysis.measures import (
    ann_operations,
    expected_rates,
    fan_out,
    mean_rate,
    mean_rates,
    rates,
    spikes_per_example,
    spiking_neurons,
    synaptic_operations,
)
from snnlib.convert import convert
from snnlib.sim.simulator import SimulationResult, simulate


@pytest.fixture
def conv_net(conv_model):
    return convert(conv_model)


def brute_force_connections(stages, input_shape):
    """Per input element, how many outputs of the chain change when only that element is 1."""
    n = int(np.prod(input_shape))
    h = np.eye(n, dtype=np.float64).reshape((n,) + tuple(input_shape))
    for stage in stages:
        h = stage.op(h)  # the real (random, non-zero) weights, no bias
    return (np.abs(h.reshape(n, -1)) > 0).sum(axis=1).reshape(input_shape)


def test_fan_out_matches_brute_force(conv_net):
    stages = conv_net.stages
    names = [s.name for s in stages]
    # conv_a's spikes go through the pooling into conv_b: brute force with the real kernels
    chain = stages[names.index("conv_a") + 1:names.index("conv_b") + 1]
    expected = brute_force_connections(chain, conv_net.stage("conv_a").output_shape)
    np.testing.assert_array_equal(fan_out(conv_net, "conv_a"), expected)
    # conv_b's spikes go through flatten into the 3-unit readout: 3 synapses each
    assert np.all(fan_out(conv_net, "conv_b") == 3)


def test_ann_operations_match_brute_force_and_formula(conv_net):
    macs = ann_operations(conv_net, by_layer=True)
    conv_a = conv_net.stage("conv_a")
    # the input layer counts: its connections, counted one input pixel at a time
    assert macs["conv_a"] == brute_force_connections([conv_a], conv_a.input_shape).sum()
    # conv_b (2x2 valid, 3x3x4 -> 2x2x6) has no padding: out_h*out_w*c_out*kh*kw*c_in
    assert macs["conv_b"] == 2 * 2 * 6 * 2 * 2 * 4
    # dense readout: n_in * n_out
    assert macs["readout"] == 24 * 3
    # the total is the sum of the layers
    assert macs["total"] == sum(v for k, v in macs.items() if k != "total")
    assert ann_operations(conv_net) == macs["total"]


def test_conv_fan_out_formula_away_from_borders(convnet):
    network = convert(convnet)
    fan = fan_out(network, "conv0")
    # 3x3 stride-2 conv into 64 channels: interior positions reach 1x1, 2x1, 1x2 or 2x2
    # output positions, 64 channels each (kh*kw*c_out/(sh*sw) = 144 on average)
    assert set(np.unique(fan[1:-1, 1:-1])) == {64, 128, 256}
    # summed over the 26x26x32 inputs: every connection of the 12x12x64 outputs, 3x3x32 each
    assert fan.sum() == 12 * 12 * 64 * 3 * 3 * 32
    # the last row and column are outside every 'valid' window of the stride-2 conv
    assert np.all(fan[-1] == 0) and np.all(fan[:, -1] == 0)


def test_synaptic_operations_is_spikes_times_fan_out(conv_net, images12):
    result = simulate(conv_net, images12, n_steps=20, scale_firing_rates=300.0)
    ops = synaptic_operations(conv_net, result)
    expected = {name: (result.spike_counts[name] * fan_out(conv_net, name)).sum() / 4
                for name in conv_net.spiking_layers}
    # per example: total spikes of each neuron x its synapses, averaged over the 4 examples
    for name, value in expected.items():
        assert ops[name] == pytest.approx(value)
    assert ops["total"] == pytest.approx(sum(expected.values()))
    # the network does spike, so the count is not trivially zero
    assert ops["total"] > 0


def test_rates_and_spikes_per_example():
    counts = {
        # 2 examples, 10 steps of 1 ms: layer a has 4 neurons, layer b 3
        "a": np.array([[0, 0, 10, 5], [0, 3, 12, 0]]),
        "b": np.array([[1, 0, 0], [0, 0, 2]]),
    }
    result = SimulationResult(np.zeros((2, 10, 2)), counts, {}, n_steps=10, dt=0.001)
    # a neuron's rate is its count over the 10 ms run, in Hz
    np.testing.assert_allclose(rates(result)["a"], counts["a"] / 0.01)
    # per layer, averaged over neurons and examples; overall, over all 14 (neuron, example)s
    assert mean_rates(result) == pytest.approx({"a": 30 / 8 / 0.01, "b": 3 / 6 / 0.01})
    assert mean_rate(result) == pytest.approx(33 / 14 / 0.01)
    # spikes per example: all layers (33 spikes / 2 examples), or layer by layer
    assert spikes_per_example(result) == 16.5
    assert spikes_per_example(result, by_layer=True) == {"a": 15.0, "b": 1.5}
    # SimulationResult's properties are these measures
    assert result.mean_rates == mean_rates(result)


def test_spiking_neurons_and_expected_rates(dense_model, images6):
    network = convert(dense_model)
    # hidden0 (16) + hidden1 (12) spiking neurons; the readout does not spike
    assert spiking_neurons(network) == 28
    expected = expected_rates(network, images6, scale_firing_rates={"hidden0": 10.0})
    _, activations = network.forward(images6, return_all=True)
    # rate-mode activation times the layer's scale (missing layers: 1)
    np.testing.assert_allclose(expected["hidden0"], 10 * activations["hidden0"], rtol=1e-6)
    np.testing.assert_allclose(expected["hidden1"], activations["hidden1"], rtol=1e-6)


def test_fan_out_through_a_reshape_into_a_1d_convolution():
    # a spiking Conv2D whose map is read as a sequence (Reshape (h, w, c) -> (h * w, c)) by a
    # Conv1D: each spike moves to one place, then reaches the Conv1D's targets from there
    import tensorflow as tf

    from snnlib.analysis.measures import fan_out

    layers = tf.keras.layers
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([
        tf.keras.Input((5, 4, 1)), layers.Conv2D(3, 2, activation="relu", name="c"),
        layers.Reshape((-1, 3), name="rows"),
        layers.Conv1D(4, 3, padding="same", dilation_rate=2, activation="relu", name="c1d"),
        layers.Flatten(name="flat"), layers.Dense(2, name="out")])
    network = convert(model)
    shape = network.stage("c").output_shape
    # brute force: one spike at a time through the reshape and the convolution (all ones, so
    # every connection shows), counting the target neurons it reaches
    conv = network.stage("c1d").op
    ones = conv.with_kernel(np.ones_like(conv.kernel))
    expected = np.zeros(shape, dtype=np.int64)
    for index in np.ndindex(*shape):
        spike = np.zeros((1,) + shape)
        spike[(0,) + index] = 1
        expected[index] = np.count_nonzero(ones(spike.reshape(1, -1, shape[-1])))
    np.testing.assert_array_equal(fan_out(network, "c"), expected)
    assert expected.max() > expected.min() > 0  # borders reach fewer: the check can fail
