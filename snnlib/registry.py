"""One registry idiom for everything snnlib looks up by key: layer converters (Keras layer type
-> :class:`~snnlib.convert.LayerConverter`), neuron models (name -> :class:`~snnlib.sim.neurons.
NeuronModel`) and normalization rules (name -> :class:`~snnlib.normalize.NormalizationRule`).

A :class:`Registry` is a read-only mapping with a thread-safe :meth:`~Registry.register`, used
as a class decorator, the idiom of nengo-dl's ``Converter.register`` (Keras layer type ->
``LayerConverter``) and ``Builder.register`` (operator -> builder)::

    @NEURON_MODELS.register          # the key is the class's ``name``
    class MyNeuron(NeuronModel):
        name = "my_neuron"

    @CONVERTERS.register(MyLayer)    # an explicit key (nengo-dl's form)
    class MyLayerConverter(LayerConverter):
        ...

Registering a key again replaces its entry, with a ``UserWarning`` naming both; looking up an
unknown key raises :class:`UnknownNameError` (a ``KeyError`` and a ``ValueError``), whose
message lists the registered names.
"""
from __future__ import annotations

import threading
import warnings
from collections.abc import Hashable, Iterator, Mapping
from typing import Any, TypeVar

from snnlib.validation import ArgumentError

__all__ = ["Registry", "UnknownNameError", "key_name"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V", bound=type)

_NO_KEY: Any = object()


class UnknownNameError(KeyError, ArgumentError):
    """A key that is not registered. A ``KeyError`` (``Mapping.get`` and ``in`` work as usual) and
    an :class:`~snnlib.validation.ArgumentError` (``ValueError``, ``TypeError``): a bad argument
    such as ``neuron="izhikevich"``. Its message lists the registered names."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def key_name(key: Hashable) -> str:
    """How a key reads in messages: a class by its ``__name__``, anything else by ``str``."""
    return key.__name__ if isinstance(key, type) else str(key)


class Registry(Mapping[K, V]):
    """A table of classes by key: a read-only mapping with a thread-safe :meth:`register`.

    The shape of nengo-dl's ``Converter.register`` / ``Builder.register``: classes register
    themselves with a decorator, lookups are by exact key, and a registration that replaces
    another warns.

    Parameters
    ----------
    kind : str
        What an entry is, for messages ("neuron model", "normalization", "layer converter").
    base : type
        Every registered value must be a subclass of it (else ``TypeError``).
    key_attribute : str, optional
        The class attribute that holds an entry's key (``"name"``): then ``@registry.register``
        needs no key. None: the key must always be given (``@registry.register(key)``).
    argument : str, optional
        The argument the user names an entry with, for the unknown-key message
        (``"unknown neuron 'x'"``); default ``kind``.
    hint : str
        Appended to the unknown-key message after the list of names (the other accepted
        values, how to register a new entry).

    Examples
    --------
    >>> class Rule: name = ""
    >>> RULES = Registry("rule", base=Rule, key_attribute="name")
    >>> @RULES.register
    ... class Max(Rule):
    ...     name = "max"
    >>> RULES["max"] is Max
    True
    """

    def __init__(self, kind: str, *, base: type, key_attribute: str | None = None,
                 argument: str | None = None, hint: str = "") -> None:
        self.kind = kind
        self.base = base
        self.key_attribute = key_attribute
        self.argument = argument or kind
        self.hint = hint
        self._items: dict[K, V] = {}
        self._lock = threading.RLock()

    # -- the read-only mapping ---------------------------------------------------------------

    def __getitem__(self, key: K) -> V:
        try:
            return self._items[key]
        except KeyError:
            raise self.unknown_error(key) from None
        except TypeError:  # an unhashable key (a list, a dict) is not registered either
            raise self.unknown_error(key) from None

    def __contains__(self, key: object) -> bool:
        try:
            return key in self._items
        except TypeError:
            return False

    def get(self, key: K, default: Any = None) -> Any:
        """The entry of ``key``, or ``default`` if it has none."""
        try:
            return self._items.get(key, default)
        except TypeError:
            return default

    def __iter__(self) -> Iterator[K]:
        with self._lock:
            return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self.kind}s: {', '.join(self.names())}>"

    def names(self) -> list[str]:
        """The registered keys as they read in messages, sorted."""
        with self._lock:
            keys = list(self._items)
        return sorted(key_name(key) for key in keys)

    def unknown_error(self, key: Any) -> UnknownNameError:
        """The error for a key that is not registered: names it and lists the registered ones."""
        shown = key.__name__ if isinstance(key, type) else repr(key)
        return UnknownNameError(f"unknown {self.argument} {shown}; use one of "
                                f"{self.names()}{self.hint}")

    # -- registering -------------------------------------------------------------------------

    def register(self, value: V | None = None, *, key: K = _NO_KEY, stacklevel: int = 1) -> Any:
        """Register a class under a key; as a class decorator, with or without the key.

        ``@registry.register`` (the key read from the class's ``key_attribute``),
        ``@registry.register(key=k)``, or a plain call ``registry.register(cls, key=k)``.
        Registering a key again replaces its entry with a ``UserWarning`` (registering the
        same class again is silent).

        Parameters
        ----------
        value : type, optional
            The class. Left out: a decorator is returned.
        key : hashable, optional
            Its key; default: the class's ``key_attribute``.
        stacklevel : int
            Where the replacement warning points, as ``warnings.warn``'s, counted from the
            code that calls ``register`` (or applies the decorator): 1 blames that code; a
            function that wraps ``register`` passes 2 to blame its own caller.

        Returns
        -------
        type or callable
            The class, unchanged (so that the decorator keeps it); or the decorator.

        Raises
        ------
        TypeError
            ``value`` is not a subclass of ``base``, or it has no key.
        """
        if value is None:
            def decorator(cls: V) -> V:
                return self._store(cls, key, stacklevel + 2)
            return decorator
        return self._store(value, key, stacklevel + 2)

    def _store(self, value: Any, key: Any, stacklevel: int) -> Any:
        needs_key = self.key_attribute is not None and key is _NO_KEY
        if key is _NO_KEY and not needs_key:
            raise TypeError(f"registering a {self.kind} needs its key: "
                            f"@register(key) (got {value!r})")
        if not (isinstance(value, type) and issubclass(value, self.base)) or \
                (needs_key and not getattr(value, self.key_attribute, None)):
            with_key = f" with a non-empty {self.key_attribute}" if needs_key else ""
            raise TypeError(f"{value!r} must be a {self.base.__name__} subclass{with_key}")
        if needs_key:
            key = getattr(value, self.key_attribute)
        with self._lock:
            old = self._items.get(key)
            if old is not None and old is not value:
                warnings.warn(f"{self.kind} {key_name(key)!r}: {old.__name__} replaced by "
                              f"{value.__name__}", UserWarning, stacklevel=stacklevel)
            self._items[key] = value
        return value

    def unregister(self, key: K) -> V:
        """Remove the entry of ``key`` and return it (e.g. after a temporary registration).

        Raises
        ------
        UnknownNameError
            ``key`` is not registered.
        """
        with self._lock:
            if key not in self:
                raise self.unknown_error(key)
            return self._items.pop(key)

