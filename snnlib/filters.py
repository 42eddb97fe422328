"""Synaptic filtering: the lowpass filter that ``synapse=tau`` puts on every spiking connection.

``nengo.Lowpass(tau)``, discretized with a zero-order hold as Nengo does, turns a signal
``x[t]`` (spikes of height ``1 / (s dt)``, in activation units) into

    ``y[t] = a * y[t - 1] + (1 - a) * x[t]``,  ``a = exp(-dt / tau)``,

starting from ``y = 0``. Its gain at DC is 1 (a constant input ``c`` gives ``y -> c``), so the
filtered spike train keeps the mean that carries the ANN activation while its step-to-step
fluctuations shrink; the price is a rise time of about ``tau`` (63 % after ``tau`` seconds).
In :func:`snnlib.simulate.simulate` (as in Nengo) the next layer reads the filter's value of
the previous step, which adds one step of delay per filtered connection.

- :func:`lowpass`, :func:`step_response`, :func:`rise_steps`: the filter itself.
- :func:`neuron_trace`: one neuron's spike train from a real simulation, with its ANN activation.
- :func:`plot_filtered_spike_train`, :func:`plot_step_response`: the chapter's figures.
- :func:`synapse_label`: "none" / "5 ms" labels for tables and heat maps.
"""
import numpy as np


def _check_tau_dt(tau, dt):
    if not np.isscalar(dt) or not np.isfinite(dt) or dt <= 0:
        raise ValueError(f"dt={dt!r} must be a positive number of seconds")
    if tau is not None and (not np.isscalar(tau) or not np.isfinite(tau) or tau <= 0):
        raise ValueError(f"tau={tau!r} must be None or a positive time constant in seconds")


def lowpass_decay(tau, dt=0.001):
    """The filter's decay per step, ``a = exp(-dt / tau)`` (0 for ``tau=None``: no memory).

    Parameters
    ----------
    tau : float or None
        Time constant (seconds).
    dt : float
        Time step (seconds).

    Returns
    -------
    float
        In [0, 1): the fraction of the filter's value kept from one step to the next.
    """
    _check_tau_dt(tau, dt)
    return 0.0 if tau is None else float(np.exp(-dt / tau))


def lowpass(signal, tau, *, dt=0.001, axis=0):
    """Filter a signal with Nengo's discretized lowpass, starting from zero.

    Parameters
    ----------
    signal : array_like
        Values per time step along ``axis`` (e.g. a spike train in activation units: 0 or
        ``1 / (s dt)`` per step).
    tau : float or None
        Time constant (seconds). Larger: smoother output, slower response. None returns the
        signal unchanged (as a float64 copy).
    dt : float
        Time step (seconds).
    axis : int
        The time axis.

    Returns
    -------
    ndarray, float64, same shape as ``signal``
        ``y[t] = a y[t-1] + (1 - a) x[t]`` with ``a = exp(-dt / tau)`` and ``y[-1] = 0``; this is
        ``nengo.Lowpass(tau).filt(signal, dt=dt, y0=0)``.
    """
    a = lowpass_decay(tau, dt)
    x = np.moveaxis(np.asarray(signal, dtype=np.float64), axis, 0)
    y = np.empty_like(x)
    state = np.zeros(x.shape[1:], dtype=np.float64)
    for t in range(x.shape[0]):
        state = a * state + (1 - a) * x[t]
        y[t] = state
    return np.moveaxis(y, 0, axis)


def step_response(tau, n_steps, *, dt=0.001):
    """The filter's response to an input that switches from 0 to 1 at the first step.

    Parameters
    ----------
    tau : float or None
        Time constant (seconds).
    n_steps : int
        Number of steps.
    dt : float
        Time step (seconds).

    Returns
    -------
    ndarray (n_steps,)
        ``1 - a ** (t + 1)`` for step ``t = 0 .. n_steps - 1``: it reaches ``1 - 1/e`` (63 %)
        after ``tau / dt`` steps and approaches 1 (the filter does not change a constant).
    """
    if not isinstance(n_steps, (int, np.integer)) or n_steps <= 0:
        raise ValueError(f"n_steps={n_steps!r} must be a positive integer")
    return lowpass(np.ones(n_steps), tau, dt=dt)


