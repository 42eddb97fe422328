"""NengoDL side by side: the same network built by ``nengo_dl.Converter``, run, and inspected.

The Nengo side of snnlib, with :mod:`snnlib.nengo.scales` (the per-layer dict),
:mod:`snnlib.nengo.neurons` (the papers' neuron as a Nengo neuron type) and
:mod:`snnlib.nengo.workflow` (the reader's workflow measured): ``nengo`` and ``nengo_dl`` are
imported only in these modules, and only when their functions are called (or, for
``nengo_neurons``, the module is imported), through :func:`import_nengo`:

- :func:`build_nengo_converter`: ``nengo_dl.Converter`` with rate or spiking ReLU neurons.
- :func:`run_nengo`: run it, with the reference ``nengo.Simulator`` (one image at a time; what
  :func:`snnlib.sim.simulator.simulate` reproduces trajectory for trajectory) or with
  ``nengo_dl.Simulator`` (batched, TensorFlow).
- :func:`nengo_scale_firing_rates`: the literature's normalization as NengoDL's per-layer
  ``scale_firing_rates``, for any model NengoDL converts (:mod:`snnlib.nengo.scales`).
- :func:`nengo_initial_voltages`: the random initial voltages Nengo draws for the converter's
  neurons (NengoDL's default start), for ``snnlib.simulate(..., initial_voltage=...)``.
- :func:`params_round_trip`: ``sim.save_params`` at one scale, ``sim.load_params`` at another
  (the Dense-bias pitfall).
- Reading what the converter built, from the Nengo objects after Nengo's reference builder
  (:func:`build`), never assumed (chapter 2): :func:`weight_table`, :func:`scaling_table`,
  :func:`synapse_table`, :func:`kernel_in_nengo`, :func:`bias_in_nengo`,
  :func:`effective_bias`. They show that the weights are copied unchanged;
  ``scale_firing_rates=s`` gives each neuron gain ``s`` and output amplitude ``1/s`` (so the bias
  current becomes ``s * b``), and ``synapse=tau`` puts a lowpass filter on the connections that
  leave neurons.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from snnlib import validation
from snnlib.config import DT, MAX_STEPS
from snnlib.nengo._import import import_nengo  # re-exported: it used to live here
from snnlib.progress import progress_bar

if TYPE_CHECKING:
    import pandas as pd
    import tensorflow as tf

__all__ = [
    "SIMULATORS",
    "layer_dict",
    "build_nengo_converter",
    "run_nengo",
    "nengo_initial_voltages",
    "params_round_trip",
    "accuracy_over_time",
    "CHANNEL_WISE_IN_NENGO",
    "nengo_scale_firing_rates",
    "build",
    "weighted_layers",
    "nengo_object",
    "main_connection",
    "kernel_in_nengo",
    "bias_in_nengo",
    "keras_bias_per_unit",
    "effective_bias",
    "weight_table",
    "scaling_table",
    "synapse_table",
]

SIMULATORS = ("nengo", "nengo_dl")

# nengo_dl names the constant nodes that feed biases "<layer>.<node>.bias" and, for
# convolutions, the per-channel relay "<layer>.<node>.bias_relay".
_BIAS_SUFFIXES = (".bias", ".bias_relay")


# --------------------------------------------------------------------------------------------
# Build and run
# --------------------------------------------------------------------------------------------

def layer_dict(model: tf.keras.Model, scales: Any) -> Any:
    """A dict keyed by layer name -> the same dict keyed by Keras layer object (nengo_dl's)."""
    if not isinstance(scales, dict):
        return scales
    return {model.get_layer(key) if isinstance(key, str) else key: value
            for key, value in scales.items()}


def build_nengo_converter(model: tf.keras.Model, *, spiking: bool = True,
                          scale_firing_rates: float | dict | None = None,
                          synapse: float | None = None,
                          initial_voltage: float | str | None = None,
                          inference_only: bool = False,
                          max_to_avg_pool: bool = False,
                          neuron: str | Any = "spiking_relu") -> Any:
    """``nengo_dl.Converter`` of a Keras model, with spiking (or rate) ReLU or LIF neurons.

    Pitfall this avoids: ``swap_activations={tf.nn.relu: neuron}`` matches only layers whose
    activation is ``tf.nn.relu``; a layer built with ``activation="relu"`` carries
    ``tf.keras.activations.relu``, which that key does not match (NengoDL only warns, and keeps
    the rate neuron). NengoDL first maps every ReLU flavour (``tf.nn.relu``, ``"relu"``, ReLU
    layers) to ``nengo.RectifiedLinear()`` and then applies the swap again, so the swap here is
    keyed by ``nengo.RectifiedLinear()``, which catches them all.

    Parameters
    ----------
    model : tf.keras.Model
        The trained Keras model. Its weights are read once, when the converter is made.
    spiking : bool
        True: ReLU layers become spiking neurons (``nengo.SpikingRectifiedLinear``). False: rate
        neurons (``nengo.RectifiedLinear``, NengoDL's default), which compute exactly what Keras
        computes. Other activations are converted as NengoDL does by default.
    scale_firing_rates : float, dict or None
        Passed to the converter: multiplies every neuron's gain (and so its firing rate, Hz per
        unit of Keras activation) by this factor and divides its output amplitude by it. Higher
        rates mean more spikes per time step, so less noise but more activity. A dict scales
        layers one by one; it may be keyed by layer names or Keras layer objects. None is the
        same as 1.
    synapse : float or None
        Time constant (seconds) of the lowpass filter the converter puts on every connection
        that leaves neurons. Longer filters average more spikes (less noise) but respond more
        slowly to a new input. None: no filter.
    initial_voltage : None, float or "uniform"
        Starting voltage of every spiking neuron. None (default): the neuron type's own, what
        ``nengo_dl.Converter`` builds: ``Uniform(0, 1)`` for ``nengo.SpikingRectifiedLinear``
        and ``nengo.LIF`` (drawn from the network's seed, once per network: every input of a
        run starts from the same draw), 0 for the papers' neuron (``"if"``). A number: that
        voltage for every neuron (``simulate``'s default is 0; pass 0 to reproduce it);
        "uniform": ``Uniform(0, 1)`` for any neuron. LIF neurons start out of their refractory
        period.
    inference_only : bool
        Passed to the converter: the network is only run, never trained in NengoDL. NengoDL
        needs it to convert BatchNormalization (its moving statistics become constants, the
        same inference-mode map that :func:`snnlib.convert.convert` folds into the weights).
    max_to_avg_pool : bool
        Passed to the converter: MaxPooling2D layers become average pooling (as
        ``snnlib.convert.convert(..., max_to_avg_pool=True)``; it changes the function).
    neuron : {"spiking_relu", "if", "lif"}, snnlib.NeuronModel or nengo.neurons.NeuronType
        With ``spiking=True``, the neuron each ReLU becomes: ``nengo.SpikingRectifiedLinear``
        (default; snnlib's ``"spiking_relu"``), the papers' signed-current integrate-and-fire
        :class:`snnlib.nengo.neurons.SpikingIntegrateAndFire` (``"if"``, or an
        :class:`snnlib.sim.neurons.IntegrateAndFire` whose reset and spike limit it takes) or
        ``nengo.LIF`` (``"lif"``, or an :class:`snnlib.sim.neurons.LIF` whose ``tau_rc``,
        ``tau_ref``, ``min_voltage`` and ``amplitude`` it takes): what
        ``simulate(..., neuron=...)`` reproduces. A Nengo neuron type is used as it is (with
        its own ``initial_state``; leave ``initial_voltage`` None). Scaled by
        ``scale_firing_rates`` like any neuron: gain ``s``, bias ``s * b``, amplitude ``/ s``.

    Returns
    -------
    nengo_dl.Converter
    """
    validation.boolean(spiking, "spiking")
    validation.optional(synapse, validation.real, "synapse", low=0, low_open=True,
                        hint="a time constant in seconds, or None")
    if scale_firing_rates is not None and not isinstance(scale_firing_rates, dict):
        validation.real(scale_firing_rates, "scale_firing_rates", low=0, low_open=True,
                        hint="Hz per unit of activation, a dict layer -> scale, or None")
    elif isinstance(scale_firing_rates, dict):
        for key, value in scale_firing_rates.items():
            validation.real(value, f"scale_firing_rates[{getattr(key, 'name', key)!r}]", low=0,
                            low_open=True, hint="Hz per unit of activation")
    if isinstance(initial_voltage, str):
        validation.choice(initial_voltage, "initial_voltage", ("uniform",))
    elif initial_voltage is not None:
        validation.real(initial_voltage, "initial_voltage", low=0, high=1, high_open=True,
                        hint="a voltage in units of the threshold 1, 'uniform', or None (the "
                        "neuron type's own start)")
    nengo, nengo_dl = import_nengo()
    swap = None
    if spiking:
        state = None
        if isinstance(initial_voltage, str):
            state = {"voltage": nengo.dists.Uniform(0, 1)}
        elif initial_voltage is not None:
            state = {"voltage": nengo.dists.Choice([float(initial_voltage)])}
        swap = {nengo.RectifiedLinear(): _nengo_neuron(nengo, neuron, state)}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="swap_activations contained")
        return nengo_dl.Converter(model, swap_activations=swap,
                                  scale_firing_rates=layer_dict(model, scale_firing_rates),
                                  synapse=synapse, inference_only=inference_only,
                                  max_to_avg_pool=max_to_avg_pool)


