"""snnlib: from a trained Keras network to a spiking one, with every step visible.

The companion library of the book "How are the weights computed for the SNN?". One subpackage
per stage of the pipeline, each importing only the ones listed before it:

- :mod:`snnlib.config`, :mod:`snnlib.validation`, :mod:`snnlib.progress`, :mod:`snnlib.claims`:
  shared defaults (the time step ``DT``), argument checks, progress lines, the chapters' checks.
- :mod:`snnlib.network`: the converted network, :class:`SpikingNetwork`, a graph of stages
  (:mod:`~snnlib.network.graph`), and its linear operations, one class per layer type
  (:mod:`~snnlib.network.ops`).
- :mod:`snnlib.analysis`: what a run is scored by: rates, spikes, synaptic operations
  (:mod:`~snnlib.analysis.measures`), the measurement protocol (:mod:`~snnlib.analysis.protocol`),
  intervals and paired tests (:mod:`~snnlib.analysis.stats`).
- :mod:`snnlib.normalize`: data-based weight normalization (Diehl's max, Rueckauer's
  percentile, your own rule; per layer or per channel; across joins) and streamed percentiles.
- :mod:`snnlib.convert`: Keras -> :class:`SpikingNetwork`, one registered converter per layer
  type (:mod:`snnlib.convert.layers`, a module per layer family); ``check`` and ``verify``.
- :mod:`snnlib.sim`: neuron models, synapses, the simulator with its dense and event-driven
  engines, spike counts.
- :mod:`snnlib.experiments`: diagnostics, parameter sweeps, trade-offs, and every figure.
- :mod:`snnlib.ann`: the ANN side: the MNIST digits (offline), the book's models and their
  training, the rate regularizer, and the zoo of typical Keras models with their conversion
  measured.
- :mod:`snnlib.nengo`: the same network built and run by NengoDL, the literature's
  normalization as its ``scale_firing_rates``, the papers' neuron as a Nengo type, the reader's
  workflow measured in ``nengo_dl.Simulator``.

The names below (``snnlib.convert``, ``snnlib.simulate``, ...) are the public API. The flat
module names of snnlib 0.1 (``snnlib.simulate`` as a module, ``snnlib.ops``,
``snnlib.nengo_bridge``, ...) still import, with a ``FutureWarning`` naming the new place.

Extending it (a neuron model, a layer type, a join, a normalization rule): see "Extending
snnlib" in the README.
"""
import os
import warnings

# TensorFlow prints C++ log lines at import unless told otherwise; they differ from run to run
# and would break the notebooks' stored outputs. setdefault leaves a user's own choice alone.
# This is why each chapter imports snnlib first: one line instead of the usual boilerplate.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The lock pins nengo 4.1 beside nengo-dl 3.6.0 and nengo-loihi 1.1.0, which say at import that
# they were not tested with it; this repository tests the three together (tests/test_nengo_*.py,
# tests/test_loihi.py), so those two notices, and only they, are hidden.
warnings.filterwarnings("ignore", message="This version of NengoDL has not been tested",
                        category=UserWarning)
warnings.filterwarnings("ignore", message="This version of `nengo_loihi`", category=UserWarning)

