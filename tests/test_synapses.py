"""The synapse: the lowpass filter, its step response, and what simulate does with it."""
import numpy as np
import pytest

from snnlib.convert import convert
from snnlib.sim.simulator import simulate
from snnlib.sim.synapses import (
    Lowpass,
    lowpass,
    rise_steps,
    step_response,
    synapse_label,
)


def test_lowpass_matches_nengo(rng):
    import nengo

    spikes = (rng.random((200, 3)) < 0.2) * 100.0
    for tau in (0.002, 0.02):
        ours = lowpass(spikes, tau, dt=0.001)
        reference = nengo.Lowpass(tau).filt(spikes, dt=0.001, y0=0)
        # the same discretization as nengo.Lowpass (zero-order hold), from a zero start
        np.testing.assert_allclose(ours, reference, rtol=1e-12, atol=1e-12)


def test_lowpass_none_and_axis(rng):
    x = rng.random((4, 50))
    # tau=None leaves the signal unchanged
    np.testing.assert_array_equal(lowpass(x, None), x)
    # filtering along axis 1 equals filtering the transposed signal along axis 0
    np.testing.assert_allclose(lowpass(x, 0.005, axis=1), lowpass(x.T, 0.005).T)


def test_step_response_and_time_constant():
    tau, dt = 0.01, 0.001
    response = step_response(tau, 200, dt=dt)
    # closed form 1 - a^(t+1)
    a = Lowpass(tau, dt).decay
    np.testing.assert_allclose(response, 1 - a ** np.arange(1, 201))
    # after tau / dt steps it has reached 1 - 1/e (63 %) exactly, in this discretization
    assert response[int(tau / dt) - 1] == pytest.approx(1 - np.exp(-1), abs=1e-12)
    # DC gain 1: after 20 time constants the output is within 1e-8 of the input
    assert abs(response[-1] - 1) < 1e-8
    # rise_steps gives the time constant in steps, and 1 for no filter
    assert rise_steps(tau, dt=dt) == 10
    assert rise_steps(0.02, dt=dt) == 20
    assert rise_steps(None) == 1
    # a larger time constant rises more slowly
    assert np.all(step_response(0.02, 50) < step_response(0.005, 50))


def test_filter_keeps_the_mean_and_reduces_fluctuations(rng):
    # a Poisson-like spike train of 100 Hz in activation units (height 1 / (s dt), s = 100)
    signal = (rng.random(20000) < 0.1) * 10.0
    filtered = lowpass(signal, 0.02)
    # the mean (the activation the spikes carry) is kept to within 2 %
    assert abs(filtered[1000:].mean() - signal[1000:].mean()) < 0.02 * signal.mean()
    # the fluctuations shrink by more than a factor 5
    assert filtered[1000:].std() * 5 < signal.std()


def test_simulate_applies_the_same_filter_with_one_step_delay():
    # one spiking layer, so the readout's input is filtered exactly once
    one_layer = convert(_one_hidden_layer_model())
    kwargs = dict(n_steps=40, scale_firing_rates=200.0, dtype=np.float64)
    x = np.random.default_rng(1).random((3, 5)).astype(np.float32)
    plain = simulate(one_layer, x, **kwargs).output
    filtered = simulate(one_layer, x, synapse=0.005, **kwargs).output
    bias = one_layer.stages[-1].bias.astype(np.float64)
    # readout is linear: filtering its spiking input = filtering (output - bias), read one
    # step late (the synapse's value before this step's update, as in Nengo)
    expected = np.concatenate([np.zeros_like(plain[:, :1]), lowpass(plain - bias, 0.005,
                                                                     axis=1)[:, :-1]], axis=1)
    assert np.abs(plain - bias).max() > 0.1  # the network does spike
    np.testing.assert_allclose(filtered, expected + bias, atol=1e-9)


def _one_hidden_layer_model():
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([
        tf.keras.layers.InputLayer((5,)),
        tf.keras.layers.Dense(8, activation="relu", name="hidden"),
        tf.keras.layers.Dense(2, name="out"),
    ])
    kernel, _ = model.get_layer("hidden").get_weights()
    model.get_layer("hidden").set_weights([np.abs(kernel), np.full(8, 0.2, np.float32)])
    return model


def test_bad_arguments():
    # invalid time constants and steps fail clearly
    with pytest.raises(ValueError, match="tau"):
        lowpass(np.ones(3), -0.01)
    with pytest.raises(ValueError, match="dt"):
        lowpass(np.ones(3), 0.01, dt=0)
    with pytest.raises(ValueError, match="n_steps"):
        step_response(0.01, 0)
    with pytest.raises(ValueError, match="fraction"):
        rise_steps(0.01, fraction=1.0)


def test_labels():
    # labels for tables: None and NaN (pandas' None) read "none"
    assert synapse_label(None) == "none" and synapse_label(float("nan")) == "none"
    assert synapse_label(0.005) == "5 ms"


def test_lowpass_step_is_read_before_update():
    synapse = Lowpass(0.01, dt=0.001)
    state = np.zeros(3)
    first = synapse.step(state, np.ones(3))
    # the first read is the zero start; the state has moved by (1 - a) towards the input
    np.testing.assert_array_equal(first, 0.0)
    np.testing.assert_allclose(state, 1 - synapse.decay)
    second = synapse.step(state, np.ones(3))
    # each read is the previous step's filter output: the filter delays by one step
    np.testing.assert_allclose(second, step_response(0.01, 1)[0])
    # the decay exp(-dt / tau) is 0 without a filter
    assert Lowpass(None).decay == 0.0 and repr(synapse) == "Lowpass(tau=0.01, dt=0.001)"


def test_simulate_uses_the_lowpass_on_both_engines(dense_model, images6):
    network = convert(dense_model)
    kwargs = dict(n_steps=30, scale_firing_rates=300.0, synapse=0.005, dtype=np.float64)
    dense = simulate(network, images6, method="dense", **kwargs)
    event = simulate(network, images6, method="event", **kwargs)
    # the dense and event-driven engines filter the same spikes the same way
    for name in dense.spike_counts:
        np.testing.assert_array_equal(event.spike_counts[name], dense.spike_counts[name])
    np.testing.assert_allclose(event.output, dense.output, atol=1e-9)
