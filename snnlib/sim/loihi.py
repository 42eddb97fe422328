"""Loihi's neurons as neuron models: what NengoLoihi runs on the chip and in its emulator.

Two registered :class:`~snnlib.sim.neurons.NeuronModel` classes, written from the rules of
``nengo_loihi/neurons.py`` (NengoLoihi 1.1.0, ``LoihiSpikingRectifiedLinear.step`` and
``LoihiLIF.step``; tested step for step against those classes and against NengoLoihi's emulator,
``nengo_loihi.Simulator(target="sim")``, in ``tests/test_loihi.py``):

- ``"loihi_relu"`` (:class:`LoihiSpikingReLU`): ``v += J * dt`` with the signed current, then a
  spike when ``v > 1`` (strictly), at most **one spike per step**, reset **to zero** (the excess
  charge is lost) and the voltage floored at zero. Unlike ``nengo.SpikingRectifiedLinear`` (the
  neuron NengoDL's converter builds: ``floor(v)`` spikes per step, reset by subtraction) its rate
  is not ``J``: it is the *aliased* rate :func:`loihi_relu_rates`,
  ``1 / (dt * ceil(1 / (J dt)))``, which takes only the values ``1 / (k dt)`` (1000, 500, 333,
  250, ... Hz at ``dt`` = 1 ms). ``scale_firing_rates`` is therefore not free on Loihi even for
  ReLU: the rate curve is a staircase that saturates at ``1 / dt``.
- ``"loihi_lif"`` (:class:`LoihiLIF`): ``nengo.LIF``'s decay towards ``J`` over each step, with
  the membrane time constant rounded to Loihi's 12-bit decay (:func:`discretize_tau_rc`) and the
  refractory period to whole steps (:func:`discretize_tau_ref`); a spike when ``v > 1``, without
  the spike-time interpolation of ``nengo.LIF``, reset to zero, then ``tau_ref`` refractory.

Both run on the dense engine (the compiled and event-driven engines say why they cannot).

On the step rule and the rate formula: with the strict threshold, when ``1 / (J dt)`` is an exact
integer ``k`` the neuron needs ``k + 1`` steps, not ``k`` (at ``dt`` = 1 ms, ``J`` = 500 Hz
fires at 333 Hz, not 500): the formula NengoLoihi uses for its rates is exact everywhere else.
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike

from snnlib.config import DT
from snnlib.sim.neurons import NeuronModel, lif_parameters, register_neuron_model

__all__ = [
    "DECAY_BITS",
    "discretize_tau_ref",
    "discretize_tau_rc",
    "loihi_relu_rates",
    "LoihiSpikingReLU",
    "LoihiLIF",
]

#: Bits of Loihi's compartment decay constants (NengoLoihi ``discretize_tau_rc``).
DECAY_BITS = 12

_UNSUPPORTED = ("the Loihi neurons floor the voltage at zero and fire only above the threshold "
                "(strictly); they run on the dense engine (method='dense' or 'auto')")


def _amplitude(value: float) -> float:
    """A spike's output amplitude, checked: a positive number (not a bool)."""
    if isinstance(value, bool) or not np.isscalar(value) or not np.isfinite(value) or value <= 0:
        raise ValueError(f"amplitude={value!r} must be a positive number")
    return float(value)


def discretize_tau_ref(tau_ref: float, dt: float = DT) -> float:
    """The refractory period Loihi runs: ``tau_ref`` rounded to whole steps (seconds)."""
    return float(dt * np.round(tau_ref / dt))


def discretize_tau_rc(tau_rc: float, dt: float = DT) -> float:
    """The membrane time constant Loihi runs (seconds): its per-step decay rounded to 12 bits.

    The decay per step, ``1 - exp(-dt / tau_rc)``, is stored as an integer out of
    ``2**12 - 1``; this returns the time constant of the rounded decay.
    """
    levels = 2 ** DECAY_BITS - 1
    decay = -np.expm1(-dt / tau_rc)
    decay = np.round(decay * levels) / levels
    return float(-dt / np.log1p(-decay))


def loihi_relu_rates(current: ArrayLike, dt: float = DT, amplitude: float = 1.0) -> np.ndarray:
    """Steady-state rate (Hz) of :class:`LoihiSpikingReLU` under a constant current ``J`` (Hz).

    ``amplitude / (dt * ceil(1 / (J dt)))`` for ``J > 0``, else 0: NengoLoihi's
    ``loihi_spikingrectifiedlinear_rates``. At most ``1 / dt``. Where ``1 / (J dt)`` is an exact
    integer the step rule fires one step later than this formula says (see the module's
    docstring).
    """
    J = np.asarray(current, dtype=np.float64)
    out = np.zeros_like(J)
    positive = J > 0
    out[positive] = (amplitude / dt) / np.ceil(1.0 / (J[positive] * dt))
    return out


