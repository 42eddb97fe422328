"""Typical Keras models that NengoDL users bring to the forum, and how they fare converted.

Each builder returns an untrained, built Keras model for 28x28x1 MNIST images with the layer
types that real models have and that a conversion must handle (or refuse with a fix):

- :func:`nengo_example`: NengoDL's keras-to-snn example (the book's convnet).
- :func:`lenet5`: LeNet-5 with average pooling.
- :func:`conv_batchnorm`: convolutions followed by BatchNormalization and a separate
  ``Activation("relu")`` layer.
- :func:`maxpool_softmax`: max pooling and a softmax output (the pooling needs
  ``spiking_max_pool=True``, :data:`FIXES`: max pooling gated on spikes; the softmax is
  dropped, argmax unchanged).
- :func:`mlp_dropout`: a multilayer perceptron with Dropout and a ReLU output layer.
- :func:`vgg`: a VGG-style network, six 3x3 convolutions with "same" padding, average pooling.
- :func:`mobilenet` and :func:`conv1d` (:data:`LAYER_MODELS`): depthwise-separable blocks with
  batch normalization; a 1-D convnet over the image's rows.
- :func:`residual` and :func:`inception` (:data:`GRAPH_MODELS`): graphs with a residual ``Add``,
  ``Concatenate`` and ``Average``, which ``nengo_dl.Converter`` and snnlib both convert
  (``snnlib.nengo_scale_firing_rates`` scales them for NengoDL; both of snnlib's engines run
  graphs).

:data:`MODELS` maps their names to the builders; :func:`train` trains any of them briefly and
deterministically; :func:`evaluate` converts one with the recommended settings
(:data:`RECOMMENDED_NORMALIZATION`, :data:`RECOMMENDED_SIMULATION`), checks it with
:func:`snnlib.verify` and measures ANN and SNN accuracy with their 95 % intervals.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from snnlib.analysis import protocol, stats
from snnlib.keras_predict import predict

if TYPE_CHECKING:
    import tensorflow as tf

__all__ = [
    "nengo_example",
    "lenet5",
    "conv_batchnorm",
    "maxpool_softmax",
    "mlp_dropout",
    "vgg",
    "residual",
    "inception",
    "mobilenet",
    "conv1d",
    "MODELS",
    "GRAPH_MODELS",
    "LAYER_MODELS",
    "FIXES",
    "RECOMMENDED_NORMALIZATION",
    "N_CALIBRATION",
    "RECOMMENDED_SIMULATION",
    "train",
    "build_and_train",
    "ZooResult",
    "evaluate",
]


def _layers() -> tuple:
    import tensorflow as tf

    return tf, tf.keras.layers


def nengo_example() -> tf.keras.Model:
    """NengoDL's example network: Conv 32 -> Conv 64 stride 2 -> Dense 10 (logits)."""
    from snnlib.ann.models import build_convnet

    return build_convnet()


def lenet5() -> tf.keras.Model:
    """LeNet-5: Conv 6@5x5 "same" -> AvgPool -> Conv 16@5x5 -> AvgPool -> Dense 120 -> 84 -> 10."""
    tf, L = _layers()
    return tf.keras.Sequential([
        L.InputLayer((28, 28, 1), name="input"),
        L.Conv2D(6, 5, padding="same", activation="relu", name="c1"),
        L.AveragePooling2D(2, name="s2"),
        L.Conv2D(16, 5, activation="relu", name="c3"),
        L.AveragePooling2D(2, name="s4"),
        L.Flatten(name="flatten"),
        L.Dense(120, activation="relu", name="f5"),
        L.Dense(84, activation="relu", name="f6"),
        L.Dense(10, name="output"),
    ], name="lenet5")


