"""Weight quantization: k-bit integer weights with biases and thresholds on the same scale.

The literature's "normalize and quantize" in one step after :func:`snnlib.normalize.normalize`
(NengoDL does neither: it keeps the float Keras weights). For each stage with weights (the first
layer and the readout included), per layer or per output channel:

- a reference magnitude ``w_ref``: the largest ``|W|`` (``rule="max"``; NengoLoihi's
  ``discretize_compartment`` scales each block's weights by ``255 / w_max``, and sinabs'
  ``determine_discretization_scale`` by the largest magnitude), or a percentile of ``|W|``
  (``rule="percentile"``: the few larger weights are clipped, the rest get finer steps);
- the weight step ``delta = w_ref / (2**(k-1) - 1)``; the integer weights
  ``q = clip(round(W / delta), -(2**(k-1) - 1), 2**(k-1) - 1)``: ``2**k - 1`` levels,
  symmetric around zero (NengoLoihi's default 8-bit signed weights are these levels for k = 8);
- the bias on the same scale, ``round(b / delta)`` (clipped to ``bias_bits`` if given), and the
  firing threshold too: the threshold 1 (activation lambda) is ``1 / delta`` weight steps,
  rounded to an integer ``theta >= 1``. One shared scale for weights, bias and threshold is
  sinabs' rule for its chips (``_discretize_conv_spk_``: one ``scaling`` for all three) and
  NengoLoihi's (bias and voltage on the weights' scale).

The quantized network is the integer network written in threshold units: a spiking stage's
kernel is ``q / theta`` and its bias ``bq / theta``, so the neurons keep the threshold 1 and
every engine, neuron model and ``scale_firing_rates`` apply unchanged; a stage with weights but
no neurons (the readout, a stage that feeds a join) gets ``q * delta`` and ``bq * delta``. In a
chain, integer-valued arithmetic on a chip and this float form agree up to float rounding; in a
graph the joins' factors (:mod:`snnlib.normalize.rules`) stay floats.

How lambda meets the resolution: the weight levels of a layer are set by its own largest
weight, whatever lambda is; lambda enters through the threshold, ``theta = round(lambda_l /
(lambda_{l-1} * delta_Keras))`` in steps of the Keras kernel, and through the bias. A coarse
quantization (few bits, or a large weight next to small ones) makes ``theta`` small, and its
rounding then changes every neuron's gain ``1 / (theta * delta)`` by up to ``0.5 / theta``
(sinabs' shared scale has the same effect). Where ``1 / delta`` is below 0.5 the threshold would
round to 0; it is raised to 1 with a warning, and the gain is then ``1 / delta`` (below 0.5).
Edge cases: a percentile of 0 (a sparse kernel) falls back to the largest weight; an all-zero
channel takes its layer's step, an all-zero layer its bias's.

What this is not: NengoLoihi gives the bias a 12-bit mantissa with an exponent (finer than the
weights), lets a connection whose weights are smaller than its block's regain bits in powers of
two, and rounds the threshold to a multiple of 2**6. Per-channel scales are an extension that
Loihi's per-block scale does not have.
"""
from __future__ import annotations

import copy
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from snnlib import validation
from snnlib.normalize.rules import check_percentile

if TYPE_CHECKING:
    from snnlib.network import SpikingNetwork

__all__ = [
    "RULES",
    "GRANULARITIES",
    "BITS_RANGE",
    "quantize_stage_weights",
    "check_quantize_args",
    "quantize",
    "quantization_report",
]

RULES = ("max", "percentile")
GRANULARITIES = ("layer", "channel")
#: The widths :func:`quantize` accepts (bits per weight, sign included).
BITS_RANGE = (2, 16)


def _reduce(values: np.ndarray, granularity: str, rule: str, percentile: float) -> np.ndarray:
    """``w_ref`` over the whole kernel (a 0-d array) or per output channel (last axis)."""
    magnitude = np.abs(values)
    if granularity == "channel":
        magnitude = magnitude.reshape(-1, magnitude.shape[-1])
        axis = 0
    else:
        magnitude, axis = magnitude.ravel(), None
    if rule == "max":
        return np.asarray(magnitude.max(axis=axis), np.float64)
    return np.asarray(np.percentile(magnitude, percentile, axis=axis), np.float64)


