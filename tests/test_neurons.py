"""Single IF neurons, rate quantization, and firing-rate scaling of ReLU and LIF rate curves."""
import matplotlib

matplotlib.use("Agg")  # tests draw figures without a display

import matplotlib.pyplot as plt  # noqa: E402
import nengo  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from snnlib.convert import convert  # noqa: E402
from snnlib.neurons import (  # noqa: E402
    integrate_and_fire, measured_rate, plot_rate_quantization, plot_scaled_rate_curves,
    plot_voltage_trace, rate_error_bound, scaled_forward, scaled_rates,
)


def test_matches_nengo_spiking_relu_step_by_step(rng):
    currents = rng.uniform(-200, 3000, size=40)  # negative, slow and several-spikes-per-step
    v0 = rng.uniform(0, 1, size=40)
    voltage, spikes = integrate_and_fire(currents, 60, dt=0.001, initial_voltage=v0)
    neuron, v = nengo.SpikingRectifiedLinear(), v0.copy()
    output = np.zeros(40)
    for t in range(60):
        neuron.step(0.001, currents, output, v)
        # same spikes (nengo outputs amplitude / dt per spike) and same voltage as nengo
        np.testing.assert_allclose(output * 0.001, spikes[t], atol=1e-9)
        np.testing.assert_allclose(voltage[t], v, atol=1e-12)


def test_subtract_count_is_floor_of_charge():
    currents = np.array([0.0, 37.0, 250.0, 999.0, 2500.0])  # Hz
    _, spikes = integrate_and_fire(currents, 100, dt=0.001)
    # from rest, reset by subtraction fires floor(J * T) spikes (T = 0.1 s)
    np.testing.assert_array_equal(spikes.sum(axis=0), [0, 3, 25, 99, 250])
    # negative currents do not charge the neuron (the ReLU's rectification)
    assert integrate_and_fire([-50.0], 10)[1].sum() == 0


@pytest.mark.parametrize("n_steps", [7, 30, 200])
def test_subtract_error_within_bound(n_steps):
    true = np.linspace(0, 1500, 3001)
    error = np.abs(measured_rate(true, n_steps) - true)
    # reset by subtraction: the rate read over T steps is within one spike / (T dt) of the truth
    assert error.max() <= rate_error_bound(n_steps) * (1 + 1e-9)
    # and the bound is nearly reached (it is tight)
    assert error.max() >= 0.9 * rate_error_bound(n_steps)


def test_reset_to_zero_is_biased_low_and_does_not_improve():
    true = np.linspace(0, 1000, 2001)
    short, long = (measured_rate(true, n, reset="zero") for n in (30, 3000))
    # reset to zero never fires faster than the true rate (it loses charge)
    assert np.all(long <= true + 1e-9)
    # its error does not shrink with 100 times longer reading: it is a bias, not noise
    assert np.abs(long - true).max() > 0.5 * np.abs(short - true).max()
    assert np.abs(long - true).max() > 10 * rate_error_bound(30)


def test_bad_arguments():
    # unknown reset, non-positive step counts and time steps fail by name
    with pytest.raises(ValueError, match="reset"):
        integrate_and_fire(1.0, 5, reset="hold")
    with pytest.raises(ValueError, match="n_steps"):
        integrate_and_fire(1.0, 0)
    with pytest.raises(ValueError, match="dt"):
        integrate_and_fire(1.0, 5, dt=0)
    with pytest.raises(ValueError, match="scale"):
        scaled_rates(None, [1.0], 0)


def test_relu_is_homogeneous_lif_is_not():
    x = np.logspace(-2, 1, 50)
    for s in (1, 10, 1000):
        # ReLU (nengo's and the plain one): max(0, s x) / s = x, for every scale
        np.testing.assert_allclose(scaled_rates(nengo.RectifiedLinear(), x, s), x, rtol=1e-12)
        np.testing.assert_allclose(scaled_rates(None, -x, s), 0.0)
    lif = {s: scaled_rates(nengo.LIF(), x, s) for s in (1, 10, 1000)}
    # LIF: s changes the function (threshold at x = 1/s, saturation at 1 / (tau_ref s))
    assert np.all(lif[1][x < 1] == 0) and lif[10][x > 0.2].min() > 0
    assert lif[1000].max() <= 1 / (0.002 * 1000) + 1e-9
    # and no scale makes it the identity: off by more than a factor 2 somewhere in [0.1, 10]
    inside = (x >= 0.1) & (x <= 10)
    for values in lif.values():
        assert np.max(np.abs(values[inside] - x[inside]) / x[inside]) > 1.0


def test_scaled_forward_relu_equals_rate_mode(dense_model, images6):
    network = convert(dense_model)
    expected = network.forward(images6, dtype=np.float64)
    for scale in (1.0, 3.0, 1000.0, {"hidden0": 7.0}):
        # scaling input by s and output by 1/s leaves a ReLU network unchanged
        np.testing.assert_allclose(scaled_forward(network, images6, scale_firing_rates=scale),
                                   expected, rtol=1e-10, atol=1e-12)


def test_scaled_forward_lif_depends_on_scale(dense_model, images6):
    network = convert(dense_model)
    outs = [scaled_forward(network, images6, scale_firing_rates=s, neuron_type=nengo.LIF())
            for s in (10.0, 1000.0)]
    # with LIF neurons the scale changes the network's output
    assert np.abs(outs[0] - outs[1]).max() > 0.1 * np.abs(outs[1]).max()
    # unknown layer names in a scale dict fail as in simulate
    with pytest.raises(ValueError, match="not spiking layers"):
        scaled_forward(network, images6, scale_firing_rates={"nope": 2.0})


def test_figures_have_labelled_axes():
    voltage, spikes = integrate_and_fire([70.0, 230.0], 50)
    figs = [
        plot_voltage_trace(voltage, spikes, [70.0, 230.0]),
        plot_rate_quantization(np.linspace(0, 100, 11), {10: np.zeros(11)},
                               {"subtract": {10: 100.0, 100: 10.0}}),
        plot_scaled_rate_curves(np.logspace(-1, 1, 5), {"LIF s=10": np.ones(5)}),
    ]
    for fig in figs:
        for ax in fig.axes:
            # every panel names its axes (units in the labels)
            assert ax.get_ylabel()
        assert fig.axes[-1].get_xlabel()
        plt.close(fig)
