"""Look inside ``nengo_dl.Converter``: where the Keras weights and biases end up, and what
``scale_firing_rates`` and ``synapse`` change.

Everything here is read from the Nengo objects the converter made, after building them with
Nengo's reference builder (:func:`build`), never assumed. Chapter 2 uses it to answer "how are
the weights computed for the SNN?": they are copied unchanged; ``scale_firing_rates=s`` gives
each neuron gain ``s`` and output amplitude ``1/s`` (so the bias current becomes ``s * b``), and
``synapse=tau`` puts a lowpass filter on the connections that leave neurons.

``nengo`` and ``nengo_dl`` are imported only when these functions are called.
"""
import warnings

import numpy as np

#: Nengo's default time step (seconds), used by :func:`build`.
DT = 0.001

# nengo_dl names the constant nodes that feed biases "<layer>.<node>.bias" and, for
# convolutions, the per-channel relay "<layer>.<node>.bias_relay".
_BIAS_SUFFIXES = (".bias", ".bias_relay")


def import_nengo():
    """Import ``nengo`` and ``nengo_dl`` without their harmless import-time warnings.

    Returns
    -------
    nengo, nengo_dl : module
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="This version of NengoDL has not been tested")
        import nengo
        import nengo_dl
    return nengo, nengo_dl


def make_converter(model, *, spiking=False, scale_firing_rates=None, synapse=None):
    """Convert a Keras model with ``nengo_dl.Converter``.

    Parameters
    ----------
    model : tf.keras.Model
        The trained Keras model. Its weights are read once, when the converter is made.
    spiking : bool
        False: ReLU layers become rate neurons (``nengo.RectifiedLinear``, NengoDL's default),
        which compute exactly what Keras computes. True: they become spiking neurons
        (``nengo.SpikingRectifiedLinear``) via ``swap_activations``; other activations are
        converted as NengoDL does by default.
    scale_firing_rates : float, dict or None
        Passed to the converter: multiplies every neuron's gain (and so its firing rate, Hz per
        unit of Keras activation) by this factor and divides its output amplitude by it. Higher
        rates mean more spikes per time step, so less noise but more activity. A dict keyed by
        Keras layer objects scales layers one by one. None is the same as 1.
    synapse : float or None
        Time constant (seconds) of the lowpass filter the converter puts on every connection
        that leaves neurons. Longer filters average more spikes (less noise) but respond more
        slowly to a new input. None: no filter.

    Returns
    -------
    nengo_dl.Converter
    """
    nengo, nengo_dl = import_nengo()
    # Keyed by Nengo's rate ReLU, the neuron type that every Keras ReLU flavour (tf.nn.relu,
    # "relu", ReLU layers) is first mapped to, so that the swap catches them all.
    swap = {nengo.RectifiedLinear(): nengo.SpikingRectifiedLinear()} if spiking else None
    return nengo_dl.Converter(model, swap_activations=swap,
                              scale_firing_rates=scale_firing_rates, synapse=synapse)


def build(converter, *, dt=DT):
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


def weighted_layers(model):
    """The Keras layers that have a kernel (Dense, Conv2D...), in model order."""
    return [layer for layer in model.layers if getattr(layer, "kernel", None) is not None]


def nengo_object(converter, layer):
    """The Nengo object (``Neurons``, ``Node``...) whose output is the layer's output.

    The layer is looked up by name in ``converter.model`` (the converter turns a Sequential
    model into a functional one, whose layer outputs are other tensors).
    """
    return converter.layers[converter.model.get_layer(layer.name).output]


def _is_bias_node(obj):
    label = getattr(obj, "label", None)  # Neurons have no label
    return label is not None and label.endswith(_BIAS_SUFFIXES)


def main_connection(converter, layer):
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


def kernel_in_nengo(converter, layer, built=None):
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


def _bias_connections(converter, post):
    return [conn for conn in converter.net.all_connections
            if conn.post_obj is post and _is_bias_node(conn.pre_obj)]


def _weights(conn, built):
    weights = built.params[conn].weights
    return weights.toarray() if hasattr(weights, "toarray") else np.asarray(weights)


def _constant(obj, converter, built):
    """Output of a bias node or bias relay (a constant vector)."""
    if obj.size_in == 0:
        return np.asarray(obj.output, dtype=np.float64)
    return sum(_weights(conn, built) @ _constant(conn.pre_obj, converter, built)
               for conn in _bias_connections(converter, obj))


def bias_in_nengo(converter, layer):
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


def keras_bias_per_unit(layer):
    """The layer's Keras bias, repeated for every output unit (channels-last order), shape (n,)."""
    bias = layer.bias.numpy()
    return np.broadcast_to(bias, tuple(layer.output.shape[1:])).ravel()


