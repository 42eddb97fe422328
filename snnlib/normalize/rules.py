"""Data-based weight normalization: a factor lambda per layer (or per channel), measured on
calibration data.

Rules, applied stage by stage (see :mod:`snnlib.network`):

- input: lambda_0 = 1 (images are already in [0, 1]);
- a spiking stage with weights (Dense/Conv2D + ReLU): lambda_l measured on the calibration
  set ("max": Diehl et al. 2015; "percentile": Rueckauer et al. 2017), and
  ``W_l <- W_l * lambda_{l-1} / lambda_l``, ``b_l <- b_l / lambda_l``;
- a stage without weights (average pooling, flatten, a separate ReLU): it cannot rescale, so it
  carries lambda through unchanged;
- a linear (non-spiking) stage with weights before the readout (a per-channel affine stage, kept
  where batch normalization cannot be folded exactly): it carries lambda through too, its
  weights unchanged and its bias divided by lambda_{l-1} (it is linear, so its output is the
  Keras value divided by lambda_{l-1});
- a join (a graph's ``Add``, ``Subtract``, ``Average``, ``Concatenate``): with neurons after
  it (``Add`` then ``ReLU``), lambda is measured as for a spiking stage with weights; without,
  an ``Add`` takes the largest of its inputs' lambdas and a ``Concatenate`` keeps each input's
  own, one per channel (:func:`join_scale`). Each input then enters the join multiplied by
  ``lambda_input / lambda_join`` (:class:`snnlib.network.ops.JoinOp`'s factors): every path keeps
  its
  own lambda up to the join and the join is exact. Hu et al. 2018 ("Spiking deep residual
  network") scale a residual block's shortcut connections by such a ratio; for a concatenation,
  SNN Toolbox (Rueckauer et al. 2017's code, ``normalize_parameters`` in
  ``snntoolbox/conversion/utils.py``) rescales the slice of the next kernel each inbound layer
  feeds by lambda_inbound / lambda_l, which keeping each input's lambda per channel amounts to.
  Taking the largest input lambda for a sum without neurons is snnlib's own choice (any
  positive value is exact);
- the readout (:attr:`snnlib.network.SpikingNetwork.readout_start`: the last stage with weights,
  a ReLU output layer included, and the stages after it): lambda = 1. Its input weights absorb
  lambda_{l-1}, so its output stays in Keras units: the normalized network computes the same
  outputs as the Keras model (rate mode), not outputs / lambda_out. Nothing spikes there, so
  there is nothing to saturate.

ReLU is positively homogeneous (``relu(c z) = c relu(z)`` for c > 0), so in rate mode every
spiking stage outputs exactly its Keras activation divided by lambda_l, and the predictions do
not change.

**Granularity.** ``granularity="layer"`` (default; the papers above) gives one lambda per layer.
``granularity="channel"`` gives one lambda per output channel of each spiking layer (a dense
layer's channels are its units), as later conversion papers do: a channel whose activations
are small no longer fires slowly because another channel of the same layer has large ones. The
next layer's kernel is rescaled per input channel, ``W[..., c_in, c_out] * lambda_prev[c_in] /
lambda[c_out]``, and the bias per output channel; the rate-mode output is still exactly the
Keras one (``verify`` passes). Average pooling and identities carry the per-channel lambdas
through, a flatten spreads them over its positions. NengoDL's per-layer ``scale_firing_rates``
cannot express it (see :func:`snnlib.nengo.bridge.nengo_scale_firing_rates`).

How lambda is measured is a *rule* (:class:`NormalizationRule`), looked up by name in the
table :data:`NORMALIZATIONS` ("max", "percentile"; add one with :func:`register_normalization`),
or given directly as an instance or as a plain callable (activations -> lambda).

**Memory.** :func:`normalize` (and ``convert(..., normalization=...)``) streams the calibration
set batch by batch (:func:`calibrate`): what it keeps does not grow with the number of
calibration images.

- A rule that is an order statistic (:meth:`NormalizationRule.order_statistic`; "max" and
  "percentile" are) needs only the top of each layer's values: the count, and the largest
  ``ceil((1 - q) * n) + 2`` values, at most :data:`snnlib.normalize.quantiles.TAIL_SIZE` (4 MB) per
  layer. Lambda is exactly ``np.percentile`` of all the values (the same interpolation, bit
  for bit). When the top is not enough (a low percentile, a huge calibration set), the
  calibration set is run again, up to three more times, to find the value digit by digit
  (:mod:`snnlib.normalize.quantiles`).
- Any other rule, a plain callable in particular, receives every activation of one layer (or
  one channel) as one flat float64 array, in Keras units, zeros included: that costs 8 bytes
  per image and neuron of each spiking layer with weights, all held at once (the book's
  convnet: 247 kB per calibration image, 247 MB for 1,000 images). Declare ``order_statistic``
  on a rule class to get the bounded calibration.

:func:`measure` and :func:`compute_scales` are the unbounded, step-by-step form (every
activation kept, then lambdas computed from them), for teaching and for the course's checks;
they give the same lambdas.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from snnlib import validation
from snnlib.normalize import quantiles
from snnlib.registry import Registry

if TYPE_CHECKING:
    from snnlib.network import SpikingNetwork, Stage

__all__ = [
    "GRANULARITIES",
    "NormalizationRule",
    "NORMALIZATIONS",
    "register_normalization",
    "MaxNormalization",
    "PercentileNormalization",
    "CallableNormalization",
    "get_rule",
    "check_percentile",
    "NormalizationArgs",
    "check_normalization_args",
    "layer_scale",
    "CALIBRATION_DTYPE",
    "measure",
    "compute_scales",
    "measured",
    "assign_scales",
    "join_scale",
    "statistics",
    "carry",
    "apply_scales",
    "calibrate",
    "normalize",
    "apply_normalization",
    "SPIKE_CONVENTIONS",
    "threshold_balancing",
]

#: Granularities of :func:`normalize`: one lambda per layer, or per output channel.
GRANULARITIES = ("layer", "channel")


class NormalizationRule:
    """How lambda of one layer is computed from its activations on the calibration set.

    Subclasses set :attr:`name` and implement :meth:`compute`; :meth:`scale` wraps it with the
    rules every normalization shares: a layer with no positive activation gets lambda = 1 (any
    lambda gives zero rates; 1 leaves the weights alone), and the result must be a positive
    finite number. Register a subclass with :func:`register_normalization` to use it by name, or
    pass an instance (or a plain callable) as ``normalization=``.

    Rules that are an order statistic of the activations say so in :meth:`order_statistic`:
    the calibration then keeps only the top tail of each layer's values (bounded memory) and
    computes that quantile exactly, without calling :meth:`compute` (which must compute the
    same thing from all the values, as :func:`compute_scales` calls it). Other rules receive
    every value (memory grows with the calibration set; see the module's docstring).
    """

    #: Name in the table of rules (``normalization=name``), recorded on the network.
    name: ClassVar[str] = ""

    @classmethod
    def from_options(cls, *, percentile: float, include_zeros: bool) -> NormalizationRule:
        """The rule for ``convert``'s / ``normalize``'s options (ignored unless it uses them)."""
        return cls()

    def order_statistic(self) -> tuple[float, bool] | None:
        """``(q, nonzero_only)`` if lambda is the q-quantile (0 < q <= 1, linear interpolation
        as ``np.percentile``) of the layer's activations (only the non-zero ones if
        ``nonzero_only``); None if the rule needs all of them."""
        return None

    def compute(self, values: np.ndarray) -> float:
        """lambda from a flat array of the layer's activations (zeros included), some > 0."""
        raise NotImplementedError(f"{type(self).__name__} must define compute(values)")

    def scale(self, values: np.ndarray) -> float:
        """lambda of one layer from all its activations (any shape; 1 for a silent layer)."""
        values = np.asarray(values).ravel()
        if values.size == 0 or not values.max() > 0:
            return 1.0  # a silent layer: any lambda gives zero rates; 1 leaves the weights alone
        return self.checked(self.compute(values))

    def checked(self, scale: Any) -> float:
        """``scale`` as a float, or a ValueError unless it is a positive finite number."""
        try:
            scale = float(scale)
        except (TypeError, ValueError):
            raise ValueError(f"normalization {self.name!r} gave lambda = {scale!r}; it must be "
                             "a positive finite number") from None
        if not (np.isfinite(scale) and scale > 0):
            raise ValueError(f"normalization {self.name!r} gave lambda = {scale!r}; it must be a "
                             "positive finite number")
        return scale


