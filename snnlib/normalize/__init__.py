"""Data-based weight normalization: :mod:`~snnlib.normalize.rules` (the table of rules, Diehl's
max and Rueckauer's percentile, per layer or per channel, across joins) and
:mod:`~snnlib.normalize.quantiles` (exact percentiles of data seen batch by batch), and weight
quantization, :mod:`~snnlib.normalize.quantize` (k-bit weights, biases and thresholds on one
scale), and per-layer rate scales from measured mean rates, NengoLoihi's practice
(:mod:`~snnlib.normalize.target_rates`)."""
from snnlib.normalize.quantize import quantization_report, quantize
from snnlib.normalize.rules import (
    CALIBRATION_DTYPE,
    GRANULARITIES,
    NORMALIZATIONS,
    SPIKE_CONVENTIONS,
    CallableNormalization,
    MaxNormalization,
    NormalizationArgs,
    NormalizationRule,
    PercentileNormalization,
    apply_normalization,
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
from snnlib.normalize.target_rates import mean_active_rates, target_rate_scales

# every public name the module snnlib.normalize had in snnlib 0.1
__all__ = ["CALIBRATION_DTYPE", "GRANULARITIES", "NORMALIZATIONS", "SPIKE_CONVENTIONS",
           "CallableNormalization", "MaxNormalization", "NormalizationRule",
           "PercentileNormalization", "apply_scales", "assign_scales", "calibrate", "carry",
           "check_normalization_args", "check_percentile", "compute_scales", "get_rule",
           "join_scale", "layer_scale", "measure", "measured", "normalize",
           "register_normalization", "statistics", "threshold_balancing",
           # added after 0.1
           "mean_active_rates", "quantization_report", "quantize", "target_rate_scales",
           "NormalizationArgs", "apply_normalization"]
