"""One run per T, scored against each method's own ANN (snnlib.experiments.few_steps), and
the QCFS layers' agreement with their ANN (snnlib.ann.qcfs.layer_agreement)."""
import matplotlib
import numpy as np
import pytest

import snnlib
from snnlib.ann import qcfs, zoo
from snnlib.experiments.few_steps import StepRun, run_at_steps, steps_table
from snnlib.validation import ArgumentError

SIM = dict({k: v for k, v in zoo.RECOMMENDED_SIMULATION.items() if k != "initial_voltage"},
           dtype=np.float64)


@pytest.fixture
def network(conv_model, rng):
    calibration = rng.random((64, 12, 12, 1)).astype(np.float32)
    return snnlib.convert(conv_model, calibration=calibration, normalization="percentile")


def test_each_run_is_a_simulation_of_its_own_length(network, rng):
    x, labels = rng.random((30, 12, 12, 1)), rng.integers(0, 3, 30)
    runs = run_at_steps(network, x, labels, (1, 3), progress=False, **SIM)
    assert list(runs) == [1, 3]
    for n_steps, run in runs.items():
        result = snnlib.simulate(network, x, n_steps=n_steps, initial_voltage=0.5, **SIM)
        np.testing.assert_array_equal(run.correct, np.argmax(result.output.mean(axis=1), 1)
                                      == labels)
        assert run.spikes == pytest.approx(snnlib.spikes_per_example(result))
        assert run.synaptic_operations == pytest.approx(
            snnlib.synaptic_operations(network, result)["total"])
    # a calibration per T is used for that T
    seen = []

    def calibrate(n_steps):
        seen.append(n_steps)
        return network, 0.0

    zero = run_at_steps(network, x, labels, (2,), calibrate=calibrate, progress=False, **SIM)
    started = snnlib.simulate(network, x, n_steps=2, initial_voltage=0.0, **SIM)
    assert seen == [2] and zero[2].spikes == pytest.approx(snnlib.spikes_per_example(started))
    with pytest.raises(ArgumentError, match="steps is empty"):
        run_at_steps(network, x, labels, (), **SIM)


def test_the_table_pairs_each_method_with_its_own_ann():
    a = np.array([True] * 8 + [False] * 2)
    b = np.array([True] * 5 + [False] * 5)
    runs = {"m": {4: StepRun(4, a, 10.0, 100.0)}, "n": {4: StepRun(4, b, 5.0, 50.0)}}
    table = steps_table(runs, {"m": b, "n": b})
    assert list(table["method"]) == ["m", "n"]
    assert table["accuracy"][0].value == pytest.approx(0.8)
    assert table["vs_ann"][0].difference == pytest.approx(0.3)
    assert table["vs_ann"][1].difference == 0 and table["vs_ann"][1].p_value == 1
    with pytest.raises(ArgumentError, match=r"lacks the ANN of \['n'\]"):
        steps_table(runs, {"m": b})
    matplotlib.use("Agg")
    fig = snnlib.plot_accuracy_against_steps(table, {"ANN": 0.5})
    ax = fig.axes[0]
    assert ax.get_xlabel().startswith("time steps") and ax.get_ylabel() == "accuracy (%)"


def test_layer_agreement_is_exact_in_the_first_layer_at_t_equal_l(conv_model, rng):
    model = qcfs.use_qcfs(conv_model, levels=4)
    model.get_layer("conv_a_qcfs").threshold.assign(0.8)
    model.get_layer("conv_b_qcfs").threshold.assign(1.3)
    network = snnlib.convert(model)
    recipe = dict(zoo.RECOMMENDED_SIMULATION, dtype=np.float64)  # start at 0.5
    table = qcfs.layer_agreement(model, network, rng.random((40, 12, 12, 1)), 4, **recipe)
    assert list(table["layer"]) == ["conv_a_qcfs", "conv_b_qcfs"]
    assert table["equal"][0] > 0.99 and table["mean_abs_difference"][0] < 1e-3
    with pytest.raises(ArgumentError, match="no QCFS layer"):
        qcfs.layer_agreement(conv_model, network, rng.random((4, 12, 12, 1)), 4, **SIM)


def test_the_shipped_qcfs_networks_load_and_convert():
    for name, layers in (("convnet", 2), ("deeper", 6)):
        model = qcfs.load_pretrained_qcfs(name)
        thresholds = qcfs.qcfs_thresholds(model)
        assert len(thresholds) == layers and all(1 < t < 4 for t in thresholds.values())
        network = snnlib.convert(model)
        assert network.normalization == "trained"
    (_, _), (x_test, y_test) = snnlib.load_mnist()
    assert snnlib.accuracy(qcfs.load_pretrained_qcfs("convnet"), x_test, y_test) > 0.95
    with pytest.raises(ArgumentError, match="network"):
        qcfs.load_pretrained_qcfs("vgg")
    with pytest.raises(ArgumentError, match="no QCFS layer"):
        qcfs.train_qcfs(snnlib.build_convnet(), x_test[:4], y_test[:4])
