"""The book's ANN: a small ReLU convnet, its training, and its weights saved in the repository.

The architecture follows NengoDL's "Converting a Keras model to an SNN" example: two ReLU
convolutions and a linear dense readout. Chapter 1 trains it; later chapters call
:func:`load_pretrained_convnet` instead of training again.

The deeper network (:func:`build_deep_convnet`: six convolutions with batch normalization and
average pooling, VGG-style) is where the textbook effects of conversion show: errors that
compound layer by layer, max vs percentile normalization, the neuron choice. Its shipped
weights (:func:`load_pretrained_deep_convnet`) were made by :func:`save_deep_convnet_weights`.

The convnet trained for LIF neurons (:func:`train_soft_lif_convnet`: the same network and
training, its ReLUs replaced by the LIF neuron's smoothed rate curve, chapter 7) ships too
(:func:`load_pretrained_soft_lif_convnet`, made by :func:`save_soft_lif_convnet_weights`).
"""
from __future__ import annotations

import io
import json
import os
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from snnlib import validation
from snnlib.keras_predict import predict

if TYPE_CHECKING:
    import tensorflow as tf

__all__ = [
    "PRETRAINED_DIR",
    "PRETRAINED_WEIGHTS",
    "PRETRAINED_INFO",
    "TRAINING",
    "DEEP_FILTERS",
    "DEEP_TRAINING",
    "DEEP_WEIGHTS",
    "DEEP_INFO",
    "SOFT_LIF",
    "SOFT_LIF_WEIGHTS",
    "SOFT_LIF_INFO",
    "CACHE_ENV",
    "cache_dir",
    "build_convnet",
    "build_deep_convnet",
    "train_deep_convnet",
    "train_convnet",
    "use_soft_lif",
    "train_soft_lif_convnet",
    "compile_classifier",
    "accuracy",
    "save_weights",
    "load_weights",
    "load_pretrained_convnet",
    "save_deep_convnet_weights",
    "load_pretrained_deep_convnet",
    "save_soft_lif_convnet_weights",
    "load_pretrained_soft_lif_convnet",
]

PRETRAINED_DIR = Path(__file__).resolve().parents[1] / "pretrained"
#: Weights of the convnet trained in chapter 1 (a deterministic ``.npz``, one array per weight).
PRETRAINED_WEIGHTS = PRETRAINED_DIR / "convnet_mnist.npz"
#: How those weights were made and the test accuracy chapter 1 reported for them.
PRETRAINED_INFO = PRETRAINED_DIR / "convnet_mnist.json"

#: Training settings of chapter 1 (the pretrained weights were made with these).
TRAINING = {"epochs": 10, "batch_size": 32, "learning_rate": 1e-3, "seed": 0}

#: Filters of the deeper network's six convolutions (:func:`build_deep_convnet`).
DEEP_FILTERS = (16, 16, 32, 32, 64, 64)
#: Training settings of the deeper network (its shipped weights were made with these).
DEEP_TRAINING = {"epochs": 10, "batch_size": 32, "learning_rate": 1e-3, "seed": 0}
#: Weights of the deeper network (:func:`load_pretrained_deep_convnet`), and how they were made.
DEEP_WEIGHTS = PRETRAINED_DIR / "deep_convnet_mnist.npz"
DEEP_INFO = PRETRAINED_DIR / "deep_convnet_mnist.json"

#: The convnet trained with the LIF rate curve (chapter 7): :func:`snnlib.soft_lif` with these
#: arguments replaces the ReLU of these layers; training otherwise as :data:`TRAINING`.
SOFT_LIF = {"scale": 100.0, "sigma": 0.1, "layers": ("conv0", "conv1")}
#: Its shipped weights (:func:`load_pretrained_soft_lif_convnet`), and how they were made.
SOFT_LIF_WEIGHTS = PRETRAINED_DIR / "convnet_mnist_soft_lif.npz"
SOFT_LIF_INFO = PRETRAINED_DIR / "convnet_mnist_soft_lif.json"

