"""The papers' neuron as a Nengo neuron type: step for step equal to snnlib's ``neuron="if"``,
in ``nengo.Simulator`` and in ``nengo_dl.Simulator``, swapped in by ``nengo_dl.Converter``."""
import warnings

import numpy as np
import pytest
import tensorflow as tf

from snnlib.convert import convert
from snnlib.nengo.bridge import (
    build_nengo_converter,
    nengo_initial_voltages,
    nengo_object,
    run_nengo,
)
from snnlib.sim.neurons import IntegrateAndFire
from snnlib.sim.simulator import simulate

nengo = pytest.importorskip("nengo")
nengo_neurons = pytest.importorskip("snnlib.nengo.neurons")
SpikingIntegrateAndFire = nengo_neurons.SpikingIntegrateAndFire

layers = tf.keras.layers
N_STEPS = 40
SCALE = 3000.0  # high enough that neurons fire often, several times in some steps, and get
# input spikes of both signs
OPTIONS = [dict(), dict(reset="zero"), dict(max_spikes_per_step=1),
           dict(reset="zero", max_spikes_per_step=1)]


@pytest.fixture
def signed_model():
    """A small convnet whose kernels and biases have both signs, so that neurons of the second
    and third layer receive spikes of both signs (where the two neurons differ)."""
    tf.keras.utils.set_random_seed(4)
    inp = tf.keras.Input((10, 10, 1), name="image")
    x = layers.Conv2D(6, 3, activation="relu", name="conv_a")(inp)
    x = layers.Conv2D(8, 3, strides=2, activation=tf.nn.relu, name="conv_b")(x)
    x = layers.Flatten(name="flat")(x)
    x = layers.Dense(12, activation="relu", name="hidden")(x)
    model = tf.keras.Model(inp, layers.Dense(3, name="readout")(x))
    rng = np.random.default_rng(5)
    for layer in model.layers:
        if getattr(layer, "use_bias", False):
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, rng.uniform(-0.2, 0.3, bias.shape).astype(np.float32)])
    return model


@pytest.fixture
def images10(rng):
    return rng.random((4, 10, 10, 1)).astype(np.float32)


def nengo_run(model, x, neuron, initial_voltage, simulator="nengo", scale=SCALE):
    converter = build_nengo_converter(model, scale_firing_rates=scale, neuron=neuron,
                                      initial_voltage=initial_voltage)
    return run_nengo(converter, x, n_steps=N_STEPS, simulator=simulator), converter


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(map(str, o.values())) or
                         "defaults")
@pytest.mark.parametrize("initial_voltage", [0.0, 0.5])
def test_step_for_step_equal_to_snnlib(signed_model, images10, options, initial_voltage):
    neuron = IntegrateAndFire(**options)
    reference, converter = nengo_run(signed_model, images10, neuron, initial_voltage)
    # the converter really built the papers' neuron, with these options, in every layer
    for name in ("conv_a", "conv_b", "hidden"):
        built = nengo_object(converter, signed_model.get_layer(name)).ensemble.neuron_type
        assert isinstance(built, SpikingIntegrateAndFire)
        assert (built.reset, built.max_spikes_per_step) == (neuron.reset,
                                                            neuron.max_spikes_per_step)
    ours = simulate(convert(signed_model), images10, n_steps=N_STEPS, scale_firing_rates=SCALE,
                    neuron=neuron, initial_voltage=initial_voltage, dtype=np.float64).output
    assert np.abs(reference).max() > 0.5
    # nengo.Simulator running the Nengo neuron type = snnlib's neuron="if", to float rounding
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-9 * np.abs(reference).max())


def test_the_options_and_the_signed_current_matter(signed_model, images10):
    """The test above could not tell the variants apart if they gave the same output."""
    outputs = [nengo_run(signed_model, images10, IntegrateAndFire(**o), 0.0)[0] for o in OPTIONS]
    rectified, _ = nengo_run(signed_model, images10, "spiking_relu", 0.0)
    for i in range(len(outputs)):
        assert np.abs(outputs[i] - rectified).max() > 0.1
        for j in range(i):
            assert np.abs(outputs[i] - outputs[j]).max() > 0.1


def test_random_start_equal_to_snnlib(signed_model, images10):
    neuron = IntegrateAndFire()
    network = convert(signed_model)
    converter = build_nengo_converter(signed_model, scale_firing_rates=SCALE, neuron=neuron,
                                      initial_voltage="uniform")
    reference = run_nengo(converter, images10, n_steps=N_STEPS, seed=3)
    voltages = nengo_initial_voltages(converter, network, seed=3)
    assert all(0 <= v.min() and v.max() < 1 and v.std() > 0.1 for v in voltages.values())
    ours = simulate(network, images10, n_steps=N_STEPS, scale_firing_rates=SCALE, neuron=neuron,
                    initial_voltage=voltages, dtype=np.float64).output
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-9 * np.abs(reference).max())


