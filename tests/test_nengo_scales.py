"""NengoDL's per-layer scale_firing_rates for any model it converts (graphs included)."""
import numpy as np
import pytest
import tensorflow as tf

from snnlib import validation
from snnlib.nengo.bridge import nengo_object, nengo_scale_firing_rates
from snnlib.nengo.scales import layer_lambdas, neuron_kind, neuron_layers

layers = tf.keras.layers


@pytest.fixture
def graph_model():
    """Residual Add, Concatenate, Average, a ReLU() layer, an Activation("relu"), BN, softmax."""
    tf.keras.utils.set_random_seed(1)
    inp = tf.keras.Input((10, 10, 1), name="image")
    stem = layers.Conv2D(4, 3, padding="same", activation="relu", name="stem")(inp)
    x = layers.Conv2D(4, 3, padding="same", activation=tf.nn.relu, name="res_a")(stem)
    x = layers.Conv2D(4, 3, padding="same", name="res_b")(x)
    x = layers.ReLU(name="res_relu")(layers.Add(name="add")([stem, x]))
    a = layers.Conv2D(3, 1, activation="relu", name="branch_a")(x)
    b = layers.BatchNormalization(name="bn")(layers.Conv2D(3, 3, padding="same", name="conv_b")(x))
    b = layers.Activation("relu", name="branch_b")(b)
    x = layers.Concatenate(name="concat")([a, b])
    c = layers.Conv2D(5, 3, strides=2, activation="relu", name="tower_c")(x)
    d = layers.Conv2D(5, 3, strides=2, activation="relu", name="tower_d")(x)
    x = layers.Flatten(name="flat")(layers.Average(name="average")([c, d]))
    model = tf.keras.Model(inp, layers.Dense(3, activation="softmax", name="out")(x))
    rng = np.random.default_rng(2)
    model.get_layer("bn").set_weights([rng.uniform(0.5, 2, 3), 0.2 * rng.normal(size=3),
                                       0.2 * rng.normal(size=3), rng.uniform(0.5, 2, 3)])
    return model


@pytest.fixture
def calibration(rng):
    return rng.random((300, 10, 10, 1)).astype(np.float32)


NEURON_LAYERS = ["stem", "res_a", "res_relu", "branch_a", "branch_b", "tower_c", "tower_d"]


def keras_activations(model, layer, x):
    return tf.keras.Model(model.inputs, layer.output)(x, training=False).numpy()


def test_neuron_layers_are_the_layers_nengo_dl_gives_neurons(graph_model):
    import nengo

    from snnlib.nengo.bridge import build_nengo_converter

    assert [layer.name for layer in neuron_layers(graph_model)] == NEURON_LAYERS
    converter = build_nengo_converter(graph_model, inference_only=True)
    for layer in graph_model.layers[1:]:
        has_neurons = isinstance(nengo_object(converter, layer), nengo.ensemble.Neurons)
        # exactly the layers listed get an ensemble in NengoDL (the others are nodes)
        assert has_neurons == (layer.name in NEURON_LAYERS), layer.name


def test_neuron_kind_follows_nengo_dl_rules():
    assert neuron_kind(layers.ReLU(max_value=6.0)) is None  # NengoDL falls back to a TensorNode
    assert neuron_kind(layers.ReLU(negative_slope=0.1)) == "leaky_relu"
    assert neuron_kind(layers.LeakyReLU()) == "leaky_relu"
    assert neuron_kind(layers.Dense(3, activation="sigmoid")) is None
    assert neuron_kind(layers.Dense(3, activation=tf.nn.relu)) == "relu"
    assert neuron_kind(layers.Activation("relu")) == "relu"


@pytest.mark.parametrize("rule, quantile", [("percentile", 99.9), ("max", 100.0)])
def test_lambdas_are_the_rule_on_keras_activations(graph_model, calibration, rule, quantile):
    lambdas = layer_lambdas(graph_model, calibration, normalization=rule)
    assert [layer.name for layer in lambdas] == NEURON_LAYERS
    for layer, (value, source) in lambdas.items():
        values = keras_activations(graph_model, layer, calibration)
        # the percentile of the non-zero activations (SNN Toolbox's convention), in Keras units;
        # snnlib converts this graph (issue 20), so its own float64 calibration gives them
        expected = np.percentile(values[values > 0], quantile)
        assert source == "snnlib"
        assert value == pytest.approx(expected, rel=1e-6), layer.name


def test_scales_map_lambda_to_max_rate(graph_model, calibration):
    scales = nengo_scale_firing_rates(graph_model, calibration, max_rate=800.0)
    lambdas = layer_lambdas(graph_model, calibration)
    assert list(scales) == list(lambdas)
    for layer, scale in scales.items():
        assert scale * lambdas[layer][0] == pytest.approx(800.0)
    # every neuron layer gets its own scale: they differ (nothing forces branches to agree)
    assert len({round(s, 6) for s in scales.values()}) == len(scales)


