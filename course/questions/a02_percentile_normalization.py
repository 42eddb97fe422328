"""Assignment 2: λ per layer (max / percentile) and normalized weights, against snnlib.

References: :func:`snnlib.normalize.layer_scale` for one layer's λ, and the book's convnet
converted by :func:`snnlib.convert` on a calibration set drawn at grading time (other
training images than the notebook's) for the λ table and the normalized weights.
"""
import numpy as np

from course.questions import Question, Wrong, as_array, as_number, close

NUMPY = ("numpy", "math")
KERAS = NUMPY + ("tensorflow", "keras")
LAMBDA_RTOL = 1e-3  # Keras and snnlib compute activations in float32 with different kernels
SPIKING = ("conv0", "conv1")


def activations(rng):
    """ReLU-like activations of random shape: about 60 % zeros, a long tail of large values."""
    shape = (int(rng.integers(20, 60)),) + tuple(int(n) for n in rng.integers(2, 7, size=3))
    values = rng.lognormal(0.0, 1.0, size=shape).astype(np.float32)
    values[rng.random(shape) < rng.uniform(0.3, 0.8)] = 0.0
    return values


def draw(rng):
    import snnlib

    cases = [dict(activations=activations(rng), method="max", percentile=99.9)]
    for percentile in (99.9, float(rng.uniform(90.0, 99.5)), float(rng.uniform(30.0, 70.0))):
        cases.append(dict(activations=activations(rng), method="percentile",
                          percentile=percentile))
    cases.append(dict(activations=np.zeros((10, 3), np.float32), method="percentile",
                      percentile=99.9))
    (x_train, _), _ = snnlib.load_mnist()
    calibration = x_train[rng.choice(len(x_train), 200, replace=False)]
    percentile = float(rng.choice([99.0, 99.5, 99.9]))
    return {
        "q1_layer_lambda": cases,
        "q2_lambda_table": [dict(calibration=calibration, percentile=percentile)],
        # q3's inputs are the network's own weights on that calibration set (see expected)
        "q3_normalize_weights": [dict(calibration=calibration, percentile=percentile)],
    }


def network(calibration, percentile):
    """The convnet converted and normalized both ways on ``calibration``."""
    import snnlib
    from snnlib.normalize.rules import apply_scales, compute_scales, measure

    net = snnlib.convert(snnlib.load_pretrained_convnet())
    measured = measure(net, calibration)
    scales = {m: compute_scales(net, measured, method=m, percentile=percentile)
              for m in ("max", "percentile")}
    apply_scales(net, scales["percentile"])
    return net, scales


def expected(cases):
    from snnlib.normalize.rules import layer_scale

    out = {}
    if "q1_layer_lambda" in cases:
        out["q1_layer_lambda"] = [layer_scale(c["activations"], c["method"], c["percentile"],
                                              include_zeros=False)
                                  for c in cases["q1_layer_lambda"]]
    built = {}
    for name in ("q2_lambda_table", "q3_normalize_weights"):
        for case in cases.get(name, []):
            key = (id(case["calibration"]), case["percentile"])
            if key not in built:
                built[key] = network(case["calibration"], case["percentile"])
            net, scales = built[key]
            if name == "q2_lambda_table":
                value = {layer: {m: scales[m][layer] for m in scales} for layer in SPIKING}
            else:
                value = [{k: e[k] for k in ("layer", "kernel_original", "bias_original",
                                            "scale_in", "scale", "kernel", "bias")}
                         for e in net.weights()]
            out.setdefault(name, []).append(value)
    return out


def answer_layer_lambda(env, case):
    return env["layer_lambda"](case["activations"].copy(), method=case["method"],
                               percentile=case["percentile"])


def compare_layer_lambda(case, expected, got):
    label = (f"layer_lambda(activations of shape {case['activations'].shape}, "
             f"method={case['method']!r}, percentile={case['percentile']:.4g})")
    close(label, expected, as_number(label, got, low=0.0), rtol=1e-6, what="λ = ")
    return "λ matches snnlib"


_model = []


def answer_lambda_table(env, case):
    import snnlib

    if not _model:
        _model.append(snnlib.load_pretrained_convnet())
    return env["lambda_table"](_model[0], case["calibration"].copy(),
                               percentile=case["percentile"])


def compare_lambda_table(case, expected, got):
    label = f"lambda_table(model, 200 calibration images, percentile={case['percentile']:g})"
    if not isinstance(got, dict):
        raise Wrong(f"{label}: expected a dict layer name -> {{'max': λ, 'percentile': λ}}, "
                    f"got {type(got).__name__}")
    missing = [name for name in SPIKING if name not in got]
    if missing:
        raise Wrong(f"{label}: expected the spiking layers {list(SPIKING)}, missing {missing}")
    for name in SPIKING:
        if not isinstance(got[name], dict):
            raise Wrong(f"{label}: {name!r} should map to a dict {{'max': λ, 'percentile': λ}}")
        for method in ("max", "percentile"):
            if method not in got[name]:
                raise Wrong(f"{label}: {name!r} has no entry {method!r}")
            value = as_number(f"{label}: layer {name} {method}", got[name][method], low=0.0)
            close(f"{label}: layer {name}", expected[name][method], value, rtol=LAMBDA_RTOL,
                  what=f"λ_{method} = ")
    return "λ table matches snnlib.convert(...).scales"


def answer_normalize_weights(env, case):
    # the inputs come with the case (the trusted side sends the original weights and λs)
    return [list(env["normalize_weights"](e["kernel_original"].copy(), e["bias_original"].copy(),
                                          e["scale_in"], e["scale"]))
            for e in case["layers"]]


def compare_normalize_weights(case, expected, got):
    if not isinstance(got, list) or len(got) != len(expected):
        raise Wrong("normalize_weights: could not read the returned (kernel, bias) pairs")
    for entry, pair in zip(expected, got):
        label = f"normalize_weights: layer {entry['layer']}"
        if not isinstance(pair, list) or len(pair) != 2:
            raise Wrong(f"{label}: expected a tuple (kernel, bias)")
        kernel = as_array(f"{label} kernel", pair[0], entry["kernel"].shape)
        bias = as_array(f"{label} bias", pair[1], entry["bias"].shape)
        close(f"{label} kernel", entry["kernel"], kernel, rtol=1e-5, atol=1e-7)
        close(f"{label} bias", entry["bias"], bias, rtol=1e-5, atol=1e-7)
    return "normalized weights match snnlib"


QUESTIONS = [
    Question("q1_layer_lambda", ("layer_lambda",), NUMPY, answer_layer_lambda,
             compare_layer_lambda),
    Question("q2_lambda_table", ("lambda_table",), KERAS, answer_lambda_table,
             compare_lambda_table),
    Question("q3_normalize_weights", ("normalize_weights",), NUMPY, answer_normalize_weights,
             compare_normalize_weights),
]


def sandbox_cases(cases, expected_values):
    """What the sandbox needs for q3: the original weights and λs, not the answers."""
    if "q3_normalize_weights" in cases:
        cases = dict(cases)
        cases["q3_normalize_weights"] = [
            dict(layers=[{k: e[k] for k in ("layer", "kernel_original", "bias_original",
                                            "scale_in", "scale")} for e in value])
            for value in expected_values["q3_normalize_weights"]]
    return cases
