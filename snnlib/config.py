"""Defaults shared by the whole library, defined once.

Every function that takes a time step uses :data:`DT` as its default, so the chapters, the
simulator, the synapse and the Nengo runners agree unless told otherwise.
"""

__all__ = [
    "DT",
    "MAX_STEPS",
    "CHUNK",
    "THREADS",
]

#: Default time step (seconds): 1 ms, Nengo's and NengoDL's default. A neuron's voltage grows by
#: ``J * DT`` per step; one spike per step is a rate of ``1 / DT`` = 1000 Hz.
DT = 0.001

#: Most time steps of one simulation (and of the other time-stepped functions): a bound on run
#: time, checked before anything runs. Every step costs at least ~10 us of Python per spiking
#: layer and batch, whatever the network's size, so 10**7 steps take minutes per batch even for
#: a tiny network (and hours for the book's convnet).
MAX_STEPS = 10 ** 7

#: Examples simulated together when the input is constant (both engines of
#: :func:`snnlib.sim.simulator.simulate`). The neuron updates are elementwise passes over
#: (examples x neurons) arrays; for 32 examples of the book's convnet (21,632 neurons in its
#: first layer) the state stays in the CPU caches between passes, which made the simulation ~2x
#: faster than one pass over 200 examples (benchmarks/speed.py). Results do not depend on it:
#: every example is simulated independently.
CHUNK = 32

#: Chunks of examples simulated at the same time, in threads (both engines, constant input).
#: NumPy and TensorFlow release the GIL in their array operations, so on a 2-core machine two
#: chunks run 1.2x to 1.6x faster than one after the other (the book's convnet and deeper
#: network, measured). Results do not depend on it: each chunk is computed alone, in the same
#: way, and the chunks are put back in order (tests/test_simulate.py checks 1 against 2).
THREADS = 2
