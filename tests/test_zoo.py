"""The typical model kinds of issues 11 and 20 convert (with their documented fix), match Keras
in rate mode, and stay close to the ANN when they spike with the recommended settings.

Recommended settings (:data:`snnlib.ann.zoo.RECOMMENDED_SIMULATION`): the papers'
integrate-and-fire neuron (signed current), percentile 99.9 normalization calibrated on the
first 1,000 training images, ``scale_firing_rates=1000``, one spike per step at most, initial
voltage 0.5, no synapse, the output averaged over the run. A model's fix
(:data:`snnlib.ann.zoo.FIXES`) adds to them: the spiking max pool for the max-pooling model,
channel-wise normalization at percentile 99.99 for the MobileNet-like one. Accuracies are on the
whole 1,000-image test split of ``load_mnist()``, with 95 % Wilson intervals in the messages.

Budget (this file runs in CI at every push): each model is trained for **1 epoch** on the
4,000 training images (2-8 s each here) and simulated for 64 steps on the 1,000 test images
(5-30 s each), with the recommended neuron only (``benchmarks/models.py`` also runs NengoDL's
rectified neuron and more epochs).

Margins, measured before they were set (2026-11-28, this 2-core machine; one training run per
model, 1 epoch, seed 0), as ANN minus SNN accuracy at T = 64 in points:
nengo_example +0.2, lenet5 +0.1, conv_batchnorm +0.1, mlp_dropout +0.3, vgg -0.6 (McNemar
p >= 0.1 for each: no measurable difference at n = 1,000); since issue 20 (2026-12-07)
maxpool_softmax with the spiking max pool +0.0 (it lost 6.0 with the max-to-average swap, its
fix until then) and mobilenet with its fix -0.3. MARGIN leaves room for another CPU's training
(the ANN moves by a point or so) without hiding a conversion error (the ReLU output bug of
issue 11 cost 13 points in verify; NengoDL's rectified neuron costs 3 to 42 points on three of
these models, see the section "Typical models" of benchmarks/RESULTS.md, measured with 3
epochs).
"""
import numpy as np
import pytest

import snnlib
from snnlib.ann import zoo
from snnlib.convert import check, convert, verify

#: Largest accepted ANN - SNN gap at T = 64 (fraction), where the conversion is exact.
MARGIN = 0.015


@pytest.fixture(scope="module")
def data():
    return snnlib.load_mnist()


def test_check_lists_the_max_pooling_and_the_softmax_at_once():
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    report = check(zoo.maxpool_softmax())
    text = str(report)
    # both max-pooling layers are problems, each with its fix, in one report ...
    assert not report.ok and [p.name for p in report.problems] == ["pool0", "pool1"]
    assert "max_to_avg_pool=True" in text and "AveragePooling2D and retrain" in text
    # ... and the softmax is listed too, with what the conversion does to it
    assert "softmax of 'output' is dropped" in text and "argmax" in text
    # with the fix, nothing is left but the notes
    fixed = check(zoo.maxpool_softmax(), **zoo.FIXES["maxpool_softmax"])
    assert fixed.ok and len(fixed.notes) == 3


@pytest.mark.parametrize("name", list(zoo.MODELS) + list(zoo.GRAPH_MODELS)
                         + list(zoo.LAYER_MODELS))
def test_model_converts_verifies_and_spikes_like_the_ann(name, data):
    (x_train, y_train), (x_test, y_test) = data
    model = zoo.build_and_train(name, x_train, y_train, epochs=1)
    fix = zoo.FIXES.get(name, {})
    # the model converts as it is, or with its documented fix (which check() names; a
    # normalization setting is not check()'s business)
    layer_options = {key: value for key, value in fix.items() if key.endswith("_pool")}
    assert check(model, **layer_options).ok, str(check(model, **layer_options))
    result = zoo.evaluate(model, x_train, x_test, y_test, convert_options=fix)
    # verify passed inside evaluate: rate mode reproduces Keras (or its logits) to rounding
    assert result.verify < 1e-4
    gap = result.gap(64)
    message = (f"{name}: ANN {result.ann}, rate mode {result.rate}, SNN T=32 "
               f"{result.snn[32]}, T=64 {result.snn[64]}; paired: {result.compare(64)}")
    # an exact conversion (max pooling too, as a spiking max pool): rate mode is the ANN, and
    # the SNN at T = 64 is within MARGIN (for mlp_dropout this includes its ReLU output layer,
    # read out with lambda = 1: verify passed after normalization, where the issue found it off
    # by 13.3)
    assert result.rate.value == result.ann.value, message
    assert gap <= MARGIN, message


def test_mobilenet_converts_exactly(data):
    # depthwise-separable blocks with batch normalization folded into the grouped kernels (its
    # accuracy, with its fix of channel-wise normalization, is tested above)
    (x_train, y_train), (x_test, _) = data
    model = zoo.build_and_train("mobilenet", x_train, y_train, epochs=1)
    report = check(model)
    assert report.ok and sum("folded" in note for note in report.notes) == 5
    network = convert(model, calibration=x_train[:500], **zoo.RECOMMENDED_NORMALIZATION)
    reference = model.predict(x_test[:200], verbose=0)
    assert verify(network, model, x_test[:200]) <= 1e-5 * np.abs(reference).max()


def test_builders_make_the_documented_layers():
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    kinds = {name: [type(layer).__name__ for layer in build().layers]
             for name, build in zoo.MODELS.items()}
    # each model kind has the layer types the issue names
    assert kinds["lenet5"].count("AveragePooling2D") == 2
    assert "BatchNormalization" in kinds["conv_batchnorm"] and "Activation" in \
        kinds["conv_batchnorm"]
    assert "MaxPooling2D" in kinds["maxpool_softmax"] and "Dropout" in kinds["mlp_dropout"]
    assert kinds["vgg"].count("Conv2D") == 6
    with pytest.raises(ValueError, match="6 convolutions"):
        zoo.vgg((8, 8))
    with pytest.raises(ValueError, match="unknown model"):
        zoo.build_and_train("resnet", np.zeros((1, 28, 28, 1)), np.zeros(1, int))