def conv_batchnorm() -> tf.keras.Model:
    """Conv -> BatchNormalization -> Activation("relu"), twice, then a dense readout.

    Conv 16 3x3 -> BN -> ReLU -> Conv 32 3x3 stride 2 -> BN -> ReLU -> Dense 10. The batch
    normalizations use ``momentum=0.9`` (Keras's default is 0.99): their moving statistics,
    which inference uses, then settle within the few hundred steps of a brief training
    (with 0.99 the inference-mode ANN is far less accurate than in training after one epoch).
    """
    tf, L = _layers()
    inp = tf.keras.Input((28, 28, 1), name="input")
    x = L.Conv2D(16, 3, name="conv0")(inp)
    x = L.BatchNormalization(momentum=0.9, name="bn0")(x)
    x = L.Activation("relu", name="relu0")(x)
    x = L.Conv2D(32, 3, strides=2, name="conv1")(x)
    x = L.BatchNormalization(momentum=0.9, name="bn1")(x)
    x = L.Activation("relu", name="relu1")(x)
    x = L.Flatten(name="flatten")(x)
    out = L.Dense(10, name="output")(x)
    return tf.keras.Model(inp, out, name="conv_batchnorm")


def maxpool_softmax() -> tf.keras.Model:
    """Conv 16 -> MaxPooling2D -> Conv 32 -> MaxPooling2D -> Dense 10 with softmax."""
    tf, L = _layers()
    return tf.keras.Sequential([
        L.InputLayer((28, 28, 1), name="input"),
        L.Conv2D(16, 3, activation="relu", name="conv0"),
        L.MaxPooling2D(2, name="pool0"),
        L.Conv2D(32, 3, activation="relu", name="conv1"),
        L.MaxPooling2D(2, name="pool1"),
        L.Flatten(name="flatten"),
        L.Dense(10, activation="softmax", name="output"),
    ], name="maxpool_softmax")


def mlp_dropout() -> tf.keras.Model:
    """Flatten -> Dense 256 relu -> Dropout -> Dense 128 relu -> Dropout -> Dense 10 relu."""
    tf, L = _layers()
    return tf.keras.Sequential([
        L.InputLayer((28, 28, 1), name="input"),
        L.Flatten(name="flatten"),
        L.Dense(256, activation="relu", name="hidden0"),
        L.Dropout(0.2, name="drop0"),
        L.Dense(128, activation="relu", name="hidden1"),
        L.Dropout(0.2, name="drop1"),
        L.Dense(10, activation="relu", name="output"),
    ], name="mlp_dropout")


def vgg(filters: Sequence[int] = (8, 8, 16, 16, 32, 32)) -> tf.keras.Model:
    """Six 3x3 "same" convolutions with average pooling after the 2nd and 4th, dense readout.

    Parameters
    ----------
    filters : sequence of 6 int
        Channels of the convolutions. The default is narrow (8 to 32) so that a spiking run on
        the whole test split stays short on a CPU; VGG's own doubling pattern is kept.
    """
    tf, L = _layers()
    if len(filters) != 6:
        raise ValueError(f"filters={filters!r}: give the channels of the 6 convolutions")
    inp = tf.keras.Input((28, 28, 1), name="input")
    x = inp
    for i, n in enumerate(filters):
        x = L.Conv2D(int(n), 3, padding="same", activation="relu", name=f"conv{i}")(x)
        if i in (1, 3):
            x = L.AveragePooling2D(2, name=f"pool{i // 2}")(x)
    x = L.Flatten(name="flatten")(x)
    out = L.Dense(10, name="output")(x)
    return tf.keras.Model(inp, out, name="vgg")


def residual() -> tf.keras.Model:
    """A small residual network: a block with a skip connection (``Add``) and a ``ReLU()``.

    Conv 16 3x3 stride 2 "same" relu -> [Conv 16 3x3 relu -> Conv 16 3x3 linear] + skip ->
    ``ReLU()`` -> Conv 32 3x3 stride 2 relu -> Flatten -> Dense 10 (logits).
    ``nengo_dl.Converter`` and snnlib (a graph: the ``Add`` joins two paths) convert it.
    """
    tf, L = _layers()
    inp = tf.keras.Input((28, 28, 1), name="input")
    stem = L.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="stem")(inp)
    x = L.Conv2D(16, 3, padding="same", activation=tf.nn.relu, name="block_conv0")(stem)
    x = L.Conv2D(16, 3, padding="same", name="block_conv1")(x)
    x = L.ReLU(name="block_relu")(L.Add(name="add")([stem, x]))
    x = L.Conv2D(32, 3, strides=2, activation="relu", name="conv")(x)
    x = L.Flatten(name="flatten")(x)
    return tf.keras.Model(inp, L.Dense(10, name="output")(x), name="residual")


