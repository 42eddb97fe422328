"""Layer types: each op's forward pass agrees with TensorFlow, and it knows its fan-out,
its operations and its sparse form."""
import numpy as np
import pytest
import tensorflow as tf

from snnlib.network.ops import (
    AvgPool1DOp,
    AvgPool2DOp,
    Conv1DOp,
    Conv2DOp,
    Cropping2DOp,
    DenseOp,
    GlobalAvgPool1DOp,
    IdentityOp,
    MaxPool2DOp,
    Op,
    ReshapeOp,
    UpSampling2DOp,
    spatial_fan_out,
)


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("strides", [(1, 1), (2, 2), (2, 3)])
def test_conv_matches_tensorflow(rng, padding, strides):
    x = rng.random((2, 9, 8, 3))
    kernel = rng.normal(size=(3, 2, 3, 4))
    expected = tf.nn.conv2d(x, kernel, strides=strides, padding=padding.upper()).numpy()
    # cross-correlation with TensorFlow's padding and strides, in both implementations
    np.testing.assert_allclose(Conv2DOp(kernel, strides, padding)(x), expected, rtol=1e-10)
    np.testing.assert_allclose(Conv2DOp(kernel, strides, padding).numpy_conv(x), expected,
                               rtol=1e-10)


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("pool, strides", [((2, 2), (2, 2)), ((3, 3), (2, 2)), ((2, 3), (1, 2))])
def test_avg_pool_matches_tensorflow(rng, padding, pool, strides):
    x = rng.random((2, 7, 8, 3))
    expected = tf.nn.avg_pool2d(x, pool, strides, padding.upper()).numpy()
    # "same" padding averages only the cells inside the image, as TensorFlow
    np.testing.assert_allclose(AvgPool2DOp(pool, strides, padding)(x), expected, rtol=1e-10)


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("pool, strides", [((2, 2), (2, 2)), ((3, 3), (2, 2)), ((2, 3), (1, 2))])
def test_max_pool_matches_tensorflow(rng, padding, pool, strides):
    x = rng.normal(size=(2, 7, 8, 3)).astype(np.float32)  # negative: padding must never win
    expected = tf.nn.max_pool2d(x, pool, strides, padding.upper()).numpy()
    np.testing.assert_array_equal(MaxPool2DOp(pool, strides, padding)(x), expected)
    assert MaxPool2DOp(pool, strides, padding).gated and not AvgPool2DOp.gated


def test_max_pool_gate_passes_the_spikes_of_the_most_active_input():
    # a 2 x 2 window whose inputs fire at rates 0.2, 0.5, 0.3, 0.1 spikes per step
    gate = MaxPool2DOp((2, 2), (2, 2), "valid").gate()
    rates = np.array([0.2, 0.5, 0.3, 0.1]).reshape(1, 2, 2, 1)
    voltage, passed, counted = np.zeros_like(rates), [], np.zeros_like(rates)
    for _ in range(100):
        voltage += rates
        spikes = np.floor(voltage)
        voltage -= spikes
        counted += spikes
        out = gate(spikes)
        # each step it passes the spike of the input with the most spikes so far (this step's
        # included; ties to the first in row-major order)
        winner = np.argmax(counted.ravel())
        assert out.shape == (1, 1, 1, 1) and out.item() == spikes.ravel()[winner]
        passed.append(out.item())
    # its rate is the largest input rate: max pooling of the rates (not the rate of the max of
    # the spike trains, 1 - (0.8 x 0.5 x 0.7 x 0.9) per step for independent inputs)
    assert np.mean(passed) == pytest.approx(0.5, abs=0.02)
    # a fresh gate starts from zero; "same" padding never wins, even against negative inputs
    gate = MaxPool2DOp((2, 2), (2, 2), "same").gate()
    x = -np.ones((1, 3, 3, 1))
    np.testing.assert_array_equal(gate(x), -np.ones((1, 2, 2, 1)))


def brute_force_fan_out(op, input_shape):
    """Per input element, how many outputs change when only that element is 1 (no zeros in W)."""
    n = int(np.prod(input_shape))
    h = op(np.eye(n, dtype=np.float64).reshape((n,) + tuple(input_shape)))
    return (np.abs(h.reshape(n, -1)) > 0).sum(axis=1).reshape(input_shape)


