"""QCFS: train the ANN with the activation its spiking neurons compute in a few steps.

Bu et al. (ICLR 2022, "Optimal ANN-SNN conversion for high-accuracy and ultra-low-latency
spiking neural networks"; code: github.com/putshua/SNN_conversion_QCFS, ``MyFloor`` in
``modules.py``) replace each ReLU by a quantization-clip-floor-shift activation

    h(x) = theta * clip(floor(x * L / theta + 1/2) / L, 0, 1)

with ``L`` quantization levels and a trainable threshold ``theta`` per layer (the floor passes
its gradient straight through). An integrate-and-fire neuron with reset by subtraction,
at most one spike per step, threshold ``theta`` and a start at ``theta / 2`` that receives a
constant input ``x`` for ``T = L`` steps emits exactly ``h(x) * T / theta`` spikes: the ANN
is trained to compute what the spiking network computes in ``L`` steps, and ``theta`` is the
layer's normalization factor lambda, learned instead of measured. The conversion
(:class:`QCFSConverter`, registered for :class:`QCFS`; both live in
:mod:`snnlib.convert.layers.qcfs` and are re-exported here) makes each QCFS layer ReLU
neurons, and ``snnlib.convert`` then takes lambda = the trained ``theta`` of every spiking
layer (no calibration data). Simulate with the book's recommended neurons
(``snnlib.zoo.RECOMMENDED_SIMULATION``: integrate-and-fire, reset by subtraction, one spike per
step at most, start at half the threshold, lambda at one spike per
step): that is the paper's neuron.

:func:`use_qcfs` puts QCFS layers into any functional or Sequential model in place of its ReLU
activations, so a reader can train their own model this way.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from snnlib import validation
from snnlib.config import DT
from snnlib.convert.layers.qcfs import PAPER_THRESHOLD, QCFS, QCFSConverter, qcfs

__all__ = ["PAPER_THRESHOLD", "QCFS", "QCFSConverter", "QCFS_NETWORKS", "QCFS_TRAINING",
           "build_qcfs", "layer_agreement", "load_pretrained_qcfs", "qcfs", "qcfs_thresholds",
           "save_qcfs_weights", "train_qcfs", "use_qcfs"]

#: How the shipped QCFS networks were made (:func:`save_qcfs_weights`): the book's
#: architectures through :func:`use_qcfs` (L = 4, every threshold starting at 2.0, weights
#: seeded with ``seed``), trained from scratch with :func:`train_qcfs` and the book's settings.
QCFS_TRAINING = {"levels": 4, "threshold": 2.0, "epochs": 10, "batch_size": 32,
                 "learning_rate": 1e-3, "seed": 0}

#: Network name -> (builder in snnlib.ann.models, shipped weights file).
QCFS_NETWORKS = {"convnet": ("build_convnet", "convnet_mnist_qcfs.npz"),
                 "deeper": ("build_deep_convnet", "deep_convnet_mnist_qcfs.npz")}


def qcfs_thresholds(model: tf.keras.Model) -> dict[str, float]:
    """Layer name -> trained threshold theta of every QCFS layer of ``model``."""
    return {layer.name: float(np.asarray(layer.threshold.numpy()))
            for layer in model.layers if isinstance(layer, QCFS)}


def use_qcfs(model: tf.keras.Model, levels: int = 4, *, threshold: float | None = None,
             calibration: np.ndarray | None = None, percentile: float = 99.9
             ) -> tf.keras.Model:
    """A copy of ``model`` with a QCFS layer in place of every ReLU, weights kept.

    A ``ReLU()`` or ``Activation("relu")`` layer becomes a QCFS layer of the same name; a
    layer with ``activation="relu"`` becomes the same layer without activation followed by a
    QCFS layer named ``"<layer>_qcfs"`` (the spiking layer's name after conversion). Train
    the copy (from scratch, or fine-tune a trained model's weights), then convert it with
    ``snnlib.convert`` (lambda = the trained thresholds).

    Parameters
    ----------
    model : tf.keras.Model
        Sequential or functional, built. Its output layer keeps its activation (a linear or
        softmax readout is not a spiking layer).
    levels : int
        L of every QCFS layer.
    threshold : float, optional
        Initial theta of every layer. Default: from ``calibration`` when given, else the
        paper's 8.0.
    calibration : ndarray, optional
        Inputs on which each ReLU's activations are measured (with the model's weights) to
        start theta at their ``percentile``-th percentile (non-zero values): the data-based
        lambda of Rueckauer et al. (2017), a good start when fine-tuning a trained model.
    percentile : float
        In (0, 100], for ``calibration``.

    Returns
    -------
    tf.keras.Model
        New, uncompiled; the original model is unchanged.
    """
    levels = validation.integer(levels, "levels", low=1)
    if threshold is not None and calibration is not None:
        raise validation.ArgumentError("give threshold or calibration, not both")
    if threshold is not None:
        threshold = validation.real(threshold, "threshold", low=0, low_open=True)
    percentile = validation.real(percentile, "percentile", low=0, high=100, low_open=True)
    relu_functions = (tf.keras.activations.relu, tf.nn.relu)
    output_layer = model.layers[-1]

    def is_relu_layer(layer: tf.keras.layers.Layer) -> bool:
        if isinstance(layer, tf.keras.layers.ReLU):
            return (layer.max_value is None and float(layer.negative_slope) == 0
                    and float(layer.threshold) == 0)
        return (isinstance(layer, tf.keras.layers.Activation)
                and layer.activation in relu_functions)

    def has_relu(layer: tf.keras.layers.Layer) -> bool:
        return (layer is not output_layer and not is_relu_layer(layer)
                and getattr(layer, "activation", None) in relu_functions)

    def hidden_relu(layer: tf.keras.layers.Layer) -> bool:
        return layer is not output_layer and is_relu_layer(layer)

    initial = _initial_thresholds(model, calibration, percentile, hidden_relu, has_relu) \
        if calibration is not None else {}
    start = PAPER_THRESHOLD if threshold is None else threshold
    new_layers: dict[str, tf.keras.layers.Layer] = {}

    def replace(layer: tf.keras.layers.Layer) -> tf.keras.layers.Layer:
        if is_relu_layer(layer) and layer is not output_layer:
            return QCFS(levels, initial.get(layer.name, start), name=layer.name)
        config = layer.get_config()
        if has_relu(layer):
            config["activation"] = "linear"
        new = type(layer).from_config(config)
        new_layers[layer.name] = new
        return new

    rebuilt = _rebuild(model, replace, {layer.name: QCFS(levels,
                                                          initial.get(layer.name, start),
                                                          name=f"{layer.name}_qcfs")
                                        for layer in model.layers if has_relu(layer)})
    for layer in model.layers:
        if layer.name in new_layers and layer.weights:
            rebuilt.get_layer(layer.name).set_weights(layer.get_weights())
    return rebuilt


def layer_agreement(model: tf.keras.Model, network: Any, x: np.ndarray, n_steps: int,
                    **simulation: Any) -> Any:
    """Each QCFS layer's average spiking output over ``n_steps`` steps against the QCFS ANN.

    Both in units of the layer's threshold: the ANN's activation ``h(x) / theta`` and the
    spiking output averaged over the run (spikes of height ``1 / (s dt)``, in units of the
    stage's lambda, times ``lambda / theta``). At ``n_steps = L`` the first spiking layer (a
    constant input) agrees exactly; after it the inputs are spike trains and the agreement
    measures the unevenness error (Bu et al. 2022).

    Parameters
    ----------
    model : tf.keras.Model
        The QCFS model.
    network : SpikingNetwork
        ``snnlib.convert(model)``.
    x : ndarray
        Inputs.
    n_steps : int
        T.
    **simulation
        ``simulate``'s settings (e.g. ``snnlib.zoo.RECOMMENDED_SIMULATION``).

    Returns
    -------
    pandas.DataFrame
        One row per QCFS layer: ``layer``, ``theta``, ``ann_mean``, ``snn_mean``,
        ``mean_abs_difference`` and ``equal`` (fraction of activations equal within 1e-6).
    """
    import pandas as pd

    from snnlib.sim.calibration import scale_of
    from snnlib.sim.simulator import simulate

    thresholds = qcfs_thresholds(model)
    if not thresholds:
        raise validation.ArgumentError(f"model {model.name!r} has no QCFS layer")
    x = network.check_input(x)
    probe = tf.keras.Model(model.inputs, [model.get_layer(name).output for name in thresholds])
    result = simulate(network, x, n_steps=n_steps, keep_counts=True, **simulation)
    outputs = [probe(x[i:i + 256], training=False) for i in range(0, len(x), 256)]
    rows = []
    for k, (name, theta) in enumerate(thresholds.items()):
        ann = np.concatenate([np.asarray(part[k] if len(thresholds) > 1 else part)
                              for part in outputs]).astype(np.float64) / theta
        spike = 1.0 / (scale_of(simulation.get("scale_firing_rates", 1.0), name)
                       * float(simulation.get("dt", DT)))
        # spikes -> units of lambda (the stage's scale) -> units of theta
        snn = result.spike_counts[name] * spike / n_steps * network.stage(name).scale / theta
        rows.append({"layer": name, "theta": theta, "ann_mean": float(ann.mean()),
                     "snn_mean": float(snn.mean()),
                     "mean_abs_difference": float(np.abs(snn - ann).mean()),
                     "equal": float(np.mean(np.isclose(snn, ann, rtol=0, atol=1e-6)))})
    return pd.DataFrame(rows)


def train_qcfs(model: tf.keras.Model, x_train: np.ndarray, y_train: np.ndarray, *,
               epochs: int = 10, batch_size: int = 32, learning_rate: float = 1e-3,
               seed: int = 0, verbose: int = 0) -> tf.keras.Model:
    """Train a model with QCFS layers (from :func:`use_qcfs`) as the book trains its models.

    Adam on sparse cross-entropy (on the logits, or on the probabilities when the output layer
    has a softmax), the thresholds learned with the weights, the
    batch order fixed by ``seed`` and TensorFlow's deterministic ops (the same weights on the
    same machine). The defaults are the book's (:data:`snnlib.ann.models.TRAINING`).

    Returns
    -------
    tf.keras.Model
        The same model, trained and compiled.
    """
    if not any(isinstance(layer, QCFS) for layer in model.layers):
        raise validation.ArgumentError(f"model {model.name!r} has no QCFS layer: make one with "
                                       "snnlib.ann.qcfs.use_qcfs(model, levels)")
    validation.integer(epochs, "epochs", low=1)
    validation.integer(batch_size, "batch_size", low=1)
    validation.seed(seed)
    tf.keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    last = model.layers[-1]
    softmax = getattr(last, "activation", None) in (tf.keras.activations.softmax, tf.nn.softmax) \
        or isinstance(last, tf.keras.layers.Softmax)
    model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=not softmax),
                  metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=epochs, batch_size=batch_size, verbose=verbose)
    return model


def build_qcfs(network: str = "convnet", levels: int = QCFS_TRAINING["levels"], *,
               threshold: float = QCFS_TRAINING["threshold"],
               seed: int | None = QCFS_TRAINING["seed"]) -> tf.keras.Model:
    """The book's convnet or deeper network with QCFS layers, untrained (weights seeded).

    Parameters
    ----------
    network : {"convnet", "deeper"}
        :func:`snnlib.build_convnet` or :func:`snnlib.build_deep_convnet`.
    levels, threshold
        As :func:`use_qcfs`.
    seed : int or None
        Seeds the weights' initialization (``tf.keras.utils.set_random_seed``, which also
        reseeds Python's and NumPy's global generators); None leaves every generator alone.
    """
    from snnlib.ann import models

    validation.choice(network, "network", tuple(QCFS_NETWORKS))
    if seed is not None:
        validation.seed(seed)
        tf.keras.utils.set_random_seed(seed)
    return use_qcfs(getattr(models, QCFS_NETWORKS[network][0])(), levels, threshold=threshold)


def save_qcfs_weights(folder: Any, network: str = "convnet", *, verbose: int = 0) -> Any:
    """Train :func:`build_qcfs` with :data:`QCFS_TRAINING` and save its weights in ``folder``.

    This is how ``snnlib/pretrained/convnet_mnist_qcfs.npz`` and
    ``deep_convnet_mnist_qcfs.npz`` (with their ``.json``) were made, once, on purpose:
    ``save_qcfs_weights(snnlib.ann.models.PRETRAINED_DIR, "deeper")``. As for every retraining,
    another machine gives slightly different weights: compare by behaviour.

    Returns
    -------
    pathlib.Path
        The ``.npz`` file written.
    """
    from pathlib import Path

    from snnlib.ann import models
    from snnlib.ann.data import load_mnist

    validation.choice(network, "network", tuple(QCFS_NETWORKS))
    settings = dict(QCFS_TRAINING)
    (x_train, y_train), (x_test, y_test) = load_mnist()
    model = build_qcfs(network, settings["levels"], threshold=settings["threshold"],
                       seed=settings["seed"])
    train_qcfs(model, x_train, y_train, epochs=settings["epochs"],
               batch_size=settings["batch_size"], learning_rate=settings["learning_rate"],
               seed=settings["seed"], verbose=verbose)
    info = {"architecture": f"snnlib.ann.qcfs.build_qcfs({network!r})", "training": settings,
            "data": "snnlib.load_mnist(): 4,000 training images; accuracy on its 1,000 test "
                    "images",
            "test_accuracy": models.accuracy(model, x_test, y_test),
            "thresholds": qcfs_thresholds(model), "tensorflow": tf.__version__}
    return models.save_weights(model, Path(folder) / QCFS_NETWORKS[network][1], info=info)


def load_pretrained_qcfs(network: str = "convnet") -> tf.keras.Model:
    """The shipped QCFS network (:func:`build_qcfs`, trained), compiled.

    Parameters
    ----------
    network : {"convnet", "deeper"}

    Raises
    ------
    FileNotFoundError
        The weights file is missing (make it with :func:`save_qcfs_weights`).
    """
    from snnlib.ann import models

    validation.choice(network, "network", tuple(QCFS_NETWORKS))
    path = models.PRETRAINED_DIR / QCFS_NETWORKS[network][1]
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: make it with snnlib.ann.qcfs."
                                f"save_qcfs_weights(snnlib.ann.models.PRETRAINED_DIR, "
                                f"{network!r})")
    model = build_qcfs(network, seed=None)  # the weights are overwritten: no reseeding
    models.load_weights(model, path)
    models.compile_classifier(model)
    return model


def _initial_thresholds(model: tf.keras.Model, calibration: np.ndarray, percentile: float,
                        is_relu_layer: Any, has_relu: Any) -> dict[str, float]:
    """The percentile of each ReLU's non-zero activations on ``calibration``."""
    calibration = np.asarray(calibration, dtype=np.float32)
    if calibration.shape[1:] != tuple(model.input_shape[1:]) or \
            not np.all(np.isfinite(calibration)):
        raise validation.ArgumentError(
            f"calibration must be finite inputs of shape (n,) + {tuple(model.input_shape[1:])},"
            f" got {calibration.shape}")
    names = [layer.name for layer in model.layers if is_relu_layer(layer) or has_relu(layer)]
    probe = tf.keras.Model(model.inputs, [model.get_layer(n).output for n in names])
    chunks = [probe(calibration[i:i + 256], training=False)
              for i in range(0, len(calibration), 256)]
    thresholds = {}
    for k, name in enumerate(names):
        value = np.concatenate([np.asarray(chunk[k] if len(names) > 1 else chunk)
                                for chunk in chunks])
        positive = value[value > 0]
        theta = float(np.percentile(positive, percentile)) if positive.size else PAPER_THRESHOLD
        thresholds[name] = theta
    return thresholds


def _rebuild(model: tf.keras.Model, replace: Any, after: dict) -> tf.keras.Model:
    """Call ``replace(layer)`` for each layer on the rebuilt inputs, in model order; apply
    ``after[name]`` (a QCFS layer) to the output of the layers named there."""
    from snnlib.convert.pipeline import model_graph

    order, sources = model_graph(model)
    inputs = tf.keras.Input(model.input_shape[1:], name=order[0].name
                            if isinstance(order[0], tf.keras.layers.InputLayer) else "input")
    tensors: dict[str, tf.Tensor] = {}
    for layer in order:
        if isinstance(layer, tf.keras.layers.InputLayer):
            tensors[layer.name] = inputs
            continue
        reads = [tensors[source.name] for source in sources[layer.name]] or [inputs]
        out = replace(layer)(reads[0] if len(reads) == 1 else reads)
        if layer.name in after:
            out = after[layer.name](out)
        tensors[layer.name] = out
    return tf.keras.Model(inputs, tensors[order[-1].name], name=f"{model.name}_qcfs")
