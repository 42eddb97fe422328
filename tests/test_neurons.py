"""Neuron models against plain reference step rules on both engines; single neurons, rate
quantization, and firing-rate scaling of ReLU and LIF rate curves."""
import itertools
import math

import nengo
import numpy as np
import pytest

from snnlib.convert import convert
from snnlib.network import SpikingNetwork, Stage
from snnlib.network.ops import DenseOp
from snnlib.sim.neurons import (
    LIF,
    NEURON_MODELS,
    IntegrateAndFire,
    NeuronModel,
    SpikingReLU,
    get_neuron_model,
    integrate_and_fire,
    measured_rate,
    rate_error_bound,
    register_neuron_model,
    scaled_forward,
    scaled_rates,
)
from snnlib.sim.simulator import simulate

# dt and gain are powers of two, weights and inputs multiples of 1/8: every voltage, current
# and output below is exact in float64, so any summation order gives the same spikes
DT = 2.0 ** -10
GAIN = 2.0 ** 9


def reference_step(v, current, *, rectify, reset, max_spikes):
    """One neuron, one step, written out plainly: returns (new voltage, spikes)."""
    j = GAIN * current
    if rectify:
        j = max(j, 0.0)  # nengo.SpikingRectifiedLinear: the current is rectified every step
    v = v + j * DT
    n = 0
    if v >= 1:
        n = 1 if max_spikes == 1 else int(np.floor(v))
    if n > 0:
        v = v - n if reset == "subtract" else 0.0
    return v, n


def reference_run(layers, x, n_steps, **rule):
    """Spikes (example, step, neuron) of every layer of a chain of ReLU layers + readout."""
    spikes = [np.zeros((len(x), n_steps, len(b)), int) for _, b in layers]
    for e in range(len(x)):
        voltages = [np.zeros(len(b)) for _, b in layers]
        for t in range(n_steps):
            h = x[e]
            for k, (w, b) in enumerate(layers):
                current = h @ w + b
                for i in range(len(b)):
                    voltages[k][i], spikes[k][e, t, i] = reference_step(voltages[k][i],
                                                                        current[i], **rule)
                h = spikes[k][e, t] * (1.0 / GAIN) / DT  # amplitude 1 / gain
    return spikes


def dyadic(rng, shape, low, high):
    return rng.integers(low, high, size=shape) / 8.0


@pytest.fixture(scope="module")
def signed_network():
    """input 8 -> 6 ReLU (some negative biases) -> 5 ReLU (weights of both signs) -> 3."""
    rng = np.random.default_rng(4)
    layers = [(dyadic(rng, (8, 6), -4, 9), dyadic(rng, (6,), -6, 4)),
              (dyadic(rng, (6, 5), -12, 10), dyadic(rng, (5,), -2, 6))]
    readout = (dyadic(rng, (5, 3), -8, 8), np.zeros(3))
    stages, shape = [], (8,)
    for k, (w, b) in enumerate(layers + [readout]):
        spiking = k < len(layers)
        stages.append(Stage(name=f"l{k}", kind="dense", keras_layers=[f"l{k}"], op=DenseOp(w),
                            bias=b, activation="relu" if spiking else None, input_shape=shape,
                            output_shape=(w.shape[1],), kernel_original=w, bias_original=b))
        shape = (w.shape[1],)
    x = dyadic(rng, (4, 8), 0, 9)
    return SpikingNetwork(stages, (8,)), layers, x


@pytest.mark.parametrize("neuron, reset, max_spikes, method", list(itertools.product(
    ["spiking_relu", "if"], ["subtract", "zero"], [None, 1], ["dense", "event"])))
