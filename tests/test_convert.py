"""Conversion layer by layer, the rate-mode self-check, and clear errors for what is unsupported."""
import numpy as np
import pytest
import tensorflow as tf

from snnlib.analysis import stats
from snnlib.ann.activations import soft_lif
from snnlib.convert import ConversionError, convert, register, verify

layers = tf.keras.layers


def chain(input_shape, *hidden):
    tf.keras.utils.set_random_seed(0)
    inp = tf.keras.Input(input_shape, name="input")
    x = inp
    for layer in hidden:
        x = layer(x)
    return tf.keras.Model(inp, x)


def test_dense_sequential(dense_model, images6):
    network = convert(dense_model)
    # rate mode reproduces Keras to float32 rounding
    assert verify(network, dense_model, images6) < 1e-5
    # one stage per Keras layer, the ReLU layers spiking
    assert network.spiking_layers == ["hidden0", "hidden1"]


def test_conv_functional(conv_model, images12):
    network = convert(conv_model)
    # strides, "same"/"valid" padding and average pooling match Keras
    assert verify(network, conv_model, images12) < 1e-5


def test_book_convnet(convnet, mnist):
    (_, _), (x_test, _) = mnist
    network = convert(convnet)
    # the book's convnet converts exactly, on real digits
    assert verify(network, convnet, x_test[:50]) < 1e-5


def test_original_weights_are_the_keras_weights(conv_model):
    network = convert(conv_model)
    for entry in network.weights():
        kernel, bias = conv_model.get_layer(entry["keras_layers"][0]).get_weights()
        # without normalization the kernel and bias are copied unchanged
        np.testing.assert_array_equal(entry["kernel_original"], kernel)
        np.testing.assert_array_equal(entry["kernel"], kernel)
        np.testing.assert_array_equal(entry["bias"], bias)


def test_relu_layers_batchnorm_dropout(rng):
    model = chain(
        (8, 8, 2),
        layers.Conv2D(3, 3, padding="same", use_bias=False, name="conv"),
        layers.BatchNormalization(name="bn"),
        layers.ReLU(name="relu"),
        layers.AveragePooling2D(3, strides=2, padding="same", name="pool"),
        layers.Dropout(0.5, name="drop"),
        layers.Flatten(name="flat"),
        layers.Dense(5, name="dense"),
        layers.Activation("relu", name="act"),
        layers.ReLU(name="relu_again"),
        layers.Dense(2, name="out"),
    )
    bn = model.get_layer("bn")
    bn.set_weights([rng.uniform(0.5, 2, 3), rng.normal(size=3), rng.normal(size=3),
                    rng.uniform(0.5, 2, 3)])
    network = convert(model)
    x = rng.random((5, 8, 8, 2)).astype(np.float32)
    # batch norm folded, pooling with "same" padding, dropout ignored: outputs match Keras
    assert verify(network, model, x) < 1e-5
    # the neurons belong to the ReLU layers (as in nengo_dl); a ReLU after neurons adds a layer
    assert network.spiking_layers == ["relu", "act", "relu_again"]
    # the folded stage lists the Keras layers it merged
    assert network.stage("relu").keras_layers == ["conv", "bn", "relu"]


def test_verify_raises_when_outputs_differ(dense_model, images6):
    network = convert(dense_model)
    network.stage("out").bias = network.stage("out").bias + 1.0
    # a wrong bias is caught, and the message gives the largest difference
    with pytest.raises(ValueError, match="differs from Keras by up to 1"):
        verify(network, dense_model, images6)


@pytest.mark.parametrize("layer, words", [
    (layers.MaxPooling2D(2, name="maxpool"), ["maxpool", "MaxPooling2D", "AveragePooling2D",
                                               "retrain"]),
    (layers.Conv2D(2, 3, activation="sigmoid", name="sig"), ["sig", "Conv2D", "sigmoid"]),
    (layers.Dense(3, activation="tanh", name="th"), ["th", "tanh"]),
    (layers.UpSampling2D(interpolation="bilinear", name="up"),
     ["up", "UpSampling2D", "'bilinear'", "interpolation='nearest'"]),
    (layers.ReLU(max_value=6.0, name="relu6"), ["relu6", "max_value"]),
])
def test_unsupported_layers_name_layer_type_and_support(layer, words):
    model = chain((8, 8, 1), layers.Conv2D(2, 3, name="c"), layer)
    with pytest.raises(ConversionError) as info:
        convert(model)
    # the message names the layer, its type, and what to do instead
    for word in words:
        assert word in str(info.value)


def test_custom_layer_is_rejected():
    class Doubler(layers.Layer):
        def call(self, x):
            return 2 * x

    model = chain((4,), layers.Dense(3, name="d"), Doubler(name="twice"))
    # an unknown layer type fails by type and name
    with pytest.raises(ConversionError, match="Doubler 'twice'"):
        convert(model)


def test_channels_first_is_rejected():
    model = chain((1, 8, 8), layers.Conv2D(2, 3, data_format="channels_first", name="cf"))
    # channels_first is named as unsupported, with the fix
    with pytest.raises(ConversionError, match="Conv2D 'cf'.*channels_first.*channels_last"):
        convert(model)


def test_two_inputs_are_rejected_joins_convert(rng):
    a, b = tf.keras.Input((4,)), tf.keras.Input((4,))
    two_inputs = tf.keras.Model([a, b], layers.Add()([a, b]))
    # several inputs: refused, saying so
    with pytest.raises(ConversionError, match="2 inputs"):
        convert(two_inputs)
    inp = tf.keras.Input((4,))
    h = layers.Dense(3, name="d")(inp)
    # a residual sum of two branches converts (issue 20), exactly
    branchy = tf.keras.Model(inp, layers.Add(name="merge")([h, layers.Dense(3)(h)]))
    network = convert(branchy)
    assert network.stage("merge").inputs == ("d", network.stages[1].name)
    x = rng.random((5, 4)).astype(np.float32)
    assert verify(network, branchy, x) < 1e-5


