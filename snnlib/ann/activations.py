"""Keras activations with a spiking neuron's rate curve, to train a network for those neurons.

:func:`soft_lif` is the rate curve of a LIF neuron (:class:`snnlib.sim.neurons.LIF`, ``nengo.LIF``)
under NengoDL's firing-rate scaling, smoothed so that it has a gradient everywhere: what
``nengo_dl.SoftLIFRate`` computes, divided by the scale. A network trained with it computes, in
rate mode, what the LIF network converted with ``scale_firing_rates=scale`` computes on average
(chapter 4: ``scale_firing_rates`` changes the function for LIF neurons, so train at the scale
you will run at).

The activation is a small object (:class:`SoftLIF`) whose parameters can be read back
(``scale``, ``sigma``, ``tau_rc``, ``tau_ref``). :func:`snnlib.convert` recognises a layer
trained with it and refuses it with the fix: copy the weights into the same model built with
ReLU, convert that and simulate with ``neuron="lif"`` at ``scale_firing_rates=scale`` and a
synapse (chapter 7 does this). TensorFlow is imported only when the activation is called.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "SoftLIF",
    "soft_lif",
]


class SoftLIF:
    """The smoothed LIF rate curve as a Keras activation: ``SoftLIFRate.rates(x, s, 0) / s``.

    With ``J = s x`` and ``js = (J - 1) / sigma``: ``z = sigma * softplus(js)`` (``js`` itself
    above 30), ``q = log1p(1 / z)`` (``-js - log(sigma)`` where ``js <= -20``), and the output is
    ``(1 / s) / (tau_ref + tau_rc * q)``. As ``sigma`` goes to 0 it becomes the LIF rate curve
    ``rates(s x) / s``, which is 0 up to ``x = 1 / s`` and has no gradient there. Both branches
    of every ``tf.where`` are computed on safe inputs, so the gradient is finite everywhere.

    Parameters
    ----------
    scale : float
        The firing-rate scale ``s`` (Hz per unit of activation, gain of the neurons) the network
        will run at, as ``scale_firing_rates``.
    sigma : float
        Smoothing of the corner at the rheobase (``nengo_dl.SoftLIFRate``'s ``sigma``): larger
        is smoother (easier to train) but further from the spiking neuron's curve.
    tau_rc, tau_ref : float
        Membrane and refractory time constants (seconds), as :class:`snnlib.sim.neurons.LIF`.
    """

    __name__ = "soft_lif"  # Keras reads an activation's name from __name__

    def __init__(self, scale: float, sigma: float = 1.0, tau_rc: float = 0.02,
                 tau_ref: float = 0.002) -> None:
        for name, value in (("scale", scale), ("sigma", sigma), ("tau_rc", tau_rc)):
            if not np.isscalar(value) or not np.isfinite(value) or value <= 0:
                raise ValueError(f"{name}={value!r} must be a positive number")
        if not np.isscalar(tau_ref) or not np.isfinite(tau_ref) or tau_ref < 0:
            raise ValueError(f"tau_ref={tau_ref!r} must be a non-negative number of seconds")
        self.scale, self.sigma = float(scale), float(sigma)
        self.tau_rc, self.tau_ref = float(tau_rc), float(tau_ref)

    def __repr__(self) -> str:
        return (f"soft_lif(scale={self.scale!r}, sigma={self.sigma!r}, tau_rc={self.tau_rc!r}, "
                f"tau_ref={self.tau_ref!r})")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and vars(other) == vars(self)

    def __hash__(self) -> int:
        return hash((type(self), repr(self)))

    def get_config(self) -> dict:
        """The parameters, as a Keras object's config."""
        return {"scale": self.scale, "sigma": self.sigma, "tau_rc": self.tau_rc,
                "tau_ref": self.tau_ref}

    def __call__(self, x: Any) -> Any:
        import tensorflow as tf

        x = tf.convert_to_tensor(x)
        dtype = x.dtype
        sigma = tf.constant(self.sigma, dtype)
        js = (x * tf.constant(self.scale, dtype) - 1) / sigma
        # softplus, with the large inputs passed through (as nengo_dl: js > 30)
        big = js > 30
        z = tf.where(big, js, tf.math.softplus(tf.where(big, tf.zeros_like(js), js))) * sigma
        # far below the rheobase log1p(1 / z) ~ -log(z) ~ -js - log(sigma), without 1 / z
        valid = js > -20
        safe_z = tf.where(valid, z, tf.ones_like(z))
        q = tf.where(valid, tf.math.log1p(1 / safe_z), -js - tf.constant(math.log(self.sigma),
                                                                          dtype))
        return tf.constant(1 / self.scale, dtype) / (
            tf.constant(self.tau_ref, dtype) + tf.constant(self.tau_rc, dtype) * q)


def soft_lif(scale: float, sigma: float = 1.0, tau_rc: float = 0.02,
             tau_ref: float = 0.002) -> SoftLIF:
    """The soft LIF rate curve at firing-rate scale ``scale``, as a Keras activation.

    ``tf.keras.layers.Dense(64, activation=soft_lif(100))``: the layer's output equals
    ``nengo_dl.SoftLIFRate(sigma=sigma, tau_rc=tau_rc, tau_ref=tau_ref).rates(x, scale, 0)
    / scale``, the average output of LIF neurons with gain ``scale`` and amplitude
    ``1 / scale`` (smoothed). See :class:`SoftLIF` for the formula and the parameters.

    Returns
    -------
    SoftLIF
        A callable whose ``scale``, ``sigma``, ``tau_rc`` and ``tau_ref`` can be read back.
    """
    return SoftLIF(scale, sigma=sigma, tau_rc=tau_rc, tau_ref=tau_ref)
