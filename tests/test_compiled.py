"""Tests of snnlib.sim.compiled: the compiled engine gives the dense engine's spikes."""
import itertools
import threading

import numpy as np
import pytest
from test_convert import NEW_LAYER_MODELS
from test_event_driven import small_vgg

from snnlib.ann.data import load_mnist
from snnlib.ann.models import load_pretrained_convnet
from snnlib.convert import convert
from snnlib.sim import compiled
from snnlib.sim.neurons import SpikingReLU
from snnlib.sim.simulator import simulate


def assert_same_spikes(network, x, **options):
    """float64: the same spike counts in every layer, outputs equal to summation-order
    rounding; returns the dense run."""
    dense = simulate(network, x, method="dense", dtype=np.float64, **options)
    fast = simulate(network, x, method="compiled", dtype=np.float64, **options)
    for name, counts in dense.spike_counts.items():
        np.testing.assert_array_equal(fast.spike_counts[name], counts, err_msg=name)
    np.testing.assert_allclose(fast.output, dense.output, rtol=0, atol=1e-9)
    for name, spikes in dense.spikes.items():
        np.testing.assert_array_equal(fast.spikes[name], spikes, err_msg=name)
    return dense


@pytest.fixture(scope="module")
def book_convnet():
    (_, _), (x_test, _) = load_mnist()
    return convert(load_pretrained_convnet()), x_test[:12]


@pytest.mark.parametrize("options", [
    dict(),  # NengoDL's neuron, several spikes per step, reset by subtraction
    dict(neuron="if"),
    dict(neuron="lif"),
    dict(max_spikes_per_step=1, initial_voltage=0.5),
    dict(reset="zero"),
    dict(neuron="if", reset="zero", max_spikes_per_step=1),
    dict(synapse=0.005),
    dict(neuron="lif", synapse=0.01),
    dict(input="poisson", seed=1),
    dict(initial_voltage="uniform", seed=3, neuron="if"),
    dict(record_spikes=["conv0", "conv1"]),
], ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "nengo")
@pytest.mark.parametrize("scale", [100.0, 1000.0])
def test_the_book_convnet_spikes_as_on_the_dense_engine(book_convnet, options, scale):
    network, x = book_convnet
    dense = assert_same_spikes(network, x, n_steps=20, scale_firing_rates=scale, **options)
    assert dense.spike_counts["conv1"].sum() > 0  # not trivial: the last layer spikes


def test_pooling_between_spiking_layers():
    """Tiling, overlapping ("same", stride 2) and global average pooling between layers."""
    network = convert(small_vgg(0))
    x = np.random.default_rng(1).random((5, 12, 12, 1))
    for neuron, scale, synapse, cap in [("spiking_relu", 1000.0, 0.002, None),
                                        ("if", 1000.0, None, 1), ("lif", 3000.0, None, None)]:
        options = dict(neuron=neuron) if neuron == "lif" else dict(
            neuron=neuron, max_spikes_per_step=cap)
        dense = assert_same_spikes(network, x, n_steps=25, scale_firing_rates=scale,
                                   synapse=synapse, **options)
        # not trivial: the last layer, behind three poolings, spikes
        assert dense.spike_counts["relu3"].sum() > 0


def causal_conv1d():
    import tensorflow as tf
    from test_convert import chain

    layers = tf.keras.layers
    return chain((14, 14, 1), layers.Reshape((14, 14), name="rows"),
                 layers.Conv1D(6, 3, activation="relu", name="c0"),
                 layers.AveragePooling1D(2, name="pool"),
                 layers.Conv1D(6, 3, padding="causal", dilation_rate=2, activation="relu",
                               name="c1"),
                 layers.Conv1D(4, 3, strides=2, padding="same", activation="relu", name="c2"),
                 layers.Flatten(), layers.Dense(3, name="out"))


@pytest.mark.parametrize("name", ["dilated", "grouped", "separable", "causal conv1d"])
def test_convolution_geometries(rng, name):
    """Dilation, groups (a grouped and a composed separable kernel), strides, "same" and
    "causal" padding, 1-D convolutions and pooling: the compiled scatter is the convolution."""
    model = causal_conv1d() if name == "causal conv1d" else NEW_LAYER_MODELS[name]()
    x = rng.random((4,) + model.input_shape[1:]).astype(np.float32)
    network = convert(model, calibration=x, normalization="max")
    segments, why = compiled.plan(network, SpikingReLU(), "constant")
    assert why is None, why
    dense = assert_same_spikes(network, x, n_steps=15, scale_firing_rates=300.0)
    assert sum(int(c.sum()) for c in dense.spike_counts.values()) > 0