_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed, so the same weights give the same bytes

#: Environment variable naming the folder for files made at run time (see :func:`cache_dir`).
CACHE_ENV = "SNNLIB_CACHE"


def cache_dir() -> Path:
    """Folder for what the chapters make at run time, such as retrained weights.

    ``$SNNLIB_CACHE`` if set, else ``~/.cache/snnlib``; created if missing. Running a chapter
    never writes into the repository (the shipped weights in :data:`PRETRAINED_DIR` stay as
    they are); save weights there yourself only on purpose, with :func:`save_weights`.

    Returns
    -------
    pathlib.Path
    """
    folder = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "snnlib").expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def build_convnet(input_shape: tuple = (28, 28, 1), n_classes: int = 10) -> tf.keras.Model:
    """Build the book's ReLU convnet (untrained).

    Layers: ``conv0`` Conv2D 32 filters 3x3, ReLU -> ``conv1`` Conv2D 64 filters 3x3, stride 2,
    ReLU -> ``flatten`` -> ``dense`` Dense ``n_classes``, linear (logits).

    Parameters
    ----------
    input_shape : tuple of int
        Image shape (height, width, channels).
    n_classes : int
        Number of output units (classes).

    Returns
    -------
    tf.keras.Model
        A functional model, built (weights initialized) but not compiled.
    """
    import tensorflow as tf

    validation.integer(n_classes, "n_classes", low=2)
    input_shape = tuple(validation.integer(d, "input_shape", low=1) for d in input_shape)
    inp = tf.keras.Input(shape=input_shape, name="input")
    x = tf.keras.layers.Conv2D(32, 3, activation=tf.nn.relu, name="conv0")(inp)
    x = tf.keras.layers.Conv2D(64, 3, strides=2, activation=tf.nn.relu, name="conv1")(x)
    x = tf.keras.layers.Flatten(name="flatten")(x)
    out = tf.keras.layers.Dense(n_classes, name="dense")(x)
    return tf.keras.Model(inputs=inp, outputs=out, name="convnet")


def build_deep_convnet(input_shape: tuple = (28, 28, 1), n_classes: int = 10
                       ) -> tf.keras.Model:
    """Build the book's deeper network (untrained): a VGG-style MNIST convnet.

    Six 3x3 "same" convolutions without bias, each followed by batch normalization and a
    separate ReLU layer, with 16, 16, 32, 32, 64, 64 filters; 2x2 average pooling after the
    2nd and 4th (28 -> 14 -> 7), a 7x7 average pooling after the 6th (global average),
    ``flatten`` and a linear ``dense`` readout (logits). Names: ``conv{i}``, ``bn{i}``,
    ``relu{i}`` (i = 0..5; the spiking layers are the ``relu{i}`` after conversion, batch
    normalization folded into the convolutions), ``pool0``, ``pool1``, ``pool2``.

    Parameters
    ----------
    input_shape : tuple of int
        Image shape (height, width, channels); height and width divisible by 4.
    n_classes : int
        Number of output units (classes).

    Returns
    -------
    tf.keras.Model
        A functional model, built (weights initialized) but not compiled.
    """
    import tensorflow as tf

    layers = tf.keras.layers
    inp = tf.keras.Input(shape=input_shape, name="input")
    x = inp
    for i, filters in enumerate(DEEP_FILTERS):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = layers.BatchNormalization(name=f"bn{i}")(x)
        x = layers.Activation("relu", name=f"relu{i}")(x)
        if i in (1, 3):
            x = layers.AveragePooling2D(2, name=f"pool{i // 2}")(x)
    x = layers.AveragePooling2D(tuple(x.shape[1:3]), name="pool2")(x)
    x = layers.Flatten(name="flatten")(x)
    out = layers.Dense(n_classes, name="dense")(x)
    return tf.keras.Model(inputs=inp, outputs=out, name="deep_convnet")


