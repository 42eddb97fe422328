"""The converted network: :mod:`~snnlib.network.graph` (:class:`SpikingNetwork`, a graph of
stages) and :mod:`~snnlib.network.ops` (the linear operations, one class per layer type)."""
from snnlib.network.graph import NormalizationReport, SpikingNetwork, Stage
from snnlib.network.ops import (
    AddOp,
    AffineOp,
    AvgPool2DOp,
    ConcatOp,
    Conv2DOp,
    DenseOp,
    IdentityOp,
    JoinOp,
    Op,
    ReshapeOp,
    same_padding,
)

__all__ = ["AddOp", "AffineOp", "AvgPool2DOp", "ConcatOp", "Conv2DOp", "DenseOp", "IdentityOp",
           "JoinOp", "NormalizationReport", "Op", "ReshapeOp", "SpikingNetwork", "Stage",
           "same_padding"]
