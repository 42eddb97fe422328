"""Spiking neuron models, and what one neuron does with a constant input.

A neuron model is one class (:class:`NeuronModel`) that holds its parameters (reset, spikes per
step) and writes its update rule once:

- :meth:`~NeuronModel.drive`: the voltage an input current adds in one step;
- :meth:`~NeuronModel.integrate`: add it to the voltage;
- :meth:`~NeuronModel.fire`: the spike condition with its reset: the *only* place where spikes
  are decided, for every engine;
- :meth:`~NeuronModel.step` (the dense engine's inner loop, in place on preallocated buffers),
  :meth:`~NeuronModel.step_sparse` (the event-driven engine: the reset touches only the neurons
  that fire) and :meth:`~NeuronModel.constant_drive_spikes` (the closed form under a constant
  drive, used for the first layer of a network with a constant input) are built from those three.

Built-in models, registered by name (:data:`NEURON_MODELS`, :func:`register_neuron_model`):

- ``"spiking_relu"`` (:class:`SpikingReLU`, the default): ``nengo.SpikingRectifiedLinear``,
  the neuron ``nengo_dl.Converter`` uses: ``v += max(J, 0) * dt``. The current is rectified
  every step, so a neuron whose input spikes have both signs integrates only the positive steps.
- ``"if"`` (:class:`IntegrateAndFire`): the integrate-and-fire neuron of Diehl et al. 2015,
  Rueckauer et al. 2017 and SNN Toolbox's INI simulator: ``v += J * dt`` with the *signed*
  current; the membrane may go below zero, and the neuron spikes when ``v >= 1``.
- ``"lif"`` (:class:`LIF`): ``nengo.LIF``, the leaky integrate-and-fire neuron of NengoLoihi
  users: exact exponential decay towards ``J`` over each step, a refractory period with the
  spike time found within the step, at most one spike per step, reset to zero. It keeps a
  second state variable per neuron (the refractory time, :meth:`NeuronModel.initial_state`)
  and runs on the dense and compiled engines (not the event-driven one).

The first two reset by subtraction (keep the excess charge, as Nengo) or to zero, and emit
``floor(v)`` spikes per step (Nengo) or at most one. Units: the voltage is in units of the
threshold (1); a current ``J`` is in 1/s (Hz): an IF neuron integrates ``J * dt`` per step of
``dt`` seconds and so fires ``J`` spikes per second (a LIF neuron's ``J`` is in threshold units:
it fires only above ``J = 1``).

Single neurons (chapter 3) and rate curves (chapter 4):

- :func:`integrate_and_fire`: independent neurons with constant input currents, through the
  model's own :meth:`~NeuronModel.step`.
- :func:`measured_rate` and :func:`rate_error_bound`: the rate read from spike counts over
  ``n_steps`` steps and how far from the true rate it can be.
- :func:`scaled_rates` and :func:`scaled_forward`: what NengoDL's ``scale_firing_rates=s`` does
  to a neuron's average output, ``rates(s * x) / s``, for one neuron type or through a whole
  converted network in rate mode. Homogeneous for ReLU, not for LIF.

The figures are in :mod:`snnlib.experiments.plots` (``plot_voltage_trace``,
``plot_rate_quantization``,
``plot_scaled_rate_curves``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike

from snnlib import validation
from snnlib.config import DT, MAX_STEPS
from snnlib.registry import Registry

if TYPE_CHECKING:
    from snnlib.network import SpikingNetwork

__all__ = [
    "RESETS",
    "THRESHOLD",
    "NeuronModel",
    "NEURON_MODELS",
    "register_neuron_model",
    "get_neuron_model",
    "SpikingReLU",
    "IntegrateAndFire",
    "lif_parameters",
    "LIF",
    "integrate_and_fire",
    "measured_rate",
    "rate_error_bound",
    "scaled_rates",
    "scaled_forward",
]

RESETS = ("subtract", "zero")


def _finite(value: ArrayLike, name: str) -> np.ndarray:
    """``value`` as a float64 array; ArgumentError for bools, non-numbers, NaN or infinities."""
    array = np.asarray(value)
    if array.dtype.kind not in "iuf":
        raise validation.ArgumentError(f"{name} must be real numbers; got dtype {array.dtype}")
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise validation.ArgumentError(f"{name} contains NaN or infinite values")
    return array
#: The firing threshold: voltages are in units of it.
THRESHOLD = 1.0


class NeuronModel:
    """A spiking neuron model: its parameters and its update rule, written once.

    Subclasses set :attr:`name` and implement :meth:`drive`; a model with other dynamics (a
    leak, say) overrides :meth:`integrate` too and sets :attr:`accumulates` to False, and one
    whose voltage can go below zero sets :attr:`signed_voltage`. The spike condition and the
    reset (:meth:`fire`) are shared by all models; see "Extending snnlib" in the README.

    A model with more state than the voltage (a refractory time, say) names it in
    :attr:`state_variables`: every layer then gets its own arrays of it
    (:meth:`initial_state`), passed to :meth:`step` as ``state``; such a model overrides
    :meth:`step` (see :class:`LIF`).

    Parameters
    ----------
    reset : {"subtract", "zero"}
        After a spike, subtract the threshold (keeps the excess charge; as Nengo) or set the
        voltage to zero (loses it: rates are biased low, by an amount that does not shrink
        with longer runs).
    max_spikes_per_step : None or 1
        None: ``floor(v)`` spikes per step (several when ``v >= 2``; as Nengo). 1: at most one
        spike per step (rates saturate at ``1 / dt``).
    """

    #: Registry name (``simulate(..., neuron=name)``).
    name: ClassVar[str] = ""
    #: Whether the voltage can go below zero while the neuron runs (it integrates a signed
    #: current): then ``floor(v) < 0`` must count as no spike.
    signed_voltage: ClassVar[bool] = False
    #: Whether the voltage only accumulates the drive (``v += d`` each step, no leak). Then the
    #: spikes under a constant drive have a closed form (:meth:`constant_drive_spikes`).
    accumulates: ClassVar[bool] = True
    #: Per-neuron state besides the voltage (names of arrays in :meth:`initial_state`).
    state_variables: ClassVar[tuple[str, ...]] = ()
    #: Why the event-driven engine cannot run this model (None: it can). That engine keeps
    #: only the voltage and resets it where a neuron reaches the threshold (:meth:`step_sparse`).
    event_driven_unsupported: ClassVar[str | None] = None
    #: The options of :func:`get_neuron_model` (and ``simulate``) this model takes.
    options: ClassVar[tuple[str, ...]] = ("reset", "max_spikes_per_step")
    #: Output of one spike, times ``1 / dt`` (before firing-rate scaling divides it by ``s``).
    amplitude: float = 1.0

    def __init__(self, *, reset: str = "subtract", max_spikes_per_step: int | None = None
                 ) -> None:
        if reset not in RESETS:
            raise ValueError(f"unknown reset {reset!r}; use one of {RESETS}")
        if max_spikes_per_step is not None:  # 1 only (True is not a number of spikes)
            validation.integer(max_spikes_per_step, "max_spikes_per_step", low=1, high=1,
                               hint="None (floor(v) spikes per step, as Nengo) or 1")
        self.reset = reset
        self.max_spikes_per_step = max_spikes_per_step

    def __repr__(self) -> str:
        options = ", ".join(f"{key}={value!r}" for key, value in vars(self).items())
        return f"{type(self).__name__}({options})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and vars(other) == vars(self)

    def __hash__(self) -> int:
        return hash((type(self), repr(self)))

    # ----------------------------------------------------------------------------------------
    # The rule
    # ----------------------------------------------------------------------------------------

    def drive(self, current: np.ndarray, gain: float, dt: float,
              out: np.ndarray | None = None) -> np.ndarray:
        """Voltage the input ``current`` adds in one step (``J = gain * current``), into ``out``.

        Parameters
        ----------
        current : ndarray
            The neurons' input ``W h + b`` (activation units).
        gain : float
            Firing-rate scale ``s`` (Hz per unit of activation): ``J = s * current``.
        dt : float
            Time step (seconds).
        out : ndarray, optional
            Buffer for the result (same shape and dtype as ``current``).
        """
        raise NotImplementedError(f"{type(self).__name__} must define drive()")

    def integrate(self, voltage: np.ndarray, drive: np.ndarray, dt: float) -> None:
        """Advance the voltage one step of ``dt`` seconds, in place: ``v += drive``.

        A model with a leak overrides this (and sets :attr:`accumulates` to False).
        """
        voltage += drive

    def fire(self, voltage: np.ndarray, spikes: np.ndarray) -> None:
        """The spike condition and the reset, in place: spikes of this step into ``spikes``.

        A neuron spikes when ``v >= 1``: ``floor(v)`` spikes, or one with
        ``max_spikes_per_step=1``. Then ``v -= spikes`` (reset "subtract") or ``v = 0`` where it
        spiked (reset "zero").
        """
        if self.max_spikes_per_step is None:
            np.floor(voltage, out=spikes)
            if self.signed_voltage:  # below zero: floor(v) < 0 is no spike
                np.maximum(spikes, 0, out=spikes)
        else:
            np.greater_equal(voltage, THRESHOLD, out=spikes, casting="unsafe")
        if self.reset == "subtract":
            voltage -= spikes
        else:
            voltage[spikes > 0] = 0

    # ----------------------------------------------------------------------------------------
    # The engines' steps, built from the rule
    # ----------------------------------------------------------------------------------------

    def initial_state(self, shape: tuple, dtype: Any = np.float64) -> dict[str, np.ndarray]:
        """The per-neuron state besides the voltage, for one layer: name -> array of ``shape``.

        Zeros for every name in :attr:`state_variables` (none for models that only have a
        voltage); a model whose state starts elsewhere overrides this.
        """
        return {name: np.zeros(shape, dtype=dtype) for name in self.state_variables}

    def step(self, voltage: np.ndarray, current: np.ndarray, *, gain: float, dt: float,
             drive: np.ndarray, spikes: np.ndarray, state: dict | None = None) -> None:
        """One step of the dense engine, in place on preallocated buffers.

        ``drive`` receives this step's voltage increment, ``spikes`` its spikes per neuron;
        ``state`` holds the layer's other state variables (:meth:`initial_state`), updated in
        place by models that have some.
        """
        self.drive(current, gain, dt, out=drive)
        self.integrate(voltage, drive, dt)
        self.fire(voltage, spikes)

    def step_sparse(self, voltage: np.ndarray, drive: np.ndarray, dt: float
                    ) -> tuple[np.ndarray, np.ndarray]:
        """One step of the event-driven engine on flat arrays, given this step's ``drive``.

        The voltage integrates everywhere; the spike condition and the reset are applied only to
        the neurons at or above the threshold (elsewhere nothing fires and nothing resets, for
        any voltage, negative included).

        Returns
        -------
        flat : ndarray of int
            Indices of the neurons that spiked.
        counts : ndarray
            Their spikes this step (voltage dtype).
        """
        self.integrate(voltage, drive, dt)
        flat = np.flatnonzero(voltage >= THRESHOLD)
        v = voltage[flat]
        counts = np.empty_like(v)
        self.fire(v, counts)
        voltage[flat] = v
        return flat, counts

    @property
    def has_closed_form(self) -> bool:
        """Whether :meth:`constant_drive_spikes` applies: no leak, reset "subtract", no cap."""
        return (self.accumulates and self.reset == "subtract"
                and self.max_spikes_per_step is None)

    def constant_drive_spikes(self, voltage: np.ndarray, drive: np.ndarray, n_steps: int,
                              dt: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every spike of ``n_steps`` steps under a constant ``drive``, in closed form.

        Needs :attr:`has_closed_form` and voltages >= 0 at the start. Step 0 is an ordinary
        step (:meth:`integrate`, :meth:`fire`), leaving a remainder ``r`` in [0, 1); a neuron
        with ``d <= 0`` never spikes again (its voltage does not grow). For ``d > 0`` the k-th
        crossing is at step ``ceil((k - r) / d)`` in exact arithmetic. Step-by-step float
        arithmetic accumulates at most ~ steps (1 + d) eps of rounding: a neuron whose exact
        voltage comes closer than that to an integer (before or after a crossing, or at the end)
        is simulated step by step instead, so the result is that of step-by-step arithmetic.

        Parameters
        ----------
        voltage : ndarray, flat
            Voltages at the start; updated for step 0 only.
        drive : ndarray, flat
            Voltage added per step (:meth:`drive` of the constant current).
        n_steps : int
        dt : float
            Time step (seconds).

        Returns
        -------
        steps, flat, counts : ndarray
            One entry per (step, neuron) with spikes, in no particular order.
        """
        dtype = voltage.dtype
        v = voltage
        self.integrate(v, drive, dt)  # step 0, as step()
        first = np.empty_like(v)
        self.fire(v, first)
        f0 = np.flatnonzero(first)
        steps, flats, counts = [np.zeros(len(f0), np.int64)], [f0], [first[f0]]
        m = n_steps - 1
        if m > 0:
            eps = np.finfo(dtype).eps
            active = np.flatnonzero(drive > 0)
            r = v[active].astype(np.float64)
            d = drive[active].astype(np.float64)
            tol = 4.0 * (n_steps + 2) * (1.0 + d) * eps
            total = np.floor(r + m * d)
            bad = (total + 1) - (r + m * d) < tol
            k_count = total.astype(np.int64)
            k_count[bad] = 0
            if k_count.sum() > 2 * len(v) * n_steps:  # very high rates: step by step
                bad[:] = True
                k_count[:] = 0
            owner = np.repeat(np.arange(len(active)), k_count)
            k = np.arange(len(owner)) - np.repeat(np.cumsum(k_count) - k_count, k_count) + 1.0
            ro, do = r[owner], d[owner]
            s = np.ceil((k - ro) / do)
            after = ro + s * do - k
            before = k - (ro + (s - 1) * do)
            tol_o = tol[owner]
            wrong = (after < tol_o) | (before < tol_o) | (s < 1) | (s > m)
            bad[owner[wrong]] = True
            keep = ~bad[owner]
            owner, s = owner[keep], s[keep].astype(np.int64)
            if len(owner):
                # several crossings in one step (d > 1): one event with their count
                new = np.ones(len(owner), bool)
                new[1:] = (owner[1:] != owner[:-1]) | (s[1:] != s[:-1])
                starts = np.flatnonzero(new)
                steps.append(s[starts])
                flats.append(active[owner[starts]])
                counts.append(np.diff(np.append(starts, len(owner))).astype(dtype))
            slow = active[bad]
            if len(slow):
                vs, ds = v[slow].copy(), drive[slow]
                for step in range(1, n_steps):
                    n = np.empty_like(vs)
                    self.integrate(vs, ds, dt)
                    self.fire(vs, n)
                    hit = np.flatnonzero(n)
                    steps.append(np.full(len(hit), step, np.int64))
                    flats.append(slow[hit])
                    counts.append(n[hit])
        return (np.concatenate(steps), np.concatenate(flats),
                np.concatenate(counts).astype(dtype, copy=False))


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------

