"""Corrections for a short run after conversion: bias and potential calibration, threshold shift.

A converted network is exact in rate mode; run for ``T`` steps, each spiking layer's average
output differs from the ANN's activation by a systematic part (the floor of the spike count,
the clip at one spike per step, errors passed on from earlier layers) and a part that varies
from input to input. The corrections here remove the systematic part on calibration data
(training images; never the test split), layer by layer in order, each layer measured with
the earlier ones already corrected:

- :func:`calibrate_bias`: Li et al. (ICML 2021, "A free lunch from ANN: towards efficient,
  accurate spiking neural networks calibration"; code: github.com/yhhhli/SNN_Calibration,
  ``emp_bias_corr`` in ``models/calibration.py``, "light" pipeline): each output channel's
  bias is lowered by the mean, over the calibration images and positions, of the spiking
  layer's average output minus the ANN's activation.
- :func:`calibrate_potential`: the same paper's potential correction (``correct_mempot``, the
  repository's "advanced" pipeline on CIFAR): each neuron's start is lowered by the charge
  it had in excess over the run (``T`` times its mean error, in units of the threshold), or
  raised by the charge it lacked, which it integrates once instead of at every step.
- :func:`threshold_shift`: Deng & Gu (ICLR 2021, "Optimal conversion of conventional
  artificial neural networks to spiking neural networks"): every spiking layer's input gets
  ``theta / (2 T)`` at each step (the same repository's ``enable_shift``), which turns the
  floor of the spike count into a rounding after ``T`` steps. With reset by subtraction and no
  clipping, that is the same charge as the book's start at half the threshold
  (``initial_voltage=0.5``, Bu et al., AAAI 2022), delivered over the run instead of at its
  start: the spike counts after ``T`` steps agree, earlier ones differ.

Li et al.'s weight calibration (an optimization of each layer's weights on the calibration
set) and their search of lambda by the smallest error of a clipped floor are not built.
Units: a normalized network's activations are in units of lambda; a spike has height
``1 / (s dt)`` (``s`` the layer's ``scale_firing_rates``), and the voltage is in units of the
threshold.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np

from snnlib import validation
from snnlib.config import DT
from snnlib.network import SpikingNetwork, Stage

__all__ = ["MAX_START", "NEURONS", "TARGETS", "calibrate_bias", "calibrate_potential",
           "layer_errors", "rate_targets", "scale_of", "threshold_shift"]

#: What a layer's average output is compared with (:func:`layer_errors`).
TARGETS = ("clipped", "relu")

#: The neuron models the calibration is built for (spikes of height 1 / (s dt), reset by
#: subtraction, a rate proportional to the input).
NEURONS = ("if", "spiking_relu")

#: Largest start voltage a correction may give (just below the threshold 1, exact in float32):
#: a start at or above the threshold would fire before any input.
MAX_START = 1.0 - 2.0 ** -20


def _spiking(network: SpikingNetwork) -> list[Stage]:
    return [stage for stage in network.stages if stage.spiking]


def scale_of(scale_firing_rates: float | Mapping, name: str) -> float:
    """The firing-rate scale ``s`` of spiking layer ``name`` under ``simulate``'s setting."""
    if isinstance(scale_firing_rates, Mapping):
        return float(scale_firing_rates.get(name, 1.0))  # missing layers: 1, as nengo_dl
    return float(scale_firing_rates)


def _checked(network: SpikingNetwork, x: np.ndarray, n_steps: int, *,
             calibrated: bool = False) -> tuple:
    if not isinstance(network, SpikingNetwork):
        raise TypeError(f"network must be a SpikingNetwork (from snnlib.convert), got "
                        f"{type(network).__name__}")
    if getattr(network, "quantization", None) is not None:
        raise ValueError("this network is quantized: calibrate the float network, then "
                         "quantize it")
    if not calibrated and getattr(network, "calibration", None) is not None:
        raise ValueError(f"this network is already calibrated ({network.calibration}); "
                         "calibrate the network as converted")
    n_steps = validation.integer(n_steps, "n_steps", low=1)
    x = network.check_input(x)
    if not _spiking(network):
        raise ValueError("the network has no spiking layer: nothing to calibrate")
    return x, n_steps


def _settings(simulation: Mapping) -> dict:
    """The settings a calibration holds for (a run with others is not calibrated)."""
    return {"scale_firing_rates": simulation.get("scale_firing_rates", 1.0),
            "dt": float(simulation.get("dt", DT))}


def _channel_mean(values: np.ndarray) -> np.ndarray:
    """Mean over every axis but the last (examples and positions): one value per channel."""
    return values.reshape(-1, values.shape[-1]).mean(axis=0)