def test_models_follow_their_reference_rule(signed_network, neuron, reset, max_spikes, method):
    network, layers, x = signed_network
    n_steps = 40
    result = simulate(network, x, n_steps=n_steps, dt=DT, scale_firing_rates=GAIN, neuron=neuron,
                      reset=reset, max_spikes_per_step=max_spikes, method=method,
                      record_spikes=["l0", "l1"], dtype=np.float64)
    expected = reference_run(layers, x, n_steps, rectify=neuron == "spiking_relu", reset=reset,
                             max_spikes=max_spikes)
    # both engines give the spikes of the step rule written out above, step by step
    for name, spikes in zip(["l0", "l1"], expected, strict=True):
        np.testing.assert_array_equal(result.spikes[name], spikes)
        np.testing.assert_array_equal(result.spike_counts[name], spikes.sum(axis=1))
    # the test is not trivial: the neurons spike, several per step where allowed
    assert expected[1].sum() > 0 and (max_spikes == 1 or expected[1].max() > 1)


def test_if_integrates_the_signed_current_where_the_spiking_relu_rectifies(signed_network):
    network, layers, x = signed_network
    runs = {neuron: simulate(network, x, n_steps=40, dt=DT, scale_firing_rates=GAIN,
                             neuron=neuron, dtype=np.float64)
            for neuron in ("spiking_relu", "if")}
    counts = {neuron: r.spike_counts for neuron, r in runs.items()}
    # the first layer gets a constant current: no difference (a negative one never spikes)
    np.testing.assert_array_equal(counts["if"]["l0"], counts["spiking_relu"]["l0"])
    # the second gets spikes of both signs: the rectifying neuron drops the negative steps and
    # fires more
    assert counts["spiking_relu"]["l1"].sum() > counts["if"]["l1"].sum()


def test_closed_form_under_constant_drive():
    currents = np.array([-300.0, -0.5, 0.0, 37.0, 250.0, 999.0, 2500.0])  # Hz
    for model in (SpikingReLU(), IntegrateAndFire()):
        assert model.has_closed_form
        v = np.full(len(currents), 0.25)
        drive = model.drive(currents, 1.0, 0.001)
        steps, flat, counts = model.constant_drive_spikes(v, drive, 100, 0.001)
        total = np.bincount(flat, weights=counts, minlength=len(currents))
        _, spikes = integrate_and_fire(currents, 100, initial_voltage=0.25, neuron=model)
        # the closed form gives the step-by-step counts; d <= 0 never spikes
        np.testing.assert_array_equal(total, spikes.sum(axis=0))
        assert total[:3].sum() == 0
        # and each spike at its step
        by_step = np.zeros_like(spikes)
        np.add.at(by_step, (steps, flat), counts)
        np.testing.assert_array_equal(by_step, spikes)
    # no closed form with a spike cap or a reset to zero
    assert not SpikingReLU(max_spikes_per_step=1).has_closed_form
    assert not IntegrateAndFire(reset="zero").has_closed_form


def test_if_voltage_goes_below_zero():
    voltage, spikes = integrate_and_fire([-250.0, 250.0], 10, neuron="if")
    # a negative current lowers the membrane (IF) ...
    np.testing.assert_array_equal(voltage[:, 0], -0.25 * np.arange(1, 11))
    assert spikes[:, 0].sum() == 0 and spikes[:, 1].tolist() == [0, 0, 0, 1, 0, 0, 0, 1, 0, 0]
    # ... where the spiking ReLU ignores it
    voltage, _ = integrate_and_fire([-250.0], 10)
    assert np.all(voltage == 0)


