"""Assignment 3: accuracy under a spike budget.

The task is fixed (the notebook states the same numbers): the pretrained convnet,
percentile-normalized on the first 500 training images, simulated with :func:`snnlib.sim.simulator`
for ``N_STEPS`` steps of ``DT`` on the first ``N_TEST`` test images. The settings a student
returns are validated (finite, in range) before the trusted process simulates them.
"""
import functools
import math

import numpy as np

from course.questions import Question, Wrong, as_number, close, describe

N_STEPS = 20
DT = 0.001
N_TEST = 200
N_CALIBRATION = 500
TARGET_ACCURACY = 0.95
SPIKE_BUDGET = 10_000   # spikes per image, all layers together
MAX_SCALE = 1e5         # Hz; far above any useful setting, far below any overflow
MAX_SYNAPSE = 1.0       # seconds
SEARCHES = ("snnlib.sweep", "snnlib.diagnostics", "snnlib.regularize", "snnlib.tradeoffs",
            "snnlib.experiments", "snnlib.ann.regularize")


def draw(rng):
    cases = []
    for _ in range(2):
        n_images = int(rng.integers(2, 9))
        layers = {f"layer{i}": tuple(int(n) for n in rng.integers(2, 7, size=int(rng.integers(1, 4))))
                  for i in range(int(rng.integers(2, 4)))}
        counts = {name: rng.integers(0, 30, size=(n_images,) + shape).astype(np.int64)
                  for name, shape in layers.items()}
        cases.append(dict(spike_counts=counts, n_steps=int(rng.integers(5, 30)),
                          output=rng.normal(size=(n_images, 3, 10))))
    return {"q1_spikes_per_image": cases, "q2_settings": [{}]}


@functools.cache
def task():
    import snnlib

    model = snnlib.load_pretrained_convnet()
    (x_train, _), (x_test, y_test) = snnlib.load_mnist()
    network = snnlib.convert(model, calibration=x_train[:N_CALIBRATION],
                             normalization="percentile")
    return network, x_test[:N_TEST], y_test[:N_TEST]


def expected(cases):
    out = {}
    if "q1_spikes_per_image" in cases:
        out["q1_spikes_per_image"] = [
            sum(float(c.sum(dtype=np.float64)) for c in case["spike_counts"].values())
            / len(case["output"]) for case in cases["q1_spikes_per_image"]]
    if "q2_settings" in cases:
        out["q2_settings"] = [None]  # judged by simulating the returned settings (compare)
    return out


def answer_spikes_per_image(env, case):
    import snnlib

    result = snnlib.SimulationResult(case["output"], dict(case["spike_counts"]), {},
                                     case["n_steps"], DT)
    return env["spikes_per_image"](result)


def compare_spikes_per_image(case, expected, got):
    label = f"spikes_per_image(result of {len(case['output'])} images)"
    close(label, expected, as_number(label, got, low=0.0), rtol=1e-9, what="")
    return f"{expected:.1f} spikes per image, as expected"


def answer_settings(env, case):
    return env["choose_settings"]()


def valid_scale(label, value):
    return as_number(label, value, low=math.ulp(0.0), high=MAX_SCALE)


def settings_from(got, spiking_layers):
    """The validated keyword arguments for snnlib.simulate, or :class:`Wrong`."""
    if not isinstance(got, dict) or set(got) != {"scale_firing_rates", "synapse"}:
        raise Wrong("choose_settings: expected a dict with the keys 'scale_firing_rates' and "
                    f"'synapse', got {describe(got)}"
                    + (f" with keys {sorted(map(str, got))[:5]}" if isinstance(got, dict) else ""))
    scale = got["scale_firing_rates"]
    if isinstance(scale, dict):
        unknown = sorted(set(scale) - set(spiking_layers))
        if unknown or not scale:
            raise Wrong(f"choose_settings: scale_firing_rates keys must be spiking layers "
                        f"{list(spiking_layers)}, got {unknown[:5] or 'none'}")
        scale = {k: valid_scale(f"scale_firing_rates[{k!r}]", v) for k, v in scale.items()}
    else:
        scale = valid_scale("scale_firing_rates", scale)
    synapse = got["synapse"]
    if synapse is not None:
        synapse = as_number("synapse", synapse, low=math.ulp(0.0), high=MAX_SYNAPSE)
    return {"scale_firing_rates": scale, "synapse": synapse}


def compare_settings(case, expected, got):
    import snnlib

    network, x, y = task()
    settings = settings_from(got, network.spiking_layers)
    result = snnlib.simulate(network, x, n_steps=N_STEPS, dt=DT, **settings)
    counts = [np.asarray(c, dtype=np.float64) for c in result.spike_counts.values()]
    if not all(np.all(np.isfinite(c)) and np.all(c >= 0) for c in counts):
        raise Wrong(f"choose_settings {settings}: the spike counts are not valid numbers")
    spikes = sum(float(c.sum()) for c in counts) / len(x)
    accuracy = result.accuracy(y)
    problems = []
    if not accuracy >= TARGET_ACCURACY:
        problems.append(f"accuracy {accuracy:.3f} is below the target {TARGET_ACCURACY}")
    if not spikes <= SPIKE_BUDGET:
        problems.append(f"{spikes:.0f} spikes per image exceed the budget {SPIKE_BUDGET}")
    if problems:
        raise Wrong(f"choose_settings {settings}: " + "; ".join(problems))
    return f"accuracy {accuracy:.3f} with {spikes:.0f} spikes per image ({settings})"


QUESTIONS = [
    Question("q1_spikes_per_image", ("spikes_per_image",), ("numpy", "math"),
             answer_spikes_per_image, compare_spikes_per_image),
    Question("q2_settings", ("choose_settings",), ("numpy", "math", "snnlib"), answer_settings,
             compare_settings, denied=SEARCHES),
]
