"""Corrections for a short run (snnlib.sim.calibration): Li et al.'s bias and potential
calibration and Deng & Gu's threshold shift, each on a case with a known answer."""
import numpy as np
import pytest

import snnlib
from snnlib.ann import zoo
from snnlib.normalize.rules import apply_scales
from snnlib.sim import calibration as cal

SIM = {key: value for key, value in zoo.RECOMMENDED_SIMULATION.items()
       if key != "initial_voltage"}
SIM64 = dict(SIM, dtype=np.float64)


@pytest.fixture
def network(conv_model, rng):
    calibration = rng.random((64, 12, 12, 1)).astype(np.float32)
    return snnlib.convert(conv_model, calibration=calibration, normalization="percentile")


@pytest.fixture
def images(rng):
    return rng.random((48, 12, 12, 1))


def test_layer_errors_are_spikes_minus_the_capped_rates(network, images):
    errors = cal.layer_errors(network, images, 6, initial_voltage=0.5, **SIM64)
    result = snnlib.simulate(network, images, n_steps=6, initial_voltage=0.5,
                             keep_counts=True, **SIM64)
    _, rates = network.forward(images, dtype=np.float64, return_all=True)
    # the first spiking layer reads the images: its target is its own rate, capped at 1
    first = result.spike_counts["conv_a"] / 6 - np.minimum(rates["conv_a"], 1.0)
    np.testing.assert_allclose(errors["conv_a"], first, atol=1e-12)
    relu = cal.layer_errors(network, images, 6, initial_voltage=0.5, target="relu", **SIM64)
    np.testing.assert_allclose(relu["conv_a"], result.spike_counts["conv_a"] / 6
                               - rates["conv_a"], atol=1e-12)
    with pytest.raises(ValueError, match="target"):
        cal.layer_errors(network, images, 6, target="quantized", **SIM64)
    # at 500 Hz a spike is 2 units of lambda high and the ceiling is 2
    slow = dict(SIM64, scale_firing_rates=500.0)
    errors = cal.layer_errors(network, images, 6, initial_voltage=0.5, **slow)
    counts = snnlib.simulate(network, images, n_steps=6, initial_voltage=0.5, keep_counts=True,
                             **slow).spike_counts["conv_a"]
    np.testing.assert_allclose(errors["conv_a"], 2 * counts / 6 - np.minimum(rates["conv_a"], 2),
                               atol=1e-12)
    with pytest.raises(ValueError, match="built for the neurons"):
        cal.layer_errors(network, images, 6, **dict(SIM64, neuron="lif", max_spikes_per_step=None))


def test_bias_correction_removes_each_channels_mean_error(network, images):
    before = cal.layer_errors(network, images, 4, initial_voltage=0.5, **SIM64)
    fixed = cal.calibrate_bias(network, images, 4, **SIM64)
    assert fixed.calibration == {"method": "bias", "n_steps": 4, "examples": 48,
                                 "scale_firing_rates": 1000.0, "dt": 0.001}
    assert network.calibration is None  # a copy
    # the first layer is corrected first, by its own measured mean error per channel
    expected = network.stages[0].bias - before["conv_a"].reshape(-1, 4).mean(axis=0)
    np.testing.assert_allclose(fixed.stages[0].bias, expected, atol=1e-12)
    # the second layer is measured with the first corrected, against the ANN as converted
    first_only = cal.threshold_shift(network, 4, scale_firing_rates=1000.0)
    first_only.calibration = None
    first_only.stages[0].bias = fixed.stages[0].bias
    for stage, original in zip(first_only.stages[1:], network.stages[1:], strict=True):
        stage.bias = original.bias
    second = cal.layer_errors(first_only, images, 4, initial_voltage=0.5, reference=network,
                              **SIM64)["conv_b"]
    conv_b = [i for i, stage in enumerate(network.stages) if stage.name == "conv_b"][0]
    np.testing.assert_allclose(fixed.stages[conv_b].bias, network.stages[conv_b].bias
                               - second.reshape(-1, second.shape[-1]).mean(axis=0), atol=1e-12)
    after = cal.layer_errors(fixed, images, 4, initial_voltage=0.5, reference=network, **SIM64)
    for name in ("conv_a", "conv_b"):
        channels = before[name].shape[-1]
        mean_before = np.abs(before[name].reshape(-1, channels).mean(axis=0)).mean()
        mean_after = np.abs(after[name].reshape(-1, channels).mean(axis=0)).mean()
        assert mean_after < mean_before, name
    with pytest.raises(ValueError, match="already calibrated"):
        cal.calibrate_bias(fixed, images, 4, **SIM64)
    with pytest.raises(ValueError, match="calibrated.*undo"):
        apply_scales(fixed, {stage.name: stage.scale for stage in fixed.stages})