def test_unbuilt_and_uninitialized_models_are_rejected():
    unbuilt = tf.keras.Sequential([layers.Dense(3)])
    # no weights yet
    with pytest.raises(ConversionError, match="not built"):
        convert(unbuilt)
    zeros = chain((4,), layers.Dense(3, kernel_initializer="zeros", name="d"))
    # all-zero kernels: uninitialized / untrained
    with pytest.raises(ConversionError, match="all-zero kernels"):
        convert(zeros)


class Doubler(layers.Layer):
    """A custom Keras layer: multiplies its input by 2."""

    def call(self, x):
        return 2 * x


def test_registry_has_the_builtins_and_the_message_is_built_from_it():
    from snnlib.convert import CONVERTERS, register, supported_layers

    # filled at import: every built-in layer type, listed in the "not supported" message
    for keras_type in (layers.Dense, layers.Conv2D, layers.AveragePooling2D, layers.Flatten):
        assert keras_type in CONVERTERS
        assert keras_type.__name__ in supported_layers()
    # max pooling is registered (to explain itself) but not listed as supported
    assert layers.MaxPooling2D in CONVERTERS and "MaxPooling2D" not in supported_layers()
    model = chain((4,), layers.Dense(3, name="d"), Doubler(name="twice"))
    with pytest.raises(ConversionError) as info:
        convert(model)
    # the message names the layer, what is supported, and how to register a converter
    assert "Supported: " + supported_layers() in str(info.value)
    assert "@snnlib.register_converter(Doubler)" in str(info.value)
    # and the advice works as written (issue 20: snnlib.convert is the function, not the module)
    import snnlib

    assert snnlib.register_converter is register


def test_registering_again_warns():
    from snnlib.convert import CONVERTERS, DenseConverter, register

    class MyDense(DenseConverter):
        pass

    # replacing a converter warns, and the registry then uses the new one
    with pytest.warns(UserWarning, match="Dense.*replaced by MyDense"):
        register(layers.Dense)(MyDense)
    assert CONVERTERS[layers.Dense] is MyDense
    with pytest.warns(UserWarning, match="replaced by DenseConverter"):
        register(layers.Dense)(DenseConverter)
    assert CONVERTERS[layers.Dense] is DenseConverter
    with pytest.raises(TypeError, match="LayerConverter"):
        register(layers.Dense)(object)


CUSTOM_FIRST = '''
import threading
import numpy as np
import tensorflow as tf
import snnlib.convert as unused  # noqa: F401  (the module, before any convert() call)
from snnlib.convert import LayerConverter, convert, register, verify
from snnlib.network.ops import Op


class Doubler(tf.keras.layers.Layer):
    def call(self, x):
        return 2 * x


class DoubleOp(Op):
    kind = "double"

    def __call__(self, x):
        return 2 * x

    def fan_out(self, input_shape):
        return np.ones(input_shape, dtype=np.int64)


# a custom layer is registered before the first convert() call ...
@register(Doubler)
class DoublerConverter(LayerConverter):
    def convert(self, builder):
        builder.add(self.layer.name, DoubleOp(), self.output_shape())


tf.keras.utils.set_random_seed(0)
inp = tf.keras.Input((5,))
# (a softmax output: verify copies the model without it, clone_model in every thread)
model = tf.keras.Model(inp, tf.keras.layers.Dense(3, activation="softmax", name="out")(
    Doubler(name="twice")(tf.keras.layers.Dense(4, activation="relu", name="d")(inp))))
x = np.random.default_rng(0).random((6, 5)).astype(np.float32)
# ... and the built-in converters still work beside it, from several threads at once
errors, results = [], []

def work():
    try:
        network = convert(model)
        results.append(verify(network, model, x))
    except Exception as err:  # noqa: BLE001
        errors.append(repr(err))

threads = [threading.Thread(target=work) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
assert not errors, errors
assert len(results) == 8 and max(results) < 1e-5, results
print("ok", [s.kind for s in convert(model).stages])
'''


def test_custom_converter_registered_before_the_first_convert():
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root), TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run([sys.executable, "-c", CUSTOM_FIRST], env=env, capture_output=True,
                          text=True, timeout=300)
    # a fresh interpreter: register a custom layer, then convert Dense + custom layer, in
    # 8 threads (the built-ins are registered at import, so neither disables the other)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ok ['dense', 'double', 'dense']" in done.stdout


# --------------------------------------------------------------------------------------------
# check(): every problem at once, each with its fix
# --------------------------------------------------------------------------------------------

def test_check_lists_every_problem_with_its_fix():
    from snnlib.convert import check

    model = tf.keras.Sequential([
        layers.InputLayer((12, 12, 1)),
        layers.Conv2D(4, 3, activation="relu", name="c"),
        layers.MaxPooling2D(2, name="pool0"),
        layers.Conv2D(4, 3, activation=tf.nn.leaky_relu, name="lk"),
        layers.LeakyReLU(name="lrelu"),
        layers.ReLU(max_value=6, name="r6"),
        layers.UpSampling2D(interpolation="bilinear", name="up"),
        Doubler(name="twice"),
        layers.Flatten(name="flat"),
        layers.Dense(5, activation="elu", name="el"),
        layers.Dense(3, activation="softmax", name="out"),
    ])
    report = check(model)
    # every layer that will not convert is listed, in model order, not only the first
    assert not report.ok
    assert [p.name for p in report.problems] == ["pool0", "lk", "lrelu", "r6", "up", "twice",
                                                   "el"]
    text = str(report)
    # each with its fix
    for fix in ("max_to_avg_pool=True", "AveragePooling2D and retrain",
                "negative rates need negative spikes; use ReLU and retrain",
                "clipped ReLU (max_value=6", "interpolation='nearest'",
                "@snnlib.register_converter(Doubler)",
                "'Extending snnlib'"):
        assert fix in text, fix
    # the softmax is not a problem: the report says what conversion does with it
    assert "softmax of 'out' is dropped" in text and "argmax" in text
    # convert raises with the same full list
    with pytest.raises(ConversionError) as info:
        convert(model)
    assert str(info.value) == text and len(info.value.problems) == 7