@pytest.mark.parametrize("op, input_shape", [
    (DenseOp(np.ones((6, 4))), (6,)),
    (Conv2DOp(np.ones((3, 3, 2, 5)), (2, 2), "same"), (7, 6, 2)),
    (Conv2DOp(np.ones((2, 3, 1, 3)), (1, 2), "valid"), (5, 7, 1)),
    (AvgPool2DOp((2, 2), (2, 2), "valid"), (5, 4, 3)),
    (AvgPool2DOp((3, 3), (2, 2), "same"), (5, 5, 2)),
    (IdentityOp(), (4, 3, 2)),
])
def test_fan_out_is_exact(op, input_shape):
    # synapses each input element drives: exact with stride and padding (brute force)
    np.testing.assert_array_equal(op.fan_out(input_shape), brute_force_fan_out(op, input_shape))
    # the multiply-accumulates of one pass are its connections (none for an identity)
    expected = op.fan_out(input_shape).sum() if op.arithmetic else 0
    assert op.macs(input_shape) == expected


def test_moves_cost_nothing():
    # reshape and identity move elements: one place each, no operations
    for op in (ReshapeOp((12,)), IdentityOp()):
        assert not op.arithmetic and op.macs((3, 4)) == 0
        np.testing.assert_array_equal(op.fan_out((3, 4)), np.ones((3, 4)))


def test_spatial_fan_out_through_pooling_counts_distinct_targets():
    pool = AvgPool2DOp((2, 2), (2, 2), "valid")
    conv = Conv2DOp(np.ones((2, 2, 3, 4)), (1, 1), "valid")
    fan = spatial_fan_out([pool, conv], (6, 6, 3))
    # each pixel feeds one pooled cell, which feeds up to 2x2 output positions x 4 channels
    chained = lambda x: conv(pool(x))  # noqa: E731
    np.testing.assert_array_equal(fan, brute_force_fan_out(chained, (6, 6, 3)))


@pytest.mark.parametrize("op, input_shape, output_shape", [
    (DenseOp(np.random.default_rng(0).normal(size=(12, 5))), (12,), (5,)),
    (Conv2DOp(np.random.default_rng(1).normal(size=(3, 3, 2, 4)), (2, 2), "same"), (7, 8, 2),
     (4, 4, 4)),
    (Conv2DOp(np.random.default_rng(2).normal(size=(2, 3, 2, 3)), (1, 2), "valid"), (5, 6, 2),
     (4, 2, 3)),
    (Conv1DOp(np.random.default_rng(3).normal(size=(3, 2, 4)), (2,), "same"), (9, 2), (5, 4)),
])
def test_sparse_form_equals_the_op(op, input_shape, output_shape, rng):
    batch = 3
    x = np.where(rng.random((batch,) + input_shape) < 0.2, rng.random((batch,) + input_shape), 0)
    flat = np.flatnonzero(x)
    sparse = op.sparse(input_shape, output_shape)
    expected = op(x).reshape(batch, -1)
    # computed from the nonzero inputs alone, as the event-driven engine does
    np.testing.assert_allclose(sparse(flat, x.ravel()[flat], batch), expected, atol=1e-12)
    np.testing.assert_allclose(sparse.dense(flat, x.ravel()[flat], batch), expected, atol=1e-12)


def test_ops_without_sparse_form_and_without_fan_out():
    # pooling, reshape and identity have no sparse form: the dense engine runs them
    assert AvgPool2DOp((2, 2), (2, 2), "valid").sparse((4, 4, 1), (2, 2, 1)) is None

    class Doubler(Op):
        kind = "double"

        def __call__(self, x):
            return 2 * x

    # an op that does not say its fan-out cannot be counted, and says so
    with pytest.raises(NotImplementedError, match="fan_out"):
        Doubler().macs((3,))
    with pytest.raises(TypeError, match="no kernel"):
        Doubler().with_kernel(np.ones(2))
    # ops with a kernel are copied with another one (normalization, precision)
    op = DenseOp(np.ones((2, 2)))
    assert op.with_kernel(np.zeros((2, 2))).kernel.sum() == 0 and op.kernel.sum() == 4


@pytest.mark.parametrize("pool, input_shape", [
    (AvgPool2DOp((2, 2), (2, 2), "valid"), (6, 6, 3)),
    (AvgPool2DOp((2, 2), (2, 2), "valid"), (7, 5, 2)),  # the last row and column are dropped
    (AvgPool2DOp((3, 3), (2, 2), "same"), (7, 8, 2)),  # overlapping, padded cells not counted
    (AvgPool2DOp((3, 2), (1, 2), "valid"), (5, 6, 1)),
    (AvgPool2DOp((7, 7), (7, 7), "valid"), (7, 7, 4)),  # global
])
def test_pooling_of_events_equals_the_op(pool, input_shape, rng):
    batch = 3
    x = np.where(rng.random((batch,) + input_shape) < 0.3, rng.random((batch,) + input_shape), 0)
    output_shape = pool(x).shape[1:]
    flat = np.flatnonzero(x)
    events = pool.sparse_events(input_shape, output_shape)
    out_flat, values = events(flat, x.ravel()[flat])
    pooled = np.bincount(out_flat, weights=values, minlength=batch * int(np.prod(output_shape)))
    # the pooled events add up to the pooled input, and stay ordered by example
    np.testing.assert_allclose(pooled, pool(x).ravel(), rtol=1e-12, atol=1e-15)
    example = out_flat // int(np.prod(output_shape))
    assert np.all(np.diff(example) >= 0)


