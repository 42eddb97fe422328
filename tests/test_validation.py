"""Issue 12: the library never returns a silent wrong answer, and its memory stays bounded.

One test per row of the issue's table (careless or unlucky input), each getting a clear error
or a correct result, then the shared rules of :mod:`snnlib.validation`. Rows owned elsewhere:
a subclassed Keras model and BatchNormalization with a negative variance (the converter's,
tests/test_convert.py); 8 threads doing their first ``convert`` at once is
tests/test_convert.py::test_custom_converter_registered_before_the_first_convert (a fresh
interpreter, 8 threads; the registry is filled at import).
"""
import time
import tracemalloc

import numpy as np
import pytest
import tensorflow as tf

import snnlib
from snnlib import validation
from snnlib.convert import convert, verify
from snnlib.normalize.rules import normalize
from snnlib.sim.simulator import CountsNotKept, simulate


@pytest.fixture
def network(dense_model):
    return convert(dense_model)


# --------------------------------------------------------------------------------------------
# The rows of the table
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("scale", [1e19, 1e40])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_huge_scale_is_refused_not_wrapped(network, images6, scale, dtype):
    # counts that float32 (2**24) or float64 (2**53) cannot hold exactly are refused before the
    # run, with the bound per step for this n_steps (they used to wrap negative, or be NaN)
    with pytest.raises(ValueError, match=r"counts exactly only below 2\*\*(24|53).*per step"):
        simulate(network, images6, n_steps=10, scale_firing_rates=scale, dtype=dtype)


def test_row_large_scale_counts_exactly_where_it_can(network, images6):
    _, activations = network.forward(images6, return_all=True, dtype=np.float64)
    scale = 1e8  # about 10**5 spikes per step: more than float32 can count over 1,000 steps
    with pytest.raises(ValueError, match="dtype=np.float64"):
        simulate(network, images6, n_steps=1000, scale_firing_rates=scale)
    # ... float64 can: the first layer fires floor(s a T) spikes, never a negative count
    result = simulate(network, images6, n_steps=1000, scale_firing_rates=scale,
                      dtype=np.float64)
    counts = result.spike_counts["hidden0"]
    expected = np.floor(activations["hidden0"] * scale * 1.0)
    assert counts.min() >= 0
    np.testing.assert_allclose(counts, expected, rtol=1e-9, atol=1)
    assert result.layer_counts["hidden0"].total == counts.sum()


def test_row_overflow_in_a_deeper_layer_is_named(network, images6):
    # the first layer is fine, the second gets a huge kernel: its counts would not be exact
    stage = network.stage("hidden1")
    stage.op = stage.op.with_kernel(stage.kernel * 1e12)
    with pytest.raises(ValueError, match="layer 'hidden1'.*2\\*\\*24"):
        simulate(network, images6, n_steps=20, scale_firing_rates=100.0, method="dense")


@pytest.mark.parametrize("method", ["auto", "compiled", "dense", "event"])
def test_row_n_steps_10_to_the_12_is_refused_at_once(network, images6, method):
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"n_steps=1000000000000 must be an integer in "
                                         r"\[1, 10000000\]"):
        simulate(network, images6, n_steps=10 ** 12, method=method)
    # refused before anything runs
    assert time.perf_counter() - start < 1.0


def test_row_n_steps_bounded_by_memory(network, images6, monkeypatch):
    # the output over time must fit in the memory available (here pretended to be 1 MB)
    monkeypatch.setenv("SNNLIB_MEMORY_LIMIT", "1000000")
    with pytest.raises(ValueError, match="n_steps=100000 would need 6.4 MB.*1 MB of memory"):
        simulate(network, images6, n_steps=100_000)
    assert simulate(network, images6, n_steps=100).output.shape == (4, 100, 4)


