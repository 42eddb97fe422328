"""Converters of the weighted layers: the input, ``Dense``, ``Conv1D``/``Conv2D`` (grouped,
dilated), depthwise and separable convolutions."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from snnlib.convert.builder import Builder, LayerConverter
from snnlib.convert.registry import register
from snnlib.convert.report import Problem
from snnlib.network.ops import (
    Conv1DOp,
    Conv2DOp,
    DenseOp,
    Op,
)

__all__ = [
    "InputConverter",
    "DenseConverter",
    "Conv2DConverter",
    "Conv1DConverter",
    "DepthwiseConv2DConverter",
    "SeparableConv2DConverter",
]

layers = tf.keras.layers


# --------------------------------------------------------------------------------------------
# The built-in converters, registered at import
# --------------------------------------------------------------------------------------------

@register(layers.InputLayer)
class InputConverter(LayerConverter):
    def convert(self, builder: Builder) -> None:
        pass  # the input shape is read from the model


@register(layers.Dense)
class DenseConverter(LayerConverter):
    description = "Dense (ReLU or linear; softmax in the output layer)"

    def problems(self) -> list[Problem]:
        return self.activation_problems() + self.weight_problems()

    def notes(self) -> list[str]:
        return self.softmax_notes()

    def convert(self, builder: Builder) -> None:
        kernel, bias = self.weights()
        activation = self.activation()
        builder.add(self.layer.name, DenseOp(kernel), self.output_shape(), bias=bias,
                    activation="relu" if activation == "relu" else None, kernel=kernel)
        if activation == "softmax":
            builder.drop_softmax(self.layer.name)


@register(layers.Conv2D)
class Conv2DConverter(LayerConverter):
    description = "Conv2D (ReLU or linear; dilated and grouped too)"

    def problems(self) -> list[Problem]:
        return self.channels_last_problems() + self.activation_problems() + \
            self.weight_problems()

    def notes(self) -> list[str]:
        return self.softmax_notes()

    def op(self, kernel: np.ndarray) -> Op:
        layer = self.layer
        return Conv2DOp(kernel, tuple(layer.strides), layer.padding,
                        tuple(layer.dilation_rate), int(layer.groups))

    def kernel_and_bias(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The op's kernel and the bias (the layer's own, checked to be finite)."""
        return self.weights()

    def convert(self, builder: Builder) -> None:
        kernel, bias = self.kernel_and_bias()
        activation = self.activation()
        builder.add(self.layer.name, self.op(kernel), self.output_shape(), bias=bias,
                    activation="relu" if activation == "relu" else None, kernel=kernel)
        if activation == "softmax":
            builder.drop_softmax(self.layer.name)


@register(layers.Conv1D)
class Conv1DConverter(Conv2DConverter):
    description = "Conv1D (ReLU or linear; causal, dilated and grouped too)"

    def op(self, kernel: np.ndarray) -> Op:
        layer = self.layer
        return Conv1DOp(kernel, tuple(layer.strides), layer.padding,
                        tuple(layer.dilation_rate), int(layer.groups))


@register(layers.DepthwiseConv2D)
class DepthwiseConv2DConverter(Conv2DConverter):
    description = "DepthwiseConv2D (ReLU or linear; a grouped convolution)"

    def kernel_and_bias(self) -> tuple[np.ndarray, np.ndarray | None]:
        # (kh, kw, c, m) -> (kh, kw, 1, c * m): output channel c * m + j, as Keras orders them
        kernel = self.layer.depthwise_kernel.numpy()
        kh, kw, channels, multiplier = kernel.shape
        bias = self.layer.bias.numpy() if self.layer.use_bias else None
        return self.finite(kernel.reshape(kh, kw, 1, channels * multiplier)), self.finite(bias)

    def op(self, kernel: np.ndarray) -> Op:
        layer = self.layer
        return Conv2DOp(kernel, tuple(layer.strides), layer.padding,
                        tuple(layer.dilation_rate), int(layer.input_shape[-1]))


@register(layers.SeparableConv2D)
class SeparableConv2DConverter(Conv2DConverter):
    description = "SeparableConv2D (ReLU or linear; one convolution, kernels composed)"

    def notes(self) -> list[str]:
        return [f"SeparableConv2D {self.layer.name!r} becomes one Conv2D whose kernel is its "
                "depthwise kernel composed with its pointwise kernel: the same linear map (no "
                "neurons lie between the two), so each input spike drives kh * kw * filters "
                "synapses"] + self.softmax_notes()

    def kernel_and_bias(self) -> tuple[np.ndarray, np.ndarray | None]:
        depthwise = self.layer.depthwise_kernel.numpy().astype(np.float64)  # (kh, kw, c, m)
        pointwise = self.layer.pointwise_kernel.numpy().astype(np.float64)  # (1, 1, c*m, f)
        kh, kw, channels, multiplier = depthwise.shape
        pointwise = pointwise.reshape(channels, multiplier, -1)
        kernel = np.einsum("hwcm,cmf->hwcf", depthwise, pointwise).astype(np.float32)
        bias = self.layer.bias.numpy() if self.layer.use_bias else None
        return self.finite(kernel), self.finite(bias)

    def op(self, kernel: np.ndarray) -> Op:
        layer = self.layer
        return Conv2DOp(kernel, tuple(layer.strides), layer.padding,
                        tuple(layer.dilation_rate))
