"""Assignment 2, hidden checks: lambda per layer (max / percentile) and normalized weights.

References: :func:`snnlib.normalize.layer_scale` for one layer's lambda, and
:func:`snnlib.convert` with ``normalization="max"`` / ``"percentile"`` on a hidden calibration
set (different training images from the notebook's) for the table and the weights.
"""
import functools

import numpy as np

from snnlib.course.harness import CheckFailed, call, close

HIDDEN_SEED = 424242
LAMBDA_RTOL = 1e-3  # Keras and snnlib compute activations in float32 with different kernels


def hidden_activations(seed):
    """ReLU-like activations: ~60 % zeros, a long tail of large values."""
    rng = np.random.default_rng(seed)
    values = rng.lognormal(0.0, 1.0, size=(50, 6, 6, 4)).astype(np.float32)
    values[rng.random(values.shape) < 0.6] = 0.0
    return values


def check_layer_lambda(ns):
    from snnlib.normalize import layer_scale

    cases = [("max", 99.9), ("percentile", 99.9), ("percentile", 95.0), ("percentile", 50.0)]
    for i, (method, percentile) in enumerate(cases):
        values = hidden_activations(HIDDEN_SEED + i)
        expected = layer_scale(values, method, percentile, include_zeros=False)
        got = call(ns["layer_lambda"], values.copy(), method=method, percentile=percentile)
        close(f"layer_lambda(activations, method={method!r}, percentile={percentile})",
              expected, got, rtol=1e-6, what="λ = ")
    silent = np.zeros((10, 3), np.float32)
    got = call(ns["layer_lambda"], silent, method="percentile", percentile=99.9)
    close("layer_lambda(all-zero activations)", 1.0, got, rtol=1e-9, what="λ = ")
    return "λ matches snnlib for max and percentile (non-zero activations)"


@functools.lru_cache(maxsize=None)
def reference():
    """Pretrained model, hidden calibration set, and the network normalized both ways."""
    import snnlib
    from snnlib.normalize import apply_scales, compute_scales, measure

    model = snnlib.load_pretrained_convnet()
    (x_train, _), _ = snnlib.load_mnist()
    rng = np.random.default_rng(HIDDEN_SEED)
    calibration = x_train[rng.choice(len(x_train), 200, replace=False)]
    # measure once, derive both λ tables (what snnlib.convert(..., normalization=m) does)
    network = snnlib.convert(model)
    activations = measure(network, calibration)
    scales = {m: compute_scales(network, activations, method=m) for m in ("max", "percentile")}
    apply_scales(network, scales["percentile"])
    return model, calibration, scales, network


def check_lambda_table(ns):
    model, calibration, scales, network = reference()
    got = call(ns["lambda_table"], model, calibration.copy(), percentile=99.9)
    spiking = network.spiking_layers
    if not isinstance(got, dict):
        raise CheckFailed(f"lambda_table: expected a dict layer name -> {{'max': λ, "
                          f"'percentile': λ}}, got {type(got).__name__}")
    missing = [name for name in spiking if name not in got]
    if missing:
        raise CheckFailed(f"lambda_table: expected the spiking layers {spiking}, "
                          f"missing {missing} (got keys {list(got)})")
    for name in spiking:
        for method in ("max", "percentile"):
            try:
                value = got[name][method]
            except (KeyError, TypeError, IndexError):
                raise CheckFailed(f"lambda_table: {name!r} has no entry {method!r} "
                                  f"(got {got[name]!r:.80})") from None
            close(f"lambda_table: layer {name}", scales[method][name], value,
                  rtol=LAMBDA_RTOL, what=f"λ_{method} = ")
    return "λ table matches snnlib.convert(...).scales"


def check_normalize_weights(ns):
    *_, network = reference()
    for entry in network.weights():
        kernel, bias = call(ns["normalize_weights"], entry["kernel_original"].copy(),
                            entry["bias_original"].copy(), entry["scale_in"], entry["scale"])
        close(f"normalize_weights: layer {entry['layer']} kernel", entry["kernel"], kernel,
              rtol=1e-5, atol=1e-7)
        close(f"normalize_weights: layer {entry['layer']} bias", entry["bias"], bias,
              rtol=1e-5, atol=1e-7)
    return "normalized weights match snnlib"
