"""The book's measurement protocol, defined once: readout, latency, sample, interval.

Every accuracy, latency and comparison in the book is measured this way (chapters link the
section "How we measure" of the introduction):

- **Readout** (:data:`DEFAULT_READOUT`): the class with the largest output *averaged over time*
  from the first step (for a spiking readout this is the spike count; for the linear readout
  of a converted network, the mean of its output), as Diehl et al. (2015) and Rueckauer et al.
  (2017) read their networks. ``"last"``, the output at the last step alone, is NengoDL's
  example's readout; the book shows it only where it explains NengoDL's numbers, and says so.
- **Latency** (:func:`latency_steps`, :func:`latency_ms`): the first time from which the
  accuracy stays within :data:`TOLERANCE` (1 percentage point) of the **ANN's accuracy on the
  same images**, until the end of the run. A run that never gets there has no latency (NaN,
  shown as "never"); :func:`latency_interval` bootstraps it over images. The latency depends
  on how long "until the end" is (a longer run can fall out of the tolerance again), so every
  latency in the book is read over one **horizon**, the first :data:`LATENCY_HORIZON_MS`
  (50 ms) of a run, whatever the run's length: "never" means "not within 50 ms". A run
  shorter than the horizon is read over its whole length, and its :class:`Evaluation` says so
  (``latency_horizon_ms``). Two other time measures appear where a chapter says so: the dead
  time (steps before the accuracy leaves its first value) and the time to 50 % accuracy.
- **Sample**: claims rest on the full 1,000-image test split of :func:`snnlib.load_mnist`;
  where a sweep must use fewer images for time, the text says so and does not rank methods on it.
- **Interval and test**: every accuracy carries its 95 % Wilson interval and every "A is better
  than B" on the same images an exact McNemar test (:mod:`snnlib.analysis.stats`). Where a chapter
  draws several verdicts from one set of runs, their p-values are corrected together with
  Holm's step-down method (:func:`snnlib.analysis.stats.holm_adjust`). "No measurable difference"
  is not
  equivalence: where the text says two methods end equal, it gives the 95 % interval of the
  paired difference (:func:`snnlib.analysis.stats.paired_difference_interval`) or a non-inferiority
  margin.
"""
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from snnlib import validation
from snnlib.analysis import stats

__all__ = [
    "DEFAULT_READOUT",
    "READOUTS",
    "TOLERANCE",
    "LATENCY_HORIZON_MS",
    "FULL_TEST_SPLIT",
    "LATENCY_BOOTSTRAP",
    "check_readout",
    "scores_over_time",
    "correct_over_time",
    "latency_steps",
    "latency_ms",
    "latency_interval",
    "horizon_steps",
    "format_latency",
    "Evaluation",
    "evaluate",
]

#: The readout the book uses unless it says otherwise.
DEFAULT_READOUT = "mean"
#: The readouts: "mean" (spike count / mean over time) and "last" (NengoDL's example).
READOUTS = ("mean", "last")
#: Latency tolerance: within 1 percentage point of the ANN.
TOLERANCE = 0.01
#: The latency's horizon (ms): every latency is read over the first 50 ms of a run, so that
#: latencies of runs of different lengths (and of different chapters) compare.
LATENCY_HORIZON_MS = 50.0
#: The sample claims rest on: the whole test split of ``snnlib.load_mnist()``.
FULL_TEST_SPLIT = 1000
#: Bootstrap resamples behind :func:`latency_interval`.
LATENCY_BOOTSTRAP = 1000


def check_readout(readout: str) -> str:
    """Return ``readout`` if it is one of :data:`READOUTS`; ValueError naming them otherwise."""
    if readout not in READOUTS:
        raise ValueError(f"unknown readout {readout!r}; use one of {READOUTS} ('mean': spike "
                         "count / output averaged over time, the book's default; 'last': the "
                         "output at the last step, NengoDL's example)")
    return readout