@pytest.mark.parametrize("call", [
    lambda net, x: simulate(net, x, n_steps=True),
    lambda net, x: simulate(net, x, n_steps=5, dt=True),
    lambda net, x: simulate(net, x, n_steps=5, scale_firing_rates=True),
    lambda net, x: simulate(net, x, n_steps=5, scale_firing_rates={"hidden0": True}),
    lambda net, x: simulate(net, x, n_steps=5, batch_size=True),
    lambda net, x: simulate(net, x, n_steps=5, seed=True),
    lambda net, x: simulate(net, x, n_steps=5, max_spikes_per_step=True),
    lambda net, x: simulate(net, x, n_steps=5, synapse=True),
    lambda net, x: simulate(net, x, n_steps=5, initial_voltage=True),
    lambda net, x: normalize(net, x, method="percentile", percentile=True),
    lambda net, x: normalize(net, x, method="max", batch_size=True),
    lambda net, x: snnlib.sim.neurons.integrate_and_fire(1.0, True),
    lambda net, x: snnlib.Lowpass(True),
    lambda net, x: snnlib.analysis.stats.wilson_interval(True, 10),
])
def test_row_bools_are_not_numbers(network, images6, call):
    # True is not 1 step, 1 second or the 1st percentile
    with pytest.raises(ValueError, match="bool"):
        call(network, images6)


def test_row_bool_percentile_in_convert(dense_model, images6):
    with pytest.raises(ValueError, match="percentile=True .*got bool"):
        convert(dense_model, calibration=images6, normalization="percentile", percentile=True)


@pytest.mark.parametrize("start", [-0.5, 1.0, 1e30, float("nan")])
def test_row_initial_voltage_out_of_range(network, images6, start):
    # in units of the threshold: [0, 1); a negative start would give negative spike counts
    with pytest.raises(ValueError, match=r"initial_voltage=.*\[0, 1\)"):
        simulate(network, images6, n_steps=5, initial_voltage=start)


def test_row_negative_start_is_meaningful_for_the_signed_if_neuron(network, images6):
    kwargs = dict(n_steps=50, scale_firing_rates=300.0, neuron="if")
    low = simulate(network, images6, initial_voltage=-0.5, **kwargs)
    rest = simulate(network, images6, initial_voltage=0.0, **kwargs)
    for name in rest.spike_counts:
        # a start below rest delays spikes: never more, never negative
        assert low.spike_counts[name].min() >= 0
        assert np.all(low.spike_counts[name] <= rest.spike_counts[name] + 1)
    assert low.spike_counts["hidden0"].sum() < rest.spike_counts["hidden0"].sum()
    # ... but not above the threshold
    with pytest.raises(ValueError, match="initial_voltage"):
        simulate(network, images6, initial_voltage=1.5, **kwargs)


def test_row_record_spikes_string_is_one_name(network, images6):
    result = simulate(network, images6, n_steps=10, scale_firing_rates=300.0,
                      record_spikes="hidden0")
    # "hidden0" is one layer, not the letters h, i, d, ...
    assert list(result.spikes) == ["hidden0"]
    assert result.spikes["hidden0"].shape == (4, 10, 16)
    with pytest.raises(ValueError, match=r"record_spikes names \['conv0'\].*'hidden0'"):
        simulate(network, images6, n_steps=10, record_spikes="conv0")
    with pytest.raises(ValueError, match="record_spikes must hold names"):
        simulate(network, images6, n_steps=10, record_spikes=[0])


def test_row_normalize_with_method_none(network, images6):
    # not a percentile normalization recorded as None
    with pytest.raises(ValueError, match="method=None"):
        normalize(network, images6, method=None)
    assert network.normalization is None and all(s.scale == 1.0 for s in network.stages)


def test_row_calibration_without_normalization(dense_model, images6):
    # an error: a forgotten normalization= would otherwise go unnoticed
    with pytest.raises(ValueError, match="calibration data was given but normalization=None"):
        convert(dense_model, calibration=images6)


def test_row_uint8_images(dense_model, network, images6):
    pixels = (images6 * 255).astype(np.uint8)
    message = "integer dtype uint8.*divide by 255"
    with pytest.raises(ValueError, match=message):
        convert(dense_model, calibration=pixels, normalization="max")
    with pytest.raises(ValueError, match=message):
        simulate(network, pixels, n_steps=5)
    with pytest.raises(ValueError, match=message):
        verify(network, dense_model, pixels)
    with pytest.raises(ValueError, match=message):
        snnlib.accuracy(dense_model, pixels, np.zeros(4, int))
    # floats in [0, 255] stay accepted (a model that rescales raw pixels itself)
    assert convert(dense_model, calibration=pixels.astype(np.float32), normalization="max")


