"""Single neurons and rate curves: what one spiking neuron does with a constant input.

- :func:`integrate_and_fire`: independent integrate-and-fire (IF) neurons with constant input
  currents, the update rule of ``nengo.SpikingRectifiedLinear`` (chapter 3).
- :func:`measured_rate` and :func:`rate_error_bound`: the rate read from spike counts over
  ``n_steps`` steps and how far from the true rate it can be (chapter 3).
- :func:`scaled_rates` and :func:`scaled_forward`: what NengoDL's ``scale_firing_rates=s`` does
  to a neuron's average output, ``rates(s * x) / s``, for one neuron type or through a whole
  converted network in rate mode (chapter 4). Homogeneous for ReLU, not for LIF.
- :func:`plot_voltage_trace`, :func:`plot_rate_quantization`, :func:`plot_scaled_rate_curves`:
  the chapters' figures (matplotlib, imported only when plotting).

Units: a current ``J`` is in 1/s (Hz): an IF neuron with threshold 1 integrates ``J * dt`` per
step of ``dt`` seconds and so fires ``J`` spikes per second.
"""
import numpy as np

RESETS = ("subtract", "zero")


def integrate_and_fire(current, n_steps, *, dt=0.001, reset="subtract", initial_voltage=0.0):
    """Simulate independent integrate-and-fire neurons driven by constant currents.

    Each step, as ``nengo.SpikingRectifiedLinear``: ``v += max(J, 0) * dt``; the neuron emits
    ``n = floor(v)`` spikes (several in one step when ``J * dt > 1``); then the voltage is reset.

    Parameters
    ----------
    current : float or array_like
        Input current ``J`` of each neuron (1/s, i.e. Hz: the neuron's ideal firing rate).
    n_steps : int
        Number of time steps.
    dt : float
        Time step (seconds).
    reset : {"subtract", "zero"}
        "subtract" removes one unit of voltage per spike and keeps the excess charge (Nengo):
        the spike count is then ``floor(v0 + J * n_steps * dt)``, off by less than one spike.
        "zero" sets the voltage to 0 after a spike and loses the excess: rates are biased low,
        by an amount that does not shrink with longer runs.
    initial_voltage : float or array_like
        Voltage at the start (0: every neuron starts at rest), broadcast against ``current``.

    Returns
    -------
    voltage : ndarray, shape (n_steps,) + current shape
        Voltage after each step's reset (dimensionless, threshold 1).
    spikes : ndarray of int, shape (n_steps,) + current shape
        Spikes emitted in each step.
    """
    if reset not in RESETS:
        raise ValueError(f"unknown reset {reset!r}; use one of {RESETS}")
    if not isinstance(n_steps, (int, np.integer)) or n_steps <= 0:
        raise ValueError(f"n_steps={n_steps!r} must be a positive integer")
    if not dt > 0:
        raise ValueError(f"dt={dt!r} must be a positive number of seconds")
    current = np.asarray(current, dtype=np.float64)
    drive = np.maximum(current, 0) * dt  # voltage gained per step
    v = np.broadcast_to(np.asarray(initial_voltage, dtype=np.float64), current.shape).copy()
    voltage = np.empty((n_steps,) + current.shape)
    spikes = np.empty((n_steps,) + current.shape, dtype=np.int64)
    for t in range(n_steps):
        v += drive
        n = np.floor(v)
        if reset == "subtract":
            v -= n
        else:
            v[n > 0] = 0.0
        voltage[t], spikes[t] = v, n
    return voltage, spikes


def measured_rate(current, n_steps, *, dt=0.001, reset="subtract", initial_voltage=0.0):
    """Firing rate read from the spike count of an IF neuron over ``n_steps`` steps.

    Parameters
    ----------
    current, n_steps, dt, reset, initial_voltage
        As :func:`integrate_and_fire`.

    Returns
    -------
    ndarray, current shape
        Spikes / (``n_steps * dt``) in Hz. It can only take multiples of
        :func:`rate_error_bound`.
    """
    _, spikes = integrate_and_fire(current, n_steps, dt=dt, reset=reset,
                                   initial_voltage=initial_voltage)
    return spikes.sum(axis=0) / (n_steps * dt)