#: The table of normalization rules: name -> :class:`NormalizationRule` subclass, a read-only
#: :class:`snnlib.registry.Registry`; add a rule with :func:`register_normalization`.
NORMALIZATIONS: Registry[str, type[NormalizationRule]] = Registry(
    "normalization", base=NormalizationRule, key_attribute="name",
    hint=", a callable (activations of one layer -> lambda) or a NormalizationRule")


def register_normalization(cls: type[NormalizationRule]) -> type[NormalizationRule]:
    """Class decorator: add a rule to :data:`NORMALIZATIONS` under its ``name`` (warns on a
    replacement).

    The same as ``@NORMALIZATIONS.register`` (:class:`snnlib.registry.Registry`, the idiom of
    nengo-dl's ``Converter.register``).

    Raises
    ------
    TypeError
        ``cls`` is not a :class:`NormalizationRule` subclass with a non-empty ``name``.
    """
    return NORMALIZATIONS.register(cls, stacklevel=2)


@register_normalization
class MaxNormalization(NormalizationRule):
    """Diehl et al. 2015 (data-based): lambda is the layer's largest activation."""

    name = "max"

    def order_statistic(self) -> tuple[float, bool]:
        return 1.0, True

    def compute(self, values: np.ndarray) -> float:
        return float(values.max())


@register_normalization
class PercentileNormalization(NormalizationRule):
    """Rueckauer et al. 2017: lambda is a percentile of the layer's activations.

    Parameters
    ----------
    percentile : float
        In (0, 100]; 100 is the largest activation.
    include_zeros : bool
        Over all activations (as sinabs) instead of the non-zero ones (as SNN Toolbox).
    """

    name = "percentile"

    def __init__(self, percentile: float = 99.9, include_zeros: bool = False) -> None:
        self.percentile = check_percentile(percentile)
        self.include_zeros = validation.boolean(include_zeros, "include_zeros")

    @classmethod
    def from_options(cls, *, percentile: float, include_zeros: bool) -> NormalizationRule:
        return cls(percentile, include_zeros)

    def order_statistic(self) -> tuple[float, bool]:
        return quantiles.fraction(self.percentile), not self.include_zeros

    def compute(self, values: np.ndarray) -> float:
        if not self.include_zeros:
            values = values[values > 0]
        scale = float(np.percentile(values, self.percentile))
        return scale if scale > 0 else float(values.max())


