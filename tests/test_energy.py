"""Energy per inference (snnlib.analysis.energy) against KerasSpiking's ModelEnergy."""
import warnings

import numpy as np
import pytest
import tensorflow as tf

import snnlib
from snnlib.analysis import energy

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    keras_spiking = pytest.importorskip("keras_spiking")

layers = tf.keras.layers


def test_the_device_table_is_keras_spiking_s():
    theirs = keras_spiking.ModelEnergy.devices
    assert set(theirs) == set(energy.DEVICES)
    for name, spec in energy.DEVICES.items():
        assert spec.spiking == theirs[name]["spiking"]
        assert spec.energy_per_synop == theirs[name]["energy_per_synop"]
        assert spec.energy_per_neuron == theirs[name]["energy_per_neuron"]


@pytest.mark.parametrize("device", ["cpu", "gpu", "arm"])
def test_ann_energy_is_model_energy_s(device):
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([
        layers.InputLayer((8, 8, 1)),
        layers.Conv2D(4, 3, activation="relu"),
        layers.Flatten(),
        layers.Dense(16, activation="relu"),
        layers.Dense(10),
    ])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = keras_spiking.ModelEnergy(model).total_energy(device)
    ours = energy.ann_energy(snnlib.convert(model), device)
    assert ours["total"] == pytest.approx(theirs, rel=1e-12)
    # conv 6*6*4 outputs x 9 taps, dense 144 x 16 and 16 x 10; neurons 144 + 16
    assert ours["macs"] == 6 * 6 * 4 * 9 + 144 * 16 + 16 * 10 and ours["neurons"] == 160


@pytest.mark.parametrize("device", ["loihi", "spinnaker", "spinnaker2"])
def test_synaptic_energy_is_model_energy_s_for_the_same_spikes(device, rng):
    # ModelEnergy charges a layer energy_per_synop * connections * mean input rate * dt * T;
    # snnlib charges each spike the synapses it drives: the same for a dense layer. The spikes
    # of an snnlib run's hidden layer, as rates, are ModelEnergy's input to the readout.
    tf.keras.utils.set_random_seed(1)
    inp = layers.Input((12,))
    hidden = layers.Dense(20, activation="relu", name="hidden")(inp)
    model = tf.keras.Model(inp, layers.Dense(5, name="out")(hidden))
    network = snnlib.convert(model)
    n_steps, dt = 40, 0.001
    x = rng.random((6, 12)).astype(np.float32)
    result = snnlib.simulate(network, x, n_steps=n_steps, scale_firing_rates=200,
                             dtype=np.float64, keep_counts=True)
    counts = result.spike_counts["hidden"]
    assert counts.sum() > 0
    # (two layers: with one, ModelEnergy's predict returns an array where it expects a list)
    readout = tf.keras.Sequential([layers.InputLayer((20,)), layers.Dense(5), layers.Dense(1)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs, _ = keras_spiking.ModelEnergy(readout, example_data=counts / (n_steps * dt)
                                              ).layer_energy(readout.layers[0], device,
                                                             timesteps_per_inference=n_steps,
                                                             dt=dt)
    ours = energy.snn_energy(network, result, device)
    assert ours["synop_energy"] == pytest.approx(theirs, rel=1e-9)


def test_every_branch_that_reads_the_input_is_the_input_layer():
    tf.keras.utils.set_random_seed(0)
    inp = layers.Input((6, 6, 1))
    a = layers.Conv2D(4, 3, activation="relu")(inp)
    b = layers.Conv2D(4, 3, activation="relu")(inp)
    joined = layers.Flatten()(layers.Add()([a, b]))
    network = snnlib.convert(tf.keras.Model(inp, layers.Dense(3)(joined)))
    assert energy._input_macs(network) == 2 * 4 * 4 * 4 * 9


def test_snn_energy_counts_spikes_neurons_and_the_input_layer(dense_model, rng):
    network = snnlib.convert(dense_model)
    x = rng.random((4,) + network.input_shape).astype(np.float32)
    result = snnlib.simulate(network, x, n_steps=30, scale_firing_rates=300, dtype=np.float64)
    cost = energy.snn_energy(network, result, "loihi")
    synops = snnlib.synaptic_operations(network, result)["total"]
    assert synops > 0 and cost["synops"] == synops
    assert cost["neuron_updates"] == (16 + 12) * 30
    assert cost["input"] == 36 * 16  # the first layer's MACs, once
    spec = energy.DEVICES["loihi"]
    assert cost["total"] == pytest.approx(spec.energy_per_synop * (synops + 36 * 16)
                                          + spec.energy_per_neuron * 28 * 30)
    table = energy.energy_table(network, {"s=300": result})
    assert list(table["device"]) == ["cpu", "gpu", "arm", "loihi", "spinnaker2", "spinnaker"]
    with pytest.raises(ValueError, match="does not run spikes"):
        energy.snn_energy(network, result, "cpu")
    with pytest.raises(ValueError, match="runs spikes"):
        energy.ann_energy(network, "loihi")
    with pytest.raises(ValueError, match="unknown device"):
        energy.ann_energy(network, "tpu")