def test_registry_and_configuration():
    # the built-in models, by name
    assert NEURON_MODELS["spiking_relu"] is SpikingReLU and NEURON_MODELS["if"] is IntegrateAndFire
    model = get_neuron_model("if", reset="zero", max_spikes_per_step=1)
    assert model == IntegrateAndFire(reset="zero", max_spikes_per_step=1)
    # an instance carries its own settings: options left at their defaults defer to it, a
    # different one is refused
    assert get_neuron_model(model) is model
    assert get_neuron_model(model, reset="subtract", max_spikes_per_step=None) is model
    with pytest.raises(ValueError, match="conflicts"):
        get_neuron_model(IntegrateAndFire(), reset="zero")
    with pytest.raises(ValueError, match="unknown neuron 'izhikevich'.*'if'"):
        get_neuron_model("izhikevich")
    with pytest.raises(ValueError, match="reset"):
        IntegrateAndFire(reset="soft")

    class Twice(SpikingReLU):
        name = "spiking_relu"

    # registering a name again replaces the model, with a warning
    with pytest.warns(UserWarning, match="replaced"):
        register_neuron_model(Twice)
    with pytest.warns(UserWarning, match="replaced"):
        register_neuron_model(SpikingReLU)
    assert NEURON_MODELS["spiking_relu"] is SpikingReLU
    with pytest.raises(TypeError):
        register_neuron_model(NeuronModel)  # no name


def test_simulate_with_a_model_instance(dense_model, images6):
    network = convert(dense_model)
    by_name = simulate(network, images6, n_steps=20, scale_firing_rates=300.0, reset="zero",
                       neuron="if")
    by_instance = simulate(network, images6, n_steps=20, scale_firing_rates=300.0,
                           neuron=IntegrateAndFire(reset="zero"))
    # a model instance and a name with the same options are the same neuron
    np.testing.assert_array_equal(by_name.output, by_instance.output)
    with pytest.raises(ValueError, match="conflicts"):
        simulate(network, images6, n_steps=2, neuron=IntegrateAndFire(), reset="zero")
    with pytest.raises(ValueError, match="unknown neuron"):
        simulate(network, images6, n_steps=2, neuron="izhikevich")


def test_matches_nengo_spiking_relu_step_by_step(rng):
    currents = rng.uniform(-200, 3000, size=40)  # negative, slow and several-spikes-per-step
    v0 = rng.uniform(0, 1, size=40)
    voltage, spikes = integrate_and_fire(currents, 60, dt=0.001, initial_voltage=v0)
    neuron, v = nengo.SpikingRectifiedLinear(), v0.copy()
    output = np.zeros(40)
    for t in range(60):
        neuron.step(0.001, currents, output, v)
        # same spikes (nengo outputs amplitude / dt per spike) and same voltage as nengo
        np.testing.assert_allclose(output * 0.001, spikes[t], atol=1e-9)
        np.testing.assert_allclose(voltage[t], v, atol=1e-12)


def test_subtract_count_is_floor_of_charge():
    currents = np.array([0.0, 37.0, 250.0, 999.0, 2500.0])  # Hz
    _, spikes = integrate_and_fire(currents, 100, dt=0.001)
    # from rest, reset by subtraction fires floor(J * T) spikes (T = 0.1 s)
    np.testing.assert_array_equal(spikes.sum(axis=0), [0, 3, 25, 99, 250])
    # negative currents do not charge the neuron (the ReLU's rectification)
    assert integrate_and_fire([-50.0], 10)[1].sum() == 0


@pytest.mark.parametrize("n_steps", [7, 30, 200])
def test_subtract_error_within_bound(n_steps):
    true = np.linspace(0, 1500, 3001)
    error = np.abs(measured_rate(true, n_steps) - true)
    # reset by subtraction: the rate read over T steps is within one spike / (T dt) of the truth
    assert error.max() <= rate_error_bound(n_steps) * (1 + 1e-9)
    # and the bound is nearly reached (it is tight)
    assert error.max() >= 0.9 * rate_error_bound(n_steps)


def test_reset_to_zero_is_biased_low_and_does_not_improve():
    true = np.linspace(0, 1000, 2001)
    short, long = (measured_rate(true, n, reset="zero") for n in (30, 3000))
    # reset to zero never fires faster than the true rate (it loses charge)
    assert np.all(long <= true + 1e-9)
    # its error does not shrink with 100 times longer reading: it is a bias, not noise
    assert np.abs(long - true).max() > 0.5 * np.abs(short - true).max()
    assert np.abs(long - true).max() > 10 * rate_error_bound(30)