def rise_steps(tau, fraction=1 - np.exp(-1), *, dt=0.001):
    """Steps until the step response first reaches ``fraction`` of its final value.

    Parameters
    ----------
    tau : float or None
        Time constant (seconds); None: 1 step (no filter).
    fraction : float
        In (0, 1); the default 1 - 1/e gives the time constant in steps (about ``tau / dt``).
    dt : float
        Time step (seconds).

    Returns
    -------
    int
        The smallest ``k >= 1`` with ``1 - a ** k >= fraction``.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction={fraction!r} must be in (0, 1)")
    a = lowpass_decay(tau, dt)
    if a == 0:
        return 1
    # 1 - a**k >= fraction  <=>  k >= log(1 - fraction) / log(a); a little slack for rounding
    return max(1, int(np.ceil(np.log1p(-fraction) / np.log(a) - 1e-9)))


def neuron_trace(network, x, layer, *, scale_firing_rates, n_steps, dt=0.001,
                 target_activation=None, seed=0, **simulate_kwargs):
    """One neuron's spike train in a real simulation, in the units the next layer receives.

    Simulates the single input ``x`` (shape (1,) + input shape) without a synapse, recording
    ``layer``, and picks the neuron whose ANN activation is closest to ``target_activation``
    (default: the layer's largest activation for this input).

    Parameters
    ----------
    network : SpikingNetwork
    x : ndarray, shape (1,) + input shape
        One input.
    layer : str
        A spiking layer.
    scale_firing_rates : float
        Firing-rate scale ``s`` (Hz per unit of activation): spikes have height ``1 / (s dt)``.
    n_steps : int
        Time steps.
    dt : float
        Time step (seconds).
    target_activation : float, optional
        Pick the neuron with the ANN activation closest to this (Keras units).
    seed : int
        Passed to the simulation.
    **simulate_kwargs
        Other options of :func:`snnlib.simulate.simulate` (not ``synapse``).

    Returns
    -------
    dict
        ``signal``: (n_steps,) the neuron's output per step in activation units (spike count x
        ``1 / (s dt)``); ``spikes``: (n_steps,) spike counts; ``activation``: the neuron's ANN
        activation (what the mean of ``signal`` should approach); ``rate_hz``: its measured rate;
        ``neuron``: the flat index; ``dt``, ``scale``.
    """
    from snnlib.simulate import simulate

    x = network.check_input(x)
    if len(x) != 1:
        raise ValueError(f"neuron_trace takes one input, got {len(x)}")
    if "synapse" in simulate_kwargs:
        raise ValueError("neuron_trace records the unfiltered spikes; filter them with lowpass")
    _, activations = network.forward(x, return_all=True, dtype=np.float64)
    if layer not in network.spiking_layers:
        raise ValueError(f"{layer!r} is not a spiking layer; spiking layers: "
                         f"{network.spiking_layers}")
    values = activations[layer].ravel()
    target = values.max() if target_activation is None else target_activation
    neuron = int(np.argmin(np.abs(values - target)))
    result = simulate(network, x, n_steps=n_steps, dt=dt, scale_firing_rates=scale_firing_rates,
                      record_spikes=[layer], seed=seed, **simulate_kwargs)
    spikes = result.spikes[layer][0].reshape(n_steps, -1)[:, neuron].astype(np.int64)
    return dict(signal=spikes / (float(scale_firing_rates) * dt), spikes=spikes,
                activation=float(values[neuron]), rate_hz=float(spikes.sum() / (n_steps * dt)),
                neuron=neuron, dt=dt, scale=float(scale_firing_rates))


def synapse_label(tau):
    """"none" for ``None`` (or NaN, as pandas stores it), else the time constant in ms."""
    if tau is None or (np.isscalar(tau) and np.isnan(tau)):
        return "none"
    return f"{1000 * float(tau):g} ms"


def plot_filtered_spike_train(trace, taus):
    """A neuron's spikes and their lowpass-filtered versions over time.

    Parameters
    ----------
    trace : dict
        From :func:`neuron_trace`.
    taus : sequence of float
        Time constants (seconds) to show.

    Returns
    -------
    matplotlib.figure.Figure
        Top: the spike times (ms). Bottom: the filtered signal for each tau and the neuron's ANN
        activation (dashed), in activation units.
    """
    import matplotlib.pyplot as plt

    signal, dt = trace["signal"], trace["dt"]
    times = np.arange(1, len(signal) + 1) * dt * 1000.0
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 4.2), sharex=True,
                                      gridspec_kw=dict(height_ratios=[1, 3]))
    spike_times = times[trace["spikes"] > 0]
    top.vlines(spike_times, 0, 1, color="black", lw=1)
    top.set_yticks([])
    top.set_ylabel("spikes")
    top.set_title(f"one neuron at {trace['rate_hz']:.0f} Hz: each spike is a pulse of "
                  f"height 1/(s dt) = {1 / (trace['scale'] * dt):g}")
    for tau in taus:
        bottom.plot(times, lowpass(signal, tau, dt=dt),
                    label=f"filtered, tau = {synapse_label(tau)}")
    bottom.axhline(trace["activation"], color="gray", ls="--",
                   label=f"ANN activation ({trace['activation']:.2f})")
    bottom.set_xlabel("time (ms)")
    bottom.set_ylabel("signal (activation units)")
    bottom.grid(alpha=0.3)
    bottom.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_step_response(taus, n_steps, *, dt=0.001):
    """Step responses of lowpass filters, with each time constant marked.

    Parameters
    ----------
    taus : sequence of float
        Time constants (seconds).
    n_steps : int
        Steps to show.
    dt : float
        Time step (seconds).

    Returns
    -------
    matplotlib.figure.Figure
        x: time (ms), y: filter output (fraction of the input step); a dot at t = tau, where
        the output reaches 1 - 1/e = 63 %.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.3))
    times = np.arange(1, n_steps + 1) * dt * 1000.0
    for i, tau in enumerate(taus):
        response = step_response(tau, n_steps, dt=dt)
        ax.plot(times, response, color=f"C{i}", label=f"tau = {synapse_label(tau)}")
        k = int(round(tau / dt))
        if k <= n_steps:
            ax.plot(times[k - 1], response[k - 1], "o", color=f"C{i}")
    ax.axhline(1 - np.exp(-1), color="gray", ls=":", label="1 - 1/e = 63 %")
    ax.set_xlabel("time since the input switched on (ms)")
    ax.set_ylabel("filter output (fraction of input)")
    ax.set_ylim(0, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
