"""Converters of per-channel affine maps folded into a neighbour (batch normalization,
``Rescaling``, ``Normalization``)."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from snnlib.convert.assemble import add_affine
from snnlib.convert.builder import Builder, LayerConverter
from snnlib.convert.registry import register
from snnlib.convert.report import Problem

__all__ = [
    "BatchNormConverter",
    "RescalingConverter",
    "NormalizationConverter",
]

layers = tf.keras.layers


@register(layers.BatchNormalization)
class BatchNormConverter(LayerConverter):
    description = ("BatchNormalization (anywhere: folded into a neighbour's weights where exact, "
                   "else a per-channel affine stage)")

    def problems(self) -> list[Problem]:
        layer, found = self.layer, []
        rank = len(layer.input_shape)
        if list(layer.axis) not in ([rank - 1], [-1]):
            found.append(self.problem(f"axis={list(layer.axis)}: only the last (channel) axis "
                                      "is supported", "use axis=-1 (channels last)"))
        if any(not np.all(np.isfinite(w.numpy())) for w in layer.weights):
            found.append(self.problem("its parameters contain NaN or infinite values",
                                      "retrain (e.g. with a smaller learning rate)"))
        variance = layer.moving_variance.numpy()
        if np.any(variance < 0):
            found.append(self.problem(
                f"its moving variance is negative ({int(np.sum(variance < 0))} of "
                f"{variance.size} channels; smallest {float(np.nanmin(variance)):.3g}), so "
                "its scale 1 / sqrt(variance + epsilon) is not a number",
                "set the moving variance from data (retrain, or recompute the statistics)"))
        return found

    def convert(self, builder: Builder) -> None:
        layer = self.layer
        gamma = layer.gamma.numpy().astype(np.float64) if layer.scale else 1.0
        beta = layer.beta.numpy().astype(np.float64) if layer.center else 0.0
        std = np.sqrt(layer.moving_variance.numpy().astype(np.float64) + layer.epsilon)
        scale = gamma / std
        shift = beta - layer.moving_mean.numpy().astype(np.float64) * scale
        add_affine(builder, layer.name, "BatchNormalization", scale, shift)


@register(layers.Rescaling)
class RescalingConverter(LayerConverter):
    description = "Rescaling (folded where exact, else an affine stage)"

    def values(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(scale, offset) per channel, or None when they are not per channel."""
        channels = int(self.layer.input_shape[-1])
        out = []
        for value in (self.layer.scale, self.layer.offset):
            value = np.asarray(value, dtype=np.float64)
            if value.size == 1:
                value = np.full(channels, float(value.ravel()[0]))
            elif value.size != channels or value.shape[-1] != channels:
                return None
            out.append(value.reshape(channels))
        return out[0], out[1]

    def problems(self) -> list[Problem]:
        values = self.values()
        if values is None:
            return [self.problem("its scale or offset is not a scalar or one value per channel",
                                 "use per-channel values, or rescale the inputs before the "
                                 "model")]
        if not all(np.all(np.isfinite(v)) for v in values):
            return [self.problem("its scale or offset is NaN or infinite", "use finite values")]
        return []

    def convert(self, builder: Builder) -> None:
        scale, offset = self.values()
        add_affine(builder, self.layer.name, "Rescaling", scale, offset)


@register(layers.Normalization)
class NormalizationConverter(LayerConverter):
    description = "Normalization (axis=-1; folded where exact, else an affine stage)"

    def values(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(mean, variance) per channel, or None when they are not per channel."""
        channels = int(self.layer.input_shape[-1])
        out = []
        for value in (self.layer.mean, self.layer.variance):
            value = np.asarray(value, dtype=np.float64).ravel()
            if value.size not in (1, channels):
                return None
            out.append(np.broadcast_to(value, (channels,)).copy())
        return out[0], out[1]

    def problems(self) -> list[Problem]:
        if tuple(self.layer.axis) not in ((-1,), (len(self.layer.input_shape) - 1,)):
            return [self.problem(f"axis={self.layer.axis}: only the last (channel) axis is "
                                 "supported", "use axis=-1")]
        values = self.values()
        if values is None or not all(np.all(np.isfinite(v)) for v in values):
            return [self.problem("its mean or variance is not finite and per channel",
                                 "adapt it to data (layer.adapt) before training")]
        if np.any(values[1] < 0):
            return [self.problem("its variance is negative", "adapt it to data")]
        return []

    def convert(self, builder: Builder) -> None:
        mean, variance = self.values()
        std = np.maximum(np.sqrt(variance), tf.keras.backend.epsilon())  # as Keras does
        if self.layer.invert:
            scale, shift = std, mean
        else:
            scale, shift = 1 / std, -mean / std
        add_affine(builder, self.layer.name, "Normalization", scale, shift)
