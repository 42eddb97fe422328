"""The network's linear operations agree with TensorFlow's; lookups fail clearly."""
import numpy as np
import pytest
import tensorflow as tf

from snnlib.convert import convert
from snnlib.network import AvgPool2DOp, Conv2DOp


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


def test_scales_and_lookup(conv_model):
    network = convert(conv_model)
    # without normalization every lambda is 1, the input's included
    assert network.scales == {"image": 1.0, "conv_a": 1.0, "pool": 1.0, "conv_b": 1.0,
                              "flat": 1.0, "readout": 1.0}
    # an unknown name lists the layers
    with pytest.raises(KeyError, match="conv_a"):
        network.stage("conv_c")
    # the report has one row per layer
    assert list(network.normalization_report()["layer"]) == list(network.scales)[1:]
