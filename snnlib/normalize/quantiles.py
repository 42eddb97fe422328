"""Exact percentiles of data seen batch by batch, in memory that does not grow with the data.

``np.percentile(values, q)`` (linear interpolation, NumPy's default) needs two order statistics
of the sorted values, ``a[k]`` and ``a[k + 1]`` with ``k = floor((n - 1) q / 100)``, and the
count ``n`` to know ``k``. Nothing else. So a calibration does not need every activation:

- :class:`TopValues` keeps, per group (a layer, or each channel of a layer), the count of the
  selected values (the non-zero ones, or all) and the largest ``size`` of them. A high
  percentile (Rueckauer's 99.9 %, the max) is one of those top values as long as
  ``n (1 - q / 100) < size``: one pass over the data, exact.
- :class:`RadixSelect` finds any order statistic exactly when the top is not enough (a low
  percentile, or a very large calibration set): a float's bits, read as an unsigned integer
  with the sign handled, sort like the float itself, so the k-th value can be found digit by
  digit from histograms of 11 bits per pass over the data (3 passes for float32, 6 for float64),
  each pass keeping one 2,048-bin histogram per value sought.
- :func:`interpolate` then combines the two order statistics exactly as ``np.percentile`` does
  (the same index arithmetic and the same rounding), so the result is bit for bit equal.

Memory: ``size`` values and a few histograms per group, whatever the number of values.

Kept, not replaced by ``np.partition``/``np.percentile`` (issue 24): those need every value in
memory at once, and :class:`RadixSelect` is reached outside the tests, by
:func:`snnlib.normalize.rules.calibrate` (so ``normalize`` and ``convert``) whenever the kept top
does not decide the percentile: measured, the median of 3 million values in 30 batches.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

__all__ = [
    "TAIL_SIZE",
    "DIGIT_BITS",
    "fraction",
    "quantile_from",
    "tail_needed",
    "TopValues",
    "RadixSelect",
    "streaming_percentile",
]

#: Values kept per layer by :class:`TopValues` (split between its groups): 2**20 float32 values
#: are 4 MB, enough for the 99.9th percentile of a billion activations in one pass.
TAIL_SIZE = 2 ** 20
#: Bits of the key resolved per pass by :class:`RadixSelect` (histograms of 2**11 bins).
DIGIT_BITS = 11


def fraction(percentile: float) -> float:
    """``percentile / 100`` as ``np.percentile`` computes it (the same float64)."""
    return float(np.true_divide(percentile, 100))


def virtual_index(n: int, quantile: float) -> float:
    """Where ``np.quantile(..., quantile, method="linear")`` (and ``np.percentile`` with
    ``100 * quantile``) reads n sorted values: a float index, ``(n - 1) * quantile`` in float64
    as NumPy computes it, so that the rounding is the same."""
    return (n - 1) * np.asanyarray(np.float64(quantile))


def ranks(n: int, quantile: float) -> tuple[int, int, float]:
    """The two order statistics (0-based ranks, ascending) that the ``quantile`` (0-1) of ``n``
    values interpolates between, and the weight of the upper one: ``(k, k + 1, gamma)``.

    At the ends NumPy reads one value twice: ``(n - 1, n - 1, ...)`` at the top, ``(0, 0, ...)``
    below the first.
    """
    if n <= 0:
        raise ValueError("a percentile of no values is undefined")
    index = virtual_index(n, quantile)
    if index >= n - 1:
        lo = hi = n - 1
        previous = -1  # NumPy's marker for "the last one"; gamma is then irrelevant
    elif index < 0:
        lo = hi = previous = 0
    else:
        lo = previous = int(np.floor(index))
        hi = lo + 1
    gamma = np.asanyarray(index - previous)
    return lo, hi, gamma


def interpolate(lower: np.ndarray | float, upper: np.ndarray | float, gamma: float) -> float:
    """``lower + gamma * (upper - lower)`` with NumPy's rounding (``np.lib`` ``_lerp``)."""
    a, b, t = np.asanyarray(lower), np.asanyarray(upper), np.asanyarray(gamma)
    diff = np.subtract(b, a)
    out = np.asanyarray(np.add(a, diff * t))
    np.subtract(b, diff * (1 - t), out=out, where=t >= 0.5)
    return float(out)


def quantile_from(order_statistic: Callable[[int], float], n: int, quantile: float) -> float:
    """The ``quantile`` (0-1) of ``n`` values given a function rank -> value (ascending)."""
    lo, hi, gamma = ranks(n, quantile)
    lower = order_statistic(lo)
    upper = lower if hi == lo else order_statistic(hi)
    return interpolate(lower, upper, gamma)


def tail_needed(n_max: int, quantile: float) -> int:
    """Top values that decide the ``quantile`` of at most ``n_max`` values (with a margin of
    two for the rounding of the index): ``ceil((1 - quantile) * n_max) + 2``."""
    return int(np.ceil((1.0 - float(quantile)) * n_max)) + 2


# --------------------------------------------------------------------------------------------
# Keys: floats as unsigned integers in the same order
# --------------------------------------------------------------------------------------------