def test_auto_runs_the_compiled_engine_where_it_applies(book_convnet, monkeypatch):
    network, x = book_convnet
    calls = []
    run_chunk = compiled.run_chunk
    monkeypatch.setattr(compiled, "run_chunk",
                        lambda *a, **k: calls.append(len(a[3])) or run_chunk(*a, **k))
    simulate(network, x, n_steps=5, scale_firing_rates=100.0)
    assert calls == [len(x)]


@pytest.mark.parametrize("neuron", ["spiking_relu", "if"])
def test_the_deep_network(neuron):
    from snnlib.ann.models import load_pretrained_deep_convnet

    (x_train, _), (x_test, _) = load_mnist()
    network = convert(load_pretrained_deep_convnet(), calibration=x_train[:200],
                      normalization="percentile")
    dense = assert_same_spikes(network, x_test[:3], n_steps=24, scale_firing_rates=300.0,
                               neuron=neuron, max_spikes_per_step=1, initial_voltage=0.5)
    assert len(dense.spike_counts) == 6 and dense.spike_counts["relu5"].sum() > 0


class DoubleDrive(SpikingReLU):
    """A user-defined model (not snnlib's own rule): the other engines run it."""

    name = "double_drive"

    def drive(self, current, gain, dt, out=None):
        out = super().drive(current, gain, dt, out=out)
        out *= 2
        return out


def test_unsupported_simulations_say_why_and_auto_falls_back(book_convnet):
    network, x = book_convnet
    with pytest.raises(ValueError, match="method='compiled' cannot simulate this: the neuron "
                                         "model DoubleDrive is not one of snnlib's own"):
        simulate(network, x, n_steps=5, neuron=DoubleDrive(), method="compiled")
    # auto runs it on the other engines, with the model's own rule
    auto = simulate(network, x, n_steps=10, scale_firing_rates=100.0, neuron=DoubleDrive(),
                    dtype=np.float64)
    dense = simulate(network, x, n_steps=10, scale_firing_rates=100.0, neuron=DoubleDrive(),
                     dtype=np.float64, method="dense")
    np.testing.assert_array_equal(auto.spike_counts["conv0"], dense.spike_counts["conv0"])


@pytest.mark.parametrize("input", ["constant", "poisson"])
@pytest.mark.parametrize("synapse", [None, 0.005])
def test_graphs_give_the_dense_engine_s_spikes(rng, input, synapse):
    """Residual sum, concatenation, subtraction, average and fan-out, run stage by stage: the
    same spikes for every neuron model, reset and spike cap, at low and high rates (several
    chunks of examples: the synapse's state starts again in each)."""
    from test_convert import residual_inception

    model = residual_inception(rng)
    x = rng.random((compiled.CHUNK + 8, 10, 10, 2)).astype(np.float32)
    network = convert(model, calibration=x, normalization="max")
    assert not network.is_chain and compiled.plan(network, SpikingReLU(), input) == ([], None)
    for scale, neuron, reset, max_spikes in itertools.product(
            [20.0, 500.0], ["spiking_relu", "if", "lif"], ["subtract", "zero"], [None, 1]):
        if neuron == "lif" and (reset == "zero" or max_spikes == 1):
            continue  # (nengo.LIF's own reset and rate)
        dense = assert_same_spikes(network, x, n_steps=30, scale_firing_rates=scale,
                                   neuron=neuron, reset=reset, max_spikes_per_step=max_spikes,
                                   synapse=synapse, input=input, seed=3,
                                   record_spikes=["c0", "add_relu"])
        if scale == 500.0:
            assert all(c.sum() > 0 for c in dense.spike_counts.values())


