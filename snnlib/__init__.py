"""snnlib: from a trained Keras network to a spiking one, with every step visible.

The companion library of the book "How are the weights computed for the SNN?".
Modules, one concern each:

- :mod:`snnlib.data`: the MNIST digits the book uses (offline by default).
- :mod:`snnlib.models`: the book's ReLU convnet, its training, and its saved weights.
- :mod:`snnlib.network`: the converted network (:class:`SpikingNetwork`), a chain of stages.
- :mod:`snnlib.convert`: Keras -> :class:`SpikingNetwork`, one converter per layer type; ``verify``.
- :mod:`snnlib.normalize`: data-based weight normalization (Diehl's max, Rueckauer's percentile).
- :mod:`snnlib.simulate`: the batched, time-stepped spiking simulator.
- :mod:`snnlib.event_driven`: its fast path at low rates, computing from the spikes alone.
- :mod:`snnlib.neurons`: one integrate-and-fire neuron written out, rate read-out errors, and
  rate curves under firing-rate scaling (ReLU vs LIF).
- :mod:`snnlib.nengo_bridge`: the same network in NengoDL/Nengo, for comparisons.
- :mod:`snnlib.nengo_inspect`: what ``nengo_dl.Converter`` built, read from the Nengo objects.
- :mod:`snnlib.diagnostics`: firing-rate statistics, ANN/SNN correlation, synaptic operations,
  parameter sweeps.
- :mod:`snnlib.filters`: the synaptic lowpass filter, its step response, and its figures.
- :mod:`snnlib.regularize`: training with a firing-rate regularizer; matching spike budgets.
- :mod:`snnlib.tradeoffs`: accuracy vs latency vs spikes across methods; Pareto fronts.
- :mod:`snnlib.plots`: figures (matplotlib), with labelled axes.
- :mod:`snnlib.stats`: confidence intervals of accuracies and paired tests (exact McNemar).
- :mod:`snnlib.claims`: the chapters' check cells (strict under the tests, a note otherwise).
"""
import os

# TensorFlow prints C++ log lines at import unless told otherwise; they differ from run to run
# and would break the notebooks' stored outputs. setdefault leaves a user's own choice alone.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from snnlib import claims, stats  # noqa: E402
from snnlib.convert import ConversionError, convert, verify  # noqa: E402
from snnlib.data import DataUnavailableError, load_mnist, mnist_cache_path  # noqa: E402
from snnlib.models import (  # noqa: E402
    PRETRAINED_INFO,
    PRETRAINED_WEIGHTS,
    accuracy,
    build_convnet,
    cache_dir,
    load_pretrained_convnet,
    load_weights,
    save_weights,
    train_convnet,
)
from snnlib.nengo_bridge import build_nengo_converter, nengo_scale_firing_rates, run_nengo  # noqa: E402
from snnlib.network import SpikingNetwork  # noqa: E402
from snnlib.normalize import normalize  # noqa: E402
from snnlib.diagnostics import (  # noqa: E402
    ann_operations,
    firing_rate_summary,
    layer_rate_correlation,
    sweep,
    synaptic_operations,
)
from snnlib.plots import (  # noqa: E402
    plot_accuracy_over_time,
    plot_digits,
    plot_heatmap,
    plot_output_over_time,
    plot_rate_correlation,
    plot_rate_histograms,
    plot_spike_raster,
    plot_training_history,
)
from snnlib.simulate import SimulationResult, simulate  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "ConversionError",
    "DataUnavailableError",
    "PRETRAINED_INFO",
    "PRETRAINED_WEIGHTS",
    "SimulationResult",
    "SpikingNetwork",
    "accuracy",
    "ann_operations",
    "build_convnet",
    "build_nengo_converter",
    "cache_dir",
    "convert",
    "firing_rate_summary",
    "layer_rate_correlation",
    "load_mnist",
    "load_pretrained_convnet",
    "load_weights",
    "mnist_cache_path",
    "nengo_scale_firing_rates",
    "normalize",
    "plot_accuracy_over_time",
    "plot_digits",
    "plot_heatmap",
    "plot_output_over_time",
    "plot_rate_correlation",
    "plot_rate_histograms",
    "plot_spike_raster",
    "plot_training_history",
    "run_nengo",
    "save_weights",
    "simulate",
    "sweep",
    "synaptic_operations",
    "train_convnet",
    "verify",
]
