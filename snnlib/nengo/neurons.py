"""The papers' integrate-and-fire neuron as a Nengo neuron type, with its NengoDL implementation.

:class:`SpikingIntegrateAndFire` is the neuron of Diehl et al. 2015, Rueckauer et al. 2017 and
SNN Toolbox's INI simulator, written as a ``nengo.neurons.NeuronType``: it runs in
``nengo.Simulator`` (its :meth:`~SpikingIntegrateAndFire.step`, NumPy) and in
``nengo_dl.Simulator`` (:class:`SpikingIntegrateAndFireBuilder`, TensorFlow, registered in
``nengo_dl.neuron_builders.SimNeuronsBuilder.TF_NEURON_IMPL`` when this module is imported, the
way NengoDL registers its own neuron types). So a NengoDL user can swap it in::

    import nengo
    import nengo_dl
    import tensorflow as tf

    import snnlib

    neuron = snnlib.SpikingIntegrateAndFire(max_spikes_per_step=1,
                                            initial_state={"voltage": nengo.dists.Choice([0.5])})
    converter = nengo_dl.Converter(
        model,
        swap_activations={tf.nn.relu: neuron, tf.keras.activations.relu: neuron},
        scale_firing_rates=snnlib.nengo_scale_firing_rates(model, x_train[:1000]))

It differs from ``nengo.SpikingRectifiedLinear`` (NengoDL's spiking ReLU) in one line: it
integrates the *signed* input current, ``v += J * dt``, where Nengo's neuron integrates
``max(J, 0) * dt``. A neuron whose input spikes have both signs then averages them (its
membrane may go below zero) instead of dropping every step whose net input is negative, so it
fires at the ReLU of its mean input, as the ANN unit it replaces. Step for step it equals
``snnlib.simulate(..., neuron="if")`` (:class:`snnlib.sim.neurons.IntegrateAndFire`), with the same
options: reset by subtraction (default) or to zero, ``floor(v)`` spikes per step (default) or
at most one. ``tests/test_nengo_neurons.py`` checks it against snnlib in both simulators.

Its default start is ``v = 0`` (the papers', and snnlib's default); Nengo's own spiking ReLU
starts at ``Uniform(0, 1)``. Set another with Nengo's ``initial_state``.

Importing this module imports ``nengo`` and ``nengo_dl`` (about 6 s).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from snnlib.nengo._import import import_nengo

nengo, nengo_dl = import_nengo()

import tensorflow as tf  # noqa: E402  (after nengo_dl, which imports it with its settings)
from nengo.params import EnumParam, IntParam  # noqa: E402
from nengo_dl.neuron_builders import SimNeuronsBuilder, TFNeuronBuilder  # noqa: E402

__all__ = ["SpikingIntegrateAndFire", "SpikingIntegrateAndFireBuilder"]

RESETS = ("subtract", "zero")


class SpikingIntegrateAndFire(nengo.neurons.RectifiedLinear):
    """Integrate-and-fire with the signed current (Diehl 2015, Rueckauer 2017, SNN Toolbox).

    Each step of ``dt`` seconds: ``v += J * dt`` (``J = gain * x + bias``, in Hz; the voltage
    may go below zero); the neuron emits ``floor(v)`` spikes when ``v >= 1`` (or one, with
    ``max_spikes_per_step=1``), each of height ``amplitude / dt``; then ``v -= spikes`` (reset
    by subtraction, the excess charge kept) or ``v = 0`` where it spiked (reset to zero).
    Under a constant current its rate is ``max(J, 0)`` Hz, the ReLU (``rates`` is
    ``nengo.RectifiedLinear``'s), so ``nengo_dl.Converter``'s ``scale_firing_rates`` keeps the
    function the network computes, as for NengoDL's spiking ReLU.

    Parameters
    ----------
    amplitude : float
        Output of one spike, times ``1 / dt`` (``scale_firing_rates=s`` divides it by ``s``).
    reset : {"subtract", "zero"}
        After a spike, subtract the threshold (default; as Nengo and Rueckauer et al.) or set
        the voltage to zero (Diehl et al. 2015; rates are biased low by the lost charge).
    max_spikes_per_step : None or 1
        None (default): ``floor(v)`` spikes per step (several when ``v >= 2``; as Nengo). 1: at
        most one spike per step, rates saturate at ``1 / dt`` (the papers' neurons).
    initial_state : dict, optional
        Nengo's ``{"voltage": Distribution or array}``; default ``Choice([0])`` (at rest).
    """

    state = {"voltage": nengo.dists.Choice([0.0])}
    spiking = True

    reset = EnumParam("reset", values=RESETS)
    max_spikes_per_step = IntParam("max_spikes_per_step", low=1, high=1, optional=True)

    def __init__(self, amplitude: float = 1, reset: str = "subtract",
                 max_spikes_per_step: int | None = None, initial_state: dict | None = None
                 ) -> None:
        super().__init__(amplitude=amplitude, initial_state=initial_state)
        self.reset = reset
        self.max_spikes_per_step = max_spikes_per_step

    # numeric views of the options, one value per op, for NengoDL's op_constant
    @property
    def resets_to_zero(self) -> float:
        """1.0 with ``reset="zero"``, 0.0 with ``reset="subtract"``."""
        return float(self.reset == "zero")

    @property
    def one_spike_per_step(self) -> float:
        """1.0 with ``max_spikes_per_step=1``, else 0.0."""
        return float(self.max_spikes_per_step is not None)

    def rates(self, x: np.ndarray, gain: np.ndarray, bias: np.ndarray) -> np.ndarray:
        """Steady-state rate (Hz) under a constant input: ``max(J, 0)`` (capped at ``1/dt``
        with one spike per step; Nengo's rates have no ``dt``, so the cap is not applied)."""
        J = self.current(x, gain, bias)
        out = np.zeros_like(J)
        nengo.neurons.RectifiedLinear.step(self, dt=1.0, J=J, output=out)
        return out

    def step(self, dt: float, J: np.ndarray, output: np.ndarray, voltage: np.ndarray) -> None:
        """One step of ``dt`` seconds, in place (``nengo.Simulator``'s reference)."""
        voltage += J * dt
        if self.max_spikes_per_step is None:
            n_spikes = np.maximum(np.floor(voltage), 0)  # a negative voltage emits nothing
        else:
            n_spikes = (voltage >= 1).astype(voltage.dtype)
        if self.reset == "subtract":
            voltage -= n_spikes
        else:
            voltage[n_spikes > 0] = 0
        output[...] = (self.amplitude / dt) * n_spikes


class SpikingIntegrateAndFireBuilder(TFNeuronBuilder):
    """NengoDL's TensorFlow step for :class:`SpikingIntegrateAndFire` (what
    ``nengo_dl.Simulator`` runs; the same rule as :meth:`SpikingIntegrateAndFire.step`).

    Ops of this neuron type with different options are merged by NengoDL into one group; the
    options then become per-neuron constants. For training (``sim.fit``) the neurons are the
    ReLU rate curve, as NengoDL's spiking ReLU.
    """

    spiking = True

    def build_pre(self, signals: Any, config: Any) -> None:  # noqa: D102 (NengoDL's interface)
        super().build_pre(signals, config)
        sizes = [op.J.shape[0] for op in self.ops]
        neurons = [op.neurons for op in self.ops]
        self.resets_to_zero = signals.op_constant(neurons, sizes, "resets_to_zero",
                                                  signals.dtype)
        self.one_spike = signals.op_constant(neurons, sizes, "one_spike_per_step",
                                             signals.dtype)

    def step(self, J: tf.Tensor, dt: Any, voltage: tf.Tensor) -> tuple:  # noqa: D102
        voltage = voltage + J * dt
        several = tf.maximum(tf.floor(voltage), 0.0)
        one = tf.cast(voltage >= 1, voltage.dtype)
        n_spikes = self.one_spike * one + (1 - self.one_spike) * several
        subtracted = voltage - n_spikes
        zeroed = tf.where(n_spikes > 0, tf.zeros_like(voltage), voltage)
        voltage = self.resets_to_zero * zeroed + (1 - self.resets_to_zero) * subtracted
        return n_spikes * self.alpha, voltage

    def training_step(self, J: tf.Tensor, dt: Any, **state: Any) -> tf.Tensor:  # noqa: D102
        out = tf.nn.relu(J)
        if self.amplitude is not None:
            out *= self.amplitude
        return out


SimNeuronsBuilder.TF_NEURON_IMPL[SpikingIntegrateAndFire] = SpikingIntegrateAndFireBuilder