def rate_error_bound(n_steps, dt=0.001):
    """Resolution of a rate read from spike counts: one spike in ``n_steps * dt`` seconds (Hz).

    With reset by subtraction and the neuron starting at rest, the measured rate of
    :func:`measured_rate` is never further than this from the true rate ``J`` (it is
    ``floor(J T) / T`` with ``T = n_steps * dt``), so the error shrinks as 1 / T.
    """
    return 1.0 / (n_steps * dt)


def scaled_rates(neuron_type, x, scale):
    """Average output of a neuron under ``scale_firing_rates=scale``: ``rates(scale * x) / scale``.

    ``nengo_dl.Converter`` gives each neuron gain ``s`` (its bias is multiplied by ``s`` too) and
    output amplitude ``1 / s``, so a neuron whose ANN unit computes ``x = W h + b`` fires at
    ``rates(s * x)`` Hz and passes on ``rates(s * x) / s`` on average. For ReLU this is ``x``
    (positively homogeneous: ``max(0, s x) / s = max(0, x)``) whatever ``s``; for a nonlinear
    neuron such as LIF it is a different function for every ``s``.

    Parameters
    ----------
    neuron_type : nengo.neurons.NeuronType or None
        E.g. ``nengo.RectifiedLinear()`` or ``nengo.LIF()``; its ``rates(x, gain, bias)`` (Hz,
        including its own amplitude) is used. None: the ReLU ``max(0, s x)`` without nengo.
    x : array_like
        Input of the ANN unit (activation units), any shape.
    scale : float
        Firing-rate scale ``s`` > 0.

    Returns
    -------
    ndarray, shape of ``x``
        The neuron's average output in ANN activation units.
    """
    if not np.isscalar(scale) or not scale > 0:
        raise ValueError(f"scale={scale!r} must be a positive number")
    x = np.asarray(x, dtype=np.float64)
    if neuron_type is None:
        return np.maximum(scale * x, 0.0) / scale
    rates = neuron_type.rates(x.ravel(), scale, 0.0)
    return np.asarray(rates, dtype=np.float64).reshape(x.shape) / scale


def scaled_forward(network, x, *, scale_firing_rates=1.0, neuron_type=None, batch_size=256):
    """Rate-mode output of a converted network whose neurons are scaled as by NengoDL.

    Every spiking layer computes ``scaled_rates(neuron_type, W h + b, s)`` instead of
    ``max(0, W h + b)``; there are no spikes, so this isolates what the scaling does to the
    function the network computes (in float64).

    Parameters
    ----------
    network : SpikingNetwork
        From :func:`snnlib.convert.convert`.
    x : ndarray, shape (batch,) + input shape
        Inputs.
    scale_firing_rates : float or dict
        As in :func:`snnlib.simulate.simulate`: one scale (Hz per unit of activation) for every
        spiking layer, or a dict layer name -> scale (missing layers get 1).
    neuron_type : nengo.neurons.NeuronType or None
        Rate curve of the neurons; None is the ReLU (the function the ANN computes at any scale).
    batch_size : int
        Examples per chunk (bounds memory).

    Returns
    -------
    ndarray, shape (batch,) + output shape
        The network's output (Keras output units).
    """
    from snnlib.simulate import resolve_scales

    x = network.check_input(x)
    scales = resolve_scales(network, scale_firing_rates)
    outputs = []
    for start in range(0, len(x), batch_size):
        h = x[start:start + batch_size].astype(np.float64)
        for stage in network.stages:
            h = stage.linear(h)
            if stage.spiking:
                h = scaled_rates(neuron_type, h, scales[stage.name])
        outputs.append(h)
    return np.concatenate(outputs)


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------

