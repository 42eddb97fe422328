"""QCFS (snnlib.ann.qcfs): the activation, its gradient, use_qcfs, and its conversion with
lambda = the trained threshold, where T = L steps of the spiking layer give the QCFS values."""
import numpy as np
import pytest
import tensorflow as tf

import snnlib
from snnlib.ann import qcfs as q
from snnlib.ann import zoo
from snnlib.convert import ConversionError
from snnlib.validation import ArgumentError

layers = tf.keras.layers


def test_the_function_on_a_grid():
    x = np.array([-1.0, 0.0, 0.24, 0.26, 0.74, 0.76, 1.9, 2.0, 2.1, 5.0])
    # theta = 2, L = 4: steps of 0.5, rounded (floor(x * 2 + 1/2) / 2), clipped to [0, 2]
    np.testing.assert_array_equal(q.qcfs(x, 2.0, 4),
                                  [0, 0, 0, 0.5, 0.5, 1.0, 2.0, 2.0, 2.0, 2.0])
    with pytest.raises(ArgumentError, match="threshold"):
        q.qcfs(x, 0.0, 4)
    with pytest.raises(ArgumentError, match="levels"):
        q.qcfs(x, 1.0, 0)


def test_the_layer_computes_it_and_passes_the_gradient_straight_through():
    layer = q.QCFS(levels=8, threshold=1.5)
    x = tf.constant(np.linspace(-1, 3, 401) + 0.003, dtype=tf.float32)  # none on a corner
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = layer(x)
        total = tf.reduce_sum(y)
    np.testing.assert_allclose(y.numpy(), q.qcfs(x.numpy(), 1.5, 8), atol=1e-6)
    dx = tape.gradient(total, x).numpy()
    inside = (x.numpy() > 0) & (x.numpy() < 1.5)
    np.testing.assert_allclose(dx[inside], 1.0, rtol=1e-6)  # the floor passes it on
    assert np.all(dx[x.numpy() < 0] == 0) and np.all(dx[x.numpy() > 1.5] == 0)
    # theta's gradient: d/dtheta of theta * (x / theta) is 0 inside, 1 per clipped input
    dtheta = float(tape.gradient(total, layer.threshold))
    levels = np.floor(np.clip(x.numpy() / 1.5, 0, 1) * 8 + 0.5) / 8
    expected = np.sum(levels[~inside]) + np.sum(levels[inside] - x.numpy()[inside] / 1.5)
    assert dtheta == pytest.approx(expected, rel=1e-5)
    assert layer.trainable_weights == [layer.threshold]
    config = layer.get_config()
    assert (config["levels"], config["threshold"]) == (8, 1.5)
    with pytest.raises(ArgumentError, match="levels"):
        q.QCFS(levels=0)
    with pytest.raises(ArgumentError, match="threshold"):
        q.QCFS(threshold=-1.0)


def test_use_qcfs_replaces_every_hidden_relu_and_keeps_the_weights(conv_model, dense_model,
                                                                    rng):
    x = rng.random((20, 12, 12, 1)).astype(np.float32)
    big = q.use_qcfs(conv_model, levels=10 ** 6, threshold=1e3)
    names = [layer.name for layer in big.layers]
    assert names == ["image", "conv_a", "conv_a_qcfs", "pool", "conv_b", "conv_b_qcfs",
                     "flat", "readout"]
    assert big.get_layer("conv_a").activation is tf.keras.activations.linear
    # a fine quantization with a far ceiling is the ReLU model
    np.testing.assert_allclose(big(x).numpy(), conv_model(x).numpy(), atol=5e-3)
    assert conv_model.get_layer("conv_a").activation is not tf.keras.activations.linear
    # a ReLU output layer stays a ReLU (the readout is not a spiking layer)
    inp = tf.keras.Input((4,))
    relu_out = tf.keras.Model(inp, layers.ReLU(name="last")(layers.Dense(3, name="d")(inp)))
    assert type(q.use_qcfs(relu_out, 4).get_layer("last")).__name__ == "ReLU"
    mlp = q.use_qcfs(dense_model, levels=4, threshold=0.7)
    assert [type(layer).__name__ for layer in mlp.layers].count("QCFS") == 2
    assert mlp.layers[-1].name == "out"  # the readout keeps its (linear) activation
    assert list(q.qcfs_thresholds(mlp).values()) == pytest.approx([0.7, 0.7])