def test_check_of_a_model_that_converts():
    from snnlib.convert import check

    model = chain((6, 6, 1), layers.Conv2D(3, 3, name="conv"), layers.BatchNormalization(
        name="bn"), layers.ReLU(name="relu"), layers.Flatten(name="flat"),
        layers.Dense(2, name="out"))
    report = check(model)
    # no problem, and the notes say what the conversion does with the batch normalization
    assert report.ok and report.problems == []
    assert str(report).startswith("Model") and "converts" in str(report)
    assert "'bn' is folded into the weights of 'conv' before it" in str(report)


def test_subclassed_model_is_a_clear_error():
    class Net(tf.keras.Model):
        def __init__(self):
            super().__init__(name="net")
            self.hidden = layers.Dense(4, activation="relu")
            self.out = layers.Dense(2)

        def call(self, x):
            return self.out(self.hidden(x))

    model = Net()
    model(np.zeros((1, 3), np.float32))
    # not a TypeError from deep inside: a ConversionError that says what to do
    with pytest.raises(ConversionError, match="subclassed Keras model.*Sequential or "
                       "functional.*set_weights"):
        convert(model)


@pytest.mark.parametrize("make, words", [
    (lambda: layers.ELU(name="e"), ["ELU 'e'", "negative", "ReLU and retrain"]),
    (lambda: layers.PReLU(name="p"), ["PReLU 'p'", "negative spikes"]),
    (lambda: layers.Activation("relu6", name="a6") if hasattr(tf.keras.activations, "relu6")
     else layers.Activation(tf.nn.relu6, name="a6"), ["'a6'", "relu6", "clipped"]),
    (lambda: layers.Activation("swish", name="sw"), ["'sw'", "swish", "use ReLU"]),
    (lambda: layers.Activation(soft_lif(100.0), name="lif"),
     ["'lif'", "soft_lif", "neuron='lif'", "set_weights"]),
    (lambda: layers.Activation("softmax", name="sm"), ["'sm'", "softmax inside"]),
    (lambda: layers.ReLU(threshold=0.5, name="thr"), ["'thr'", "thresholded"]),
])
def test_refused_settings_have_a_fix(make, words):
    model = chain((8, 8, 1), layers.Conv2D(2, 3, name="c"), make(), layers.Flatten(),
                  layers.Dense(2, name="out"))
    with pytest.raises(ConversionError) as info:
        convert(model)
    for word in words:
        assert word in str(info.value), word


# --------------------------------------------------------------------------------------------
# Batch normalization wherever it sits, Rescaling, Reshape, ZeroPadding2D, global pooling
# --------------------------------------------------------------------------------------------

def randomize_batch_norms(model, rng):
    """Give every BatchNormalization random statistics (Keras starts them at the identity)."""
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 2, c), rng.normal(size=c), rng.normal(size=c),
                               rng.uniform(0.5, 2, c)])
    return model


def batch_norm_everywhere(rng):
    """BN at the input, after ReLUs before "same" and "valid" convolutions, before a flatten,
    on a dense layer's output after its ReLU, and before a ReLU."""
    model = chain(
        (10, 10, 2),
        layers.BatchNormalization(name="bn_in"),
        layers.Conv2D(4, 3, padding="same", activation="relu", name="c0"),
        layers.BatchNormalization(name="bn_same"),
        layers.Conv2D(4, 3, padding="same", activation="relu", name="c1"),
        layers.BatchNormalization(name="bn_valid"),
        layers.Conv2D(4, 3, name="c2"),
        layers.BatchNormalization(name="bn_linear"),
        layers.ReLU(name="r2"),
        layers.BatchNormalization(name="bn_flat"),
        layers.Flatten(name="flat"),
        layers.Dense(6, activation="relu", name="d0"),
        layers.BatchNormalization(name="bn_1d"),
        layers.Dense(3, name="out"),
    )
    return randomize_batch_norms(model, rng)


def test_batch_norm_wherever_it_sits_is_exact(rng):
    model = batch_norm_everywhere(rng)
    x = rng.random((6, 10, 10, 2)).astype(np.float32)
    network = convert(model)
    notes = "\n".join(network.notes)
    # folded into the layer before (a linear convolution) or after (a "valid" convolution, a
    # dense layer through a flatten, a dense layer) where that is exact ...
    assert "'bn_linear' is folded into the weights of 'c2' before it" in notes
    for name, target in (("bn_valid", "c2"), ("bn_flat", "d0"), ("bn_1d", "out")):
        assert f"'{name}' is folded into the weights of '{target}' after it" in notes
    # ... and kept as an affine stage where a "same" padding would pad its output with zeros
    assert [s.name for s in network.stages if s.kind == "affine"] == ["bn_in", "bn_same"]
    assert "pads its output with zeros" in notes
    # rate mode reproduces Keras, before and after normalization (the affine stage carries
    # lambda: its bias is divided by the lambda of its input)
    assert verify(network, model, x) < 1e-5
    normalized = convert(model, calibration=x, normalization="percentile")
    assert verify(normalized, model, x) < 1e-5
    assert normalized.scales["bn_same"] == normalized.scales["c0"] != 1.0
    affine = normalized.stage("bn_same")
    np.testing.assert_allclose(affine.bias, affine.bias_original / normalized.scales["c0"],
                               rtol=1e-6)


