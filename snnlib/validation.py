"""Argument checks shared by every public function: one wording, one set of rules.

A bad argument stops the call at once with an :class:`ArgumentError` that names the argument,
shows the value and says what is accepted (the range, the type, the fix), instead of a silent
wrong answer later. The rules:

- **numbers** (:func:`real`, :func:`integer`) are real numbers: Python or NumPy ints and floats,
  or 0-d / one-element arrays of them. ``bool`` is refused (``n_steps=True`` is not 1 step),
  and so are strings, complex numbers, NaN and infinities. Counts are integers (a float such as
  ``2.0`` is refused where a count is meant). Ranges are stated in the message as intervals:
  ``(0, 100]``, ``[1, 10000000]``.
- **names** (:func:`names`): a string is *one* name (``record_spikes="conv0"`` means the layer
  conv0, not its letters); otherwise a sequence of strings.
- **images** (:func:`images`): a floating-point array of the expected shape, not empty, finite.
  Integer images (e.g. ``uint8`` pixels 0-255) are refused with the fix: divide by 255 for a
  model trained on images in [0, 1] (the book's), or cast to float for a model that rescales
  raw pixels itself. Accepting them silently would make calibration lambdas 255x too large.
- **labels** (:func:`labels`): one integer class per image (shape ``(n,)``, matching the images
  one to one); one-hot labels are refused with the fix (``labels.argmax(axis=1)``).

:class:`ArgumentError` derives from both ``ValueError`` and ``TypeError``, so code written
against either keeps catching it. :func:`memory_available` is the budget that size checks
(``simulate``'s ``n_steps``, for one) are measured against.
"""
from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

__all__ = ["ArgumentError", "boolean", "choice", "format_bytes", "images", "integer", "labels",
           "memory_available", "names", "optional", "real", "seed"]


class ArgumentError(ValueError, TypeError):
    """A bad argument: wrong type, out of range, wrong shape. The message names it and says
    what is accepted. Both ``except ValueError`` and ``except TypeError`` catch it."""


