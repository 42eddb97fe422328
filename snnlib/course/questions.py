"""The registry of assignments and their questions (ids, points, the names students define)."""
from dataclasses import dataclass, field
import importlib


@dataclass(frozen=True)
class Question:
    """One graded question.

    Attributes
    ----------
    id : str
        Stable identifier, e.g. ``"q1_if_layer"`` (gradebook column).
    points : int
        Marks for a fully correct answer (all or nothing).
    names : tuple of str
        What the student defines in the notebook (functions), checked to exist first.
    check : str
        Name of the check function in the assignment's module: ``check(namespace)`` returns a
        short success message or raises :class:`snnlib.course.harness.CheckFailed`.
    manual : bool
        The automatic check only looks for an answer; an instructor reads it.
    """

    id: str
    points: int
    names: tuple
    check: str
    manual: bool = False


@dataclass(frozen=True)
class Assignment:
    """An assignment: notebook stem (``NN_name``), title, module with the checks, questions."""

    key: str
    title: str
    module: str
    questions: tuple = field(default_factory=tuple)

    @property
    def max_points(self):
        return sum(q.points for q in self.questions)

    def question(self, qid):
        for q in self.questions:
            if q.id == qid:
                return q
        raise KeyError(f"{self.key} has no question {qid!r}")

    def check_function(self, question):
        return getattr(importlib.import_module(self.module), question.check)


ASSIGNMENTS = {a.key: a for a in [
    Assignment("01_integrate_and_fire", "Integrate-and-fire by hand",
               "snnlib.course.a01_integrate_and_fire", (
                   Question("q1_if_subtract", 3, ("if_layer",), "check_if_subtract"),
                   Question("q2_if_variants", 2, ("if_layer",), "check_if_variants"),
                   Question("q3_rate_error", 2, ("max_rate_error",), "check_rate_error"),
               )),
    Assignment("02_percentile_normalization", "Percentile normalization",
               "snnlib.course.a02_percentile", (
                   Question("q1_layer_lambda", 2, ("layer_lambda",), "check_layer_lambda"),
                   Question("q2_lambda_table", 3, ("lambda_table",), "check_lambda_table"),
                   Question("q3_normalize_weights", 2, ("normalize_weights",),
                            "check_normalize_weights"),
               )),
    Assignment("03_spike_budget", "A spike budget", "snnlib.course.a03_spike_budget", (
        Question("q1_spikes_per_image", 1, ("spikes_per_image",), "check_spikes_per_image"),
        Question("q2_settings", 4, ("choose_settings",), "check_settings"),
        Question("q3_trade_off", 1, ("trade_off",), "check_trade_off", manual=True),
    )),
]}