def inception() -> tf.keras.Model:
    """An inception-like block: three branches joined by ``Concatenate``, two by ``Average``.

    Conv 16 3x3 stride 2 relu -> branches (Conv 8 1x1 relu | Conv 8 3x3 "same" relu |
    Conv 8 5x5 "same" relu) -> ``Concatenate`` -> two 3x3 towers of 24 channels, stride 2,
    ``Activation("relu")`` -> ``Average`` -> Flatten -> Dense 10 softmax.
    """
    tf, L = _layers()
    inp = tf.keras.Input((28, 28, 1), name="input")
    stem = L.Conv2D(16, 3, strides=2, activation="relu", name="stem")(inp)
    a = L.Conv2D(8, 1, activation="relu", name="branch_1x1")(stem)
    b = L.Conv2D(8, 3, padding="same", activation="relu", name="branch_3x3")(stem)
    c = L.Conv2D(8, 5, padding="same", activation="relu", name="branch_5x5")(stem)
    x = L.Concatenate(name="concatenate")([a, b, c])
    towers = []
    for i in range(2):
        t = L.Conv2D(24, 3, strides=2, name=f"tower{i}")(x)
        towers.append(L.Activation("relu", name=f"tower{i}_relu")(t))
    x = L.Flatten(name="flatten")(L.Average(name="average")(towers))
    return tf.keras.Model(inp, L.Dense(10, activation="softmax", name="output")(x),
                          name="inception")


def mobilenet() -> tf.keras.Model:
    """A MobileNet-like network: depthwise-separable blocks (``DepthwiseConv2D`` 3x3, batch
    normalization, ReLU, then a pointwise 1x1 convolution, batch normalization, ReLU).

    Conv 16 3x3 stride 2 -> [depthwise 3x3 -> pointwise 32] -> [depthwise 3x3 stride 2 ->
    pointwise 64] -> GlobalAveragePooling2D -> Dense 10 (logits). MobileNet's ReLU6 is a plain
    ReLU here: snnlib refuses a clipped ReLU (``snnlib.check`` says why).
    """
    tf, L = _layers()
    inp = tf.keras.Input((28, 28, 1), name="input")
    def normalized_relu(x: tf.Tensor, name: str) -> tf.Tensor:
        # momentum 0.9 as in conv_batchnorm: the moving statistics must follow a short training
        return L.ReLU(name=f"{name}_relu")(L.BatchNormalization(momentum=0.9,
                                                                name=f"{name}_bn")(x))

    x = L.Conv2D(16, 3, strides=2, padding="same", use_bias=False, name="stem")(inp)
    x = normalized_relu(x, "stem")
    for i, (filters, stride) in enumerate([(32, 1), (64, 2)]):
        x = L.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False,
                              name=f"dw{i}")(x)
        x = normalized_relu(x, f"dw{i}")
        x = normalized_relu(L.Conv2D(filters, 1, use_bias=False, name=f"pw{i}")(x), f"pw{i}")
    x = L.GlobalAveragePooling2D(name="pool")(x)
    return tf.keras.Model(inp, L.Dense(10, name="output")(x), name="mobilenet")


def conv1d() -> tf.keras.Model:
    """A 1-D convnet that reads each image as a sequence of 28 rows of 28 pixels.

    Reshape (28, 28) -> Conv1D 32@5 -> AveragePooling1D 2 -> Conv1D 64@3 stride 2 ->
    GlobalAveragePooling1D -> Dense 10 (logits).
    """
    tf, L = _layers()
    return tf.keras.Sequential([
        L.InputLayer((28, 28, 1), name="input"),
        L.Reshape((28, 28), name="rows"),
        L.Conv1D(32, 5, activation="relu", name="conv0"),
        L.AveragePooling1D(2, name="pool"),
        L.Conv1D(64, 3, strides=2, activation="relu", name="conv1"),
        L.GlobalAveragePooling1D(name="gap"),
        L.Dense(10, name="output"),
    ], name="conv1d")


#: Name -> builder of every model kind.
MODELS: dict[str, Callable[[], tf.keras.Model]] = {
    "nengo_example": nengo_example, "lenet5": lenet5, "conv_batchnorm": conv_batchnorm,
    "maxpool_softmax": maxpool_softmax, "mlp_dropout": mlp_dropout, "vgg": vgg,
}

