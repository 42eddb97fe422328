"""Assignment 1: integrate-and-fire neurons by hand, against :func:`snnlib.sim.simulator`.

The reference is a one-layer :class:`~snnlib.network.SpikingNetwork` (identity weights, ReLU
neurons) driven by a constant current, simulated in float64 with its spikes recorded. Currents,
shapes, step counts and scales are drawn at grading time.
"""
import numpy as np

from course.questions import Question, Wrong, as_array, as_number, close

NUMPY = ("numpy", "math")
SCALES = (200.0, 250.0, 300.0, 400.0, 500.0, 1000.0, 1500.0)  # Hz; exact in binary with dt


def draw(rng):
    def current(shape, low=-1.0, high=4.0):
        return rng.uniform(low, high, size=shape)

    def settings(**fixed):
        dt = float(rng.choice([0.001, 0.002]))
        scales = SCALES
        if fixed.get("max_spikes_per_step") == 1:
            # the cap must bind: currents up to 4 then drive up to 2 or more spikes per step,
            # so an answer that ignores it cannot pass by the luck of a small draw
            scales = tuple(s for s in SCALES if s * dt >= 0.5)
        return dict(n_steps=int(rng.integers(20, 61)), dt=dt, scale=float(rng.choice(scales)),
                    **fixed)

    shapes = [(int(rng.integers(20, 60)),), (int(rng.integers(3, 9)), int(rng.integers(3, 9)))]
    return {
        "q1_if_subtract": [dict(current=current(s), **settings()) for s in shapes],
        "q2_if_variants": [
            dict(current=current((40,)), **settings(reset="zero")),
            dict(current=current((40,)), **settings(max_spikes_per_step=1)),
            dict(current=current((5, 6)), **settings(reset="zero", max_spikes_per_step=1)),
        ],
        "q3_rate_error": [
            dict(current=current((30,), 0.0, 3.0), **settings()),
            dict(current=current((30,), -1.0, 3.0), **settings(reset="zero")),
        ],
    }


def reference_spikes(current, n_steps, *, dt, scale, reset="subtract", max_spikes_per_step=None):
    """Spikes per step from snnlib, shape (n_steps,) + current.shape (float64 arithmetic)."""
    import snnlib
    from snnlib.network import IdentityOp, SpikingNetwork, Stage

    flat = np.asarray(current, dtype=np.float64).reshape(1, -1)
    n = flat.shape[1]
    stage = Stage(name="neurons", kind="identity", keras_layers=["neurons"], op=IdentityOp(),
                  bias=None, activation="relu", input_shape=(n,), output_shape=(n,))
    result = snnlib.simulate(SpikingNetwork([stage], (n,)), flat, n_steps=n_steps, dt=dt,
                             scale_firing_rates=scale, reset=reset,
                             max_spikes_per_step=max_spikes_per_step, record_spikes=["neurons"],
                             dtype=np.float64)
    return result.spikes["neurons"][0].reshape((n_steps,) + np.shape(current))


def expected(cases):
    out = {}
    for name in ("q1_if_subtract", "q2_if_variants"):
        if name in cases:
            out[name] = [reference_spikes(**c) for c in cases[name]]
    if "q3_rate_error" in cases:
        out["q3_rate_error"] = []
        for c in cases["q3_rate_error"]:
            spikes = reference_spikes(**c)
            measured = spikes.sum(axis=0) / (c["n_steps"] * c["dt"])
            ideal = c["scale"] * np.maximum(c["current"], 0)
            out["q3_rate_error"].append(float(np.max(np.abs(measured - ideal))))
    return out


def options(case):
    return {k: v for k, v in case.items() if k not in ("current", "n_steps")}


def call(case):
    shown = {k: v for k, v in options(case).items()}
    return f"if_layer(current of shape {case['current'].shape}, {case['n_steps']}, {shown})"


def answer_if_layer(env, case):
    return env["if_layer"](case["current"].copy(), case["n_steps"], **options(case))


def compare_spikes(case, expected, got):
    label = call(case)
    got = as_array(label, got, expected.shape, integer=True)
    diff = got != expected
    if np.any(diff):
        step, *neuron = (int(i) for i in np.argwhere(diff)[0])
        raise Wrong(f"{label}: spikes differ from snnlib at {int(diff.sum())} of {diff.size} "
                    f"(step, neuron) entries; first at step {step}, neuron {tuple(neuron)}: "
                    f"expected {expected[(step, *neuron)]:g}, got {got[(step, *neuron)]:g}; "
                    f"total spikes expected {int(expected.sum())}, got {got.sum():g}")
    return f"matches snnlib spike for spike ({int(expected.sum())} spikes)"


def answer_rate_error(env, case):
    return env["max_rate_error"](case["current"].copy(), case["n_steps"], **options(case))


def compare_rate_error(case, expected, got):
    label = f"max_rate_error(current of shape {case['current'].shape}, {case['n_steps']}, " \
            f"{options(case)})"
    value = as_number(label, got, low=0.0)
    close(label, expected, value, rtol=1e-6, atol=1e-9, what="error = ")
    return f"rate error {value:.6g} Hz, as expected"


QUESTIONS = [
    Question("q1_if_subtract", ("if_layer",), NUMPY, answer_if_layer, compare_spikes),
    Question("q2_if_variants", ("if_layer",), NUMPY, answer_if_layer, compare_spikes),
    Question("q3_rate_error", ("max_rate_error", "if_layer"), NUMPY, answer_rate_error,
             compare_rate_error),
]

