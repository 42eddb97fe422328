"""snnlib: from a trained Keras network to a spiking one, with every step visible.

The companion library of the book "How are the weights computed for the SNN?".
Modules, one concern each:

- :mod:`snnlib.config`: shared defaults (the time step ``DT``, the simulation chunk size).
- :mod:`snnlib.data`: the MNIST digits the book uses (offline by default).
- :mod:`snnlib.models`: the book's ReLU convnet and its deeper VGG-style network, their
  training, and their saved weights.
- :mod:`snnlib.ops`: the layer types, one class each: forward pass, fan-out, operations, and
  their sparse form for the event-driven engine.
- :mod:`snnlib.network`: the converted network (:class:`SpikingNetwork`), a graph of stages.
- :mod:`snnlib.convert`: Keras -> :class:`SpikingNetwork`, one registered converter per layer
  type; ``check`` (every problem of a model at once, with its fix) and ``verify``.
- :mod:`snnlib.zoo`: typical Keras models (LeNet-5, batch normalization, max pooling + softmax,
  an MLP with a ReLU output, VGG-style), brief training, and their conversion measured.
- :mod:`snnlib.normalize`: data-based weight normalization, a table of rules (Diehl's max,
  Rueckauer's percentile, or your own), per layer or per channel, streamed in bounded memory.
- :mod:`snnlib.quantiles`: exact percentiles of data seen batch by batch, in bounded memory.
- :mod:`snnlib.neurons`: the spiking neuron models (NengoDL's spiking ReLU, the papers'
  integrate-and-fire, Nengo's LIF), single neurons, and rate curves under firing-rate scaling.
- :mod:`snnlib.activations`: Keras activations with a neuron's rate curve (``soft_lif``).
- :mod:`snnlib.synapses`: the synapse, a lowpass filter (:class:`Lowpass`), and its demos.
- :mod:`snnlib.simulate`: the batched, time-stepped simulator and its dense engine.
- :mod:`snnlib.event_driven`: its event-driven engine, computing from the spikes alone.
- :mod:`snnlib.counts`: spike counts of a run summarized per example and per neuron.
- :mod:`snnlib.measures`: rates, spikes per example, synaptic operations, ANN MACs, fan-out.
- :mod:`snnlib.diagnostics`: rate-vs-activation correlation, firing summaries, parameter sweeps.
- :mod:`snnlib.nengo_bridge`: the same network built by NengoDL: build, run (``nengo`` or
  ``nengo_dl`` simulator), and inspect what the converter made.
- :mod:`snnlib.nengo_scales`: the literature's normalization as NengoDL's per-layer
  ``scale_firing_rates``, for any model NengoDL converts (graphs with ``Add``, ``Concatenate``).
- :mod:`snnlib.nengo_neurons`: the papers' integrate-and-fire neuron as a Nengo neuron type
  (``snnlib.SpikingIntegrateAndFire``), with its NengoDL TensorFlow step.
- :mod:`snnlib.nengo_workflow`: the reader's workflow measured in ``nengo_dl.Simulator``.
- :mod:`snnlib.regularize`: training with a firing-rate regularizer; matching spike budgets.
- :mod:`snnlib.tradeoffs`: accuracy vs latency vs spikes across methods; Pareto fronts.
- :mod:`snnlib.plots`: every figure (matplotlib), with labelled axes.
- :mod:`snnlib.protocol`: the book's measurement protocol (readout, latency, sample, interval).
- :mod:`snnlib.stats`: confidence intervals of accuracies and paired tests (exact McNemar).
- :mod:`snnlib.claims`: the chapters' check cells (strict under the tests, a note otherwise).
- :mod:`snnlib.validation`: the argument checks every public function shares.

Extending it (a neuron model, a layer type, a normalization rule): see "Extending snnlib" in
the README.
"""
import os

# TensorFlow prints C++ log lines at import unless told otherwise; they differ from run to run
# and would break the notebooks' stored outputs. setdefault leaves a user's own choice alone.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from snnlib import claims, stats, zoo  # noqa: E402, F401  (modules: snnlib.claims, ...)
from snnlib.activations import SoftLIF, soft_lif  # noqa: E402
from snnlib.config import DT  # noqa: E402
from snnlib.convert import (  # noqa: E402
    ConversionError,
    LayerConverter,
    check,
    convert,
    verify,
)
from snnlib.convert import register as register_converter  # noqa: E402
from snnlib.data import DataUnavailableError, load_mnist, mnist_cache_path  # noqa: E402
from snnlib.diagnostics import firing_rate_summary, layer_rate_correlation, sweep  # noqa: E402
from snnlib.measures import (  # noqa: E402
    ann_operations,
    fan_out,
    spikes_per_example,
    synaptic_operations,
)
from snnlib.models import (  # noqa: E402
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
from snnlib.nengo_bridge import (  # noqa: E402
    build_nengo_converter,
    nengo_scale_firing_rates,
    run_nengo,
)
from snnlib.network import SpikingNetwork  # noqa: E402
from snnlib.neurons import (  # noqa: E402
    LIF,
    IntegrateAndFire,
    NeuronModel,
    SpikingReLU,
    register_neuron_model,
)
from snnlib.normalize import NormalizationRule, normalize, register_normalization  # noqa: E402
from snnlib.ops import Op  # noqa: E402
from snnlib.plots import (  # noqa: E402
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
from snnlib.simulate import SimulationResult, simulate  # noqa: E402
from snnlib.synapses import Lowpass  # noqa: E402

__version__ = "0.1.0"

#: Names imported on first use: they import nengo and nengo_dl (about 6 s).
_LAZY = {"SpikingIntegrateAndFire": "snnlib.nengo_neurons"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'snnlib' has no attribute {name!r}")

__all__ = [
    "DT",
    "ConversionError",
    "DataUnavailableError",
    "IntegrateAndFire",
    "LIF",
    "LayerConverter",
    "Lowpass",
    "NeuronModel",
    "NormalizationRule",
    "Op",
    "PRETRAINED_INFO",
    "PRETRAINED_WEIGHTS",
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
    "train_convnet",
    "train_deep_convnet",
    "verify",
]