#: Graphs (``Add``, ``Concatenate``, ``Average``), kept apart from :data:`MODELS`: the
#: snnlib accuracy table (``benchmarks/accuracy.py``) covers :data:`MODELS`, the NengoDL one
#: (``benchmarks/nengo_workflow.py``) both; :func:`build_and_train` builds them too.
GRAPH_MODELS: dict[str, Callable[[], tf.keras.Model]] = {
    "residual": residual, "inception": inception,
}

#: Models of the layer types snnlib gained with its graphs (depthwise and 1-D convolutions),
#: kept apart from :data:`MODELS` for the same reason; :func:`build_and_train` builds them too.
LAYER_MODELS: dict[str, Callable[[], tf.keras.Model]] = {
    "mobilenet": mobilenet, "conv1d": conv1d,
}

#: The ``convert`` options a model kind needs: its documented fix (``snnlib.check`` says so).
#: Max pooling: the spiking max pool keeps the function (``max_to_avg_pool=True``, the other
#: fix, changes it: 4.7 points lost against 1.0 in ``benchmarks/RESULTS.md``).
#: The MobileNet-like model: its depthwise convolutions give each channel its own filter, so one
#: lambda per layer leaves most channels firing slowly; one per channel (Kim et al. 2020,
#: Spiking-YOLO), percentile 99.99, chosen without the test images
#: (``benchmarks/normalization_choice.py``).
FIXES: dict[str, dict] = {"maxpool_softmax": {"spiking_max_pool": True},
                          "mobilenet": {"granularity": "channel", "percentile": 99.99}}

#: The recommended normalization (Rueckauer et al. 2017), calibrated on training images.
RECOMMENDED_NORMALIZATION = {"normalization": "percentile", "percentile": 99.9}
#: Calibration images (the first ones of the training split) for the normalization.
N_CALIBRATION = 1000
#: The recommended simulation: the papers' integrate-and-fire neuron with the signed current,
#: lambda at one spike per step (1000 Hz at dt = 1 ms), at most one spike per step, membranes
#: starting at half the threshold, no synapse. Readout: the output averaged over the run.
RECOMMENDED_SIMULATION = {"neuron": "if", "scale_firing_rates": 1000.0,
                          "max_spikes_per_step": 1, "initial_voltage": 0.5, "synapse": None}


def train(model: tf.keras.Model, x_train: np.ndarray, y_train: np.ndarray, *, epochs: int = 2,
          batch_size: int = 32, learning_rate: float = 1e-3, seed: int = 0) -> tf.keras.Model:
    """Train a model briefly and deterministically (Adam, sparse cross-entropy).

    A model whose last layer has a softmax activation is trained on its probabilities, any
    other on its outputs as logits (a ReLU output layer too: its logits are then >= 0).

    Parameters
    ----------
    model : tf.keras.Model
        From one of the builders (untrained).
    x_train : ndarray, shape (n, 28, 28, 1)
        Images in [0, 1].
    y_train : ndarray of int, shape (n,)
        Labels.
    epochs, batch_size, learning_rate : int, int, float
        Adam's settings; 1-3 epochs on the 4,000 training images of ``load_mnist()`` take
        seconds on a CPU.
    seed : int
        Fixes the batch order (and, with TensorFlow's deterministic ops switched on, the result
        on one machine). The weights were initialized when the model was built: build it after
        ``tf.keras.utils.set_random_seed`` for reproducible weights.

    Returns
    -------
    tf.keras.Model
        The same model, trained and compiled.
    """
    tf, _ = _layers()
    tf.keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    last = model.layers[-1]
    softmax = getattr(last, "activation", None) is tf.keras.activations.softmax
    model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=not softmax),
                  metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=epochs, batch_size=batch_size, verbose=0)
    return model


def build_and_train(name: str, x_train: np.ndarray, y_train: np.ndarray, *, epochs: int = 2,
                    seed: int = 0) -> tf.keras.Model:
    """Build the model kind ``name`` (weights seeded with ``seed``) and :func:`train` it."""
    tf, _ = _layers()
    builders = {**MODELS, **GRAPH_MODELS, **LAYER_MODELS}
    if name not in builders:
        raise ValueError(f"unknown model {name!r}; use one of {sorted(builders)}")
    tf.keras.utils.set_random_seed(seed)
    return train(builders[name](), x_train, y_train, epochs=epochs, seed=seed)


