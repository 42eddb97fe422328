"""Simulation: neuron models (:mod:`~snnlib.sim.neurons`) and Loihi's
(:mod:`~snnlib.sim.loihi`), synapses
(:mod:`~snnlib.sim.synapses`), the simulator and its dense engine (:mod:`~snnlib.sim.simulator`),
the event-driven engine (:mod:`~snnlib.sim.event_driven`) and spike counts
(:mod:`~snnlib.sim.counts`)."""

__all__ = []  # the API is in the modules above
