"""Layer types that are refused, each with the reason and the fix (the messages come from one
place)."""
from __future__ import annotations

from typing import ClassVar

import tensorflow as tf

from snnlib.convert.builder import Builder, LayerConverter
from snnlib.convert.registry import register
from snnlib.convert.report import EXTENDING, Problem

__all__ = [
    "RefusedConverter",
    "REFUSED",
]

layers = tf.keras.layers


class RefusedConverter(LayerConverter):
    """A layer type that cannot be converted: registered only to say why, and what to do."""

    supported = False
    reason: ClassVar[str] = ""
    fix: ClassVar[str] = ""

    def problems(self) -> list[Problem]:
        return [self.problem(self.reason, self.fix)]

    def convert(self, builder: Builder) -> None:
        self.fail(self.reason, self.fix)


_SIGNED = ("snnlib's neurons fire for positive currents only (a signed neuron, which also "
           "fires negative spikes, is nengo_dl.SpikingLeakyReLU)")
#: Refused layer types -> (reason, fix).
REFUSED = {
    layers.LeakyReLU: (f"negative outputs (slope alpha below zero): {_SIGNED}",
                       "use ReLU and retrain, or run the model in NengoDL with "
                       "nengo_dl.Converter(model, swap_activations={nengo_dl.LeakyReLU(alpha): "
                       "nengo_dl.SpikingLeakyReLU(alpha)}) (without the swap its neurons are "
                       "rate neurons); both measured in benchmarks/RESULTS.md ('LeakyReLU')"),
    layers.PReLU: (f"negative outputs (a learned slope below zero): {_SIGNED}",
                   "use ReLU and retrain"),
    layers.ELU: ("negative outputs (down to -alpha) need negative spikes",
                 "use ReLU and retrain"),
    layers.ThresholdedReLU: ("a thresholded ReLU is not supported", "use ReLU and retrain"),
    layers.Multiply: ("a product of two paths has no rate equivalent",
                      "remove it and retrain"),
    layers.Maximum: ("a maximum of two paths has no rate equivalent", "remove it and retrain"),
    layers.Minimum: ("a minimum of two paths has no rate equivalent", "remove it and retrain"),
    layers.Lambda: ("a Lambda layer runs Python code that snnlib cannot read",
                    "where a built-in layer computes the same with the same weights, use it "
                    "(a constant factor or offset, e.g. Lambda(lambda x: 2 * x): "
                    "Rescaling(2.0); a reshape: Reshape), rebuild the model with it and copy "
                    "the weights (model.set_weights): no retraining; otherwise write the "
                    f"computation as your own layer class and register a converter "
                    f"({EXTENDING})"),
}
for _keras_type, (_reason, _fix) in REFUSED.items():
    register(_keras_type)(type(f"{_keras_type.__name__}Converter", (RefusedConverter,),
                               {"reason": _reason, "fix": _fix}))