from snnlib import _moved, claims  # noqa: E402, F401
from snnlib.analysis import stats  # noqa: E402, F401  (snnlib.stats)
from snnlib.analysis.measures import (  # noqa: E402
    ann_operations,
    fan_out,
    spikes_per_example,
    synaptic_operations,
)
from snnlib.ann import zoo  # noqa: E402, F401  (snnlib.zoo)
from snnlib.ann.activations import SoftLIF, soft_lif  # noqa: E402
from snnlib.ann.data import DataUnavailableError, load_mnist, mnist_cache_path  # noqa: E402
from snnlib.ann.models import (  # noqa: E402
    PRETRAINED_INFO,
    PRETRAINED_WEIGHTS,
    accuracy,
    build_convnet,
    build_deep_convnet,
    cache_dir,
    load_pretrained_convnet,
    load_pretrained_deep_convnet,
    load_pretrained_soft_lif_convnet,
    load_weights,
    save_weights,
    train_convnet,
    train_deep_convnet,
)
from snnlib.ann.qcfs import QCFS, train_qcfs, use_qcfs  # noqa: E402
from snnlib.config import DT  # noqa: E402
from snnlib.convert import (  # noqa: E402
    ConversionError,
    LayerConverter,
    check,
    convert,
    verify,
)
from snnlib.convert import register as register_converter  # noqa: E402
from snnlib.experiments.diagnostics import (  # noqa: E402
    firing_rate_summary,
    layer_rate_correlation,
    sweep,
)
from snnlib.experiments.plots import (  # noqa: E402
    plot_accuracy_against_steps,
    plot_accuracy_over_time,
    plot_digits,
    plot_filtered_spike_train,
    plot_heatmap,
    plot_output_over_time,
    plot_rate_correlation,
    plot_rate_histograms,
    plot_rate_quantization,
    plot_scaled_rate_curves,
    plot_spike_raster,
    plot_step_response,
    plot_tradeoffs,
    plot_training_history,
    plot_voltage_trace,
)
from snnlib.nengo.bridge import (  # noqa: E402
    build_nengo_converter,
    nengo_scale_firing_rates,
    run_nengo,
)
from snnlib.network import SpikingNetwork  # noqa: E402
from snnlib.network.ops import Op  # noqa: E402
from snnlib.normalize.quantize import quantization_report, quantize  # noqa: E402
from snnlib.normalize.rules import NormalizationRule, normalize, register_normalization  # noqa: E402
from snnlib.sim.calibration import (  # noqa: E402
    calibrate_bias,
    calibrate_potential,
    threshold_shift,
)
from snnlib.sim.loihi import LoihiLIF, LoihiSpikingReLU  # noqa: E402
from snnlib.sim.neurons import (  # noqa: E402
    LIF,
    IntegrateAndFire,
    NeuronModel,
    SpikingReLU,
    register_neuron_model,
)
from snnlib.sim.simulator import SimulationResult, simulate  # noqa: E402
from snnlib.sim.synapses import Lowpass  # noqa: E402

_moved.install()

__version__ = "0.2.0"

#: Names imported on first use: they import nengo and nengo_dl (about 6 s).
_LAZY = {"SpikingIntegrateAndFire": "snnlib.nengo.neurons"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _moved.MOVED:
        return _moved.load(name)
    raise AttributeError(f"module 'snnlib' has no attribute {name!r}")

__all__ = [
    "DT",
    "ConversionError",
    "DataUnavailableError",
    "IntegrateAndFire",
    "LIF",
    "LayerConverter",
    "LoihiLIF",
    "LoihiSpikingReLU",
    "Lowpass",
    "NeuronModel",
    "NormalizationRule",
    "Op",
    "PRETRAINED_INFO",
    "PRETRAINED_WEIGHTS",
    "QCFS",
    "SimulationResult",
    "SoftLIF",
    "SpikingNetwork",
    "SpikingIntegrateAndFire",
    "SpikingReLU",
    "accuracy",
    "ann_operations",
    "build_convnet",
    "build_deep_convnet",
    "build_nengo_converter",
    "cache_dir",
    "calibrate_bias",
    "calibrate_potential",
    "check",
    "convert",
    "fan_out",
    "firing_rate_summary",
    "layer_rate_correlation",
    "load_mnist",
    "load_pretrained_convnet",
    "load_pretrained_deep_convnet",
    "load_pretrained_soft_lif_convnet",
    "load_weights",
    "mnist_cache_path",
    "nengo_scale_firing_rates",
    "normalize",
    "plot_accuracy_against_steps",
    "plot_accuracy_over_time",
    "plot_digits",
    "plot_filtered_spike_train",
    "plot_heatmap",
    "plot_output_over_time",
    "plot_rate_correlation",
    "plot_rate_histograms",
    "plot_rate_quantization",
    "plot_scaled_rate_curves",
    "plot_spike_raster",
    "plot_step_response",
    "plot_tradeoffs",
    "plot_training_history",
    "plot_voltage_trace",
    "quantization_report",
    "quantize",
    "register_converter",
    "register_neuron_model",
    "register_normalization",
    "run_nengo",
    "save_weights",
    "simulate",
    "soft_lif",
    "spikes_per_example",
    "sweep",
    "synaptic_operations",
    "threshold_shift",
    "train_convnet",
    "train_deep_convnet",
    "train_qcfs",
    "use_qcfs",
    "verify",
]
