"""Data-based normalization: lambdas as defined, predictions unchanged, bad arguments refused."""
import numpy as np
import pytest

from snnlib.convert import convert, verify
from snnlib.normalize.rules import threshold_balancing


@pytest.fixture(scope="module")
def digits(mnist):
    (x_train, _), (x_test, _) = mnist
    return x_train[:200], x_test


@pytest.mark.parametrize("normalization", ["max", "percentile"])
def test_predictions_and_rates_unchanged(convnet, digits, normalization):
    calibration, x_test = digits
    original = convert(convnet)
    normalized = convert(convnet, calibration=calibration, normalization=normalization)
    out0, acts0 = original.forward(x_test, dtype=np.float64, return_all=True)
    out1, acts1 = normalized.forward(x_test, dtype=np.float64, return_all=True)
    # the normalization changed the hidden weights
    assert normalized.scales["conv0"] != 1.0
    # same predictions on every test image (ReLU is positively homogeneous)
    np.testing.assert_array_equal(out1.argmax(axis=1), out0.argmax(axis=1))
    # each layer's rates are the original activations divided by its lambda
    for name in ("conv0", "conv1", "flatten"):
        np.testing.assert_allclose(acts1[name] * normalized.scales[name], acts0[name],
                                   rtol=1e-9, atol=1e-12)
    # the output layer is not normalized: logits stay those of Keras
    assert verify(normalized, convnet, x_test[:100]) < 1e-5


def test_max_is_the_largest_activation(convnet, digits):
    calibration, _ = digits
    network = convert(convnet, calibration=calibration, normalization="max")
    _, activations = convert(convnet).forward(calibration, return_all=True)
    report = network.normalization_report().set_index("layer")
    for name in ("conv0", "conv1"):
        # lambda is the largest activation on the calibration set ...
        assert network.scales[name] == pytest.approx(activations[name].max(), rel=1e-6)
        # ... so nothing saturates
        assert report.loc[name, "fraction_above_scale"] == 0
    # the linear output has no neurons, so it has no saturation to report
    assert np.isnan(report.loc["dense", "fraction_above_scale"])


def test_percentile_of_nonzero_activations(convnet, digits):
    calibration, _ = digits
    network = convert(convnet, calibration=calibration, normalization="percentile",
                      percentile=99.0)
    with_zeros = convert(convnet, calibration=calibration, normalization="percentile",
                         percentile=99.0, include_zeros=True)
    _, activations = convert(convnet).forward(calibration, return_all=True)
    values = activations["conv1"]
    # lambda is the 99th percentile of the non-zero activations (SNN Toolbox)
    assert network.scales["conv1"] == pytest.approx(np.percentile(values[values > 0], 99.0))
    # with zeros included (sinabs) it is the percentile of all activations: smaller
    assert with_zeros.scales["conv1"] == pytest.approx(np.percentile(values, 99.0))
    assert with_zeros.scales["conv1"] < network.scales["conv1"]
    report = network.normalization_report().set_index("layer")
    # about 1% of the active neurons end up above lambda (they will saturate)
    expected = 0.01 * report.loc["conv1", "fraction_nonzero"]
    assert report.loc["conv1", "fraction_above_scale"] == pytest.approx(expected, rel=0.1)
    # the report's max is the largest activation, above lambda
    assert report.loc["conv1", "max_activation"] == pytest.approx(values.max())


def test_weights_rescaled_and_lambda_carried(conv_model, images12):
    network = convert(conv_model, calibration=images12, normalization="max")
    scales = network.scales
    # pooling and flatten carry lambda through; the input has lambda 1
    assert scales["pool"] == scales["conv_a"] and scales["flat"] == scales["conv_b"]
    assert scales["image"] == 1.0
    # the linear readout keeps lambda = 1
    assert scales["readout"] == 1.0
    for entry in network.weights():
        # W * lambda_prev / lambda and b / lambda, as reported layer by layer
        np.testing.assert_allclose(entry["kernel"], entry["kernel_original"] * entry["scale_in"]
                                   / entry["scale"], rtol=1e-6)
        np.testing.assert_allclose(entry["bias"], entry["bias_original"] / entry["scale"],
                                   rtol=1e-6)
    assert [e["scale_in"] for e in network.weights()] == [1.0, scales["conv_a"], scales["conv_b"]]


