"""Exact percentiles from batches with bounded memory: equal to np.percentile, bit for bit."""
import numpy as np
import pytest

from snnlib.normalize.quantiles import (
    RadixSelect,
    TopValues,
    from_key,
    ranks,
    streaming_percentile,
    tail_needed,
    to_keys,
)

QS = [0, 50, 99.9, 100, 12.345, 99.99]


def data(kind, n, rng):
    if kind == "uniform":
        return rng.random(n).astype(np.float32)
    if kind == "ties":  # few distinct values, many zeros
        return rng.integers(0, 4, n).astype(np.float32)
    if kind == "relu":  # like activations: half zeros, a long tail
        return np.maximum(rng.standard_t(3, n), 0).astype(np.float32)
    if kind == "signed64":
        return rng.normal(size=n)
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["uniform", "ties", "relu", "signed64"])
@pytest.mark.parametrize("n", [1, 2, 3, 10, 999, 4096])
def test_equal_to_numpy_percentile(kind, n, rng):
    values = data(kind, n, rng)
    batches = np.array_split(values, 3)
    for q in QS:
        for nonzero_only in (False, True):
            chosen = values[values > 0] if nonzero_only else values
            if chosen.size == 0:
                continue
            expected = np.percentile(chosen, q)
            # from the top values alone (one pass) and, with a tail too small to decide it,
            # digit by digit over more passes: the same number, exactly
            for size in (2, 5, 10 ** 6):
                got = streaming_percentile(batches, q, nonzero_only=nonzero_only, size=size)
                assert got == expected, (kind, n, q, nonzero_only, size, got, expected)


def test_keys_sort_as_the_floats(rng):
    values = np.concatenate([rng.normal(size=1000).astype(np.float32),
                             np.array([0.0, -0.0, 1e-45, -1e-45, 3e38, -3e38], np.float32)])
    keys = to_keys(values)
    # the integer order is the float order (-0.0 and 0.0 share a key)
    assert np.array_equal(np.argsort(keys, kind="stable"), np.argsort(values + 0, kind="stable"))
    for value, key in zip(values[:50], keys[:50], strict=True):
        assert from_key(key, np.float32) == value


def test_groups_are_channels(rng):
    values = np.maximum(rng.normal(size=(50, 6, 6, 5)), 0).astype(np.float32)
    top = TopValues(5, nonzero_only=True, size=5 * 40)
    for part in np.array_split(values, 4):
        top.add(part)
    for channel in range(5):
        column = values[..., channel].ravel()
        # each channel's kept values decide its 99th percentile ...
        assert top.quantile(channel, 0.99) == np.percentile(column[column > 0], 99)
        # ... and a median needs more than the 40 kept values
        assert top.quantile(channel, 0.5) is None
    lo, hi, _ = ranks(int(top.count[2]), 0.5)
    select = RadixSelect([(2, lo), (2, hi)], np.float32, groups=5)
    passes = 0
    while not select.done:
        for part in np.array_split(values, 4):
            select.add(part)
        select.end_pass()
        passes += 1
    # three passes of 11, 11 and 10 bits find the exact float32 values
    assert passes == 3
    column = np.sort(values[..., 2].ravel()[values[..., 2].ravel() > 0])
    assert select.value(2, lo) == column[lo] and select.value(2, hi) == column[hi]


def test_memory_is_bounded(rng):
    top = TopValues(nonzero_only=True, size=100)
    for _ in range(20):
        top.add(rng.random(10_000).astype(np.float32))
    # 200,000 values seen, at most 100 kept
    assert top.count[0] == 200_000 and len(top.top) <= 100
    # the tail a percentile needs: ceil((1 - q) n) + 2
    assert 1002 <= tail_needed(1_000_000, 0.999) <= 1003  # (1 - 0.999 rounds up in float)
