"""Tests of snnlib.models: the convnet, deterministic weight files, and the saved weights."""
import json

import numpy as np
import pytest
import tensorflow as tf

from snnlib.data import load_mnist
from snnlib.models import (
    PRETRAINED_INFO,
    PRETRAINED_WEIGHTS,
    accuracy,
    build_convnet,
    load_pretrained_convnet,
    load_weights,
    save_weights,
    train_convnet,
)


def test_convnet_architecture():
    model = build_convnet()
    # the layers of NengoDL's Keras-to-SNN example, with the names the book refers to
    assert [layer.name for layer in model.layers] == ["input", "conv0", "conv1", "flatten", "dense"]
    assert model.get_layer("conv1").strides == (2, 2)
    assert model.output_shape == (None, 10)
    assert model.get_layer("dense").activation is tf.keras.activations.linear


def test_saved_weights_reproduce_reported_accuracy():
    # the weights saved by chapter 1 give the test accuracy chapter 1 reported
    info = json.loads(PRETRAINED_INFO.read_text())
    model = load_pretrained_convnet()
    _, (x_test, y_test) = load_mnist()
    assert accuracy(model, x_test, y_test) == pytest.approx(info["test_accuracy"], abs=1e-9)
    # and that accuracy is a trained network's, not chance
    assert info["test_accuracy"] > 0.9


def test_save_weights_is_byte_deterministic(tmp_path):
    tf.keras.utils.set_random_seed(3)
    model = build_convnet()
    save_weights(model, tmp_path / "a.npz")
    save_weights(model, tmp_path / "b.npz", info={"note": "x"})
    # the same weights give the same bytes (no time stamps), so git sees no change on a rerun
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    assert json.loads((tmp_path / "b.json").read_text()) == {"note": "x"}


def test_load_weights_round_trip(tmp_path):
    tf.keras.utils.set_random_seed(4)
    model = build_convnet()
    save_weights(model, tmp_path / "w.npz")
    tf.keras.utils.set_random_seed(5)
    other = load_weights(build_convnet(), tmp_path / "w.npz")
    # every weight comes back exactly
    for a, b in zip(model.get_weights(), other.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_load_weights_names_mismatched_weight(tmp_path):
    save_weights(build_convnet(n_classes=5), tmp_path / "w.npz")
    # loading into another architecture names the weight and both shapes
    with pytest.raises(ValueError, match=r"dense/kernel:0.*\(9216, 5\).*\(9216, 10\)"):
        load_weights(build_convnet(), tmp_path / "w.npz")


def test_pretrained_file_is_where_the_book_says():
    assert PRETRAINED_WEIGHTS.name == "convnet_mnist.npz" and PRETRAINED_WEIGHTS.exists()


def test_train_convnet_is_deterministic_and_learns():
    (x_train, y_train), _ = load_mnist()
    x, y = x_train[:300], y_train[:300]
    first, history = train_convnet(x, y, epochs=2, seed=7)
    second, _ = train_convnet(x, y, epochs=2, seed=7)
    # the same seed gives the same weights, bit for bit (deterministic ops, fixed batch order)
    for a, b in zip(first.get_weights(), second.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    # and training does something: the training accuracy rises above chance (10 %)
    assert len(history["accuracy"]) == 2 and history["accuracy"][-1] > 0.3
