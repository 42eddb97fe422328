"""The measurement protocol: readouts, latency relative to the ANN, evaluation."""
import numpy as np
import pytest

from snnlib.analysis import protocol


def outputs_from_choices(choices, n_classes=3):
    """One-hot outputs (n, n_steps, n_classes) whose largest entry is ``choices``."""
    choices = np.asarray(choices)
    return np.eye(n_classes)[choices]


def test_mean_readout_is_the_running_mean():
    output = np.array([[[1.0, 0.0], [0.0, 3.0], [0.0, 0.0]]])
    mean = protocol.scores_over_time(output, "mean")
    np.testing.assert_allclose(mean[0], [[1, 0], [0.5, 1.5], [1 / 3, 1]])
    assert protocol.scores_over_time(output, "last") is output
    with pytest.raises(ValueError, match="'mean'"):
        protocol.scores_over_time(output, "average")


def test_latency_is_relative_to_the_ann_and_must_stay():
    curve = [0.1, 0.5, 0.955, 0.94, 0.956, 0.96]
    # within 1 point of the ANN (0.96) from step 5 on; the dip at step 4 resets it
    assert protocol.latency_steps(curve, 0.96) == 5
    assert protocol.latency_ms(curve, 0.96, dt=0.001) == pytest.approx(5.0)
    # a run that ends below the ANN minus 1 point has no latency
    assert np.isnan(protocol.latency_steps([0.5, 0.9, 0.94], 0.96))
    assert protocol.format_latency(float("nan")) == "never"
    # the run's own final value is not the reference: a run flat at chance has no latency
    assert np.isnan(protocol.latency_steps([0.095] * 30, 0.966))
    assert protocol.latency_steps([0.97] * 4, 0.96) == 1


def test_evaluate_gives_interval_latency_and_paired_test():
    labels = np.array([0, 1, 2, 0])
    # run A: right from step 2 on all images; run B: always wrong on image 3
    a = outputs_from_choices([[1, 0, 0], [0, 1, 1], [0, 2, 2], [0, 0, 0]])
    b = outputs_from_choices([[1, 0, 0], [0, 1, 1], [0, 2, 2], [1, 1, 1]])
    ev_a = protocol.evaluate(a, labels, ann_accuracy=1.0, dt=0.001, readout="last")
    ev_b = protocol.evaluate(b, labels, ann_accuracy=1.0, dt=0.001, readout="last")
    assert ev_a.accuracy.value == 1.0 and ev_b.accuracy.value == 0.75
    assert ev_a.latency_ms == pytest.approx(2.0) and np.isnan(ev_b.latency_ms)
    comparison = ev_a.compare(ev_b)
    assert (comparison.only_a, comparison.only_b) == (1, 0)
    assert comparison.verdict() == "no measurable difference at this sample size"
    assert ev_b.summary()["latency"] == "never"


def test_labels_are_checked():
    output = np.zeros((2, 3, 4))
    with pytest.raises(ValueError, match="one-hot"):
        protocol.correct_over_time(output, np.eye(4)[[0, 1]])
    with pytest.raises(ValueError, match="integer"):
        protocol.correct_over_time(output, np.array([0.0, 1.0]))


def test_latency_interval_brackets_the_latency_and_is_reproducible():
    rng = np.random.default_rng(1)
    n, n_steps = 1000, 40
    # each image is learned at its own step; from step 10 on nearly all are right
    learned = np.minimum(rng.geometric(0.25, size=n), n_steps)
    correct = np.arange(1, n_steps + 1)[None, :] >= learned[:, None]
    ann = np.ones(n, bool)
    latency = protocol.latency_steps(correct.mean(axis=0), 1.0)
    low, high = protocol.latency_interval(correct, ann)
    assert low <= latency <= high < n_steps
    assert (low, high) == protocol.latency_interval(correct, ann)
    low_ms, high_ms = protocol.latency_interval(correct, ann, dt=0.002)
    assert (low_ms, high_ms) == (2 * low, 2 * high)