def scores_over_time(output: ArrayLike, readout: str = DEFAULT_READOUT) -> np.ndarray:
    """Class scores after each step under a readout.

    Parameters
    ----------
    output : ndarray, shape (n, n_steps, n_classes)
        The network's output at every step.
    readout : {"mean", "last"}

    Returns
    -------
    ndarray, shape (n, n_steps, n_classes)
        ``"last"``: ``output`` itself; ``"mean"``: the running mean from the first step (float64).
    """
    check_readout(readout)
    output = np.asarray(output)
    if output.ndim != 3:
        raise ValueError(f"output must have shape (n, n_steps, n_classes), got {output.shape}")
    if readout == "last":
        return output
    steps = np.arange(1, output.shape[1] + 1).reshape(1, -1, 1)
    return np.cumsum(output, axis=1, dtype=np.float64) / steps


def _labels(labels, n, n_classes=None):
    return validation.labels(labels, n, n_classes=n_classes)


def correct_over_time(output: ArrayLike, labels: ArrayLike,
                      readout: str = DEFAULT_READOUT) -> np.ndarray:
    """Per image and step, whether the readout's class is the label: bool (n, n_steps)."""
    scores = scores_over_time(output, readout)
    labels = _labels(labels, scores.shape[0], scores.shape[-1])
    return np.argmax(scores, axis=-1) == labels[:, None]


def latency_steps(accuracy_over_time: ArrayLike, ann_accuracy: float,
                  tolerance: float = TOLERANCE) -> float:
    """First step (1-based) from which the accuracy stays >= ``ann_accuracy - tolerance``.

    Parameters
    ----------
    accuracy_over_time : array_like, shape (n_steps,)
        Accuracy (0-1) after each step.
    ann_accuracy : float
        The ANN's accuracy (0-1) on the same images.
    tolerance : float
        0.01 = one percentage point.

    Returns
    -------
    float
        The step, or NaN when the accuracy is not within the tolerance at the end of the run
        (no latency: the run never gets there and stays).
    """
    curve = np.asarray(accuracy_over_time, dtype=np.float64)
    if curve.ndim != 1 or curve.size == 0:
        raise ValueError(f"accuracy_over_time must be a non-empty 1-D array, got {curve.shape}")
    validation.real(ann_accuracy, "ann_accuracy", low=0, high=1, hint="a fraction")
    validation.real(tolerance, "tolerance", low=0, high=1, high_open=True, hint="a fraction")
    eps = 1e-9  # accuracies are fractions of a count: compare with a little slack
    good = curve >= ann_accuracy - tolerance - eps
    if not good[-1]:
        return float("nan")
    bad = np.flatnonzero(~good)
    return float(bad[-1] + 2 if bad.size else 1)


def latency_ms(accuracy_over_time: ArrayLike, ann_accuracy: float, *, dt: float,
               tolerance: float = TOLERANCE) -> float:
    """:func:`latency_steps` times the time step, in milliseconds (NaN: never)."""
    validation.real(dt, "dt", low=0, low_open=True, hint="seconds")
    return latency_steps(accuracy_over_time, ann_accuracy, tolerance) * dt * 1000.0


