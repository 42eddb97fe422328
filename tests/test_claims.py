"""The check cells' claim helper: strict under the tests, a note in a reader's own run."""
import numpy as np
import pytest

from snnlib import claims


def test_holding_claim_is_silent_in_both_modes(monkeypatch, capsys):
    for value in ("1", ""):
        monkeypatch.setenv(claims.STRICT_ENV, value)
        assert claims.claim(np.float64(0.97) > 0.95, "accuracy above 95 %") is None
    assert capsys.readouterr().out == ""


def test_failing_claim_raises_under_the_tests(monkeypatch):
    monkeypatch.setenv(claims.STRICT_ENV, "1")
    with pytest.raises(claims.ClaimError, match="accuracy above 95 %.*here: 93.0%"):
        claims.claim(0.93 > 0.95, "accuracy above 95 %", got="93.0%")


def test_failing_claim_prints_a_note_in_a_readers_run(monkeypatch, capsys):
    monkeypatch.delenv(claims.STRICT_ENV, raising=False)
    claims.claim(False, "the network is silent for 30 ms", got="first spike at 12 ms")
    out = capsys.readouterr().out
    assert "the network is silent for 30 ms" in out and "first spike at 12 ms" in out
    assert "book's settings" in out


def test_claim_rejects_arrays_and_empty_statements(monkeypatch):
    monkeypatch.setenv(claims.STRICT_ENV, "1")
    with pytest.raises(TypeError, match="np.all"):
        claims.claim(np.array([True, False]), "all rates positive")
    with pytest.raises(TypeError, match="statement"):
        claims.claim(True, "")
    claims.claim(np.array([True]), "one value is fine")


def test_the_suite_runs_strict():
    # the project's conftest switches strict claims on for the tests and the chapters' kernels
    assert claims.strict()
