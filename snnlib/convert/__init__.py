"""Keras -> spiking: from a trained Keras model to a :class:`~snnlib.network.SpikingNetwork`, layer
by layer.

One small converter class per Keras layer type, registered with :func:`register` (as
``nengo_dl.Converter.register`` does). The registry (:data:`CONVERTERS`) is filled with the
built-in converters when this module is imported (which imports TensorFlow), is safe to use from
several threads, and warns when a registration replaces another. Layer types that cannot be
converted (max pooling, leaky ReLU, ``Lambda``, ...) are registered too, with the reason
and the fix, so that the messages come from one place. The model may be a graph: joins
(``Add``, ``Subtract``, ``Average``, ``Concatenate``) are converters like any other, whose stage
reads every input of the layer (:class:`JoinConverter`).

:func:`check` inspects a model without converting it and lists *every* layer that will not
convert, each with its fix, and what the conversion will change (a dropped softmax, a folded
batch normalization); :func:`convert` raises a :class:`ConversionError` with the same full list.
:func:`verify` is the self-check: the converted network in rate mode must reproduce the Keras
outputs.

Adding a layer type = an op (:mod:`snnlib.network.ops`) and a converter::

    @snnlib.register_converter(MyLayer)  # the same as snnlib.convert.register
    class MyLayerConverter(snnlib.convert.LayerConverter):
        def problems(self):          # optional: what stops this layer, each with its fix
            return []

        def convert(self, builder):
            builder.add(self.layer.name, MyOp(...), self.output_shape())

The modules, in the order a model goes through them:

- :mod:`~snnlib.convert.report`: a problem with its fix, :class:`CheckReport`,
  :class:`ConversionError`.
- :mod:`~snnlib.convert.builder`: :class:`Builder` (what a converter adds stages with) and
  :class:`LayerConverter`, the converters' base class.
- :mod:`~snnlib.convert.registry`: :data:`CONVERTERS` and :func:`register`.
- :mod:`~snnlib.convert.layers`: the built-in converters, one module per layer family
  (weighted, pooling, reshaping, activations, affine, joins, refused).
- :mod:`~snnlib.convert.assemble`: merging ReLUs and affine maps into stages; the readout.
- :mod:`~snnlib.convert.pipeline`: the model's graph of layers, :func:`check`, :func:`convert`.
- :mod:`~snnlib.convert.verify`: :func:`verify`, the self-check.
"""
from snnlib.convert import layers  # noqa: F401  (registers the built-in converters)
from snnlib.convert.activation_rules import ACTIVATION_FIXES, RELUS, softmax_note
from snnlib.convert.assemble import (
    add_affine,
    add_relu,
    finish,
    fold_backward,
    fold_forward,
    readout_note,
)
from snnlib.convert.builder import Builder, LayerConverter
from snnlib.convert.layers.activations import (
    ActivationConverter,
    IdentityConverter,
    ReLUConverter,
    SoftmaxConverter,
)
from snnlib.convert.layers.affine import (
    BatchNormConverter,
    NormalizationConverter,
    RescalingConverter,
)
from snnlib.convert.layers.joins import (
    AddConverter,
    AverageConverter,
    ConcatenateConverter,
    JoinConverter,
    SubtractConverter,
)
from snnlib.convert.layers.pooling import (
    AvgPool1DConverter,
    AvgPool2DConverter,
    GlobalAvgPool1DConverter,
    GlobalAvgPool2DConverter,
    GlobalMaxPoolConverter,
    MaxPoolConverter,
)
from snnlib.convert.layers.refused import REFUSED, RefusedConverter
from snnlib.convert.layers.reshaping import (
    Cropping2DConverter,
    FlattenConverter,
    ReshapeConverter,
    UpSampling2DConverter,
    ZeroPadding2DConverter,
)
from snnlib.convert.layers.weighted import (
    Conv1DConverter,
    Conv2DConverter,
    DenseConverter,
    DepthwiseConv2DConverter,
    InputConverter,
    SeparableConv2DConverter,
)
from snnlib.convert.pipeline import check, convert, layer_converter, model_graph
from snnlib.convert.registry import CONVERTERS, ConverterRegistry, register, supported_layers
from snnlib.convert.report import EXTENDING, CheckReport, ConversionError, Problem
from snnlib.convert.verify import keras_reference, verify

__all__ = [
    "ACTIVATION_FIXES", "CONVERTERS", "EXTENDING", "REFUSED", "RELUS", "ActivationConverter",
    "AddConverter", "AverageConverter", "AvgPool1DConverter", "AvgPool2DConverter",
    "BatchNormConverter", "Builder", "CheckReport", "ConcatenateConverter", "ConversionError",
    "ConverterRegistry", "Conv1DConverter", "Conv2DConverter", "Cropping2DConverter",
    "DenseConverter", "DepthwiseConv2DConverter", "FlattenConverter", "GlobalAvgPool1DConverter",
    "GlobalAvgPool2DConverter", "GlobalMaxPoolConverter", "IdentityConverter", "InputConverter",
    "JoinConverter", "LayerConverter", "MaxPoolConverter", "NormalizationConverter", "Problem",
    "ReLUConverter", "RefusedConverter", "RescalingConverter", "ReshapeConverter",
    "SeparableConv2DConverter", "SoftmaxConverter", "SubtractConverter", "UpSampling2DConverter",
    "ZeroPadding2DConverter", "add_affine", "add_relu", "check", "convert", "finish",
    "fold_backward", "fold_forward", "keras_reference", "layer_converter",
    "model_graph", "readout_note", "register", "softmax_note", "supported_layers", "verify",
]
