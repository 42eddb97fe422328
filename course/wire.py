"""A safe data format between the trusted grader and the sandbox: JSON, arrays as base64 bytes.

No pickle, no ``np.load``: a value is ``None``, a bool, an int, a float (NaN and infinities are
kept, so that a check can reject them), a string, a list, a dict with string keys, or a NumPy
array of a plain numeric or boolean dtype (``{"__array__": {"dtype", "shape", "data"}}``).
Decoding checks every size against limits before allocating anything.
"""
import base64
import json

import numpy as np

DTYPES = ("|b1", "|i1", "<i2", "<i4", "<i8", "|u1", "<u2", "<u4", "<u8", "<f2", "<f4", "<f8")
MAX_ARRAY_BYTES = 64 * 2**20  # per array
MAX_STRING = 100_000          # characters per string
MAX_ITEMS = 100_000           # entries per list or dict
MAX_DEPTH = 20


class WireError(ValueError):
    """A value that cannot be sent (encoding) or a malformed document (decoding)."""


def encode(value, depth=0):
    """``value`` as a JSON-compatible tree; raises :class:`WireError` for other types."""
    if depth > MAX_DEPTH:
        raise WireError("nested too deeply")
    if value is None or isinstance(value, (bool, str)):
        if isinstance(value, str) and len(value) > MAX_STRING:
            raise WireError(f"a string of {len(value)} characters (at most {MAX_STRING})")
        return value
    if isinstance(value, (int, float)):
        return value if isinstance(value, float) or abs(value) < 2**63 else float(value)
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return encode(value.item(), depth)
    if isinstance(value, np.ndarray):
        return {"__array__": _encode_array(value)}
    if isinstance(value, (list, tuple)):
        if len(value) > MAX_ITEMS:
            raise WireError(f"a sequence of {len(value)} items (at most {MAX_ITEMS})")
        return [encode(v, depth + 1) for v in value]
    if isinstance(value, dict):
        if len(value) > MAX_ITEMS:
            raise WireError(f"a dict of {len(value)} items (at most {MAX_ITEMS})")
        out = {}
        for key, item in value.items():
            if not isinstance(key, str) or key == "__array__":
                raise WireError(f"a dict key {str(key)[:40]!r} that is not a plain string")
            out[key] = encode(item, depth + 1)
        return out
    raise WireError(f"an object of type {type(value).__name__}")


def _encode_array(array):
    if array.dtype.kind not in "biuf":
        raise WireError(f"an array of dtype {array.dtype} (only numbers and booleans)")
    array = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    if array.nbytes > MAX_ARRAY_BYTES:
        raise WireError(f"an array of {array.nbytes} bytes (at most {MAX_ARRAY_BYTES})")
    return {"dtype": array.dtype.str, "shape": list(array.shape),
            "data": base64.b64encode(array.tobytes()).decode("ascii")}


def dumps(value):
    return json.dumps(encode(value), allow_nan=True)


def decode(tree, depth=0):
    """The value of a decoded JSON tree; raises :class:`WireError` when malformed."""
    if depth > MAX_DEPTH:
        raise WireError("nested too deeply")
    if tree is None or isinstance(tree, (bool, int, float)):
        return tree
    if isinstance(tree, str):
        if len(tree) > MAX_STRING:
            raise WireError("string too long")
        return tree
    if isinstance(tree, list):
        if len(tree) > MAX_ITEMS:
            raise WireError("list too long")
        return [decode(v, depth + 1) for v in tree]
    if isinstance(tree, dict):
        if set(tree) == {"__array__"}:
            return _decode_array(tree["__array__"])
        if len(tree) > MAX_ITEMS or "__array__" in tree:
            raise WireError("malformed dict")
        return {key: decode(item, depth + 1) for key, item in tree.items()}
    raise WireError(f"unexpected {type(tree).__name__}")


def _decode_array(spec):
    if not isinstance(spec, dict) or set(spec) != {"dtype", "shape", "data"}:
        raise WireError("malformed array")
    dtype, shape, data = spec["dtype"], spec["shape"], spec["data"]
    if dtype not in DTYPES or not isinstance(data, str):
        raise WireError(f"array dtype {str(dtype)[:20]!r} not allowed")
    if (not isinstance(shape, list) or len(shape) > 32
            or not all(type(n) is int and 0 <= n <= MAX_ARRAY_BYTES for n in shape)):
        raise WireError("malformed array shape")
    itemsize = np.dtype(dtype).itemsize
    size = 1
    for n in shape:
        size *= n
        if size * itemsize > MAX_ARRAY_BYTES:
            raise WireError("array too large")
    if len(data) != 4 * ((size * itemsize + 2) // 3):
        raise WireError("array data does not match its shape")
    try:
        raw = base64.b64decode(data, validate=True)
    except ValueError:
        raise WireError("array data is not base64") from None
    if len(raw) != size * itemsize:
        raise WireError("array data does not match its shape")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


def loads(text):
    """Parse a document written by :func:`dumps` (any error becomes :class:`WireError`)."""
    try:
        tree = json.loads(text)
    except (ValueError, RecursionError) as error:  # includes huge integers (int parsing limit)
        raise WireError(f"not valid JSON ({type(error).__name__})") from None
    try:
        return decode(tree)
    except RecursionError:
        raise WireError("nested too deeply") from None