def latency_interval(correct: ArrayLike, ann_correct: ArrayLike, *, dt: float | None = None,
                     tolerance: float = TOLERANCE, confidence: float = 0.95,
                     n_resamples: int = LATENCY_BOOTSTRAP, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap interval of the latency, resampling images.

    Each resample draws the test images with replacement, recomputes the accuracy curve and
    the ANN's accuracy on the drawn images, and takes :func:`latency_steps`; the interval is
    the central ``confidence`` range of those latencies (B. Efron and R. Tibshirani, "An
    Introduction to the Bootstrap", 1993, ch. 13). A resample that never stays within the
    tolerance counts as an infinite latency, so an upper bound of ``inf`` means "some
    resamples never get there within this run".

    Parameters
    ----------
    correct : array_like of bool, shape (n, n_steps)
        Per image and step, whether the readout is right (:func:`correct_over_time`).
    ann_correct : array_like of bool, shape (n,)
        Per image, whether the ANN is right (the latency's reference, on the same images).
    dt : float, optional
        Time step in seconds: the bounds are then in milliseconds; without it, in steps.
    tolerance : float
        0.01 = one percentage point.
    confidence : float
        In (0, 1).
    n_resamples : int
        Bootstrap resamples (>= 100).
    seed : int
        Seed of the resampling (the interval is reproducible).

    Returns
    -------
    (low, high) : tuple of float
        Steps (or ms with ``dt``); ``inf`` where resamples never reach the ANN.
    """
    correct = np.asarray(correct)
    if correct.ndim != 2 or correct.size == 0:
        raise ValueError(f"correct must have shape (n, n_steps), got {correct.shape}")
    correct = correct.astype(bool)
    ann = np.asarray(ann_correct)
    if ann.shape != (correct.shape[0],):
        raise ValueError(f"ann_correct must have shape ({correct.shape[0]},) (one value per "
                         f"image of correct), got {ann.shape}")
    ann = ann.astype(bool)
    validation.real(confidence, "confidence", low=0, high=1, low_open=True, high_open=True,
                    hint="e.g. 0.95")
    if int(n_resamples) != n_resamples or n_resamples < 100:
        raise ValueError(f"n_resamples must be an integer >= 100, got {n_resamples!r}")
    if dt is not None:
        validation.real(dt, "dt", low=0, low_open=True, hint="seconds")
    rng = np.random.default_rng(seed)
    n = correct.shape[0]
    latencies = np.empty(int(n_resamples))
    for k in range(int(n_resamples)):
        pick = rng.integers(0, n, size=n)
        value = latency_steps(correct[pick].mean(axis=0), float(ann[pick].mean()), tolerance)
        latencies[k] = np.inf if np.isnan(value) else value
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(latencies, [tail, 1.0 - tail], method="inverted_cdf")
    scale = 1.0 if dt is None else dt * 1000.0
    return float(low) * scale, float(high) * scale


def horizon_steps(n_steps: int, dt: float, horizon_ms: float = LATENCY_HORIZON_MS) -> int:
    """Steps a run's latency is read over: the first ``horizon_ms``, or all of a shorter run.

    Parameters
    ----------
    n_steps : int
        The run's length in steps (>= 1).
    dt : float
        Time step (seconds).
    horizon_ms : float
        The horizon in milliseconds (> 0); the book's is :data:`LATENCY_HORIZON_MS`.
    """
    if int(n_steps) != n_steps or n_steps < 1:
        raise ValueError(f"n_steps must be an integer >= 1, got {n_steps!r}")
    validation.real(dt, "dt", low=0, low_open=True, hint="seconds")
    validation.real(horizon_ms, "horizon_ms", low=0, low_open=True, hint="milliseconds")
    # a horizon that is a whole number of steps must not lose one to rounding (50 ms / 1 ms)
    steps = int(np.floor(horizon_ms / (dt * 1000.0) + 1e-9))
    return max(1, min(int(n_steps), steps))


def format_latency(value_ms: float) -> str:
    """"12 ms", or "never" for a run that does not reach the ANN (NaN)."""
    return "never" if not np.isfinite(value_ms) else f"{value_ms:g} ms"


@dataclass
class Evaluation:
    """A spiking run measured with the protocol.

    Attributes
    ----------
    accuracy : snnlib.analysis.stats.Accuracy
        Final accuracy with its 95 % interval.
    correct : ndarray of bool, shape (n,)
        Per image, correct at the end of the run (for paired tests).
    accuracy_over_time : ndarray, shape (n_steps,)
    latency_ms : float
        NaN when the run never stays within 1 point of the ANN.
    ann_accuracy : float
        The ANN's accuracy on the same images.
    readout : str
    dt : float
        Time step (seconds).
    correct_over_time : ndarray of bool, shape (n, n_steps), optional
        Per image and step, correct with the readout up to that step (for
        :meth:`latency_interval`).
    tolerance : float
        The latency's tolerance (0.01 = 1 point).
    latency_horizon_ms : float
        The time the latency was read over: :data:`LATENCY_HORIZON_MS`, or the whole run
        where it is shorter. The accuracy is the run's final one, whatever its length.
    """

    accuracy: stats.Accuracy
    correct: np.ndarray = field(repr=False)
    accuracy_over_time: np.ndarray = field(repr=False)
    latency_ms: float
    ann_accuracy: float
    readout: str
    dt: float
    correct_over_time: np.ndarray | None = field(default=None, repr=False)
    tolerance: float = TOLERANCE
    latency_horizon_ms: float = LATENCY_HORIZON_MS

    def latency_interval(self, ann_correct: ArrayLike, confidence: float = 0.95,
                         seed: int = 0) -> tuple[float, float]:
        """Bootstrap interval of :attr:`latency_ms` over images (:func:`latency_interval`).

        ``ann_correct`` is the ANN's per-image result on the same images, in the same order.
        """
        if self.correct_over_time is None:
            raise ValueError("this Evaluation has no per-step results (correct_over_time); "
                             "build it with snnlib.analysis.protocol.evaluate")
        steps = horizon_steps(self.correct_over_time.shape[1], self.dt, self.latency_horizon_ms)
        return latency_interval(self.correct_over_time[:, :steps], ann_correct, dt=self.dt,
                                tolerance=self.tolerance, confidence=confidence, seed=seed)

    def compare(self, other: "Evaluation") -> stats.PairedComparison:
        """Exact McNemar test of this run against another on the same images."""
        return stats.compare_paired(self.correct, other.correct)

    def summary(self) -> dict:
        """Plain values for a table row: accuracy (%), interval (%), latency, readout."""
        return {"accuracy (%)": round(100 * self.accuracy.value, 1),
                "95 % CI": f"{100 * self.accuracy.low:.1f}-{100 * self.accuracy.high:.1f}",
                "latency": format_latency(self.latency_ms), "readout": self.readout}


def evaluate(output: ArrayLike, labels: ArrayLike, *, ann_accuracy: float, dt: float,
             readout: str = DEFAULT_READOUT, tolerance: float = TOLERANCE,
             horizon_ms: float = LATENCY_HORIZON_MS) -> Evaluation:
    """Measure a run's outputs with the protocol.

    Parameters
    ----------
    output : ndarray, shape (n, n_steps, n_classes)
        Output at every step (``SimulationResult.output``, or NengoDL's probe data).
    labels : ndarray of int, shape (n,)
    ann_accuracy : float
        The ANN's accuracy (0-1) on the same images (the latency's reference).
    dt : float
        Time step (seconds).
    readout : {"mean", "last"}
    tolerance : float
        Latency tolerance (0.01 = 1 point).
    horizon_ms : float
        The latency is read over the first ``horizon_ms`` of the run (all of a shorter run);
        the accuracy is the run's final one.

    Returns
    -------
    Evaluation
    """
    correct = correct_over_time(output, labels, readout)
    curve = correct.mean(axis=0)
    steps = horizon_steps(curve.size, dt, horizon_ms)
    return Evaluation(
        accuracy=stats.accuracy_interval(correct[:, -1]), correct=correct[:, -1],
        accuracy_over_time=curve, latency_ms=latency_ms(curve[:steps], ann_accuracy, dt=dt,
                                                        tolerance=tolerance),
        ann_accuracy=float(ann_accuracy), readout=readout, dt=float(dt),
        correct_over_time=correct, tolerance=float(tolerance),
        latency_horizon_ms=steps * float(dt) * 1000.0)
