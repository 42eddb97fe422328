"""The reader's workflow in nengo_dl.Simulator: the four settings, both readouts, softmax."""
import numpy as np
import pytest
import tensorflow as tf

from snnlib.nengo.scales import layer_lambdas
from snnlib.nengo.workflow import SETTINGS, logits_model, measure

layers = tf.keras.layers


@pytest.mark.parametrize("last", ["dense", "activation", "softmax_layer", "none"])
def test_logits_model(conv_model, images12, last):
    x = conv_model.layers[-2].output
    if last == "dense":
        out = layers.Dense(3, activation="softmax", name="out")(x)
    elif last == "activation":
        out = layers.Activation("softmax")(layers.Dense(3, name="out")(x))
    elif last == "softmax_layer":
        out = layers.Softmax()(layers.Dense(3, name="out")(x))
    else:
        out = layers.Dense(3, name="out")(x)
    model = tf.keras.Model(conv_model.inputs, out)
    logits = logits_model(model)
    expected = model.predict(images12, verbose=0)
    got = logits.predict(images12, verbose=0)
    if last == "none":
        assert logits is model
    else:
        # the logits: softmax of them is the model's output; the layers are shared
        np.testing.assert_allclose(tf.nn.softmax(got).numpy(), expected, atol=1e-6)
        assert logits.get_layer("conv_a") is model.get_layer("conv_a")


def test_settings_are_the_documented_ones():
    from snnlib.ann.zoo import RECOMMENDED_SIMULATION

    names = [s.name for s in SETTINGS]
    assert names == ["nengo_default", "nengo_example", "dict_nengo_neuron", "dict_papers_neuron",
                     "dict_papers_neuron_4000"]
    default, example, nengo_neuron, papers, fast = SETTINGS
    assert (default.scale, default.synapse, default.initial_voltage) == (1.0, None, None)
    assert (example.scale, example.synapse) == (100.0, 0.01)
    assert nengo_neuron.neuron == "spiking_relu" and nengo_neuron.initial_voltage is None
    assert papers.neuron.name == "if"
    assert papers.neuron.max_spikes_per_step == RECOMMENDED_SIMULATION["max_spikes_per_step"]
    assert papers.initial_voltage == RECOMMENDED_SIMULATION["initial_voltage"]
    assert papers.max_rate is None and fast.max_rate == 4000.0
    assert fast.neuron.max_spikes_per_step is None


def test_measure_runs_every_setting(conv_model, rng):
    x = rng.random((20, 12, 12, 1)).astype(np.float32)
    y = np.argmax(conv_model.predict(x, verbose=0), axis=1)  # Keras is right by definition
    result = measure(conv_model, x, x, y, n_steps=30, minibatch_size=10, progress=False)
    assert result.keras.value == 1.0
    table = result.table()
    assert list(table["setting"]) == [s.label for s in SETTINGS]
    assert set(result.scales) == {"conv_a", "conv_b"}
    lambdas = layer_lambdas(logits_model(conv_model), x)
    assert all(result.scales[layer.name] == pytest.approx(1000.0 / value)
               for layer, (value, _) in lambdas.items())
    for setting in SETTINGS:
        for readout in ("mean", "last"):
            assert result.correct[setting.name, readout].shape == (20,)
            assert result.accuracy_over_time[setting.name, readout].shape == (30,)
    # the book's dict with the papers' neuron reproduces Keras on these inputs
    assert result.accuracy("dict_papers_neuron").value >= 0.9
    summary = result.summary()
    assert summary["settings"]["dict_papers_neuron"]["mean"]["accuracy"] == \
        result.accuracy("dict_papers_neuron").value
    low, high = result.difference_interval("dict_papers_neuron")
    assert low <= result.against_keras("dict_papers_neuron").difference <= high