class CallableNormalization(NormalizationRule):
    """A rule given as a function: flat array of one layer's activations -> lambda."""

    def __init__(self, function: Callable[[np.ndarray], float]) -> None:
        self.function = function

    @property
    def name(self) -> str:  # type: ignore[override]
        return getattr(self.function, "__name__", "custom")

    def compute(self, values: np.ndarray) -> float:
        return self.function(values)


def _choices() -> str:
    return f"use one of {NORMALIZATIONS.names()}{NORMALIZATIONS.hint}"


def get_rule(normalization: str | Callable | NormalizationRule, *, percentile: float = 99.9,
             include_zeros: bool = False) -> NormalizationRule:
    """The :class:`NormalizationRule` that ``normalization`` names (or is, or wraps)."""
    if isinstance(normalization, NormalizationRule):
        return normalization
    if isinstance(normalization, str):
        return NORMALIZATIONS[normalization].from_options(percentile=percentile,
                                                          include_zeros=include_zeros)
    if callable(normalization):
        return CallableNormalization(normalization)
    raise validation.ArgumentError(f"unknown normalization {normalization!r}; {_choices()}")


def check_percentile(percentile: float) -> float:
    """``percentile`` as a float; ArgumentError unless it is a real number in (0, 100]."""
    return validation.real(percentile, "percentile", low=0, high=100, low_open=True,
                           hint="100 is the largest activation")


@dataclass(frozen=True)
class NormalizationArgs:
    """The normalization arguments of :func:`~snnlib.convert.convert` / :func:`normalize`,
    checked once and resolved (what :func:`check_normalization_args` returns, and what the
    internal steps take instead of checking them again).

    Attributes
    ----------
    rule : NormalizationRule or None
        The resolved rule (``percentile`` and ``include_zeros`` applied); None: no
        normalization.
    granularity : {"layer", "channel"}
        One lambda per layer or per output channel.
    batch_size : int
        Examples per forward pass.
    """

    rule: NormalizationRule | None
    granularity: str = "layer"
    batch_size: int = 256

    def __post_init__(self):
        # built by check_normalization_args, or by hand: either way never a wrong value
        if self.rule is not None and not isinstance(self.rule, NormalizationRule):
            raise TypeError(f"NormalizationArgs.rule must be a NormalizationRule or None, got "
                            f"{type(self.rule).__name__} (check_normalization_args resolves "
                            "names and functions)")
        if self.granularity not in GRANULARITIES:
            raise validation.ArgumentError(f"granularity={self.granularity!r}: use one of "
                                           f"{list(GRANULARITIES)}")
        if type(self.batch_size) is not int or self.batch_size < 1:
            raise validation.ArgumentError(f"batch_size={self.batch_size!r}: use a positive "
                                           "integer")


def check_normalization_args(normalization: str | Callable | NormalizationRule | None,
                             calibration: np.ndarray | None, percentile: float, *,
                             include_zeros: bool = False, batch_size: int = 256,
                             granularity: str = "layer") -> NormalizationArgs:
    """Fail early, with a clear message, for bad normalization arguments; else resolve them.

    The one place where :func:`~snnlib.convert.convert`'s and :func:`normalize`'s arguments
    are checked: the rule is looked up (:func:`get_rule`) and ``percentile``,
    ``include_zeros``, ``batch_size`` and ``granularity`` validated here, once, and the
    resolved values passed on (:func:`apply_normalization`). Calibration data without a
    normalization is an error (nothing would use it: a forgotten ``normalization=`` would
    otherwise go unnoticed), as is a normalization without it.

    Returns
    -------
    NormalizationArgs
        The rule (None for ``normalization=None``), granularity and batch size.

    Raises
    ------
    ArgumentError
        (a ``ValueError``) naming the bad argument and what it accepts.
    """
    rule = None if normalization is None else get_rule(
        normalization, percentile=percentile, include_zeros=include_zeros)
    check_percentile(percentile)
    validation.boolean(include_zeros, "include_zeros")
    batch_size = validation.integer(batch_size, "batch_size", low=1)
    granularity = validation.choice(granularity, "granularity", GRANULARITIES)
    if normalization is not None and calibration is None:
        raise validation.ArgumentError(
            f"normalization={normalization!r} needs calibration data (e.g. a few hundred "
            "training images): pass calibration=")
    if normalization is None and granularity != "layer":
        raise validation.ArgumentError(
            f"granularity={granularity!r} applies to a normalization, but normalization=None: "
            "pass normalization='percentile' (or 'max') and calibration data")
    if normalization is None and calibration is not None:
        raise validation.ArgumentError(
            "calibration data was given but normalization=None, so nothing would use it: pass "
            "normalization='percentile' (or 'max', or your rule) to normalize with it, or leave "
            "calibration out to keep the Keras weights")
    return NormalizationArgs(rule, granularity, batch_size)


