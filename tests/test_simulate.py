"""The spiking simulator: convergence to rate mode, the neuron options, the result, bad input."""
import numpy as np
import pytest
import tensorflow as tf

from snnlib.convert import convert
from snnlib.sim.simulator import simulate


@pytest.fixture
def network(dense_model):
    return convert(dense_model)


def test_first_layer_counts_follow_its_rates(network, images6):
    result = simulate(network, images6, n_steps=100, scale_firing_rates=300.0)
    _, rates = network.forward(images6, return_all=True, dtype=np.float64)
    expected = rates["hidden0"] * 300.0 * 0.1  # rate (Hz) x duration (s)
    # with a constant input and a zero start, the first layer fires floor(s a T) spikes (+-1
    # for rounding of the accumulated voltage)
    assert np.abs(result.spike_counts["hidden0"] - np.floor(expected)).max() <= 1


def test_long_runs_approach_rate_mode(network, images6):
    result = simulate(network, images6, n_steps=1000, scale_firing_rates=1000.0, synapse=0.01)
    expected = network.forward(images6)
    mean_output = result.output[:, 500:].mean(axis=1)
    # at high rates, with filtering, the output settles near the rate-mode output
    np.testing.assert_allclose(mean_output, expected, atol=0.1 * np.abs(expected).max())


def test_output_shape_and_counts(network, images6):
    result = simulate(network, images6, n_steps=25, scale_firing_rates=200.0,
                      record_spikes=["hidden1"])
    # output over time, one row per step
    assert result.output.shape == (4, 25, 4)
    # spike counts per neuron, per spiking layer
    assert result.spike_counts["hidden0"].shape == (4, 16)
    # recorded spikes add up to the counts
    np.testing.assert_array_equal(result.spikes["hidden1"].sum(axis=1),
                                  result.spike_counts["hidden1"])
    # rates are counts over the duration, in Hz
    np.testing.assert_allclose(result.rates["hidden0"], result.spike_counts["hidden0"] / 0.025)
    assert result.mean_rates["hidden0"] > 0


def test_one_spike_per_step_and_reset_to_zero(network, images6):
    kwargs = dict(n_steps=50, scale_firing_rates=5000.0)
    multi = simulate(network, images6, **kwargs)
    single = simulate(network, images6, max_spikes_per_step=1, **kwargs)
    zero = simulate(network, images6, reset="zero", **kwargs)
    # at most one spike per step with max_spikes_per_step=1 ...
    assert single.spike_counts["hidden0"].max() <= 50
    # ... while Nengo's neuron fires several per step at this scale
    assert multi.spike_counts["hidden0"].max() > 50
    # reset to zero loses the charge above threshold: never more spikes than subtracting
    assert np.all(zero.spike_counts["hidden0"] <= multi.spike_counts["hidden0"])
    assert zero.spike_counts["hidden0"].sum() < multi.spike_counts["hidden0"].sum()


def test_uniform_initial_voltage_is_seeded(network, images6):
    a = simulate(network, images6, n_steps=10, scale_firing_rates=100.0,
                 initial_voltage="uniform", seed=1)
    b = simulate(network, images6, n_steps=10, scale_firing_rates=100.0,
                 initial_voltage="uniform", seed=1)
    zero = simulate(network, images6, n_steps=10, scale_firing_rates=100.0)
    # the same seed gives the same run
    np.testing.assert_array_equal(a.output, b.output)
    # a random start spikes earlier than a start at zero
    assert a.spike_counts["hidden0"].sum() > zero.spike_counts["hidden0"].sum()


def test_per_layer_initial_voltages(network, images6):
    """A dict of per-neuron voltages: every input starts from them (as in Nengo), both engines."""
    rng = np.random.default_rng(7)
    voltages = {"hidden0": rng.uniform(0, 1, 16), "hidden1": rng.uniform(0, 1, 12)}
    kwargs = dict(n_steps=20, scale_firing_rates=300.0, dtype=np.float64)
    runs = {method: simulate(network, images6, initial_voltage=voltages, method=method,
                             **kwargs) for method in ("dense", "event")}
    for name in runs["dense"].spike_counts:
        np.testing.assert_array_equal(runs["dense"].spike_counts[name],
                                      runs["event"].spike_counts[name])
    # the same start for every input: the same input twice gives the same run
    twice = simulate(network, np.concatenate([images6[:1], images6[:1]]),
                     initial_voltage=voltages, **kwargs)
    np.testing.assert_array_equal(twice.output[0], twice.output[1])
    # a constant dict equals the number
    constant = {name: np.full(v.shape, 0.25) for name, v in voltages.items()}
    np.testing.assert_array_equal(
        simulate(network, images6, initial_voltage=constant, **kwargs).output,
        simulate(network, images6, initial_voltage=0.25, **kwargs).output)
    assert not np.array_equal(runs["dense"].output,
                              simulate(network, images6, initial_voltage=0.25, **kwargs).output)


