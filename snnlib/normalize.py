"""Data-based weight normalization: one factor lambda per layer, measured on calibration data.

Rules, applied stage by stage (see :mod:`snnlib.network`):

- input: lambda_0 = 1 (images are already in [0, 1]);
- a spiking stage with weights (Dense/Conv2D + ReLU): lambda_l measured on the calibration
  set ("max": Diehl et al. 2015; "percentile": Rueckauer et al. 2017), and
  ``W_l <- W_l * lambda_{l-1} / lambda_l``, ``b_l <- b_l / lambda_l``;
- a stage without weights (average pooling, flatten, a separate ReLU): it cannot rescale, so it
  carries lambda through unchanged;
- a linear (non-spiking) stage with weights, in particular the output readout: lambda = 1. Its
  input weights absorb lambda_{l-1}, so its output stays in Keras units: the normalized network
  computes the same logits as the Keras model (rate mode), not logits / lambda_out. Nothing
  spikes there, so there is nothing to saturate.

ReLU is positively homogeneous (``relu(c z) = c relu(z)`` for c > 0), so in rate mode every
spiking stage outputs exactly its Keras activation divided by lambda_l, and the predictions do
not change.
"""
import dataclasses

import numpy as np

METHODS = ("max", "percentile")


def check_normalization_args(normalization, calibration, percentile):
    """Fail early, with a clear message, for bad normalization arguments."""
    if normalization is not None and normalization not in METHODS:
        raise ValueError(f"unknown normalization {normalization!r}; use None, 'max' or "
                         "'percentile'")
    if not np.isscalar(percentile) or not 0 < float(percentile) <= 100:
        raise ValueError(f"percentile={percentile!r} must be a number in (0, 100]")
    if normalization is not None and calibration is None:
        raise ValueError(f"normalization={normalization!r} needs calibration data (e.g. a few "
                         "hundred training images): pass calibration=")


def layer_scale(values, method, percentile, include_zeros):
    """lambda of one layer from all its activations (1 for a layer that never activates)."""
    values = values.ravel()
    if not include_zeros or method == "max":
        values = values[values > 0]
    if values.size == 0 or values.max() <= 0:
        return 1.0  # a silent layer: any lambda gives zero rates; 1 leaves the weights alone
    if method == "max":
        return float(values.max())
    scale = float(np.percentile(values, percentile))
    return scale if scale > 0 else float(values.max())


def measure(network, calibration, batch_size=256):
    """Activations of every stage on the calibration set, in Keras units (before normalization).

    Returns
    -------
    dict
        layer name -> ndarray (n,) + output shape, float32.
    """
    calibration = network.check_input(calibration, what="calibration data")
    _, activations = network.forward(calibration, return_all=True, batch_size=batch_size)
    return activations


def compute_scales(network, activations, *, method, percentile=99.9, include_zeros=False):
    """lambda per stage, following the rules of this module.

    Parameters
    ----------
    network : SpikingNetwork
        Not yet normalized.
    activations : dict
        From :func:`measure`.
    method : {"max", "percentile"}
    percentile : float
        In (0, 100].
    include_zeros : bool
        Percentile over all activations instead of the non-zero ones.

    Returns
    -------
    dict
        layer name -> lambda (float).
    """
    scales, previous = {}, 1.0
    for stage in network.stages:
        if not stage.has_weights:
            scale = previous
        elif stage.spiking:
            scale = layer_scale(activations[stage.name], method, percentile, include_zeros)
        else:
            scale = 1.0
        scales[stage.name] = previous = scale
    return scales


def apply_scales(network, scales):
    """Rescale the weights in place: ``W * lambda_prev / lambda``, ``b / lambda``."""
    previous = 1.0
    for stage in network.stages:
        stage.scale = scales[stage.name]
        if stage.has_weights:
            factor = previous / stage.scale
            # float64 keeps the rescaled weights exact to ~1e-16, as nengo's own float64 math
            kernel = stage.kernel_original.astype(np.float64) * factor
            stage.op = dataclasses.replace(stage.op, kernel=kernel)
            if stage.bias_original is not None:
                stage.bias = stage.bias_original.astype(np.float64) / stage.scale
        previous = stage.scale


def statistics(activations, scale):
    """Largest activation, fraction above lambda (will saturate), fraction non-zero."""
    return dict(max=float(activations.max()), fraction_above=float(np.mean(activations > scale)),
                fraction_nonzero=float(np.mean(activations > 0)))


def normalize(network, calibration, *, method="percentile", percentile=99.9, include_zeros=False,
              batch_size=256):
    """Normalize a converted network in place with data-based lambdas.

    Parameters
    ----------
    network : SpikingNetwork
        From :func:`snnlib.convert.convert` without normalization.
    calibration : ndarray, shape (n,) + input shape
        Inputs in the model's units (images in [0, 1]); not empty, finite.
    method : {"max", "percentile"}
        See :func:`snnlib.convert.convert`.
    percentile : float
        In (0, 100]; used by "percentile".
    include_zeros : bool
        Percentile over all activations (sinabs) instead of the non-zero ones (SNN Toolbox).
    batch_size : int
        Examples per chunk.

    Returns
    -------
    SpikingNetwork
        The same network, with ``scale`` and ``stats`` set on each stage.
    """
    check_normalization_args(method, calibration, percentile)
    if any(stage.scale != 1.0 for stage in network.stages):
        raise ValueError("this network is already normalized; convert the model again")
    activations = measure(network, calibration, batch_size)
    scales = compute_scales(network, activations, method=method, percentile=percentile,
                            include_zeros=include_zeros)
    for stage in network.stages:
        stage.stats = statistics(activations[stage.name], scales[stage.name])
    apply_scales(network, scales)
    network.normalization = method
    return network