def layer_scale(values: np.ndarray, method: str | Callable | NormalizationRule = "percentile",
                percentile: float = 99.9, include_zeros: bool = False) -> float:
    """lambda of one layer from all its activations (1 for a layer that never activates)."""
    return get_rule(method, percentile=percentile, include_zeros=include_zeros).scale(values)


# --------------------------------------------------------------------------------------------
# The unbounded, step-by-step form: every activation kept
# --------------------------------------------------------------------------------------------

#: Arithmetic of the calibration pass. float64: TensorFlow's float32 convolutions round
#: differently on different CPUs (vector width, oneDNN), which would move lambda in its last
#: digits and with it a rare spike; in float64 the same TensorFlow build gives the same lambda.
CALIBRATION_DTYPE = np.float64


def measure(network: SpikingNetwork, calibration: np.ndarray, batch_size: int = 256
            ) -> dict[str, np.ndarray]:
    """Activations of every stage on the calibration set, in Keras units (before normalization).

    Memory: every activation of every stage, for every image (the book's convnet: 160 kB per
    image). :func:`normalize` does not call this; it streams (:func:`calibrate`).

    Returns
    -------
    dict
        layer name -> ndarray (n,) + output shape, float64 (see :data:`CALIBRATION_DTYPE`).
    """
    validation.integer(batch_size, "batch_size", low=1)
    calibration = network.check_input(calibration, what="calibration data")
    _, activations = network.forward(calibration, return_all=True, batch_size=batch_size,
                                     dtype=CALIBRATION_DTYPE)
    return activations


def compute_scales(network: SpikingNetwork, activations: dict, *,
                   method: str | Callable | NormalizationRule, percentile: float = 99.9,
                   include_zeros: bool = False) -> dict[str, float]:
    """lambda per stage (one per layer), following the rules of this module.

    Parameters
    ----------
    network : SpikingNetwork
        Not yet normalized.
    activations : dict
        From :func:`measure`.
    method : {"max", "percentile"}, callable or NormalizationRule
        See :func:`get_rule`.
    percentile : float
        In (0, 100].
    include_zeros : bool
        Percentile over all activations instead of the non-zero ones.

    Returns
    -------
    dict
        layer name -> lambda (float; an array per channel for a concatenation of inputs with
        different lambdas and the stages that carry it).
    """
    rule = get_rule(method, percentile=percentile, include_zeros=include_zeros)

    def own(index: int, stage: Stage) -> float:
        try:
            return rule.scale(activations[stage.name])
        except ValueError as err:
            raise ValueError(f"layer {stage.name!r}: {err}") from None

    return assign_scales(network, own)


def measured(stage: Stage) -> bool:
    """True for the stages whose lambda is measured: spiking ones with weights or a join."""
    return stage.spiking and (stage.has_weights or stage.op.join)


def assign_scales(network: SpikingNetwork, own: Callable[[int, Stage], float | np.ndarray]
                  ) -> dict[str, float | np.ndarray]:
    """lambda of every stage, in order, following the rules of this module.

    ``own(index, stage)`` gives the measured lambda of the stages :func:`measured` selects;
    the readout gets 1; every other stage carries the lambda of its input (a join: see
    :func:`join_scale`).
    """
    scales: dict[str, float | np.ndarray] = {}
    readout, sources = network.readout_indices, network.sources()

    def of(j: int) -> float | np.ndarray:
        return 1.0 if j < 0 else scales[network.stages[j].name]

    for i, stage in enumerate(network.stages):
        into = [of(j) for j in sources[i]]
        if measured(stage):
            scale = own(i, stage)
        elif i in readout:
            scale = 1.0  # the readout keeps Keras units (see the module's rules)
        elif stage.op.join:
            scale = join_scale(network, i, into)
        elif stage.has_weights:
            # a linear stage before the readout (an affine stage kept from a batch
            # normalization, a convolution into a residual sum): it carries lambda through,
            # its bias divided by it; a kernel that mixes channels takes per-channel lambdas
            # in and gives their largest out
            # (a per-channel affine map carries them channel by channel)
            if np.ndim(into[0]) == 0 or stage.op.kind == "affine":
                scale = into[0]
            else:
                scale = float(np.max(into[0]))
        else:
            scale = carry(into[0], stage)
        scales[stage.name] = scale
    return scales


def _input_channels(network: SpikingNetwork, j: int) -> int:
    shape = network.input_shape if j < 0 else network.stages[j].output_shape
    return int(shape[-1])


def join_scale(network: SpikingNetwork, index: int, into: list) -> float | np.ndarray:
    """lambda of a join without neurons, from the lambdas of its inputs.

    ``Add`` (and ``Subtract``, ``Average``): the largest of its inputs' lambdas (per channel
    where any is per channel); each input then enters with the factor ``lambda_input /
    lambda_join`` (at most 1), so that every path keeps its own lambda up to the join and the
    sum is exact (the module's docstring gives the sources; the largest lambda is snnlib's
    choice, any positive one would be exact). ``Concatenate`` keeps each
    input's own lambda: one lambda per channel of its output (one number when they are all
    the same), and the layer after it rescales its kernel channel by channel.
    """
    stage = network.stages[index]
    if all(np.ndim(v) == 0 for v in into) and len(set(map(float, into))) == 1:
        return float(into[0])
    if stage.op.kind == "concatenate":
        sources = network.sources()[index]
        return np.concatenate([np.broadcast_to(np.asarray(v, np.float64),
                                               (_input_channels(network, j),))
                               for v, j in zip(into, sources, strict=True)])
    if all(np.ndim(v) == 0 for v in into):
        return float(max(into))
    return np.maximum.reduce([np.broadcast_to(np.asarray(v, np.float64),
                                              (stage.output_shape[-1],)) for v in into])