@pytest.mark.parametrize("kwargs, message", [
    (dict(normalization="percentile"), "calibration"),
    (dict(normalization="mean", calibration="x"), "unknown normalization 'mean'"),
    (dict(normalization="percentile", calibration="x", percentile=0), "percentile"),
    (dict(normalization="percentile", calibration="x", percentile=100.5), "percentile"),
    (dict(normalization="percentile", calibration="empty"), "empty"),
    (dict(normalization="max", calibration="nan"), "NaN"),
    (dict(normalization="max", calibration="shape"), r"expected \(batch,\) \+ \(12, 12, 1\)"),
])
def test_bad_normalization_arguments(conv_model, images12, kwargs, message):
    calibration = {"x": images12, "empty": images12[:0], "shape": images12[:, :6],
                   "nan": np.full_like(images12, np.nan), None: None}[kwargs.get("calibration")]
    kwargs = dict(kwargs, calibration=calibration)
    # each problem is named
    with pytest.raises(ValueError, match=message):
        convert(conv_model, **kwargs)


def test_normalize_in_place_equals_convert_with_normalization(conv_model, images12):
    from snnlib.normalize.rules import normalize

    direct = convert(conv_model, calibration=images12, normalization="percentile", percentile=95)
    plain = convert(conv_model)
    returned = normalize(plain, images12, method="percentile", percentile=95)
    # normalize() rescales the network it is given and returns it ...
    assert returned is plain
    # ... with the same lambdas and weights as convert(normalization=...)
    assert plain.scales == pytest.approx(direct.scales, rel=1e-12)
    for ours, theirs in zip(plain.weights(), direct.weights(), strict=True):
        np.testing.assert_allclose(ours["kernel"], theirs["kernel"], rtol=1e-6)
    # and a non-trivial normalization happened (some lambda differs from 1)
    assert any(abs(v - 1) > 1e-3 for v in plain.scales.values())


def test_rules_table_and_custom_rules(conv_model, images12):
    from snnlib.normalize.rules import (
        NORMALIZATIONS,
        MaxNormalization,
        NormalizationRule,
        PercentileNormalization,
        get_rule,
        layer_scale,
        register_normalization,
    )

    # the table holds the built-in rules, by name
    assert NORMALIZATIONS["max"] is MaxNormalization
    assert NORMALIZATIONS["percentile"] is PercentileNormalization
    values = np.array([0.0, 0.0, 1.0, 2.0, 3.0, 10.0], np.float32)
    assert layer_scale(values, "max") == 10.0
    assert layer_scale(values, "percentile", 50) == 2.5  # of the non-zero values
    assert layer_scale(np.zeros(4), "max") == 1.0  # a silent layer keeps its weights
    # order statistics, for a calibration that keeps only the top tail of each layer
    assert get_rule("percentile", percentile=99.0).order_statistic() == (0.99, True)
    assert get_rule("max").order_statistic() == (1.0, True)
    assert get_rule(np.max).order_statistic() is None

    def half_max(activations):
        return 0.5 * activations.max()

    # a callable receives the layer's activations and returns lambda
    custom = convert(conv_model, calibration=images12, normalization=half_max)
    reference = convert(conv_model, calibration=images12, normalization="max")
    assert custom.normalization == "half_max"
    for layer in ("conv_a", "conv_b"):
        assert custom.scales[layer] == pytest.approx(0.5 * reference.scales[layer], rel=1e-6)

    # a registered rule is used by name
    @register_normalization
    class Median(NormalizationRule):
        name = "median_test"

        def compute(self, values):
            return float(np.median(values[values > 0]))

    try:
        network = convert(conv_model, calibration=images12, normalization="median_test")
        assert network.normalization == "median_test"
        assert network.scales["conv_a"] < reference.scales["conv_a"]
        # the error message is built from the table
        with pytest.raises(ValueError, match="'median_test'.*callable"):
            convert(conv_model, calibration=images12, normalization="mean")
    finally:
        NORMALIZATIONS.unregister("median_test")
    # a rule that returns a bad lambda is named, with the layer
    with pytest.raises(ValueError, match="layer 'conv_a'.*lambda = -1"):
        convert(conv_model, calibration=images12, normalization=lambda values: -1.0)