def _unsigned(dtype: np.dtype) -> type:
    return {4: np.uint32, 8: np.uint64}[np.dtype(dtype).itemsize]


def to_keys(values: np.ndarray) -> np.ndarray:
    """Unsigned integers that sort as the floats ``values`` do (-0.0 counts as 0.0)."""
    values = np.asarray(values)
    values = values + values.dtype.type(0)  # -0.0 + 0.0 = 0.0: one key for zero
    unsigned = _unsigned(values.dtype)
    bits = values.view(unsigned)
    sign = unsigned(1) << unsigned(8 * values.dtype.itemsize - 1)
    return np.where(bits & sign, ~bits, bits | sign)


def from_key(key: int, dtype: np.dtype) -> float:
    """The float whose :func:`to_keys` is ``key``."""
    unsigned = _unsigned(dtype)
    key = unsigned(key)
    sign = unsigned(1) << unsigned(8 * np.dtype(dtype).itemsize - 1)
    bits = key & ~sign if key & sign else ~key
    return np.array([bits], dtype=unsigned).view(dtype)[0]


# --------------------------------------------------------------------------------------------
# One pass: counts and the top values
# --------------------------------------------------------------------------------------------

class TopValues:
    """Counts and the largest values of each group, from batches (one pass, bounded memory).

    Parameters
    ----------
    groups : int
        Number of groups. :meth:`add` takes arrays whose last axis is the group (a layer's
        channels), or any shape when ``groups == 1``.
    nonzero_only : bool
        Select the values > 0 (SNN Toolbox's percentile of the non-zero activations) instead
        of all values.
    size : int
        Values kept in all (each group keeps ``max(size // groups, 2)``).
    """

    def __init__(self, groups: int = 1, *, nonzero_only: bool = True,
                 size: int = TAIL_SIZE) -> None:
        self.groups = int(groups)
        self.nonzero_only = bool(nonzero_only)
        self.keep = max(int(size) // self.groups, 2)
        self.count = np.zeros(self.groups, np.int64)   # selected values seen
        self.total = np.zeros(self.groups, np.int64)   # all values seen
        self.max = np.full(self.groups, -np.inf)       # largest value seen (any)
        self.top: np.ndarray | None = None              # (<= keep, groups); -inf: none
        self.dtype: np.dtype | None = None
        self.full = False  # top holds `keep` values, the smallest first

    def _columns(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values)
        if self.groups == 1:
            return values.reshape(-1, 1)
        if values.shape[-1] != self.groups:
            raise ValueError(f"expected {self.groups} groups on the last axis, got shape "
                             f"{values.shape}")
        return values.reshape(-1, self.groups)

    def selected(self, columns: np.ndarray) -> np.ndarray:
        """Mask of the selected values (> 0 for ``nonzero_only``, else all)."""
        return columns > 0 if self.nonzero_only else np.ones(columns.shape, bool)

    def add(self, values: np.ndarray) -> None:
        """Take one batch of values into account."""
        columns = self._columns(values)
        if self.dtype is None:
            self.dtype = columns.dtype
        elif columns.dtype != self.dtype:
            raise ValueError(f"values changed dtype from {self.dtype} to {columns.dtype}")
        if columns.shape[0] == 0:
            return
        chosen = self.selected(columns)
        self.count += chosen.sum(axis=0)
        self.total += columns.shape[0]
        np.maximum(self.max, columns.max(axis=0), out=self.max)
        if self.groups == 1:
            candidates = columns[chosen]
            if self.full:
                candidates = candidates[candidates >= self.top[0, 0]]  # the rest cannot enter
            candidates = candidates.reshape(-1, 1)
        else:
            candidates = np.where(chosen, columns, -np.inf).astype(self.dtype, copy=False)
        merged = candidates if self.top is None else np.concatenate([self.top, candidates])
        if len(merged) > self.keep:
            # the partition leaves the smallest kept value first (the filter above reads it)
            merged = np.partition(merged, len(merged) - self.keep, axis=0)[-self.keep:]
            self.full = True
        self.top = merged

    def kept(self, group: int) -> np.ndarray:
        """The selected values kept for ``group``, largest first."""
        if self.top is None:
            return np.empty(0, self.dtype or np.float32)
        column = self.top[:, group]
        return np.sort(column[column > -np.inf])[::-1]

    def complete(self, group: int) -> bool:
        """Whether every selected value of ``group`` is kept."""
        return len(self.kept(group)) == self.count[group]

    def order_statistic(self, group: int, rank: int) -> float | None:
        """The ``rank``-th smallest selected value of ``group`` if it is kept, else None."""
        kept = self.kept(group)
        from_top = int(self.count[group]) - 1 - rank
        return kept[from_top] if 0 <= from_top < len(kept) else None

    def quantile(self, group: int, quantile: float) -> float | None:
        """``np.quantile(selected values of group, quantile)`` if the kept values decide it;
        None when they do not (use :class:`RadixSelect`); NaN for a group with no values."""
        n = int(self.count[group])
        if n == 0:
            return float("nan")
        lo, hi, gamma = ranks(n, quantile)
        lower, upper = self.order_statistic(group, lo), self.order_statistic(group, hi)
        if lower is None or upper is None:
            return None
        return interpolate(lower, upper, gamma)

    def count_above(self, group: int, threshold: float) -> int | None:
        """Values of ``group`` (selected or not) strictly above ``threshold`` >= 0, if the kept
        values decide it (None otherwise)."""
        kept = self.kept(group)
        if not self.complete(group) and not (len(kept) and kept[-1] <= threshold):
            return None
        return int(np.count_nonzero(kept > threshold))


# --------------------------------------------------------------------------------------------
# More passes: any order statistic, digit by digit
# --------------------------------------------------------------------------------------------

class RadixSelect:
    """Exact order statistics of the selected values of each group, one digit per pass.

    Give the targets (group, rank) and the dtype, then for each pass call :meth:`add` with every
    batch (the same data, in any order) and :meth:`end_pass`, until :attr:`done`.

    Parameters
    ----------
    targets : list of (int, int)
        (group, rank): rank 0 is the smallest selected value of the group.
    dtype : numpy dtype
        float32 (3 passes) or float64 (6 passes).
    groups, nonzero_only
        As :class:`TopValues` (the same selection).
    """

    def __init__(self, targets: list[tuple[int, int]], dtype: np.dtype, *, groups: int = 1,
                 nonzero_only: bool = True) -> None:
        self.dtype = np.dtype(dtype)
        self.width = 8 * self.dtype.itemsize
        self.groups, self.nonzero_only = int(groups), bool(nonzero_only)
        # per target: [group, rank, prefix, prefix bits, count below the prefix's values]
        self.targets = [[int(g), int(r), 0, 0, 0] for g, r in dict.fromkeys(targets)]
        self._start()

    @property
    def done(self) -> bool:
        """Whether every target is resolved."""
        return all(t[3] >= self.width for t in self.targets)

    def _digits(self, target: list) -> int:
        return min(DIGIT_BITS, self.width - target[3])

    def _start(self) -> None:
        self.histograms = [np.zeros(2 ** self._digits(t), np.int64) for t in self.targets]

    def add(self, values: np.ndarray) -> None:
        """One batch of the pass (the last axis is the group when ``groups > 1``)."""
        values = np.asarray(values, dtype=self.dtype)
        columns = values.reshape(-1, 1) if self.groups == 1 else values.reshape(-1, self.groups)
        unsigned = _unsigned(self.dtype)
        for target, histogram in zip(self.targets, self.histograms, strict=True):
            group, _, prefix, bits, _ = target
            if bits >= self.width:
                continue
            column = columns[:, group]
            if self.nonzero_only:
                column = column[column > 0]
            keys = to_keys(column)
            if bits:
                keys = keys[(keys >> unsigned(self.width - bits)) == unsigned(prefix)]
            shift = unsigned(self.width - bits - len(histogram).bit_length() + 1)
            digit = (keys >> shift) & unsigned(len(histogram) - 1)
            histogram += np.bincount(digit.astype(np.int64), minlength=len(histogram))

    def end_pass(self) -> None:
        """Resolve one more digit of every target from this pass's histograms."""
        for target, histogram in zip(self.targets, self.histograms, strict=True):
            if target[3] >= self.width:
                continue
            cumulative = np.cumsum(histogram)
            within = target[1] - target[4]  # rank among the values with this prefix
            if not 0 <= within < cumulative[-1]:
                raise RuntimeError("RadixSelect: the data changed between passes")
            digit = int(np.searchsorted(cumulative, within, side="right"))
            target[4] += int(cumulative[digit - 1]) if digit else 0
            target[2] = (target[2] << (len(histogram).bit_length() - 1)) | digit
            target[3] += len(histogram).bit_length() - 1
        self._start()

    def value(self, group: int, rank: int) -> float:
        """The resolved value of target (group, rank)."""
        for target in self.targets:
            if target[0] == group and target[1] == rank:
                if target[3] < self.width:
                    raise RuntimeError("not resolved yet: run more passes")
                return from_key(target[2], self.dtype)
        raise KeyError((group, rank))


def streaming_percentile(batches: Sequence[np.ndarray], q: float, *,
                         nonzero_only: bool = False, size: int = TAIL_SIZE) -> float:
    """``np.percentile`` of the concatenated ``batches`` (only the values > 0 with
    ``nonzero_only``), computed as a calibration does: :class:`TopValues` first, then
    :class:`RadixSelect` passes if needed. For tests and examples; NaN for no values."""
    top = TopValues(nonzero_only=nonzero_only, size=size)
    for batch in batches:
        top.add(batch)
    quantile = fraction(q)
    result = top.quantile(0, quantile)
    if result is not None:
        return result
    lo, hi, gamma = ranks(int(top.count[0]), quantile)
    select = RadixSelect([(0, lo), (0, hi)], top.dtype, nonzero_only=nonzero_only)
    while not select.done:
        for batch in batches:
            select.add(batch)
        select.end_pass()
    return interpolate(select.value(0, lo), select.value(0, hi), gamma)