def plot_voltage_trace(voltage, spikes, currents, *, dt=0.001):
    """Voltage and spikes of a few IF neurons over time, one panel per neuron.

    Parameters
    ----------
    voltage, spikes : ndarray, shape (n_steps, n_neurons)
        From :func:`integrate_and_fire` with a 1-D array of currents.
    currents : sequence of float
        The neurons' input currents (Hz), for the panel titles.
    dt : float
        Time step (seconds).

    Returns
    -------
    matplotlib.figure.Figure
        x: time (ms); y: voltage (threshold 1, dashed); a tick above the threshold per spike.
    """
    import matplotlib.pyplot as plt

    voltage, spikes = np.asarray(voltage), np.asarray(spikes)
    n_steps, n = voltage.shape
    times = np.arange(1, n_steps + 1) * dt * 1000.0
    fig, axes = plt.subplots(n, 1, figsize=(7, 1.9 * n + 0.4), sharex=True, squeeze=False)
    for i, ax in enumerate(axes[:, 0]):
        ax.plot(np.concatenate([[0.0], times]), np.concatenate([[0.0], voltage[:, i]]),
                drawstyle="steps-post", label="voltage v")
        ax.axhline(1.0, color="gray", linestyle="--", lw=1, label="threshold")
        spike_times = times[spikes[:, i] > 0]
        ax.plot(spike_times, np.full(spike_times.shape, 1.15), "|", color="C3", ms=12, mew=2,
                label=f"spikes ({int(spikes[:, i].sum())})")
        ax.set_ylim(-0.05, 1.3)
        ax.set_ylabel("voltage")
        ax.set_title(f"input current J = {currents[i]:g} Hz", fontsize=10)
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    axes[-1, 0].set_xlabel("time (ms)")
    fig.tight_layout()
    return fig


def plot_rate_quantization(true_rates, measured, errors, *, dt=0.001):
    """Rate read from spike counts against the true rate, and the largest error against time.

    Parameters
    ----------
    true_rates : ndarray, shape (n,)
        Input currents (Hz), increasing.
    measured : dict
        ``n_steps`` -> measured rates (Hz), shape (n,), reset by subtraction; drawn left.
    errors : dict
        Label (e.g. "reset to zero") -> dict ``n_steps`` -> largest |measured - true| (Hz);
        drawn right on log-log axes with the bound ``1 / (n_steps dt)``.
    dt : float
        Time step (seconds).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    for n_steps, rates in measured.items():
        left.plot(true_rates, rates, drawstyle="steps-post",
                  label=f"read over {n_steps * dt * 1000:g} ms")
    left.plot(true_rates, true_rates, "k--", lw=1, label="true rate")
    left.set_xlabel("true rate J (Hz)")
    left.set_ylabel("measured rate (Hz)")
    left.legend(fontsize=8)
    steps = sorted({n for curve in errors.values() for n in curve})
    durations = np.array(steps) * dt * 1000.0
    for (label, curve), marker in zip(errors.items(), "os^v"):
        right.plot(durations, [curve[n] for n in steps], marker + "-", label=label)
    right.plot(durations, [rate_error_bound(n, dt) for n in steps], "k--", lw=1,
               label="bound 1 / (T dt)")
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("reading time T dt (ms)")
    right.set_ylabel("largest rate error (Hz)")
    right.legend(fontsize=8)
    for ax in (left, right):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_scaled_rate_curves(x, curves, *, title=None):
    """Average neuron output against the ANN unit's input, one line per neuron type and scale.

    Parameters
    ----------
    x : ndarray, shape (n,)
        ANN unit inputs (activation units), positive and increasing (log axes).
    curves : dict
        Label -> :func:`scaled_rates` values on ``x``. Zeros (below a neuron's threshold) are
        not drawn on the log axes.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        Log-log axes; the ReLU (identity) line dashed black.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, values in curves.items():
        values = np.asarray(values, dtype=np.float64)
        ax.plot(x, np.where(values > 0, values, np.nan), label=label)
    ax.plot(x, x, "k--", lw=1.5, label="ReLU: max(0, x)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("input of the ANN unit x = Wh + b (activation units)")
    ax.set_ylabel("average output rates(s x) / s\n(activation units)")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.grid(alpha=0.3, which="both")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
