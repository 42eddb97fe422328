"""Converters of pooling: average pooling (1-D, 2-D, global) and max pooling."""
from __future__ import annotations

from typing import ClassVar

import tensorflow as tf

from snnlib.convert.builder import Builder, LayerConverter
from snnlib.convert.registry import register
from snnlib.convert.report import Problem
from snnlib.network.ops import (
    AvgPool1DOp,
    AvgPool2DOp,
    GlobalAvgPool1DOp,
    GlobalAvgPool2DOp,
    Op,
)

layers = tf.keras.layers



@register(layers.AveragePooling2D)
class AvgPool2DConverter(LayerConverter):
    def problems(self) -> list[Problem]:
        return self.channels_last_problems()

    def convert(self, builder: Builder) -> None:
        op = AvgPool2DOp(tuple(self.layer.pool_size), tuple(self.layer.strides),
                         self.layer.padding)
        builder.add(self.layer.name, op, self.output_shape())


@register(layers.GlobalAveragePooling2D)
class GlobalAvgPool2DConverter(LayerConverter):
    op_class: ClassVar[type] = GlobalAvgPool2DOp

    def problems(self) -> list[Problem]:
        return self.channels_last_problems()

    def convert(self, builder: Builder) -> None:
        op = self.op_class(bool(self.layer.keepdims))
        builder.add(self.layer.name, op, self.output_shape())


@register(layers.GlobalAveragePooling1D)
class GlobalAvgPool1DConverter(GlobalAvgPool2DConverter):
    op_class = GlobalAvgPool1DOp


@register(layers.AveragePooling1D)
class AvgPool1DConverter(LayerConverter):
    def problems(self) -> list[Problem]:
        return self.channels_last_problems()

    def convert(self, builder: Builder) -> None:
        op = AvgPool1DOp(tuple(self.layer.pool_size), tuple(self.layer.strides),
                         self.layer.padding)
        builder.add(self.layer.name, op, self.output_shape())


@register(layers.MaxPooling2D)
class MaxPoolConverter(LayerConverter):
    supported = False
    #: The average-pooling op that replaces it (``max_to_avg_pool=True``).
    swap = "AveragePooling2D"

    def problems(self) -> list[Problem]:
        if self.max_to_avg_pool:
            return self.channels_last_problems()
        return [self.problem(
            "snnlib has no spiking max pooling (it needs a pool gated by online rate "
            "estimates: Rueckauer et al. 2017, section 2.2.5)",
            f"use {self.swap} and retrain, or "
            "convert(..., max_to_avg_pool=True) (changes the function: convert reports the "
            "rate-mode change of the predictions)")]

    def notes(self) -> list[str]:
        if not self.max_to_avg_pool:
            return []
        return [f"{type(self.layer).__name__} {self.layer.name!r} is converted as average "
                "pooling (max_to_avg_pool=True): another function than the Keras model's"]

    def op(self) -> Op:
        layer = self.layer
        return AvgPool2DOp(tuple(layer.pool_size), tuple(layer.strides), layer.padding)

    def convert(self, builder: Builder) -> None:
        if not self.max_to_avg_pool:
            problem = self.problems()[0]
            self.fail(problem.reason, problem.fix)
        builder.add(self.layer.name, self.op(), self.output_shape())
        builder.swapped_pooling.append(self.layer.name)


@register(layers.GlobalMaxPooling2D)
class GlobalMaxPoolConverter(MaxPoolConverter):
    swap = "GlobalAveragePooling2D"

    def op(self) -> Op:
        return GlobalAvgPool2DOp(bool(self.layer.keepdims))
