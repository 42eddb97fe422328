"""Tests of snnlib.event_driven: computing from the spikes alone gives the dense path's spikes."""
import itertools

import numpy as np
import pytest

from snnlib import event_driven
from snnlib.convert import convert
from snnlib.data import load_mnist
from snnlib.models import load_pretrained_convnet
from snnlib.simulate import simulate


@pytest.mark.parametrize("threshold", [None, 1.0])
def test_event_driven_path_gives_the_dense_path_spike_counts(monkeypatch, threshold):
    """The event-driven path (sparse linear operations, closed-form first layer) is exact."""
    module = event_driven
    calls = []
    run_chunk = event_driven.run_chunk
    monkeypatch.setattr(module, "run_chunk", lambda *a, **k: calls.append(1) or run_chunk(*a, **k))
    network = convert(load_pretrained_convnet())
    (_, _), (x_test, _) = load_mnist()
    x = x_test[:20]
    if threshold is not None:  # sparse products at every step and every rate
        monkeypatch.setattr(module, "SPARSE_THRESHOLD", threshold)
        monkeypatch.setattr(module, "DENSE_THRESHOLD", threshold)
    for scale, synapse, reset, max_spikes in itertools.product(
            [1.0, 100.0, 1000.0], [None, 0.005], ["subtract", "zero"], [None, 1]):
        kwargs = dict(n_steps=30, scale_firing_rates=scale, synapse=synapse, reset=reset,
                      max_spikes_per_step=max_spikes, dtype=np.float64)
        dense = simulate(network, x, method="dense", **kwargs)
        sparse = simulate(network, x, method="auto", **kwargs)
        # float64: the same spikes; outputs agree to summation-order rounding
        for name in dense.spike_counts:
            np.testing.assert_array_equal(sparse.spike_counts[name], dense.spike_counts[name])
        np.testing.assert_allclose(sparse.output, dense.output, rtol=0, atol=1e-9)
    # the event-driven path did run, so this compared two different computations
    assert calls