def statistics(activations: np.ndarray, scale: float | np.ndarray) -> dict[str, float]:
    """Largest activation, fraction above lambda (will saturate), fraction non-zero."""
    return dict(max=float(activations.max()), fraction_above=float(np.mean(activations > scale)),
                fraction_nonzero=float(np.mean(activations > 0)))


# --------------------------------------------------------------------------------------------
# Lambdas through the stages, and the rescaled weights
# --------------------------------------------------------------------------------------------

def carry(scale: float | np.ndarray, stage: Stage) -> float | np.ndarray:
    """lambda at the output of a stage without weights, from lambda at its input.

    One number passes unchanged. Per-channel lambdas pass unchanged through ops that act on
    every channel alike (pooling, identity) and are spread over the positions by a reshape
    (a flatten: the element of channel c gets lambda[c]).

    Raises
    ------
    ValueError
        The op mixes channels in a way per-channel lambdas cannot follow.
    """
    if np.ndim(scale) == 0:
        return scale
    scale = np.asarray(scale, dtype=np.float64)
    if (stage.op.spatial or stage.op.channelwise) and \
            stage.output_shape[-1:] == stage.input_shape[-1:]:
        return scale
    if not stage.op.arithmetic and np.prod(stage.input_shape) == np.prod(stage.output_shape):
        full = np.broadcast_to(scale, stage.input_shape).reshape(stage.output_shape)
        lead = full.reshape(-1, full.shape[-1])
        if np.all(lead == lead[0]):
            return lead[0].copy()
    raise ValueError(f"channel-wise normalization cannot carry per-channel lambdas through "
                     f"stage {stage.name!r} ({stage.kind}); use granularity='layer'")


def apply_scales(network: SpikingNetwork, scales: dict[str, float | np.ndarray]) -> None:
    """Rescale the weights in place: ``W * lambda_prev / lambda``, ``b / lambda``.

    A lambda may be one number (per layer) or one per output channel (the kernel's last axis);
    then the next kernel is rescaled per input channel (its second-to-last axis, or the
    channels of each output's group: :meth:`snnlib.network.ops.Op.channel_factors`).
    """
    if getattr(network, "quantization", None) is not None:
        raise ValueError("this network is quantized: rescaling rebuilds the kernels from the "
                         "float Keras weights and would undo it; rescale before quantizing")
    if getattr(network, "calibration", None) is not None:
        raise ValueError(f"this network is calibrated ({network.calibration['method']}): "
                         "rescaling rebuilds the biases from Keras and would undo it; "
                         "normalize first, then calibrate")
    sources = network.sources()
    for i, stage in enumerate(network.stages):
        into = [1.0 if j < 0 else network.stages[j].scale for j in sources[i]]
        previous = into[0]
        scale = scales[stage.name]
        stage.scale = scale if np.ndim(scale) == 0 else np.asarray(scale, dtype=np.float64)
        if stage.op.join:
            stage.op = stage.op.with_factors(_join_factors(network, i, into, stage.scale))
        if stage.has_weights:
            kernel = stage.kernel_original.astype(np.float64)
            if np.ndim(previous) == 0 and np.ndim(scale) == 0:
                # float64 keeps the rescaled weights exact to ~1e-16, as nengo's own float64 math
                kernel = kernel * (previous / scale)
            else:  # per channel; a grouped or depthwise kernel reads a group's channels
                op = stage.op
                into = np.broadcast_to(np.asarray(previous, np.float64), (op.in_channels,))
                out = np.broadcast_to(np.asarray(scale, np.float64), (op.out_channels,))
                kernel = kernel * op.channel_factors(into, out)
            stage.op = stage.op.with_kernel(kernel)
            if stage.bias_original is not None:
                stage.bias = stage.bias_original.astype(np.float64) / stage.scale


def _join_factors(network: SpikingNetwork, index: int, into: list,
                  scale: float | np.ndarray) -> tuple | None:
    """``lambda_input / lambda_join`` per input of a join (its channels' part of a
    concatenation's lambda); None where every factor is exactly 1."""
    stage, sources = network.stages[index], network.sources()[index]
    factors, offset = [], 0
    for value, j in zip(into, sources, strict=True):
        part = scale
        if np.ndim(scale) != 0 and stage.op.kind == "concatenate":
            channels = _input_channels(network, j)
            part, offset = scale[offset:offset + channels], offset + channels
        factor = np.asarray(value, np.float64) / np.asarray(part, np.float64)
        factors.append(float(factor) if factor.ndim == 0 else factor)
    if all(np.ndim(f) == 0 and f == 1.0 for f in factors):
        return None
    return tuple(factors)


# --------------------------------------------------------------------------------------------
# The bounded calibration
# --------------------------------------------------------------------------------------------