def train_deep_convnet(x_train: np.ndarray, y_train: np.ndarray, *, epochs: int | None = None,
                       batch_size: int | None = None, learning_rate: float | None = None,
                       seed: int | None = None, validation_data: tuple | None = None,
                       verbose: int = 0) -> tuple[tf.keras.Model, dict]:
    """Train :func:`build_deep_convnet` as :func:`train_convnet` trains the convnet.

    Adam on sparse cross-entropy, the seed fixing initialization and batch order, TensorFlow's
    deterministic ops. Under a minute on 2 CPU cores for the 4,000 training images of
    :func:`snnlib.load_mnist` (23 s to 45 s measured, depending on what else ran).

    Parameters
    ----------
    x_train, y_train, validation_data, verbose
        As :func:`train_convnet`.
    epochs, batch_size, learning_rate, seed : optional
        Default to :data:`DEEP_TRAINING` (the settings of the saved weights).

    Returns
    -------
    model : tf.keras.Model
        The trained, compiled model.
    history : dict
        Per-epoch ``loss`` and ``accuracy`` (and ``val_*`` with ``validation_data``).
    """
    settings = _settings(DEEP_TRAINING, epochs=epochs, batch_size=batch_size,
                         learning_rate=learning_rate, seed=seed)
    return _train(build_deep_convnet, x_train, y_train, settings,
                  validation_data=validation_data, verbose=verbose)


def train_convnet(x_train: np.ndarray, y_train: np.ndarray, *, epochs: int | None = None,
                  batch_size: int | None = None, learning_rate: float | None = None,
                  seed: int | None = None, validation_data: tuple | None = None,
                  verbose: int = 0, prepare_model: Callable | None = None
                  ) -> tuple[tf.keras.Model, dict]:
    """Train :func:`build_convnet` with Adam on sparse cross-entropy, deterministically.

    Parameters
    ----------
    x_train : ndarray, shape (n, 28, 28, 1)
        Training images in [0, 1].
    y_train : ndarray, shape (n,)
        Integer labels.
    epochs, batch_size, learning_rate, seed : optional
        Default to :data:`TRAINING` (the settings of the saved weights). The seed fixes weight
        initialization and batch order; TensorFlow's deterministic ops are switched on, so the
        same seed gives the same weights on the same machine.
    validation_data : tuple, optional
        ``(x, y)`` evaluated after every epoch (reported in the history, not used for training).
    verbose : int
        Keras verbosity; 0 prints nothing.
    prepare_model : callable, optional
        Called with the freshly built model before it is compiled (e.g. to attach
        regularizers, as :func:`snnlib.ann.regularize.train_rate_regularized_convnet` does).

    Returns
    -------
    model : tf.keras.Model
        The trained, compiled model.
    history : dict
        Per-epoch ``loss`` and ``accuracy`` (and ``val_*`` with ``validation_data``).
    """
    settings = _settings(TRAINING, epochs=epochs, batch_size=batch_size,
                         learning_rate=learning_rate, seed=seed)
    return _train(build_convnet, x_train, y_train, settings, validation_data=validation_data,
                  verbose=verbose, prepare_model=prepare_model)


def use_soft_lif(model: tf.keras.Model) -> tf.keras.Model:
    """Give the layers named in :data:`SOFT_LIF` the LIF rate curve (in place; returns ``model``).

    The weights are kept: use it before training (the ``prepare_model`` of
    :func:`train_convnet`) or to evaluate saved weights with the curve they were trained with.
    """
    from snnlib.ann.activations import soft_lif

    for name in SOFT_LIF["layers"]:
        model.get_layer(name).activation = soft_lif(SOFT_LIF["scale"], sigma=SOFT_LIF["sigma"])
    return model


