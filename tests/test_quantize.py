"""Weight quantization (snnlib.normalize.quantize): levels, bounds, the shared scale, the
integer network it stands for, and its errors."""
import numpy as np
import pytest

import snnlib
from snnlib.normalize.quantize import quantize_stage_weights
from snnlib.normalize.rules import apply_scales
from snnlib.validation import ArgumentError


@pytest.fixture
def network(dense_model, rng):
    calibration = rng.random((64, 6, 6, 1)).astype(np.float32)
    return snnlib.convert(dense_model, calibration=calibration, normalization="percentile")


@pytest.mark.parametrize("bits", [2, 3, 4, 8, 16])
@pytest.mark.parametrize("granularity", ["layer", "channel"])
def test_levels_bounds_and_round_trip(network, bits, granularity):
    levels = 2 ** (bits - 1) - 1
    q = snnlib.quantize(network, bits, granularity=granularity)
    for stage, before in zip(q.stages, network.stages, strict=False):
        if not stage.has_weights:
            assert "quantization" not in stage.stats
            continue
        info = stage.stats["quantization"]
        w, step = before.kernel.astype(np.float64), info["step"]
        assert info["weights"].dtype == np.int64 and np.abs(info["weights"]).max() <= levels
        # max rule: the largest weight (of the layer, or of each channel) gets the top level
        top = np.abs(info["weights"]).reshape(-1, w.shape[-1]).max(axis=0)
        assert (top.max() if granularity == "layer" else top.min()) == levels
        assert info["clipped"] == 0
        # round trip: within half a step of the float weights
        assert np.all(np.abs(info["weights"] * step - w) <= step / 2 * (1 + 1e-12))
        if stage.spiking:  # the threshold on the same scale, and the kernel in its units
            theta = info["threshold"]
            np.testing.assert_array_equal(theta, np.maximum(np.round(1 / np.asarray(step)), 1))
            # the neurons' gain, 1 / (theta * delta), is off by at most half a threshold step
            assert np.all(np.abs(1 / (theta * np.asarray(step)) - 1) <= 0.5 / theta + 1e-12)
            np.testing.assert_allclose(stage.kernel, info["weights"] / theta, rtol=1e-15)
            np.testing.assert_allclose(stage.bias, info["bias"] / theta, rtol=1e-15)
        else:  # the readout has no threshold: the float weights' own scale
            assert info["threshold"] is None
            np.testing.assert_allclose(stage.kernel, info["weights"] * step, rtol=1e-15)
    assert q.quantization["bits"] == bits and q.unquantized is not network
    for kept, before in zip(q.unquantized.stages, network.stages, strict=True):
        if before.has_weights:
            np.testing.assert_array_equal(kept.kernel, before.kernel)
    assert network.quantization is None  # the original is untouched


def test_more_bits_smaller_errors_and_verify_reports_it(network, dense_model, rng):
    x = rng.random((50, 6, 6, 1)).astype(np.float32)
    errors = [snnlib.verify(snnlib.quantize(network, bits), dense_model, x)
              for bits in (2, 4, 8, 12, 16)]
    assert all(a > b for a, b in zip(errors, errors[1:], strict=False)), errors
    assert errors[-1] < 1e-3 < errors[0]
    report = snnlib.quantization_report(snnlib.quantize(network, 4), x)
    assert list(report["layer"]) == ["hidden0", "hidden1", "out"]
    assert report["rate_error"].gt(0).all() and np.isnan(report["threshold"].iloc[-1])
    low = snnlib.quantization_report(snnlib.quantize(network, 3))["weight_error"]
    high = snnlib.quantization_report(snnlib.quantize(network, 8))["weight_error"]
    assert (high < low).all()