def test_affine_stage_runs_on_the_dense_engine(rng):
    from snnlib import simulate

    model = batch_norm_everywhere(rng)
    x = rng.random((4, 10, 10, 2)).astype(np.float32)
    network = convert(model, calibration=x, normalization="max")
    options = dict(n_steps=20, scale_firing_rates=300, dtype=np.float64)
    # the event-driven engine refuses the affine stage between spiking layers, clearly ...
    with pytest.raises(ValueError, match="'bn_same' \\(affine\\) has no sparse form"):
        simulate(network, x, method="event", **options)
    # ... and "auto" runs the dense engine instead
    auto = simulate(network, x, **options)
    dense = simulate(network, x, method="dense", **options)
    np.testing.assert_array_equal(auto.output, dense.output)


@pytest.mark.parametrize("index, bad", [(3, -0.5), (3, np.nan), (0, np.inf)])
def test_batch_norm_with_bad_statistics_is_a_clear_error(rng, index, bad):
    model = chain((6,), layers.Dense(3, name="d"), layers.BatchNormalization(name="bn"),
                  layers.Dense(2, name="out"))
    weights = model.get_layer("bn").get_weights()
    weights[index] = weights[index].copy()
    weights[index][1] = bad
    model.get_layer("bn").set_weights(weights)
    # a ConversionError naming the layer, never NaN weights
    with pytest.raises(ConversionError, match="BatchNormalization 'bn': .*(variance is negative"
                       "|NaN or infinite)"):
        convert(model)


def test_rescaling_zero_padding_reshape_global_pooling(rng):
    model = chain(
        (8, 8, 1),
        layers.Rescaling(1 / 255, offset=-0.5, name="scale"),
        layers.Conv2D(4, 3, padding="same", activation="relu", name="c0"),
        layers.ZeroPadding2D(((1, 2), (0, 1)), name="pad"),
        layers.Conv2D(6, 3, activation="relu", name="c1"),
        layers.Reshape((9 * 7, 6), name="reshape"),
        layers.Reshape((9, 7, 6), name="back"),
        layers.GlobalAveragePooling2D(name="gap"),
        layers.Dense(3, name="out"),
    )
    pixels = rng.uniform(0, 255, (5, 8, 8, 1)).astype(np.float32)
    network = convert(model)
    # each is a stage of its own (the rescaling with an offset cannot be folded into a
    # "same" convolution) and rate mode reproduces Keras
    assert [s.kind for s in network.stages] == ["affine", "conv2d", "zeropad2d", "conv2d",
                                                "reshape", "reshape", "globalavgpool2d",
                                                "dense"]
    assert verify(network, model, pixels) < 1e-4
    normalized = convert(model, calibration=pixels, normalization="percentile")
    assert verify(normalized, model, pixels) < 1e-4
    # connections and operations are counted through the new ops
    from snnlib import ann_operations, fan_out

    assert ann_operations(network, by_layer=True)["pad"] == 0
    assert fan_out(network, "c0").sum() > 0


def test_rescaling_without_offset_folds_into_the_first_layer(rng):
    model = chain((8, 8, 1), layers.Rescaling(1 / 255, name="scale"),
                  layers.Conv2D(4, 3, padding="same", activation="relu", name="c0"),
                  layers.Flatten(), layers.Dense(3, name="out"))
    network = convert(model)
    # exact even with "same" padding: zeros stay zeros
    assert network.stages[0].keras_layers == ["scale", "c0"]
    assert verify(network, model, rng.uniform(0, 255, (4, 8, 8, 1)).astype(np.float32)) < 1e-4


# --------------------------------------------------------------------------------------------
# The readout: a final softmax, a ReLU output layer; max pooling swapped on request
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("head", ["dense", "activation", "layer"])
def test_final_softmax_becomes_a_linear_readout(rng, head):
    extra = {"dense": [], "activation": [layers.Activation("softmax", name="probs")],
             "layer": [layers.Softmax(name="probs")]}[head]
    model = chain((6,), layers.Dense(8, activation="relu", name="h"),
                  layers.Dense(4, activation="softmax" if head == "dense" else None, name="out"),
                  *extra)
    x = rng.random((10, 6)).astype(np.float32)
    network = convert(model, calibration=x, normalization="percentile")
    # the softmax is dropped: the network outputs the logits, and says so
    assert network.dropped_softmax == ("out" if head == "dense" else "probs")
    assert "softmax is dropped" in network.readout_note and "readout" in repr(network)
    assert "softmax is dropped" in repr(network.normalization_report())
    # verify compares with the Keras logits; the predicted class is the same
    assert verify(network, model, x) < 1e-5
    np.testing.assert_array_equal(network.forward(x).argmax(1),
                                  model.predict(x, verbose=0).argmax(1))


def test_softmax_inside_the_network_is_refused():
    model = chain((6,), layers.Dense(8, activation="softmax", name="mid"),
                  layers.Dense(4, name="out"))
    with pytest.raises(ConversionError, match="Dense 'mid'.*softmax inside the network"):
        convert(model)


def test_verify_hints_at_a_leftover_softmax(rng):
    model = chain((6,), layers.Dense(8, activation="relu", name="h"),
                  layers.Dense(4, activation="softmax", name="out"))
    x = rng.random((10, 6)).astype(np.float32)
    model.predict(x, verbose=0)
    # the forum's attempt: make the output linear by hand; Keras keeps applying the softmax
    model.get_layer("out").activation = tf.keras.activations.linear
    network = convert(model)
    assert network.dropped_softmax is None
    with pytest.raises(ValueError, match="still applies a softmax.*compiled predict"):
        verify(network, model, x)