def test_potential_correction_gives_each_neuron_its_missing_charge(network, images):
    before = cal.layer_errors(network, images, 4, initial_voltage=0.5, **SIM64)
    starts = cal.calibrate_potential(network, images, 4, **SIM64)
    assert set(starts) == {"conv_a", "conv_b"}
    expected = np.clip(0.5 - 4 * before["conv_a"].mean(axis=0), -np.inf, cal.MAX_START)
    np.testing.assert_allclose(starts["conv_a"], expected, atol=1e-12)
    assert starts["conv_a"].max() < 1
    after = cal.layer_errors(network, images, 4, initial_voltage=starts, **SIM64)
    for name in starts:
        assert np.abs(after[name].mean(axis=0)).mean() < np.abs(before[name].mean(axis=0)).mean()


def test_threshold_shift_equals_a_half_threshold_start_after_t_steps(network, images):
    """Deng & Gu's theta / (2T) per step and a start at theta / 2 give the same charge after
    T steps: the first layer's counts agree at T; at earlier steps the shifted neurons lag."""
    n_steps = 8
    shifted = cal.threshold_shift(network, n_steps, scale_firing_rates=1000.0)
    assert shifted.calibration == {"method": "threshold_shift", "n_steps": n_steps,
                                   "scale_firing_rates": 1000.0, "dt": 0.001}
    np.testing.assert_allclose(shifted.stages[0].bias - network.stages[0].bias, 1 / 16)
    options = dict(SIM64, record_spikes="conv_a")
    half = snnlib.simulate(network, images, n_steps=n_steps, initial_voltage=0.5, **options)
    shift = snnlib.simulate(shifted, images, n_steps=n_steps, initial_voltage=0.0, **options)
    # no neuron saturates in the first layer here, so the charge decides the count
    rates = network.forward(images, dtype=np.float64, return_all=True)[1]["conv_a"]
    free = rates < 1 - 1 / (2 * n_steps)
    counts_half = half.spikes["conv_a"].sum(axis=1)
    counts_shift = shift.spikes["conv_a"].sum(axis=1)
    np.testing.assert_array_equal(counts_half[free], counts_shift[free])
    early_half = half.spikes["conv_a"][:, :n_steps // 2].sum(axis=1)
    early_shift = shift.spikes["conv_a"][:, :n_steps // 2].sum(axis=1)
    assert np.all(early_shift <= early_half) and np.any(early_shift < early_half)
    # the shift is per step: a lower firing-rate scale (taller spikes) needs a larger bias
    tall = cal.threshold_shift(network, n_steps, scale_firing_rates=500.0)
    np.testing.assert_allclose(tall.stages[0].bias - network.stages[0].bias, 1 / 8)


def test_bad_arguments(network, images):
    with pytest.raises(ValueError, match="n_steps"):
        cal.calibrate_bias(network, images, 0, **SIM64)
    with pytest.raises(TypeError, match="SpikingNetwork"):
        cal.calibrate_potential("network", images, 4, **SIM64)
    with pytest.raises(ValueError, match="quantized"):
        cal.calibrate_bias(snnlib.quantize(network, 8), images, 4, **SIM64)
    with pytest.raises(ValueError, match="scale_firing_rates"):
        cal.threshold_shift(network, 4, scale_firing_rates=0.0)
