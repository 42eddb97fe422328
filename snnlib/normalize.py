"""Data-based weight normalization: one factor lambda per layer, measured on calibration data.

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
- the readout (:attr:`snnlib.network.SpikingNetwork.readout_start`: the last stage with weights,
  a ReLU output layer included, and the stages after it): lambda = 1. Its input weights absorb
  lambda_{l-1}, so its output stays in Keras units: the normalized network computes the same
  outputs as the Keras model (rate mode), not outputs / lambda_out. Nothing spikes there, so
  there is nothing to saturate.

ReLU is positively homogeneous (``relu(c z) = c relu(z)`` for c > 0), so in rate mode every
spiking stage outputs exactly its Keras activation divided by lambda_l, and the predictions do
not change.

How lambda_l is measured is a *rule* (:class:`NormalizationRule`), looked up by name in the
table :data:`NORMALIZATIONS` ("max", "percentile"; add one with :func:`register_normalization`),
or given directly as an instance or as a plain callable (activations of one layer -> lambda).
A rule that is an order statistic says which one (:meth:`NormalizationRule.order_statistic`),
so that a calibration with bounded memory can keep only the top of each layer's values.
"""
from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

import numpy as np

if TYPE_CHECKING:
    from snnlib.network import SpikingNetwork


class NormalizationRule:
    """How lambda of one layer is computed from its activations on the calibration set.

    Subclasses set :attr:`name` and implement :meth:`compute`; :meth:`scale` wraps it with the
    rules every normalization shares: a layer with no positive activation gets lambda = 1 (any
    lambda gives zero rates; 1 leaves the weights alone), and the result must be a positive
    finite number. Register a subclass with :func:`register_normalization` to use it by name, or
    pass an instance (or a plain callable) as ``normalization=``.

    Rules that are an order statistic of the activations say so in :meth:`order_statistic`:
    a calibration with bounded memory can then keep only the top tail of each layer's values
    instead of all of them. Other rules receive every value.
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
        scale = float(self.compute(values))
        if not (np.isfinite(scale) and scale > 0):
            raise ValueError(f"normalization {self.name!r} gave lambda = {scale!r}; it must be a "
                             "positive finite number")
        return scale


#: The table of normalization rules: name -> :class:`NormalizationRule` subclass.
NORMALIZATIONS: dict[str, type[NormalizationRule]] = {}
_LOCK = threading.Lock()


def register_normalization(cls: type[NormalizationRule]) -> type[NormalizationRule]:
    """Class decorator: add a rule to :data:`NORMALIZATIONS` under its ``name`` (warns on a
    replacement)."""
    if not (isinstance(cls, type) and issubclass(cls, NormalizationRule)) or not cls.name:
        raise TypeError(f"{cls!r} must be a NormalizationRule subclass with a non-empty name")
    with _LOCK:
        old = NORMALIZATIONS.get(cls.name)
        if old is not None and old is not cls:
            warnings.warn(f"normalization {cls.name!r}: {old.__name__} replaced by "
                          f"{cls.__name__}", stacklevel=2)
        NORMALIZATIONS[cls.name] = cls
    return cls


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
        check_percentile(percentile)
        self.percentile, self.include_zeros = percentile, include_zeros

    @classmethod
    def from_options(cls, *, percentile: float, include_zeros: bool) -> NormalizationRule:
        return cls(percentile, include_zeros)

    def order_statistic(self) -> tuple[float, bool]:
        return self.percentile / 100, not self.include_zeros

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
    return (f"use None, one of {sorted(NORMALIZATIONS)}, a callable (activations of one layer "
            "-> lambda) or a NormalizationRule")


def get_rule(normalization: str | Callable | NormalizationRule, *, percentile: float = 99.9,
             include_zeros: bool = False) -> NormalizationRule:
    """The :class:`NormalizationRule` that ``normalization`` names (or is, or wraps)."""
    if isinstance(normalization, NormalizationRule):
        return normalization
    if isinstance(normalization, str):
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"unknown normalization {normalization!r}; {_choices()}")
        return NORMALIZATIONS[normalization].from_options(percentile=percentile,
                                                          include_zeros=include_zeros)
    if callable(normalization):
        return CallableNormalization(normalization)
    raise ValueError(f"unknown normalization {normalization!r}; {_choices()}")


def check_percentile(percentile: float) -> None:
    """Fail unless ``percentile`` is a number in (0, 100]."""
    if not np.isscalar(percentile) or not 0 < float(percentile) <= 100:
        raise ValueError(f"percentile={percentile!r} must be a number in (0, 100]")


def check_normalization_args(normalization: str | Callable | NormalizationRule | None,
                             calibration: np.ndarray | None, percentile: float) -> None:
    """Fail early, with a clear message, for bad normalization arguments."""
    if normalization is not None:
        get_rule(normalization)
    check_percentile(percentile)
    if normalization is not None and calibration is None:
        raise ValueError(f"normalization={normalization!r} needs calibration data (e.g. a few "
                         "hundred training images): pass calibration=")


def layer_scale(values: np.ndarray, method: str | Callable | NormalizationRule = "percentile",
                percentile: float = 99.9, include_zeros: bool = False) -> float:
    """lambda of one layer from all its activations (1 for a layer that never activates)."""
    return get_rule(method, percentile=percentile, include_zeros=include_zeros).scale(values)


def measure(network: SpikingNetwork, calibration: np.ndarray, batch_size: int = 256
            ) -> dict[str, np.ndarray]:
    """Activations of every stage on the calibration set, in Keras units (before normalization).

    Returns
    -------
    dict
        layer name -> ndarray (n,) + output shape, float32.
    """
    calibration = network.check_input(calibration, what="calibration data")
    _, activations = network.forward(calibration, return_all=True, batch_size=batch_size)
    return activations


def compute_scales(network: SpikingNetwork, activations: dict, *,
                   method: str | Callable | NormalizationRule, percentile: float = 99.9,
                   include_zeros: bool = False) -> dict[str, float]:
    """lambda per stage, following the rules of this module.

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
        layer name -> lambda (float).
    """
    rule = get_rule(method, percentile=percentile, include_zeros=include_zeros)
    scales, previous, readout = {}, 1.0, network.readout_start
    for index, stage in enumerate(network.stages):
        if stage.spiking and stage.has_weights:
            try:
                scale = rule.scale(activations[stage.name])
            except ValueError as err:
                raise ValueError(f"layer {stage.name!r}: {err}") from None
        elif index >= readout:
            scale = 1.0
        else:
            scale = previous
        scales[stage.name] = previous = scale
    return scales


def apply_scales(network: SpikingNetwork, scales: dict[str, float]) -> None:
    """Rescale the weights in place: ``W * lambda_prev / lambda``, ``b / lambda``."""
    previous = 1.0
    for stage in network.stages:
        stage.scale = scales[stage.name]
        if stage.has_weights:
            factor = previous / stage.scale
            # float64 keeps the rescaled weights exact to ~1e-16, as nengo's own float64 math
            kernel = stage.kernel_original.astype(np.float64) * factor
            stage.op = stage.op.with_kernel(kernel)
            if stage.bias_original is not None:
                stage.bias = stage.bias_original.astype(np.float64) / stage.scale
        previous = stage.scale


def statistics(activations: np.ndarray, scale: float) -> dict[str, float]:
    """Largest activation, fraction above lambda (will saturate), fraction non-zero."""
    return dict(max=float(activations.max()), fraction_above=float(np.mean(activations > scale)),
                fraction_nonzero=float(np.mean(activations > 0)))


def normalize(network: SpikingNetwork, calibration: np.ndarray, *,
              method: str | Callable | NormalizationRule = "percentile",
              percentile: float = 99.9, include_zeros: bool = False,
              batch_size: int = 256) -> SpikingNetwork:
    """Normalize a converted network in place with data-based lambdas.

    Parameters
    ----------
    network : SpikingNetwork
        From :func:`snnlib.convert.convert` without normalization.
    calibration : ndarray, shape (n,) + input shape
        Inputs in the model's units (images in [0, 1]); not empty, finite.
    method : {"max", "percentile"}, callable or NormalizationRule
        See :func:`snnlib.convert.convert` and :func:`get_rule`.
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
    rule = get_rule(method, percentile=percentile, include_zeros=include_zeros)
    if any(stage.scale != 1.0 for stage in network.stages):
        raise ValueError("this network is already normalized; convert the model again")
    activations = measure(network, calibration, batch_size)
    scales = compute_scales(network, activations, method=rule)
    for stage in network.stages:
        stage.stats = statistics(activations[stage.name], scales[stage.name])
    apply_scales(network, scales)
    network.normalization = rule.name
    return network