def _nengo_neuron(nengo: Any, neuron: str | Any, initial_state: dict | None) -> Any:
    """The Nengo neuron type for snnlib's neuron name or model (spiking ReLU, IF or LIF)."""
    from snnlib.sim.neurons import LIF, IntegrateAndFire, SpikingReLU

    if neuron == "spiking_relu" or isinstance(neuron, SpikingReLU):
        if isinstance(neuron, SpikingReLU) and (neuron.reset, neuron.max_spikes_per_step) != \
                ("subtract", None):
            raise ValueError(f"{neuron!r}: nengo.SpikingRectifiedLinear resets by subtraction "
                             "and may spike several times per step; for other options use "
                             "neuron='if' (snnlib.SpikingIntegrateAndFire, which takes them)")
        return nengo.SpikingRectifiedLinear(initial_state=initial_state)
    if neuron == "if" or isinstance(neuron, IntegrateAndFire):
        from snnlib.nengo.neurons import SpikingIntegrateAndFire

        model = neuron if isinstance(neuron, IntegrateAndFire) else IntegrateAndFire()
        return SpikingIntegrateAndFire(reset=model.reset,
                                       max_spikes_per_step=model.max_spikes_per_step,
                                       initial_state=initial_state)
    if neuron == "lif" or isinstance(neuron, LIF):
        lif = neuron if isinstance(neuron, LIF) else LIF()
        return nengo.LIF(tau_rc=lif.tau_rc, tau_ref=lif.tau_ref, min_voltage=lif.min_voltage,
                         amplitude=lif.amplitude, initial_state=initial_state)
    if isinstance(neuron, nengo.neurons.NeuronType):
        if initial_state is not None:
            raise ValueError(f"neuron={neuron!r} is a Nengo neuron type: give its start with "
                             "its own initial_state, and leave initial_voltage None")
        return neuron
    raise ValueError(f"neuron={neuron!r} has no Nengo equivalent here; use 'spiking_relu' "
                     "(nengo.SpikingRectifiedLinear), 'if' (snnlib.SpikingIntegrateAndFire, the "
                     "papers' signed-current neuron), 'lif' (nengo.LIF), or a Nengo neuron type")


