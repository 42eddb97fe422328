"""Data-based weight normalization: :mod:`~snnlib.normalize.rules` (the table of rules, Diehl's
max and Rueckauer's percentile, per layer or per channel, across joins) and
:mod:`~snnlib.normalize.quantiles` (exact percentiles of data seen batch by batch)."""
from snnlib.normalize.rules import (
    CALIBRATION_DTYPE,
    GRANULARITIES,
    NORMALIZATIONS,
    SPIKE_CONVENTIONS,
    CallableNormalization,
    MaxNormalization,
    NormalizationRule,
    PercentileNormalization,
    apply_scales,
    assign_scales,
    calibrate,
    carry,
    check_normalization_args,
    check_percentile,
    compute_scales,
    get_rule,
    join_scale,
    layer_scale,
    measure,
    measured,
    normalize,
    register_normalization,
    statistics,
    threshold_balancing,
)

# every public name the module snnlib.normalize had in snnlib 0.1
__all__ = ["CALIBRATION_DTYPE", "GRANULARITIES", "NORMALIZATIONS", "SPIKE_CONVENTIONS",
           "CallableNormalization", "MaxNormalization", "NormalizationRule",
           "PercentileNormalization", "apply_scales", "assign_scales", "calibrate", "carry",
           "check_normalization_args", "check_percentile", "compute_scales", "get_rule",
           "join_scale", "layer_scale", "measure", "measured", "normalize",
           "register_normalization", "statistics", "threshold_balancing"]
