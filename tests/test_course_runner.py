"""The sandbox runner's time limits, in this process (no sandbox: fast and deterministic)."""
import signal

import pytest

from course import runner


@pytest.fixture
def alarm():
    previous = signal.signal(signal.SIGALRM, runner._alarm)
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)


def test_a_loop_is_stopped_at_the_cell_limit(alarm):
    errors = runner.run_cells([(3, "while True:\n    pass")], {}, 0.2)
    assert errors == ["cell 3: stopped after 0.2 s (cell time limit)"]


def test_a_swallowed_alarm_does_not_let_the_cell_run_on(alarm):
    # library code that swallows the first alarm (TensorFlow's import did, on a slow machine)
    # must not leave the loop after it running until the wall-clock limit
    swallow_once = "try:\n    while True:\n        pass\nexcept BaseException:\n    pass\n" \
                   "while True:\n    pass"
    env = {}
    errors = runner.run_cells([(1, swallow_once), (2, "after = 1")], env, 0.2)
    assert errors == ["cell 1: stopped after 0.2 s (cell time limit)"]
    assert env["after"] == 1  # the next cell ran, with no alarm left over


def test_the_alarm_is_cancelled_after_a_quick_cell(alarm):
    env = {}
    assert runner.run_cells([(1, "x = 1")], env, 0.2) == []
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
