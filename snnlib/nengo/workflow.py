"""The reader's workflow, measured in NengoDL itself: a trained Keras model through
``nengo_dl.Converter`` and ``nengo_dl.Simulator``, five ways.

:data:`SETTINGS` are what a NengoDL user can do, each built exactly as ``nengo_dl.Converter``
builds it (its neurons start at its own default voltages, several spikes per step where the
neuron allows them), with ``inference_only=True`` (batch normalization as native Nengo
objects) and every ReLU flavour swapped (keyed by ``nengo.RectifiedLinear()``, see
:func:`snnlib.nengo.bridge.build_nengo_converter`):

1. ``"nengo_default"``: NengoDL's defaults with the spiking swap,
   ``nengo.SpikingRectifiedLinear`` at ``scale_firing_rates=1`` (the converter's true default,
   rate neurons, computes the ANN exactly and spikes nowhere);
2. ``"nengo_example"``: the recipe of NengoDL's keras-to-snn example, one global scale and a
   10 ms synapse (the example uses ``s`` = 2-10 on raw 0-255 pixels; here s = 100 on pixels in
   [0, 1]), read at the last step as the example reads it;
3. ``"dict_nengo_neuron"``: the book's per-layer dict (:func:`snnlib.nengo_scale_firing_rates`
   with :data:`snnlib.ann.zoo.RECOMMENDED_NORMALIZATION`, lambda at 1000 Hz) with Nengo's neuron;
4. ``"dict_papers_neuron"``: the same dict with the papers' signed-current integrate-and-fire
   neuron (:class:`snnlib.nengo.neurons.SpikingIntegrateAndFire`, with the rest of
   :data:`snnlib.ann.zoo.RECOMMENDED_SIMULATION`: at most one spike per step, v0 = 0.5);
5. ``"dict_papers_neuron_4000"``: the same neuron with several spikes per step and the dict at
   4000 Hz (lambda at four spikes per step): for networks that need more than 64 steps at
   1000 Hz (the book's six-layer network). Chosen on training images 1000-2000 (not the
   calibration images, not the test split), where it brought that network within 0.1 point of
   its ANN at 64 steps; it costs about four times the spikes, and one-spike-per-step hardware
   cannot run it.

:func:`measure` runs them on a model and reads each run out both ways (the mean over time,
the book's readout, and the last step, the example's), with 95 % intervals and exact McNemar
tests against the Keras model on the same images. A final softmax is removed first (the
network outputs logits, argmax unchanged): in NengoDL it would be a TensorNode applied to each
step's noisy logits, which ``nengo.Simulator`` and NengoLoihi cannot run.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from snnlib import validation
from snnlib.analysis import protocol, stats
from snnlib.keras_predict import predict
from snnlib.progress import progress_bar

if TYPE_CHECKING:
    import pandas as pd
    import tensorflow as tf

__all__ = [
    "Setting",
    "SETTINGS",
    "logits_model",
    "WorkflowResult",
    "measure",
]


@dataclass(frozen=True)
class Setting:
    """One way to run the converted model in NengoDL.

    Attributes
    ----------
    name, label : str
        Key, and what a table prints.
    neuron : str or snnlib.NeuronModel
        For :func:`snnlib.nengo.bridge.build_nengo_converter`.
    initial_voltage : None or float
        None: the neuron type's own start (NengoDL's: ``Uniform(0, 1)`` for its spiking ReLU).
    scale : float or "dict"
        ``scale_firing_rates``: one number, or the book's per-layer dict.
    max_rate : float or None
        With ``scale="dict"``: the rate (Hz) lambda maps to; None: the recipe's
        (:data:`snnlib.ann.zoo.RECOMMENDED_SIMULATION`, 1000 Hz).
    synapse : float or None
        Seconds.
    readout : {"mean", "last"}
        The setting's own readout (both are measured).
    """

    name: str
    label: str
    neuron: Any = "spiking_relu"
    initial_voltage: float | None = None
    scale: float | str = 1.0
    synapse: float | None = None
    readout: str = "mean"
    max_rate: float | None = None


def _settings() -> tuple[Setting, ...]:
    from snnlib.ann.zoo import RECOMMENDED_SIMULATION as R
    from snnlib.sim.neurons import IntegrateAndFire

    papers = IntegrateAndFire(max_spikes_per_step=R["max_spikes_per_step"])
    rate = f"{R['scale_firing_rates']:g} Hz"
    return (
        Setting("nengo_default", "NengoDL default (spiking swap, s = 1)", scale=1.0,
                readout="last"),
        Setting("nengo_example", "NengoDL example (s = 100, 10 ms synapse)", scale=100.0,
                synapse=0.01, readout="last"),
        Setting("dict_nengo_neuron", f"book's dict ({rate}), Nengo's neuron", scale="dict"),
        Setting("dict_papers_neuron",
                f"book's dict ({rate}), papers' IF (1 spike/step, v0 = "
                f"{R['initial_voltage']:g})",
                neuron=papers, initial_voltage=R["initial_voltage"], scale="dict"),
        Setting("dict_papers_neuron_4000",
                f"book's dict (4000 Hz), papers' IF (several spikes/step, v0 = "
                f"{R['initial_voltage']:g})",
                neuron=IntegrateAndFire(), initial_voltage=R["initial_voltage"], scale="dict",
                max_rate=4000.0),
    )


#: The five settings, in the order above.
SETTINGS: tuple[Setting, ...] = _settings()


def logits_model(model: tf.keras.Model) -> tf.keras.Model:
    """The model without a final softmax (same layers and weights; argmax unchanged).

    A last ``Dense``/convolution layer with ``activation="softmax"`` is replaced by a copy with
    a linear activation (its weights copied); a last ``Softmax`` or ``Activation("softmax")``
    layer is dropped. Any other model comes back as it is.
    """
    import tensorflow as tf

    L = tf.keras.layers
    last = model.layers[-1]
    activation = getattr(last, "activation", None)
    if type(last) is L.Softmax or (type(last) is L.Activation
                                   and activation is tf.keras.activations.softmax):
        return tf.keras.Model(model.inputs, last.input, name=model.name)
    if activation is tf.keras.activations.softmax and \
            type(last) in (L.Dense, L.Conv1D, L.Conv2D, L.Conv3D):
        config = dict(last.get_config(), activation="linear")
        linear = type(last).from_config(config)
        output = linear(last.input)
        linear.set_weights(last.get_weights())
        return tf.keras.Model(model.inputs, output, name=model.name)
    return model


@dataclass
class WorkflowResult:
    """:func:`measure`'s runs of one model.

    Attributes
    ----------
    name : str
    n_steps : int
    keras : snnlib.analysis.stats.Accuracy
        The Keras model's accuracy on the images.
    keras_correct : ndarray of bool
    correct : dict
        (setting name, readout) -> per-image correctness after ``n_steps`` steps.
    accuracy_over_time : dict
        (setting name, readout) -> accuracy (0-1) after each step.
    scales : dict
        Layer name -> the recipe dict's scale (Hz per unit of activation, lambda at 1000 Hz).
    settings : tuple of Setting
    """

    name: str
    n_steps: int
    keras: stats.Accuracy
    keras_correct: np.ndarray = field(repr=False)
    correct: dict = field(repr=False)
    accuracy_over_time: dict = field(repr=False)
    scales: dict
    settings: tuple

    def accuracy(self, setting: str, readout: str = "mean") -> stats.Accuracy:
        """The setting's accuracy after ``n_steps`` steps, with its 95 % interval."""
        return stats.accuracy_interval(self.correct[setting, readout])

    def against_keras(self, setting: str, readout: str = "mean") -> stats.PairedComparison:
        """Exact McNemar test of the setting against the Keras model on the same images."""
        return stats.compare_paired(self.correct[setting, readout], self.keras_correct)

    def difference_interval(self, setting: str, readout: str = "mean") -> tuple[float, float]:
        """95 % interval of (setting - Keras) accuracy, paired (Newcombe)."""
        return stats.paired_difference_interval(self.correct[setting, readout],
                                                self.keras_correct)

    def compare(self, a: str, b: str, readout_a: str = "mean",
                readout_b: str = "mean") -> stats.PairedComparison:
        """Exact McNemar test of setting ``a`` against setting ``b``."""
        return stats.compare_paired(self.correct[a, readout_a], self.correct[b, readout_b])

    def table(self) -> pd.DataFrame:
        """One row per setting: both readouts, and the test of the mean readout vs Keras."""
        import pandas as pd

        rows = []
        for setting in self.settings:
            mean, last = (self.accuracy(setting.name, r) for r in ("mean", "last"))
            test = self.against_keras(setting.name, "mean")
            low, high = self.difference_interval(setting.name, "mean")
            rows.append({
                "model": self.name, "setting": setting.label,
                "mean readout (%)": round(100 * mean.value, 1),
                "mean 95 % CI": f"{100 * mean.low:.1f}-{100 * mean.high:.1f}",
                "last step (%)": round(100 * last.value, 1),
                "vs Keras (points)": round(100 * test.difference, 1),
                "difference 95 % CI": f"{100 * low:+.1f} to {100 * high:+.1f}",
                "McNemar p": float(f"{test.p_value:.2g}"),
            })
        return pd.DataFrame(rows)

    def summary(self) -> dict:
        """Plain numbers for a results file (JSON)."""
        out = {"model": self.name, "n_steps": self.n_steps, "n": int(self.keras.n),
               "keras": self.keras.value, "scales": self.scales, "settings": {}}
        for setting in self.settings:
            entry = {"label": setting.label}
            for readout in ("mean", "last"):
                accuracy = self.accuracy(setting.name, readout)
                test = self.against_keras(setting.name, readout)
                low, high = self.difference_interval(setting.name, readout)
                entry[readout] = {"accuracy": accuracy.value, "low": accuracy.low,
                                  "high": accuracy.high, "difference": test.difference,
                                  "difference_low": low, "difference_high": high,
                                  "p_value": test.p_value}
            out["settings"][setting.name] = entry
        return out


