"""Training with spikes in mind: firing-rate regularization, and comparisons at equal spike budgets.

NengoDL's "Converting a Keras model to a spiking neural network" example adds, during training, a
mean-squared-error term that pulls the firing rates of the convolutional layers towards a target
rate (``target_rate = 250`` Hz, loss weight ``1e-3``). :class:`RateRegularizer` is the same
penalty written as a Keras *activity regularizer*, so that the model stays an ordinary Keras model
(trained with ``model.fit``) and converts unchanged:

    penalty = strength * mean over neurons of (scale * a - target_rate)**2

where ``a`` is the layer's ReLU activation and ``scale`` the ``scale_firing_rates`` the network
will be simulated with, so ``scale * a`` is the neuron's firing rate in Hz. A neuron that the
ReLU silences on an example gets no gradient of its own from it (the ReLU's derivative is 0
there), but a convolution's kernel is shared by every position: the gradient from the active
positions changes the kernel, and so the inputs of the silent ones, some of which switch on
(chapter 7 measures the fraction of active neurons rising in both layers).

:func:`match_spike_budget` finds the ``scale_firing_rates`` that gives a network a given number of
spikes per example, so that two networks can be compared at equal spike budgets (spikes are
counted by :func:`snnlib.analysis.measures.spikes_per_example`).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from snnlib import validation
from snnlib.analysis.measures import spikes_per_example
from snnlib.ann.models import (
    PRETRAINED_DIR,
    build_convnet,
    compile_classifier,
    load_weights,
    train_convnet,
)
from snnlib.config import DT, MAX_STEPS

if TYPE_CHECKING:
    import tensorflow as tf

    from snnlib.network import SpikingNetwork
    from snnlib.sim.simulator import SimulationResult

__all__ = [
    "RATE_REG_WEIGHTS",
    "RATE_REG_INFO",
    "RATE_REG",
    "RateRegularizer",
    "add_rate_regularizers",
    "train_rate_regularized_convnet",
    "load_rate_regularized_convnet",
    "predicted_spikes_per_example",
    "match_spike_budget",
]

#: Weights of the rate-regularized convnet trained in chapter 7.
RATE_REG_WEIGHTS = PRETRAINED_DIR / "convnet_mnist_rate_reg.npz"
#: How those weights were made (settings and accuracies), beside them.
RATE_REG_INFO = PRETRAINED_DIR / "convnet_mnist_rate_reg.json"

#: Regularization settings of chapter 7 (training settings otherwise as
#: :data:`snnlib.ann.models.TRAINING`).
RATE_REG = {"target_rate": 100.0, "scale": 100.0, "strength": 1e-5, "layers": ["conv0", "conv1"]}


class RateRegularizer:
    """Keras activity regularizer pulling firing rates ``scale * a`` towards ``target_rate`` (Hz).

    Use it as ``activity_regularizer=`` of a layer with a ReLU activation (or through
    :func:`add_rate_regularizers`). Keras adds the returned value, divided by the batch size, to
    the training loss. A plain callable (Keras accepts any callable as activity regularizer), so
    importing this module does not import TensorFlow.

    Parameters
    ----------
    target_rate : float
        Firing rate (Hz) the active neurons are pulled towards. Higher: more spikes per second,
        more precise rates in a short time, more energy.
    scale : float
        The ``scale_firing_rates`` (Hz per unit of activation) the network will be simulated
        with: a neuron with activation ``a`` fires at ``scale * a`` Hz.
    strength : float
        Weight of the penalty relative to the cross-entropy (1/Hz^2). Too large and the network
        trades accuracy for uniform rates; too small and nothing changes.
    """

    def __init__(self, target_rate: float = 250.0, scale: float = 1.0,
                 strength: float = 1e-3) -> None:
        validation.real(target_rate, "target_rate", low=0, low_open=True, hint="Hz")
        validation.real(scale, "scale", low=0, low_open=True, hint="Hz per unit of activation")
        validation.real(strength, "strength", low=0, hint="1/Hz^2")
        self.target_rate = float(target_rate)
        self.scale = float(scale)
        self.strength = float(strength)

    def __call__(self, activations: tf.Tensor) -> tf.Tensor:
        """Penalty summed over the batch (Keras divides it by the batch size): a scalar tensor."""
        import tensorflow as tf

        a = tf.reshape(activations, (tf.shape(activations)[0], -1))
        per_example = tf.reduce_mean(tf.square(self.scale * a - self.target_rate), axis=1)
        return self.strength * tf.reduce_sum(per_example)

    def get_config(self) -> dict:
        return dict(target_rate=self.target_rate, scale=self.scale, strength=self.strength)


def add_rate_regularizers(model: tf.keras.Model, layers: Sequence[str], *, target_rate: float,
                          scale: float, strength: float) -> tf.keras.Model:
    """Attach a :class:`RateRegularizer` to the named layers of ``model`` (in place).

    Parameters
    ----------
    model : tf.keras.Model
        Not yet trained; the layers must have a ReLU activation.
    layers : sequence of str
        Names of the layers whose output rates are regularized.
    target_rate, scale, strength : float
        See :class:`RateRegularizer`.

    Returns
    -------
    tf.keras.Model
        The same model (functional models call each layer, so the regularizer takes effect in
        ``fit`` from now on).
    """
    for name in validation.names(layers, "layers"):  # "conv0" is one layer, not letters
        layer = model.get_layer(name)
        layer.activity_regularizer = RateRegularizer(target_rate, scale, strength)
    return model


def train_rate_regularized_convnet(
        x_train: np.ndarray, y_train: np.ndarray, *, target_rate: float | None = None,
        scale: float | None = None, strength: float | None = None,
        layers: Sequence[str] | None = None, epochs: int | None = None,
        batch_size: int | None = None, learning_rate: float | None = None,
        seed: int | None = None, validation_data: tuple | None = None,
        verbose: int = 0) -> tuple[tf.keras.Model, dict]:
    """Train the book's convnet with firing-rate regularization, deterministically.

    Same architecture, optimizer, data order and seed as :func:`snnlib.ann.models.train_convnet`;
    the
    only difference is the :class:`RateRegularizer` on ``layers``.

    Parameters
    ----------
    x_train : ndarray, shape (n, 28, 28, 1)
        Training images in [0, 1].
    y_train : ndarray, shape (n,)
        Integer labels.
    target_rate, scale, strength, layers : optional
        Default to :data:`RATE_REG` (the settings of the saved weights): 100 Hz at
        ``scale_firing_rates=100``, strength 1e-5 (1/Hz^2), on ``conv0`` and ``conv1``.
    epochs, batch_size, learning_rate, seed : optional
        Default to :data:`snnlib.ann.models.TRAINING`.
    validation_data : tuple, optional
        ``(x, y)`` evaluated after each epoch.
    verbose : int
        Keras verbosity.

    Returns
    -------
    model : tf.keras.Model
        Trained and compiled (the regularizers stay attached; they matter only in training).
    history : dict
        Per-epoch ``loss`` (cross-entropy + penalty), ``accuracy`` (and ``val_*``).
    """
    reg = dict(RATE_REG)
    reg.update({k: v for k, v in dict(target_rate=target_rate, scale=scale, strength=strength,
                                      layers=layers).items() if v is not None})

    def regularize(model):
        add_rate_regularizers(model, reg["layers"], target_rate=reg["target_rate"],
                              scale=reg["scale"], strength=reg["strength"])

    return train_convnet(x_train, y_train, epochs=epochs, batch_size=batch_size,
                         learning_rate=learning_rate, seed=seed, validation_data=validation_data,
                         verbose=verbose, prepare_model=regularize)


def load_rate_regularized_convnet() -> tf.keras.Model:
    """The rate-regularized convnet of chapter 7, from its saved weights, compiled.

    Raises
    ------
    FileNotFoundError
        The weights are missing (run chapters/07_training_with_spikes.ipynb).
    """
    if not RATE_REG_WEIGHTS.exists():
        raise FileNotFoundError(f"{RATE_REG_WEIGHTS} is missing: run "
                                "chapters/07_training_with_spikes.ipynb to train and save it")
    model = build_convnet()
    load_weights(model, RATE_REG_WEIGHTS)
    compile_classifier(model)
    return model


# --------------------------------------------------------------------------------------------
# Equal spike budgets
# --------------------------------------------------------------------------------------------

def predicted_spikes_per_example(network: SpikingNetwork, x: np.ndarray, scale: float, *,
                                 n_steps: int, dt: float = DT) -> float:
    """Spikes per example predicted from rate-mode activations, without simulating.

    A neuron with activation ``a`` and constant input, starting at voltage 0, fires
    ``floor(scale * a * n_steps * dt)`` spikes. Deeper layers receive spikes instead of a constant
    input and start late, so this is an estimate (it overestimates when neurons fire only a few
    times, as in the first steps of deeper layers); :func:`match_spike_budget` only starts from it.

    Parameters
    ----------
    network : SpikingNetwork
    x : ndarray
        Inputs.
    scale : float
        Global ``scale_firing_rates`` (Hz per unit of activation).
    n_steps : int
    dt : float
        Time step (seconds).
    """
    validation.real(scale, "scale", low=0, low_open=True, hint="Hz per unit of activation")
    validation.integer(n_steps, "n_steps", low=1, high=MAX_STEPS)
    validation.real(dt, "dt", low=0, low_open=True, hint="seconds")
    _, activations = network.forward(x, return_all=True)
    total = 0.0
    for name in network.spiking_layers:
        total += float(np.floor(scale * activations[name] * n_steps * dt).sum())
    return total / len(x)


def match_spike_budget(network: SpikingNetwork, x: np.ndarray, target_spikes: float, *,
                       n_steps: int, dt: float = DT, tolerance: float = 0.05, max_iter: int = 10,
                       scale_range: tuple[float, float] = (1e-2, 1e5),
                       **simulate_kwargs: Any) -> tuple[float, SimulationResult]:
    """Global ``scale_firing_rates`` giving ``target_spikes`` spikes per example (within tolerance).

    First solves :func:`predicted_spikes_per_example` for the scale by bisection (cheap: no
    simulation), then simulates: doubling or halving the scale until the target is bracketed,
    then interpolating in log-log space inside the bracket (spikes grow about as a power of the
    scale), until the measured spikes per example are within ``tolerance`` of the target.

    Parameters
    ----------
    network : SpikingNetwork
    x : ndarray, shape (batch,) + input shape
        The inputs the budget is measured on (the same ones the comparison uses).
    target_spikes : float
        Spikes per example, all spiking layers together, over ``n_steps`` steps.
    n_steps : int
    dt : float
        Time step (seconds).
    tolerance : float
        Accepted relative difference (0.05 = 5 %).
    max_iter : int
        Most simulations to run.
    scale_range : (float, float)
        Bracket of scales (Hz per unit of activation) for the bisection.
    **simulate_kwargs
        Passed to :func:`snnlib.sim.simulator.simulate` (``synapse``, ``seed``...).

    Returns
    -------
    scale : float
        The scale found.
    result : SimulationResult
        Its simulation (use its accuracy and spikes).

    Raises
    ------
    RuntimeError
        No scale within ``max_iter`` simulations gives spikes within the tolerance.
    """
    from snnlib.sim.simulator import simulate

    validation.real(target_spikes, "target_spikes", low=0, low_open=True,
                    hint="spikes per example")
    validation.integer(n_steps, "n_steps", low=1, high=MAX_STEPS)
    validation.real(dt, "dt", low=0, low_open=True, hint="seconds")
    validation.real(tolerance, "tolerance", low=0, low_open=True, hint="a relative difference")
    validation.integer(max_iter, "max_iter", low=1)
    if len(scale_range) != 2:
        raise validation.ArgumentError(f"scale_range={scale_range!r} must be (low, high)")
    low = validation.real(scale_range[0], "scale_range[0]", low=0, low_open=True)
    validation.real(scale_range[1], "scale_range[1]", low=low, low_open=True)
    lo, hi = np.log(scale_range[0]), np.log(scale_range[1])
    for _ in range(60):  # bisection in log-scale on the prediction
        mid = 0.5 * (lo + hi)
        if predicted_spikes_per_example(network, x, np.exp(mid), n_steps=n_steps,
                                        dt=dt) < target_spikes:
            lo = mid
        else:
            hi = mid
    scale = float(np.exp(0.5 * (lo + hi)))
    # Then simulate, keeping a bracket [below, above] of measured (log scale, log spikes) points;
    # the next scale interpolates log-spikes linearly between them (spikes ~ scale ** p).
    below, above, measured = None, None, None
    for _ in range(max_iter):
        result = simulate(network, x, n_steps=n_steps, dt=dt, scale_firing_rates=scale,
                          **simulate_kwargs)
        measured = spikes_per_example(result)
        if abs(measured - target_spikes) <= tolerance * target_spikes:
            return scale, result
        point = (np.log(scale), np.log(max(measured, 1e-3)))
        if measured < target_spikes:
            below = point
        else:
            above = point
        if below is None:
            scale /= 2.0
        elif above is None:
            scale *= 2.0
        else:
            (x0, y0), (x1, y1) = below, above
            t = np.clip((np.log(target_spikes) - y0) / (y1 - y0), 0.1, 0.9)
            scale = float(np.exp(x0 + t * (x1 - x0)))
    raise RuntimeError(f"no scale matched {target_spikes:.4g} spikes per example within "
                       f"{tolerance:.0%} in {max_iter} simulations (last: scale {scale:.4g}, "
                       f"{measured:.4g} spikes)")