def test_pooled_events_into_a_graph_add_up(rng):
    """Average pooling of spikes into a join, and into a scatter: several spikes of one step
    reach one pooled cell and add up."""
    import tensorflow as tf

    layers = tf.keras.layers
    tf.keras.utils.set_random_seed(0)
    inp = tf.keras.Input((12, 12, 1))
    a = layers.AveragePooling2D(2, name="pool")(layers.Conv2D(4, 3, activation="relu",
                                                               name="a")(inp))
    b1 = layers.Conv2D(4, 3, padding="same", activation="relu", name="b1")(a)
    b2 = layers.Conv2D(4, 1, activation="relu", name="b2")(a)
    joined = layers.Add(name="add")([b1, layers.AveragePooling2D(1, name="same_pool")(b2)])
    out = layers.Dense(3, name="out")(layers.Flatten(name="flat")(
        layers.AveragePooling2D(2, name="last_pool")(joined)))
    network = convert(tf.keras.Model(inp, out), calibration=rng.random((6, 12, 12, 1)),
                      normalization="max")
    x = rng.random((6, 12, 12, 1)).astype(np.float32)
    for scale in (30.0, 300.0):
        assert_same_spikes(network, x, n_steps=40, scale_firing_rates=scale, neuron="if",
                           max_spikes_per_step=1)


@pytest.mark.parametrize("method", ["compiled", "event"])
def test_a_pooled_shortcut_into_a_sum_is_the_dense_engine_s(rng, method):
    """A pool of spikes read densely (by a sum) is the pool's ``sum / cells``, as on the dense
    engine, not pooled events' ``spike / cells`` added up: without normalization voltages
    land on the threshold, where that rounding moves spikes (a 3 x 3 window, 1/9)."""
    import tensorflow as tf

    layers = tf.keras.layers
    tf.keras.utils.set_random_seed(0)
    inp = tf.keras.Input((12, 12, 1))
    stem = layers.Conv2D(8, 3, padding="same", activation="relu", name="stem")(inp)
    shortcut = layers.AveragePooling2D(3, strides=2, padding="same", name="pool")(stem)
    path = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="r0")(stem)
    path = layers.Conv2D(8, 3, padding="same", name="r1")(path)
    joined = layers.ReLU(name="add_relu")(layers.Add(name="add")([shortcut, path]))
    network = convert(tf.keras.Model(inp, layers.Dense(10, name="out")(
        layers.Flatten()(joined))))
    x = rng.random((40, 12, 12, 1)).astype(np.float32)
    options = dict(n_steps=40, scale_firing_rates=100.0, dtype=np.float64,
                   record_spikes=["add_relu"])
    dense = simulate(network, x, method="dense", **options)
    other = simulate(network, x, method=method, **options)
    np.testing.assert_array_equal(other.spikes["add_relu"], dense.spikes["add_relu"])
    np.testing.assert_allclose(other.output, dense.output, rtol=0, atol=1e-9)


def test_auto_runs_graphs_on_the_compiled_engine(rng, monkeypatch):
    from test_convert import residual_inception

    network = convert(residual_inception(rng))
    calls = []
    run_graph = compiled.run_graph
    monkeypatch.setattr(compiled, "run_graph",
                        lambda *a, **k: calls.append(1) or run_graph(*a, **k))
    simulate(network, rng.random((3, 10, 10, 2)), n_steps=5, scale_firing_rates=100.0)
    assert calls


def test_a_spiking_max_pool_in_a_graph_is_named(rng):
    import tensorflow as tf

    layers = tf.keras.layers
    tf.keras.utils.set_random_seed(0)
    inp = tf.keras.Input((6, 6, 1))
    a = layers.Conv2D(3, 3, padding="same", activation="relu")(inp)
    b = layers.Conv2D(3, 3, padding="same", activation="relu")(a)
    pooled = layers.MaxPooling2D(2)(layers.Add()([a, b]))
    out = layers.Dense(2)(layers.Flatten()(pooled))
    network = convert(tf.keras.Model(inp, out), spiking_max_pool=True)
    with pytest.raises(ValueError, match="method='compiled' cannot simulate this: stage "
                                         ".* is a spiking max pool"):
        simulate(network, rng.random((2, 6, 6, 1)), n_steps=5, method="compiled")


def test_runs_from_several_threads_are_those_of_one(book_convnet):
    """Runs are serialized (numba's threading layer is not re-entrant): threads get the results
    of a run alone."""
    network, x = book_convnet
    options = dict(n_steps=10, scale_firing_rates=300.0, method="compiled")
    alone = simulate(network, x, **options).output
    results, errors = [None] * 4, []

    def run(i):
        try:
            results[i] = simulate(network, x, **options).output
        except Exception as err:  # noqa: BLE001  (reported below)
            errors.append(err)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for output in results:
        np.testing.assert_array_equal(output, alone)


