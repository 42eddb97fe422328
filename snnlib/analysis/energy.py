"""Energy per inference: counted operations times published energies per operation.

A rough estimate, in the form and with the constants of KerasSpiking's ``ModelEnergy``
(``keras_spiking/model_energy.py``, version 0.3.0; tested against it in
``tests/test_energy.py``):

- on a **spiking** device (Loihi, SpiNNaker, SpiNNaker 2), an inference costs its synaptic
  operations (each spike times the synapses it drives, :func:`snnlib.synaptic_operations`)
  times ``energy_per_synop``, plus every spiking neuron's update at every time step times
  ``energy_per_neuron``;
- on a **non-spiking** device (CPU, GPU, ARM), the ANN costs one multiply-accumulate per
  connection and one per neuron (``ModelEnergy`` counts a neuron update as one MAC), times the
  device's energy per operation.

snnlib counts the synaptic operations from the spikes of a run instead of ``ModelEnergy``'s
mean input rate times the connections (the two agree for dense layers; at a convolution's
border a spike drives fewer synapses, which counting sees). Its one addition is the **input
layer**: the first layer reads the image as a constant current (as NengoDL's converter builds
it, and ``simulate``'s default ``input="constant"``), so its MACs are computed once per
inference; they are charged at the device's energy per synaptic operation and reported apart
(``input``). A run with ``input="poisson"`` would pay for the input spikes at every step
instead; it is not costed here.

The ANN's count (:func:`ann_energy`) is snnlib's: exact connections at "same" padding, the
additions of average pooling, and a neuron update for each ReLU neuron (not for the readout).
``ModelEnergy`` counts a convolution's padded positions too, no pooling, and a neuron for every
non-linear activation (a softmax readout included), so the two agree on networks of dense and
"valid" convolution layers (tested) and differ by some percent elsewhere (about 11 % less than
``ModelEnergy`` on the book's deeper network).

Caveats (``ModelEnergy``'s own): the numbers leave out memory traffic, input/output and idle
power, which dominate on real chips; they are for comparing conversions, not for a datasheet.

Sources of the constants (joules per operation):

- CPU (Intel i7-4960X), GPU (Nvidia GTX Titan Black), ARM (Cortex-A): Degnan, Marr and Hasler
  2015, "Assessing trends in performance per watt for signal processing applications",
  IEEE TVLSI 24(1):58-66.
- Loihi: Davies et al. 2018, "Loihi: a neuromorphic manycore processor with on-chip learning",
  IEEE Micro 38(1):82-99 (23.6 pJ per synaptic spike operation plus 3.5 pJ, as
  KerasSpiking adds them; 81 pJ per neuron update).
- SpiNNaker, SpiNNaker 2: Höppner et al. 2019, "Dynamic power management for neuromorphic
  many-core systems", IEEE TCAS-I 66(8):2973-2986.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from snnlib.analysis.measures import ann_operations, spiking_neurons, synaptic_operations

if TYPE_CHECKING:
    from snnlib.network import SpikingNetwork
    from snnlib.sim.simulator import SimulationResult

__all__ = [
    "Device",
    "DEVICES",
    "get_device",
    "snn_energy",
    "ann_energy",
    "energy_table",
]


@dataclass(frozen=True)
class Device:
    """A device's energy per operation (joules), and whether it runs spikes.

    Attributes
    ----------
    spiking : bool
        True: it runs the spiking network (energy per synaptic operation and per neuron update);
        False: it runs the ANN (energy per MAC in both fields).
    energy_per_synop, energy_per_neuron : float
        Joules per synaptic operation (MAC) and per neuron update.
    source : str
        Where the numbers come from.
    """

    spiking: bool
    energy_per_synop: float
    energy_per_neuron: float
    source: str


_DEGNAN = "Degnan, Marr & Hasler 2015, IEEE TVLSI 24(1)"
_HOPPNER = "Höppner et al. 2019, IEEE TCAS-I 66(8)"

#: Device name -> :class:`Device`: KerasSpiking 0.3.0's ``ModelEnergy.devices``.
DEVICES: dict[str, Device] = {
    "cpu": Device(False, 8.6e-9, 8.6e-9, _DEGNAN + " (Intel i7-4960X)"),
    "gpu": Device(False, 0.3e-9, 0.3e-9, _DEGNAN + " (Nvidia GTX Titan Black)"),
    "arm": Device(False, 0.9e-9, 0.9e-9, _DEGNAN + " (ARM Cortex-A)"),
    "loihi": Device(True, (23.6 + 3.5) * 1e-12, 81e-12, "Davies et al. 2018, IEEE Micro 38(1)"),
    "spinnaker": Device(True, 13.3e-9, 26e-9, _HOPPNER),
    "spinnaker2": Device(True, 450e-12, 2.19e-9, _HOPPNER),
}


def get_device(device: str) -> Device:
    """The :class:`Device` called ``device``; a ValueError that lists the names otherwise."""
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; use one of {sorted(DEVICES)}")
    return DEVICES[device]


def _input_macs(network: SpikingNetwork) -> int:
    """MACs of the stages the input reaches before any neuron (computed once per inference).

    A stage counts when everything it reads is the input or such a stage without neurons: in a
    chain, the stages up to the first spiking one; in a graph, every branch that reads the input.
    """
    macs = ann_operations(network, by_layer=True)
    analog = []
    for _i, sources in enumerate(network.sources()):
        analog.append(all(j < 0 or (analog[j] and not network.stages[j].spiking)
                          for j in sources))
    return int(sum(macs.get(stage.name, 0)
                   for stage, reached in zip(network.stages, analog, strict=True) if reached))


def snn_energy(network: SpikingNetwork, result: SimulationResult, device: str = "loihi"
               ) -> dict[str, float]:
    """Energy of one inference of the spiking network on a spiking ``device`` (joules).

    Parameters
    ----------
    network : SpikingNetwork
        The network that was simulated.
    result : SimulationResult
        Its run: the synaptic operations and neuron updates of all ``result.n_steps`` steps
        are charged (simulate only up to the latency you report, see the chapter).
    device : str
        A spiking device of :data:`DEVICES` ("loihi", "spinnaker", "spinnaker2").

    Returns
    -------
    dict
        ``synops`` and ``neuron_updates`` (counts per example), ``input`` (the input layer's
        MACs), and the joules ``synop_energy``, ``neuron_energy``, ``input_energy``, ``total``.
    """
    spec = get_device(device)
    if not spec.spiking:
        raise ValueError(f"device {device!r} does not run spikes; use ann_energy for it (or "
                         f"one of {sorted(k for k, v in DEVICES.items() if v.spiking)})")
    synops = synaptic_operations(network, result)["total"]
    updates = spiking_neurons(network) * result.n_steps
    macs = _input_macs(network)
    out = {"synops": synops, "neuron_updates": float(updates), "input": float(macs),
           "synop_energy": synops * spec.energy_per_synop,
           "neuron_energy": updates * spec.energy_per_neuron,
           "input_energy": macs * spec.energy_per_synop}
    out["total"] = out["synop_energy"] + out["neuron_energy"] + out["input_energy"]
    return out


def ann_energy(network: SpikingNetwork, device: str = "cpu") -> dict[str, float]:
    """Energy of one inference of the ANN on a non-spiking ``device`` (joules).

    One MAC per connection (:func:`snnlib.ann_operations`) and one per ReLU neuron, the
    readout excluded (see the module's docstring for how this differs from ``ModelEnergy``).

    Returns
    -------
    dict
        ``macs``, ``neurons`` (counts) and ``total`` (joules).
    """
    spec = get_device(device)
    if spec.spiking:
        raise ValueError(f"device {device!r} runs spikes; use snn_energy for it (or one of "
                         f"{sorted(k for k, v in DEVICES.items() if not v.spiking)})")
    macs, neurons = ann_operations(network), spiking_neurons(network)
    return {"macs": float(macs), "neurons": float(neurons),
            "total": macs * spec.energy_per_synop + neurons * spec.energy_per_neuron}


def energy_table(network: SpikingNetwork, runs: dict[str, SimulationResult], *,
                 ann_devices: tuple = ("cpu", "gpu", "arm"),
                 snn_devices: tuple = ("loihi", "spinnaker2", "spinnaker")) -> pd.DataFrame:
    """Joules per inference: the ANN on each non-spiking device, each run on each spiking one.

    Parameters
    ----------
    network : SpikingNetwork
        The network the runs simulated (its ANN is the one costed on the other devices).
    runs : dict
        Label -> :class:`SimulationResult` (e.g. one per quantization, each run up to its
        latency).

    Returns
    -------
    pandas.DataFrame
        One row per (model, device): ``model``, ``device``, ``operations`` (MACs or synaptic
        operations per inference), ``energy_J``.
    """
    rows = []
    for device in ann_devices:
        cost = ann_energy(network, device)
        rows.append({"model": "ANN", "device": device, "operations": cost["macs"],
                     "energy_J": cost["total"]})
    for label, result in runs.items():
        for device in snn_devices:
            cost = snn_energy(network, result, device)
            rows.append({"model": label, "device": device, "operations": cost["synops"],
                         "energy_J": cost["total"]})
    table = pd.DataFrame(rows)
    table["energy_J"] = table["energy_J"].astype(np.float64)
    return table