@pytest.mark.parametrize("voltages, message", [
    ({"hidden0": 0.1}, r"missing \['hidden1'\]"),
    ({"hidden0": 0.1, "hidden1": 0.1, "out": 0.1}, r"unknown \['out'\]"),
    ({"hidden0": np.zeros(5), "hidden1": 0.1}, r"initial_voltage\['hidden0'\] has shape \(5,\)"),
    ({"hidden0": 1.0, "hidden1": 0.1}, r"initial_voltage\['hidden0'\] must be in \[0, 1\)"),
    ({"hidden0": np.nan, "hidden1": 0.1}, "finite"),
])
def test_bad_per_layer_initial_voltages(network, images6, voltages, message):
    with pytest.raises(ValueError, match=message):
        simulate(network, images6, n_steps=2, initial_voltage=voltages)


def test_poisson_input(network, images6):
    a = simulate(network, images6, n_steps=20, scale_firing_rates=100.0, input="poisson", seed=3)
    b = simulate(network, images6, n_steps=20, scale_firing_rates=100.0, input="poisson", seed=3)
    c = simulate(network, images6, n_steps=20, scale_firing_rates=100.0, input="poisson", seed=4)
    # reproducible with a seed, different with another
    np.testing.assert_array_equal(a.output, b.output)
    assert not np.array_equal(a.output, c.output)
    # spike probabilities must be in [0, 1]
    with pytest.raises(ValueError, match="poisson"):
        simulate(network, images6 * 2, n_steps=2, input="poisson")


def test_synapse_delays_by_one_step_per_layer(network, images6):
    # at 5000 Hz the neurons spike from the first step on
    result = simulate(network, images6, n_steps=10, scale_firing_rates=5000.0, synapse=0.005)
    bias = network.stage("out").bias
    # the synapse out of the last spiking layer is one step late: the first output is the bias
    np.testing.assert_allclose(result.output[:, 0], np.broadcast_to(bias, (4, 4)), rtol=1e-6)
    without = simulate(network, images6, n_steps=10, scale_firing_rates=5000.0)
    # without synapse, spikes of the first step already reach the output
    assert not np.allclose(without.output[:, 0], bias)


def test_batches_and_precision_agree(network, images6):
    whole = simulate(network, images6, n_steps=20, scale_firing_rates=200.0, dtype=np.float64)
    parts = simulate(network, images6, n_steps=20, scale_firing_rates=200.0, batch_size=3,
                     dtype=np.float64)
    single = simulate(network, images6, n_steps=20, scale_firing_rates=200.0)
    # simulating in chunks changes nothing
    np.testing.assert_array_equal(whole.output, parts.output)
    # float32 gives the same trajectories to float32 rounding (barring a rare flipped spike)
    np.testing.assert_allclose(single.output, whole.output, atol=1e-4)


def test_accuracy_and_predictions(network, images6):
    result = simulate(network, images6, n_steps=30, scale_firing_rates=300.0)
    labels = network.forward(images6).argmax(axis=1)
    accuracy = result.accuracy_over_time(labels, readout="mean")
    # one accuracy per step, each a fraction
    assert accuracy.shape == (30,) and np.all((accuracy >= 0) & (accuracy <= 1))
    # predictions are the arg-max of the last step (or of the mean over time)
    np.testing.assert_array_equal(result.predictions("last"), result.output[:, -1].argmax(1))
    np.testing.assert_array_equal(result.predictions("mean"),
                                  result.output.mean(axis=1).argmax(1))
    # readout "last" at the last step is the accuracy of those predictions
    assert result.accuracy(labels) == np.mean(result.predictions() == labels)
    with pytest.raises(ValueError, match="readout"):
        result.accuracy_over_time(labels, readout="median")
    with pytest.raises(ValueError, match="labels"):
        result.accuracy_over_time(labels[:2])


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_steps=0), "n_steps"),
    (dict(n_steps=2.5), "n_steps"),
    (dict(n_steps=5, dt=0), "dt"),
    (dict(n_steps=5, dt=-0.001), "dt"),
    (dict(n_steps=5, scale_firing_rates=0.0), "scale_firing_rates.*positive"),
    (dict(n_steps=5, scale_firing_rates={"hidden1": -2.0}), "'hidden1'.*positive"),
    (dict(n_steps=5, scale_firing_rates={"out": 2.0}), "not spiking layers"),
    (dict(n_steps=5, scale_firing_rates={"nonsense": 2.0}), "nonsense"),
    (dict(n_steps=5, reset="soft"), "reset"),
    (dict(n_steps=5, input="rate"), "input"),
    (dict(n_steps=5, max_spikes_per_step=2), "max_spikes_per_step"),
    (dict(n_steps=5, synapse=-0.1), "synapse"),
    (dict(n_steps=5, initial_voltage="random"), "initial_voltage"),
])
def test_bad_options(network, images6, kwargs, message):
    # each bad option is named in the error
    with pytest.raises(ValueError, match=message):
        simulate(network, images6, **kwargs)