def _interval(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    left = "(" if low_open or low is None else "["
    right = ")" if high_open or high is None else "]"
    lo = "-inf" if low is None else _number(low)
    hi = "inf" if high is None else _number(high)
    return f"{left}{lo}, {hi}{right}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"


def _describe(kind: str, low: float | None, high: float | None, low_open: bool,
              high_open: bool) -> str:
    """"a positive finite number (in (0, inf))", "an integer in [1, 10]", ..."""
    interval = _interval(low, high, low_open, high_open)
    if low == 0 and high is None:
        sign = "positive" if low_open else "non-negative"
        noun = "integer" if kind == "integer" else "finite number"
        return f"a {sign} {noun} (in {interval})"
    return f"{'an integer' if kind == 'integer' else 'a finite real number'} in {interval}"


def _scalar(value: Any) -> Any:
    """A NumPy 0-d or one-element array as its element; anything else unchanged."""
    if isinstance(value, np.ndarray) and value.size == 1 and value.ndim <= 1:
        return value.reshape(())[()]
    return value


def real(value: Any, name: str, *, low: float | None = None, high: float | None = None,
         low_open: bool = False, high_open: bool = False, hint: str = "") -> float:
    """``value`` as a float after checking it is a finite real number in the range.

    Parameters
    ----------
    value : object
        The argument.
    name : str
        Its name, for the message.
    low, high : float, optional
        Bounds (None: unbounded).
    low_open, high_open : bool
        Exclude the bound itself (``(0, 1]`` is ``low=0, low_open=True, high=1``).
    hint : str
        Appended to the message (what the number means, how to fix it).

    Raises
    ------
    ArgumentError
        A bool, a non-number, NaN or infinite, or outside the range.
    """
    value = _scalar(value)
    what = _describe("real", low, high, low_open, high_open)
    suffix = f" ({hint})" if hint else ""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ArgumentError(f"{name}={value!r} must be {what}{suffix}; got "
                            f"{type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise ArgumentError(f"{name}={value!r} must be {what}{suffix}")
    below = low is not None and (number <= low if low_open else number < low)
    above = high is not None and (number >= high if high_open else number > high)
    if below or above:
        raise ArgumentError(f"{name}={value!r} must be {what}{suffix}")
    return number


def integer(value: Any, name: str, *, low: int | None = None, high: int | None = None,
            hint: str = "") -> int:
    """``value`` as an int after checking it is an integer (not a bool) in ``[low, high]``.

    Floats are refused even when whole (``2.0``): a count is meant.

    Raises
    ------
    ArgumentError
        A bool, a float, a non-number, or outside the range.
    """
    value = _scalar(value)
    what = _describe("integer", low, high, False, False)
    suffix = f" ({hint})" if hint else ""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ArgumentError(f"{name}={value!r} must be {what}{suffix}; got "
                            f"{type(value).__name__}")
    number = int(value)
    if (low is not None and number < low) or (high is not None and number > high):
        raise ArgumentError(f"{name}={value!r} must be {what}{suffix}")
    return number


def boolean(value: Any, name: str) -> bool:
    """``value`` as a bool after checking it is one (True/False, or a NumPy bool)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ArgumentError(f"{name}={value!r} must be True or False; got "
                            f"{type(value).__name__}")
    return bool(value)


def choice(value: Any, name: str, choices: Sequence[Any]) -> Any:
    """``value`` if it is one of ``choices`` (compared by type and value: True is not 1)."""
    for option in choices:
        if type(value) is type(option) and value == option:
            return value
    raise ArgumentError(f"unknown {name} {value!r}; use one of {tuple(choices)}")


def optional(value: Any, check: Any, *args: Any, **kwargs: Any) -> Any:
    """None, or ``check(value, *args, **kwargs)``: for arguments where None means "not set"."""
    return None if value is None else check(value, *args, **kwargs)


def seed(value: Any, name: str = "seed") -> int | None:
    """A random seed: None or a non-negative integer."""
    return optional(value, integer, name, low=0, hint="a random seed, or None")


def names(value: Any, name: str, *, allowed: Iterable[str] | None = None) -> tuple[str, ...]:
    """A tuple of names from one string (one name) or a sequence of strings.

    Parameters
    ----------
    value : str or sequence of str
        ``"conv0"`` is one name, not the letters c, o, n, v, 0.
    name : str
        The argument's name, for the message.
    allowed : iterable of str, optional
        The valid names; any other is refused, and the message lists the valid ones.
    """
    if isinstance(value, str):
        items = (value,)
    elif isinstance(value, (bytes, dict)) or not isinstance(value, Iterable):
        raise ArgumentError(f"{name}={value!r} must be a name (str) or a list of names")
    else:
        items = tuple(value)
        bad = [item for item in items if not isinstance(item, str)]
        if bad:
            raise ArgumentError(f"{name} must hold names (str); got {bad!r}")
    if allowed is not None:
        allowed = list(allowed)
        unknown = [item for item in items if item not in allowed]
        if unknown:
            raise ArgumentError(f"{name} names {unknown}, which are not among {allowed}")
    return items


def images(x: Any, name: str = "input", *, shape: tuple | None = None) -> np.ndarray:
    """``x`` as an array of floating-point examples after checking dtype, shape and values.

    Parameters
    ----------
    x : array_like, shape (n,) + shape
        Examples along the first axis.
    name : str
        How the message names it ("input", "calibration data", "x").
    shape : tuple of int, optional
        Shape of one example; None accepts any shape with a batch axis.

    Raises
    ------
    ArgumentError
        Integer, bool or non-numeric data (with the fix), wrong shape (with the expected one),
        no examples, NaN or infinite values (with how many).
    """
    array = np.asarray(x)
    if array.dtype.kind in "iu":
        raise ArgumentError(
            f"{name} has integer dtype {array.dtype}; floating-point images are expected. If "
            "these are pixel values 0-255 and the model was trained on images in [0, 1] (as "
            "the book's, from snnlib.load_mnist), divide by 255: x.astype('float32') / 255. "
            "If the model rescales raw pixels itself, cast them: x.astype('float32')")
    if array.dtype.kind != "f":
        raise ArgumentError(f"{name} has dtype {array.dtype}; a floating-point array (e.g. "
                            "float32 images in [0, 1]) is expected")
    if shape is not None:
        shape = tuple(shape)
        if array.ndim != len(shape) + 1 or tuple(array.shape[1:]) != shape:
            raise ArgumentError(f"{name} has shape {array.shape}; expected (batch,) + {shape}")
    elif array.ndim < 1:
        raise ArgumentError(f"{name} must have a batch axis (examples first); got a scalar")
    if array.shape[0] == 0:
        raise ArgumentError(f"{name} is empty (0 examples)")
    bad = _count_not_finite(array)
    if bad:
        raise ArgumentError(f"{name} contains NaN or infinite values ({bad} of {array.size})")
    return array


def _count_not_finite(array: np.ndarray, block: int = 2 ** 16) -> int:
    """NaN and infinite values in ``array``, checked in blocks (memory independent of its size)."""
    rows = max(block // max(int(np.prod(array.shape[1:])), 1), 1)
    return sum(int(part.size - np.count_nonzero(np.isfinite(part)))
               for part in (array[i:i + rows] for i in range(0, len(array), rows)))


def labels(y: Any, n: int, name: str = "labels", *, n_classes: int | None = None
           ) -> np.ndarray:
    """``y`` as an integer array of shape ``(n,)``: one class per example, in order.

    Parameters
    ----------
    y : array_like
        Labels.
    n : int
        Number of examples they must match one to one.
    name : str
        The argument's name.
    n_classes : int, optional
        When given, every label must be in ``[0, n_classes)``.

    Raises
    ------
    ArgumentError
        One-hot labels (with the fix), another number of labels than examples, non-integer
        or negative classes, classes the model does not have.
    """
    array = np.asarray(y)
    if array.ndim == 2 and array.shape[0] == n and array.shape[1] > 1:
        raise ArgumentError(f"{name} have shape {array.shape}: they look one-hot; pass one "
                            f"integer class per example instead ({name}.argmax(axis=1))")
    if array.ndim != 1:
        raise ArgumentError(f"{name} have shape {array.shape}; expected ({n},): one integer "
                            "class per example (not one-hot)")
    if array.shape[0] != n:
        raise ArgumentError(f"{n} examples but {array.shape[0]} {name}: they must match one to "
                            "one (the same examples, in the same order)")
    if array.dtype.kind not in "iu":
        raise ArgumentError(f"{name} must be integer classes, got dtype {array.dtype} (if they "
                            f"are whole numbers stored as floats: {name}.astype(int))")
    if n and array.min() < 0:
        raise ArgumentError(f"{name} must be classes >= 0; the smallest is {array.min()}")
    if n_classes is not None and n and array.max() >= n_classes:
        raise ArgumentError(f"{name} hold class {array.max()}, but the output has only "
                            f"{n_classes} classes (0 to {n_classes - 1})")
    return array


def memory_available() -> int:
    """Bytes of memory a computation may plan to use: ``$SNNLIB_MEMORY_LIMIT`` if set, else
    the memory the system reports available now (``MemAvailable`` in ``/proc/meminfo``), else
    the physical memory."""
    limit = os.environ.get("SNNLIB_MEMORY_LIMIT")
    if limit:
        return int(float(limit))
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 2 ** 34  # 16 GiB: a machine that reports nothing


def format_bytes(n: float) -> str:
    """1.5 GB, 300 MB, 12 kB: for messages."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} bytes"
