"""Studies built on the simulator: diagnostics and sweeps
(:mod:`~snnlib.experiments.diagnostics`), accuracy/latency/spike trade-offs
(:mod:`~snnlib.experiments.tradeoffs`), and every figure (:mod:`~snnlib.experiments.plots`)."""

__all__ = []  # the API is in the modules above