#: Neuron model name -> class (``simulate(..., neuron=name)``): a read-only
#: :class:`snnlib.registry.Registry`; add a model with :func:`register_neuron_model`.
NEURON_MODELS: Registry[str, type[NeuronModel]] = Registry(
    "neuron model", base=NeuronModel, key_attribute="name", argument="neuron",
    hint=" or a NeuronModel instance (register new ones with register_neuron_model)")


def register_neuron_model(cls: type[NeuronModel]) -> type[NeuronModel]:
    """Class decorator: make a :class:`NeuronModel` subclass available by its ``name``.

    The same as ``@NEURON_MODELS.register`` (:class:`snnlib.registry.Registry`, the idiom of
    nengo-dl's ``Converter.register``). Registering a name again replaces the model, with a
    warning.

    Raises
    ------
    TypeError
        ``cls`` is not a :class:`NeuronModel` subclass with a non-empty ``name``.
    """
    return NEURON_MODELS.register(cls, stacklevel=2)


def get_neuron_model(neuron: str | NeuronModel = "spiking_relu", *, reset: str = "subtract",
                     max_spikes_per_step: int | None = None) -> NeuronModel:
    """The neuron model ``neuron`` names (configured with ``reset``, ``max_spikes_per_step``).

    A :class:`NeuronModel` instance is returned as it is; it carries its own reset and spike
    cap, so ``reset`` and ``max_spikes_per_step`` must then be left at their defaults (or
    agree with the instance). A model that does not take these options (:attr:`~NeuronModel.
    options`; e.g. ``"lif"``, whose reset and refractory period are part of the model) must get
    them at their defaults.
    """
    given = {option: value for option, value, default in
             (("reset", reset, "subtract"), ("max_spikes_per_step", max_spikes_per_step, None))
             if value != default}
    if isinstance(neuron, NeuronModel):
        for option, value in given.items():
            if value != getattr(neuron, option):
                raise ValueError(f"{option}={value!r} conflicts with the neuron model {neuron!r}; "
                                 f"set {option} on the model instead")
        return neuron
    if not isinstance(neuron, str) or neuron not in NEURON_MODELS:
        raise NEURON_MODELS.unknown_error(neuron)
    cls = NEURON_MODELS[neuron]
    ignored = [option for option in given if option not in cls.options]
    if ignored:
        raise ValueError(f"the neuron {neuron!r} ({cls.__name__}) does not take "
                         f"{', '.join(f'{o}={given[o]!r}' for o in ignored)}: its reset and "
                         "spike limit are part of the model; leave them at their defaults")
    return cls(**{option: value for option, value in
                  (("reset", reset), ("max_spikes_per_step", max_spikes_per_step))
                  if option in cls.options})