def test_bad_arguments():
    # unknown reset, non-positive step counts and time steps fail by name
    with pytest.raises(ValueError, match="reset"):
        integrate_and_fire(1.0, 5, reset="hold")
    with pytest.raises(ValueError, match="n_steps"):
        integrate_and_fire(1.0, 0)
    with pytest.raises(ValueError, match="dt"):
        integrate_and_fire(1.0, 5, dt=0)
    with pytest.raises(ValueError, match="scale"):
        scaled_rates(None, [1.0], 0)


def test_relu_is_homogeneous_lif_is_not():
    x = np.logspace(-2, 1, 50)
    for s in (1, 10, 1000):
        # ReLU (nengo's and the plain one): max(0, s x) / s = x, for every scale
        np.testing.assert_allclose(scaled_rates(nengo.RectifiedLinear(), x, s), x, rtol=1e-12)
        np.testing.assert_allclose(scaled_rates(None, -x, s), 0.0)
    lif = {s: scaled_rates(nengo.LIF(), x, s) for s in (1, 10, 1000)}
    # LIF: s changes the function (threshold at x = 1/s, saturation at 1 / (tau_ref s))
    assert np.all(lif[1][x < 1] == 0) and lif[10][x > 0.2].min() > 0
    assert lif[1000].max() <= 1 / (0.002 * 1000) + 1e-9
    # and no scale makes it the identity: off by more than a factor 2 somewhere in [0.1, 10]
    inside = (x >= 0.1) & (x <= 10)
    for values in lif.values():
        assert np.max(np.abs(values[inside] - x[inside]) / x[inside]) > 1.0


def test_scaled_forward_relu_equals_rate_mode(dense_model, images6):
    network = convert(dense_model)
    expected = network.forward(images6, dtype=np.float64)
    for scale in (1.0, 3.0, 1000.0, {"hidden0": 7.0}):
        # scaling input by s and output by 1/s leaves a ReLU network unchanged
        np.testing.assert_allclose(scaled_forward(network, images6, scale_firing_rates=scale),
                                   expected, rtol=1e-10, atol=1e-12)


def test_scaled_forward_lif_depends_on_scale(dense_model, images6):
    network = convert(dense_model)
    outs = [scaled_forward(network, images6, scale_firing_rates=s, neuron_type=nengo.LIF())
            for s in (10.0, 1000.0)]
    # with LIF neurons the scale changes the network's output
    assert np.abs(outs[0] - outs[1]).max() > 0.1 * np.abs(outs[1]).max()
    # unknown layer names in a scale dict fail as in simulate
    with pytest.raises(ValueError, match="not spiking layers"):
        scaled_forward(network, images6, scale_firing_rates={"nope": 2.0})


# --- LIF -----------------------------------------------------------------------------------

def reference_lif_step(v, ref, j, *, dt, tau_rc=0.02, tau_ref=0.002, min_voltage=0.0):
    """One LIF neuron, one step, as nengo.LIF computes it, written out plainly:
    returns (new voltage, new refractory time, spiked)."""
    ref = ref - dt
    delta_t = min(max(dt - ref, 0.0), dt)  # the part of the step that is not refractory
    v = v - (j - v) * math.expm1(-delta_t / tau_rc)  # exact decay towards j over delta_t
    spiked = v > 1
    if spiked:
        t_spike = dt + tau_rc * math.log1p(-(v - 1) / (j - 1))  # when v crossed 1
        ref = tau_ref + t_spike
    v = max(v, min_voltage)
    return (0.0 if spiked else v), ref, int(spiked)