def test_pooling_of_events_on_a_large_input():
    # built per axis: a 224 x 224 input needs no (positions x positions) table
    pool = AvgPool2DOp((2, 2), (2, 2), "valid")
    events = pool.sparse_events((224, 224, 3), (112, 112, 3))
    flat, values = events(np.array([0, 3 * 224 * 224 * 3 - 1]), np.array([1.0, 2.0]))
    # the first and the last element of a batch of three go to the first and the last cell
    np.testing.assert_array_equal(flat, [0, 3 * 112 * 112 * 3 - 1])
    np.testing.assert_array_equal(values, [0.25, 0.5])
    # reshape and identity pass events on unchanged
    assert ReshapeOp((12,)).sparse_events((2, 2, 3), (12,))(flat, values)[0] is flat


# --- the layer types of issue 20: dilated, grouped, depthwise, 1-D, upsampling, cropping ------

def keras_output(layer, x):
    return layer(tf.constant(x)).numpy()


@pytest.mark.parametrize("make, op_of", [
    (lambda: tf.keras.layers.Conv2D(4, 3, dilation_rate=2, padding="same", use_bias=False),
     lambda layer: Conv2DOp(layer.kernel.numpy(), (1, 1), "same", (2, 2))),
    (lambda: tf.keras.layers.Conv2D(6, (3, 2), strides=2, groups=3, use_bias=False),
     lambda layer: Conv2DOp(layer.kernel.numpy(), (2, 2), "valid", (1, 1), 3)),
    (lambda: tf.keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same",
                                             use_bias=False),
     lambda layer: Conv2DOp(layer.depthwise_kernel.numpy().reshape(3, 3, 1, 12), (1, 1),
                            "same", (1, 1), 6)),
])
def test_grouped_and_dilated_convolutions_match_keras(rng, make, op_of):
    x = rng.random((2, 9, 8, 6)).astype(np.float32)
    layer = make()
    expected = keras_output(layer, x)
    # a depthwise convolution is the grouped one with a group per input channel
    np.testing.assert_allclose(op_of(layer)(x), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("padding", ["valid", "same", "causal"])
@pytest.mark.parametrize("strides, dilation, groups", [(1, 1, 1), (2, 1, 2), (1, 2, 1)])
def test_conv1d_matches_keras(rng, padding, strides, dilation, groups):
    x = rng.random((2, 11, 4)).astype(np.float32)
    layer = tf.keras.layers.Conv1D(6, 3, strides=strides, padding=padding,
                                   dilation_rate=dilation, groups=groups, use_bias=False)
    expected = keras_output(layer, x)
    op = Conv1DOp(layer.kernel.numpy(), (strides,), padding, (dilation,), groups)
    np.testing.assert_allclose(op(x), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("layer, op", [
    (tf.keras.layers.AveragePooling1D(3, strides=2, padding="same"),
     AvgPool1DOp((3,), (2,), "same")),
    (tf.keras.layers.GlobalAveragePooling1D(), GlobalAvgPool1DOp()),
    (tf.keras.layers.UpSampling2D((2, 3)), UpSampling2DOp((2, 3))),
    (tf.keras.layers.Cropping2D(((1, 2), (0, 3))), Cropping2DOp(((1, 2), (0, 3)))),
])
def test_moving_and_pooling_ops_match_keras(rng, layer, op):
    shape = (2, 9, 4) if "1D" in type(layer).__name__ else (2, 7, 8, 3)
    x = rng.random(shape).astype(np.float32)
    np.testing.assert_allclose(op(x), keras_output(layer, x), rtol=1e-6)


@pytest.mark.parametrize("op, input_shape", [
    (Conv2DOp(np.ones((3, 3, 2, 5)), (1, 1), "same", (2, 2)), (7, 6, 2)),
    (Conv2DOp(np.ones((3, 2, 2, 6)), (2, 1), "valid", (1, 1), 3), (7, 6, 6)),
    (Conv2DOp(np.ones((3, 3, 1, 8)), (2, 2), "same", (1, 1), 4), (6, 5, 4)),  # depthwise x2
    (Conv1DOp(np.ones((3, 2, 4)), (2,), "same", (1,), 2), (9, 4)),
    (Conv1DOp(np.ones((3, 4, 4)), (1,), "causal", (2,)), (9, 4)),
    (AvgPool1DOp((3,), (2,), "same"), (9, 3)),
    (UpSampling2DOp((2, 3)), (3, 4, 2)),
    (Cropping2DOp(((1, 2), (0, 3))), (6, 7, 2)),
])
def test_fan_out_of_the_new_layer_types_is_exact(op, input_shape):
    # synapses each element drives: with dilation, groups (only its group's outputs), causal
    # padding; an upsampled element is copied sy * sx times, a cropped one reaches nothing
    np.testing.assert_array_equal(op.fan_out(input_shape), brute_force_fan_out(op, input_shape))


def test_fan_out_through_1d_pooling_into_a_1d_convolution():
    pool, conv = AvgPool1DOp((2,), (2,), "valid"), Conv1DOp(np.ones((3, 2, 4)), (1,), "same")
    chained = lambda x: conv(pool(x))  # noqa: E731
    np.testing.assert_array_equal(spatial_fan_out([pool, conv], (10, 2)),
                                  brute_force_fan_out(chained, (10, 2)))


@pytest.mark.parametrize("op", [
    DenseOp(np.random.default_rng(0).normal(size=(6, 4))),
    Conv2DOp(np.random.default_rng(1).normal(size=(3, 3, 2, 6)), (1, 1), "same", (1, 1), 3),
    Conv2DOp(np.random.default_rng(2).normal(size=(3, 3, 1, 8)), (1, 1), "valid", (1, 1), 4),
    Conv1DOp(np.random.default_rng(3).normal(size=(3, 3, 4)), (1,), "same", (1,), 2),
])
def test_channel_factors_rescale_each_channel(op, rng):
    # W * factors(into, out) applied to x / into computes op(x) / out, channel by channel:
    # what channel-wise normalization and folding a per-channel map need (groups included)
    shape = {DenseOp: (6,), Conv2DOp: (7, 7, op.in_channels), Conv1DOp: (8, 6)}[type(op)]
    x = rng.random((3,) + shape)
    into, out = rng.uniform(0.5, 2, op.in_channels), rng.uniform(0.5, 2, op.out_channels)
    rescaled = op.with_kernel(op.kernel * op.channel_factors(into, out))
    np.testing.assert_allclose(rescaled(x / into), op(x) / out, rtol=1e-10)


def test_new_ops_have_sparse_forms_only_where_the_engine_has_them(rng):
    # a grouped or dilated convolution runs on the dense engine; 1-D pooling of events works
    assert Conv2DOp(np.ones((3, 3, 1, 4)), (1, 1), "same", (1, 1), 4).sparse(
        (5, 5, 4), (5, 5, 4)) is None
    assert Conv2DOp(np.ones((3, 3, 2, 4)), (1, 1), "same", (2, 2)).sparse(
        (5, 5, 2), (5, 5, 4)) is None
    pool = AvgPool1DOp((3,), (2,), "same")
    x = np.where(rng.random((3, 9, 2)) < 0.3, rng.random((3, 9, 2)), 0)
    flat = np.flatnonzero(x)
    out_flat, values = pool.sparse_events((9, 2), (5, 2))(flat, x.ravel()[flat])
    pooled = np.bincount(out_flat, weights=values, minlength=3 * 10)
    np.testing.assert_allclose(pooled, pool(x).ravel(), rtol=1e-12, atol=1e-15)


def test_global_max_pool_matches_tensorflow_and_gates_per_channel(rng):
    from snnlib.network.ops import GlobalMaxPool2DOp

    x = rng.normal(size=(2, 5, 4, 3)).astype(np.float32)
    for keepdims in (False, True):
        expected = tf.keras.layers.GlobalMaxPooling2D(keepdims=keepdims)(x).numpy()
        np.testing.assert_array_equal(GlobalMaxPool2DOp(keepdims)(x), expected)
    # on spikes: each channel passes the spike of the position with the most spikes so far
    gate = GlobalMaxPool2DOp().gate()
    counted = np.zeros((1, 2, 2, 2))
    for _ in range(20):
        spikes = (rng.random((1, 2, 2, 2)) < [[[[0.2, 0.7]], [[0.5, 0.1]]]]).astype(float)
        counted += spikes
        out = gate(spikes)
        winner = counted.reshape(1, 4, 2).argmax(axis=1)[0]
        expected = spikes.reshape(1, 4, 2)[0, winner, [0, 1]]
        np.testing.assert_array_equal(out, expected[None])