@register_neuron_model
class SpikingReLU(NeuronModel):
    """``nengo.SpikingRectifiedLinear``: ``v += max(J, 0) * dt`` (NengoDL's spiking ReLU).

    The current is rectified every step before it is integrated, so the voltage never goes
    below its start. With ``reset="subtract"`` and ``max_spikes_per_step=None`` this is Nengo's
    neuron exactly (``n = floor(v)`` spikes, ``v -= n``).
    """

    name = "spiking_relu"

    def drive(self, current: np.ndarray, gain: float, dt: float,
              out: np.ndarray | None = None) -> np.ndarray:
        out = np.multiply(current, gain, out=out)
        np.maximum(out, 0, out=out)
        out *= dt
        return out


@register_neuron_model
class IntegrateAndFire(NeuronModel):
    """The integrate-and-fire neuron of Diehl 2015, Rueckauer 2017 and SNN Toolbox (INI).

    ``v += J * dt`` with the signed current: negative input lowers the membrane, which may go
    below zero; the neuron spikes when ``v >= 1``. It differs from :class:`SpikingReLU`
    whenever a neuron receives spikes of both signs: this one averages them, the spiking ReLU
    drops every step whose net input is negative (and so fires faster than its activation).
    """

    name = "if"
    signed_voltage = True

    def drive(self, current: np.ndarray, gain: float, dt: float,
              out: np.ndarray | None = None) -> np.ndarray:
        out = np.multiply(current, gain, out=out)
        out *= dt
        return out