def test_row_accuracy_labels(dense_model, rng):
    x = rng.random((10, 6, 6, 1)).astype(np.float32)
    y = np.argmax(dense_model.predict(x, verbose=0), axis=1)
    assert snnlib.accuracy(dense_model, x, y) == 1.0
    with pytest.raises(ValueError, match="10 examples but 7 y"):
        snnlib.accuracy(dense_model, x, y[:7])
    with pytest.raises(ValueError, match="one-hot.*argmax"):
        snnlib.accuracy(dense_model, x, np.eye(4)[y])
    with pytest.raises(ValueError, match="integer classes"):
        snnlib.accuracy(dense_model, x, y.astype(float))
    with pytest.raises(ValueError, match="only 4 classes"):
        snnlib.accuracy(dense_model, x, y + 4)


def test_row_simulation_accuracy_labels(network, images6):
    # SimulationResult.accuracy checks the same way
    result = simulate(network, images6, n_steps=5)
    with pytest.raises(ValueError, match="one-hot"):
        result.accuracy(np.eye(4)[[0, 1, 2, 3]])
    with pytest.raises(ValueError, match="4 examples but 3"):
        result.accuracy(np.array([0, 1, 2]))


@pytest.mark.parametrize("kwargs, name", [(dict(atol=float("nan")), "atol"),
                                          (dict(atol=-1.0), "atol"),
                                          (dict(rtol=float("inf")), "rtol")])
def test_row_verify_tolerance(network, dense_model, images6, kwargs, name):
    with pytest.raises(ValueError, match=name):
        verify(network, dense_model, images6, **kwargs)