def effective_bias(converter, layer, built):
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


def weight_table(converter, model):
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


def scaling_table(model, scales=(1, 10, 100), *, spiking=True):
    """What ``scale_firing_rates`` changes, read from built networks.

    Parameters
    ----------
    model : tf.keras.Model
    scales : sequence of float
        Values of ``scale_firing_rates`` to convert with.
    spiking : bool
        Convert ReLU to spiking neurons (as :func:`make_converter`).

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
        converter = make_converter(model, spiking=spiking, scale_firing_rates=scale)
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


def synapse_table(converter):
    """Every connection of the converted network and the filter on it.

    Returns
    -------
    pandas.DataFrame
        ``from``, ``to`` (object labels, ``"<ensemble> neurons"`` for neurons), ``from neurons``
        (bool) and ``synapse tau (ms)`` (lowpass time constant in milliseconds; NaN: no filter).
    """
    import pandas as pd

    nengo, _ = import_nengo()

    def name(obj):
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


def run_converter(converter, x, *, n_steps, minibatch_size=None, seed=0):
    """Show each image to the converted network for ``n_steps`` steps; return the output.

    Parameters
    ----------
    converter : nengo_dl.Converter
        A converter of a model with one input and one output.
    x : ndarray, shape (n,) + input shape
        Inputs, each held constant for the whole run.
    n_steps : int
        Time steps (of ``dt`` = 1 ms) per input.
    minibatch_size : int, optional
        Images simulated together; must divide ``n``. Default: all ``n`` at once.
    seed : int
        Seed of the simulator, and of the converter's network if it has none (``net.seed`` is
        set to it). Nengo draws the spiking neurons' initial voltages (uniform in [0, 1)) when it
        builds the network, from the *network's* seed: without one, every run starts from other
        voltages and gives other spikes.

    Returns
    -------
    ndarray, shape (n, n_steps, n_out)
        The probed output at every step (no filter on the probe).
    """
    _, nengo_dl = import_nengo()
    x = np.asarray(x)
    n = len(x)
    minibatch_size = n if minibatch_size is None else minibatch_size
    if n % minibatch_size:
        raise ValueError(f"minibatch_size={minibatch_size} must divide the number of inputs {n}")
    model = converter.model
    inp, probe = converter.inputs[model.inputs[0]], converter.outputs[model.outputs[0]]
    tiled = np.tile(x.reshape((n, 1, -1)), (1, n_steps, 1))
    if converter.net.seed is None:
        converter.net.seed = seed
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No GPU support detected")
        with nengo_dl.Simulator(converter.net, minibatch_size=minibatch_size,
                                progress_bar=False, seed=seed) as sim:
            data = sim.predict({inp: tiled}, verbose=0)
    return np.asarray(data[probe])


def accuracy_over_time(outputs, y):
    """Fraction (0-1) of inputs classified correctly when read out at each step.

    Parameters
    ----------
    outputs : ndarray, shape (n, n_steps, n_classes)
        From :func:`run_converter`.
    y : ndarray of int, shape (n,)
        Labels.

    Returns
    -------
    ndarray, shape (n_steps,)
        The last entry is NengoDL's example readout (the output at the last step).
    """
    return np.mean(np.argmax(outputs, axis=-1) == np.asarray(y)[:, None], axis=0)