def test_percentile_rule_clips_the_largest_weights():
    w = np.linspace(-1, 1, 1001).reshape(1001, 1) ** 3
    kernel, _, info = quantize_stage_weights(w, None, 4, spiking=False, rule="percentile",
                                             percentile=90)
    assert info["step"] == pytest.approx(np.percentile(np.abs(w), 90) / 7)
    # clipped: the weights beyond the top level's half step (a little under 10 %)
    assert info["clipped"] == np.mean(np.abs(w) / info["step"] >= 7.5) > 0.07
    assert kernel.max() == pytest.approx(7 * info["step"])


def test_the_float_form_is_the_integer_network(network, rng):
    q = snnlib.quantize(network, 6, granularity="channel")
    x = (rng.random((5, 6, 6, 1)) < 0.4).astype(np.float64)
    # rate mode: each spiking stage is relu((q h + bq) / theta), the readout (q h + bq) * delta
    h = x.reshape(len(x), -1)
    for stage in q.stages[1:]:
        info = stage.stats["quantization"]
        z = h @ info["weights"] + info["bias"]
        h = np.maximum(z / info["threshold"], 0) if stage.spiking else z * info["step"]
    np.testing.assert_allclose(q.forward(x, dtype=np.float64), h, rtol=1e-12)
    # spikes: integer inputs and s * dt = 1 make every voltage step an integer sum,
    # v_int += q n + bq, and an IF neuron with reset by subtraction fires floor(v_int / theta)
    # spikes; the float form agrees step for step until a voltage lands exactly on a multiple
    # of theta, where float rounding of the sum decides
    n_steps = 25
    result = snnlib.simulate(q, x, n_steps=n_steps, scale_firing_rates=1000, neuron="if",
                             dtype=np.float64, record_spikes=("hidden0", "hidden1"))
    h = x.reshape(len(x), -1)
    stages = {stage.name: stage.stats["quantization"] for stage in q.stages if stage.spiking}
    v = {name: np.zeros((len(x), info["weights"].shape[1]), np.int64)
         for name, info in stages.items()}
    agreed = 0
    for t in range(n_steps):
        inp = h.astype(np.int64)
        for name, info in stages.items():
            v[name] += inp @ info["weights"] + info["bias"]
            spikes = np.maximum(np.floor_divide(v[name], info["threshold"]), 0)
            differ = result.spikes[name][:, t] != spikes
            if differ.any():
                tie = v[name] % info["threshold"] == 0
                assert tie[differ].all(), f"{name}, step {t}: spikes differ without a tie"
                break
            v[name] -= spikes * info["threshold"]
            agreed += int(spikes.sum())
            inp = spikes
        else:
            continue
        break
    assert agreed > 50


def test_bad_arguments_and_order(network, rng):
    for bits in (1, 17, 4.0, True):
        with pytest.raises(ArgumentError, match="bits"):
            snnlib.quantize(network, bits)
    with pytest.raises(ArgumentError, match="granularity"):
        snnlib.quantize(network, 4, granularity="neuron")
    with pytest.raises(ArgumentError, match="rule"):
        snnlib.quantize(network, 4, rule="mean")
    with pytest.raises(ArgumentError, match="percentile"):
        snnlib.quantize(network, 4, rule="percentile", percentile=0)
    with pytest.raises(ArgumentError, match="bias_bits"):
        snnlib.quantize(network, 4, bias_bits=1)
    with pytest.raises(TypeError, match="SpikingNetwork"):
        snnlib.quantize("net", 4)
    q = snnlib.quantize(network, 4)
    with pytest.raises(ValueError, match="already quantized"):
        snnlib.quantize(q, 8)
    with pytest.raises(ValueError, match="quantized"):
        snnlib.normalize(q, rng.random((8, 6, 6, 1)).astype(np.float32))
    with pytest.raises(ValueError, match="not quantized"):
        snnlib.quantization_report(network)


def test_bias_bits_clip_the_integer_biases(network):
    q = snnlib.quantize(network, 8, bias_bits=3)
    for stage in q.stages:
        if stage.has_weights:
            assert np.abs(stage.stats["quantization"]["bias"]).max() <= 3