def layer_errors(network: SpikingNetwork, x: np.ndarray, n_steps: int, *,
                 initial_voltage: Any = 0.0, target: str = "clipped",
                 reference: SpikingNetwork | None = None, **simulation: Any
                 ) -> dict[str, np.ndarray]:
    """Each spiking layer's average output over ``n_steps`` steps minus its target, per
    example and neuron (units of lambda).

    Parameters
    ----------
    network : SpikingNetwork
        The network simulated.
    x : ndarray
        Inputs.
    n_steps : int
        The run's length T.
    target : {"clipped", "relu"}
        What the layer should output. "clipped": the rate-mode activations with every spiking
        layer capped at one spike per step (``max_spikes_per_step=1``: what such neurons can
        give; a QCFS network's function without its quantization). "relu": the rate-mode
        activations as they are (Li et al.'s code, whose ANN has no ceiling).
    reference : SpikingNetwork, optional
        The network whose rate mode is the target (default: ``network``). A calibration
        passes the network as converted, so that the target stays the ANN while the copy's
        biases change (Li et al. compute it with the original weights and biases).
    initial_voltage, **simulation
        ``simulate``'s settings (``scale_firing_rates``, ``neuron``, ...). The neuron must be
        "if" or "spiking_relu" (the papers' neurons; the others have a rate curve of their
        own), with its default amplitude.

    Returns
    -------
    dict
        Layer name -> array (n,) + the layer's output shape.
    """
    from snnlib.sim.simulator import simulate

    x, n_steps = _checked(network, x, n_steps, calibrated=True)
    validation.choice(target, "target", TARGETS)
    neuron = simulation.get("neuron", "spiking_relu")
    if not isinstance(neuron, str) or neuron not in NEURONS:
        raise validation.ArgumentError(
            f"neuron={neuron!r}: the calibration is built for the neurons {NEURONS} (a spike "
            "of height 1 / (s dt), reset by subtraction); another neuron model has a rate "
            "curve of its own")
    dt = float(simulation.get("dt", DT))
    scales = simulation.get("scale_firing_rates", 1.0)
    capped = simulation.get("max_spikes_per_step") == 1 and target == "clipped"
    ceilings = {stage.name: 1.0 / (scale_of(scales, stage.name) * dt) if capped else np.inf
                for stage in _spiking(network)}
    target_values = rate_targets(network if reference is None else reference, x, ceilings)
    result = simulate(network, x, n_steps=n_steps, initial_voltage=initial_voltage,
                      keep_counts=True, **simulation)
    return {stage.name: result.spike_counts[stage.name] / (n_steps * scale_of(scales, stage.name)
                                                          * dt) - target_values[stage.name]
            for stage in _spiking(network)}


def rate_targets(network: SpikingNetwork, x: np.ndarray, ceilings: Mapping[str, float], *,
                 batch_size: int = 256) -> dict[str, np.ndarray]:
    """Rate-mode activations (units of lambda) with each spiking layer capped at its
    ceiling (np.inf: not capped), the cap passed on to the layers after it."""
    def step(stage: Stage, h: Any) -> np.ndarray:
        rates = stage.rates(h)
        return np.minimum(rates, ceilings[stage.name]) if stage.spiking else rates

    parts: dict[str, list] = {stage.name: [] for stage in _spiking(network)}
    for start in range(0, len(x), batch_size):
        _, every = network.run(x[start:start + batch_size].astype(np.float64), step, keep=True)
        for name in parts:
            parts[name].append(every[name])
    return {name: np.concatenate(values) for name, values in parts.items()}


def calibrate_bias(network: SpikingNetwork, x: np.ndarray, n_steps: int, *,
                   initial_voltage: Any = 0.5, target: str = "clipped", **simulation: Any
                   ) -> SpikingNetwork:
    """Li et al.'s bias correction for a run of ``n_steps`` steps (a new network).

    Layer by layer in order: simulate the network (earlier layers corrected) on ``x`` for
    ``n_steps`` steps, take the mean of (average output - rate-mode activation) over the
    examples and positions of each output channel, and subtract it from that channel's bias
    (``b <- b - mean error``; a layer without bias gets one). The target is the rate-mode
    activation, capped at one spike per step where the neurons are (``target``).

    Parameters
    ----------
    network : SpikingNetwork
        Converted and normalized (not quantized or calibrated).
    x : ndarray
        Calibration inputs (training images; the paper uses about 1,000, its code one batch).
    n_steps : int
        T of the run it is calibrated for: the correction holds for that T.
    initial_voltage : float, str or dict
        As ``simulate`` (default 0.5, the book's recommended start).
    target : {"clipped", "relu"}
        See :func:`layer_errors`.
    **simulation
        ``simulate``'s other settings, e.g. ``**snnlib.zoo.RECOMMENDED_SIMULATION`` without
        ``initial_voltage``.

    Returns
    -------
    SpikingNetwork
        A copy with the corrected biases; ``calibration`` records the method and ``n_steps``.
        Normalizing it again is refused (that would rebuild the biases from Keras).
    """
    x, n_steps = _checked(network, x, n_steps)
    calibrated = copy.deepcopy(network)
    calibrated.calibration = None
    for stage in _spiking(calibrated):
        error = layer_errors(calibrated, x, n_steps, initial_voltage=initial_voltage,
                             target=target, reference=network, **simulation)[stage.name]
        correction = _channel_mean(error)
        bias = np.zeros(stage.output_shape[-1]) if stage.bias is None else \
            np.asarray(stage.bias, dtype=np.float64)
        stage.bias = bias - correction
    calibrated.calibration = {"method": "bias", "n_steps": n_steps, "examples": len(x),
                              **_settings(simulation)}
    return calibrated