@dataclass
class ZooResult:
    """A model converted with the recommended settings and measured on the same test images.

    Attributes
    ----------
    name : str
    ann : snnlib.analysis.stats.Accuracy
        The Keras model's accuracy with its 95 % interval.
    rate : snnlib.analysis.stats.Accuracy
        The converted network's accuracy in rate mode (no spikes): the ANN's, unless the
        conversion changed the function (``max_to_avg_pool``).
    snn : dict
        Steps T -> the spiking network's accuracy after T steps (:class:`stats.Accuracy`).
    ann_correct, snn_correct : ndarray of bool / dict
        Per image, correct or not (for :func:`snnlib.analysis.stats.compare_paired`).
    verify : float
        Largest rate-mode difference from Keras (:func:`snnlib.verify`).
    notes : list of str
        What the conversion changed (``network.notes``).
    neuron : str
    """

    name: str
    ann: stats.Accuracy
    rate: stats.Accuracy
    snn: dict
    ann_correct: np.ndarray = field(repr=False)
    snn_correct: dict = field(repr=False)
    verify: float
    notes: list
    neuron: str

    def gap(self, n_steps: int) -> float:
        """ANN accuracy minus SNN accuracy after ``n_steps`` steps (fraction)."""
        return self.ann.value - self.snn[n_steps].value

    def compare(self, n_steps: int) -> stats.PairedComparison:
        """Exact McNemar test of the SNN after ``n_steps`` steps against the ANN."""
        return stats.compare_paired(self.snn_correct[n_steps], self.ann_correct)


def evaluate(model: tf.keras.Model, x_train: np.ndarray, x_test: np.ndarray,
             y_test: np.ndarray, *, name: str | None = None, steps: Sequence[int] = (32, 64),
             neuron: str = "if", convert_options: dict | None = None,
             n_calibration: int = N_CALIBRATION, seed: int = 0) -> ZooResult:
    """Convert ``model`` with the recommended settings, verify it, and measure both accuracies.

    Parameters
    ----------
    model : tf.keras.Model
        Trained.
    x_train : ndarray
        Training images; the first ``n_calibration`` calibrate the normalization.
    x_test, y_test : ndarray
        Test images and labels (the book's protocol: the whole 1,000-image split).
    name : str, optional
        For the result (default: the model's name).
    steps : sequence of int
        The T at which the SNN accuracy is read (one run of ``max(steps)`` steps: the readout
        after T steps uses steps 1..T only).
    neuron : str
        "if" (recommended: the papers' signed-current integrate-and-fire) or "spiking_relu"
        (NengoDL's rectified neuron), with the rest of :data:`RECOMMENDED_SIMULATION`.
    convert_options : dict, optional
        More ``convert`` options, e.g. the model's :data:`FIXES`; they replace the
        recommended normalization's where both set one.
    n_calibration : int
        Calibration images.
    seed : int
        Simulation seed (nothing is random with the recommended settings).

    Returns
    -------
    ZooResult
    """
    from snnlib.convert import convert, verify
    from snnlib.sim.simulator import simulate

    options = {**RECOMMENDED_NORMALIZATION, **(convert_options or {})}  # the fix wins
    network = convert(model, calibration=x_train[:n_calibration], **options)
    difference = verify(network, model, x_test)
    y_test = np.asarray(y_test)
    keras = predict(model, x_test, batch_size=256)
    ann_correct = keras.reshape(len(x_test), -1).argmax(axis=1) == y_test
    rate_correct = network.forward(x_test).reshape(len(x_test), -1).argmax(axis=1) == y_test
    options = dict(RECOMMENDED_SIMULATION, neuron=neuron)
    result = simulate(network, x_test, n_steps=max(steps), seed=seed, **options)
    correct = protocol.correct_over_time(result.output, y_test, protocol.DEFAULT_READOUT)
    snn_correct = {int(t): correct[:, t - 1] for t in steps}
    return ZooResult(
        name=name or model.name, ann=stats.accuracy_interval(ann_correct),
        rate=stats.accuracy_interval(rate_correct),
        snn={t: stats.accuracy_interval(c) for t, c in snn_correct.items()},
        ann_correct=ann_correct, snn_correct=snn_correct, verify=float(difference),
        notes=list(network.notes), neuron=neuron)