def test_relu_output_layer_is_a_readout_with_lambda_one(dense_model, rng):
    model = chain((6, 6, 1), layers.Flatten(name="flat"),
                  layers.Dense(16, activation="relu", name="hidden"),
                  layers.Dense(4, activation="relu", name="out"))
    x = rng.random((20, 6, 6, 1)).astype(np.float32)
    network = convert(model, calibration=x, normalization="percentile")
    # the ReLU output layer has no neurons and is not normalized ...
    assert network.spiking_layers == ["hidden"] and network.scales["out"] == 1.0
    assert network.stage("out").readout and "ReLU of 'out'" in network.readout_note
    # ... so rate mode reproduces Keras after normalization (the issue: off by 13.3)
    assert verify(network, model, x) < 1e-5
    from snnlib import simulate

    options = dict(n_steps=30, scale_firing_rates=500, dtype=np.float64)
    result = simulate(network, x, **options)
    # its ReLU is applied to the readout at every step; both engines agree (auto: dense)
    assert result.output.min() >= 0
    dense = simulate(network, x, method="dense", **options)
    np.testing.assert_array_equal(result.output, dense.output)
    with pytest.raises(ValueError, match="rectified readout"):
        simulate(network, x, method="event", **options)


def test_max_to_avg_pool_warns_and_reports_the_change(rng):
    model = chain((8, 8, 1), layers.Conv2D(4, 3, activation="relu", name="c"),
                  layers.MaxPooling2D(2, name="pool"), layers.Flatten(name="flat"),
                  layers.Dense(3, activation="softmax", name="out"))
    x = rng.random((40, 8, 8, 1)).astype(np.float32)
    y = rng.integers(0, 3, 40)
    # refused by default, with the option named
    with pytest.raises(ConversionError, match="max_to_avg_pool=True"):
        convert(model)
    # opt-in: a warning with the rate-mode change of the predictions, also on the network
    with pytest.warns(UserWarning, match="predicted class changes for .* of 40 examples.*"
                      "accuracy"):
        network = convert(model, calibration=x, normalization="max", max_to_avg_pool=True, y=y)
    change = network.pooling_change
    keras = model.predict(x, verbose=0).argmax(1)
    assert change["changed"] == np.mean(network.forward(x).argmax(1) != keras)
    assert change["keras_accuracy"] == np.mean(keras == y)
    # the cost comes with a paired test on the same examples and its difference interval
    ours = network.forward(x).argmax(1) == y
    assert change["paired"] == stats.compare_paired(ours, keras == y)
    low, high = change["difference_interval"]
    assert low <= change["accuracy"] - change["keras_accuracy"] <= high
    assert network.swapped_pooling == ["pool"] and network.stage("pool").kind == "avgpool2d"
    # verify compares with the same swap in Keras (and the logits), and says so when it fails
    assert verify(network, model, x) < 1e-5
    network.stage("out").bias = network.stage("out").bias + 1
    with pytest.raises(ValueError, match="average instead of max pooling in 'pool'"):
        verify(network, model, x)
    # without data, the warning says how to measure the change
    with pytest.warns(UserWarning, match="pass calibration= or x="):
        convert(model, max_to_avg_pool=True)


def test_spiking_max_pool_keeps_the_function(rng):
    model = chain((8, 8, 1), layers.Conv2D(4, 3, activation="relu", name="c"),
                  layers.MaxPooling2D(2, name="pool"), layers.Flatten(name="flat"),
                  layers.Dense(3, name="out"))
    x = rng.random((40, 8, 8, 1)).astype(np.float32)
    # the refusal names the gate first
    with pytest.raises(ConversionError, match="spiking_max_pool=True"):
        convert(model)
    network = convert(model, calibration=x, normalization="max", spiking_max_pool=True)
    # max pooling kept: the same function in rate mode, nothing swapped, and a note says so
    assert network.stage("pool").kind == "maxpool2d" and network.swapped_pooling == []
    assert verify(network, model, x) < 1e-5
    assert any("spiking max pooling" in note for note in network.notes)
    # one choice at a time
    with pytest.raises(ConversionError, match="choose one"):
        convert(model, spiking_max_pool=True, max_to_avg_pool=True)
    # global max pooling too (one window per channel), beside a pooling window
    pooled = chain((8, 8, 1), layers.Conv2D(4, 3, activation="relu", name="c"),
                   layers.MaxPooling2D(2, name="pool"),
                   layers.Conv2D(4, 2, activation="relu", name="c2"),
                   layers.GlobalMaxPooling2D(name="gmax"), layers.Dense(3, name="out"))
    network = convert(pooled, calibration=x, normalization="max", spiking_max_pool=True)
    assert network.stage("gmax").kind == "globalmaxpool2d"
    assert verify(network, pooled, x) < 1e-5


def test_normalization_report_prints_whole(convnet, mnist):
    import pandas as pd

    (x_train, _), _ = mnist
    network = convert(convnet, calibration=x_train[:50], normalization="percentile")
    report = network.normalization_report()
    with pd.option_context("display.width", 40, "display.max_columns", 3):
        text = repr(report)
    # every column printed, no "..." even at a narrow console width
    assert "..." not in text
    for column in report.columns:
        assert column in text
    # derived frames are plain DataFrames
    assert type(report[report["spiking"]]) is pd.DataFrame


def test_docstrings_list_the_supported_layers():
    from snnlib.convert import check, supported_layers

    # built from the registry at import
    for function in (check, convert):
        assert supported_layers() in function.__doc__
        assert "Rescaling" in function.__doc__ and "{supported}" not in function.__doc__


@pytest.mark.parametrize("invert", [False, True])
def test_normalization_layer_is_an_affine_map(rng, invert):
    model = chain((6, 6, 2), layers.Normalization(mean=[0.4, 0.6], variance=[0.04, 0.09],
                                                  invert=invert, name="norm"),
                  layers.Conv2D(3, 3, padding="same", activation="relu", name="c"),
                  layers.Flatten(), layers.Dense(2, name="out"))
    x = rng.random((5, 6, 6, 2)).astype(np.float32)
    network = convert(model, calibration=x, normalization="percentile")
    # (x - mean) / std before a "same" convolution: an affine stage, exact in rate mode
    assert network.stages[0].kind == "affine"
    assert verify(network, model, x) < 1e-4


