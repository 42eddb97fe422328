"""The converted network: lambdas, lookups, firing-rate scales."""
import pytest

from snnlib.convert import convert


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


def test_firing_rate_scales(dense_model):
    network = convert(dense_model)
    # one number scales every spiking layer; a dict scales layer by layer, missing layers get 1
    assert network.firing_rate_scales(5) == {"hidden0": 5.0, "hidden1": 5.0}
    assert network.firing_rate_scales({"hidden1": 2.0}) == {"hidden0": 1.0, "hidden1": 2.0}
    # unknown layers and non-positive scales are named
    with pytest.raises(ValueError, match="not spiking layers"):
        network.firing_rate_scales({"out": 2.0})
    with pytest.raises(ValueError, match="scale_firing_rates.*positive"):
        network.firing_rate_scales(-1.0)