def test_arguments_are_checked_once_at_the_public_edge(conv_model, images12, monkeypatch):
    # issue 24: convert() and normalize() resolve the rule and check granularity and
    # batch_size once, then pass the resolved values down
    from snnlib import validation
    from snnlib.normalize import rules

    calls = {"get_rule": 0, "granularity": 0, "batch_size": 0}
    get_rule, choice, integer = rules.get_rule, validation.choice, validation.integer

    def counted_get_rule(*args, **kwargs):
        calls["get_rule"] += 1
        return get_rule(*args, **kwargs)

    def counted_choice(value, name, *args, **kwargs):
        calls[name] = calls.get(name, 0) + 1
        return choice(value, name, *args, **kwargs)

    def counted_integer(value, name, *args, **kwargs):
        calls[name] = calls.get(name, 0) + 1
        return integer(value, name, *args, **kwargs)

    monkeypatch.setattr(rules, "get_rule", counted_get_rule)
    monkeypatch.setattr(validation, "choice", counted_choice)
    monkeypatch.setattr(validation, "integer", counted_integer)
    network = convert(conv_model, calibration=images12, normalization="percentile",
                      granularity="channel", batch_size=5)
    assert network.granularity == "channel" and network.normalization == "percentile"
    assert {k: calls[k] for k in ("get_rule", "granularity", "batch_size")} == dict(
        get_rule=1, granularity=1, batch_size=1)
    plain = convert(conv_model)
    calls.update(get_rule=0, granularity=0, batch_size=0)
    rules.normalize(plain, images12, method="max", batch_size=4)
    assert {k: calls[k] for k in ("get_rule", "granularity", "batch_size")} == dict(
        get_rule=1, granularity=1, batch_size=1)
    # the resolved arguments, as the internal step takes them
    args = rules.check_normalization_args("max", images12, 99.9, batch_size=np.int64(8))
    assert isinstance(args.rule, rules.MaxNormalization)
    assert args.batch_size == 8 and type(args.batch_size) is int and args.granularity == "layer"
    assert rules.check_normalization_args(None, None, 99.9).rule is None


def test_calibration_streams_to_the_same_lambdas(conv_model, images12, rng):
    from snnlib.normalize.rules import calibrate, compute_scales, measure

    calibration = rng.random((60, 12, 12, 1)).astype(np.float32)
    network = convert(conv_model)
    full = measure(network, calibration, batch_size=16)
    for method, percentile in [("percentile", 99.9), ("percentile", 50.0), ("max", 99.9)]:
        expected = compute_scales(network, full, method=method, percentile=percentile)
        # from the kept top values (one pass), and with a top too small to decide (more passes)
        for tail_size in (10 ** 6, 2):
            scales, _ = calibrate(network, calibration, method, percentile=percentile,
                                  batch_size=16, tail_size=tail_size)
            assert scales == expected, (method, percentile, tail_size)


def test_channel_wise_normalization(conv_model, images12, rng):
    from snnlib.normalize.rules import calibrate
    from snnlib.sim.simulator import simulate

    calibration = rng.random((40, 12, 12, 1)).astype(np.float32)
    network = convert(conv_model, calibration=calibration, normalization="percentile",
                      percentile=99.0, granularity="channel")
    assert network.granularity == "channel"
    # calibration runs in float64 (normalize.CALIBRATION_DTYPE)
    _, activations = convert(conv_model).forward(calibration, return_all=True, dtype=np.float64)
    for name in ("conv_a", "conv_b"):
        scales = network.scales[name]
        # one lambda per output channel: the percentile of that channel's non-zero activations
        assert scales.shape == (activations[name].shape[-1],)
        for channel, scale in enumerate(scales):
            values = activations[name][..., channel]
            values = values[values > 0]
            assert scale == (np.percentile(values, 99.0) if values.size else 1.0)
        # the same, exactly, when the kept top values do not decide it (more passes)
        streamed, _ = calibrate(convert(conv_model), calibration, "percentile", percentile=99.0,
                                granularity="channel", tail_size=2)
        np.testing.assert_array_equal(streamed[name], scales)
    # pooling carries the lambdas per channel; flatten spreads them over the positions
    np.testing.assert_array_equal(network.scales["pool"], network.scales["conv_a"])
    np.testing.assert_array_equal(network.scales["flat"], np.tile(network.scales["conv_b"], 4))
    for entry in network.weights():
        # W[..., c_in, c_out] * lambda_prev[c_in] / lambda[c_out], b[c_out] / lambda[c_out]
        scale_in = np.broadcast_to(entry["scale_in"], entry["kernel"].shape[-2:-1])
        scale = np.broadcast_to(entry["scale"], entry["kernel"].shape[-1:])
        np.testing.assert_allclose(
            entry["kernel"], entry["kernel_original"] * scale_in[:, None] / scale[None, :],
            rtol=1e-12)
        np.testing.assert_allclose(entry["bias"], entry["bias_original"] / scale, rtol=1e-12)
    # exact in rate mode: the Keras outputs, and each channel's activation / its lambda
    assert verify(network, conv_model, images12) < 1e-5
    _, rates = network.forward(calibration, return_all=True, dtype=np.float64)
    np.testing.assert_allclose(rates["conv_b"] * network.scales["conv_b"],
                               activations["conv_b"], rtol=1e-5, atol=1e-6)
    report = network.normalization_report().set_index("layer")
    assert 0 < report.loc["conv_a", "fraction_above_scale"] < 0.05
    # and it simulates
    result = simulate(network, images12, n_steps=20, scale_firing_rates=500.0)
    assert result.output.shape == (4, 20, 3)


