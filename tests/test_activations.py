"""Tests of snnlib.ann.activations: the soft LIF rate curve as a Keras activation."""
import numpy as np
import pytest
import tensorflow as tf

from snnlib.ann.activations import SoftLIF, soft_lif
from snnlib.nengo.bridge import import_nengo
from snnlib.sim.neurons import LIF


@pytest.mark.parametrize("scale, sigma, tau_rc, tau_ref", [
    (1.0, 1.0, 0.02, 0.002), (100.0, 1.0, 0.02, 0.002), (1000.0, 0.02, 0.05, 0.001),
    (30.0, 3.0, 0.01, 0.0)])
def test_equals_nengo_dl_soft_lif_rate(scale, sigma, tau_rc, tau_ref):
    _, nengo_dl = import_nengo()
    x = np.concatenate([np.linspace(-2, 2, 401), [-1e4, -30 / scale, 1 / scale, 1e4]])
    with np.errstate(over="ignore", divide="ignore"):  # nengo_dl's own unused branches
        expected = nengo_dl.SoftLIFRate(sigma=sigma, tau_rc=tau_rc, tau_ref=tau_ref).rates(
            x, scale, 0) / scale
    ours = soft_lif(scale, sigma, tau_rc, tau_ref)(tf.constant(x, tf.float64)).numpy()
    # the values of nengo_dl's SoftLIFRate, divided by the scale, to float64 rounding
    np.testing.assert_allclose(ours, expected, rtol=1e-13, atol=0)


def test_gradient_is_finite_everywhere():
    x = tf.constant(np.concatenate([np.linspace(-1e3, 1e3, 2001), [-1e30, 1e30]]), tf.float32)
    for activation in (soft_lif(1000.0), soft_lif(10.0, sigma=0.01)):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = activation(x)
        grad = tape.gradient(y, x).numpy()
        # no NaN or infinity in the values or the gradients (float32, far from the rheobase too)
        assert np.all(np.isfinite(y.numpy())) and np.all(np.isfinite(grad))
        # the curve rises with the input
        assert np.all(grad >= 0) and grad.max() > 0


def test_approaches_the_lif_rate_curve_as_sigma_shrinks():
    scale = 200.0
    x = np.linspace(0.02, 2, 50)
    exact = LIF().rates(x, gain=scale) / scale
    smooth = soft_lif(scale, sigma=1e-3)(tf.constant(x, tf.float64)).numpy()
    # with a small sigma, the LIF rate curve of the spiking neuron at this scale
    np.testing.assert_allclose(smooth, exact, rtol=1e-3, atol=1e-6)


def test_parameters_can_be_read_back_and_trained_with():
    activation = soft_lif(50.0, sigma=0.5, tau_rc=0.03)
    # a converter can recognise it and read the LIF parameters
    assert isinstance(activation, SoftLIF)
    assert (activation.scale, activation.sigma, activation.tau_rc, activation.tau_ref) == \
        (50.0, 0.5, 0.03, 0.002)
    assert activation == soft_lif(50.0, sigma=0.5, tau_rc=0.03)
    with pytest.raises(ValueError, match="scale"):
        soft_lif(0)
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([tf.keras.Input((4,)),
                                 tf.keras.layers.Dense(8, activation=activation),
                                 tf.keras.layers.Dense(2)])
    model.compile("adam", "mse")
    x = np.random.default_rng(0).random((64, 4)).astype(np.float32)
    history = model.fit(x, x[:, :2], epochs=3, verbose=0)
    # a Keras layer uses it as its activation, and training runs with finite losses
    assert model.layers[0].activation is activation
    assert np.all(np.isfinite(history.history["loss"]))