def run_nengo(converter: Any, x: np.ndarray, *, n_steps: int, dt: float = DT, seed: int = 0,
              simulator: str = "nengo", minibatch_size: int | None = None,
              progress: bool | None = False) -> np.ndarray:
    """Show each input to the converted network for ``n_steps`` steps; return the output.

    Parameters
    ----------
    converter : nengo_dl.Converter
        From :func:`build_nengo_converter` (one input, one output).
    x : ndarray, shape (batch,) + input shape
        Inputs, each presented constantly for ``n_steps`` steps from a fresh start.
    n_steps : int
        Time steps per input.
    dt : float
        Time step (seconds).
    seed : int
        Simulator seed. Nengo draws random initial voltages (NengoDL's default start,
        ``Uniform(0, 1)``) when it builds the network, from the *network's* seed: the network
        gets this seed if it has none (without one, every run would start from other voltages;
        :func:`nengo_initial_voltages` reads the draws). Every input starts from the same
        voltages (with "nengo", from ``sim.reset(seed)``).
    simulator : {"nengo", "nengo_dl"}
        "nengo": the reference ``nengo.Simulator``, one input at a time (float64; what
        :func:`snnlib.sim.simulator.simulate` reproduces exactly, slow). "nengo_dl":
        ``nengo_dl.Simulator.predict`` on the whole batch (TensorFlow, float32, fast).
    minibatch_size : int, optional
        "nengo_dl" only: inputs simulated together; must divide the number of inputs.
        Default: all at once. NengoDL's memory grows with it (about 1.3 GB at 10 for the
        book's deeper network).
    progress : bool or None
        "nengo_dl" only: a progress bar over the minibatches (None: on unless
        ``SNNLIB_PROGRESS=0``).

    Returns
    -------
    ndarray, shape (batch, n_steps, n_out)
        The probed output at every step (no filter on the probe).
    """
    validation.choice(simulator, "simulator", SIMULATORS)
    validation.integer(n_steps, "n_steps", low=1, high=MAX_STEPS, hint="time steps per input")
    validation.real(dt, "dt", low=0, low_open=True, hint="seconds")
    validation.seed(seed)
    validation.optional(minibatch_size, validation.integer, "minibatch_size", low=1)
    x = validation.images(x, "x")
    nengo, nengo_dl = import_nengo()
    model = converter.model
    input_node = converter.inputs[model.inputs[0]]
    probe = converter.outputs[model.outputs[0]]
    if simulator == "nengo_dl":
        n = len(x)
        minibatch_size = n if minibatch_size is None else minibatch_size
        if n % minibatch_size:
            raise ValueError(f"minibatch_size={minibatch_size} must divide the number of "
                             f"inputs {n}")
        _seeded(converter, seed)
        outputs = []
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="No GPU support detected")
            with nengo_dl.Simulator(converter.net, dt=dt, minibatch_size=minibatch_size,
                                    progress_bar=False, seed=seed) as sim:
                # one minibatch per call, each from a fresh start (stateful=False): Keras's
                # predict on the whole tiled input held ~40 MB per image of the deeper network
                starts = range(0, n, minibatch_size)
                for start in progress_bar(starts, desc="nengo_dl (minibatches)",
                                          progress=progress):
                    part = x[start:start + minibatch_size].reshape((minibatch_size, 1, -1))
                    tiled = np.tile(part.astype(np.float32), (1, n_steps, 1))
                    data = sim.predict_on_batch({input_node: tiled}, stateful=False)
                    outputs.append(np.asarray(data[probe]))
        return np.concatenate(outputs)
    if minibatch_size is not None:
        raise ValueError("minibatch_size is for simulator='nengo_dl'; nengo.Simulator runs "
                         "one input at a time")
    current = {"x": np.zeros(input_node.size_out)}
    input_node.output = lambda t: current["x"]
    _seeded(converter, seed)
    outputs = []
    with nengo.Simulator(converter.net, dt=dt, progress_bar=False, seed=seed) as sim:
        for image in x:
            current["x"] = image.ravel().astype(np.float64)
            sim.reset(seed=seed)
            sim.run_steps(n_steps)
            outputs.append(np.array(sim.data[probe]))
    return np.stack(outputs)