@register_neuron_model
class LoihiSpikingReLU(NeuronModel):
    """NengoLoihi's ``LoihiSpikingRectifiedLinear``: one spike per step, reset to zero.

    Each step of ``dt`` seconds: ``v += J * dt`` (``J = gain * current``, signed); a spike where
    ``v > 1``; voltages below zero are set to zero; the voltage of a neuron that spiked is set
    to zero (its excess charge is lost). Its rate is :func:`loihi_relu_rates`.

    Parameters
    ----------
    amplitude : float
        Output of one spike, times ``1 / dt`` (divided by the firing-rate scale ``s``).
    """

    name: ClassVar[str] = "loihi_relu"
    accumulates = False  # the floor at zero: no closed form under a negative drive
    options: ClassVar[tuple[str, ...]] = ()
    event_driven_unsupported = _UNSUPPORTED

    def __init__(self, *, amplitude: float = 1.0) -> None:
        super().__init__(reset="zero", max_spikes_per_step=1)
        self.amplitude = _amplitude(amplitude)

    def drive(self, current: np.ndarray, gain: float, dt: float,
              out: np.ndarray | None = None) -> np.ndarray:
        out = np.multiply(current, gain, out=out)
        out *= dt
        return out

    def fire(self, voltage: np.ndarray, spikes: np.ndarray) -> None:
        """Spike where ``v > 1`` (strictly); floor the voltage at zero; reset spikers to zero."""
        np.greater(voltage, 1.0, out=spikes, casting="unsafe")
        np.maximum(voltage, 0, out=voltage)
        voltage[spikes > 0] = 0

    def rates(self, current: ArrayLike, gain: float = 1.0, dt: float = DT) -> np.ndarray:
        """Steady-state rate (Hz) for a constant ``current``: :func:`loihi_relu_rates`."""
        return loihi_relu_rates(gain * np.asarray(current, np.float64), dt, self.amplitude)


@register_neuron_model
class LoihiLIF(NeuronModel):
    """NengoLoihi's ``LoihiLIF``: ``nengo.LIF`` with Loihi's discretized time constants.

    Each step of ``dt`` seconds: the refractory time shrinks by ``dt``; over the part of the
    step that is not refractory the voltage decays towards ``J`` with the time constant
    :func:`discretize_tau_rc` gives; a spike where ``v > 1`` (at most one per step, no
    spike-time interpolation); voltages below ``min_voltage`` are clipped; a neuron that spiked
    is set to zero and held there for :func:`discretize_tau_ref` seconds.

    Parameters
    ----------
    tau_rc, tau_ref : float
        Membrane time constant and refractory period (seconds), before Loihi's rounding.
    min_voltage : float
        Floor of the voltage (<= 0).
    amplitude : float
        Output of one spike, times ``1 / dt``.
    """

    name: ClassVar[str] = "loihi_lif"
    accumulates = False
    state_variables: ClassVar[tuple[str, ...]] = ("refractory_time",)
    options: ClassVar[tuple[str, ...]] = ()
    event_driven_unsupported = _UNSUPPORTED

    def __init__(self, *, tau_rc: float = 0.02, tau_ref: float = 0.002,
                 min_voltage: float = 0.0, amplitude: float = 1.0) -> None:
        super().__init__(reset="zero", max_spikes_per_step=1)
        self.tau_rc, self.tau_ref, self.min_voltage = lif_parameters(tau_rc, tau_ref, min_voltage)
        self.amplitude = _amplitude(amplitude)

    def drive(self, current: np.ndarray, gain: float, dt: float,
              out: np.ndarray | None = None) -> np.ndarray:
        """The input current ``J = gain * current`` (threshold units; 1 is the rheobase)."""
        return np.multiply(current, gain, out=out)

    def step(self, voltage: np.ndarray, current: np.ndarray, *, gain: float, dt: float,
             drive: np.ndarray, spikes: np.ndarray, state: dict | None = None) -> None:
        """One step of ``LoihiLIF.step``, in place (``drive`` receives ``J``)."""
        if state is None:
            raise ValueError("the 'loihi_lif' neuron needs its state (initial_state(shape)) "
                             "in step()")
        tau_rc, tau_ref = discretize_tau_rc(self.tau_rc, dt), discretize_tau_ref(self.tau_ref, dt)
        refractory = state["refractory_time"]
        J = self.drive(current, gain, dt, out=drive)
        refractory -= dt
        delta_t = np.clip(dt - refractory, 0, dt)
        voltage -= (J - voltage) * np.expm1(-delta_t / tau_rc)
        spiked = voltage > 1
        spikes[...] = spiked
        voltage[voltage < self.min_voltage] = self.min_voltage
        voltage[spiked] = 0
        refractory[spiked] = tau_ref + dt

    def rates(self, current: ArrayLike, gain: float = 1.0, dt: float = DT) -> np.ndarray:
        """Steady-state rate (Hz) for a constant ``current``: NengoLoihi's ``loihi_lif_rates``.

        ``amplitude / (dt * ceil(period / dt))`` with ``period = tau_ref + tau_rc *
        log1p(1 / (J - 1))`` (discretized constants) for ``J > 1``, else 0.
        """
        J = gain * np.asarray(current, dtype=np.float64)
        tau_rc, tau_ref = discretize_tau_rc(self.tau_rc, dt), discretize_tau_ref(self.tau_ref, dt)
        out = np.zeros_like(J)
        above = J > 1
        period = tau_ref + tau_rc * np.log1p(1.0 / (J[above] - 1))
        out[above] = (self.amplitude / dt) / np.ceil(period / dt)
        return out

