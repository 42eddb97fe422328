"""Spike counts of a run, summarized so that memory does not grow with the number of examples.

A simulation counts every neuron's spikes on every example: ``(examples,) + layer shape``
integers per layer, 8,000 MNIST images x 30,848 neurons of the book's convnet = 2 GB. What the
library reports from them needs much less, and :class:`LayerCounts` keeps only that, merged
batch by batch:

- ``per_example``: spikes of the layer on each example (spikes per example, paired analyses);
- ``per_neuron``: each neuron's spikes summed over the examples (mean rates, synaptic
  operations, which weigh each neuron's spikes by its fan-out);
- ``per_neuron_max``: each neuron's largest count on any example (neurons never active);
- ``histogram``: how many (neuron, example) pairs had each count (the median rate, the silent
  and the saturated fractions, exactly).

Sizes: one number per example, two per neuron, and one per distinct count (at most ``n_steps``
times the spikes a neuron can emit per step, plus one). Sums are float64: they cannot wrap
around as integers do, and they are exact below 2**53 spikes.

:func:`snnlib.sim.simulator.simulate` keeps the full per-example counts as well when they are small
or when asked (``keep_counts=True``); see :class:`snnlib.sim.simulator.SimulationResult`.
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "LayerCounts",
]

#: Largest count for which a histogram is made with ``np.bincount`` (fast, one bin per value);
#: larger counts use ``np.unique``.
_DENSE_HISTOGRAM = 2 ** 16


def _histogram(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct values, how often each occurs) of a non-negative integer array."""
    flat = counts.ravel()
    if flat.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if int(flat.max()) <= _DENSE_HISTOGRAM and int(flat.min()) >= 0:
        frequency = np.bincount(flat)
        values = np.flatnonzero(frequency)
        return values.astype(np.int64), frequency[values].astype(np.int64)
    values, frequency = np.unique(flat, return_counts=True)
    return values.astype(np.int64), frequency.astype(np.int64)


class LayerCounts:
    """Summary of one spiking layer's spike counts over a run (see the module's docstring).

    Build it with :meth:`from_counts` for a batch and combine batches with :meth:`merge`.

    Attributes
    ----------
    shape : tuple of int
        The layer's shape (one example).
    per_example : ndarray of float64, shape (n_examples,)
        Spikes of the whole layer on each example, over the run.
    per_neuron : ndarray of float64, layer shape
        Spikes of each neuron summed over the examples.
    per_neuron_max : ndarray of int64, layer shape
        Each neuron's largest count on one example.
    values, frequencies : ndarray of int64
        The distinct counts and how many (neuron, example) pairs had each (sorted by value).
    """

    def __init__(self, shape: tuple, per_example: np.ndarray, per_neuron: np.ndarray,
                 per_neuron_max: np.ndarray, values: np.ndarray,
                 frequencies: np.ndarray) -> None:
        self.shape = tuple(shape)
        self.per_example = per_example
        self.per_neuron = per_neuron
        self.per_neuron_max = per_neuron_max
        self.values = values
        self.frequencies = frequencies

    @classmethod
    def from_counts(cls, counts: np.ndarray) -> LayerCounts:
        """The summary of full counts, shape (n_examples,) + layer shape (non-negative ints)."""
        counts = np.asarray(counts)
        if counts.ndim < 1:
            raise ValueError(f"spike counts need an examples axis; got shape {counts.shape}")
        if counts.size and (counts.dtype.kind not in "iu" or counts.min() < 0):
            if counts.dtype.kind == "f" and np.all(counts == np.floor(counts)) \
                    and counts.min() >= 0:
                counts = counts.astype(np.int64)
            else:
                raise ValueError("spike counts must be non-negative integers")
        n = counts.shape[0]
        per_example = counts.reshape(n, -1).sum(axis=1, dtype=np.float64)
        per_neuron = counts.sum(axis=0, dtype=np.float64)
        per_neuron_max = (counts.max(axis=0) if n else np.zeros(counts.shape[1:])).astype(
            np.int64)
        values, frequencies = _histogram(counts)
        return cls(counts.shape[1:], per_example, per_neuron, per_neuron_max, values,
                   frequencies)

    def merge(self, other: LayerCounts) -> LayerCounts:
        """The summary of both runs' examples (``self``'s first)."""
        if other.shape != self.shape:
            raise ValueError(f"cannot merge counts of shapes {self.shape} and {other.shape}")
        values = np.concatenate([self.values, other.values])
        frequencies = np.concatenate([self.frequencies, other.frequencies])
        merged, inverse = np.unique(values, return_inverse=True)
        totals = np.zeros(len(merged), np.int64)
        np.add.at(totals, inverse, frequencies)
        return LayerCounts(self.shape, np.concatenate([self.per_example, other.per_example]),
                           self.per_neuron + other.per_neuron,
                           np.maximum(self.per_neuron_max, other.per_neuron_max), merged, totals)

    @property
    def n_examples(self) -> int:
        """Examples summarized."""
        return len(self.per_example)

    @property
    def neurons(self) -> int:
        """Neurons per example."""
        return int(np.prod(self.shape))

    @property
    def pairs(self) -> int:
        """(neuron, example) pairs: neurons x examples."""
        return self.neurons * self.n_examples

    @property
    def total(self) -> float:
        """All spikes of the layer on all examples."""
        return float(self.per_example.sum())

    def fraction(self, low: float, high: float = np.inf) -> float:
        """Fraction of (neuron, example) pairs whose count is in ``[low, high]``."""
        inside = (self.values >= low) & (self.values <= high)
        return float(self.frequencies[inside].sum()) / max(self.pairs, 1)

    def median_rate(self, duration: float) -> float:
        """Median over (neuron, example) pairs of count / duration (Hz), as ``np.median`` of
        the rates computes it."""
        n = self.pairs
        if n == 0:
            return float("nan")
        cumulative = np.cumsum(self.frequencies)

        def rank(k: int) -> int:
            return int(self.values[np.searchsorted(cumulative, k, side="right")])

        middle = [rank((n - 1) // 2), rank(n // 2)]
        return float(np.median(np.asarray(middle, dtype=np.int64) / duration))
