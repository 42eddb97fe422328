"""Which Keras activations convert to spiking ReLU neurons; why the others do not (the messages)."""
from __future__ import annotations

import tensorflow as tf

__all__ = [
    "RELUS",
    "NEGATIVE_RATES",
    "CLIPPED_REASON",
    "ACTIVATION_FIXES",
    "softmax_note",
]

layers = tf.keras.layers


#: The activation functions converted as ReLU neurons.
RELUS = (tf.keras.activations.relu, tf.nn.relu, tf.keras.backend.relu)

NEGATIVE_RATES = ("negative rates need negative spikes",
             "use ReLU and retrain")
_SMOOTH = ("a spiking neuron's rate is a ReLU of its input current, so this curve has no "
           "rate equivalent", "use ReLU and retrain")
_SATURATING = ("a saturating curve: a spiking neuron's rate is a ReLU of its input current",
               "use ReLU and retrain (at the output, a linear layer trained with "
               "from_logits=True)")
#: Why a clipped ReLU is refused (after "a clipped ReLU (...)").
CLIPPED_REASON = ("snnlib's rate mode (and verify) has no ceiling; a neuron limited to one "
                  "spike per step does saturate, at 1/dt, but that is the clip only where "
                  "lambda = max_value x scale x dt, and with reset by subtraction its voltage "
                  "keeps the excess above the ceiling, which fires later as extra spikes: not "
                  "the same function")
#: Activation name -> (reason, fix), for the messages.
ACTIVATION_FIXES = {
    "relu6": (f"a clipped ReLU (relu6, like ReLU(max_value=6)): {CLIPPED_REASON}",
              "use ReLU without max_value and retrain"),
    "leaky_relu": NEGATIVE_RATES,
    "elu": NEGATIVE_RATES, "selu": NEGATIVE_RATES,
    "gelu": _SMOOTH, "swish": _SMOOTH, "silu": _SMOOTH,
    "softplus": _SMOOTH, "exponential": _SMOOTH, "mish": _SMOOTH,
    "sigmoid": _SATURATING, "hard_sigmoid": _SATURATING, "tanh": _SATURATING,
    "softsign": _SATURATING,
    "soft_lif": ("a LIF neuron's rate curve (snnlib.soft_lif, nengo_dl.SoftLIFRate): the "
                 "converted network's rate mode computes ReLU, so verify() would not match",
                 "copy the weights into the same model built with ReLU (model.set_weights), "
                 "convert that, and simulate with neuron='lif' at the scale the curve was "
                 "trained for, with a synapse (chapter 7)"),
}


def softmax_note(name: str) -> str:
    """The note of a final softmax dropped from layer ``name``."""
    return (f"the softmax of {name!r} is dropped: the readout outputs its logits (the "
            "predicted class, the argmax, is unchanged); verify() compares with the Keras "
            "model's logits")