def lif_parameters(tau_rc: float, tau_ref: float, min_voltage: float
                   ) -> tuple[float, float, float]:
    """A leaky neuron's ``tau_rc``, ``tau_ref`` (seconds) and ``min_voltage``, checked."""
    if not np.isscalar(tau_rc) or not np.isfinite(tau_rc) or tau_rc <= 0:
        raise ValueError(f"tau_rc={tau_rc!r} must be a positive number of seconds")
    if not np.isscalar(tau_ref) or not np.isfinite(tau_ref) or tau_ref < 0:
        raise ValueError(f"tau_ref={tau_ref!r} must be a non-negative number of seconds")
    if not np.isscalar(min_voltage) or min_voltage > 0:
        raise ValueError(f"min_voltage={min_voltage!r} must be <= 0")
    return float(tau_rc), float(tau_ref), float(min_voltage)


@register_neuron_model
class LIF(NeuronModel):
    """``nengo.LIF``: the leaky integrate-and-fire neuron, step for step as Nengo computes it.

    Each step of ``dt`` seconds: the refractory time shrinks by ``dt``; the voltage decays
    exactly towards the input ``J`` over the part of the step that is not refractory
    (``v -= (J - v) * expm1(-delta_t / tau_rc)``); the neuron spikes when ``v > 1`` (at most
    once per step), its spike time within the step is solved for (``v(t) = 1``), and it is
    held at zero for ``tau_ref`` seconds from that moment; voltages below ``min_voltage`` are
    clipped. ``J = gain * (W h + b)``: under ``scale_firing_rates=s`` the gain is ``s`` (so the
    bias current is ``s * b``) and the output of a spike is ``amplitude / s`` per ``dt``, as
    ``nengo_dl.Converter(swap_activations={...: nengo.LIF()}, scale_firing_rates=s)`` builds it.

    Unlike ReLU neurons, its rate ``1 / (tau_ref + tau_rc * log1p(1 / (J - 1)))`` (for
    ``J > 1``) is not proportional to ``J``: ``scale_firing_rates`` changes the function the
    network computes (chapter 4), and it saturates at ``1 / tau_ref``.

    Parameters
    ----------
    tau_rc : float
        Membrane time constant (seconds): how fast the voltage decays (larger: slower).
    tau_ref : float
        Refractory period (seconds) during which the voltage is held at zero after a spike.
    min_voltage : float
        Floor of the voltage (0: no negative voltages, as Nengo's default; ``-np.inf``: none).
    amplitude : float
        Output of one spike, times ``1 / dt`` (divided by the firing-rate scale ``s``).
    """

    name = "lif"
    accumulates = False
    state_variables = ("refractory_time",)
    options = ()
    event_driven_unsupported = ("the 'lif' neuron keeps a refractory time per neuron and "
                                "decays between spikes; it runs on the dense and compiled "
                                "engines only")

    def __init__(self, *, tau_rc: float = 0.02, tau_ref: float = 0.002,
                 min_voltage: float = 0.0, amplitude: float = 1.0) -> None:
        # the reset (to zero, then refractory) and the limit (one spike per step) are the model's
        super().__init__(reset="zero", max_spikes_per_step=1)
        self.tau_rc, self.tau_ref, self.min_voltage = lif_parameters(tau_rc, tau_ref, min_voltage)
        self.amplitude = float(amplitude)

    def drive(self, current: np.ndarray, gain: float, dt: float,
              out: np.ndarray | None = None) -> np.ndarray:
        """The input current ``J = gain * current`` (threshold units; 1 is the rheobase)."""
        return np.multiply(current, gain, out=out)

    def step(self, voltage: np.ndarray, current: np.ndarray, *, gain: float, dt: float,
             drive: np.ndarray, spikes: np.ndarray, state: dict | None = None) -> None:
        """One step of ``nengo.LIF.step``, in place (``drive`` receives ``J``)."""
        if state is None:
            raise ValueError("the 'lif' neuron needs its state (initial_state(shape)) in step()")
        refractory = state["refractory_time"]
        J = self.drive(current, gain, dt, out=drive)
        refractory -= dt
        # the part of the step after the refractory period ends
        delta_t = np.clip(dt - refractory, 0, dt)
        voltage -= (J - voltage) * np.expm1(-delta_t / self.tau_rc)
        spiked = voltage > 1
        spikes[...] = spiked
        # solve v(t) = 1 for the spike time, then hold the voltage at zero for tau_ref from it
        t_spike = dt + self.tau_rc * np.log1p(-(voltage[spiked] - 1) / (J[spiked] - 1))
        voltage[voltage < self.min_voltage] = self.min_voltage
        voltage[spiked] = 0
        refractory[spiked] = self.tau_ref + t_spike

    def rates(self, current: ArrayLike, gain: float = 1.0) -> np.ndarray:
        """Steady-state firing rate (Hz) for a constant ``current``: ``nengo.LIFRate``'s."""
        J = gain * np.asarray(current, dtype=np.float64)
        out = np.zeros_like(J)
        above = J > 1
        out[above] = 1 / (self.tau_ref + self.tau_rc * np.log1p(1 / (J[above] - 1)))
        return out


