"""snnlib.simulate agrees with nengo.Simulator running the network nengo_dl.Converter builds."""
import numpy as np
import pytest

from snnlib.convert import convert
from snnlib.nengo.bridge import (
    build_nengo_converter,
    nengo_initial_voltages,
    nengo_scale_firing_rates,
    run_nengo,
)
from snnlib.sim.simulator import simulate

N_STEPS = 30


def compare(model, x, *, scale, synapse, n_steps=N_STEPS):
    """Largest output difference between Nengo and snnlib, and the largest Nengo output.

    Both start every neuron at v = 0 (NengoDL's own random start: test_nengo_default_start)."""
    converter = build_nengo_converter(model, scale_firing_rates=scale, synapse=synapse,
                                      initial_voltage=0.0)
    reference = run_nengo(converter, x, n_steps=n_steps)
    ours = simulate(convert(model), x, n_steps=n_steps, scale_firing_rates=scale,
                    synapse=synapse, dtype=np.float64).output
    return np.abs(ours - reference).max(), np.abs(reference).max()


@pytest.mark.parametrize("simulator", ["nengo", "nengo_dl"])
def test_nengo_default_start(conv_model, images12, simulator):
    """What nengo_dl.Converter really builds: Nengo's random initial voltages, read from the
    built network and given to snnlib, reproduce the run step for step."""
    network = convert(conv_model)
    converter = build_nengo_converter(conv_model, scale_firing_rates=150.0, synapse=0.005)
    reference = run_nengo(converter, images12, n_steps=N_STEPS, simulator=simulator, seed=5)
    voltages = nengo_initial_voltages(converter, network, seed=5)
    assert all(v.std() > 0.1 and 0 <= v.min() and v.max() < 1 for v in voltages.values())
    ours = simulate(network, images12, n_steps=N_STEPS, scale_firing_rates=150.0,
                    synapse=0.005, initial_voltage=voltages, dtype=np.float64).output
    at_zero = simulate(network, images12, n_steps=N_STEPS, scale_firing_rates=150.0,
                       synapse=0.005, dtype=np.float64).output
    tolerance = (1e-9 if simulator == "nengo" else 1e-5) * np.abs(reference).max()
    assert np.abs(ours - reference).max() < tolerance
    # the start matters: from v = 0 the run differs
    assert np.abs(at_zero - reference).max() > 100 * tolerance


CONFIGS = {
    "float scale": dict(scale=150.0, synapse=None),
    "synapse": dict(scale=150.0, synapse=0.005),
}


@pytest.mark.parametrize("config", CONFIGS)
def test_dense_model(dense_model, images6, config):
    diff, size = compare(dense_model, images6, **CONFIGS[config])
    # the network spikes and produces a non-trivial output ...
    assert size > 0.1
    # ... which snnlib reproduces step by step to float rounding
    assert diff < 1e-9 * max(size, 1)


@pytest.mark.parametrize("config", CONFIGS)
def test_conv_model(conv_model, images12, config):
    diff, size = compare(conv_model, images12, **CONFIGS[config])
    # non-trivial output, reproduced to float rounding (stride, padding, pooling, synapse)
    assert size > 0.1
    assert diff < 1e-9 * max(size, 1)


def test_per_layer_scales(conv_model, images12):
    scales = {"conv_a": 80.0, "conv_b": 400.0}
    diff, size = compare(conv_model, images12, scale=scales, synapse=0.005)
    # a dict keyed by layer name scales each layer as nengo_dl's dict keyed by layer object
    assert size > 0.1
    assert diff < 1e-9 * max(size, 1)


def test_book_convnet(convnet, mnist):
    (_, _), (x_test, _) = mnist
    diff, size = compare(convnet, x_test[:2], scale=300.0, synapse=0.005, n_steps=20)
    # the book's convnet on two digits: same output trajectories
    assert size > 0.01
    assert diff < 1e-9 * max(size, 1)


def test_nengo_scale_firing_rates_matches_normalized_network(conv_model, images12, rng):
    calibration = rng.random((50, 12, 12, 1)).astype(np.float32)
    scales = nengo_scale_firing_rates(conv_model, calibration, max_rate=400.0)
    # keyed by the Keras layers that hold neurons, as nengo_dl expects
    assert sorted(layer.name for layer in scales) == ["conv_a", "conv_b"]
    reference = run_nengo(build_nengo_converter(conv_model, scale_firing_rates=scales,
                                                synapse=0.005, initial_voltage=0.0),
                          images12, n_steps=N_STEPS)
    network = convert(conv_model, calibration=calibration, normalization="percentile")
    ours = simulate(network, images12, n_steps=N_STEPS, scale_firing_rates=400.0,
                    synapse=0.005, dtype=np.float64).output
    # NengoDL with s_l = max_rate / lambda_l spikes like the normalized network at max_rate
    assert np.abs(reference).max() > 0.1
    np.testing.assert_allclose(ours, reference, atol=1e-9, rtol=1e-9)


def test_nengo_dl_copies_keras_weights(dense_model):
    import nengo

    converter = build_nengo_converter(dense_model, scale_firing_rates=1.0)
    kernel = dense_model.get_layer("hidden0").get_weights()[0]
    conn = next(c for c in converter.net.all_connections
                if isinstance(c.post_obj, nengo.ensemble.Neurons)
                and c.post_obj.ensemble.label.startswith("hidden0.")
                and isinstance(c.transform, nengo.transforms.Dense))
    # nengo_dl's connection transform is the Keras kernel (transposed), unchanged
    np.testing.assert_array_equal(conn.transform.init, kernel.T)


