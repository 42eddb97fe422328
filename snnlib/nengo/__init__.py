"""The same network in Nengo: NengoDL's converter built and run (:mod:`~snnlib.nengo.bridge`),
the literature's normalization as its ``scale_firing_rates`` (:mod:`~snnlib.nengo.scales`), the
papers' neuron as a Nengo type (:mod:`~snnlib.nengo.neurons`), and the reader's workflow
measured in ``nengo_dl.Simulator`` (:mod:`~snnlib.nengo.workflow`). Importing this package does
not import nengo; its modules do."""

__all__ = []  # the API is in the modules above
