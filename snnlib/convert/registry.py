"""The converter registry: Keras layer type -> converter class (as nengo_dl's
``Converter.register``)."""
from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import tensorflow as tf

from snnlib.convert.builder import LayerConverter
from snnlib.convert.report import EXTENDING, ConversionError, Problem

layers = tf.keras.layers


# --------------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------------

class ConverterRegistry(Mapping):
    """Keras layer type -> converter class: a read-only mapping with a thread-safe ``register``.

    Exact types are looked up (a subclass may change ``call``, so it needs its own converter).
    """

    def __init__(self) -> None:
        self._converters: dict[type, type[LayerConverter]] = {}
        self._lock = threading.Lock()

    def __getitem__(self, keras_type: type) -> type[LayerConverter]:
        return self._converters[keras_type]

    def __iter__(self) -> Iterator[type]:
        return iter(dict(self._converters))

    def __len__(self) -> int:
        return len(self._converters)

    def register(self, keras_type: type, converter_class: type[LayerConverter]) -> None:
        """Use ``converter_class`` for layers of exactly ``keras_type`` (warns on a replacement)."""
        if not (isinstance(converter_class, type) and issubclass(converter_class, LayerConverter)):
            raise TypeError(f"{converter_class!r} is not a LayerConverter subclass")
        with self._lock:
            old = self._converters.get(keras_type)
            if old is not None and old is not converter_class:
                warnings.warn(f"the converter for {keras_type.__name__} ({old.__name__}) is "
                              f"replaced by {converter_class.__name__}", stacklevel=3)
            self._converters[keras_type] = converter_class

    def supported(self) -> str:
        """The supported layer types, as a sentence fragment built from the registry."""
        with self._lock:
            items = list(self._converters.items())
        return ", ".join(converter.description or keras_type.__name__
                         for keras_type, converter in items if converter.supported)

    def unknown(self, layer: tf.keras.layers.Layer) -> Problem:
        """The problem of a layer whose type has no registered converter."""
        kind = type(layer).__name__
        if isinstance(layer, tf.keras.Model):
            return Problem(layer.name, kind, "a model nested in the model",
                           "build one Sequential or functional model from its layers")
        return Problem(layer.name, kind, "this layer type is not supported (no converter is "
                       "registered for it)", "to convert it, register a converter: decorate a "
                       "snnlib.convert.LayerConverter subclass with "
                       f"@snnlib.register_converter({kind}) (the same as "
                       "snnlib.convert.register, imported with 'from snnlib.convert import "
                       f"register') and add a stage in its convert(builder) ({EXTENDING})")

    def converter(self, layer: tf.keras.layers.Layer, **options: Any) -> LayerConverter:
        """The registered converter for ``layer``; fails naming the layer and what to do.

        ``options`` (``is_output``, ``max_to_avg_pool``) are passed to the converter.
        """
        converter_class = self._converters.get(type(layer))
        if converter_class is None:
            problem = self.unknown(layer)
            raise ConversionError(f"Cannot convert {problem}. Supported: {self.supported()}",
                                  [problem])
        return converter_class(layer, **options)


#: The converter registry: Keras layer type -> converter class.
CONVERTERS = ConverterRegistry()


def register(keras_type: type) -> Callable[[type], type]:
    """Class decorator: use the decorated converter for layers of exactly ``keras_type``.

    Registering a type again replaces its converter, with a warning.
    """
    def decorator(converter_class: type) -> type:
        CONVERTERS.register(keras_type, converter_class)
        return converter_class
    return decorator


def supported_layers() -> str:
    """The layer types the registered converters support (e.g. for error messages)."""
    return CONVERTERS.supported()
