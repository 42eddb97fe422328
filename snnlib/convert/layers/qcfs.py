"""The QCFS activation as a Keras layer, and its converter: ReLU neurons whose lambda is the
trained threshold (Bu et al., ICLR 2022; see :mod:`snnlib.ann.qcfs` for training with it).

The layer lives here, beside its converter, so that the registry (and the supported-layer list
of ``check`` and ``convert``) has it from the start.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from snnlib import validation
from snnlib.convert.assemble import add_relu
from snnlib.convert.builder import Builder, LayerConverter
from snnlib.convert.registry import register
from snnlib.convert.report import Problem

__all__ = ["PAPER_THRESHOLD", "QCFS", "QCFSConverter", "qcfs"]

#: The paper's initial threshold (``MyFloor(up=8.)``, ``IF(thresh=8.0)``).
PAPER_THRESHOLD = 8.0


def qcfs(x: np.ndarray, threshold: float, levels: int) -> np.ndarray:
    """The QCFS function in NumPy: ``threshold * clip(floor(x L / threshold + 1/2) / L, 0, 1)``.

    Parameters
    ----------
    x : ndarray
        Pre-activations.
    threshold : float
        theta (> 0), in the units of ``x``.
    levels : int
        L (>= 1).
    """
    threshold = validation.real(threshold, "threshold", low=0, low_open=True)
    levels = validation.integer(levels, "levels", low=1)
    steps = np.floor(np.asarray(x, dtype=np.float64) * levels / threshold + 0.5)
    return threshold * np.clip(steps / levels, 0.0, 1.0)


@tf.keras.utils.register_keras_serializable(package="snnlib")
class QCFS(tf.keras.layers.Layer):
    """Quantization-clip-floor-shift activation with a trainable threshold (Bu et al. 2022).

    ``h(x) = theta * clip(floor(x * L / theta + 1/2) / L, 0, 1)``; the floor's gradient is
    passed straight through (the paper's ``GradFloor``), so ``theta`` gets the gradient of
    ``x / theta`` inside the clip and of the product by ``theta``. The clip is applied here
    before the floor (the paper's ``MyFloor`` floors, then clamps): the values are the same,
    but the gradient passes for ``0 < x < theta`` here and for
    ``-theta / (2L) <= x < theta (1 + 1 / (2L))`` in the paper (the shipped networks were
    trained with this form).

    Parameters
    ----------
    levels : int
        L, the quantization levels (>= 1): the ANN's activations take ``L + 1`` values
        ``0, theta / L, ..., theta``. The paper trains CIFAR networks with L = 4 or 8.
    threshold : float
        Initial theta (> 0), in the units of the layer's input (default: the paper's 8.0;
        :func:`use_qcfs` can start it from data).
    trainable_threshold : bool
        Learn theta with the weights (the paper's choice).
    """

    def __init__(self, levels: int = 4, threshold: float = PAPER_THRESHOLD,
                 trainable_threshold: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.levels = validation.integer(levels, "levels", low=1)
        self.initial_threshold = validation.real(threshold, "threshold", low=0,
                                                 low_open=True)
        self.trainable_threshold = validation.boolean(trainable_threshold,
                                                      "trainable_threshold")

    def build(self, input_shape: Any) -> None:
        self.threshold = self.add_weight(
            name="threshold", shape=(),
            initializer=tf.keras.initializers.Constant(self.initial_threshold),
            trainable=self.trainable_threshold)
        super().build(input_shape)

    def call(self, x: tf.Tensor) -> tf.Tensor:
        theta = tf.cast(self.threshold, x.dtype)
        level = tf.clip_by_value(x / theta, 0.0, 1.0) * self.levels + 0.5
        level = level + tf.stop_gradient(tf.floor(level) - level)  # straight-through floor
        return level / self.levels * theta

    def get_config(self) -> dict:
        return {**super().get_config(), "levels": self.levels,
                "threshold": self.initial_threshold,
                "trainable_threshold": self.trainable_threshold}


@register(QCFS)
class QCFSConverter(LayerConverter):
    """A QCFS layer becomes ReLU neurons whose lambda is its trained threshold.

    ``snnlib.convert`` then normalizes with these lambdas when no data rule is given
    (``builder.trained_scales``); :func:`snnlib.verify` compares the converted network with the
    model in which ReLU stands in place of each QCFS layer: the rate mode is the unquantized,
    unclipped limit, and the spiking neurons quantize (T steps) and clip (one spike per step)
    by themselves.
    """

    description = "QCFS (snnlib.ann.qcfs: ReLU neurons, lambda = the trained threshold)"

    def threshold(self) -> float:
        return float(np.asarray(self.layer.threshold.numpy()))

    def problems(self) -> list[Problem]:
        theta = self.threshold()
        if not np.isfinite(theta) or theta <= 0:
            return [self.problem(f"its trained threshold is {theta!r}; it must be a positive "
                                 "number (lambda of the layer)", "retrain with a smaller "
                                 "learning rate, or set layer.threshold to a positive value")]
        return []

    def notes(self) -> list[str]:
        return [f"QCFS layer {self.layer.name!r} (L = {self.layer.levels}): ReLU neurons, "
                f"lambda = its trained threshold {self.threshold():.4g}; verify compares with "
                "ReLU in its place (the neurons quantize and clip on their own)"]

    def convert(self, builder: Builder) -> None:
        for problem in self.problems():
            self.fail(problem.reason, problem.fix)
        add_relu(builder, self.layer.name)
        builder.trained_scales[self.layer.name] = self.threshold()
        builder.relu_stand_ins.append(self.layer.name)