def test_bad_inputs(network, images6):
    # wrong shape: the message gives the expected one
    with pytest.raises(ValueError, match=r"expected \(batch,\) \+ \(6, 6, 1\)"):
        simulate(network, images6[:, :5], n_steps=5)
    bad = images6.copy()
    bad[0, 0, 0, 0] = np.nan
    # NaN inputs are refused
    with pytest.raises(ValueError, match="NaN"):
        simulate(network, bad, n_steps=5)
    bad[0, 0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="infinite"):
        simulate(network, bad, n_steps=5)


def test_method_event_where_it_cannot_apply(network, conv_model, images6, images12):
    # each reason is said: input changing every step, negative start, a stage without sparse form
    with pytest.raises(ValueError, match="method='event'.*constant input"):
        simulate(network, images6, n_steps=2, input="poisson", method="event")
    # (a negative start is allowed only for the signed-current IF neuron)
    with pytest.raises(ValueError, match="method='event'.*initial voltages >= 0"):
        simulate(network, images6, n_steps=2, initial_voltage=-0.5, neuron="if", method="event")
    with pytest.raises(ValueError, match="method='event'.*refractory"):
        simulate(network, images6, n_steps=2, neuron="lif", method="event")
    layers = tf.keras.layers
    tf.keras.utils.set_random_seed(0)
    pooled_readout = tf.keras.Sequential([
        tf.keras.Input((12, 12, 1)), layers.Conv2D(3, 3, activation="relu", name="conv"),
        layers.Conv2D(2, 3, name="linear_conv"), layers.AveragePooling2D(2, name="pool"),
        layers.Flatten(name="flat"), layers.Dense(2, name="out")])
    with pytest.raises(ValueError, match="method='event'.*'pool' \\(avgpool2d\\).*after"):
        simulate(convert(pooled_readout), images12, n_steps=2, method="event")
    with pytest.raises(ValueError, match="unknown method 'sparse'"):
        simulate(network, images6, n_steps=2, method="sparse")
    # "auto" falls back to the dense engine there
    auto = simulate(convert(pooled_readout), images12, n_steps=5, scale_firing_rates=300.0)
    dense = simulate(convert(pooled_readout), images12, n_steps=5, scale_firing_rates=300.0,
                     method="dense")
    np.testing.assert_array_equal(auto.output, dense.output)


def test_event_and_dense_engines_agree(network, images6):
    for options in (dict(), dict(reset="zero", max_spikes_per_step=1), dict(neuron="if"),
                    dict(initial_voltage="uniform", seed=2)):
        kwargs = dict(n_steps=30, scale_firing_rates=400.0, dtype=np.float64, **options)
        event = simulate(network, images6, method="event", **kwargs)
        dense = simulate(network, images6, method="dense", **kwargs)
        # float64: the same spikes, outputs to summation-order rounding
        for name in dense.spike_counts:
            np.testing.assert_array_equal(event.spike_counts[name], dense.spike_counts[name])
        np.testing.assert_allclose(event.output, dense.output, atol=1e-9)