# --- the layer types of issue 20 ------------------------------------------------------------

NEW_LAYER_MODELS = {
    "dilated": lambda: chain(
        (14, 14, 2), layers.Conv2D(6, 3, activation="relu", name="c0"),
        layers.Conv2D(6, 3, dilation_rate=2, padding="same", activation="relu", name="c1"),
        layers.Flatten(), layers.Dense(3, name="out")),
    "grouped": lambda: chain(
        (14, 14, 2), layers.Conv2D(6, 3, activation="relu", name="c0"),
        layers.Conv2D(6, 3, strides=2, groups=3, activation="relu", name="c1"),
        layers.Flatten(), layers.Dense(3, name="out")),
    "mobilenet-like": lambda: chain(
        (14, 14, 2), layers.Conv2D(4, 3, activation="relu", name="c0"),
        layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="dw"),
        layers.BatchNormalization(name="bn"), layers.ReLU(name="dw_relu"),
        layers.Conv2D(8, 1, activation="relu", name="pw"),
        layers.GlobalAveragePooling2D(name="gap"), layers.Dense(3, name="out")),
    "separable": lambda: chain(
        (14, 14, 2), layers.Conv2D(4, 3, activation="relu", name="c0"),
        layers.SeparableConv2D(6, 3, depth_multiplier=2, strides=2, activation="relu",
                               name="sep"),
        layers.Flatten(), layers.Dense(3, name="out")),
    "conv1d": lambda: chain(
        (14, 14, 1), layers.Reshape((14, 14), name="rows"),
        layers.Conv1D(6, 3, activation="relu", name="c0"),
        layers.AveragePooling1D(2, name="pool"),
        layers.Conv1D(6, 3, padding="causal", dilation_rate=2, activation="relu", name="c1"),
        layers.GlobalAveragePooling1D(name="gap"), layers.Dense(3, name="out")),
    "crop-upsample": lambda: chain(
        (14, 14, 2), layers.Cropping2D(((1, 2), (0, 1)), name="crop"),
        layers.Conv2D(4, 3, activation="relu", name="c0"), layers.UpSampling2D(2, name="up"),
        layers.Conv2D(4, 3, strides=2, activation="relu", name="c1"),
        layers.Flatten(), layers.Dense(3, name="out")),
}


@pytest.mark.parametrize("name", sorted(NEW_LAYER_MODELS))
@pytest.mark.parametrize("granularity", ["layer", "channel"])
def test_new_layer_types_convert_exactly(rng, name, granularity):
    from snnlib import simulate

    model = NEW_LAYER_MODELS[name]()
    x = rng.random((8,) + model.input_shape[1:]).astype(np.float32)
    network = convert(model, calibration=x, normalization="max", granularity=granularity)
    # rate mode reproduces Keras, after per-layer or per-channel normalization (a grouped or
    # depthwise kernel is rescaled per group, a global pooling carries per-channel lambdas)
    reference = model.predict(x, verbose=0)
    assert verify(network, model, x) <= 1e-5 * np.abs(reference).max()
    # and it simulates: the engine "auto" picks agrees spike for spike with the dense engine
    options = dict(n_steps=15, scale_firing_rates=200, dtype=np.float64)
    auto = simulate(network, x[:3], **options)
    dense = simulate(network, x[:3], method="dense", **options)
    for layer, counts in dense.spike_counts.items():
        np.testing.assert_array_equal(counts, auto.spike_counts[layer])
    assert sum(int(c.sum()) for c in dense.spike_counts.values()) > 0


def test_separable_convolution_is_one_convolution_and_says_so(rng):
    from snnlib import check

    model = NEW_LAYER_MODELS["separable"]()
    network = convert(model)
    # one stage with the composed kernel (kh, kw, c_in, filters); the report says so
    assert network.stage("sep").kernel.shape == (3, 3, 4, 6)
    assert "depthwise kernel composed with its pointwise kernel" in str(check(model))


def test_conv1d_network_runs_on_the_event_driven_engine(rng):
    from snnlib import simulate

    model = chain((14, 14, 1), layers.Reshape((14, 14), name="rows"),
                  layers.Conv1D(6, 3, activation="relu", name="c0"),
                  layers.AveragePooling1D(2, name="pool"),
                  layers.Conv1D(6, 3, strides=2, padding="same", activation="relu", name="c1"),
                  layers.Flatten(), layers.Dense(3, name="out"))
    x = rng.random((4, 14, 14, 1)).astype(np.float32)
    network = convert(model, calibration=x, normalization="max")
    options = dict(n_steps=15, scale_firing_rates=200, dtype=np.float64)
    # 1-D convolutions (not causal or dilated) and pooling have sparse forms: the same spikes
    # on both engines
    event = simulate(network, x, method="event", **options)
    dense = simulate(network, x, method="dense", **options)
    for layer, counts in dense.spike_counts.items():
        np.testing.assert_array_equal(counts, event.spike_counts[layer])


@pytest.mark.parametrize("layer, words", [
    (layers.Lambda(lambda t: 2 * t, name="twice"),
     ["Lambda 'twice'", "Rescaling(2.0)", "set_weights", "no retraining"]),
    # NengoDL makes rate neurons of it unless swapped: the message names the swap, and where
    # the cost of each alternative is measured
    (layers.LeakyReLU(name="leaky"), ["LeakyReLU 'leaky'", "nengo_dl.Converter",
                                      "swap_activations={nengo_dl.LeakyReLU(alpha): "
                                      "nengo_dl.SpikingLeakyReLU(alpha)}",
                                      "benchmarks/RESULTS.md"]),
])
def test_refusals_point_to_what_works(layer, words):
    model = chain((6, 6, 1), layers.Conv2D(2, 3, name="c"), layer, layers.Flatten(),
                  layers.Dense(2, name="out"))
    with pytest.raises(ConversionError) as info:
        convert(model)
    for word in words:
        assert word in str(info.value), word


