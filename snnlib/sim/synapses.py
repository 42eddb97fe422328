"""The synapse: the lowpass filter that ``synapse=tau`` puts on every connection out of neurons.

:class:`Lowpass` is ``nengo.Lowpass(tau)`` discretized with a zero-order hold, as Nengo does: a
signal ``x[t]`` (spikes of height ``1 / (s dt)``, in activation units) becomes

    ``y[t] = a * y[t - 1] + (1 - a) * x[t]``,  ``a = exp(-dt / tau)``,

starting from ``y = 0``. Its gain at DC is 1 (a constant input ``c`` gives ``y -> c``), so the
filtered spike train keeps the mean that carries the ANN activation while its step-to-step
fluctuations shrink; the price is a rise time of about ``tau`` (63 % after ``tau`` seconds).
In a simulation (:func:`snnlib.sim.simulator.simulate`, as in Nengo) the next layer reads the
filter's value *before* this step's update (:meth:`Lowpass.step`), which adds one step of delay
per filtered connection. Both simulation engines and the chapter's demos use this one class; the
decay ``a`` is computed in :class:`Lowpass` only.

- :func:`lowpass`, :func:`step_response`, :func:`rise_steps`: the filter on its own (chapter 5).
- :func:`synapse_label`: "none" / "5 ms" labels for tables and heat maps.

One neuron's spike train from a real simulation is
:func:`snnlib.experiments.diagnostics.neuron_trace`
(it runs :func:`snnlib.sim.simulator.simulate`, which uses this module).

The chapter's figures are :func:`snnlib.experiments.plots.plot_filtered_spike_train` and
:func:`snnlib.experiments.plots.plot_step_response`.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from snnlib import validation
from snnlib.config import DT, MAX_STEPS

__all__ = [
    "Lowpass",
    "lowpass",
    "step_response",
    "rise_steps",
    "synapse_label",
]


def _check_tau_dt(tau: float | None, dt: float) -> None:
    validation.real(dt, "dt", low=0, low_open=True, hint="seconds")
    validation.optional(tau, validation.real, "tau", low=0, low_open=True,
                        hint="a time constant in seconds, or None")


class Lowpass:
    """``nengo.Lowpass(tau)`` with a zero-order hold: ``y[t] = a y[t-1] + (1 - a) x[t]``.

    Parameters
    ----------
    tau : float or None
        Time constant (seconds). Larger: smoother output (less spike noise), slower response.
        None: no memory (``a = 0``, the output is the input).
    dt : float
        Time step (seconds).

    Attributes
    ----------
    decay : float
        ``a = exp(-dt / tau)`` in [0, 1): the fraction of the filter's value kept from one step
        to the next (0 for ``tau=None``).
    """

    def __init__(self, tau: float | None, dt: float = DT) -> None:
        _check_tau_dt(tau, dt)
        self.tau, self.dt = tau, dt
        self.decay = 0.0 if tau is None else float(np.exp(-dt / tau))

    def __repr__(self) -> str:
        return f"Lowpass(tau={self.tau!r}, dt={self.dt!r})"

    def update(self, state: np.ndarray, x: ArrayLike) -> None:
        """Advance one step in place: ``state <- a * state + (1 - a) * x``."""
        state *= self.decay
        state += (1 - self.decay) * x

    def step(self, state: np.ndarray, x: ArrayLike) -> np.ndarray:
        """Read before update, as Nengo: return the state of the previous step, then update it.

        This is what the next layer receives in a simulation: the filtered signal one step late.
        """
        previous = state.copy()
        self.update(state, x)
        return previous

    def filt(self, signal: ArrayLike, *, axis: int = 0) -> np.ndarray:
        """Filter a whole signal starting from zero (no delay), in float64.

        Parameters
        ----------
        signal : array_like
            Values per time step along ``axis`` (e.g. a spike train in activation units: 0 or
            ``1 / (s dt)`` per step).
        axis : int
            The time axis.

        Returns
        -------
        ndarray, float64, same shape as ``signal``
            ``nengo.Lowpass(tau).filt(signal, dt=dt, y0=0)``.
        """
        x = np.moveaxis(np.asarray(signal, dtype=np.float64), axis, 0)
        y = np.empty_like(x)
        state = np.zeros(x.shape[1:], dtype=np.float64)
        for t in range(x.shape[0]):
            self.update(state, x[t])
            y[t] = state
        return np.moveaxis(y, 0, axis)

    def step_response(self, n_steps: int) -> np.ndarray:
        """Response to an input that switches from 0 to 1 at the first step, (n_steps,).

        ``1 - a ** (t + 1)`` for step ``t = 0 .. n_steps - 1``: it reaches ``1 - 1/e`` (63 %)
        after ``tau / dt`` steps and approaches 1 (the filter does not change a constant).
        """
        validation.integer(n_steps, "n_steps", low=1, high=MAX_STEPS)
        return self.filt(np.ones(n_steps))

    def rise_steps(self, fraction: float = 1 - np.exp(-1)) -> int:
        """Steps until the step response first reaches ``fraction`` of its final value.

        Parameters
        ----------
        fraction : float
            In (0, 1); the default 1 - 1/e gives the time constant in steps (about
            ``tau / dt``).

        Returns
        -------
        int
            The smallest ``k >= 1`` with ``1 - a ** k >= fraction`` (1 without a filter).
        """
        validation.real(fraction, "fraction", low=0, high=1, low_open=True, high_open=True)
        if self.decay == 0:
            return 1
        # 1 - a**k >= fraction  <=>  k >= log(1 - fraction) / log(a); a little slack for rounding
        return max(1, int(np.ceil(np.log1p(-fraction) / np.log(self.decay) - 1e-9)))


def lowpass(signal: ArrayLike, tau: float | None, *, dt: float = DT,
            axis: int = 0) -> np.ndarray:
    """Filter a signal with :class:`Lowpass` ``(tau, dt)`` from zero: see :meth:`Lowpass.filt`.

    ``tau=None`` returns the signal unchanged (as a float64 copy).
    """
    return Lowpass(tau, dt).filt(signal, axis=axis)


def step_response(tau: float | None, n_steps: int, *, dt: float = DT) -> np.ndarray:
    """The filter's response to a unit step, (n_steps,): see :meth:`Lowpass.step_response`."""
    return Lowpass(tau, dt).step_response(n_steps)


def rise_steps(tau: float | None, fraction: float = 1 - np.exp(-1), *, dt: float = DT) -> int:
    """Steps until the step response reaches ``fraction``: see :meth:`Lowpass.rise_steps`."""
    return Lowpass(tau, dt).rise_steps(fraction)


def synapse_label(tau: float | None) -> str:
    """"none" for ``None`` (or NaN, as pandas stores it), else the time constant in ms."""
    if tau is None or (np.isscalar(tau) and np.isnan(tau)):
        return "none"
    return f"{1000 * float(tau):g} ms"