def calibrate_potential(network: SpikingNetwork, x: np.ndarray, n_steps: int, *,
                        initial_voltage: float = 0.5, target: str = "clipped",
                        **simulation: Any) -> dict[str, np.ndarray]:
    """Li et al.'s potential correction: per-neuron start voltages for a run of ``n_steps``.

    Layer by layer in order: simulate with the earlier layers' corrected starts, take each
    neuron's mean error over the examples, ``e`` (units of lambda), and start it at
    ``initial_voltage - T * s * dt * e`` (the charge its average input lacked over the run).
    A start is capped just below the threshold (:data:`MAX_START`) and, for a neuron that
    cannot go below zero, at 0.

    Parameters
    ----------
    network : SpikingNetwork
    x : ndarray
        Calibration inputs.
    n_steps : int
        T of the run it is calibrated for.
    initial_voltage : float
        The start it corrects (default 0.5).
    target : {"clipped", "relu"}
        See :func:`layer_errors`.
    **simulation
        ``simulate``'s other settings.

    Returns
    -------
    dict
        Spiking layer name -> start voltages of the layer's output shape: pass it as
        ``simulate(..., initial_voltage=...)``.
    """
    from snnlib.sim.neurons import get_neuron_model

    x, n_steps = _checked(network, x, n_steps)
    initial_voltage = validation.real(initial_voltage, "initial_voltage")
    dt = float(simulation.get("dt", DT))
    scales = simulation.get("scale_firing_rates", 1.0)
    neuron = simulation.get("neuron", "spiking_relu")
    signed = neuron.signed_voltage if not isinstance(neuron, str) else \
        get_neuron_model(neuron).signed_voltage
    starts = {stage.name: np.full(stage.output_shape, initial_voltage)
              for stage in _spiking(network)}
    for stage in _spiking(network):
        error = layer_errors(network, x, n_steps, initial_voltage=starts, target=target,
                             **simulation)[stage.name].mean(axis=0)
        start = initial_voltage - n_steps * scale_of(scales, stage.name) * dt * error
        starts[stage.name] = np.clip(start, -np.inf if signed else 0.0, MAX_START)
    return starts


def threshold_shift(network: SpikingNetwork, n_steps: int, *,
                    scale_firing_rates: float | Mapping, dt: float = DT) -> SpikingNetwork:
    """Deng & Gu's shift: every spiking layer's bias raised by ``theta / (2 T)`` per step.

    Run the result with ``initial_voltage=0``: after ``n_steps`` steps each neuron has received
    half a threshold more charge, as a start at 0.5 gives at once. The bias grows by
    ``1 / (2 T s dt)`` in units of lambda (``s`` the layer's ``scale_firing_rates``).

    Parameters
    ----------
    network : SpikingNetwork
        Converted and normalized.
    n_steps : int
        T, the run's length.
    scale_firing_rates : float or dict
        As ``simulate``, required: the shift is per step, so it depends on the spike height
        (with the book's recipe, 1000).
    dt : float
        Time step (seconds).

    Returns
    -------
    SpikingNetwork
        A copy with the shifted biases (``calibration`` records the method, ``n_steps``,
        ``scale_firing_rates`` and ``dt``: run it with those).
    """
    n_steps = validation.integer(n_steps, "n_steps", low=1)
    dt = validation.real(dt, "dt", low=0, low_open=True)
    if not isinstance(scale_firing_rates, Mapping):
        validation.real(scale_firing_rates, "scale_firing_rates", low=0, low_open=True)
    _checked(network, np.zeros((1,) + network.input_shape), n_steps)
    shifted = copy.deepcopy(network)
    for stage in _spiking(shifted):
        bias = np.zeros(stage.output_shape[-1]) if stage.bias is None else \
            np.asarray(stage.bias, dtype=np.float64)
        stage.bias = bias + 1.0 / (2 * n_steps * scale_of(scale_firing_rates, stage.name) * dt)
    shifted.calibration = {"method": "threshold_shift", "n_steps": n_steps,
                           "scale_firing_rates": scale_firing_rates, "dt": dt}
    return shifted