def _seeded(converter: Any, seed: int) -> None:
    """Give the converted network a seed if it has none: Nengo draws the neurons' random
    initial voltages from the network's seed when it builds it (without one, every build, and
    so every run, would start from other voltages)."""
    if converter.net.seed is None:
        converter.net.seed = seed


def nengo_initial_voltages(converter: Any, network: Any = None, *, seed: int = 0) -> dict:
    """The initial voltages Nengo gives the converter's spiking neurons, per Keras layer.

    ``nengo_dl.Converter`` keeps each neuron type's default start: for
    ``nengo.SpikingRectifiedLinear`` a voltage drawn uniformly from [0, 1), once per network
    (every input of a run starts from the same draw). This reads those draws from the network
    built by Nengo's builder, with the seed :func:`run_nengo` uses, so that
    ``snnlib.simulate(network, x, initial_voltage=nengo_initial_voltages(converter, network))``
    starts exactly where ``run_nengo(converter, x)`` does (checked step for step in
    ``tests/test_nengo_equivalence.py``).

    Parameters
    ----------
    converter : nengo_dl.Converter
        From :func:`build_nengo_converter` (or ``nengo_dl.Converter`` itself).
    network : snnlib.SpikingNetwork, optional
        The same model converted by snnlib: the voltages come back for its spiking layers,
        reshaped to their output shapes (the form ``simulate`` takes). Default: every Keras
        layer whose output is a Nengo ensemble, keyed by layer name, as flat arrays.
    seed : int
        The seed given to the network if it has none (as :func:`run_nengo` does).

    Returns
    -------
    dict
        Layer name -> initial voltages (threshold units).
    """
    nengo, _ = import_nengo()
    validation.seed(seed)
    _seeded(converter, seed)
    built = build(converter)
    model = converter.model
    if network is not None:
        names = [stage.name for stage in network.stages if stage.spiking]
    else:
        names = [layer.name for layer in model.layers
                 if isinstance(converter.layers.get(layer.output), nengo.ensemble.Neurons)]
    voltages = {}
    for name in names:
        neurons = nengo_object(converter, model.get_layer(name))
        if not isinstance(neurons, nengo.ensemble.Neurons):
            raise LookupError(f"layer {name!r} has no neurons in the NengoDL network (its "
                              f"output is {neurons})")
        signals = built.sig[neurons]
        if "voltage" not in signals:
            raise LookupError(f"layer {name!r}: its neuron type "
                              f"{type(neurons.ensemble.neuron_type).__name__} has no voltage")
        values = np.array(signals["voltage"].initial_value, dtype=np.float64)
        if network is not None:
            values = values.reshape(network.stage(name).output_shape)
        voltages[name] = values
    return voltages


def params_round_trip(model: tf.keras.Model, x: np.ndarray, *, saved_scale: float | dict,
                      loaded_scale: float | dict, minibatch_size: int | None = None
                      ) -> np.ndarray:
    """``sim.save_params`` from a converter at one scale, ``sim.load_params`` into one at another.

    The reader's way of keeping what NengoDL trained: build ``nengo_dl.Converter(model,
    scale_firing_rates=saved_scale)``, save its parameters, build a converter with
    ``loaded_scale`` and load them. NengoDL stores a Dense (or Activation) layer's bias as the
    *ensemble bias*, already multiplied by the scale (``biases *= scale_firing_rates`` in
    ``nengo_dl/converter.py``), while a convolution's bias sits on a connection, unscaled. So
    across scales the loaded Dense biases are ``saved_scale * b`` where ``loaded_scale * b`` is
    needed: off by ``saved_scale / loaded_scale`` (nengo-dl issue 213). At the same scale the
    round trip is exact. Rate neurons (``spiking=False``), one step: the function the loaded
    network computes, without spike noise.

    Parameters
    ----------
    model : tf.keras.Model
    x : ndarray
        Inputs.
    saved_scale, loaded_scale : float or dict
        ``scale_firing_rates`` of the two converters.
    minibatch_size : int, optional
        As :func:`run_nengo` (must divide ``len(x)``).

    Returns
    -------
    ndarray, shape (len(x), n_out)
        The loaded network's output (compare with ``model.predict(x)``).
    """
    import tempfile
    from pathlib import Path

    _, nengo_dl = import_nengo()
    x = validation.images(x, "x")
    n = len(x)
    minibatch_size = n if minibatch_size is None else minibatch_size
    tiled = x.reshape((n, 1, -1))
    with tempfile.TemporaryDirectory(prefix="snnlib-params-") as folder:
        path = str(Path(folder) / "params")
        outputs = {}
        for stage, scale in (("save", saved_scale), ("load", loaded_scale)):
            converter = build_nengo_converter(model, spiking=False, scale_firing_rates=scale)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="No GPU support detected")
                with nengo_dl.Simulator(converter.net, minibatch_size=minibatch_size,
                                        progress_bar=False) as sim:
                    if stage == "save":
                        sim.save_params(path)
                    else:
                        sim.load_params(path)
                    data = sim.predict({converter.inputs[converter.model.inputs[0]]: tiled},
                                       verbose=0)
            outputs[stage] = np.asarray(data[converter.outputs[converter.model.outputs[0]]])
    return outputs["load"][:, -1]