@pytest.mark.parametrize("options", OPTIONS[::3], ids=["defaults", "zero,1"])
def test_nengo_dl_tensorflow_step_equals_nengo(signed_model, images10, options):
    neuron = IntegrateAndFire(**options)
    with warnings.catch_warnings():
        # the neuron has its own TensorFlow step: NengoDL must not fall back to Python
        warnings.filterwarnings("error", message=".*does not have a native TensorFlow")
        dl, _ = nengo_run(signed_model, images10, neuron, 0.5, simulator="nengo_dl")
    reference, _ = nengo_run(signed_model, images10, neuron, 0.5)
    assert np.abs(reference).max() > 0.5
    # float32 TensorFlow against float64 NumPy: equal up to a rare spike moved by rounding
    close = np.isclose(dl, reference, rtol=1e-4, atol=1e-4 * np.abs(reference).max())
    assert close.mean() > 0.99


def test_registered_with_nengo_dl():
    from nengo_dl.neuron_builders import SimNeuronsBuilder

    assert SimNeuronsBuilder.TF_NEURON_IMPL[SpikingIntegrateAndFire] is \
        nengo_neurons.SpikingIntegrateAndFireBuilder


def test_one_neuron_integrates_the_signed_current():
    """A negative current takes the membrane below zero; Nengo's spiking ReLU ignores it."""
    dt = 0.001
    currents = [-300.0] * 3 + [700.0] * 3  # -0.9 then +2.1 units of charge: net 1.2
    counts = {}
    for neuron in (SpikingIntegrateAndFire(), nengo.SpikingRectifiedLinear()):
        voltage, output, spikes, lowest = np.zeros(1), np.zeros(1), 0.0, 0.0
        for current in currents:
            neuron.step(dt, np.array([current]), output, voltage=voltage)
            spikes += output[0] * dt
            lowest = min(lowest, voltage[0])
        counts[type(neuron).__name__] = (spikes, lowest)
    assert counts["SpikingIntegrateAndFire"][0] == pytest.approx(1.0)
    assert counts["SpikingIntegrateAndFire"][1] == pytest.approx(-0.9)
    assert counts["SpikingRectifiedLinear"] == (pytest.approx(2.0), 0.0)


def test_rates_are_the_relu():
    neuron = SpikingIntegrateAndFire()
    x = np.linspace(-1, 1, 11)
    rates = neuron.rates(x, np.array([200.0]), np.array([10.0]))  # one neuron, 11 inputs
    np.testing.assert_allclose(rates[:, 0], np.maximum(200 * x + 10, 0))


@pytest.mark.parametrize("kwargs", [dict(reset="soft"), dict(max_spikes_per_step=2),
                                    dict(amplitude=0)])
def test_bad_options_are_refused(kwargs):
    with pytest.raises(Exception, match="reset|max_spikes_per_step|amplitude"):
        SpikingIntegrateAndFire(**kwargs)


def test_converter_scales_it_like_nengos_neuron(signed_model):
    """nengo_dl.Converter divides the amplitude by the scale and copies the neuron per layer."""
    import nengo_dl

    neuron = SpikingIntegrateAndFire(max_spikes_per_step=1)
    scales = {signed_model.get_layer("conv_a"): 50.0, signed_model.get_layer("hidden"): 800.0}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="swap_activations contained")
        converter = nengo_dl.Converter(
            signed_model, swap_activations={tf.nn.relu: neuron, tf.keras.activations.relu: neuron},
            scale_firing_rates=scales)
    types = {name: nengo_object(converter, signed_model.get_layer(name)).ensemble.neuron_type
             for name in ("conv_a", "conv_b", "hidden")}
    assert all(isinstance(t, SpikingIntegrateAndFire) for t in types.values())
    assert types["conv_a"].amplitude == pytest.approx(1 / 50)
    assert types["conv_b"].amplitude == 1.0  # not in the dict: scale 1
    assert types["hidden"].amplitude == pytest.approx(1 / 800)
    assert neuron.amplitude == 1.0  # the user's instance is not changed
    assert types["hidden"].max_spikes_per_step == 1


def test_top_level_name():
    import snnlib

    assert snnlib.SpikingIntegrateAndFire is SpikingIntegrateAndFire
    with pytest.raises(AttributeError, match="no attribute"):
        snnlib.NoSuchThing  # noqa: B018
