"""Shared fixtures: fixed seeds and small Keras models with random (non-zero) biases."""
import os
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
warnings.filterwarnings("ignore", message="This version of NengoDL has not been tested")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

layers = tf.keras.layers


def randomize_biases(model, seed, low=-0.1, high=0.3):
    """Give every layer with a bias random biases (Keras starts them at zero).

    Zero biases would hide bias handling errors; slightly positive ones keep neurons active.
    """
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if getattr(layer, "use_bias", False):
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, rng.uniform(low, high, bias.shape).astype(np.float32)])
    return model


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def dense_model():
    """Sequential MLP: 6x6x1 -> flatten -> 16 relu -> 12 relu -> 4 linear."""
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([
        layers.InputLayer((6, 6, 1), name="input"),
        layers.Flatten(name="flatten"),
        layers.Dense(16, activation="relu", name="hidden0"),
        layers.Dense(12, activation=tf.nn.relu, name="hidden1"),
        layers.Dense(4, name="out"),
    ], name="mlp")
    return randomize_biases(model, 1)


@pytest.fixture
def conv_model():
    """Functional convnet with stride, "same" and "valid" padding and average pooling."""
    tf.keras.utils.set_random_seed(0)
    inp = tf.keras.Input((12, 12, 1), name="image")
    x = layers.Conv2D(4, 3, strides=2, padding="same", activation=tf.nn.relu, name="conv_a")(inp)
    x = layers.AveragePooling2D(2, name="pool")(x)
    x = layers.Conv2D(6, 2, padding="valid", activation="relu", name="conv_b")(x)
    x = layers.Flatten(name="flat")(x)
    out = layers.Dense(3, name="readout")(x)
    return randomize_biases(tf.keras.Model(inp, out, name="small_conv"), 2)


@pytest.fixture
def convnet():
    """The book's convnet (random weights, seed 0) with small random biases."""
    from snnlib.ann.models import build_convnet

    tf.keras.utils.set_random_seed(0)
    return randomize_biases(build_convnet(), 3, low=-0.05, high=0.1)


@pytest.fixture
def images12(rng):
    return rng.random((4, 12, 12, 1)).astype(np.float32)


@pytest.fixture
def images6(rng):
    return rng.random((4, 6, 6, 1)).astype(np.float32)


@pytest.fixture(scope="session")
def mnist():
    from snnlib.ann.data import load_mnist

    return load_mnist()
