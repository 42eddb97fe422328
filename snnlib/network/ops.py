"""Layer types: the linear operations of a converted network, one class each.

Each op maps a batch ``(batch, *in_shape)`` to ``(batch, *out_shape)`` (channels last, no bias)
and knows everything the rest of the library asks about it:

- its forward pass (``op(x)``);
- :meth:`Op.fan_out`: how many synapses each input element drives (exact with stride and
  padding), from which :meth:`Op.macs` (multiply-accumulates of the ANN) and the synaptic
  operations of a spiking run (:mod:`snnlib.analysis.measures`) are counted;
- :meth:`Op.spatial_reach`, for fan-outs through several ops with no neurons in between (average
  pooling before a convolution);
- :meth:`Op.sparse`: how it appears to the event-driven engine, a linear map computed from the
  spikes alone (None: that engine cannot use it, and the dense engine runs instead);
- :attr:`Op.arithmetic`: False for ops that only move elements (reshape, identity), which cost
  no operations and pass spikes through unchanged;
- :attr:`Op.one_to_one`: each input element reaches exactly one output element (reshape,
  identity, a per-channel affine map), so counting connections through it needs no geometry.

Adding a layer type = one op class here (or in your code) + one converter registered with
:func:`snnlib.convert.register` (see the README, "Extending snnlib"). Everything is NumPy,
batched over the first axis.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

__all__ = [
    "same_padding",
    "spatial_fan_out",
    "Op",
    "DenseOp",
    "Conv2DOp",
    "Conv1DOp",
    "AvgPool2DOp",
    "ReshapeOp",
    "IdentityOp",
    "ReshapeLayerOp",
    "AffineOp",
    "ZeroPad2DOp",
    "AvgPool1DOp",
    "UpSampling2DOp",
    "Cropping2DOp",
    "MaxPool2DOp",
    "MaxPoolGate",
    "GlobalMaxPool2DOp",
    "GlobalAvgPool2DOp",
    "GlobalAvgPool1DOp",
    "JoinOp",
    "AddOp",
    "ConcatOp",
    "SparseLinear",
    "SparseEvents",
    "SparsePool",
    "SparseDense",
    "SparseConv2D",
]


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "same" padding along one axis: (before, after), extra cell after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _windows(x: np.ndarray, kernel_size: tuple, strides: tuple, padding: str) -> np.ndarray:
    """Sliding windows (batch, out_h, out_w, channels, kh, kw) of an NHWC batch."""
    (kh, kw), (sh, sw) = kernel_size, strides
    if padding == "same":
        pads = (same_padding(x.shape[1], kh, sh), same_padding(x.shape[2], kw, sw))
        x = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))
    return windows[:, ::sh, ::sw]


def spatial_fan_out(ops: list[Op], input_shape: tuple) -> np.ndarray:
    """Distinct targets of each element of an (h, w, c) input through a chain of spatial ops.

    Brute force over positions with a single channel (structure only): one one-hot image per
    position, pushed through :meth:`Op.spatial_reach` of each op; the output positions reached,
    times the last op's :attr:`Op.targets_per_position` (a convolution's output channels).
    Exact with padding and stride; connections count whether their weight is zero or not.

    A 1-D input (length, c) is probed as (1, length, c): 1-D ops reach through their 2-D form.

    Returns
    -------
    ndarray of int64, ``input_shape``
    """
    shape = (1,) + tuple(input_shape) if len(input_shape) == 2 else tuple(input_shape)
    h, w = shape[:2]
    probe = np.eye(h * w, dtype=np.float32).reshape(h * w, h, w, 1)
    for op in ops:
        probe = op.spatial_reach(probe)
    reached = (probe.reshape(h * w, -1) > 0).sum(axis=1).reshape(h, w)
    positions = reached * ops[-1].targets_per_position
    return np.broadcast_to(positions[..., None], shape).reshape(input_shape).astype(np.int64)


class Op:
    """Base class of a linear operation (no bias). Subclasses implement at least ``__call__``
    and :meth:`fan_out`; the rest has safe defaults.

    Class attributes
    ----------------
    kind : str
        Short name of the layer type ("dense", "conv2d", ...).
    arithmetic : bool
        False for ops that only move elements (no operations, spikes pass through).
    all_to_all : bool
        Every input element drives every output (dense): its fan-out is the number of outputs
        whatever comes before it.
    spatial : bool
        Acts on (h, w, c) inputs the same way in every channel, so that fan-outs through it can
        be counted position by position (:meth:`spatial_reach`).
    one_to_one : bool
        Each input element reaches exactly one output element (any input shape).
    channelwise : bool
        Each output channel is computed from the same input channel only (global pooling), so
        per-channel lambdas carry through it even though it is not :attr:`spatial`.
    join : bool
        The op takes a list of inputs (:class:`JoinOp`: ``Add``, ``Concatenate``).
    gated : bool
        On spikes the op keeps state across time steps (:class:`MaxPool2DOp`): the simulator
        calls :meth:`gate` once per run and that gate on each step's input, instead of the op.
    """

    kind: ClassVar[str] = "op"
    arithmetic: ClassVar[bool] = True
    all_to_all: ClassVar[bool] = False
    spatial: ClassVar[bool] = False
    one_to_one: ClassVar[bool] = False
    channelwise: ClassVar[bool] = False
    join: ClassVar[bool] = False
    gated: ClassVar[bool] = False

    def __call__(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} must define __call__ (its forward pass)")

    def fan_out(self, input_shape: tuple) -> np.ndarray:
        """Synapses each element of one input example drives, int array of ``input_shape``."""
        raise NotImplementedError(
            f"{type(self).__name__} does not define fan_out(input_shape), so its synaptic "
            "operations and multiply-accumulates cannot be counted")

    def macs(self, input_shape: tuple) -> int:
        """Operations of one forward pass per example: its connections (0 if not arithmetic)."""
        return int(self.fan_out(input_shape).sum()) if self.arithmetic else 0

    @property
    def targets_per_position(self) -> int:
        """Targets per output position reached (a convolution's output channels; else 1)."""
        return 1

    def spatial_reach(self, probe: np.ndarray) -> np.ndarray:
        """Structure of the op on single-channel probes (n, h, w, 1): which positions it reaches.

        Only for :attr:`spatial` ops; nonzero outputs mark the positions each probe reaches.
        """
        raise NotImplementedError(f"{type(self).__name__} is not a spatial op")

    def sparse(self, input_shape: tuple, output_shape: tuple) -> SparseLinear | None:
        """The op as the event-driven engine computes it from spikes (None: not supported)."""
        return None

    def sparse_events(self, input_shape: tuple, output_shape: tuple) -> SparseEvents | None:
        """The op as a map of sparse events to sparse events, for an op without weights that
        sits between a spiking layer and the next weighted op (None: not supported).

        Ops that only move elements in C order (reshape, identity) pass events on unchanged;
        average pooling maps each event to the pooled cells it falls in.
        """
        return None if self.arithmetic else SparseEvents(input_shape, output_shape)

    def with_kernel(self, kernel: np.ndarray) -> Op:
        """A copy with another kernel (normalization, precision); only for ops with a kernel."""
        if not hasattr(self, "kernel"):
            raise TypeError(f"{type(self).__name__} has no kernel")
        return dataclasses.replace(self, kernel=kernel)

    def channel_factors(self, into: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Factors that rescale the kernel per input and output channel.

        ``kernel * channel_factors(into, out)`` is the kernel of the op whose input channel
        ``i`` is multiplied by ``into[i]`` and whose output channel ``o`` is divided by
        ``out[o]`` (channel-wise normalization, a per-channel map folded in). The kernel's last
        two axes are (input channels of a group, output channels); output channel ``o`` reads
        the input channels of group ``o // (c_out / groups)`` (one group: all of them).

        Parameters
        ----------
        into : ndarray, shape (input channels,)
        out : ndarray, shape (output channels,)

        Returns
        -------
        ndarray, shape (input channels per group, output channels)
        """
        if not hasattr(self, "kernel"):
            raise TypeError(f"{type(self).__name__} has no kernel")
        per_group, c_out = self.kernel.shape[-2:]
        groups = getattr(self, "groups", 1)
        group = np.arange(c_out) // (c_out // groups)
        channel = group[None, :] * per_group + np.arange(per_group)[:, None]
        return np.asarray(into, np.float64)[channel] / np.asarray(out, np.float64)[None, :]

    @property
    def in_channels(self) -> int:
        """Input channels (units of a dense layer) the kernel reads."""
        return int(self.kernel.shape[-2]) * getattr(self, "groups", 1)

    @property
    def out_channels(self) -> int:
        """Output channels (units of a dense layer)."""
        return int(self.kernel.shape[-1])


@dataclass
class DenseOp(Op):
    """``x @ kernel``; kernel shape (n_in, n_out) as in Keras."""

    kernel: np.ndarray

    kind: ClassVar[str] = "dense"
    all_to_all: ClassVar[bool] = True

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return x @ self.kernel.astype(x.dtype, copy=False)

    def fan_out(self, input_shape: tuple) -> np.ndarray:
        """``n_out`` for every input element."""
        return np.full(input_shape, self.kernel.shape[1], dtype=np.int64)

    def sparse(self, input_shape: tuple, output_shape: tuple) -> SparseLinear:
        return SparseDense(self, input_shape, output_shape)


@dataclass
class Conv2DOp(Op):
    """2-D convolution (cross-correlation, as Keras), NHWC.

    The kernel is (kh, kw, c_in / groups, c_out), as Keras' ``Conv2D``: with ``groups`` > 1
    output channel ``o`` reads only the input channels of group ``o // (c_out / groups)``. A
    ``DepthwiseConv2D`` with depth multiplier m is the grouped convolution with groups = c_in
    and its kernel (kh, kw, c_in, m) reshaped to (kh, kw, 1, c_in * m) (the same output order).
    ``dilation`` spaces the kernel's taps (``dilation_rate``).
    """

    kernel: np.ndarray
    strides: tuple
    padding: str
    dilation: tuple = (1, 1)
    groups: int = 1

    kind: ClassVar[str] = "conv2d"
    spatial: ClassVar[bool] = True

    def __call__(self, x: np.ndarray) -> np.ndarray:
        # TensorFlow's CPU convolution is ~4x faster than NumPy im2col here (same padding rules)
        import tensorflow as tf

        kernel = self.kernel.astype(x.dtype, copy=False)
        kh, kw, per_group, c_out = kernel.shape
        padding, dilation = self.padding.upper(), tuple(self.dilation)
        if self.groups == 1:
            return tf.nn.conv2d(x, kernel, strides=self.strides, padding=padding,
                                dilations=dilation).numpy()
        if per_group == 1:  # depthwise: one input channel per group
            return tf.nn.depthwise_conv2d(
                x, kernel.reshape(kh, kw, self.groups, c_out // self.groups),
                strides=(1,) + tuple(self.strides) + (1,), padding=padding,
                dilations=dilation).numpy()
        # TensorFlow 2.12 has no grouped convolution on CPU: one convolution per group
        per_out = c_out // self.groups
        return np.concatenate([
            tf.nn.conv2d(x[..., g * per_group:(g + 1) * per_group],
                         kernel[..., g * per_out:(g + 1) * per_out], strides=self.strides,
                         padding=padding, dilations=dilation).numpy()
            for g in range(self.groups)], axis=-1)

    def numpy_conv(self, x: np.ndarray) -> np.ndarray:
        """The same convolution in NumPy (sliding windows + tensordot), for checking; only
        without dilation and groups."""
        if tuple(self.dilation) != (1, 1) or self.groups != 1:
            raise NotImplementedError("numpy_conv has no dilation or groups")
        windows = _windows(x, self.kernel.shape[:2], self.strides, self.padding)
        # windows are (..., c_in, kh, kw): put the kernel's axes in that order
        kernel = np.transpose(self.kernel, (2, 0, 1, 3)).astype(x.dtype, copy=False)
        return np.tensordot(windows, kernel, axes=([3, 4, 5], [0, 1, 2]))

    def fan_out(self, input_shape: tuple) -> np.ndarray:
        """Output positions whose window contains the element, times the output channels that
        read its channel (all of them, or those of its group)."""
        return spatial_fan_out([self], input_shape)

    @property
    def targets_per_position(self) -> int:
        return int(self.kernel.shape[-1]) // self.groups

    def spatial_reach(self, probe: np.ndarray) -> np.ndarray:
        ones = np.ones(self.kernel.shape[:2] + (1, 1), dtype=np.float32)
        return Conv2DOp(ones, self.strides, self.padding, self.dilation)(probe)

    def sparse(self, input_shape: tuple, output_shape: tuple) -> SparseLinear | None:
        if tuple(self.dilation) != (1, 1) or self.groups != 1:
            return None  # the dense engine runs it
        return SparseConv2D(self, input_shape, output_shape)


@dataclass
class Conv1DOp(Op):
    """1-D convolution over (length, channels) examples, as Keras' ``Conv1D``.

    The kernel is (k, c_in / groups, c_out). It runs as the 2-D convolution of a height-1
    image (:meth:`as_2d`); ``padding="causal"`` pads ``(k - 1) * dilation`` zeros before the
    sequence, then convolves "valid", as Keras.
    """

    kernel: np.ndarray
    strides: tuple
    padding: str
    dilation: tuple = (1,)
    groups: int = 1

    kind: ClassVar[str] = "conv1d"
    spatial: ClassVar[bool] = True

    def as_2d(self) -> Conv2DOp:
        """The same convolution on (1, length, c) examples (causal padding done outside)."""
        padding = "valid" if self.padding == "causal" else self.padding
        return Conv2DOp(self.kernel[None], (1,) + tuple(self.strides), padding,
                        (1,) + tuple(self.dilation), self.groups)

    def _pad_causal(self, x: np.ndarray, axis: int) -> np.ndarray:
        if self.padding != "causal":
            return x
        pad = [(0, 0)] * x.ndim
        pad[axis] = ((self.kernel.shape[0] - 1) * self.dilation[0], 0)
        return np.pad(x, pad)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.as_2d()(self._pad_causal(x, 1)[:, None])[:, 0]

    def fan_out(self, input_shape: tuple) -> np.ndarray:
        """Output positions whose window contains the element, times the output channels that
        read its channel."""
        return spatial_fan_out([self], input_shape)

    @property
    def targets_per_position(self) -> int:
        return int(self.kernel.shape[-1]) // self.groups

    def spatial_reach(self, probe: np.ndarray) -> np.ndarray:
        return self.as_2d().spatial_reach(self._pad_causal(probe, 2))

    def sparse(self, input_shape: tuple, output_shape: tuple) -> SparseLinear | None:
        if self.padding == "causal" or tuple(self.dilation) != (1,) or self.groups != 1:
            return None  # the dense engine runs it
        # the height-1 image has the same flat (C-order) indices
        sparse = SparseConv2D(self.as_2d(), (1,) + tuple(input_shape),
                              (1,) + tuple(output_shape))
        sparse.op, sparse.input_shape = self, tuple(input_shape)  # for dense steps
        return sparse


@dataclass
class AvgPool2DOp(Op):
    """Average pooling, NHWC; with "same" padding the padded cells are not counted (as Keras)."""

    pool_size: tuple
    strides: tuple
    padding: str

    kind: ClassVar[str] = "avgpool2d"
    spatial: ClassVar[bool] = True

    def __call__(self, x: np.ndarray) -> np.ndarray:
        (ph, pw), (sh, sw) = self.pool_size, self.strides
        if self.padding == "valid" and (ph, pw) == (sh, sw):
            # windows that tile the input: a reshape, faster than sliding windows
            oh, ow = x.shape[1] // ph, x.shape[2] // pw
            total = x[:, 0:oh * ph:ph, 0:ow * pw:pw].copy()
            for dy in range(ph):
                for dx in range(pw):
                    if dy or dx:
                        total += x[:, dy:oh * ph:ph, dx:ow * pw:pw]
            return total / np.prod(self.pool_size)
        windows = _windows(x, self.pool_size, self.strides, self.padding)
        total = windows.sum(axis=(-2, -1))
        if self.padding == "valid":
            return total / np.prod(self.pool_size)
        ones = np.ones((1,) + x.shape[1:3] + (1,), dtype=x.dtype)
        counts = _windows(ones, self.pool_size, self.strides, self.padding).sum(axis=(-2, -1))
        return total / counts

    def fan_out(self, input_shape: tuple) -> np.ndarray:
        """Pooling windows that contain the element (additions, per channel)."""
        return spatial_fan_out([self], input_shape)

    def spatial_reach(self, probe: np.ndarray) -> np.ndarray:
        return self(probe)

    def sparse_events(self, input_shape: tuple, output_shape: tuple) -> SparsePool:
        return SparsePool(self, input_shape, output_shape)


@dataclass
class ReshapeOp(Op):
    """Reshape each example (Flatten): no arithmetic."""

    shape: tuple

    kind: ClassVar[str] = "flatten"
    arithmetic: ClassVar[bool] = False
    one_to_one: ClassVar[bool] = True

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return x.reshape((x.shape[0],) + tuple(self.shape))

    def fan_out(self, input_shape: tuple) -> np.ndarray:
        """Each element moves to one place."""
        return np.ones(input_shape, dtype=np.int64)


@dataclass
class IdentityOp(Op):
    """Pass the input on (a ReLU layer that follows a layer which already has neurons)."""

    kind: ClassVar[str] = "identity"
    arithmetic: ClassVar[bool] = False
    spatial: ClassVar[bool] = True
    one_to_one: ClassVar[bool] = True

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return x

    def fan_out(self, input_shape: tuple) -> np.ndarray:
        """Each element goes to one place."""
        return np.ones(input_shape, dtype=np.int64)

    def spatial_reach(self, probe: np.ndarray) -> np.ndarray:
        return probe


@dataclass
class ReshapeLayerOp(ReshapeOp):
    """A Keras ``Reshape`` layer: like :class:`ReshapeOp` (C order, no arithmetic)."""

    kind: ClassVar[str] = "reshape"


@dataclass
class AffineOp(Op):
    """``x * kernel`` elementwise, the kernel broadcast over the last (channel) axis.

    With the stage's bias this is a per-channel affine map ``scale * x + shift``: inference-mode
    BatchNormalization (``gamma / sqrt(var + eps)``, ``beta - mean * gamma / sqrt(var + eps)``)
    or ``Rescaling`` (``scale``, ``offset``) where it cannot be folded exactly into the weights
    of a neighbouring layer. It has no neurons and no sparse form: spikes that reach it leave it
    as analog values, and the event-driven engine does not run it (``method="auto"`` then uses
    the dense engine). Normalization carries lambda through it (its bias is divided by the
    lambda of its input; see :mod:`snnlib.normalize`).
    """

    kernel: np.ndarray

    kind: ClassVar[str] = "affine"
    spatial: ClassVar[bool] = True
    one_to_one: ClassVar[bool] = True

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return x * self.kernel.astype(x.dtype, copy=False)

    def fan_out(self, input_shape: tuple) -> np.ndarray:
        """One multiplication per element."""
        return np.ones(input_shape, dtype=np.int64)

    def channel_factors(self, into: np.ndarray, out: np.ndarray) -> np.ndarray:
        """``into / out`` channel by channel: channel c reads only channel c."""
        return np.asarray(into, np.float64) / np.asarray(out, np.float64)

    @property
    def in_channels(self) -> int:
        return int(self.kernel.shape[-1])

    @property
    def out_channels(self) -> int:
        return int(self.kernel.shape[-1])

    def spatial_reach(self, probe: np.ndarray) -> np.ndarray:
        return probe


@dataclass
class ZeroPad2DOp(Op):
    """``ZeroPadding2D``: zeros around each (h, w, c) example, ``((top, bottom), (left, right))``.

    It only moves elements (:meth:`macs` is 0), but to other positions, so spikes do not pass
    through it unchanged: it keeps ``arithmetic = True`` (the event-driven engine, which passes
    spikes through non-arithmetic ops index for index, then leaves it to the dense engine).
    """

    padding: tuple

    kind: ClassVar[str] = "zeropad2d"
    spatial: ClassVar[bool] = True

    def __call__(self, x: np.ndarray) -> np.ndarray:
        (top, bottom), (left, right) = self.padding
        return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))

    def fan_out(self, input_shape: tuple) -> np.ndarray:
        """Each element moves to one place."""
        return np.ones(input_shape, dtype=np.int64)

    def macs(self, input_shape: tuple) -> int:
        """No operations: padding only moves elements."""
        return 0

    def spatial_reach(self, probe: np.ndarray) -> np.ndarray:
        return self(probe)


@dataclass
class AvgPool1DOp(Op):
    """``AveragePooling1D`` over (length, channels) examples: the 2-D pooling of a height-1
    image (:meth:`as_2d`)."""

    pool_size: tuple
    strides: tuple
    padding: str

    kind: ClassVar[str] = "avgpool1d"
    spatial: ClassVar[bool] = True

    def as_2d(self) -> AvgPool2DOp:
        """The same pooling on (1, length, c) examples."""
        return AvgPool2DOp((1,) + tuple(self.pool_size), (1,) + tuple(self.strides),
                           self.padding)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.as_2d()(x[:, None])[:, 0]

    def fan_out(self, input_shape: tuple) -> np.ndarray:
        """Pooling windows that contain the element (additions, per channel)."""
        return spatial_fan_out([self], input_shape)

    def spatial_reach(self, probe: np.ndarray) -> np.ndarray:
        return self.as_2d()(probe)

    def sparse_events(self, input_shape: tuple, output_shape: tuple) -> SparsePool:
        # the same flat (C-order) indices as the height-1 image
        return SparsePool(self.as_2d(), (1,) + tuple(input_shape), (1,) + tuple(output_shape))


@dataclass
class UpSampling2DOp(Op):
    """``UpSampling2D`` with nearest-neighbour interpolation: each element copied into a
    (sy, sx) block. It only copies elements (:meth:`macs` is 0), to other positions."""

    size: tuple

    kind: ClassVar[str] = "upsampling2d"
    spatial: ClassVar[bool] = True

    def __call__(self, x: np.ndarray) -> np.ndarray:
        sy, sx = self.size
        return np.repeat(np.repeat(x, sy, axis=1), sx, axis=2)

    def fan_out(self, input_shape: tuple) -> np.ndarray:
        """Each element is copied sy * sx times."""
        return np.full(input_shape, int(np.prod(self.size)), dtype=np.int64)

    def macs(self, input_shape: tuple) -> int:
        """No operations: upsampling only copies elements."""
        return 0

    def spatial_reach(self, probe: np.ndarray) -> np.ndarray:
        return self(probe)


@dataclass
class Cropping2DOp(Op):
    """``Cropping2D``: ``((top, bottom), (left, right))`` rows and columns removed. It only
    drops elements (:meth:`macs` is 0); a cropped element reaches nothing."""

    cropping: tuple

    kind: ClassVar[str] = "cropping2d"
    spatial: ClassVar[bool] = True

    def __call__(self, x: np.ndarray) -> np.ndarray:
        (top, bottom), (left, right) = self.cropping
        return x[:, top:x.shape[1] - bottom, left:x.shape[2] - right]

    def fan_out(self, input_shape: tuple) -> np.ndarray:
        """1 for the elements kept, 0 for those cropped."""
        (top, bottom), (left, right) = self.cropping
        kept = np.zeros(input_shape, dtype=np.int64)
        kept[top:input_shape[0] - bottom, left:input_shape[1] - right] = 1
        return kept

    def macs(self, input_shape: tuple) -> int:
        """No operations: cropping only drops elements."""
        return 0

    def spatial_reach(self, probe: np.ndarray) -> np.ndarray:
        return self(probe)


def _padded_windows(x: np.ndarray, kernel_size: tuple, strides: tuple, padding: str,
                    fill: float) -> np.ndarray:
    """:func:`_windows` with the "same" padding filled with ``fill`` (a value that never wins)."""
    if padding == "same":
        (kh, kw), (sh, sw) = kernel_size, strides
        pads = (same_padding(x.shape[1], kh, sh), same_padding(x.shape[2], kw, sw))
        x = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)), constant_values=fill)
    return _windows(x, kernel_size, strides, "valid")


@dataclass
class MaxPool2DOp(Op):
    """Max pooling, NHWC; on spikes, gated by online rate estimates (:meth:`gate`).

    In rate mode (``verify``, the normalization's statistics) it is Keras's max pooling. On
    spikes, the maximum of spike trains is not the spike train of the maximum (it would pass a
    spike whenever any input of the window fires), so the simulator runs :meth:`gate` instead:
    each window passes the spikes of the input that has fired most so far, the gating of
    Rueckauer et al. (2017, Frontiers in Neuroscience 11:682, section 2.2.5), here with the
    estimate of SNN Toolbox's TensorFlow INI simulator (``SpikeMaxPooling2D``: the spike
    amplitudes summed since the run began, this step's included; its option ``maxpool_type``,
    default ``fir_max``, selects other estimates in its older Theano simulator only). Ties go to
    the first input of the window in row-major order. The gate is not exact: where two inputs of
    a window fire at close rates the lead changes hands, and what passes can be more or less
    than the larger rate (tests/test_simulate.py measures both pooling choices against the
    rate-mode output; ``benchmarks/max_pooling.py`` their accuracy).
    """

    pool_size: tuple
    strides: tuple
    padding: str

    kind: ClassVar[str] = "maxpool2d"
    spatial: ClassVar[bool] = True
    gated: ClassVar[bool] = True

    def __call__(self, x: np.ndarray) -> np.ndarray:
        windows = _padded_windows(x, self.pool_size, self.strides, self.padding, -np.inf)
        return windows.max(axis=(-2, -1))

    def fan_out(self, input_shape: tuple) -> np.ndarray:
        """Pooling windows that contain the element (comparisons, per channel)."""
        return spatial_fan_out([self], input_shape)

    def spatial_reach(self, probe: np.ndarray) -> np.ndarray:
        return self(probe)

    def windows(self, x: np.ndarray, fill: float) -> np.ndarray:
        """The pooling windows of ``x``, flattened: (batch, out_h, out_w, channels, cells);
        "same" padding filled with ``fill``."""
        windows = _padded_windows(x, self.pool_size, self.strides, self.padding, fill)
        return windows.reshape(windows.shape[:4] + (-1,))

    def pooled(self, out: np.ndarray) -> np.ndarray:
        """One value per window (the windows' leading axes) in the op's output shape."""
        return out

    def gate(self) -> MaxPoolGate:
        """A fresh gate (no spikes counted yet) for one simulation run."""
        return MaxPoolGate(self)


class MaxPoolGate:
    """The state of a spiking max pool during one run: each input's spikes so far.

    Calling it with one step's input (spike amplitudes, NHWC) adds them to the counts, then
    returns, per window (the op's :meth:`~MaxPool2DOp.windows`), the input of the neuron with
    the largest count (see :class:`MaxPool2DOp`; :class:`GlobalMaxPool2DOp` has one window
    per channel).
    """

    def __init__(self, op: MaxPool2DOp | GlobalMaxPool2DOp) -> None:
        self.op = op
        self.counts: np.ndarray | None = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.counts is None:
            self.counts = np.zeros(x.shape, dtype=np.float64)
        self.counts += x
        winner = self.op.windows(self.counts, -np.inf).argmax(axis=-1)[..., None]
        out = np.take_along_axis(self.op.windows(x, 0.0), winner, axis=-1)[..., 0]
        return self.op.pooled(out)


@dataclass
class GlobalMaxPool2DOp(Op):
    """``GlobalMaxPooling2D`` of (h, w, c) maps: the maximum over height and width, per
    channel; on spikes, gated as :class:`MaxPool2DOp` (each channel passes the spikes of its
    position that has fired most so far)."""

    keepdims: bool = False

    kind: ClassVar[str] = "globalmaxpool2d"
    channelwise: ClassVar[bool] = True
    gated: ClassVar[bool] = True

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return x.max(axis=tuple(range(1, x.ndim - 1)), keepdims=self.keepdims)

    def fan_out(self, input_shape: tuple) -> np.ndarray:
        """Each element is compared once (in its channel's maximum)."""
        return np.ones(input_shape, dtype=np.int64)

    def windows(self, x: np.ndarray, fill: float) -> np.ndarray:
        """One window per example and channel, the whole map: (batch, channels, cells)."""
        return x.reshape(x.shape[0], -1, x.shape[-1]).swapaxes(1, 2)

    def pooled(self, out: np.ndarray) -> np.ndarray:
        """(batch, channels), or (batch, 1, 1, channels) with ``keepdims``."""
        return out[:, None, None, :] if self.keepdims else out

    def gate(self) -> MaxPoolGate:
        """A fresh gate (no spikes counted yet) for one simulation run."""
        return MaxPoolGate(self)


@dataclass
class GlobalAvgPool2DOp(Op):
    """``GlobalAveragePooling2D``: the mean over height and width, per channel (over every
    axis but the first and the last, so it serves 1-D inputs too)."""

    keepdims: bool = False

    kind: ClassVar[str] = "globalavgpool2d"
    channelwise: ClassVar[bool] = True

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return x.mean(axis=tuple(range(1, x.ndim - 1)), keepdims=self.keepdims)

    def fan_out(self, input_shape: tuple) -> np.ndarray:
        """Each element is added once (into its channel's mean)."""
        return np.ones(input_shape, dtype=np.int64)


@dataclass
class GlobalAvgPool1DOp(GlobalAvgPool2DOp):
    """``GlobalAveragePooling1D``: the mean over the length, per channel."""

    kind: ClassVar[str] = "globalavgpool1d"


# --------------------------------------------------------------------------------------------
# Joins: stages with several inputs
# --------------------------------------------------------------------------------------------

@dataclass
class JoinOp(Op):
    """Base class of an op with several inputs (a list of batches), each times a factor.

    ``weights`` are the Keras join's own, one number per input (``Add``: 1 each, ``Subtract``:
    1 and -1, ``Average``: 1 / n each). ``factors`` are normalization's (None: 1 each), one
    per input: a number, or one value per channel (the last axis) of that input, equal to
    ``lambda_input / lambda_join``, so that each path keeps its own lambda up to the join
    (:mod:`snnlib.normalize`). Each input is multiplied by ``weight * factor``. For counting,
    a join passes each input element to one output element: spikes reach the layer after it
    as they reach it through an identity.
    """

    weights: tuple
    factors: tuple | None = None

    join: ClassVar[bool] = True
    spatial: ClassVar[bool] = True
    one_to_one: ClassVar[bool] = True

    def scaled(self, xs: list) -> list:
        """Each input times its weight and factor (the input itself where both are 1)."""
        if len(xs) != len(self.weights):
            raise ValueError(f"{type(self).__name__} has {len(self.weights)} inputs, got "
                             f"{len(xs)}")
        factors = self.factors if self.factors is not None else (1.0,) * len(self.weights)
        out = []
        for x, weight, factor in zip(xs, self.weights, factors, strict=True):
            f = np.asarray(factor, dtype=np.float64) * weight
            out.append(x if f.ndim == 0 and f == 1 else x * f.astype(x.dtype))
        return out

    def fan_out(self, input_shape: tuple) -> np.ndarray:
        """Each element of an input reaches one element of the output."""
        return np.ones(input_shape, dtype=np.int64)

    def spatial_reach(self, probe: np.ndarray) -> np.ndarray:
        return probe

    def with_factors(self, factors: tuple | None) -> JoinOp:
        """A copy with normalization's factors (None: none)."""
        return dataclasses.replace(self, factors=None if factors is None else tuple(factors))


@dataclass
class AddOp(JoinOp):
    """``Add`` (factors 1), ``Subtract`` (1, -1) and ``Average`` (1 / n each): the weighted sum
    of inputs of one shape. One addition per input element."""

    kind: ClassVar[str] = "add"

    def __call__(self, xs: list) -> np.ndarray:
        scaled = self.scaled(xs)
        total = scaled[0].copy() if scaled[0] is xs[0] else scaled[0]
        for x in scaled[1:]:
            total += x
        return total

    def macs(self, input_shape: tuple) -> int:
        """One addition (with its factor) per element of each input."""
        return len(self.weights) * int(np.prod(input_shape))


@dataclass
class ConcatOp(JoinOp):
    """``Concatenate`` along the channel (last) axis: each input keeps its own channels, its
    own lambda, and its elements only move (no operations)."""

    kind: ClassVar[str] = "concatenate"

    def __call__(self, xs: list) -> np.ndarray:
        return np.concatenate(self.scaled(xs), axis=-1)

    def macs(self, input_shape: tuple) -> int:
        """No operations: concatenation only moves elements."""
        return 0


# --------------------------------------------------------------------------------------------
# How the event-driven engine sees an op: a linear map of sparse spikes
# --------------------------------------------------------------------------------------------

class SparseLinear:
    """An op computed from the spikes alone: ``W x`` for x given as (flat index, value) events.

    ``flat`` indexes the whole batch (example * input size + element, C order), as the spikes
    of the layer before come; :meth:`dense` computes the same through the op itself (for steps
    with many spikes). ``cheap``: the sparse product costs about spikes x outputs (a dense
    layer), so it stays faster than the dense operation up to a larger spiking fraction.
    """

    cheap: ClassVar[bool] = False

    def __init__(self, op: Op, input_shape: tuple, output_shape: tuple) -> None:
        self.op = op
        self.input_shape = tuple(input_shape)
        self.in_size = int(np.prod(input_shape))
        self.out_size = int(np.prod(output_shape))

    def __call__(self, flat: np.ndarray, values: np.ndarray, batch: int) -> np.ndarray:
        raise NotImplementedError

    def dense(self, flat: np.ndarray, values: np.ndarray, batch: int) -> np.ndarray:
        """The same through the dense operation, (batch, out_size)."""
        x = np.zeros(batch * self.in_size, dtype=values.dtype)
        np.add.at(x, flat, values)  # events may repeat an element (pooled spikes)
        x = x.reshape((batch,) + self.input_shape)
        return self.op(x).reshape(batch, -1)


class SparseEvents:
    """An op without weights on events: (flat, values) of its input -> those of its output.

    ``flat`` indexes the whole batch (example * size + element, C order). This base class
    passes the events on unchanged (an op that only reshapes in C order); events stay ordered
    by example, as the sparse products (:class:`SparseLinear`) expect.
    """

    def __init__(self, input_shape: tuple, output_shape: tuple) -> None:
        self.in_size = int(np.prod(input_shape))
        self.out_size = int(np.prod(output_shape))

    def __call__(self, flat: np.ndarray, values: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
        return flat, values


class SparsePool(SparseEvents):
    """Average pooling of events: each event goes to every pooled cell whose window holds it,
    with weight 1 / (cells counted in that window); events outside every window are dropped.

    The output events may repeat a cell (the sparse products add them up).
    """

    def __init__(self, op: AvgPool2DOp, input_shape: tuple, output_shape: tuple) -> None:
        super().__init__(input_shape, output_shape)
        h, w, c = input_shape
        oh, ow = output_shape[:2]
        (ph, pw), (sh, sw) = op.pool_size, op.strides
        ty, vy, ny = _pool_axis(h, ph, sh, op.padding, oh)
        tx, vx, nx = _pool_axis(w, pw, sw, op.padding, ow)
        # every (row target, column target) pair of each input position (y, x)
        targets = ty[:, None, :, None] * ow + tx[None, :, None, :]
        valid = vy[:, None, :, None] & vx[None, :, None, :]
        cells = ny[ty][:, None, :, None] * nx[tx][None, :, None, :]  # cells in each window
        width = ty.shape[1] * tx.shape[1]
        self.targets = np.where(valid, targets, 0).reshape(h * w, width)
        self.weights = np.where(valid, 1.0 / np.maximum(cells, 1), 0.0).reshape(h * w, width)
        self.c, self.n_pos_out = c, oh * ow
        self.simple = width == 1  # at most one target per input (tiling windows)

    def __call__(self, flat: np.ndarray, values: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
        example, j = np.divmod(flat, self.in_size)
        pos, c = np.divmod(j, self.c)
        weight = self.weights[pos].astype(values.dtype, copy=False)
        out = (example[:, None] * self.n_pos_out + self.targets[pos]) * self.c + c[:, None]
        keep = weight != 0
        if self.simple:
            keep = keep[:, 0]
            return out[keep, 0], values[keep] * weight[keep, 0]
        return out[keep], (values[:, None] * weight)[keep]


def _pool_axis(size: int, pool: int, stride: int, padding: str, out: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pooling windows along one axis: for each input index the windows that hold it.

    Returns (targets, valid): (size, k) output indices and whether each is real (k: the most
    windows any index is in), and the cells of each window inside the input (out,).
    """
    before = same_padding(size, pool, stride)[0] if padding == "same" else 0
    starts = np.arange(out) * stride - before
    index = np.arange(size)[:, None]
    member = (index >= starts) & (index < starts + pool)  # (size, out)
    k = max(int(member.sum(axis=1).max()), 1)
    targets = np.argsort(~member, axis=1, kind="stable")[:, :k]
    valid = np.take_along_axis(member, targets, axis=1)
    cells = np.minimum(starts + pool, size) - np.maximum(starts, 0)
    return targets, valid, cells


class SparseDense(SparseLinear):
    """A dense layer as a sparse (examples x inputs) matrix times the kernel."""

    cheap = True

    def __call__(self, flat: np.ndarray, values: np.ndarray, batch: int) -> np.ndarray:
        import scipy.sparse as sp

        example, j = np.divmod(flat, self.in_size)
        m = sp.csr_matrix((values, j, np.searchsorted(example, np.arange(batch + 1))),
                          shape=(batch, self.in_size))
        return np.asarray(m @ self.op.kernel)


class SparseConv2D(SparseLinear):
    """A convolution as a sparse "im2col" matrix (one row per output position, one entry per
    spike and kernel tap) times the kernel."""

    def __init__(self, op: Conv2DOp, input_shape: tuple, output_shape: tuple) -> None:
        super().__init__(op, input_shape, output_shape)
        h, w, c = input_shape
        (kh, kw, _, c_out), (sh, sw) = op.kernel.shape, op.strides
        oh, ow = output_shape[:2]
        pt = pl = 0
        if op.padding == "same":
            pt, pl = same_padding(h, kh, sh)[0], same_padding(w, kw, sw)[0]
        # taps of every input position: output position (or -1) and kernel tap index
        ys, xs = np.arange(h), np.arange(w)
        outs, taps = [], []
        for ky in range(kh):
            for kx in range(kw):
                oy, ry = np.divmod(ys + pt - ky, sh)
                ox, rx = np.divmod(xs + pl - kx, sw)
                okay = ((ry == 0) & (oy >= 0) & (oy < oh))[:, None] & \
                    ((rx == 0) & (ox >= 0) & (ox < ow))[None, :]
                out = np.where(okay, oy[:, None] * ow + ox[None, :], -1)
                if np.any(okay):
                    outs.append(out.ravel())
                    taps.append(ky * kw + kx)
        outs = np.stack(outs, axis=1)  # (h * w, n_taps)
        self.tap_out = outs
        self.tap_id = np.broadcast_to(np.array(taps), outs.shape)
        self.tap_ok = outs >= 0
        self.c_in, self.n_pos, self.c_out = c, oh * ow, c_out
        self.kernel = op.kernel.reshape(kh * kw * c, c_out)
        self.n_cols = kh * kw * c

    def __call__(self, flat: np.ndarray, values: np.ndarray, batch: int) -> np.ndarray:
        import scipy.sparse as sp

        example, j = np.divmod(flat, self.in_size)
        pos, c = np.divmod(j, self.c_in)
        ok = self.tap_ok[pos]
        counts = ok.sum(axis=1)
        rows = (example[:, None] * self.n_pos + self.tap_out[pos])[ok]
        cols = (self.tap_id[pos] * self.c_in + c[:, None])[ok]
        m = sp.coo_matrix((np.repeat(values, counts), (rows, cols)),
                          shape=(batch * self.n_pos, self.n_cols))
        return np.asarray(m @ self.kernel).reshape(batch, -1)
