"""Tests of snnlib.experiments.tradeoffs: method comparison table and Pareto front."""
import numpy as np
import pandas as pd
import pytest

from snnlib.analysis.measures import spikes_per_example, synaptic_operations
from snnlib.convert import convert
from snnlib.experiments import tradeoffs
from snnlib.sim.simulator import simulate


def test_pareto_front_known_answer():
    table = pd.DataFrame({
        "accuracy": [0.9, 0.9, 0.95, 0.8, 0.95, np.nan],
        "spikes_per_example": [100, 200, 300, 50, 300, 10],
        "latency_ms": [20, 20, 30, 50, 25, 1],
    })
    front = tradeoffs.pareto_front(table)
    # row 1 is dominated by row 0 (same accuracy and latency, more spikes); row 2 by row 4
    # (same accuracy and spikes, later); rows with nan are never on the front
    assert front.tolist() == [True, False, False, True, True, False]


def test_pareto_front_single_objective():
    table = pd.DataFrame({"accuracy": [0.5, 0.7, 0.7], "spikes_per_example": [1, 1, 1],
                          "latency_ms": [1, 1, 1]})
    # ties are not dominated; the lower accuracy is
    assert tradeoffs.pareto_front(table).tolist() == [False, True, True]


def test_compare_methods(dense_model, images6):
    network = convert(dense_model)
    labels = np.array([0, 1, 2, 3])
    methods = [("low", network, {"scale_firing_rates": 50.0}),
               ("high, filtered", network, {"scale_firing_rates": 400.0, "synapse": 0.005})]
    table = tradeoffs.compare_methods(methods, images6, labels, n_steps=20)
    # one row per method, in order
    assert table["method"].tolist() == ["low", "high, filtered"]
    for (_, _, settings), (_, row) in zip(methods, table.iterrows(), strict=True):
        result = simulate(network, images6, n_steps=20, **settings)
        # spikes per example are the simulation's
        assert row["spikes_per_example"] == pytest.approx(spikes_per_example(result), rel=1e-9)
        assert row["accuracy"] == pytest.approx(result.accuracy(labels))
    # more rate, more spikes
    assert table["spikes_per_example"][1] > table["spikes_per_example"][0]
    # both readouts from one simulation each: two rows per method
    both = tradeoffs.compare_methods(methods, images6, labels, n_steps=20, readout=("mean", "last"))
    assert both["readout"].tolist() == ["mean", "last"] * 2
    result = simulate(network, images6, n_steps=20, **methods[0][2])
    assert both.iloc[1]["accuracy"] == pytest.approx(result.accuracy(labels, readout="last"))
    with pytest.raises(ValueError, match="twice"):
        tradeoffs.compare_methods(methods[:1] * 2, images6, labels, n_steps=5)


def test_pareto_ties_mark_front_rows_held_up_by_an_unresolved_accuracy_lead():
    n = 400
    base = np.zeros(n, bool)
    base[:300] = True                                   # 75 %
    slightly = base.copy()
    slightly[300:304] = True                            # 76 %: 4 more right, not resolvable
    clearly = base.copy()
    clearly[300:360] = True                             # 90 %: 60 more right
    table = pd.DataFrame({
        "accuracy": [base.mean(), slightly.mean(), clearly.mean()],
        "spikes_per_example": [100, 200, 300], "latency_ms": [10, 20, 30],
        "correct": [base, slightly, clearly]})
    front = tradeoffs.pareto_front(table)
    assert front.tolist() == [True, True, True]
    # row 1 is on the front only by 4 images over the cheaper row 0; row 2 by 60 (p < 1e-10)
    # over row 0 and 56 over row 1
    assert tradeoffs.pareto_ties(table, front).tolist() == [False, True, False]
    # the tests behind it: each front row against each cheaper row, by position
    tests = tradeoffs.pareto_tie_tests(table, front)
    assert sorted(tests) == [(1, 0), (2, 0), (2, 1)]
    assert (tests[1, 0].only_a, tests[1, 0].only_b) == (4, 0) and tests[2, 1].only_a == 56
    # on another cost the cheaper rows change: by latency alone row 0 is cheaper than both
    assert sorted(tradeoffs.pareto_tie_tests(table, front, costs=("latency_ms",))) == \
        [(1, 0), (2, 0), (2, 1)]
    reversed_cost = table.assign(latency_ms=[30, 20, 10])
    assert tradeoffs.pareto_tie_tests(reversed_cost, front) == {}
    with pytest.raises(ValueError, match="one flag per row"):
        tradeoffs.pareto_ties(table, front[:2])
    with pytest.raises(ValueError, match="alpha"):
        tradeoffs.pareto_ties(table, front, alpha=1.5)


def test_costs_to_latency_are_the_first_steps_of_the_run(dense_model, rng):
    network = convert(dense_model)
    images = rng.random((40, 6, 6, 1)).astype(np.float32)
    # labels = the ANN's own predictions: the ANN is 100 % accurate, the latency is the first
    # step from which the spiking network is within 1 point, i.e. right on every image
    labels = network.forward(images, dtype=np.float64).argmax(axis=1)
    methods = [("fast", network, {"scale_firing_rates": 1e4, "dtype": np.float64}),
               ("silent", network, {"scale_firing_rates": 0.01, "dtype": np.float64})]
    table = tradeoffs.compare_methods(methods, images, labels, n_steps=40, ann_accuracy=1.0)
    fast = table.iloc[0]
    assert np.isfinite(fast["latency_ms"]) and fast["latency_ms"] < 40
    assert np.isnan(table.iloc[1]["latency_ms"])
    costs = tradeoffs.costs_to_latency(methods, images, labels, table)
    assert costs.index.tolist() == ["fast", "silent"]
    steps = int(fast["latency_steps"])
    assert costs.loc["fast", "latency_steps"] == steps
    # the cost at matched accuracy is that of a run stopped at the latency, and less than the
    # whole run's
    stopped = simulate(network, images, n_steps=steps, scale_firing_rates=1e4, dtype=np.float64)
    assert costs.loc["fast", "spikes_to_latency"] == pytest.approx(spikes_per_example(stopped))
    assert costs.loc["fast", "synops_to_latency"] == pytest.approx(
        synaptic_operations(network, stopped)["total"])
    assert costs.loc["fast", "synops_to_latency"] < fast["synops_per_example"]
    # a method that does not reach the ANN has no cost at matched accuracy
    assert costs.loc["silent"].isna().all()
    # a table whose curve is not the run's is refused, as is a readout other than the mean
    tampered = table.copy()
    tampered.at[0, "accuracy_over_time"] = np.zeros(40)
    with pytest.raises(ValueError, match="not deterministic"):
        tradeoffs.costs_to_latency(methods, images, labels, tampered)
    last = tradeoffs.compare_methods(methods[:1], images, labels, n_steps=5, readout="last")
    with pytest.raises(ValueError, match="mean-readout rows"):
        tradeoffs.costs_to_latency(methods, images, labels, last)
    with pytest.raises(ValueError, match="not in methods"):
        tradeoffs.costs_to_latency(methods[1:], images, labels, table)
