"""Claims behind the book's text: checked strictly under the tests, explained in a reader's run.

Every quantitative sentence in a chapter is backed by a *check cell* that computes it. Those
cells call :func:`claim` instead of a bare ``assert``:

- under the test suite (``SNNLIB_STRICT_CLAIMS=1``, set by the project's ``conftest.py`` and by
  ``python3 dev.py test``), a claim that does not hold raises :class:`ClaimError`, so the
  chapter fails strict nbval and the prose cannot drift from the results;
- in a reader's own run (for example after changing ``n_steps`` or ``scale_firing_rates`` as an
  exercise suggests), a claim that does not hold prints a note instead of stopping the
  notebook: the book's sentence was measured with the book's settings, and with other settings
  the numbers are expected to change.

A claim that holds prints nothing, so the stored outputs are the same in both modes.
"""
import os

__all__ = [
    "STRICT_ENV",
    "ClaimError",
    "strict",
    "claim",
]

#: Environment variable that makes :func:`claim` raise instead of printing a note.
STRICT_ENV = "SNNLIB_STRICT_CLAIMS"


class ClaimError(AssertionError):
    """A claim of the book's text does not hold for the results computed here."""


def strict() -> bool:
    """True when claims must hold (the test suite); False in a reader's own run."""
    return os.environ.get(STRICT_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def claim(condition: object, statement: str, *, got: object = None) -> None:
    """Check one statement of the book's text against the results just computed.

    Parameters
    ----------
    condition : bool-like
        The statement, computed (e.g. ``0.95 <= accuracy <= 0.98``). NumPy booleans are fine;
        arrays are not (say ``np.all(...)`` to make clear which is meant).
    statement : str
        The sentence of the text it backs, as a reader would recognise it (e.g. "the ANN
        classifies between 95 % and 98 % of the test digits correctly").
    got : object, optional
        What was measured, shown when the statement does not hold (e.g. ``f"{accuracy:.1%}"``).

    Returns nothing (so a check cell shows no output when its claims hold).

    Raises
    ------
    ClaimError
        The statement does not hold and :func:`strict` is on (the test suite).
    TypeError
        ``condition`` is an array with more than one element, or ``statement`` is empty.
    """
    if not isinstance(statement, str) or not statement.strip():
        raise TypeError("claim needs the statement it checks, as a non-empty string")
    size = getattr(condition, "size", 1)
    if size != 1:
        raise TypeError(f"claim({statement!r}): the condition is an array of {size} values; "
                        "reduce it with np.all(...) or np.any(...)")
    if bool(condition):
        return
    measured = "" if got is None else f" (here: {got})"
    if strict():
        raise ClaimError(f"the text says: {statement}; the results do not support it{measured}")
    print(f"Note: the book's claim \"{statement}\" holds for the book's settings; with yours it "
          f"does not{measured}. That is expected when you change the parameters.")