def test_latency_interval_says_never_with_an_infinite_bound():
    correct = np.zeros((200, 10), bool)
    correct[:150, :] = True  # 75 % against an ANN at 100 %: never within a point
    low, high = protocol.latency_interval(correct, np.ones(200, bool), n_resamples=200)
    assert low == high == np.inf


@pytest.mark.parametrize("kwargs, message", [
    (dict(correct=np.ones(5, bool), ann_correct=np.ones(5, bool)), "shape"),
    (dict(correct=np.ones((5, 3), bool), ann_correct=np.ones(4, bool)), "ann_correct"),
    (dict(correct=np.ones((5, 3), bool), ann_correct=np.ones(5, bool), n_resamples=10),
     "n_resamples"),
    (dict(correct=np.ones((5, 3), bool), ann_correct=np.ones(5, bool), confidence=1.0),
     "confidence")])
def test_latency_interval_rejects_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        protocol.latency_interval(**kwargs)


def test_evaluation_bootstraps_its_own_latency():
    rng = np.random.default_rng(2)
    n, n_steps = 300, 20
    labels = rng.integers(0, 3, n)
    learned = np.minimum(rng.geometric(0.3, size=n), n_steps)
    right = np.arange(1, n_steps + 1)[None, :] >= learned[:, None]
    choices = np.where(right, labels[:, None], (labels[:, None] + 1) % 3)
    evaluation = protocol.evaluate(outputs_from_choices(choices), labels, ann_accuracy=1.0,
                                   dt=0.001, readout="last")
    np.testing.assert_array_equal(evaluation.correct_over_time, right)
    ann = np.ones(n, bool)
    assert evaluation.latency_interval(ann) == protocol.latency_interval(right, ann, dt=0.001)
    low, high = evaluation.latency_interval(ann)
    assert low <= evaluation.latency_ms <= high
    bare = protocol.Evaluation(evaluation.accuracy, evaluation.correct,
                               evaluation.accuracy_over_time, evaluation.latency_ms, 1.0,
                               "last", 0.001)
    with pytest.raises(ValueError, match="correct_over_time"):
        bare.latency_interval(ann)


def test_latency_is_read_over_the_books_horizon():
    # within 1 point from step 3 to 50, out of it after: within the horizon the latency is
    # 3 ms; over the whole 80 ms run it would be "never"
    n, n_steps = 100, 80
    correct = np.ones((n, n_steps), dtype=bool)
    correct[:, :2] = False
    correct[:50, 50:] = False
    output = np.zeros((n, n_steps, 2))
    output[..., 0] = np.where(correct, 1.0, -1.0)
    labels = np.zeros(n, dtype=int)
    ev = protocol.evaluate(output, labels, ann_accuracy=1.0, dt=0.001, readout="last")
    assert protocol.LATENCY_HORIZON_MS == 50.0 and ev.latency_horizon_ms == pytest.approx(50.0)
    assert ev.latency_ms == pytest.approx(3.0) and ev.accuracy.value == pytest.approx(0.5)
    assert np.isnan(protocol.latency_ms(ev.accuracy_over_time, 1.0, dt=0.001))
    low, high = ev.latency_interval(np.ones(n, dtype=bool))
    assert low == pytest.approx(3.0) and high == pytest.approx(3.0)
    # a longer horizon reads the whole run; a shorter run is read over its whole length
    assert np.isnan(protocol.evaluate(output, labels, ann_accuracy=1.0, dt=0.001, readout="last",
                                      horizon_ms=100.0).latency_ms)
    short = protocol.evaluate(output[:, :30], labels, ann_accuracy=1.0, dt=0.001, readout="last")
    assert short.latency_horizon_ms == pytest.approx(30.0)
    assert short.latency_ms == pytest.approx(3.0)
    # 2 ms steps: 25 of them
    assert protocol.horizon_steps(80, 0.002) == 25 and protocol.horizon_steps(10, 0.002) == 10
    with pytest.raises(ValueError, match="horizon_ms"):
        protocol.horizon_steps(80, 0.001, horizon_ms=0)
