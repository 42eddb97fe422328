"""Converters of joins, stages that read several inputs: ``Add``, ``Subtract``, ``Average``,
``Concatenate``."""
from __future__ import annotations

from typing import ClassVar

import tensorflow as tf

from snnlib.convert.builder import Builder, LayerConverter
from snnlib.convert.registry import register
from snnlib.convert.report import Problem
from snnlib.network.ops import (
    AddOp,
    ConcatOp,
    Op,
)

__all__ = [
    "JoinConverter",
    "AddConverter",
    "SubtractConverter",
    "AverageConverter",
    "ConcatenateConverter",
]

layers = tf.keras.layers


class JoinConverter(LayerConverter):
    """A layer with several inputs: one stage that reads them all (a graph's join)."""

    joins: ClassVar[bool] = True

    def problems(self) -> list[Problem]:
        shapes = [tuple(shape[1:]) for shape in self.layer.input_shape]
        if len(set(shapes)) > 1:
            return [self.problem(f"its inputs have different shapes {shapes} (Keras "
                                 "broadcasts them); snnlib joins inputs of one shape",
                                 "bring the inputs to one shape before the join (e.g. "
                                 "UpSampling2D, or GlobalAveragePooling2D without keepdims "
                                 "and a Dense layer)")]
        return []

    def weights_per_input(self, n: int) -> tuple:
        return (1.0,) * n

    def op(self, n: int) -> Op:
        return AddOp(self.weights_per_input(n))

    def convert(self, builder: Builder) -> None:
        builder.add(self.layer.name, self.op(len(builder.reading)), self.output_shape())


@register(layers.Add)
class AddConverter(JoinConverter):
    description = "Add (a residual connection)"


@register(layers.Subtract)
class SubtractConverter(JoinConverter):
    def weights_per_input(self, n: int) -> tuple:
        return (1.0, -1.0)


@register(layers.Average)
class AverageConverter(JoinConverter):
    def weights_per_input(self, n: int) -> tuple:
        return (1.0 / n,) * n


@register(layers.Concatenate)
class ConcatenateConverter(JoinConverter):
    description = "Concatenate (channel axis)"

    def problems(self) -> list[Problem]:  # its inputs may differ in channels
        rank = len(self.layer.output_shape)
        if self.layer.axis not in (-1, rank - 1):
            return [self.problem(
                f"axis={self.layer.axis}: only the channel (last) axis converts (each input "
                "keeps its own lambda per channel)", "concatenate along axis=-1")]
        return []

    def op(self, n: int) -> Op:
        return ConcatOp((1.0,) * n)
