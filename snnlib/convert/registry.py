"""The converter registry: Keras layer type -> converter class, a :class:`snnlib.registry.Registry`
(the idiom of nengo-dl's ``Converter.register``)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tensorflow as tf

from snnlib.convert.builder import LayerConverter
from snnlib.convert.report import EXTENDING, ConversionError, Problem
from snnlib.registry import Registry

__all__ = [
    "ConverterRegistry",
    "CONVERTERS",
    "register",
    "supported_layers",
]

layers = tf.keras.layers


# --------------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------------

class ConverterRegistry(Registry):
    """Keras layer type -> converter class: a read-only mapping with a thread-safe ``register``.

    A :class:`snnlib.registry.Registry` (as nengo-dl's ``Converter.register``, the model of
    the idiom) with what conversion needs on top: the list of supported layers
    (:meth:`supported`), the problem of an unknown layer type (:meth:`unknown`) and the
    converter of a layer (:meth:`converter`). Exact types are looked up (a subclass may change
    ``call``, so it needs its own converter).
    """

    def __init__(self) -> None:
        super().__init__("layer converter", base=LayerConverter, argument="Keras layer type",
                         hint=" (register a converter with snnlib.register_converter)")

    def register(self, keras_type: type | None = None,  # type: ignore[override]
                 converter_class: type[LayerConverter] | None = None, *,
                 key: Any = None, stacklevel: int = 1) -> Any:
        """Use ``converter_class`` for layers of exactly ``keras_type`` (warns on a replacement).

        ``CONVERTERS.register(keras_type, converter_class)``, or as a class decorator,
        ``@CONVERTERS.register(keras_type)`` (nengo-dl's ``Converter.register``).

        Parameters
        ----------
        keras_type : type
            The Keras layer class (``key=`` is the same).
        converter_class : type, optional
            A :class:`LayerConverter` subclass; left out, a decorator is returned.
        stacklevel : int
            As :meth:`snnlib.registry.Registry.register`.

        Returns
        -------
        type or callable
            ``converter_class``, or the decorator.
        """
        keras_type = keras_type if key is None else key
        if keras_type is None:
            raise TypeError("registering a layer converter needs the Keras layer type: "
                            "@register(KerasLayerType)")
        # a direct call goes through one more frame (this one); the decorator is applied by
        # the caller's code itself
        return super().register(converter_class, key=keras_type,
                                stacklevel=stacklevel + (converter_class is not None))

    def supported(self) -> str:
        """The supported layer types, as a sentence fragment built from the registry."""
        with self._lock:
            items = list(self._items.items())
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
        converter_class = self.get(type(layer))
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
    return CONVERTERS.register(keras_type)


def supported_layers() -> str:
    """The layer types the registered converters support (e.g. for error messages)."""
    return CONVERTERS.supported()