def train_soft_lif_convnet(x_train: np.ndarray, y_train: np.ndarray, *, verbose: int = 0
                           ) -> tuple[tf.keras.Model, dict]:
    """Train the convnet for LIF neurons: :func:`train_convnet` with :func:`use_soft_lif`.

    Under a minute on 2 CPU cores for the 4,000 training images of :func:`snnlib.load_mnist`
    (31 s measured).

    Returns
    -------
    model : tf.keras.Model
        The trained, compiled model, with the soft LIF activations (not convertible as it is:
        copy its weights into :func:`build_convnet`, as :func:`load_pretrained_soft_lif_convnet`
        with ``activation="relu"`` does).
    history : dict
        Per-epoch ``loss`` and ``accuracy``.
    """
    return train_convnet(x_train, y_train, verbose=verbose, prepare_model=use_soft_lif)


def _settings(defaults: dict, **given: float | None) -> dict:
    """``defaults`` with the values given (not None) replacing them."""
    settings = dict(defaults)
    settings.update({key: value for key, value in given.items() if value is not None})
    return settings


def _train(build: Callable, x_train: np.ndarray, y_train: np.ndarray, settings: dict, *,
           validation_data: tuple | None, verbose: int, prepare_model: Callable | None = None
           ) -> tuple[tf.keras.Model, dict]:
    """Build a classifier with ``build(input_shape=, n_classes=)`` and train it with Adam."""
    import tensorflow as tf

    x_train = validation.images(x_train, "x_train")
    y_train = validation.labels(y_train, len(x_train), "y_train")
    validation.optional(settings["epochs"], validation.integer, "epochs", low=1)
    validation.optional(settings["batch_size"], validation.integer, "batch_size", low=1)
    validation.optional(settings["learning_rate"], validation.real, "learning_rate", low=0,
                        low_open=True)
    validation.seed(settings["seed"])
    tf.keras.utils.set_random_seed(settings["seed"])
    tf.config.experimental.enable_op_determinism()
    model = build(input_shape=x_train.shape[1:], n_classes=int(np.max(y_train)) + 1)
    if prepare_model is not None:
        prepare_model(model)
    compile_classifier(model, settings["learning_rate"])
    history = model.fit(
        x_train, y_train, epochs=settings["epochs"], batch_size=settings["batch_size"],
        validation_data=validation_data, verbose=verbose,
    )
    return model, history.history


def compile_classifier(model: tf.keras.Model,
                       learning_rate: float = TRAINING["learning_rate"]) -> None:
    """Compile a logits-output model with Adam, sparse cross-entropy and accuracy."""
    import tensorflow as tf

    model.compile(
        optimizer=tf.keras.optimizers.Adam(learning_rate),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )


def accuracy(model: tf.keras.Model, x: np.ndarray, y: np.ndarray, *,
             batch_size: int = 256) -> float:
    """Fraction of images whose largest output is the label (0-1).

    Parameters
    ----------
    model : tf.keras.Model
        Classifier whose output's last axis holds one score per class.
    x : ndarray
        Images.
    y : ndarray of int, shape (n,)
        Labels: one integer class per image, in the same order (not one-hot).
    batch_size : int
        Images per forward pass.

    Raises
    ------
    ValueError
        Integer images (divide by 255), images of the wrong shape, labels that do not match
        the images one to one, one-hot or non-integer labels, classes the model does not have.
    """
    shape = tuple(model.input_shape[1:])
    x = validation.images(x, "x", shape=None if None in shape else shape)
    n_classes = model.output_shape[-1]
    y = validation.labels(y, len(x), "y", n_classes=n_classes)
    validation.integer(batch_size, "batch_size", low=1)
    scores = predict(model, x, batch_size=batch_size)
    return float(np.mean(np.argmax(scores, axis=-1) == y))