def measure(model: tf.keras.Model, calibration: np.ndarray, x: np.ndarray, y: np.ndarray, *,
            n_steps: int = 64, settings: tuple[Setting, ...] | None = None,
            minibatch_size: int = 25, seed: int = 0, name: str | None = None,
            progress: bool | None = None) -> WorkflowResult:
    """Run the model in ``nengo_dl.Simulator`` with each setting; measure both readouts.

    Parameters
    ----------
    model : tf.keras.Model
        Trained; any model ``nengo_dl.Converter`` converts (a final softmax is removed first,
        :func:`logits_model`).
    calibration : ndarray
        Training images for the per-layer dict (never test images).
    x, y : ndarray
        Test images and labels (the book's protocol: the whole 1,000-image split).
    n_steps : int
        Steps each image is shown for (dt = 1 ms), from a fresh start.
    settings : tuple of Setting, optional
        Default :data:`SETTINGS`.
    minibatch_size : int
        Images NengoDL simulates at once; must divide ``len(x)``. NengoDL's memory grows with it
        (about 6 GB at 50 for the book's deeper network).
    seed : int
        Network seed: Nengo draws its spiking ReLU's random initial voltages from it.
    name : str, optional
        Default: the model's name.
    progress : bool, optional
        A progress bar over the settings (``None``: on unless ``SNNLIB_PROGRESS=0``).

    Returns
    -------
    WorkflowResult
    """
    from snnlib.ann.zoo import RECOMMENDED_NORMALIZATION, RECOMMENDED_SIMULATION
    from snnlib.nengo.bridge import build_nengo_converter, run_nengo
    from snnlib.nengo.scales import layer_lambdas

    settings = SETTINGS if settings is None else tuple(settings)
    validation.integer(n_steps, "n_steps", low=1)
    x = validation.images(x, "x")
    y = validation.labels(y, len(x), "y")
    network_model = logits_model(model)
    keras_correct = np.argmax(predict(model, x, batch_size=256).reshape(
        len(x), -1), axis=1) == y
    recipe_rate = RECOMMENDED_SIMULATION["scale_firing_rates"]
    rates = {recipe_rate if s.max_rate is None else s.max_rate
             for s in settings if s.scale == "dict"}
    lambdas = {}
    if rates:  # one calibration, one dict per rate: s_l = rate / lambda_l
        lambdas = {layer: value for layer, (value, _) in layer_lambdas(
            network_model, calibration, **RECOMMENDED_NORMALIZATION).items()}
    dicts = {rate: {layer: rate / value for layer, value in lambdas.items()} for rate in rates}
    correct, over_time = {}, {}
    for setting in progress_bar(settings, desc=f"NengoDL runs ({name or model.name})",
                                progress=progress):
        rate = recipe_rate if setting.max_rate is None else setting.max_rate
        converter = build_nengo_converter(
            network_model, scale_firing_rates=dicts[rate] if setting.scale == "dict" else
            setting.scale, synapse=setting.synapse, neuron=setting.neuron,
            initial_voltage=setting.initial_voltage, inference_only=True)
        output = run_nengo(converter, x, n_steps=n_steps, simulator="nengo_dl",
                           minibatch_size=minibatch_size, seed=seed)
        for readout in protocol.READOUTS:
            per_step = protocol.correct_over_time(output, y, readout)
            correct[setting.name, readout] = per_step[:, -1]
            over_time[setting.name, readout] = per_step.mean(axis=0)
    return WorkflowResult(name=name or model.name, n_steps=n_steps,
                          keras=stats.accuracy_interval(keras_correct),
                          keras_correct=keras_correct, correct=correct,
                          accuracy_over_time=over_time,
                          scales={layer.name: float(s) for layer, s in
                                  dicts.get(recipe_rate, {}).items()},
                          settings=settings)
