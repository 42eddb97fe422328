"""Conversion layer by layer, the rate-mode self-check, and clear errors for what is unsupported."""
import numpy as np
import pytest
import tensorflow as tf

from snnlib.convert import ConversionError, convert, verify

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
    (layers.UpSampling2D(name="up"), ["up", "UpSampling2D", "Supported"]),
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
    # an unknown layer type fails by name and type
    with pytest.raises(ConversionError, match="'twice' \\(Doubler\\)"):
        convert(model)


def test_channels_first_is_rejected():
    model = chain((1, 8, 8), layers.Conv2D(2, 3, data_format="channels_first", name="cf"))
    # channels_first is named as unsupported
    with pytest.raises(ConversionError, match="channels_first"):
        convert(model)


def test_batchnorm_after_relu_is_rejected():
    model = chain((6,), layers.Dense(3, activation="relu", name="d"),
                  layers.BatchNormalization(name="bn"))
    # folding needs a linear layer before the batch normalization
    with pytest.raises(ConversionError, match="'bn'.*folded"):
        convert(model)


def test_two_inputs_and_branches_are_rejected():
    a, b = tf.keras.Input((4,)), tf.keras.Input((4,))
    two_inputs = tf.keras.Model([a, b], layers.Add()([a, b]))
    # several inputs: not a chain
    with pytest.raises(ConversionError, match="2 inputs"):
        convert(two_inputs)
    inp = tf.keras.Input((4,))
    h = layers.Dense(3, name="d")(inp)
    branchy = tf.keras.Model(inp, layers.Add(name="merge")([h, layers.Dense(3)(h)]))
    # a merge of two branches names the merging layer
    with pytest.raises(ConversionError, match="'merge'.*simple chains"):
        convert(branchy)


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
    from snnlib.convert import CONVERTERS, supported_layers

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
    assert "@snnlib.convert.register(Doubler)" in str(info.value)


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
from snnlib.ops import Op


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
model = tf.keras.Model(inp, tf.keras.layers.Dense(3, name="out")(
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
