"""Merging layers into stages: ReLU, affine maps (batch normalization, rescaling), the readout."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from snnlib.convert.builder import Builder
from snnlib.network import SpikingNetwork, Stage
from snnlib.network.ops import (
    AffineOp,
    Conv1DOp,
    Conv2DOp,
    DenseOp,
    IdentityOp,
    ReshapeOp,
    same_padding,
)

__all__ = []  # internal: its names are used by snnlib's own modules only

layers = tf.keras.layers


# --------------------------------------------------------------------------------------------
# Merging layers into stages: ReLU, affine maps (batch normalization, rescaling), the readout
# --------------------------------------------------------------------------------------------

def add_relu(builder: Builder, name: str) -> None:
    """Give the stage the ReLU reads neurons, or add a stage of its own for them.

    The ReLU merges into the stage it reads when that stage has no neurons and no other layer
    reads it. After neurons it adds an identity stage (its input is already rectified: the
    lambda carries through). After a linear stage that other layers also read (a graph), it
    adds a per-channel map of ones with neurons: a stage with weights, so that its lambda is
    measured on its own activations and normalization rescales what enters it.
    """
    last = builder.last
    if last is not None and not last.spiking:
        last.activation = "relu"
        last.name = name  # the neurons belong to the ReLU layer, as in nengo_dl
        last.keras_layers.append(name)
        return
    reads = builder.reading[0] if len(builder.reading) == 1 else None
    if reads is not None and not reads.spiking:
        ones = np.ones(builder.shape[-1], dtype=np.float32)
        builder.add(name, AffineOp(ones), builder.shape, activation="relu", kernel=ones)
    else:
        builder.add(name, IdentityOp(), builder.shape, activation="relu")


def add_affine(builder: Builder, name: str, layer_type: str, scale: np.ndarray,
               shift: np.ndarray) -> None:
    """A per-channel affine map ``scale * x + shift`` (batch normalization, rescaling).

    Folded into the weights of the stage before it when that stage is linear (a Dense or
    Conv2D without activation, or another affine stage): exact. Otherwise added as an affine
    stage, which :func:`finish` folds into the layer after it where that is exact.
    """
    builder.layer_types[name] = layer_type
    last = builder.last
    if (last is not None and not last.spiking and last.has_weights
            and isinstance(last.op, (DenseOp, Conv2DOp, Conv1DOp, AffineOp))):
        fold_backward(last, scale, shift, name)
        builder.note(f"{layer_type} {name!r} is folded into the weights of "
                     f"{last.keras_layers[0]!r} before it")
        return
    kernel = np.asarray(scale, dtype=np.float32)
    builder.add(name, AffineOp(kernel), builder.shape, bias=np.asarray(shift, np.float32),
                kernel=kernel)


def fold_backward(stage: Stage, scale: np.ndarray, shift: np.ndarray, name: str) -> None:
    """Fold ``scale * x + shift`` into the weights of the linear ``stage`` it follows."""
    bias = stage.bias_original if stage.bias_original is not None else 0.0
    stage.kernel_original = (stage.kernel_original * scale).astype(np.float32)
    stage.bias_original = (np.asarray(bias, np.float64) * scale + shift).astype(np.float32)
    stage.op = stage.op.with_kernel(stage.kernel_original)
    stage.bias = stage.bias_original
    stage.name = name
    stage.keras_layers.append(name)


def _forward_target(stages: list[Stage], index: int) -> tuple[int | None, str]:
    """The stage an affine stage can be folded into, or None and why not."""
    affine = stages[index]
    for j in range(index + 1, len(stages)):
        stage = stages[j]
        if isinstance(stage.op, DenseOp) or (
                isinstance(stage.op, Conv2DOp) and stage.op.groups == 1
                and tuple(stage.op.dilation) == (1, 1)):
            return j, ""
        if not (isinstance(stage.op, (ReshapeOp, IdentityOp)) and stage.bias is None
                and not stage.spiking):
            return None, (f"{stage.name!r} ({stage.kind}) follows it, not a Dense or a plain "
                          "Conv2D layer (no groups, no dilation)")
    return None, f"nothing with weights follows {affine.name!r}"


def fold_forward(stages: list[Stage], index: int) -> str | None:
    """Fold the affine stage ``stages[index]`` into the Dense/Conv2D after it, where exact.

    Returns the Keras layer it was folded into (and removes it from ``stages``), or raises
    ``ValueError`` saying why it cannot be folded exactly.
    """
    affine = stages[index]
    target, why = _forward_target(stages, index)
    if target is None:
        raise ValueError(why)
    stage, between = stages[target], target > index + 1
    scale = np.asarray(affine.kernel_original, np.float64)
    shift = np.asarray(affine.bias_original, np.float64)
    kernel = np.asarray(stage.kernel_original, np.float64)
    bias = np.zeros(kernel.shape[-1]) if stage.bias_original is None else \
        np.asarray(stage.bias_original, np.float64)
    if isinstance(stage.op, DenseOp):
        n_in = kernel.shape[0]
        if len(stage.input_shape) == 1:  # flattened: one scale per input element
            scale = np.broadcast_to(scale, affine.output_shape).reshape(n_in)
            shift = np.broadcast_to(shift, affine.output_shape).reshape(n_in)
        elif between or stage.input_shape[-1] != scale.shape[-1]:
            raise ValueError(f"{stage.name!r} is a Dense layer on a reshaped "
                             f"{len(stage.input_shape)}-D input")
        new_kernel, new_bias = kernel * scale[:, None], bias + shift @ kernel
    else:
        if between:
            raise ValueError(f"a reshape lies between it and {stage.name!r}")
        op = stage.op
        (kh, kw), (sh, sw) = kernel.shape[:2], op.strides
        h, w = stage.input_shape[:2]
        pads = (same_padding(h, kh, sh) + same_padding(w, kw, sw)) if op.padding == "same" \
            else (0, 0, 0, 0)
        if any(pads) and np.any(shift != 0):
            raise ValueError(f"the 'same' padding of {stage.name!r} pads its output with zeros, "
                             "not with its offset, so folding it there would not be exact")
        new_kernel = kernel * scale[None, None, :, None]
        new_bias = bias + np.einsum("hwio,i->o", kernel, shift)
    stage.kernel_original = new_kernel.astype(np.float32)
    stage.bias_original = new_bias.astype(np.float32)
    stage.op = stage.op.with_kernel(stage.kernel_original)
    stage.bias = stage.bias_original
    target_layer = stage.keras_layers[0]
    stage.keras_layers[:0] = affine.keras_layers
    del stages[index]  # shape-preserving: the next stage's input shape is unchanged
    return target_layer


def finish(builder: Builder) -> None:
    """After the converters: fold affine stages forward where exact, mark the readout, and
    name each stage's inputs (a graph's joins and fan-outs)."""
    stages = builder.stages
    chain = builder.is_chain()  # folding forward follows the list: only along a chain
    index = 0
    while index < len(stages):
        stage = stages[index]
        if isinstance(stage.op, AffineOp) and not stage.spiking:
            if not chain:
                builder.note(f"{builder.layer_types.get(stage.name, 'affine map')} "
                             f"{stage.name!r} is kept as a non-spiking per-channel affine "
                             "stage (scale and shift): in a graph it is not folded forward")
                index += 1
                continue
            kind = builder.layer_types.get(stage.name, "affine map")
            try:
                target = fold_forward(stages, index)
            except ValueError as err:
                after_neurons = any(s.spiking for s in stages[:index])
                builder.note(f"{kind} {stage.name!r} is kept as a non-spiking per-channel "
                             f"affine stage (scale and shift): {err}" + (
                                 "; analog values, not spikes, reach the next layer, and the "
                                 "event-driven engine does not run it" if after_neurons else
                                 "; it runs on the input, before the first neurons"))
            else:
                builder.note(f"{kind} {stage.name!r} is folded into the weights of "
                             f"{target!r} after it")
                continue
        index += 1
    if chain:  # folding removed stages from the list: it is still a chain
        for stage in stages:
            stage.inputs = ()
    else:
        builder.link()
    readout = _readout(stages, chain, builder.input_name)
    if not readout:
        return
    for stage in readout:
        stage.readout = True
    rectified = [stage for stage in readout if stage.activation == "relu"]
    if rectified:
        builder.note(f"the output layer {rectified[0].keras_layers[0]!r} has a ReLU: it is a "
                     "non-spiking readout (lambda = 1, never normalized) whose ReLU is applied "
                     "to its output at every step, as Keras applies it")


def _readout(stages: list[Stage], chain: bool, input_name: str) -> list[Stage]:
    """The readout: in a chain the last stage with weights and the stages after it; in a graph
    every stage with weights that has none downstream, and every stage downstream of those."""
    weighted = [i for i, stage in enumerate(stages) if stage.has_weights]
    if not weighted:
        return []
    if chain:
        return stages[weighted[-1]:]
    network = SpikingNetwork(stages, (), input_name=input_name)  # only its graph is used
    sources = network.sources()
    downstream: list[set[int]] = [set() for _ in stages]
    for i in reversed(range(len(stages))):
        for j in sources[i]:
            if j >= 0:
                downstream[j] |= downstream[i] | {i}
    last = {i for i in weighted if not any(stages[k].has_weights for k in downstream[i])}
    chosen = set(last).union(*(downstream[i] for i in last))
    return [stages[i] for i in sorted(chosen)]


def readout_note(builder: Builder) -> str | None:
    """How the readout differs from the Keras output layer (None: it does not)."""
    if builder.dropped_softmax is not None:
        return (f"logits of {builder.dropped_softmax!r} (its softmax is dropped; the predicted "
                "class is unchanged)")
    rectified = [s for s in builder.stages if s.readout and s.activation == "relu"]
    if rectified:
        return (f"ReLU of {rectified[0].keras_layers[0]!r}, non-spiking (lambda = 1; its ReLU "
                "applied at every step, as Keras)")
    return None