def test_concatenation_keeps_each_inputs_lambda(rng):
    inp = tf.keras.Input((6,))
    a = layers.Dense(3, activation="relu", name="a")(inp)
    b = layers.Dense(4, activation="relu", name="b")(inp)
    model = tf.keras.Model(inp, layers.Dense(2, name="out")(layers.Concatenate(name="cat")(
        [a, b])))
    model.get_layer("b").set_weights([w * 5 for w in model.get_layer("b").get_weights()])
    x = rng.random((50, 6)).astype(np.float32)
    network = convert(model, calibration=x, normalization="max")
    # the concatenation's lambda is its inputs' own, channel by channel (Keras units kept)
    cat = network.stage("cat")
    np.testing.assert_array_equal(cat.scale, [network.scales["a"]] * 3 + [network.scales["b"]] * 4)
    assert network.scales["b"] != network.scales["a"]  # two lambdas, each kept
    assert verify(network, model, x) <= 1e-5 * np.abs(model.predict(x, verbose=0)).max()
    # along another axis it does not convert, and says which axis does
    inp2 = tf.keras.Input((3, 4))
    side = layers.Concatenate(axis=1, name="rows")([layers.Dense(4, name="p")(inp2),
                                                    layers.Dense(4, name="q")(inp2)])
    with pytest.raises(ConversionError, match="'rows'.*axis=1.*channel"):
        convert(tf.keras.Model(inp2, side))


def test_a_custom_converter_reading_a_missing_kernel_gets_a_clear_error():
    from snnlib.convert import CONVERTERS, LayerConverter

    class Scale(layers.Layer):
        def build(self, input_shape):
            self.factor = self.add_weight(name="factor", shape=(), initializer="ones")

        def call(self, x):
            return self.factor * x

    class ScaleConverter(LayerConverter):
        def convert(self, builder):
            self.weights()  # as a converter copied from the README's Dense example would

    register(Scale)(ScaleConverter)
    try:
        model = chain((4,), Scale(name="scale"), layers.Dense(2, name="out"))
        with pytest.raises(ConversionError, match="'scale'.*no .kernel.*factor.*"
                           "get_weights"):
            convert(model)
    finally:
        CONVERTERS.unregister(Scale)


# --- graphs: residual sums, concatenations, fan-out (issue 20) ---------------------------------

def residual_inception(rng):
    """A residual block (its sum followed by ReLU neurons) and an inception-like block."""
    tf.keras.utils.set_random_seed(0)
    inp = tf.keras.Input((10, 10, 2), name="image")
    h = layers.Conv2D(4, 3, padding="same", activation="relu", name="c0")(inp)
    r = layers.Conv2D(4, 3, padding="same", name="c1")(h)
    r = layers.BatchNormalization(name="bn1")(r)
    r = layers.ReLU(name="r1")(r)
    r = layers.Conv2D(4, 3, padding="same", name="c2")(r)
    a = layers.ReLU(name="add_relu")(layers.Add(name="add")([h, r]))
    b1 = layers.Conv2D(3, 1, activation="relu", name="b1")(a)
    b2 = layers.Conv2D(5, 3, padding="same", activation="relu", name="b2")(a)
    d = layers.Subtract(name="sub")([b1, layers.Conv2D(3, 1, name="b3")(b1)])
    c = layers.Concatenate(name="cat")([d, b2, layers.Average(name="avg")([b2, b2])])
    model = tf.keras.Model(inp, layers.Dense(3, name="out")(
        layers.GlobalAveragePooling2D(name="gap")(c)))
    bn = model.get_layer("bn1")
    bn.set_weights([rng.uniform(0.5, 2, 4), rng.normal(0, 0.2, 4), rng.normal(0, 0.2, 4),
                    rng.uniform(0.5, 2, 4)])
    return model


@pytest.mark.parametrize("normalization, granularity", [
    (None, "layer"), ("max", "layer"), ("percentile", "layer"), ("max", "channel")])
def test_a_graph_converts_exactly(rng, normalization, granularity):
    model = residual_inception(rng)
    x = rng.random((12, 10, 10, 2)).astype(np.float32)
    options = {} if normalization is None else dict(
        calibration=x, normalization=normalization, granularity=granularity)
    network = convert(model, **options)
    assert not network.is_chain
    # the sum reads both paths, the branches read the sum (fan-out), the join its inputs
    assert network.stage("add_relu").inputs == ("c0", "c2")
    assert network.stage("cat").inputs == ("sub", "b2", "avg")
    assert network.stage("add_relu").spiking  # the ReLU after the sum has the neurons
    reference = model.predict(x, verbose=0)
    assert verify(network, model, x) <= 1e-5 * np.abs(reference).max()
    # NengoDL-style scaled rates (ReLU: any scale) walk the same graph
    from snnlib.sim.neurons import scaled_forward

    np.testing.assert_allclose(scaled_forward(network, x, scale_firing_rates=300.0),
                               network.forward(x, dtype=np.float64), rtol=1e-9, atol=1e-12)
    if normalization is not None:
        # each path keeps its own lambda up to the sum: it enters with lambda_in / lambda_sum
        add = network.stage("add_relu")
        for name, factor in zip(add.inputs, add.op.factors or (1.0, 1.0), strict=True):
            np.testing.assert_allclose(factor, np.asarray(network.scales[name]) / add.scale)


def test_a_graph_simulates(rng):
    from snnlib import simulate

    model = residual_inception(rng)
    x = rng.random((12, 10, 10, 2)).astype(np.float32)
    network = convert(model, calibration=x, normalization="max")
    options = dict(n_steps=300, scale_firing_rates=500, dtype=np.float64)
    # at these rates "auto" runs the dense engine (tests/test_event_driven.py: the event one)
    auto = simulate(network, x, **options)
    dense = simulate(network, x, method="dense", **options)
    np.testing.assert_array_equal(auto.output, dense.output)
    # every spiking layer fires (tests/test_nengo_equivalence.py: the same spikes as Nengo)
    assert all(counts.sum() > 0 for counts in dense.spike_counts.values())
    # a Poisson input runs through the graph too
    poisson = simulate(network, x, n_steps=20, scale_firing_rates=500, input="poisson", seed=1)
    assert poisson.output.shape == dense.output[:, :20].shape


