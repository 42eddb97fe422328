"""Data-based weight normalization: :mod:`~snnlib.normalize.rules` (the table of rules, Diehl's
max and Rueckauer's percentile, per layer or per channel, across joins) and
:mod:`~snnlib.normalize.quantiles` (exact percentiles of data seen batch by batch)."""
from snnlib.normalize.rules import (
    GRANULARITIES,
    SPIKE_CONVENTIONS,
    CallableNormalization,
    MaxNormalization,
    NormalizationRule,
    PercentileNormalization,
    apply_scales,
    calibrate,
    compute_scales,
    get_rule,
    layer_scale,
    measure,
    normalize,
    register_normalization,
    threshold_balancing,
)

__all__ = ["GRANULARITIES", "SPIKE_CONVENTIONS", "CallableNormalization", "MaxNormalization",
           "NormalizationRule", "PercentileNormalization", "apply_scales", "calibrate",
           "compute_scales", "get_rule", "layer_scale", "measure", "normalize",
           "register_normalization", "threshold_balancing"]
