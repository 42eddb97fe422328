"""Per-layer firing-rate scales from measured mean rates: NengoLoihi's keras-to-loihi practice.

NengoLoihi's "Converting a Keras model to an SNN on Loihi" example (nengo-loihi PR 281, with
PR 288's fix that scales every layer, the dense one included; commit c8713ad, 2020) does not
normalize the weights. It keeps them, measures each layer's mean rate in rate mode at scale 1
over the neurons that are active on an input, and gives each layer its own
``scale_firing_rates``: ``s_l = target / mean_rate_l`` with a target of 200 Hz, because Loihi's
neurons fire at most once per step and their rates deviate from the ReLU above about 250 Hz.

:func:`mean_active_rates` measures those rates, :func:`target_rate_scales` gives the dict to pass
as ``scale_firing_rates`` (to :func:`snnlib.simulate` or NengoDL's converter). Unlike the
literature's lambda, a *mean* over active neurons puts the busiest neurons well above the
target (a neuron with twice the mean activation fires at 400 Hz, and Loihi caps it): the two
rules are compared in chapter 12.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from snnlib import validation

if TYPE_CHECKING:
    from snnlib.network import SpikingNetwork

__all__ = [
    "TARGET_RATE",
    "mean_active_rates",
    "target_rate_scales",
]

#: NengoLoihi's example's target mean rate (Hz).
TARGET_RATE = 200.0


def mean_active_rates(network: SpikingNetwork, x: np.ndarray, *, batch_size: int = 256
                      ) -> dict[str, float]:
    """Each spiking layer's mean rate-mode activation over its active neurons.

    Per example, the mean over the neurons whose activation is positive; then the mean over
    the examples (NengoLoihi's example's ``mean_rates``, which it measured on a few images).
    An example on which no neuron of the layer is active is left out of that layer's mean. At
    scale 1 an activation is a rate in Hz, so this is the layer's mean rate at
    ``scale_firing_rates=1``.

    Returns
    -------
    dict
        Spiking layer name -> mean active activation (network units: Keras units when the
        network is not normalized).
    """
    _, outputs = network.forward(x, dtype=np.float64, return_all=True, batch_size=batch_size)
    rates = {}
    for name in network.spiking_layers:
        a = outputs[name].reshape(len(x), -1)
        active = a > 0
        count = active.sum(axis=1)
        per_example = np.where(count > 0, (a * active).sum(axis=1) / np.maximum(count, 1), np.nan)
        if np.all(np.isnan(per_example)):
            raise ValueError(f"layer {name!r} has no active neuron on these inputs: its rate "
                             "cannot be measured; use other inputs or a fixed scale")
        rates[name] = float(np.nanmean(per_example))
    return rates


def target_rate_scales(network: SpikingNetwork, x: np.ndarray, *,
                       target_rate: float = TARGET_RATE, batch_size: int = 256
                       ) -> dict[str, float]:
    """``scale_firing_rates`` per layer that brings each layer's mean active rate to the target.

    Parameters
    ----------
    network : SpikingNetwork
        Converted; usually not normalized (NengoLoihi's example keeps the Keras weights).
    x : ndarray
        Inputs to measure on (calibration data).
    target_rate : float
        Hz (200 in NengoLoihi's example; keep it below ~250 Hz for Loihi's neurons at 1 ms).

    Returns
    -------
    dict
        Spiking layer name -> ``target_rate / mean_active_rates[name]``.
    """
    validation.real(target_rate, "target_rate", low=0, low_open=True, hint="Hz")
    return {name: target_rate / rate
            for name, rate in mean_active_rates(network, x, batch_size=batch_size).items()}
