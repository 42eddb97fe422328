"""Progress bars for the library's long loops (sweeps, method comparisons, batches).

Bars are shown in a reader's own run (a notebook widget in Jupyter, text in a terminal, through
``tqdm.auto``) and are off when ``SNNLIB_PROGRESS=0``: the test suite sets it, so that stored
notebook outputs hold no progress bars and nbval compares only results. tqdm's own
``TQDM_DISABLE`` works too (tqdm >= 4.66 reads it), unless ``progress=True`` forces a bar.

Kept beside ``TQDM_DISABLE`` (issue 24): tqdm 4.70.1 reads ``TQDM_*`` once, when it is imported,
and turns any non-empty value into ``disable=True`` ("0" and "false" switch the bars off), while
``SNNLIB_PROGRESS`` is read at each call and "0"/"false"/"no"/"off" mean off, anything else on.
"""
from __future__ import annotations

import os
from collections.abc import Iterable

__all__ = [
    "PROGRESS_ENV",
    "enabled",
    "progress_bar",
]

#: Environment variable that switches the bars off ("0", "false", "no" or "off").
PROGRESS_ENV = "SNNLIB_PROGRESS"


def enabled(progress: bool | None = None) -> bool:
    """Whether to show a bar: ``progress`` if given, else on unless ``SNNLIB_PROGRESS`` says off."""
    if progress is not None:
        return bool(progress)
    return os.environ.get(PROGRESS_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def progress_bar(iterable: Iterable, *, total: int | None = None, desc: str | None = None,
                 progress: bool | None = None) -> Iterable:
    """``iterable`` wrapped in a ``tqdm.auto`` bar, or unchanged when bars are off.

    Parameters
    ----------
    iterable : iterable
    total : int, optional
        Number of items (for iterables without ``len``).
    desc : str, optional
        Label shown before the bar.
    progress : bool or None
        True/False forces the bar on/off; None follows ``SNNLIB_PROGRESS`` and
        ``TQDM_DISABLE`` (default on).
    """
    if not enabled(progress):
        return iterable
    from tqdm.auto import tqdm

    forced = {} if progress is None else {"disable": False}  # None: tqdm reads TQDM_DISABLE
    return tqdm(iterable, total=total, desc=desc, leave=False, **forced)
