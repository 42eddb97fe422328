"""Assignment 3, hidden checks: accuracy under a spike budget.

The task is fixed here (the notebook states the same numbers): the pretrained convnet,
percentile-normalized on the first 500 training images, simulated with :func:`snnlib.simulate`
for ``N_STEPS`` steps of ``DT`` on the first ``N_TEST`` test images.
"""
import functools


from snnlib.course.harness import CheckFailed, call, close

N_STEPS = 20
DT = 0.001
N_TEST = 200
N_CALIBRATION = 500
TARGET_ACCURACY = 0.95
SPIKE_BUDGET = 10_000  # spikes per image, all layers together
MIN_WORDS = 30


@functools.lru_cache(maxsize=None)
def task():
    import snnlib

    model = snnlib.load_pretrained_convnet()
    (x_train, _), (x_test, y_test) = snnlib.load_mnist()
    network = snnlib.convert(model, calibration=x_train[:N_CALIBRATION],
                             normalization="percentile")
    return network, x_test[:N_TEST], y_test[:N_TEST]


def check_spikes_per_image(ns):
    import snnlib

    network, x, _ = task()
    result = snnlib.simulate(network, x[-7:], n_steps=9, scale_firing_rates=150.0)
    expected = sum(float(c.sum()) for c in result.spike_counts.values()) / 7
    got = call(ns["spikes_per_image"], result)
    close("spikes_per_image(result)", expected, got, rtol=1e-9, what="")
    return f"{expected:.1f} spikes per image, as expected"


def check_settings(ns):
    import snnlib

    settings = call(ns["choose_settings"])
    if not isinstance(settings, dict) or set(settings) != {"scale_firing_rates", "synapse"}:
        raise CheckFailed("choose_settings: expected a dict with the keys 'scale_firing_rates' "
                          f"and 'synapse', got {settings!r:.120}")
    network, x, y = task()
    try:
        result = snnlib.simulate(network, x, n_steps=N_STEPS, dt=DT, **settings)
    except (TypeError, ValueError) as error:
        raise CheckFailed(f"snnlib.simulate rejected the settings {settings}: {error}") from None
    accuracy = result.accuracy(y)
    spikes = sum(float(c.sum()) for c in result.spike_counts.values()) / len(x)
    problems = []
    if accuracy < TARGET_ACCURACY:
        problems.append(f"accuracy {accuracy:.3f} is below the target {TARGET_ACCURACY:.2f}")
    if spikes > SPIKE_BUDGET:
        problems.append(f"{spikes:.0f} spikes per image exceed the budget {SPIKE_BUDGET}")
    if problems:
        raise CheckFailed(f"choose_settings {settings}: " + "; ".join(problems))
    return f"accuracy {accuracy:.3f} with {spikes:.0f} spikes per image ({settings})"


def check_trade_off(ns):
    text = call(ns["trade_off"])
    if not isinstance(text, str):
        raise CheckFailed(f"trade_off: expected a string, got {type(text).__name__}")
    words = len(text.split())
    if words < MIN_WORDS:
        raise CheckFailed(f"trade_off: expected an explanation of at least {MIN_WORDS} words, "
                          f"got {words}")
    return f"answered ({words} words)"