@pytest.mark.parametrize("scale, synapse", [(150.0, None), (300.0, 0.005)])
def test_residual_and_concatenation(rng, scale, synapse):
    import tensorflow as tf

    layers = tf.keras.layers
    tf.keras.utils.set_random_seed(0)
    inp = tf.keras.Input((8, 8, 1))
    h = layers.Conv2D(3, 3, padding="same", activation="relu", name="c0")(inp)
    r = layers.Conv2D(3, 3, padding="same", activation="relu", name="c1")(h)
    r = layers.Conv2D(3, 3, padding="same", name="c2")(r)
    a = layers.ReLU(name="add_relu")(layers.Add(name="add")([h, r]))
    b1 = layers.Conv2D(2, 1, activation="relu", name="b1")(a)
    b2 = layers.Conv2D(2, 3, padding="same", activation="relu", name="b2")(a)
    c = layers.Concatenate(name="cat")([b1, b2])
    model = tf.keras.Model(inp, layers.Dense(3, name="out")(layers.Flatten()(c)))
    x = rng.random((4, 8, 8, 1)).astype(np.float32)
    # a residual sum with neurons after it, a fan-out and a concatenation (issue 20): the same
    # spikes as the network nengo_dl.Converter builds, run by nengo.Simulator
    error, size = compare(model, x, scale=scale, synapse=synapse)
    assert size > 0.1 and error < 1e-9 * size


def test_batch_norm_and_activation_layers_with_nengo_dl(rng):
    import tensorflow as tf

    layers = tf.keras.layers
    tf.keras.utils.set_random_seed(0)
    inp = tf.keras.Input((8, 8, 1))
    x = layers.BatchNormalization(name="bn0")(layers.Conv2D(4, 3, name="conv0")(inp))
    x = layers.Activation("relu", name="relu0")(x)
    model = tf.keras.Model(inp, layers.Dense(3, name="out")(layers.Flatten()(x)))
    model.get_layer("bn0").set_weights([rng.uniform(0.5, 2, 4), 0.3 * rng.normal(size=4),
                                        0.3 * rng.normal(size=4), rng.uniform(0.5, 2, 4)])
    calibration = rng.random((50, 8, 8, 1)).astype(np.float32)
    scales = nengo_scale_firing_rates(model, calibration, max_rate=400.0)
    # the dict is keyed by the separate Activation layer that owns the neurons
    assert [layer.name for layer in scales] == ["relu0"]
    converter = build_nengo_converter(model, scale_firing_rates=scales, inference_only=True,
                                      initial_voltage=0.0)
    reference = run_nengo(converter, calibration[:4], n_steps=N_STEPS)
    network = convert(model, calibration=calibration, normalization="percentile")
    ours = simulate(network, calibration[:4], n_steps=N_STEPS, scale_firing_rates=400.0,
                    dtype=np.float64).output
    # NengoDL with inference_only=True runs the batch normalization snnlib folds: same spikes
    assert np.abs(reference).max() > 0.1
    np.testing.assert_allclose(ours, reference, atol=1e-9, rtol=1e-9)


# --- LIF neurons (nengo.LIF through nengo_dl.Converter's swap_activations) -------------------

def compare_lif(model, x, *, scale, synapse, n_steps=N_STEPS, neuron="lif",
                initial_voltage=0.0):  # (nengo.LIF's own start is Uniform(0, 1) too)
    """As compare(), with nengo.LIF neurons on both sides."""
    converter = build_nengo_converter(model, scale_firing_rates=scale, synapse=synapse,
                                      neuron=neuron, initial_voltage=initial_voltage)
    reference = run_nengo(converter, x, n_steps=n_steps)
    result = simulate(convert(model), x, n_steps=n_steps, scale_firing_rates=scale,
                      synapse=synapse, neuron=neuron, initial_voltage=initial_voltage,
                      dtype=np.float64)
    return np.abs(result.output - reference).max(), np.abs(reference).max(), result


@pytest.mark.parametrize("config", CONFIGS)
def test_lif_dense_model(dense_model, images6, config):
    diff, size, result = compare_lif(dense_model, images6, **CONFIGS[config])
    # the LIF neurons spike (and sit refractory), and the output is non-trivial ...
    assert size > 0.1 and all(count.sum() > 0 for count in result.spike_counts.values())
    # ... and snnlib's LIF reproduces nengo.LIF step by step to float rounding
    assert diff < 1e-9 * max(size, 1)


@pytest.mark.parametrize("config", CONFIGS)
def test_lif_conv_model(conv_model, images12, config):
    diff, size, _ = compare_lif(conv_model, images12, **CONFIGS[config])
    # convolutions (bias through a relay, multiplied by the gain), pooling, synapse
    assert size > 0.1
    assert diff < 1e-9 * max(size, 1)


def test_lif_parameters_and_per_layer_scales(conv_model, images12):
    from snnlib.sim.neurons import LIF

    neuron = LIF(tau_rc=0.01, tau_ref=0.004, min_voltage=-0.5, amplitude=0.7)
    diff, size, result = compare_lif(conv_model, images12, scale={"conv_a": 60.0, "conv_b": 900.0},
                                     synapse=None, neuron=neuron, initial_voltage=0.3)
    # tau_rc, tau_ref, min_voltage and amplitude reach nengo.LIF; a dict scales layer by layer
    assert size > 0.01 and result.spike_counts["conv_b"].sum() > 0
    assert diff < 1e-9 * max(size, 1)