def save_weights(model: tf.keras.Model, path: str | Path, info: dict | None = None) -> Path:
    """Save a model's weights as an ``.npz`` whose bytes depend on the weights only.

    Parameters
    ----------
    model : tf.keras.Model
        Model whose ``weights`` are saved, keyed by their names (``conv0/kernel:0``...).
    path : str or Path
        Output ``.npz`` file.
    info : dict, optional
        Written beside it as JSON (same name, ``.json``): how the weights were made, results.

    Returns
    -------
    pathlib.Path
        The ``.npz`` file written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for weight in model.weights:
            entry = io.BytesIO()
            np.lib.format.write_array(entry, weight.numpy(), allow_pickle=False)
            archive.writestr(zipfile.ZipInfo(weight.name + ".npy", date_time=_ZIP_DATE),
                             entry.getvalue())
    path.write_bytes(buffer.getvalue())
    if info is not None:
        path.with_suffix(".json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return path


def load_weights(model: tf.keras.Model, path: str | Path) -> tf.keras.Model:
    """Load weights saved by :func:`save_weights` into a model of the same architecture.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        The file is not a readable weights archive (truncated, corrupt, another format: the
        message names the path and how to get it back), or a weight of the model is missing
        from it or has another shape (names both).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights file at {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            stored = {name: archive[name] for name in archive.files}
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError) as err:
        raise ValueError(
            f"{path} is not a readable weights file ({type(err).__name__}: {err}): it may be "
            "truncated or corrupt. Save it again with snnlib.save_weights (the book's weights: "
            "rerun chapters/01_train_ann.ipynb, or restore the file from the repository with "
            "git checkout)") from err
    values = []
    for weight in model.weights:
        if weight.name not in stored:
            raise ValueError(f"{path} has no array for weight {weight.name!r}; it holds "
                             f"{sorted(stored)}")
        if stored[weight.name].shape != tuple(weight.shape):
            raise ValueError(
                f"{path}: weight {weight.name!r} has shape {stored[weight.name].shape}, "
                f"the model expects {tuple(weight.shape)}"
            )
        values.append(stored[weight.name])
    model.set_weights(values)
    return model


def load_pretrained_convnet() -> tf.keras.Model:
    """The convnet trained in chapter 1, with its saved weights, compiled.

    Returns
    -------
    tf.keras.Model
        Ready for ``predict``/``evaluate`` and for conversion to a spiking network.

    Raises
    ------
    FileNotFoundError
        The weights file is missing (run chapter 1 to make it).
    """
    if not PRETRAINED_WEIGHTS.exists():
        raise FileNotFoundError(
            f"{PRETRAINED_WEIGHTS} is missing: run chapters/01_train_ann.ipynb to train and save "
            "it"
        )
    model = build_convnet()
    load_weights(model, PRETRAINED_WEIGHTS)
    compile_classifier(model)
    return model


def save_deep_convnet_weights(folder: str | Path, *, verbose: int = 0) -> Path:
    """Train the deeper network with :data:`DEEP_TRAINING` and save its weights in ``folder``.

    This is how ``snnlib/pretrained/deep_convnet_mnist.npz`` and its ``.json`` were made (run
    once, on purpose: ``save_deep_convnet_weights(snnlib.ann.models.PRETRAINED_DIR)``): trained on
    the 4,000 training images of :func:`snnlib.load_mnist`, evaluated on its 1,000 test images.
    The JSON holds the settings, the data and the test accuracy. Retraining on another machine
    (or with other thread settings) gives slightly different weights, since the summation order
    differs: compare by behaviour (accuracy, agreement of the predictions), not by bytes.

    Parameters
    ----------
    folder : str or Path
        Where ``deep_convnet_mnist.npz`` and ``deep_convnet_mnist.json`` are written.
    verbose : int
        Keras verbosity during training.

    Returns
    -------
    pathlib.Path
        The ``.npz`` file written.
    """
    return _train_and_save(train_deep_convnet, Path(folder) / DEEP_WEIGHTS.name, verbose=verbose,
                           architecture="snnlib.ann.models.build_deep_convnet",
                           training=dict(DEEP_TRAINING))