def _outputs(network: SpikingNetwork, x: np.ndarray, batch_size: int
             ) -> Iterator[list[np.ndarray]]:
    """Every stage's rate-mode output (float64, Keras units before normalization), per batch."""
    for start in range(0, len(x), batch_size):
        h = x[start:start + batch_size].astype(CALIBRATION_DTYPE)
        _, every = network.run(h, lambda stage, h: stage.rates(h), keep=True)
        yield [every[stage.name] for stage in network.stages]


class _StageSummary:
    """What the calibration keeps of one stage: counts, its largest value, and (spiking
    stages) the top of its values per group, or (rules without an order statistic) all."""

    def __init__(self, stage: Stage, *, groups: int, size: int, nonzero_only: bool,
                 keep_all: bool) -> None:
        self.stage, self.groups = stage, groups
        self.total = 0
        self.nonzero = 0
        self.max = -np.inf
        self.top = (quantiles.TopValues(groups, nonzero_only=nonzero_only, size=size)
                    if stage.spiking else None)
        self.values: list[np.ndarray] | None = [] if keep_all else None

    def add(self, values: np.ndarray) -> None:
        self.total += values.size
        self.nonzero += int(np.count_nonzero(values > 0))
        self.max = max(self.max, float(values.max()))
        if self.top is not None:
            self.top.add(values)
        if self.values is not None:
            self.values.append(values.reshape(-1, self.groups))

    def group_values(self, group: int) -> np.ndarray:
        return np.concatenate([v[:, group] for v in self.values])


def calibrate(network: SpikingNetwork, calibration: np.ndarray,
              rule: str | Callable | NormalizationRule = "percentile", *,
              percentile: float = 99.9, include_zeros: bool = False,
              granularity: str = "layer", batch_size: int = 256,
              tail_size: int = quantiles.TAIL_SIZE) -> tuple[dict, dict]:
    """lambda of every stage and its statistics, streaming the calibration set.

    Memory does not grow with the calibration set for rules with an order statistic (see the
    module's docstring): one batch of activations, and per spiking layer at most ``tail_size``
    values plus a few counts. The result is exactly what :func:`compute_scales` gives from all
    the activations.

    Parameters
    ----------
    network : SpikingNetwork
        Not yet normalized.
    calibration : ndarray, shape (n,) + input shape
        Calibration inputs (floating point).
    rule, percentile, include_zeros
        As :func:`normalize`.
    granularity : {"layer", "channel"}
        One lambda per layer, or per output channel.
    batch_size : int
        Examples per forward pass.
    tail_size : int
        Largest number of top values kept per layer (smaller: more passes when needed).

    Returns
    -------
    scales : dict
        Stage name -> lambda (float, or an array per channel with ``granularity="channel"``).
    stats : dict
        Stage name -> dict(max, fraction_above, fraction_nonzero) as :func:`statistics`
        (``fraction_above`` for spiking stages only; NaN elsewhere).
    """
    rule = get_rule(rule, percentile=percentile, include_zeros=include_zeros)
    granularity = validation.choice(granularity, "granularity", GRANULARITIES)
    batch_size = validation.integer(batch_size, "batch_size", low=1)
    tail_size = validation.integer(tail_size, "tail_size", low=2)
    return _calibrate(network, calibration, NormalizationArgs(rule, granularity, batch_size),
                      tail_size)


