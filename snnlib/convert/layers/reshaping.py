"""Converters of layers that move values without weights: flatten, reshape, padding,
cropping, upsampling."""
from __future__ import annotations

import tensorflow as tf

from snnlib.convert.builder import Builder, LayerConverter
from snnlib.convert.registry import register
from snnlib.convert.report import Problem
from snnlib.network.ops import (
    Cropping2DOp,
    ReshapeLayerOp,
    ReshapeOp,
    UpSampling2DOp,
    ZeroPad2DOp,
)

__all__ = [
    "UpSampling2DConverter",
    "Cropping2DConverter",
    "FlattenConverter",
    "ReshapeConverter",
    "ZeroPadding2DConverter",
]

layers = tf.keras.layers


@register(layers.UpSampling2D)
class UpSampling2DConverter(LayerConverter):
    description = "UpSampling2D (nearest)"

    def problems(self) -> list[Problem]:
        found = self.channels_last_problems()
        if self.layer.interpolation != "nearest":
            found.append(self.problem(
                f"interpolation={self.layer.interpolation!r}: only 'nearest' converts (it "
                "copies spikes; an interpolation would mix them with fractional weights that "
                "no op here computes)", "use interpolation='nearest' and retrain"))
        return found

    def convert(self, builder: Builder) -> None:
        op = UpSampling2DOp(tuple(int(v) for v in self.layer.size))
        builder.add(self.layer.name, op, self.output_shape())


@register(layers.Cropping2D)
class Cropping2DConverter(LayerConverter):
    def problems(self) -> list[Problem]:
        return self.channels_last_problems()

    def convert(self, builder: Builder) -> None:
        cropping = tuple(tuple(int(c) for c in pair) for pair in self.layer.cropping)
        builder.add(self.layer.name, Cropping2DOp(cropping), self.output_shape())


@register(layers.Flatten)
class FlattenConverter(LayerConverter):
    def problems(self) -> list[Problem]:
        return self.channels_last_problems()

    def convert(self, builder: Builder) -> None:
        builder.add(self.layer.name, ReshapeOp(self.output_shape()), self.output_shape())


@register(layers.Reshape)
class ReshapeConverter(LayerConverter):
    def convert(self, builder: Builder) -> None:
        builder.add(self.layer.name, ReshapeLayerOp(self.output_shape()), self.output_shape())


@register(layers.ZeroPadding2D)
class ZeroPadding2DConverter(LayerConverter):
    def problems(self) -> list[Problem]:
        return self.channels_last_problems()

    def convert(self, builder: Builder) -> None:
        padding = tuple(tuple(int(p) for p in pair) for pair in self.layer.padding)
        builder.add(self.layer.name, ZeroPad2DOp(padding), self.output_shape())