def accuracy_over_time(outputs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Fraction (0-1) of inputs classified correctly when read out at each step.

    Parameters
    ----------
    outputs : ndarray, shape (n, n_steps, n_classes)
        From :func:`run_nengo`.
    y : ndarray of int, shape (n,)
        Labels.

    Returns
    -------
    ndarray, shape (n_steps,)
        The last entry is NengoDL's example readout (the output at the last step).
    """
    outputs = np.asarray(outputs)
    if outputs.ndim != 3:
        raise validation.ArgumentError(f"outputs have shape {outputs.shape}; expected (n, "
                                       "n_steps, n_classes)")
    y = validation.labels(y, len(outputs), "y", n_classes=outputs.shape[-1])
    return np.mean(np.argmax(outputs, axis=-1) == y[:, None], axis=0)


#: Why a channel-wise normalization has no ``scale_firing_rates`` in NengoDL, and what it takes.
CHANNEL_WISE_IN_NENGO = (
    "granularity='channel' cannot be expressed with nengo_dl.Converter's scale_firing_rates: "
    "it takes one number per layer (a dict keyed by Keras layer), so every neuron of a layer "
    "gets the same gain, while channel-wise normalization needs gain max_rate / lambda[c] for "
    "the neurons of channel c. It would take either (1) per-neuron gains: after conversion, set "
    "each ensemble's gain and bias per neuron (gain_i = max_rate / lambda[c(i)], bias_i = "
    "gain_i * b_i, e.g. ensemble.gain = ... and ensemble.bias = ... as arrays of one value per "
    "neuron, before building the simulator) and undo it on the way out by scaling the outgoing "
    "connection weights per input neuron by lambda[c(i)] / max_rate, since a neuron type has "
    "a single amplitude; or (2) rescaled weights: give nengo_dl.Converter a Keras model "
    "carrying the channel-normalized weights (snnlib.convert(..., granularity='channel')"
    ".weights(): W * lambda_prev[c_in] / lambda[c_out], b / lambda[c_out]) and one "
    "scale_firing_rates=max_rate for every layer. Per-layer normalization "
    "(granularity='layer') has the dict this function returns")


def nengo_scale_firing_rates(model: tf.keras.Model, calibration: np.ndarray, *,
                             normalization: str = "percentile", percentile: float = 99.9,
                             max_rate: float = 1000.0, include_zeros: bool = False,
                             granularity: str = "layer") -> dict:
    """Per-layer ``scale_firing_rates`` that make NengoDL spike like a normalized network.

    For any model ``nengo_dl.Converter`` converts (chains, residual ``Add``, ``Concatenate``,
    ``Average``, nested models, batch normalization, pooling, a softmax output): one scale per
    layer that NengoDL gives ReLU neurons (:func:`snnlib.nengo.scales.neuron_layers`: Dense and
    convolution layers with a ReLU activation, ``Activation("relu")`` and ``ReLU()`` layers,
    a ReLU output layer included; leaky ReLU layers too, for ``nengo_dl.SpikingLeakyReLU``).

    In ``nengo_dl.Converter``, the neurons of layer l get input gain ``s_l`` and output amplitude
    ``1 / s_l``: they fire at ``s_l * a_l`` Hz for a Keras activation ``a_l``. A network
    normalized with lambda_l (Diehl et al. 2015, Rueckauer et al. 2017) and simulated so that
    lambda maps to ``max_rate`` fires at ``max_rate * a_l / lambda_l`` Hz. So
    ``s_l = max_rate / lambda_l``, and the two produce the same spikes and outputs (to float
    rounding; for a model snnlib converts, exactly those of ``snnlib.convert(model,
    calibration=..., normalization=...)`` simulated at ``scale_firing_rates=max_rate``). The
    scales of different layers need not agree where branches meet (see
    :mod:`snnlib.nengo.scales`): each layer's amplitude ``1 / s_l`` puts its spikes back into
    Keras units.

    The full NengoDL call, with its pitfalls (:func:`build_nengo_converter` makes it)::

        import nengo
        import nengo_dl
        import tensorflow as tf

        # 1. the trained Keras weights are in `model` *before* the converter is built
        #    (NengoDL stores a Dense layer's bias already multiplied by its scale, so
        #    parameters saved with sim.save_params at one scale and loaded at another carry
        #    wrong biases; nengo-dl issue 213)
        scales = snnlib.nengo_scale_firing_rates(model, x_train[:1000])
        neuron = snnlib.SpikingIntegrateAndFire(max_spikes_per_step=1, initial_state={
            "voltage": nengo.dists.Choice([0.5])})  # or nengo.SpikingRectifiedLinear()
        converter = nengo_dl.Converter(
            model,
            # 2. key tf.nn.relu AND tf.keras.activations.relu: a layer built with
            #    activation="relu" (or Activation("relu")) carries the second, which the first
            #    key does not match; NengoDL then only warns and keeps the rate neuron.
            #    (Or key nengo.RectifiedLinear(), to which NengoDL maps every ReLU first.)
            swap_activations={tf.nn.relu: neuron, tf.keras.activations.relu: neuron},
            # 3. the keys are Keras layer objects (not names) of the layers that own the
            #    neurons: the separate Activation("relu") / ReLU layer when there is one, not
            #    the Conv2D or BatchNormalization before it. This dict is keyed that way.
            scale_firing_rates=scales,
            synapse=None,
            # 4. BatchNormalization becomes native Nengo objects only with inference_only=True
            #    (otherwise NengoDL falls back to a TensorNode, which nengo.Simulator cannot
            #    run); its moving statistics are then the same constants snnlib folds in
            inference_only=True,
        )

    Parameters
    ----------
    model : tf.keras.Model
        The trained model (the one given to ``nengo_dl.Converter``).
    calibration : ndarray, shape (n,) + input shape
        Calibration inputs (training images, never test images), floating point.
    normalization : {"max", "percentile"}, callable or NormalizationRule
        How lambda_l is measured (see :func:`snnlib.convert.convert`).
    percentile : float
        In (0, 100].
    max_rate : float
        Firing rate (Hz) that an activation equal to lambda_l maps to. 1000 Hz is one spike per
        step at dt = 1 ms, the most a one-spike-per-step neuron can emit.
    include_zeros : bool
        Percentile over all activations instead of the non-zero ones.
    granularity : {"layer"}
        Only "layer": a channel-wise normalization (``granularity="channel"`` in
        :func:`snnlib.convert.convert`) has no ``scale_firing_rates`` equivalent, and asking for
        it raises a ValueError that says what it would take.

    Returns
    -------
    dict
        Keras layer object -> scale (Hz per unit of Keras activation), for each layer that
        ``nengo_dl.Converter`` gives ReLU neurons, in model order.

    Raises
    ------
    ValueError
        ``granularity="channel"``: NengoDL's ``scale_firing_rates`` (a number, or a dict keyed
        by Keras layer) sets one gain per layer; per-channel lambdas need one per neuron. A
        model without ReLU layers, or a bad argument.
    """
    from snnlib.nengo.scales import layer_lambdas

    validation.real(max_rate, "max_rate", low=0, low_open=True, hint="a firing rate in Hz")
    if validation.choice(granularity, "granularity", ("layer", "channel")) == "channel":
        raise validation.ArgumentError(CHANNEL_WISE_IN_NENGO)
    lambdas = layer_lambdas(model, calibration, normalization=normalization,
                            percentile=percentile, include_zeros=include_zeros)
    return {layer: max_rate / value for layer, (value, _) in lambdas.items()}


# --------------------------------------------------------------------------------------------
# What the converter built (chapter 2)
# --------------------------------------------------------------------------------------------

def build(converter: Any, *, dt: float = DT) -> Any:
    """Build the converter's network with Nengo's reference builder, without simulating it.

    Parameters
    ----------
    converter : nengo_dl.Converter
    dt : float
        Time step (seconds).

    Returns
    -------
    nengo.builder.Model
        ``built.params[obj]`` holds what Nengo computed for each object: ``.gain`` and ``.bias``
        (arrays, one value per neuron) for an ensemble, ``.weights`` for a connection (the
        transform as it is applied, before neuron gains).
    """
    nengo, _ = import_nengo()
    built = nengo.builder.Model(dt=dt, label="converted")
    built.build(converter.net)
    return built


def weighted_layers(model: tf.keras.Model) -> list:
    """The Keras layers that have a kernel (Dense, Conv2D...), in model order."""
    return [layer for layer in model.layers if getattr(layer, "kernel", None) is not None]


def nengo_object(converter: Any, layer: tf.keras.layers.Layer) -> Any:
    """The Nengo object (``Neurons``, ``Node``...) whose output is the layer's output.

    The layer is looked up by name in ``converter.model`` (the converter turns a Sequential
    model into a functional one, whose layer outputs are other tensors).
    """
    return converter.layers[converter.model.get_layer(layer.name).output]


def _is_bias_node(obj: Any) -> bool:
    label = getattr(obj, "label", None)  # Neurons have no label
    return label is not None and label.endswith(_BIAS_SUFFIXES)


def main_connection(converter: Any, layer: tf.keras.layers.Layer) -> Any:
    """The Nengo connection that applies the layer's kernel (the one not coming from a bias).

    Raises
    ------
    LookupError
        No such connection, or more than one (the layer is not one that this module knows).
    """
    post = nengo_object(converter, layer)
    found = [conn for conn in converter.net.all_connections
             if conn.post_obj is post and not _is_bias_node(conn.pre_obj)]
    if len(found) != 1:
        raise LookupError(f"layer {layer.name!r}: expected 1 weight connection into {post}, "
                          f"found {len(found)}")
    return found[0]


def kernel_in_nengo(converter: Any, layer: tf.keras.layers.Layer, built: Any = None
                    ) -> np.ndarray:
    """The layer's kernel as Nengo applies it, rearranged into Keras's layout.

    A Dense layer becomes a ``nengo.Dense`` transform of shape (post, pre): the transpose of the
    Keras kernel (pre, post). A Conv2D layer becomes a ``nengo.Convolution`` transform whose
    kernel has the Keras layout (height, width, in channels, out channels).

    Parameters
    ----------
    converter : nengo_dl.Converter
    layer : tf.keras.layers.Layer
        A Dense or Conv2D layer of the converted model.
    built : nengo.builder.Model, optional
        From :func:`build`: read the built weights. Default: the transform's ``init``.

    Returns
    -------
    ndarray
        Same shape as ``layer.kernel``.
    """
    nengo, _ = import_nengo()
    conn = main_connection(converter, layer)
    if built is not None:
        weights = np.asarray(built.params[conn].weights)
    else:
        weights = np.asarray(conn.transform.init)
    if isinstance(conn.transform, nengo.Convolution):
        if not conn.transform.channels_last:
            raise ValueError(f"layer {layer.name!r}: channels-first convolutions are not handled")
        return weights
    if isinstance(conn.transform, nengo.Dense):
        return weights.T
    raise TypeError(f"layer {layer.name!r}: unexpected transform {type(conn.transform).__name__}")


def _bias_connections(converter: Any, post: Any) -> list:
    return [conn for conn in converter.net.all_connections
            if conn.post_obj is post and _is_bias_node(conn.pre_obj)]


def _weights(conn: Any, built: Any) -> np.ndarray:
    weights = built.params[conn].weights
    return weights.toarray() if hasattr(weights, "toarray") else np.asarray(weights)


def _constant(obj: Any, converter: Any, built: Any) -> np.ndarray:
    """Output of a bias node or bias relay (a constant vector)."""
    if obj.size_in == 0:
        return np.asarray(obj.output, dtype=np.float64)
    return sum(_weights(conn, built) @ _constant(conn.pre_obj, converter, built)
               for conn in _bias_connections(converter, obj))


def bias_in_nengo(converter: Any, layer: tf.keras.layers.Layer) -> tuple[str, np.ndarray]:
    """Where the converter stored the layer's bias, and the values stored there.

    Returns
    -------
    where : str
        ``"ensemble bias"`` (a layer with neurons and one bias per neuron, e.g. Dense + ReLU: the
        values are the ensemble's ``bias``), ``"bias node -> relay -> neurons"`` (a convolution
        with neurons: one bias per channel, on the connection from a constant node to a relay
        node, then broadcast to every position), or ``"bias node -> node"`` (a linear layer: a
        connection from a constant node into the layer's passthrough node).
    values : ndarray
        The stored values (scaled by ``scale_firing_rates`` for ``"ensemble bias"``; unscaled for
        the connections, whose input is multiplied by the neurons' gain instead).
    """
    nengo, _ = import_nengo()
    post = nengo_object(converter, layer)
    conns = _bias_connections(converter, post)
    if not conns:
        if isinstance(post, nengo.ensemble.Neurons) and isinstance(post.ensemble.bias, np.ndarray):
            return "ensemble bias", np.asarray(post.ensemble.bias)
        raise LookupError(f"layer {layer.name!r}: no bias found in the Nengo network")
    (conn,) = conns
    if conn.pre_obj.label.endswith(".bias_relay"):
        (feed,) = _bias_connections(converter, conn.pre_obj)
        return "bias node -> relay -> neurons", np.asarray(feed.transform.init)[:, 0]
    return "bias node -> node", np.asarray(conn.transform.init)[:, 0]


def keras_bias_per_unit(layer: tf.keras.layers.Layer) -> np.ndarray:
    """The layer's Keras bias, repeated for every output unit (channels-last order), shape (n,)."""
    bias = layer.bias.numpy()
    return np.broadcast_to(bias, tuple(layer.output.shape[1:])).ravel()


def effective_bias(converter: Any, layer: tf.keras.layers.Layer, built: Any) -> np.ndarray:
    """Constant input current of each unit of the layer, from the built network.

    For neurons this is ``gain * (bias arriving on connections) + ensemble bias``: the current
    a neuron gets when its weighted input is zero (units of the neuron's input, "Keras
    activation units times gain"). For a linear layer (a passthrough node) it is the bias that
    arrives on its bias connection.

    Returns
    -------
    ndarray, shape (n_units,)
    """
    nengo, _ = import_nengo()
    post = nengo_object(converter, layer)
    arriving = sum((_weights(conn, built) @ _constant(conn.pre_obj, converter, built)
                    for conn in _bias_connections(converter, post)), np.zeros(post.size_in))
    if isinstance(post, nengo.ensemble.Neurons):
        params = built.params[post.ensemble]
        return params.gain * arriving + params.bias
    return arriving


def weight_table(converter: Any, model: tf.keras.Model) -> pd.DataFrame:
    """Layer by layer: the Keras kernel and bias beside what Nengo holds.

    Parameters
    ----------
    converter : nengo_dl.Converter
        Made from ``model``.
    model : tf.keras.Model

    Returns
    -------
    pandas.DataFrame
        One row per layer with a kernel: ``layer``, ``Keras kernel`` (shape), ``Nengo transform``
        (type and shape), ``kernel max |diff|`` (largest absolute difference between the
        Keras kernel and the built Nengo weights, in Keras layout), ``bias stored as``, ``Nengo
        bias`` (shape) and ``bias max |diff|`` (stored values vs Keras bias; equal only without
        ``scale_firing_rates`` where the bias is an ensemble bias).
    """
    import pandas as pd

    built = build(converter)
    rows = []
    for layer in weighted_layers(model):
        conn = main_connection(converter, layer)
        transform = conn.transform
        shape = transform.kernel_shape if hasattr(transform, "kernel_shape") else transform.shape
        kernel = kernel_in_nengo(converter, layer, built)
        where, bias = bias_in_nengo(converter, layer)
        keras_bias = layer.bias.numpy()
        rows.append({
            "layer": layer.name,
            "Keras kernel": tuple(layer.kernel.shape),
            "Nengo transform": f"{type(transform).__name__} {tuple(shape)}",
            "kernel max |diff|": float(np.max(np.abs(kernel - layer.kernel.numpy()))),
            "bias stored as": where,
            "Nengo bias": tuple(bias.shape),
            "bias max |diff|": float(np.max(np.abs(bias - keras_bias))),
        })
    return pd.DataFrame(rows)


def scaling_table(model: tf.keras.Model, scales: Sequence[float] = (1, 10, 100), *,
                  spiking: bool = True) -> pd.DataFrame:
    """What ``scale_firing_rates`` changes, read from built networks.

    Parameters
    ----------
    model : tf.keras.Model
    scales : sequence of float
        Values of ``scale_firing_rates`` to convert with.
    spiking : bool
        Convert ReLU to spiking neurons (as :func:`build_nengo_converter`).

    Returns
    -------
    pandas.DataFrame
        One row per scale and layer with neurons: ``s``, ``layer``, ``weights max |diff|``
        (built weights vs Keras kernel), ``gain`` (the single gain value of all its neurons;
        NaN if they differ), ``bias max |diff from s*b|`` (effective bias current vs ``s`` times
        the Keras bias), ``amplitude`` (output of one spike, times 1/dt) and ``amplitude * s``.
    """
    import pandas as pd

    nengo, _ = import_nengo()
    rows = []
    for scale in scales:
        converter = build_nengo_converter(model, spiking=spiking, scale_firing_rates=scale,
                                          initial_voltage="uniform")
        built = build(converter)
        for layer in weighted_layers(model):
            post = nengo_object(converter, layer)
            if not isinstance(post, nengo.ensemble.Neurons):
                continue
            gain = np.unique(built.params[post.ensemble].gain)
            amplitude = post.ensemble.neuron_type.amplitude
            kernel = kernel_in_nengo(converter, layer, built)
            bias = effective_bias(converter, layer, built)
            rows.append({
                "s": scale,
                "layer": layer.name,
                "weights max |diff|": float(np.max(np.abs(kernel - layer.kernel.numpy()))),
                "gain": float(gain[0]) if len(gain) == 1 else float("nan"),
                "bias max |diff from s*b|": float(np.max(np.abs(
                    bias - scale * keras_bias_per_unit(layer).astype(np.float64)))),
                "amplitude": float(amplitude),
                "amplitude * s": float(amplitude * scale),
            })
    return pd.DataFrame(rows)


def synapse_table(converter: Any) -> pd.DataFrame:
    """Every connection of the converted network and the filter on it.

    Returns
    -------
    pandas.DataFrame
        ``from``, ``to`` (object labels, ``"<ensemble> neurons"`` for neurons), ``from neurons``
        (bool) and ``synapse tau (ms)`` (lowpass time constant in milliseconds; NaN: no filter).
    """
    import pandas as pd

    nengo, _ = import_nengo()

    def name(obj: Any) -> str:
        if isinstance(obj, nengo.ensemble.Neurons):
            return f"{obj.ensemble.label} neurons"
        return obj.label

    rows = []
    for conn in converter.net.all_connections:
        synapse = conn.synapse
        rows.append({
            "from": name(conn.pre_obj),
            "to": name(conn.post_obj),
            "from neurons": isinstance(conn.pre_obj, nengo.ensemble.Neurons),
            "synapse tau (ms)": float("nan") if synapse is None else 1000 * float(synapse.tau),
        })
    return pd.DataFrame(rows)