def test_row_truncated_weights_file(tmp_path):
    from snnlib.ann.models import PRETRAINED_WEIGHTS, build_convnet, load_weights

    truncated = tmp_path / "convnet_mnist.npz"
    data = PRETRAINED_WEIGHTS.read_bytes()
    truncated.write_bytes(data[:len(data) // 2])
    # the path is named, with how to get the file back (not a bare BadZipFile)
    with pytest.raises(ValueError, match=f"{truncated}.*not a readable weights file"):
        load_weights(build_convnet(), truncated)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match="garbage.npz.*truncated or corrupt"):
        load_weights(build_convnet(), garbage)
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        load_weights(build_convnet(), tmp_path / "missing.npz")


def _peak(function):
    """Peak memory traced (NumPy and Python allocations) while ``function`` runs, bytes."""
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_row_calibration_memory_does_not_grow_with_the_calibration_set(dense_model, rng):
    small = rng.random((2_000, 6, 6, 1)).astype(np.float32)
    large = np.concatenate([small] * 8)  # 16,000 images
    peaks = {len(x): _peak(lambda x=x: convert(dense_model, calibration=x,
                                               normalization="percentile", batch_size=100))
             for x in (small, large)}
    # keeping every activation would take ~(36 + 36 + 16 + 12 + 4) x 4 bytes per image:
    # 6.7 MB more for the large set; streaming keeps a batch and the top values
    assert peaks[16_000] < 1.2 * peaks[2_000], peaks
    assert peaks[16_000] - peaks[2_000] < 200_000, peaks


def test_row_simulation_memory_is_bounded_by_batch_size(rng):
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([tf.keras.Input((6, 6, 1)), tf.keras.layers.Flatten(),
                                 tf.keras.layers.Dense(256, activation="relu"),
                                 tf.keras.layers.Dense(4)])
    net = convert(model)
    n_steps, small, large = 5, 400, 3_200
    x = rng.random((large, 6, 6, 1)).astype(np.float32)
    peaks = {n: _peak(lambda n=n: simulate(net, x[:n], n_steps=n_steps,
                                           scale_firing_rates=100.0, batch_size=100,
                                           keep_counts=False))
             for n in (small, large)}
    # what must grow: the output over time (5 x 4 float32) and spikes per example (float64)
    per_example = n_steps * 4 * 4 + 8
    # full counts would add 256 x 8 = 2,048 bytes per example
    assert peaks[large] - peaks[small] < (large - small) * (per_example + 100), peaks


# --------------------------------------------------------------------------------------------
# Spike counts kept or summarized: every consumer works with both, or says what it needs
# --------------------------------------------------------------------------------------------

def test_counts_kept_or_summarized_give_the_same_measures(network, images6):
    from snnlib.analysis import measures
    from snnlib.experiments import diagnostics

    kwargs = dict(n_steps=30, scale_firing_rates=300.0, batch_size=3)
    kept = simulate(network, images6, keep_counts=True, **kwargs)
    summarized = simulate(network, images6, keep_counts=False, **kwargs)
    assert kept.counts_kept and not summarized.counts_kept
    np.testing.assert_array_equal(kept.output, summarized.output)
    # spikes per example, mean rates, synaptic operations, the firing summary: identical
    assert measures.spikes_per_example(kept) == measures.spikes_per_example(summarized)
    assert kept.mean_rates == summarized.mean_rates
    assert measures.mean_rate(kept) == measures.mean_rate(summarized)
    assert (measures.synaptic_operations(network, kept)
            == measures.synaptic_operations(network, summarized))
    a, b = (diagnostics.firing_rate_summary(r) for r in (kept, summarized))
    assert a.equals(b)
    # ... and equal to what the full counts say (the median too, exactly as np.median)
    counts = kept.spike_counts["hidden0"]
    rates = counts / kept.duration
    row = a.set_index("layer").loc["hidden0"]
    assert row["median_rate_hz"] == np.median(rates)
    assert row["fraction_silent"] == np.mean(counts == 0)
    assert row["mean_rate_hz"] == pytest.approx(rates.mean(), rel=1e-12)
    # what needs every neuron on every example says how to get it
    with pytest.raises(CountsNotKept, match="keep_counts=True"):
        _ = summarized.spike_counts
    with pytest.raises(CountsNotKept, match="keep_counts=True"):
        _ = summarized.rates
    with pytest.raises(CountsNotKept, match="keep_counts=True"):
        diagnostics.layer_rate_correlation(network, images6, summarized)


def test_counts_kept_by_default_when_small(network, images6, monkeypatch):
    import importlib

    simulate_module = importlib.import_module("snnlib.sim.simulator")

    # one batch (the default) or small counts: kept
    assert simulate(network, images6, n_steps=5).counts_kept
    assert simulate(network, images6, n_steps=5, batch_size=2).counts_kept
    # several batches and more than KEEP_COUNTS_BYTES: summaries only
    monkeypatch.setattr(simulate_module, "KEEP_COUNTS_BYTES", 100)
    assert not simulate(network, images6, n_steps=5, batch_size=2).counts_kept


# --------------------------------------------------------------------------------------------
# The shared rules
# --------------------------------------------------------------------------------------------

def test_numbers():
    assert validation.real(np.float32(0.5), "x", low=0, high=1) == 0.5
    assert validation.real(np.array([2.0]), "x") == 2.0  # a one-element array is a number
    assert validation.integer(np.int64(3), "n", low=1) == 3
    for bad, message in [(True, "got bool"), ("1", "got str"), (1 + 2j, "got complex"),
                         (float("nan"), "finite"), (float("inf"), "finite"),
                         (np.array([1.0, 2.0]), "got ndarray"), (None, "got NoneType")]:
        with pytest.raises(validation.ArgumentError, match=message):
            validation.real(bad, "x")
    # the name, the value and the accepted range are in the message
    with pytest.raises(ValueError, match=r"percentile=150 must be a finite real number in "
                                         r"\(0, 100\]"):
        validation.real(150, "percentile", low=0, high=100, low_open=True)
    with pytest.raises(ValueError, match=r"n_steps=2.0 must be an integer in \[1, inf\).*float"):
        validation.integer(2.0, "n_steps", low=1)
    # both ValueError and TypeError catch it
    with pytest.raises(TypeError):
        validation.integer("3", "n")


def test_images_and_labels():
    with pytest.raises(ValueError, match="dtype bool"):
        validation.images(np.zeros((2, 3), bool))
    with pytest.raises(ValueError, match="dtype <U1"):
        validation.images(np.array([["a"]]))
    with pytest.raises(ValueError, match=r"NaN or infinite values \(1 of 6\)"):
        validation.images(np.array([[0.0, 1.0, np.inf], [0.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="classes >= 0"):
        validation.labels(np.array([0, -1]), 2)
    with pytest.raises(ValueError, match="one integer class per example"):
        validation.labels(np.zeros((2, 1, 3), int), 2)
    assert validation.names("conv0", "layers") == ("conv0",)
    with pytest.raises(ValueError, match="a name"):
        validation.names(3, "layers")


def test_other_public_functions_check_their_numbers(network, dense_model, images6):
    from snnlib.analysis import measures, protocol
    from snnlib.ann import regularize
    from snnlib.sim import synapses

    for call, message in [
        (lambda: snnlib.load_mnist(seed=-1), "seed"),
        (lambda: snnlib.load_mnist(full="yes"), "full"),
        (lambda: measures.spikes_per_example(simulate(network, images6, n_steps=2),
                                             by_layer="yes"), "by_layer"),
        (lambda: measures.fan_out(network, ["hidden0"]), "layer name"),
        (lambda: protocol.latency_steps([0.5, 0.9], ann_accuracy=True), "ann_accuracy"),
        (lambda: protocol.latency_ms([0.5], 0.9, dt=0), "dt"),
        (lambda: synapses.rise_steps(0.005, fraction=1.0), "fraction"),
        (lambda: synapses.step_response(0.005, 10 ** 12), "n_steps"),
        (lambda: regularize.RateRegularizer(target_rate=float("nan")), "target_rate"),
        (lambda: snnlib.sim.neurons.integrate_and_fire(1.0, 5, initial_voltage=-1), "initial_volt"),
        (lambda: snnlib.sim.neurons.scaled_rates(None, 1.0, scale=np.nan), "scale"),
        (lambda: snnlib.sweep(network, images6, np.zeros(3, int), n_steps=5,
                              grid={"synapse": [None]}), "4 examples but 3"),
        (lambda: snnlib.nengo.bridge.build_nengo_converter(dense_model, initial_voltage=2.0),
         "initial_voltage"),
        (lambda: snnlib.nengo.bridge.run_nengo(None, images6, n_steps=0), "n_steps"),
        (lambda: snnlib.build_convnet(n_classes=1), "n_classes"),
    ]:
        with pytest.raises(ValueError, match=message):
            call()


def test_event_engine_memory_is_bounded(network, images6, monkeypatch):
    import importlib

    simulate_module = importlib.import_module("snnlib.sim.simulator")
    from snnlib.sim import event_driven

    reference = simulate(network, images6, n_steps=20, scale_firing_rates=50.0, method="dense")

    def refuse(*args, **kwargs):
        raise AssertionError("the event-driven engine ran")

    # the closed form lists every first-layer spike at once; past EVENT_MEMORY, "auto" runs
    # the dense engine instead (same counts)
    monkeypatch.setattr(simulate_module, "EVENT_MEMORY", 0)
    monkeypatch.setattr(event_driven, "run_chunk", refuse)
    auto = simulate(network, images6, n_steps=20, scale_firing_rates=50.0)
    for name in reference.spike_counts:
        np.testing.assert_array_equal(auto.spike_counts[name], reference.spike_counts[name])
    # a forced event run that cannot fit in memory says so
    monkeypatch.setenv("SNNLIB_MEMORY_LIMIT", "2000")  # bytes: the output fits, the spikes not
    with pytest.raises(ValueError, match="method='event' would list"):
        simulate(network, images6, n_steps=20, scale_firing_rates=300.0, method="event")