def test_synapses_of_every_route_are_counted(rng):
    from snnlib import synaptic_operations
    from snnlib.analysis.measures import fan_out

    tf.keras.utils.set_random_seed(0)
    inp = tf.keras.Input((6, 6, 1))
    h = layers.Conv2D(2, 3, padding="same", activation="relu", name="c0")(inp)
    r = layers.Conv2D(2, 3, padding="same", name="c1")(h)
    s = layers.Add(name="add")([h, r])  # no neurons: spikes of c0 go on to c2
    out = layers.Dense(2, name="out")(layers.Flatten(name="flat")(
        layers.Conv2D(3, 3, strides=2, activation="relu", name="c2")(s)))
    network = convert(tf.keras.Model(inp, out))
    shape = network.stage("c0").output_shape
    # a spike of c0 drives c1's synapses and, through the sum, c2's
    expected = network.stage("c1").op.fan_out(shape) + network.stage("c2").op.fan_out(shape)
    np.testing.assert_array_equal(fan_out(network, "c0"), expected)
    result = __import__("snnlib").simulate(network, rng.random((3, 6, 6, 1)), n_steps=10,
                                           scale_firing_rates=300)
    assert synaptic_operations(network, result)["c0"] > 0


@pytest.mark.parametrize("input_kind", ["constant", "poisson"])
def test_the_graph_engine_is_the_chain_engine_on_a_chain(conv_model, images12, monkeypatch,
                                                         input_kind):
    from snnlib import simulate
    from snnlib.network import SpikingNetwork

    network = convert(conv_model, calibration=images12, normalization="max")
    options = dict(n_steps=20, scale_firing_rates=300, dtype=np.float64, method="dense",
                   input=input_kind, seed=3)
    chain = simulate(network, images12, **options)
    monkeypatch.setattr(SpikingNetwork, "is_chain", property(lambda self: False))
    graph = simulate(network, images12, **options)
    # the graph engine computes a chain exactly as the chain engine does
    np.testing.assert_array_equal(graph.output, chain.output)
    for layer, counts in chain.spike_counts.items():
        np.testing.assert_array_equal(graph.spike_counts[layer], counts)


def test_graph_corner_cases_of_the_review(rng):
    x = rng.random((30, 8, 8, 1)).astype(np.float32)
    tf.keras.utils.set_random_seed(0)
    # a concatenation of two lambdas, then batch normalization and a ReLU (a DenseNet block):
    # the affine stage carries a lambda per channel
    inp = tf.keras.Input((8, 8, 1))
    a = layers.Conv2D(3, 3, padding="same", activation="relu", name="a")(inp)
    c = layers.Concatenate(name="cat")([a, layers.Conv2D(3, 3, padding="same",
                                                         activation="relu", name="b")(a)])
    h = layers.ReLU(name="bn_relu")(layers.BatchNormalization(name="bn")(c))
    dense = tf.keras.Model(inp, layers.Dense(2, name="out")(layers.Flatten()(
        layers.Conv2D(2, 3, name="c")(h))))
    dense.get_layer("bn").set_weights([rng.uniform(0.5, 2, 6), rng.normal(0, 0.2, 6),
                                       rng.normal(0, 0.2, 6), rng.uniform(0.5, 2, 6)])
    # a linear stage read by a ReLU and by a sum: the ReLU's neurons get their own lambda
    inp2 = tf.keras.Input((8, 8, 1))
    lin = layers.Conv2D(3, 3, padding="same", name="lin")(inp2)
    r = layers.ReLU(name="own_relu")(lin)
    shared = tf.keras.Model(inp2, layers.Dense(2, name="out")(layers.Flatten()(layers.Add(
        name="sum")([layers.Conv2D(3, 3, padding="same", name="after")(r), lin]))))
    for model in (dense, shared):
        for granularity in ("layer", "channel"):
            network = convert(model, calibration=x, normalization="max", granularity=granularity)
            assert verify(network, model, x) <= 1e-5 * np.abs(model.predict(x, verbose=0)).max()
            report = network.normalization_report()
            # with the max rule no neuron is above its lambda: every lambda was measured
            assert (report[report["spiking"]]["fraction_above_scale"] == 0).all()
    assert network.stage("own_relu").spiking and network.stage("own_relu").has_weights


def test_the_readout_does_not_depend_on_the_order_of_a_joins_inputs(rng):
    inp = tf.keras.Input((6,))
    h = layers.Dense(16, activation="relu", name="h")(inp)
    a, b = layers.Dense(4, name="a")(h), layers.Dense(4, activation="relu", name="b")(h)
    for order in ([a, b], [b, a]):
        network = convert(tf.keras.Model(inp, layers.Add(name="sum")(order)))
        # both last layers with weights are read out (lambda 1, no neurons), whatever the order
        assert {s.name for s in network.stages if s.readout} == {"a", "b", "sum"}
        assert network.spiking_layers == ["h"]
        assert "ReLU of 'b'" in network.readout_note


def test_a_sum_of_inputs_of_different_shapes_is_refused():
    inp = tf.keras.Input((8, 8, 1))
    a = layers.Conv2D(3, 3, padding="same", activation="relu")(inp)
    model = tf.keras.Model(inp, layers.Flatten()(layers.Add(name="broadcast")(
        [layers.GlobalAveragePooling2D(keepdims=True)(a), a])))
    with pytest.raises(ConversionError, match="'broadcast': its inputs have different shapes"):
        convert(model)
