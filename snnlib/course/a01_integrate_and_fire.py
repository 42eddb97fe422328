"""Assignment 1, hidden checks: integrate-and-fire neurons by hand vs :func:`snnlib.simulate`.

The reference is a one-layer :class:`~snnlib.network.SpikingNetwork` (identity weights, ReLU
neurons) driven by a constant current; its spikes are recorded step by step. The hidden inputs
are drawn with seeds the notebook does not show.
"""
import numpy as np

from snnlib.course.harness import CheckFailed, call, close
from snnlib.network import IdentityOp, SpikingNetwork, Stage

HIDDEN_SEED = 20261128


def one_layer_network(n):
    """``n`` ReLU neurons whose input current is the network input itself."""
    stage = Stage(name="neurons", kind="identity", keras_layers=["neurons"], op=IdentityOp(),
                  bias=None, activation="relu", input_shape=(n,), output_shape=(n,))
    return SpikingNetwork([stage], (n,))


def reference_spikes(current, n_steps, *, dt=0.001, scale=1.0, reset="subtract",
                     max_spikes_per_step=None):
    """Spikes per step from snnlib, shape (n_steps,) + current.shape (float64 arithmetic)."""
    from snnlib.simulate import simulate

    current = np.asarray(current, dtype=np.float64)
    flat = current.reshape(1, -1)
    result = simulate(one_layer_network(flat.shape[1]), flat, n_steps=n_steps, dt=dt,
                      scale_firing_rates=scale, reset=reset,
                      max_spikes_per_step=max_spikes_per_step, record_spikes=["neurons"],
                      dtype=np.float64)
    return result.spikes["neurons"][0].reshape((n_steps,) + current.shape)


def hidden_currents(seed, shape=(40,)):
    """Currents in [-1, 4): negative ones (silent neurons) and several spikes per step."""
    return np.random.default_rng(seed).uniform(-1.0, 4.0, size=shape)


def compare_spikes(label, expected, got):
    got = np.asarray(got)
    if got.shape != expected.shape:
        raise CheckFailed(f"{label}: expected spikes of shape {expected.shape} (n_steps,) + "
                          f"current.shape, got {got.shape}")
    diff = got != expected
    if np.any(diff):
        step, *neuron = (int(i) for i in np.argwhere(diff)[0])
        raise CheckFailed(
            f"{label}: spikes differ from snnlib at {int(diff.sum())} of {diff.size} "
            f"(step, neuron) entries; first at step {step}, neuron {tuple(neuron)}: expected "
            f"{expected[(step, *neuron)]:g}, got {got[(step, *neuron)]:g}; total spikes expected "
            f"{int(expected.sum())}, got {got.sum():g}")


CASES_SUBTRACT = [dict(n_steps=25, dt=0.001, scale=300.0), dict(n_steps=60, dt=0.002, scale=50.0)]
CASES_VARIANTS = [dict(n_steps=30, dt=0.001, scale=400.0, reset="zero"),
                  dict(n_steps=30, dt=0.001, scale=400.0, max_spikes_per_step=1),
                  dict(n_steps=30, dt=0.001, scale=1500.0, reset="zero", max_spikes_per_step=1)]


def check_if_subtract(ns):
    """``if_layer`` with reset by subtraction (Nengo's neuron) matches snnlib spike for spike."""
    for i, case in enumerate(CASES_SUBTRACT):
        current = hidden_currents(HIDDEN_SEED + i, shape=(8, 5) if i else (40,))
        expected = reference_spikes(current, **case)
        got = call(ns["if_layer"], current.copy(), **case)
        compare_spikes(f"if_layer(current, {case})", expected, got)
    return "matches snnlib spike for spike (reset='subtract')"


def check_if_variants(ns):
    """``reset='zero'`` and ``max_spikes_per_step=1`` match snnlib too."""
    for i, case in enumerate(CASES_VARIANTS):
        current = hidden_currents(HIDDEN_SEED + 10 + i)
        expected = reference_spikes(current, **case)
        got = call(ns["if_layer"], current.copy(), **case)
        compare_spikes(f"if_layer(current, {case})", expected, got)
    return "matches snnlib for reset='zero' and max_spikes_per_step=1"


def reference_rate_error(current, n_steps, *, dt=0.001, scale=1.0, reset="subtract"):
    spikes = reference_spikes(current, n_steps, dt=dt, scale=scale, reset=reset)
    measured = spikes.sum(axis=0) / (n_steps * dt)
    ideal = scale * np.maximum(np.asarray(current, dtype=np.float64), 0)
    return float(np.max(np.abs(measured - ideal)))


def check_rate_error(ns):
    """``max_rate_error`` gives the largest |measured - ideal| rate (Hz) for both resets."""
    for i, case in enumerate([dict(n_steps=20, dt=0.001, scale=200.0),
                              dict(n_steps=50, dt=0.001, scale=200.0, reset="zero")]):
        current = np.random.default_rng(HIDDEN_SEED + 20 + i).uniform(0.0, 3.0, size=30)
        expected = reference_rate_error(current, **case)
        got = call(ns["max_rate_error"], current.copy(), **case)
        close(f"max_rate_error(current, {case})", expected, got, rtol=1e-6, atol=1e-9,
              what="error = ")
    return "rate errors match"