def quantize_stage_weights(kernel: np.ndarray, bias: np.ndarray | None, bits: int, *,
                           spiking: bool, granularity: str = "layer", rule: str = "max",
                           percentile: float = 99.9, bias_bits: int | None = None
                           ) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """One stage's weights quantized (see the module's docstring).

    Parameters
    ----------
    kernel : ndarray
        The kernel after normalization, output channels on the last axis.
    bias : ndarray or None
        The bias after normalization, one per output channel.
    bits : int
        Bits per weight, sign included (2 to 16): ``2**(bits-1) - 1`` positive levels.
    spiking : bool
        Whether neurons with the threshold 1 read the stage (then the threshold is quantized
        too and the result is written in threshold units).

    Returns
    -------
    kernel, bias : ndarray
        The float form of the integer weights (see the module's docstring).
    info : dict
        ``weights`` (int64, the integer kernel), ``bias`` (int64 or None), ``step`` (delta,
        float or per channel), ``threshold`` (theta, int or per channel; None for the readout),
        ``clipped`` (fraction of weights clipped to the largest level).
    """
    levels = 2 ** (bits - 1) - 1
    w = np.asarray(kernel, np.float64)
    reference = _reduce(w, granularity, rule, percentile)
    largest = _reduce(w, granularity, "max", percentile)
    # a percentile of 0 in a sparse kernel would round every weight to 0: take the largest
    reference = np.where(reference > 0, reference, largest)
    # an all-zero channel keeps the layer's step, so that its bias and threshold keep a
    # resolution; an all-zero layer takes it from its bias (any step represents its weights)
    fallback = float(np.abs(w).max())
    if fallback == 0 and bias is not None:
        fallback = float(np.abs(np.asarray(bias, np.float64)).max())
    reference = np.where(reference > 0, reference, fallback if fallback > 0 else levels)
    step = reference / levels
    q = np.round(w / step)
    clipped = float(np.mean(np.abs(q) > levels))
    q = np.clip(q, -levels, levels)
    bq = None
    if bias is not None:
        bq = np.round(np.asarray(bias, np.float64) / step)
        if bias_bits is not None:
            bias_levels = 2 ** (bias_bits - 1) - 1
            bq = np.clip(bq, -bias_levels, bias_levels)
    if spiking:
        theta = np.round(1.0 / step)
        if np.any(theta < 1):
            warnings.warn(
                f"{bits}-bit weights: the weight step ({float(np.max(step)):.3g}) is more than "
                "twice the threshold, so the threshold rounds to 0 weight steps; it is raised "
                "to 1, which divides the neurons' gain by the step: use more bits or normalize "
                "first", stacklevel=3)
            theta = np.maximum(theta, 1.0)
        unit = 1.0 / theta
    else:
        theta, unit = None, step
    info = {
        "bits": bits, "weights": q.astype(np.int64),
        "bias": None if bq is None else bq.astype(np.int64),
        "step": step if np.ndim(step) else float(step),
        "threshold": (None if theta is None else
                      theta.astype(np.int64) if np.ndim(theta) else int(theta)),
        "clipped": clipped,
    }
    return q * unit, (None if bq is None else bq * unit), info


def check_quantize_args(bits: Any, granularity: Any, rule: Any, percentile: Any,
                        bias_bits: Any) -> None:
    """ArgumentError naming the argument, for every argument of :func:`quantize`."""
    validation.integer(bits, "bits", low=BITS_RANGE[0], high=BITS_RANGE[1],
                       hint="bits per weight, sign included")
    if granularity not in GRANULARITIES:
        raise validation.ArgumentError(f"granularity={granularity!r}: use one of {GRANULARITIES}")
    if rule not in RULES:
        raise validation.ArgumentError(f"rule={rule!r}: use one of {RULES}")
    check_percentile(percentile)
    if bias_bits is not None:
        validation.integer(bias_bits, "bias_bits", low=2, high=32,
                           hint="bits per bias, sign included, or None (not clipped)")