def load_pretrained_deep_convnet() -> tf.keras.Model:
    """The deeper network (:func:`build_deep_convnet`) with its shipped weights, compiled.

    Returns
    -------
    tf.keras.Model

    Raises
    ------
    FileNotFoundError
        The weights file is missing (make it with :func:`save_deep_convnet_weights`).
    """
    model = _load_shipped(build_deep_convnet, DEEP_WEIGHTS, "save_deep_convnet_weights")
    compile_classifier(model)
    return model


def save_soft_lif_convnet_weights(folder: str | Path, *, verbose: int = 0) -> Path:
    """Train :func:`train_soft_lif_convnet` and save its weights in ``folder``.

    This is how ``snnlib/pretrained/convnet_mnist_soft_lif.npz`` and its ``.json`` were made
    (once, on purpose: ``save_soft_lif_convnet_weights(snnlib.ann.models.PRETRAINED_DIR)``). As for
    every retraining, another machine gives slightly different weights: compare by behaviour.

    Parameters
    ----------
    folder : str or Path
        Where ``convnet_mnist_soft_lif.npz`` and ``.json`` are written.
    verbose : int
        Keras verbosity during training.

    Returns
    -------
    pathlib.Path
        The ``.npz`` file written.
    """
    return _train_and_save(train_soft_lif_convnet, Path(folder) / SOFT_LIF_WEIGHTS.name,
                           verbose=verbose, architecture="snnlib.ann.models.build_convnet with "
                           "snnlib.ann.models.use_soft_lif",
                           soft_lif={**SOFT_LIF, "layers": list(SOFT_LIF["layers"])},
                           training=dict(TRAINING))


def load_pretrained_soft_lif_convnet(activation: str = "soft_lif") -> tf.keras.Model:
    """The convnet trained for LIF neurons, with its shipped weights, compiled.

    Parameters
    ----------
    activation : {"soft_lif", "relu"}
        "soft_lif": the network as trained (its Keras accuracy is the reference for the LIF
        simulation); "relu": the same weights in :func:`build_convnet`, the form
        :func:`snnlib.convert` takes (the neuron is chosen when simulating, ``neuron="lif"``).

    Returns
    -------
    tf.keras.Model

    Raises
    ------
    FileNotFoundError
        The weights file is missing (make it with :func:`save_soft_lif_convnet_weights`).
    """
    validation.choice(activation, "activation", ("soft_lif", "relu"))
    model = _load_shipped(build_convnet, SOFT_LIF_WEIGHTS, "save_soft_lif_convnet_weights")
    if activation == "soft_lif":
        use_soft_lif(model)
    compile_classifier(model)
    return model


def _train_and_save(train: Callable, path: Path, *, verbose: int, **info: Any) -> Path:
    """Train with ``train(x, y, verbose=)`` on :func:`snnlib.load_mnist`'s training images and
    save the weights at ``path``, with ``info`` and the test accuracy in the JSON beside them."""
    import tensorflow as tf

    from snnlib.ann.data import load_mnist

    (x_train, y_train), (x_test, y_test) = load_mnist()
    model, history = train(x_train, y_train, verbose=verbose)
    info.update({
        "data": "snnlib.load_mnist(): 4,000 training images; accuracy on its 1,000 test images",
        "test_accuracy": accuracy(model, x_test, y_test),
        "final_training_accuracy": float(history["accuracy"][-1]),
        "tensorflow": tf.__version__,
    })
    return save_weights(model, path, info=info)


def _load_shipped(build: Callable, weights: Path, maker: str) -> tf.keras.Model:
    """``build()`` with the shipped ``weights`` (not compiled); says how to make them if absent."""
    if not weights.exists():
        raise FileNotFoundError(f"{weights} is missing: make it with snnlib.ann.models.{maker}("
                                "snnlib.ann.models.PRETRAINED_DIR)")
    model = build()
    load_weights(model, weights)
    return model