def test_the_dict_runs_in_nengo_dl_and_keeps_the_function(graph_model, calibration):
    """Rate neurons with the dict compute the Keras function (each layer's amplitude 1/s_l
    undoes its gain, so branches with different scales still add up in Keras units)."""
    from snnlib.nengo.bridge import build_nengo_converter, run_nengo
    from snnlib.nengo.workflow import logits_model

    logits = logits_model(graph_model)
    scales = nengo_scale_firing_rates(logits, calibration)
    converter = build_nengo_converter(logits, spiking=False, scale_firing_rates=scales,
                                      inference_only=True)
    out = run_nengo(converter, calibration[:20], n_steps=1, simulator="nengo_dl")[:, -1]
    np.testing.assert_allclose(out, logits.predict(calibration[:20], verbose=0), atol=1e-4)


def test_snnlib_lambdas_where_snnlib_converts(conv_model, rng):
    """A model snnlib converts takes snnlib's float64 lambdas (the same spikes as
    snnlib.convert's network), equal to Keras's within float32 rounding."""
    from snnlib.convert import convert
    from snnlib.nengo.scales import keras_lambdas
    from snnlib.normalize.rules import get_rule

    calibration = rng.random((200, 12, 12, 1)).astype(np.float32)
    lambdas = layer_lambdas(conv_model, calibration)
    network = convert(conv_model, calibration=calibration, normalization="percentile")
    assert {layer.name: source for layer, (_, source) in lambdas.items()} == \
        {"conv_a": "snnlib", "conv_b": "snnlib"}
    keras = keras_lambdas(conv_model, calibration, list(lambdas), rule=get_rule("percentile"))
    for layer, (value, _) in lambdas.items():
        assert value == network.stage(layer.name).scale
        assert keras[layer] == pytest.approx(value, rel=1e-5)


def test_relu_output_layer_is_scaled_too(dense_model, rng):
    """snnlib reads a ReLU output layer out without neurons; NengoDL gives it neurons, so the
    dict must scale it (at scale 1 it would fire at its activation in Hz)."""
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([layers.InputLayer((6, 6, 1)), layers.Flatten(),
                                 layers.Dense(8, activation="relu", name="h"),
                                 layers.Dense(3, activation="relu", name="out")])
    calibration = rng.random((100, 6, 6, 1)).astype(np.float32)
    lambdas = layer_lambdas(model, calibration)
    assert {layer.name: source for layer, (_, source) in lambdas.items()} == \
        {"h": "snnlib", "out": "keras"}


def test_nested_and_shared_layers(rng):
    tf.keras.utils.set_random_seed(3)
    inner = tf.keras.Sequential([layers.InputLayer((6, 6, 1)),
                                 layers.Conv2D(3, 3, activation="relu", name="inner_conv")],
                                name="inner")
    shared = layers.Dense(4, activation="relu", name="shared")
    inp = tf.keras.Input((6, 6, 1))
    x = layers.Flatten()(inner(inp))
    y = shared(x)
    z = shared(layers.Dense(48, name="mix")(x))
    model = tf.keras.Model(inp, layers.Dense(2, name="out")(layers.Concatenate()([y, z])))
    calibration = rng.random((64, 6, 6, 1)).astype(np.float32)
    lambdas = layer_lambdas(model, calibration, normalization="max")
    assert [layer.name for layer in lambdas] == ["inner_conv", "shared"]
    inner_values = inner.predict(calibration, verbose=0)
    assert lambdas[inner.get_layer("inner_conv")][0] == pytest.approx(inner_values.max())
    # a layer called twice: lambda over both calls
    both = tf.keras.Model(model.inputs, [shared.get_output_at(0), shared.get_output_at(1)])
    y_values, z_values = both.predict(calibration, verbose=0)
    assert lambdas[shared][0] == pytest.approx(max(y_values.max(), z_values.max()))


def test_errors_name_the_problem(graph_model, calibration):
    no_relu = tf.keras.Sequential([layers.InputLayer((4,)), layers.Dense(2, activation="tanh")])
    with pytest.raises(validation.ArgumentError, match="no layer that nengo_dl.Converter gives"):
        layer_lambdas(no_relu, np.zeros((3, 4), np.float32))
    with pytest.raises(validation.ArgumentError, match="calibration is empty"):
        layer_lambdas(graph_model, calibration[:0])
    with pytest.raises(validation.ArgumentError, match="normalization"):
        layer_lambdas(graph_model, calibration, normalization=None)
    with pytest.raises(ValueError, match="granularity='channel' cannot be expressed"):
        nengo_scale_firing_rates(graph_model, calibration, granularity="channel")
    with pytest.raises(ValueError, match="max_rate"):
        nengo_scale_firing_rates(graph_model, calibration, max_rate=0)