def test_channel_wise_dense_units(dense_model, images6):
    calibration = np.concatenate([images6] * 5) * np.linspace(0.2, 1, 20)[:, None, None, None]
    network = convert(dense_model, calibration=calibration.astype(np.float32),
                      normalization="max", granularity="channel")
    # a dense layer's channels are its units
    assert network.scales["hidden0"].shape == (16,) and network.scales["hidden1"].shape == (12,)
    assert verify(network, dense_model, images6) < 1e-5


def test_channel_wise_has_no_nengo_scale_firing_rates(conv_model, images12):
    from snnlib.nengo.bridge import nengo_scale_firing_rates

    # NengoDL's scale_firing_rates is one number per layer; the error says what it would take
    with pytest.raises(ValueError, match="one number per layer.*per-neuron gains.*rescaled "
                                         "weights.*granularity='layer'"):
        nengo_scale_firing_rates(conv_model, images12, granularity="channel")


def _if_chain(x, weights, biases, thresholds, carried, n_steps=64):
    """Reset-by-subtraction IF chain, constant input current; spike counts per layer."""
    layer_input = np.repeat(x[None], n_steps, axis=0)  # (T, n_in): the image as a current
    counts = []
    for w, b, theta, value in zip(weights, biases, thresholds, carried, strict=True):
        v = np.zeros(w.shape[1])
        spikes = np.zeros((n_steps, w.shape[1]))
        for t in range(n_steps):
            v += layer_input[t] @ w + b
            fired = v >= theta
            v[fired] -= theta
            spikes[t] = fired
        counts.append(spikes.sum(axis=0))
        layer_input = spikes * value
    return counts


def test_threshold_balancing_gives_the_spike_trains_of_weight_normalization():
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 1, 8)
    weights = [rng.normal(0, 1, (8, 6)), rng.normal(0, 1, (6, 5)), rng.normal(0, 1, (5, 4))]
    biases = [rng.normal(0, 0.1, 6), rng.normal(0, 0.1, 5), rng.normal(0, 0.1, 4)]
    lambdas = [4.0, 0.5, 2.0]  # powers of two: every form is exact in floating point
    previous = [1.0] + lambdas[:-1]
    normalized = _if_chain(
        x, [w * before / lam for w, before, lam in zip(weights, previous, lambdas, strict=True)],
        [b / lam for b, lam in zip(biases, lambdas, strict=True)], [1.0] * 3, [1.0] * 3)
    unit = threshold_balancing(lambdas, spikes="unit")
    assert [u["threshold"] for u in unit] == [4.0, 0.125, 4.0]
    unit_biases = [b * u["bias_factor"] for b, u in zip(biases, unit, strict=True)]
    by_unit = _if_chain(x, weights, unit_biases, [u["threshold"] for u in unit], [1.0] * 3)
    carried = threshold_balancing(lambdas, spikes="threshold")
    assert [c["threshold"] for c in carried] == lambdas
    by_value = _if_chain(x, weights, biases, lambdas, lambdas)
    assert sum(c.sum() for c in normalized) > 20  # the chain does spike
    for a, b, c in zip(normalized, by_unit, by_value, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    # the other reading, threshold lambda_l in every layer with unit spikes, changes the rates
    wrong = _if_chain(x, weights, biases, lambdas, [1.0] * 3)
    assert any(not np.array_equal(a, b) for a, b in zip(normalized, wrong, strict=True))


@pytest.mark.parametrize("lambdas, spikes, message", [
    ([], "unit", "empty"), ([1.0, 0.0], "unit", r"lambdas\[1\]"),
    ([1.0], "carried", "spikes='carried'")])
def test_threshold_balancing_rejects_bad_input(lambdas, spikes, message):
    with pytest.raises(ValueError, match=message):
        threshold_balancing(lambdas, spikes=spikes)