@pytest.mark.parametrize("settings", [
    dict(scale_firing_rates=100.0, dtype=np.float64),  # the event-driven engine
    dict(scale_firing_rates=1000.0, method="dense", synapse=0.005, dtype=np.float64),
    dict(scale_firing_rates=100.0, neuron="lif", synapse=0.005, dtype=np.float32),
    dict(scale_firing_rates=300.0, neuron="if", initial_voltage="uniform", seed=3),
])
def test_chunks_in_threads_give_the_same_results(mnist, monkeypatch, settings):
    from snnlib import config
    from snnlib.ann.models import load_pretrained_convnet

    network = convert(load_pretrained_convnet())
    x = mnist[1][0][:3 * config.CHUNK + 5]  # several chunks and a short last one
    runs = {}
    for threads in (1, 2):
        monkeypatch.setattr(config, "THREADS", threads)
        runs[threads] = simulate(network, x, n_steps=12, **settings)
    one, two = runs[1], runs[2]
    assert np.array_equal(one.output, two.output)
    assert one.spike_counts.keys() == two.spike_counts.keys()
    assert all(np.array_equal(one.spike_counts[k], two.spike_counts[k]) for k in one.spike_counts)
    assert one.spike_counts["conv0"].sum() > 0  # the runs do spike


def test_spiking_max_pool_runs_on_the_dense_engine(rng):
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([
        tf.keras.Input((8, 8, 1)),
        tf.keras.layers.Conv2D(4, 3, activation="relu", name="c"),
        tf.keras.layers.MaxPooling2D(2, name="pool"),
        tf.keras.layers.Conv2D(4, 3, activation="relu", name="c2"),
        tf.keras.layers.Flatten(name="flat"),
        tf.keras.layers.Dense(3, name="out")])
    x = rng.random((20, 8, 8, 1)).astype(np.float32)
    gated = convert(model, calibration=x, normalization="max", spiking_max_pool=True)
    with pytest.warns(UserWarning, match="converted as average pooling"):
        swapped = convert(model, calibration=x, normalization="max", max_to_avg_pool=True)
    options = dict(n_steps=200, neuron="if", scale_firing_rates=1000.0, max_spikes_per_step=1,
                   initial_voltage=0.5)
    # the event-driven engine has no gate state: it says so, and "auto" runs the dense one
    with pytest.raises(ValueError, match="method='event' cannot .* spiking max pool"):
        simulate(gated, x, method="event", **options)
    result = simulate(gated, x, **options)
    np.testing.assert_array_equal(result.output, simulate(gated, x, method="dense",
                                                          **options).output)
    # the gated network's output, averaged over the run, is near the rate-mode (Keras) output
    # (measured 12 % of the largest output here; not 0: where two inputs of a window fire at
    # close rates the lead changes hands, and the gate passes more or less than the larger
    # rate), the swap's is far from it (66 %)
    ann = gated.forward(x).reshape(len(x), -1)
    error = np.abs(result.output.mean(axis=1) - ann).max() / np.abs(ann).max()
    swap = np.abs(simulate(swapped, x, **options).output.mean(axis=1) - ann).max() \
        / np.abs(ann).max()
    assert error < 0.2 and error < swap / 3, (error, swap)


@pytest.mark.parametrize("neurons", [False, True])
def test_a_max_pool_on_a_poisson_input_runs_its_gate(rng, neurons):
    # the input's spikes go straight into the pool: without the gate its rate would be that of
    # any spike in the window, 1 - (1 - 0.3)^4 = 0.76 per step, not the largest rate, 0.3
    # (with a ReLU after it, the pool is the first spiking stage: its gate runs once a step)
    tf.keras.utils.set_random_seed(0)
    relu = [tf.keras.layers.ReLU(name="relu")] if neurons else []
    model = tf.keras.Sequential([
        tf.keras.Input((4, 4, 1)), tf.keras.layers.MaxPooling2D(2, name="pool"), *relu,
        tf.keras.layers.Flatten(name="flat"), tf.keras.layers.Dense(1, name="out",
                                                                    use_bias=False)])
    model.get_layer("out").set_weights([np.ones((4, 1))])
    network = convert(model, spiking_max_pool=True)
    pool = network.stage("relu" if neurons else "pool")  # the ReLU's neurons join the pool
    assert pool.op.gated and pool.spiking == neurons
    x = np.full((5, 4, 4, 1), 0.3, dtype=np.float32)
    result = simulate(network, x, n_steps=2000, input="poisson", seed=0, method="dense",
                      scale_firing_rates=1000.0, neuron="if")
    # four windows, each passing about 0.3 spikes per step (measured 0.32: with equal rates the
    # lead changes hands, and a new leader's spike may pass in the step it takes the lead),
    # far from the 0.76 of the maximum of the spikes
    passed = result.output.mean() / 4
    assert 0.28 < passed < 0.36, passed