def test_target_rate_scales_bring_mean_active_rates_to_the_target(dense_model, rng):
    from snnlib.normalize.target_rates import mean_active_rates, target_rate_scales

    network = snnlib.convert(dense_model)
    x = rng.random((40, 6, 6, 1)).astype(np.float32)
    scales = target_rate_scales(network, x, target_rate=150)
    _, outputs = network.forward(x, dtype=np.float64, return_all=True)
    for name in network.spiking_layers:
        a = outputs[name].reshape(len(x), -1)
        means = [row[row > 0].mean() for row in a]  # per example, over its active neurons
        assert scales[name] == pytest.approx(150 / np.mean(means), rel=1e-12)
    assert set(mean_active_rates(network, x)) == {"hidden0", "hidden1"}
    with pytest.raises(ArgumentError, match="target_rate"):
        target_rate_scales(network, x, target_rate=0)
    network.stage("hidden0").bias = np.full(16, -1e9)  # silences every neuron
    with pytest.raises(ValueError, match="'hidden0' has no active neuron"):
        mean_active_rates(network, x)


def test_edge_cases_keep_a_resolution():
    w = np.zeros((4, 3))
    w[:, 0] = [0.5, -0.2, 0.1, 0.0]  # channel 1 and 2: all zero
    bias = np.array([0.3, 0.4, -0.25])
    kernel, b, info = quantize_stage_weights(w, bias, 4, spiking=True, granularity="channel")
    # the zero channels take the layer's step: their biases survive
    np.testing.assert_allclose(info["step"], 0.5 / 7)
    np.testing.assert_allclose(b, bias, atol=0.5 * 0.5 / 7 + 0.03)
    assert np.all(b[1:] != 0)
    # a sparse kernel whose percentile is 0 falls back to the largest weight
    sparse = np.zeros((1000, 1))
    sparse[:5, 0] = [0.4, -0.3, 0.2, 0.1, -0.05]
    kernel, _, info = quantize_stage_weights(sparse, None, 4, spiking=False, rule="percentile",
                                             percentile=99)
    assert np.count_nonzero(kernel) == 5 and info["step"] == pytest.approx(0.4 / 7)
    # an all-zero layer with a bias: the step comes from the bias
    _, b, info = quantize_stage_weights(np.zeros((3, 2)), np.array([0.5, -0.1]), 4, spiking=True)
    np.testing.assert_allclose(b, [0.5, -0.1], atol=0.5 / 7 / 2 + 0.02)


def test_a_threshold_that_would_round_to_zero_warns():
    w = np.array([[3.0, -1.0], [0.5, 2.9]])
    with pytest.warns(UserWarning, match="threshold rounds to 0"):
        kernel, _, info = quantize_stage_weights(w, None, 2, spiking=True)
    assert info["threshold"] == 1 and np.abs(kernel).max() == 1  # the gain is 1 / 3


def test_the_unquantized_network_is_a_snapshot(network, rng):
    q = snnlib.quantize(network, 6)
    before = q.unquantized.stage("hidden0").kernel.copy()
    network.stage("hidden0").op = network.stage("hidden0").op.with_kernel(
        network.stage("hidden0").kernel * 2)
    np.testing.assert_array_equal(q.unquantized.stage("hidden0").kernel, before)
    with pytest.raises(ValueError, match="quantized"):
        apply_scales(q, {stage.name: 1.0 for stage in q.stages})


def test_only_the_named_layers_are_quantized(network):
    q = snnlib.quantize(network, 4, layers=["hidden1"])
    assert "quantization" in q.stage("hidden1").stats
    assert "quantization" not in q.stage("hidden0").stats
    np.testing.assert_array_equal(q.stage("hidden0").kernel, network.stage("hidden0").kernel)
    assert q.quantization["layers"] == ["hidden1"]
    with pytest.raises(ArgumentError, match="not among"):
        snnlib.quantize(network, 4, layers=["flatten"])
    with pytest.raises(ArgumentError, match="list"):
        snnlib.quantize(network, 4, layers="hidden1")