def test_lif_follows_its_reference_rule(signed_network):
    network, layers, x = signed_network
    n_steps, dt, gain, lif = 60, 0.001, 150.0, LIF(tau_rc=0.01, min_voltage=-1.0)
    result = simulate(network, x, n_steps=n_steps, dt=dt, scale_firing_rates=gain, neuron=lif,
                      record_spikes=["l0", "l1"], dtype=np.float64)
    # the reference: every neuron by hand, the output of a spike amplitude / gain / dt
    for e in range(len(x)):
        state = [(np.zeros(len(b)), np.zeros(len(b))) for _, b in layers]
        for t in range(n_steps):
            h = x[e]
            for k, (w, b) in enumerate(layers):
                j = gain * (h @ w + b)
                v, ref = state[k]
                spikes = np.zeros(len(b))
                for i in range(len(b)):
                    v[i], ref[i], spikes[i] = reference_lif_step(v[i], ref[i], j[i], dt=dt,
                                                                 tau_rc=0.01, min_voltage=-1.0)
                # the dense engine gives the reference's spikes, step by step
                np.testing.assert_array_equal(result.spikes[f"l{k}"][e, t], spikes)
                h = spikes * (1.0 / gain) / dt
    # not trivial: both layers spike, and at most once per step
    assert result.spikes["l1"].sum() > 0 and result.spikes["l0"].max() == 1


def test_lif_matches_nengo_single_neurons_and_rates(rng):
    currents = np.concatenate([[-3.0, 0.5, 1.0, 1.0001], rng.uniform(1, 5000, size=40)])
    v0 = rng.uniform(0, 1, size=len(currents))
    voltage, spikes = integrate_and_fire(currents, 300, dt=0.001, initial_voltage=v0,
                                         neuron="lif")
    neuron, v, ref = nengo.LIF(), v0.copy(), np.zeros(len(currents))
    output = np.zeros(len(currents))
    for t in range(300):
        neuron.step(0.001, currents, output, v, ref)
        # same spikes and same voltages as nengo.LIF, at every step
        np.testing.assert_array_equal(output * 0.001, spikes[t])
        np.testing.assert_allclose(voltage[t], v, rtol=0, atol=1e-12)
    # below the rheobase (J <= 1) it never spikes after the start; above, its rate approaches
    # LIFRate's (within one spike of the 0.3 s run) and saturates below 1 / tau_ref
    rates = spikes[1:].sum(axis=0) / 0.299
    assert rates[:3].sum() == 0
    np.testing.assert_allclose(rates, LIF().rates(currents), atol=1 / 0.299 + 1e-9)
    assert rates.max() < 500


def test_lif_options_and_engines(dense_model, images6):
    network = convert(dense_model)
    # the reset and the spike limit are part of the LIF model: other values are refused
    with pytest.raises(ValueError, match="does not take reset='zero'"):
        simulate(network, images6, n_steps=2, neuron="lif", reset="zero")
    with pytest.raises(ValueError, match="does not take"):
        get_neuron_model("lif", max_spikes_per_step=1)
    assert get_neuron_model("lif") == LIF()
    with pytest.raises(ValueError, match="tau_rc"):
        LIF(tau_rc=0)
    # the event-driven engine says why it cannot run it; "auto" runs the compiled engine, with
    # the dense engine's spikes (its sums add in another order: float32 rounding apart)
    with pytest.raises(ValueError, match="refractory"):
        simulate(network, images6, n_steps=2, neuron="lif", method="event")
    auto = simulate(network, images6, n_steps=20, scale_firing_rates=200.0, neuron="lif")
    dense = simulate(network, images6, n_steps=20, scale_firing_rates=200.0, neuron="lif",
                     method="dense")
    for layer, counts in dense.spike_counts.items():
        np.testing.assert_array_equal(auto.spike_counts[layer], counts)
    np.testing.assert_allclose(auto.output, dense.output, rtol=0, atol=1e-5)
    # the LIF state is per layer and per run: a second run starts afresh
    again = simulate(network, images6, n_steps=20, scale_firing_rates=200.0, neuron="lif")
    np.testing.assert_array_equal(again.output, auto.output)