def quantize(network: SpikingNetwork, bits: int, *, granularity: str = "layer",
             rule: str = "max", percentile: float = 99.9,
             bias_bits: int | None = None, layers: list[str] | None = None) -> SpikingNetwork:
    """A copy of ``network`` with k-bit weights, biases and thresholds on one scale per layer.

    Quantize after normalizing (``normalize`` refuses a quantized network): the normalized
    weights are what a chip stores. Every stage with weights is quantized, the first layer and
    the readout included; joins' factors and the input are not.

    Parameters
    ----------
    network : SpikingNetwork
        Converted (and normalized, or not).
    bits : int
        Bits per weight, sign included, 2 to 16 (8: NengoLoihi's default weights).
    granularity : {"layer", "channel"}
        One scale per layer (NengoLoihi, sinabs) or per output channel.
    rule : {"max", "percentile"}
        The weight that gets the largest level: the largest ``|W|``, or the ``percentile`` of
        ``|W|`` (larger weights are clipped to the largest level).
    percentile : float
        In (0, 100]; used by ``rule="percentile"``.
    bias_bits : int or None
        Clip the integer biases to this many bits (sign included); None: round only.
    layers : list of str, optional
        Quantize only these stages (names of stages with weights), e.g. the layers that run on
        the chip when the first one runs on the host; None: every stage with weights.

    Returns
    -------
    SpikingNetwork
        The quantized copy: ``quantization`` records the settings, ``unquantized`` is a copy of
        the network it came from, and each quantized stage's ``stats["quantization"]`` holds its
        integers (see :func:`quantize_stage_weights`). :func:`quantization_report` tabulates them.
    """
    from snnlib.network import SpikingNetwork

    if not isinstance(network, SpikingNetwork):
        raise TypeError(f"network must be a SpikingNetwork (from snnlib.convert), got "
                        f"{type(network).__name__}")
    check_quantize_args(bits, granularity, rule, percentile, bias_bits)
    if getattr(network, "quantization", None) is not None:
        raise ValueError(f"this network is already quantized ({network.quantization}); quantize "
                         "its .unquantized network instead")
    weighted = [stage.name for stage in network.stages if stage.has_weights]
    if layers is not None:
        unknown = [name for name in layers if name not in weighted]
        if isinstance(layers, str) or unknown:
            raise validation.ArgumentError(
                f"layers={layers!r}: give a list of the names of stages with weights; "
                f"{unknown if not isinstance(layers, str) else layers!r} not among {weighted}")
    quantized = copy.deepcopy(network)
    for stage in quantized.stages:
        if not stage.has_weights or (layers is not None and stage.name not in layers):
            continue
        kernel, bias, info = quantize_stage_weights(
            stage.kernel, stage.bias, bits, spiking=stage.spiking, granularity=granularity,
            rule=rule, percentile=percentile, bias_bits=bias_bits)
        stage.op = stage.op.with_kernel(kernel)
        stage.bias = bias
        stage.stats = {**stage.stats, "quantization": info}
    quantized.quantization = {"bits": bits, "granularity": granularity, "rule": rule,
                              **({"percentile": percentile} if rule == "percentile" else {}),
                              "bias_bits": bias_bits,
                              **({"layers": list(layers)} if layers is not None else {})}
    # a snapshot: normalize() works in place, and the report compares with this
    quantized.unquantized = copy.deepcopy(network)
    return quantized


def quantization_report(network: SpikingNetwork, x: np.ndarray | None = None,
                        batch_size: int = 256) -> pd.DataFrame:
    """One row per quantized stage: its step, threshold, clipping and, given ``x``, its error.

    Parameters
    ----------
    network : SpikingNetwork
        From :func:`quantize`.
    x : ndarray, optional
        Inputs: adds ``rate_error``, the largest rate-mode difference of the stage's output
        from the unquantized network's, relative to the largest unquantized output (float64;
        errors of earlier layers included, as they reach this one).

    Returns
    -------
    pandas.DataFrame
        Columns ``layer``, ``bits``, ``step`` (delta; the smallest over channels), ``threshold``
        (theta in weight steps; the smallest over channels; NaN for the readout),
        ``weight_error`` (rms of the weight change over rms of the weights, in threshold
        units), ``clipped`` (fraction), and ``rate_error`` with ``x``.
    """
    if getattr(network, "quantization", None) is None:
        raise ValueError("network is not quantized: pass the result of snnlib.quantize(...)")
    original = {stage.name: stage for stage in network.unquantized.stages}
    rows = []
    for stage in network.stages:
        info = stage.stats.get("quantization")
        if info is None:
            continue
        before = original[stage.name].kernel.astype(np.float64)
        change = stage.kernel.astype(np.float64) - before
        rms = float(np.sqrt(np.mean(before ** 2)))
        rows.append({
            "layer": stage.name, "bits": info["bits"],
            "step": float(np.min(info["step"])),
            "threshold": (np.nan if info["threshold"] is None
                          else float(np.min(info["threshold"]))),
            "weight_error": float(np.sqrt(np.mean(change ** 2))) / rms if rms > 0 else 0.0,
            "clipped": info["clipped"],
        })
    table = pd.DataFrame(rows)
    if x is not None:
        _, ours = network.forward(x, dtype=np.float64, return_all=True, batch_size=batch_size)
        _, theirs = network.unquantized.forward(x, dtype=np.float64, return_all=True,
                                                batch_size=batch_size)
        table["rate_error"] = [
            float(np.abs(ours[name] - theirs[name]).max() / max(np.abs(theirs[name]).max(),
                                                                 1e-300))
            for name in table["layer"]]
    return table