def test_use_qcfs_starts_the_thresholds_at_the_data_percentile(rng):
    tf.keras.utils.set_random_seed(1)
    inp = tf.keras.Input((5,))
    h = layers.Dense(7, name="d")(inp)
    h = layers.ReLU(name="r")(h)
    model = tf.keras.Model(inp, layers.Dense(2, name="out")(h))
    x = rng.standard_normal((300, 5)).astype(np.float32)
    started = q.use_qcfs(model, 4, calibration=x, percentile=90)
    values = model.get_layer("r").output
    probe = tf.keras.Model(model.inputs, values)(x).numpy()
    assert q.qcfs_thresholds(started)["r"] == pytest.approx(
        np.percentile(probe[probe > 0], 90), rel=1e-6)
    with pytest.raises(ArgumentError, match="not both"):
        q.use_qcfs(model, 4, threshold=1.0, calibration=x)


@pytest.fixture
def trained_like(conv_model):
    """The small convnet with QCFS layers whose thresholds differ from 1 (as if trained)."""
    model = q.use_qcfs(conv_model, levels=4)
    model.get_layer("conv_a_qcfs").threshold.assign(0.8)
    model.get_layer("conv_b_qcfs").threshold.assign(1.3)
    return model


def test_conversion_takes_lambda_from_the_thresholds_and_verify_uses_relu(trained_like, rng):
    x = rng.random((30, 12, 12, 1)).astype(np.float32)
    network = snnlib.convert(trained_like)
    assert network.normalization == "trained"
    assert network.trained_scales == {"conv_a_qcfs": pytest.approx(0.8),
                                      "conv_b_qcfs": pytest.approx(1.3)}
    scales = {stage.name: stage.scale for stage in network.stages}
    assert scales["conv_a_qcfs"] == pytest.approx(0.8) and scales["pool"] == scales["conv_a_qcfs"]
    assert scales["readout"] == 1.0
    assert any("QCFS layer 'conv_b_qcfs'" in note for note in network.notes)
    assert snnlib.verify(network, trained_like, x) < 1e-4  # against ReLU in their place
    # the data rule replaces the learned lambdas when asked for
    data = snnlib.convert(trained_like, calibration=x, normalization="percentile")
    assert data.normalization == "percentile"
    assert any("replace the thresholds" in note for note in data.notes)


def test_a_spiking_layer_without_threshold_is_refused(conv_model):
    model = q.use_qcfs(conv_model, levels=4)
    inp = tf.keras.Input((12, 12, 1), name="image")
    x = model.get_layer("conv_a")(inp)
    x = model.get_layer("conv_a_qcfs")(x)
    x = layers.Conv2D(3, 3, activation="relu", name="plain")(x)
    mixed = tf.keras.Model(inp, layers.Dense(2, name="out")(layers.Flatten()(x)))
    with pytest.raises(ConversionError, match=r"\['plain'\] have ReLU neurons but no trained"):
        snnlib.convert(mixed)
    # a QCFS layer without a weighted layer of its own (after pooling) cannot give a lambda
    inp = tf.keras.Input((12, 12, 1), name="image")
    x = layers.Conv2D(4, 3, name="c")(inp)
    x = layers.AveragePooling2D(2, name="p")(x)
    x = q.QCFS(4, 1.0, name="act")(x)
    pooled = tf.keras.Model(inp, layers.Dense(2, name="out")(layers.Flatten()(x)))
    with pytest.raises(ConversionError, match=r"QCFS layers \['act'\] have no weighted layer"):
        snnlib.convert(pooled)
    model.get_layer("conv_a_qcfs").threshold.assign(-1.0)
    with pytest.raises(ConversionError, match="positive"):
        snnlib.convert(model)


@pytest.mark.parametrize("levels", [2, 4, 8])
def test_t_equal_l_steps_of_the_first_layer_give_the_qcfs_values(levels, rng):
    """The paper's equivalence: IF neurons (reset by subtraction, one spike per step, start at
    theta / 2) under a constant input emit theta * count / T = QCFS(x) after T = L steps."""
    tf.keras.utils.set_random_seed(3)
    inp = tf.keras.Input((4, 4, 1), name="input")
    x = layers.Conv2D(6, 2, name="conv")(inp)
    x = q.QCFS(levels, threshold=0.9, name="act")(x)
    model = tf.keras.Model(inp, layers.Dense(3, name="out")(layers.Flatten()(x)))
    images = rng.random((40, 4, 4, 1))
    network = snnlib.convert(model)
    result = snnlib.simulate(network, images, n_steps=levels, dtype=np.float64,
                             keep_counts=True, **zoo.RECOMMENDED_SIMULATION)
    pre = tf.keras.Model(inp, model.get_layer("conv").output)(images).numpy().astype(np.float64)
    level = pre * levels / 0.9 + 0.5
    clear = np.abs(level - np.round(level)) > 1e-6  # no input exactly on a rounding edge
    snn = 0.9 * result.spike_counts["act"] / levels
    np.testing.assert_allclose(snn[clear], q.qcfs(pre, 0.9, levels)[clear], atol=1e-12)
    assert clear.mean() > 0.99