def test_float32_agrees_with_the_dense_engine(book_convnet):
    """float32 (the default): the linear operations add in another order, so a rare neuron
    may spike a step earlier or later; the readout agrees to float32 rounding here."""
    network, x = book_convnet
    options = dict(n_steps=20, scale_firing_rates=1000.0)
    dense = simulate(network, x, method="dense", **options)
    fast = simulate(network, x, method="compiled", **options)
    assert fast.output.dtype == np.float32
    differ = sum(int(np.abs(fast.spike_counts[k] - dense.spike_counts[k]).sum())
                 for k in dense.spike_counts)
    total = sum(int(c.sum()) for c in dense.spike_counts.values())
    assert differ <= 1e-4 * total
    np.testing.assert_array_equal(fast.predictions(), dense.predictions())


def test_two_poolings_in_a_row_between_spiking_layers(rng):
    """Pooled events may repeat a cell, so a second pooling receives more events than it has
    cells: its buffers are sized for that."""
    import tensorflow as tf
    from test_convert import chain

    layers = tf.keras.layers
    model = chain((8, 8, 1), layers.Conv2D(3, 3, padding="same", activation="relu", name="c0"),
                  layers.AveragePooling2D(2, name="p0"),
                  layers.AveragePooling2D(2, strides=1, padding="same", name="p1"),
                  layers.Conv2D(4, 3, activation="relu", name="c1"),
                  layers.Flatten(), layers.Dense(2, name="out"))
    x = rng.random((3, 8, 8, 1)).astype(np.float32)
    network = convert(model, calibration=x, normalization="max")
    assert [len(maps) for maps, _, _ in compiled.plan(network, SpikingReLU(), "constant")[0]] \
        == [2, 1]  # (the second: the flatten)
    dense = assert_same_spikes(network, x, n_steps=20, scale_firing_rates=2000.0)
    assert dense.spike_counts["c1"].sum() > 0


def test_a_dense_layer_on_a_sequence_is_left_to_the_other_engines(rng):
    """Keras applies a Dense layer position by position on a (length, channels) input; the
    compiled scatter is for vectors, so such a network runs on the other engines."""
    import tensorflow as tf
    from test_convert import chain

    layers = tf.keras.layers
    model = chain((14, 14, 1), layers.Reshape((14, 14), name="rows"),
                  layers.Conv1D(6, 3, activation="relu", name="c0"),
                  layers.Dense(4, activation="relu", name="per_position"),
                  layers.Flatten(), layers.Dense(3, name="out"))
    x = rng.random((3, 14, 14, 1)).astype(np.float32)
    network = convert(model)
    segments, why = compiled.plan(network, SpikingReLU(), "constant")
    assert segments is None and why
    with pytest.raises(ValueError, match="method='compiled' cannot simulate this"):
        simulate(network, x, n_steps=5, method="compiled")
    auto = simulate(network, x, n_steps=10, scale_firing_rates=300.0, dtype=np.float64)
    dense = simulate(network, x, n_steps=10, scale_firing_rates=300.0, dtype=np.float64,
                     method="dense")
    np.testing.assert_array_equal(auto.spike_counts["per_position"],
                                  dense.spike_counts["per_position"])


def test_a_start_that_rounds_to_the_threshold_fires_at_once(book_convnet):
    """A start below 1 in float64 may round to 1.0 in float32: such a neuron fires at step 0
    even where its drive is <= 0, on the compiled engine as on the dense one."""
    network, x = book_convnet
    stage = network.stage("conv0")
    start = np.full(stage.output_shape, 1 - 2.0 ** -26)  # < 1, but 1.0 in float32
    assert start[0, 0, 0] < 1 and np.float32(start[0, 0, 0]) == 1
    options = dict(n_steps=3, scale_firing_rates=100.0,
                   initial_voltage={"conv0": start, "conv1": np.zeros(
                       network.stage("conv1").output_shape)})
    dense = simulate(network, x, method="dense", **options)
    fast = simulate(network, x, method="compiled", **options)
    np.testing.assert_array_equal(fast.spike_counts["conv0"], dense.spike_counts["conv0"])
    assert dense.spike_counts["conv0"].min() >= 1  # every neuron, whatever its drive
