"""NengoDL side by side: the same spiking network built by ``nengo_dl.Converter``.

:func:`nengo_scale_firing_rates` turns snnlib's normalization into NengoDL's per-layer
``scale_firing_rates``; :func:`build_nengo_converter` and :func:`run_nengo` build and run
NengoDL's network with the plain ``nengo.Simulator``, so that :func:`snnlib.simulate.simulate`
can be checked against it trajectory by trajectory. ``nengo`` and ``nengo_dl`` are imported only
here, and only when these functions are called.
"""
import warnings

import numpy as np


def _import_nengo_dl():
    """Import nengo and nengo_dl without the harmless version warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="This version of NengoDL has not been tested")
        import nengo
        import nengo_dl
    return nengo, nengo_dl


def nengo_scale_firing_rates(model, calibration, *, normalization="percentile", percentile=99.9,
                             max_rate=1000.0, include_zeros=False):
    """Per-layer ``scale_firing_rates`` that make NengoDL spike like snnlib's normalized network.

    In ``nengo_dl.Converter``, the neurons of layer l get input gain ``s_l`` and output amplitude
    ``1 / s_l``: they fire at ``s_l * a_l`` Hz for a Keras activation ``a_l``. snnlib's network
    normalized with lambda_l and simulated with ``scale_firing_rates=max_rate`` fires at
    ``max_rate * a_l / lambda_l`` Hz. So ``s_l = max_rate / lambda_l``, and the two simulations
    produce the same spikes and outputs (to float rounding).

    Parameters
    ----------
    model : tf.keras.Model
        The trained model (the one given to ``nengo_dl.Converter``).
    calibration : ndarray, shape (n,) + input shape
        Calibration inputs, as for :func:`snnlib.convert.convert`.
    normalization : {"max", "percentile"}
        How lambda_l is measured.
    percentile : float
        In (0, 100].
    max_rate : float
        Firing rate (Hz) that an activation equal to lambda_l maps to. 1000 Hz is one spike per
        step at dt = 1 ms, the most a one-spike-per-step neuron can emit.
    include_zeros : bool
        Percentile over all activations instead of the non-zero ones.

    Returns
    -------
    dict
        Keras layer object -> scale (Hz per unit of Keras activation), for each layer that
        ``nengo_dl.Converter`` turns into spiking neurons.
    """
    from snnlib.convert import convert

    if normalization is None:
        raise ValueError("nengo_scale_firing_rates needs normalization='max' or 'percentile'")
    if not np.isscalar(max_rate) or not max_rate > 0:
        raise ValueError(f"max_rate={max_rate!r} must be a positive rate in Hz")
    network = convert(model, calibration=calibration, normalization=normalization,
                      percentile=percentile, include_zeros=include_zeros)
    return {model.get_layer(name): max_rate / network.stage(name).scale
            for name in network.spiking_layers}


def layer_dict(model, scales):
    """A dict keyed by layer name -> the same dict keyed by Keras layer object (nengo_dl's)."""
    if not isinstance(scales, dict):
        return scales
    return {model.get_layer(key) if isinstance(key, str) else key: value
            for key, value in scales.items()}


def build_nengo_converter(model, *, scale_firing_rates=None, synapse=None, initial_voltage=0.0):
    """``nengo_dl.Converter`` with spiking ReLU neurons (``nengo.SpikingRectifiedLinear``).

    Parameters
    ----------
    model : tf.keras.Model
        The trained Keras model.
    scale_firing_rates : float, dict or None
        As ``nengo_dl.Converter``; a dict may be keyed by layer names or layer objects.
    synapse : float or None
        Lowpass time constant (seconds) on connections out of neurons.
    initial_voltage : float or "uniform"
        Starting voltage of every neuron; "uniform" keeps Nengo's random start in [0, 1).

    Returns
    -------
    nengo_dl.Converter
    """
    nengo, nengo_dl = _import_nengo_dl()
    import tensorflow as tf

    if initial_voltage == "uniform":
        neuron = nengo.SpikingRectifiedLinear()
    else:
        neuron = nengo.SpikingRectifiedLinear(
            initial_state={"voltage": nengo.dists.Choice([float(initial_voltage)])})
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="swap_activations contained")
        return nengo_dl.Converter(
            model, swap_activations={tf.nn.relu: neuron, nengo.RectifiedLinear(): neuron},
            scale_firing_rates=layer_dict(model, scale_firing_rates), synapse=synapse)


def run_nengo(converter, x, *, n_steps, dt=0.001, seed=0):
    """Run NengoDL's converted network in the reference ``nengo.Simulator``, one image at a time.

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
        Simulator seed (only matters for random initial voltages).

    Returns
    -------
    ndarray, shape (batch, n_steps, n_out)
        The probed output at every step.
    """
    nengo, _ = _import_nengo_dl()
    model = converter.model
    input_node = converter.inputs[model.inputs[0]]
    probe = converter.outputs[model.outputs[0]]
    current = {"x": np.zeros(input_node.size_out)}
    input_node.output = lambda t: current["x"]
    outputs = []
    with nengo.Simulator(converter.net, dt=dt, progress_bar=False, seed=seed) as sim:
        for image in np.asarray(x):
            current["x"] = image.ravel().astype(np.float64)
            sim.reset(seed=seed)
            sim.run_steps(n_steps)
            outputs.append(np.array(sim.data[probe]))
    return np.stack(outputs)
