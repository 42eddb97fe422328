"""The converted network: lambdas, lookups, firing-rate scales, graphs."""
import numpy as np
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


# --- graphs (issue 20) -------------------------------------------------------------------------

def test_a_graph_runs_in_order_and_frees_what_it_no_longer_needs():
    from snnlib.network import SpikingNetwork, Stage
    from snnlib.network.ops import AddOp, ConcatOp, DenseOp, IdentityOp

    def stage(name, op, inputs=(), shape=(2,)):
        return Stage(name=name, kind=op.kind, keras_layers=[name], op=op, bias=None,
                     activation=None, input_shape=shape, output_shape=shape, inputs=inputs)

    network = SpikingNetwork([
        stage("a", DenseOp(np.eye(2) * 2)),
        stage("b", IdentityOp()),
        stage("sum", AddOp((1.0, -1.0), factors=(1.0, 0.5)), inputs=("a", "input")),
        stage("cat", ConcatOp((1.0, 1.0)), inputs=("sum", "b"), shape=(4,)),
    ], input_shape=(2,))
    assert network.sources() == [[-1], [0], [0, -1], [2, 1]]
    assert not network.is_chain and network.consumers(0) == [1, 2]
    x = np.array([[1.0, 3.0]])
    # sum = 2x - 0.5 x; cat = [sum, b]
    np.testing.assert_allclose(network.forward(x), [[1.5, 4.5, 2.0, 6.0]])
    seen = []

    def step(stage, h):
        seen.append(stage.name)
        return stage.rates(h)

    out, every = network.run(x, step, keep=True)
    assert seen == ["a", "b", "sum", "cat"] and set(every) == {"a", "b", "sum", "cat"}
    # a stage that reads an unknown name, or one listed after it, is a clear error
    network.stages[1].inputs = ("cat",)
    with pytest.raises(ValueError, match="'b' reads 'cat', which is listed after it"):
        network.sources()
    network.stages[1].inputs = ("nowhere",)
    with pytest.raises(ValueError, match="'b' reads 'nowhere', which is no stage"):
        network.sources()