# --------------------------------------------------------------------------------------------
# Single neurons with constant input (chapter 3)
# --------------------------------------------------------------------------------------------

def integrate_and_fire(current: ArrayLike, n_steps: int, *, dt: float = DT,
                       reset: str = "subtract", initial_voltage: ArrayLike = 0.0,
                       neuron: str | NeuronModel = "spiking_relu"
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Simulate independent neurons driven by constant currents, through the model's step.

    With the default model, each step is ``nengo.SpikingRectifiedLinear``'s:
    ``v += max(J, 0) * dt``; the neuron emits ``n = floor(v)`` spikes (several in one step when
    ``J * dt > 1``); then the voltage is reset.

    Parameters
    ----------
    current : float or array_like
        Input current ``J`` of each neuron (1/s, i.e. Hz: the neuron's ideal firing rate).
    n_steps : int
        Number of time steps.
    dt : float
        Time step (seconds).
    reset : {"subtract", "zero"}
        "subtract" removes one unit of voltage per spike and keeps the excess charge (Nengo):
        the spike count is then ``floor(v0 + J * n_steps * dt)``, off by less than one spike.
        "zero" sets the voltage to 0 after a spike and loses the excess: rates are biased low,
        by an amount that does not shrink with longer runs.
    initial_voltage : float or array_like
        Voltage at the start (0: every neuron starts at rest), broadcast against ``current``.
    neuron : str or NeuronModel
        The model (see :data:`NEURON_MODELS`); "spiking_relu" by default.

    Returns
    -------
    voltage : ndarray, shape (n_steps,) + current shape
        Voltage after each step's reset (dimensionless, threshold 1).
    spikes : ndarray of int, shape (n_steps,) + current shape
        Spikes emitted in each step.
    """
    model = get_neuron_model(neuron, reset=reset)
    validation.integer(n_steps, "n_steps", low=1, high=MAX_STEPS)
    validation.real(dt, "dt", low=0, low_open=True, hint="seconds")
    current = _finite(current, "current")
    v = np.broadcast_to(_finite(initial_voltage, "initial_voltage"), current.shape).copy()
    low = -np.inf if model.signed_voltage else 0.0
    if v.size and not (v.min() >= low and v.max() < THRESHOLD):
        raise validation.ArgumentError(
            f"initial_voltage must be in [{low:g}, 1) (units of the threshold 1; negative only "
            f"for a signed-current neuron such as 'if'); got {v.min():g} to {v.max():g}")
    need = 16 * n_steps * max(current.size, 1)  # voltage (float64) and spikes (int64) per step
    if need > validation.memory_available():
        raise validation.ArgumentError(
            f"n_steps={n_steps} x {current.size} neurons would need "
            f"{validation.format_bytes(need)} for the traces, more than the memory available")
    drive, n = np.empty_like(v), np.empty_like(v)
    state = model.initial_state(current.shape)
    voltage = np.empty((n_steps,) + current.shape)
    spikes = np.empty((n_steps,) + current.shape, dtype=np.int64)
    for t in range(n_steps):
        model.step(v, current, gain=1.0, dt=dt, drive=drive, spikes=n,
                   **({"state": state} if state else {}))
        voltage[t], spikes[t] = v, n
    return voltage, spikes


def measured_rate(current: ArrayLike, n_steps: int, *, dt: float = DT, reset: str = "subtract",
                  initial_voltage: ArrayLike = 0.0) -> np.ndarray:
    """Firing rate read from the spike count of an IF neuron over ``n_steps`` steps.

    Parameters
    ----------
    current, n_steps, dt, reset, initial_voltage
        As :func:`integrate_and_fire`.

    Returns
    -------
    ndarray, current shape
        Spikes / (``n_steps * dt``) in Hz. It can only take multiples of
        :func:`rate_error_bound`.
    """
    _, spikes = integrate_and_fire(current, n_steps, dt=dt, reset=reset,
                                   initial_voltage=initial_voltage)
    return spikes.sum(axis=0) / (n_steps * dt)


def rate_error_bound(n_steps: int, dt: float = DT) -> float:
    """Resolution of a rate read from spike counts: one spike in ``n_steps * dt`` seconds (Hz).

    With reset by subtraction and the neuron starting at rest, the measured rate of
    :func:`measured_rate` is never further than this from the true rate ``J`` (it is
    ``floor(J T) / T`` with ``T = n_steps * dt``), so the error shrinks as 1 / T.
    """
    validation.integer(n_steps, "n_steps", low=1)
    validation.real(dt, "dt", low=0, low_open=True, hint="seconds")
    return 1.0 / (n_steps * dt)


# --------------------------------------------------------------------------------------------
# Rate curves under firing-rate scaling (chapter 4)
# --------------------------------------------------------------------------------------------

def scaled_rates(neuron_type: Any, x: ArrayLike, scale: float) -> np.ndarray:
    """Average output of a neuron under ``scale_firing_rates=scale``: ``rates(scale * x) / scale``.

    ``nengo_dl.Converter`` gives each neuron gain ``s`` (its bias is multiplied by ``s`` too) and
    output amplitude ``1 / s``, so a neuron whose ANN unit computes ``x = W h + b`` fires at
    ``rates(s * x)`` Hz and passes on ``rates(s * x) / s`` on average. For ReLU this is ``x``
    (positively homogeneous: ``max(0, s x) / s = max(0, x)``) whatever ``s``; for a nonlinear
    neuron such as LIF it is a different function for every ``s``.

    Parameters
    ----------
    neuron_type : nengo.neurons.NeuronType or None
        E.g. ``nengo.RectifiedLinear()`` or ``nengo.LIF()``; its ``rates(x, gain, bias)`` (Hz,
        including its own amplitude) is used. None: the ReLU ``max(0, s x)`` without nengo.
    x : array_like
        Input of the ANN unit (activation units), any shape.
    scale : float
        Firing-rate scale ``s`` > 0.

    Returns
    -------
    ndarray, shape of ``x``
        The neuron's average output in ANN activation units.
    """
    validation.real(scale, "scale", low=0, low_open=True, hint="Hz per unit of activation")
    x = np.asarray(x, dtype=np.float64)
    if neuron_type is None:
        return np.maximum(scale * x, 0.0) / scale
    rates = neuron_type.rates(x.ravel(), scale, 0.0)
    return np.asarray(rates, dtype=np.float64).reshape(x.shape) / scale


def scaled_forward(network: SpikingNetwork, x: np.ndarray, *,
                   scale_firing_rates: float | dict = 1.0, neuron_type: Any = None,
                   batch_size: int = 256) -> np.ndarray:
    """Rate-mode output of a converted network whose neurons are scaled as by NengoDL.

    Every spiking layer computes ``scaled_rates(neuron_type, W h + b, s)`` instead of
    ``max(0, W h + b)``; there are no spikes, so this isolates what the scaling does to the
    function the network computes (in float64).

    Parameters
    ----------
    network : SpikingNetwork
        From :func:`snnlib.convert.convert`.
    x : ndarray, shape (batch,) + input shape
        Inputs.
    scale_firing_rates : float or dict
        As in :func:`snnlib.sim.simulator.simulate`: one scale (Hz per unit of activation) for every
        spiking layer, or a dict layer name -> scale (missing layers get 1).
    neuron_type : nengo.neurons.NeuronType or None
        Rate curve of the neurons; None is the ReLU (the function the ANN computes at any scale).
    batch_size : int
        Examples per chunk (bounds memory).

    Returns
    -------
    ndarray, shape (batch,) + output shape
        The network's output (Keras output units).
    """
    x = network.check_input(x)
    scales = network.firing_rate_scales(scale_firing_rates)
    validation.integer(batch_size, "batch_size", low=1)
    outputs = []
    def step(stage: Any, h: Any) -> np.ndarray:
        z = stage.linear(h)
        if stage.spiking:
            return scaled_rates(neuron_type, z, scales[stage.name])
        return stage.activate(z)  # a rectified readout (no neurons) keeps its ReLU

    for start in range(0, len(x), batch_size):
        outputs.append(network.run(x[start:start + batch_size].astype(np.float64), step))
    return np.concatenate(outputs)
