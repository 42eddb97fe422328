"""Converters of activations: ReLU neurons, the dropped softmax, identities at inference."""
from __future__ import annotations

import tensorflow as tf

from snnlib.convert.activation_rules import CLIPPED_REASON, NEGATIVE_RATES, softmax_note
from snnlib.convert.assemble import add_relu
from snnlib.convert.builder import Builder, LayerConverter
from snnlib.convert.registry import register
from snnlib.convert.report import Problem

__all__ = [
    "ReLUConverter",
    "ActivationConverter",
    "SoftmaxConverter",
    "IdentityConverter",
]

layers = tf.keras.layers


@register(layers.ReLU)
class ReLUConverter(LayerConverter):
    description = "ReLU (plain)"

    def problems(self) -> list[Problem]:
        layer, found = self.layer, []
        if layer.max_value is not None:
            found.append(self.problem(
                f"a clipped ReLU (max_value={float(layer.max_value):g}; relu6 when 6): "
                f"{CLIPPED_REASON}", "use ReLU() without max_value and retrain"))
        if float(layer.negative_slope) != 0:
            found.append(self.problem(
                f"a leaky ReLU (negative_slope={float(layer.negative_slope):g}): "
                f"{NEGATIVE_RATES[0]}", NEGATIVE_RATES[1]))
        if float(layer.threshold) != 0:
            found.append(self.problem(
                f"a thresholded ReLU (threshold={float(layer.threshold):g}) is not supported",
                "use ReLU() and retrain"))
        return found

    def convert(self, builder: Builder) -> None:
        add_relu(builder, self.layer.name)


@register(layers.Activation)
class ActivationConverter(LayerConverter):
    description = "Activation('relu', 'linear'; 'softmax' in the output layer)"

    def problems(self) -> list[Problem]:
        return self.activation_problems()

    def notes(self) -> list[str]:
        return self.softmax_notes()

    def convert(self, builder: Builder) -> None:
        activation = self.activation()
        if activation == "relu":
            add_relu(builder, self.layer.name)
        elif activation == "softmax":
            builder.drop_softmax(self.layer.name)


@register(layers.Softmax)
class SoftmaxConverter(LayerConverter):
    description = "Softmax (as the output layer)"

    def problems(self) -> list[Problem]:
        axis = self.layer.axis
        if not self.is_output:
            return [self.problem("a softmax inside the network has no rate equivalent",
                                 "remove it and retrain; a softmax converts only as the output "
                                 "layer, where it is dropped (argmax is unchanged)")]
        if axis not in (-1, len(self.layer.input_shape) - 1):
            return [self.problem(f"a softmax over axis {axis} (not the last) is not supported",
                                 "use axis=-1")]
        return []

    def notes(self) -> list[str]:
        return [softmax_note(self.layer.name)]

    def convert(self, builder: Builder) -> None:
        builder.drop_softmax(self.layer.name)


class IdentityConverter(LayerConverter):
    """Layers that are the identity at inference (dropout, noise, regularization)."""

    def convert(self, builder: Builder) -> None:
        pass  # identity at inference


for _keras_type in (layers.Dropout, layers.SpatialDropout2D, layers.GaussianDropout,
                    layers.GaussianNoise, layers.AlphaDropout, layers.ActivityRegularization):
    register(_keras_type)(type(f"{_keras_type.__name__}Converter", (IdentityConverter,), {}))
