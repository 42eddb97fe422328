"""Tests of snnlib.ann.regularize: the rate regularizer, its training, and spike-budget matching."""
import numpy as np
import pytest
import tensorflow as tf

from snnlib.ann import regularize
from snnlib.convert import convert
from snnlib.sim.simulator import simulate


def test_penalty_value():
    reg = regularize.RateRegularizer(target_rate=50.0, scale=10.0, strength=1e-3)
    a = np.array([[0.0, 2.0, 5.0], [1.0, 1.0, 10.0]], dtype=np.float32)
    expected = 1e-3 * np.sum(np.mean((10.0 * a - 50.0) ** 2, axis=1))
    # the penalty is strength * sum over the batch of the mean over neurons of (s a - r)^2
    assert float(reg(tf.constant(a))) == pytest.approx(expected, rel=1e-6)
    # a layer whose rates all equal the target costs nothing
    assert float(reg(tf.constant(np.full((3, 4), 5.0, np.float32)))) == 0.0


@pytest.mark.parametrize("kwargs", [dict(target_rate=0), dict(scale=-1), dict(strength=-1e-3),
                                    dict(target_rate=np.nan)])
def test_bad_settings_fail(kwargs):
    # non-positive rates/scales and negative strengths are rejected, naming the argument
    with pytest.raises(ValueError, match=list(kwargs)[0]):
        regularize.RateRegularizer(**kwargs)


def test_silent_neurons_get_no_gradient():
    tf.keras.utils.set_random_seed(0)
    layer = tf.keras.layers.Dense(2, activation="relu")
    layer.build((None, 1))
    layer.set_weights([np.array([[1.0, -1.0]], np.float32), np.zeros(2, np.float32)])
    reg = regularize.RateRegularizer(target_rate=100.0, scale=1.0, strength=1.0)
    with tf.GradientTape() as tape:
        penalty = reg(layer(tf.constant([[1.0]])))
    grad_kernel, _ = tape.gradient(penalty, layer.trainable_weights)
    # the second neuron is silenced by the ReLU (input -1): the penalty does not push it
    assert grad_kernel.numpy()[0, 1] == 0.0
    # the active neuron (rate 1 Hz, target 100 Hz) is pushed up: negative gradient
    assert grad_kernel.numpy()[0, 0] < 0


def test_add_rate_regularizers_adds_losses(dense_model):
    regularize.add_rate_regularizers(dense_model, ["hidden0", "hidden1"], target_rate=10.0,
                                     scale=1.0, strength=1e-3)
    dense_model(np.ones((2, 6, 6, 1), np.float32))
    # one activity-regularization loss per regularized layer
    assert len(dense_model.losses) == 2


def test_regularizer_reads_soft_lif_rates_in_hz():
    # on a layer with the soft LIF curve (issue 19's fair test) the penalty sees its rates:
    # soft_lif(s) outputs rate / s, so scale * activation is the LIF rate in Hz
    from snnlib.ann.activations import soft_lif

    curve = soft_lif(100.0, sigma=0.1)
    inputs = tf.keras.Input((3,))
    layer = tf.keras.layers.Dense(4, activation=curve, name="lif_layer")
    model = tf.keras.Model(inputs, layer(inputs))
    regularize.add_rate_regularizers(model, ["lif_layer"], target_rate=100.0, scale=100.0,
                                     strength=1e-5)
    x = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    activations = model(x)
    rates = 100.0 * activations.numpy()
    assert np.all(rates >= 0) and rates.max() > 0
    expected = 1e-5 * np.sum(np.mean((rates - 100.0) ** 2, axis=1)) / len(x)
    assert float(tf.add_n(model.losses)) == pytest.approx(expected, rel=1e-5)


@pytest.fixture(scope="module")
def tiny_mnist():
    from snnlib.ann.data import load_mnist

    (x, y), _ = load_mnist()
    return x[:128], y[:128]


def test_training_is_deterministic_and_regularizes(tiny_mnist):
    x, y = tiny_mnist
    kwargs = dict(epochs=1, batch_size=32, seed=0, target_rate=100.0, scale=100.0)
    a, _ = regularize.train_rate_regularized_convnet(x, y, strength=1e-4, **kwargs)
    b, _ = regularize.train_rate_regularized_convnet(x, y, strength=1e-4, **kwargs)
    # the same seed gives the same weights
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    # the regularizers are attached to the two convolutions only
    assert isinstance(a.get_layer("conv0").activity_regularizer, regularize.RateRegularizer)
    assert a.get_layer("dense").activity_regularizer is None
    plain, _ = regularize.train_rate_regularized_convnet(x, y, strength=0.0, **kwargs)
    mean_act = [float(np.mean(convert(m).forward(x, return_all=True)[1]["conv0"]))
                for m in (a, plain)]
    # pulling rates up towards 100 Hz at scale 100 (activation 1) raises conv0's activations
    assert mean_act[0] > mean_act[1]


def test_predicted_spikes_exact_for_first_layer(dense_model, images6):
    network = convert(dense_model)
    result = simulate(network, images6, n_steps=40, scale_firing_rates=200.0)
    _, acts = network.forward(images6, return_all=True)
    first = network.spiking_layers[0]
    predicted_first = np.floor(200.0 * acts[first] * 40 * 0.001).sum() / len(images6)
    # with constant input and voltage starting at 0, the first layer fires floor(s a T dt) spikes
    # (float32 simulation: allow one spike per neuron of rounding)
    measured_first = result.spike_counts[first].sum() / len(images6)
    assert abs(measured_first - predicted_first) <= acts[first][0].size
    total = regularize.predicted_spikes_per_example(network, images6, 200.0, n_steps=40)
    # over all layers it is an estimate: within 50 % of the simulation here (few spikes each)
    assert total == pytest.approx(regularize.spikes_per_example(result), rel=0.5)


def test_match_spike_budget(dense_model, images6):
    network = convert(dense_model)
    target = regularize.spikes_per_example(
        simulate(network, images6, n_steps=30, scale_firing_rates=150.0, synapse=0.005))
    scale, result = regularize.match_spike_budget(network, images6, target, n_steps=30,
                                                  synapse=0.005, tolerance=0.05)
    # the returned simulation is within 5 % of the budget
    assert abs(regularize.spikes_per_example(result) / target - 1) <= 0.05
    # and the scale found is near the one that made the budget
    assert scale == pytest.approx(150.0, rel=0.2)
    # a non-positive budget is rejected
    with pytest.raises(ValueError, match="target_spikes"):
        regularize.match_spike_budget(network, images6, 0, n_steps=30)


def test_match_spike_budget_gives_up(dense_model, images6):
    network = convert(dense_model)
    # an unreachable precision within one simulation raises instead of returning a wrong scale
    with pytest.raises(RuntimeError, match="no scale matched"):
        regularize.match_spike_budget(network, images6, 1234.5, n_steps=30, tolerance=1e-9,
                                      max_iter=1)


def test_saved_regularized_weights_reproduce_reported_accuracy():
    import json

    from snnlib.ann.data import load_mnist
    from snnlib.ann.models import accuracy

    info = json.loads(regularize.RATE_REG_INFO.read_text())
    model = regularize.load_rate_regularized_convnet()
    _, (x_test, y_test) = load_mnist()
    # the weights chapter 7 saved give the test accuracy it reported
    assert accuracy(model, x_test, y_test) == pytest.approx(info["test_accuracy"], abs=1e-9)