def _calibrate(network: SpikingNetwork, calibration: np.ndarray, args: NormalizationArgs,
               tail_size: int) -> tuple[dict, dict]:
    """:func:`calibrate` with its arguments already checked and resolved."""
    _assert_resolved(args)
    rule, granularity, batch_size = args.rule, args.granularity, args.batch_size
    calibration = network.check_input(calibration, what="calibration data")
    order = rule.order_statistic()
    quantile, nonzero_only = order if order is not None else (1.0, True)
    n = len(calibration)
    summaries = []
    for stage in network.stages:
        groups = stage.output_shape[-1] if granularity == "channel" and stage.spiking else 1
        per_group = int(n * np.prod(stage.output_shape)) // groups
        keep = min(quantiles.tail_needed(per_group, quantile), max(tail_size // groups, 2))
        own = measured(stage)
        summaries.append(_StageSummary(stage, groups=groups, size=keep * groups,
                                       nonzero_only=nonzero_only,
                                       keep_all=own and order is None))
    for outs in _outputs(network, calibration, batch_size):
        for summary, values in zip(summaries, outs, strict=True):
            summary.add(values)

    own = {i: s for i, s in enumerate(summaries) if measured(s.stage)}
    lambdas = {i: np.full(s.groups, np.nan) for i, s in own.items()}
    if order is None:
        for i, s in own.items():
            for g in range(s.groups):
                lambdas[i][g] = _checked(rule.scale, s, s.group_values(g))
    else:
        _select(network, calibration, batch_size, own, lambdas, quantile, nonzero_only, rule)

    scales = assign_scales(network, lambda i, stage: (
        float(lambdas[i][0]) if granularity == "layer" else lambdas[i]))
    stats = _statistics(network, calibration, batch_size, summaries, scales)
    return scales, stats


def _checked(function: Callable, summary: _StageSummary, *args: Any) -> float:
    try:
        return function(*args)
    except ValueError as err:
        raise ValueError(f"layer {summary.stage.name!r}: {err}") from None


def _select(network: SpikingNetwork, calibration: np.ndarray, batch_size: int, own: dict,
            lambdas: dict, quantile: float, nonzero_only: bool,
            rule: NormalizationRule) -> None:
    """Fill ``lambdas`` with the exact quantile of every group, from the kept top values or,
    where they do not decide it, with more passes
    (:class:`snnlib.normalize.quantiles.RadixSelect`)."""
    pending = {}
    for i, s in own.items():
        targets = []
        for g in range(s.groups):
            if s.top.count[g] == 0 or not s.top.max[g] > 0:
                lambdas[i][g] = 1.0  # a silent layer or channel keeps its weights
                continue
            value = s.top.quantile(g, quantile)
            if value is None:
                lo, hi, _ = quantiles.ranks(int(s.top.count[g]), quantile)
                targets += [(g, lo), (g, hi)]
            else:
                lambdas[i][g] = _checked(_positive, s, rule, value, s.top.max[g])
        if targets:
            pending[i] = quantiles.RadixSelect(targets, s.top.dtype, groups=s.groups,
                                               nonzero_only=nonzero_only)
    while pending and not all(select.done for select in pending.values()):
        for outs in _outputs(network, calibration, batch_size):
            for i, select in pending.items():
                select.add(outs[i])
        for select in pending.values():
            select.end_pass()
    for i, select in pending.items():
        s = own[i]
        for g in sorted({target[0] for target in select.targets}):
            lo, hi, gamma = quantiles.ranks(int(s.top.count[g]), quantile)
            value = quantiles.interpolate(select.value(g, lo), select.value(g, hi), gamma)
            lambdas[i][g] = _checked(_positive, s, rule, value, s.top.max[g])


def _positive(rule: NormalizationRule, value: float, largest: float) -> float:
    """An order statistic as lambda: the largest value where it is not positive (a percentile
    over values that are mostly zero), then checked."""
    return rule.checked(value if value > 0 else largest)


def _statistics(network: SpikingNetwork, calibration: np.ndarray, batch_size: int,
                summaries: list, scales: dict) -> dict[str, dict]:
    """max, fraction_nonzero and (spiking stages) fraction_above lambda, per stage; the last
    counted from the kept top values, or in one more pass where they do not decide it."""
    above: dict[int, float | None] = {}
    for i, s in enumerate(summaries):
        if s.top is None:
            continue
        scale = np.broadcast_to(np.asarray(scales[s.stage.name], np.float64), (s.groups,))
        if s.values is not None:  # every value was kept (a rule without an order statistic)
            counts = [np.count_nonzero(s.group_values(g) > scale[g]) for g in range(s.groups)]
        else:
            counts = [s.top.count_above(g, float(scale[g])) for g in range(s.groups)]
        above[i] = None if None in counts else float(sum(counts))
    missing = [i for i, value in above.items() if value is None]
    if missing:
        totals = dict.fromkeys(missing, 0)
        for outs in _outputs(network, calibration, batch_size):
            for i in missing:
                scale = np.asarray(scales[summaries[i].stage.name], np.float32)
                totals[i] += int(np.count_nonzero(outs[i] > scale))
        above.update(totals)
    stats = {}
    for i, s in enumerate(summaries):
        stats[s.stage.name] = dict(
            max=s.max, fraction_nonzero=s.nonzero / s.total,
            fraction_above=above[i] / s.total if i in above else float("nan"))
    return stats


def normalize(network: SpikingNetwork, calibration: np.ndarray, *,
              method: str | Callable | NormalizationRule = "percentile",
              percentile: float = 99.9, include_zeros: bool = False,
              batch_size: int = 256, granularity: str = "layer") -> SpikingNetwork:
    """Normalize a converted network in place with data-based lambdas.

    Parameters
    ----------
    network : SpikingNetwork
        From :func:`snnlib.convert.convert` without normalization.
    calibration : ndarray, shape (n,) + input shape
        Inputs in the model's units (floating point: images in [0, 1] for the book's models);
        not empty, finite. Memory does not grow with ``n`` for "max", "percentile" and other
        rules with an order statistic (see the module's docstring).
    method : {"max", "percentile"}, callable or NormalizationRule
        See :func:`snnlib.convert.convert` and :func:`get_rule`. Required: to keep the Keras
        weights, do not call this.
    percentile : float
        In (0, 100]; used by "percentile".
    include_zeros : bool
        Percentile over all activations (sinabs) instead of the non-zero ones (SNN Toolbox).
    batch_size : int
        Examples per forward pass (memory grows with it).
    granularity : {"layer", "channel"}
        One lambda per layer (default), or one per output channel of each spiking layer (see
        the module's docstring).

    Returns
    -------
    SpikingNetwork
        The same network, with ``scale`` and ``stats`` set on each stage, ``normalization``
        (the rule's name) and ``granularity`` recorded.
    """
    from snnlib.network import SpikingNetwork

    if not isinstance(network, SpikingNetwork):
        raise TypeError(f"network must be a SpikingNetwork (from snnlib.convert), got "
                        f"{type(network).__name__}")
    if method is None:
        raise validation.ArgumentError(
            f"method=None: normalize needs a rule ({_choices()}); to keep the Keras weights, "
            "do not call normalize")
    args = check_normalization_args(method, calibration, percentile, include_zeros=include_zeros,
                                    batch_size=batch_size, granularity=granularity)
    return apply_normalization(network, calibration, args)


def _assert_resolved(args: NormalizationArgs) -> None:
    """Internal steps take resolved arguments (:func:`check_normalization_args`'s; a
    :class:`NormalizationArgs` checks its granularity and batch size when it is made), with a
    rule to calibrate for."""
    assert isinstance(args, NormalizationArgs), args
    assert isinstance(args.rule, NormalizationRule), args.rule


def apply_normalization(network: SpikingNetwork, calibration: np.ndarray,
                        args: NormalizationArgs) -> SpikingNetwork:
    """Normalize ``network`` in place with arguments :func:`check_normalization_args` resolved.

    The step behind :func:`normalize` and ``convert(..., normalization=...)``, which check
    their arguments once and pass the resolved rule down; here only the network is checked
    (not quantized, not normalized already) and the calibration data against its input shape.

    Parameters
    ----------
    network : SpikingNetwork
        Converted, not yet normalized.
    calibration : ndarray, shape (n,) + input shape
        Calibration inputs.
    args : NormalizationArgs
        From :func:`check_normalization_args`, with a rule (not None).

    Returns
    -------
    SpikingNetwork
        ``network``, as :func:`normalize` returns it.
    """
    if args.rule is None:
        raise validation.ArgumentError("NormalizationArgs.rule is None: nothing to normalize with")
    if getattr(network, "quantization", None) is not None:
        raise ValueError("this network is quantized: convert the model again, normalize that "
                         "network, then quantize it (a chip stores the normalized weights)")
    if any(np.any(np.asarray(stage.scale) != 1.0) for stage in network.stages):
        raise ValueError("this network is already normalized; convert the model again")
    scales, stats = _calibrate(network, calibration, args, quantiles.TAIL_SIZE)
    apply_scales(network, scales)
    for stage in network.stages:
        stage.stats = stats[stage.name]
    network.normalization = args.rule.name
    network.granularity = args.granularity
    return network


SPIKE_CONVENTIONS = ("unit", "threshold")


def threshold_balancing(lambdas: Sequence[float], spikes: str = "unit") -> list[dict]:
    """Thresholds that do what weight normalization does, keeping the trained weights.

    Weight normalization (Diehl et al. 2015; Rueckauer et al. 2017) rescales
    ``W_l <- W_l lambda_{l-1} / lambda_l`` and ``b_l <- b_l / lambda_l`` under a threshold of 1.
    The same spike trains come from the unchanged weights with other thresholds; which ones
    depends on what a spike carries:

    - ``spikes="unit"`` (each spike adds ``W`` to its targets: Diehl et al. 2015, Nengo's and
      NengoDL's spiking neurons up to their amplitude): layer l needs the threshold
      ``lambda_l / lambda_{l-1}`` (``lambda_1`` for the first layer) and its bias divided by
      ``lambda_{l-1}``. In NengoDL terms, gain ``s_l = 1 / lambda_l`` with amplitude ``1 / s_l``
      is a threshold of ``s_{l-1} / s_l``, not ``1 / s_l``: a threshold of ``lambda_l`` in every
      layer with unit spikes would change each layer's rate by the factor ``lambda_{l-1}``.
    - ``spikes="threshold"`` (each spike carries its neuron's threshold value: SNN Toolbox's
      INI simulator, whose ``linear_activation`` returns ``v_thresh`` per spike; the
      threshold-balancing papers since Sengupta et al. 2019): layer l's threshold is ``lambda_l``
      and the bias is unchanged; the weights and biases stay as trained.

    Either way the rate of layer l's neurons is ``a_l / lambda_l`` (``a_l`` the ANN's
    activation), as after weight normalization; with lambdas that are powers of two the three
    forms give bit-identical spike trains (``tests/test_normalize.py``).

    Parameters
    ----------
    lambdas : sequence of float
        lambda_1 ... lambda_L of the spiking layers in order (positive; per-layer values as
        :func:`normalize` stores them in ``stage.scale``).
    spikes : {"unit", "threshold"}
        What one spike adds to its targets' input: ``W`` or ``W * threshold``.

    Returns
    -------
    list of dict
        Per layer: ``threshold`` and ``bias_factor`` (multiply the trained bias by it).
    """
    if spikes not in SPIKE_CONVENTIONS:
        raise validation.ArgumentError(f"spikes={spikes!r}; use one of {SPIKE_CONVENTIONS} "
                                       "('unit': a spike adds W; 'threshold': a spike adds W "
                                       "times its neuron's threshold)")
    values = [validation.real(value, f"lambdas[{i}]", low=0, low_open=True,
                              hint="a positive normalization factor")
              for i, value in enumerate(lambdas)]
    if not values:
        raise validation.ArgumentError("lambdas is empty: give one lambda per spiking layer")
    previous = [1.0] + values[:-1]
    if spikes == "threshold":
        return [{"threshold": value, "bias_factor": 1.0} for value in values]
    return [{"threshold": value / before, "bias_factor": 1.0 / before}
            for value, before in zip(values, previous, strict=True)]
