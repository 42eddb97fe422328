"""What a run is scored by: rates, spikes and operations (:mod:`~snnlib.analysis.measures`),
the measurement protocol (:mod:`~snnlib.analysis.protocol`), intervals and paired tests
(:mod:`~snnlib.analysis.stats`). Pure functions of arrays: no simulation here."""

__all__ = []  # the API is in the modules above
