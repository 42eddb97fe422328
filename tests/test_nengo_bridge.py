"""snnlib.nengo.bridge: building, running and inspecting what nengo_dl.Converter does."""
import os
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
warnings.filterwarnings("ignore", message="This version of NengoDL has not been tested")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from snnlib.nengo import bridge as nb  # noqa: E402

layers = tf.keras.layers


def convert_nengo(model, **kwargs):
    """NengoDL's converter with Nengo's default random initial voltages."""
    return nb.build_nengo_converter(model, initial_voltage="uniform", **kwargs)


def run_dl(converter, x, **kwargs):
    return nb.run_nengo(converter, x, simulator="nengo_dl", **kwargs)
SCALES = (1, 10, 100)


def _random_biases(model, seed):
    """Non-zero biases (Keras starts them at 0, which would hide bias errors)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if getattr(layer, "use_bias", False):
            layer.bias.assign(rng.uniform(-0.1, 0.3, layer.bias.shape).astype(np.float32))
    return model


@pytest.fixture
def mlp():
    """6 -> Dense 5 ReLU ("relu" string) -> Dense 3 linear: a ReLU layer, one bias per neuron."""
    tf.keras.utils.set_random_seed(0)
    inp = tf.keras.Input((6,), name="inp")
    hidden = layers.Dense(5, activation="relu", name="hidden")(inp)
    out = layers.Dense(3, name="out")(hidden)
    return _random_biases(tf.keras.Model(inp, out, name="mlp"), 1)


@pytest.fixture
def small_conv():
    """8x8x1 -> Conv2D 3@3x3 stride 2 ReLU -> Flatten -> Dense 2: per-channel conv biases."""
    tf.keras.utils.set_random_seed(0)
    inp = tf.keras.Input((8, 8, 1), name="image")
    x = layers.Conv2D(3, 3, strides=2, activation=tf.nn.relu, name="conv")(inp)
    x = layers.Flatten(name="flat")(x)
    out = layers.Dense(2, name="out")(x)
    return _random_biases(tf.keras.Model(inp, out, name="small_conv"), 2)


@pytest.fixture
def images():
    return np.random.default_rng(0).random((4, 8, 8, 1)).astype(np.float32)


@pytest.mark.parametrize("spiking", [False, True])
def test_weight_table_kernels_and_biases_are_copied(mlp, small_conv, spiking):
    for model in (mlp, small_conv):
        table = nb.weight_table(convert_nengo(model, spiking=spiking), model)
        # one row per layer with a kernel
        assert list(table["layer"]) == [layer.name for layer in nb.weighted_layers(model)]
        # without scale_firing_rates the converter copies kernels and biases bit for bit
        assert (table["kernel max |diff|"] == 0).all()
        assert (table["bias max |diff|"] == 0).all()


def test_weight_table_transforms_and_bias_locations(mlp, small_conv):
    table = nb.weight_table(convert_nengo(mlp, spiking=False), mlp).set_index("layer")
    # a Dense kernel (pre, post) becomes a nengo.Dense transform (post, pre)
    assert table.loc["hidden", "Keras kernel"] == (6, 5)
    assert table.loc["hidden", "Nengo transform"] == "Dense (5, 6)"
    # a ReLU Dense layer keeps its bias in the ensemble; a linear one on a bias connection
    assert table.loc["hidden", "bias stored as"] == "ensemble bias"
    assert table.loc["out", "bias stored as"] == "bias node -> node"

    table = nb.weight_table(convert_nengo(small_conv, spiking=False), small_conv)
    table = table.set_index("layer")
    # a Conv2D kernel becomes a nengo.Convolution kernel of the same (Keras) layout
    assert table.loc["conv", "Nengo transform"] == "Convolution (3, 3, 1, 3)"
    # conv biases are per channel, on a bias node -> relay connection
    assert table.loc["conv", "bias stored as"] == "bias node -> relay -> neurons"
    assert table.loc["conv", "Nengo bias"] == (3,)


def test_weight_table_detects_a_changed_weight(small_conv):
    converter = convert_nengo(small_conv, spiking=False)
    kernel = small_conv.get_layer("conv").kernel
    kernel.assign_add(np.full(kernel.shape, 0.25, dtype=np.float32))
    table = nb.weight_table(converter, small_conv).set_index("layer")
    # the converter copied the values at conversion time, so a later change shows up (0.25)
    assert table.loc["conv", "kernel max |diff|"] == pytest.approx(0.25)
    assert table.loc["out", "kernel max |diff|"] == 0


def test_kernel_in_nengo_built_equals_init(small_conv):
    converter = convert_nengo(small_conv, scale_firing_rates=10, spiking=False)
    built = nb.build(converter)
    for layer in nb.weighted_layers(small_conv):
        # the built weights are the transform itself: the gain is applied separately
        np.testing.assert_array_equal(nb.kernel_in_nengo(converter, layer, built),
                                      nb.kernel_in_nengo(converter, layer))


@pytest.mark.parametrize("model_name, neuron_layer", [("mlp", "hidden"), ("small_conv", "conv")])
def test_scaling_table(model_name, neuron_layer, request):
    model = request.getfixturevalue(model_name)
    table = nb.scaling_table(model, SCALES)
    # one row per scale and layer with neurons (the ReLU layer only)
    assert list(table["s"]) == list(SCALES)
    assert (table["layer"] == neuron_layer).all()
    # weights unchanged at every scale
    assert (table["weights max |diff|"] == 0).all()
    # gain = s
    np.testing.assert_allclose(table["gain"], table["s"], rtol=1e-12)
    # amplitude = 1/s
    np.testing.assert_allclose(table["amplitude * s"], 1.0, rtol=1e-12)
    # bias current = s * b (float32 rounding of the scaled bias only)
    max_bias = max(np.abs(layer.bias.numpy()).max() for layer in model.layers
                   if getattr(layer, "use_bias", False))
    assert (table["bias max |diff from s*b|"] <= 1e-6 * table["s"] * max_bias).all()


def test_effective_bias_is_scaled_for_ensemble_and_relay_biases(mlp, small_conv):
    for model, name in ((mlp, "hidden"), (small_conv, "conv")):
        layer = model.get_layer(name)
        converter = convert_nengo(model, spiking=True, scale_firing_rates=10)
        bias = nb.effective_bias(converter, layer, nb.build(converter))
        # each neuron's constant input current is 10 times the Keras bias of its unit/channel
        np.testing.assert_allclose(bias, 10 * nb.keras_bias_per_unit(layer), rtol=1e-6)
    # a conv bias is repeated over positions, channels last: 3x3 positions x 3 channels
    conv_bias = nb.keras_bias_per_unit(small_conv.get_layer("conv"))
    assert conv_bias.shape == (27,)
    np.testing.assert_array_equal(conv_bias[3:6], small_conv.get_layer("conv").bias.numpy())


def test_synapse_only_on_connections_from_neurons(small_conv):
    table = nb.synapse_table(convert_nengo(small_conv, spiking=True, synapse=0.005))
    # connections that leave neurons get the 5 ms lowpass, all others none
    np.testing.assert_allclose(table.loc[table["from neurons"], "synapse tau (ms)"], 5.0)
    assert table.loc[~table["from neurons"], "synapse tau (ms)"].isna().all()
    # the conv neurons feed the output layer, and nothing else comes from neurons
    assert table["from neurons"].sum() == 1

    table = nb.synapse_table(convert_nengo(small_conv, spiking=True))
    # synapse=None: no filter anywhere
    assert table["synapse tau (ms)"].isna().all()


def test_build_spiking_swaps_every_relu_flavour(mlp, small_conv):
    nengo, _ = nb.import_nengo()
    for model, name in ((mlp, "hidden"), (small_conv, "conv")):
        for spiking, expected in ((False, nengo.RectifiedLinear),
                                  (True, nengo.SpikingRectifiedLinear)):
            neurons = nb.nengo_object(convert_nengo(model, spiking=spiking),
                                      model.get_layer(name))
            # "relu" and tf.nn.relu both become (spiking) rectified linear neurons
            assert type(neurons.ensemble.neuron_type) is expected


def test_rate_network_reproduces_keras(small_conv, images):
    converter = convert_nengo(small_conv, scale_firing_rates=10, spiking=False)
    outputs = run_dl(converter, images, n_steps=2, minibatch_size=2)
    assert outputs.shape == (4, 2, 2)
    # rate neurons with gain s and amplitude 1/s compute the Keras output at every step
    expected = small_conv.predict(images, verbose=0)
    np.testing.assert_allclose(outputs[:, -1], expected, atol=1e-5)
    np.testing.assert_allclose(outputs[:, 0], expected, atol=1e-5)


def test_spiking_network_approaches_keras_with_high_rates(small_conv, images):
    expected = small_conv.predict(images, verbose=0)
    errors = []
    for scale in (1, 1000):
        converter = convert_nengo(small_conv, spiking=True, scale_firing_rates=scale)
        outputs = run_dl(converter, images, n_steps=50)
        errors.append(np.abs(outputs.mean(axis=1) - expected).max())
    # with 1000 times higher rates, the time-averaged spiking output is much closer to Keras
    assert errors[1] < 0.2 * errors[0], errors


def test_run_nengo_dl_rejects_a_minibatch_that_does_not_divide(small_conv, images):
    with pytest.raises(ValueError, match="must divide"):
        run_dl(convert_nengo(small_conv, spiking=False), images, n_steps=1, minibatch_size=3)


def test_accuracy_over_time():
    outputs = np.zeros((2, 3, 2))
    outputs[0, :, 1] = [1, 1, 1]   # label 1: right at every step
    outputs[1, :, 0] = [-1, 1, 1]  # label 0: wrong at step 0, then right
    # fraction of inputs right at each step
    np.testing.assert_allclose(nb.accuracy_over_time(outputs, [1, 0]), [0.5, 1.0, 1.0])


def test_spiking_runs_are_reproducible(small_conv, images):
    runs = []
    for _ in range(2):
        converter = convert_nengo(small_conv, spiking=True, scale_firing_rates=5)
        runs.append(run_dl(converter, images, n_steps=20, seed=3))
        # the network gets the seed, so its random initial voltages are drawn the same way
        assert converter.net.seed == 3
    # same seed, same initial voltages, same spikes: identical outputs
    np.testing.assert_array_equal(runs[0], runs[1])
    # and the outputs are spiky (not all zero), so the comparison is not trivial
    assert np.abs(runs[0]).max() > 0


def test_run_nengo_options(small_conv, images):
    # one runner, two simulators: the reference one and nengo_dl's agree in rate mode
    reference = nb.run_nengo(convert_nengo(small_conv, spiking=False), images[:2], n_steps=2)
    batched = run_dl(convert_nengo(small_conv, spiking=False), images[:2], n_steps=2)
    converter = convert_nengo(small_conv, spiking=False)
    np.testing.assert_allclose(reference, batched, atol=1e-5)
    with pytest.raises(ValueError, match="simulator"):
        nb.run_nengo(converter, images, n_steps=1, simulator="loihi")
    with pytest.raises(ValueError, match="minibatch_size"):
        nb.run_nengo(converter, images, n_steps=1, minibatch_size=2)


def test_params_round_trip_across_scales(dense_model, conv_model, images6, images12):
    """save_params at one scale, load_params at another: Dense + ReLU biases come back
    multiplied by saved / loaded scale (NengoDL stores them already scaled); convolution
    biases and linear layers are unaffected; at the same scale the round trip is exact."""
    from snnlib.nengo.bridge import params_round_trip

    keras = dense_model.predict(images6, verbose=0)
    same = params_round_trip(dense_model, images6, saved_scale=100.0, loaded_scale=100.0)
    np.testing.assert_allclose(same, keras, atol=1e-5)
    across = params_round_trip(dense_model, images6, saved_scale=100.0, loaded_scale=1.0)
    assert np.abs(across - keras).max() > 0.1
    # exactly as if the ReLU layers' biases were multiplied by 100 / 1
    wrong = tf.keras.models.clone_model(dense_model)
    wrong.set_weights(dense_model.get_weights())
    for name in ("hidden0", "hidden1"):
        kernel, bias = wrong.get_layer(name).get_weights()
        wrong.get_layer(name).set_weights([kernel, 100.0 * bias])
    np.testing.assert_allclose(across, wrong.predict(images6, verbose=0), rtol=1e-4, atol=1e-4)
    # convolutions keep their bias on a connection, unscaled: no pitfall
    conv = params_round_trip(conv_model, images12, saved_scale=100.0, loaded_scale=1.0)
    np.testing.assert_allclose(conv, conv_model.predict(images12, verbose=0), atol=1e-5)
