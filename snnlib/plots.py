"""Plot helpers. Each returns a :class:`matplotlib.figure.Figure` with labelled axes."""
import matplotlib.pyplot as plt
import numpy as np


def plot_digits(images, labels, predictions=None, *, n=12, ncols=6, title=None):
    """Show the first ``n`` digits with their labels (and predictions, wrong ones in red).

    Parameters
    ----------
    images : ndarray, shape (m, 28, 28) or (m, 28, 28, 1)
        Pixel intensities in [0, 1].
    labels : ndarray of int, shape (m,)
        True digits.
    predictions : ndarray of int, shape (m,), optional
        Predicted digits; each title reads "label 3 / pred 5", in red where they differ.
    n : int
        How many digits to show (at most ``m``).
    ncols : int
        Digits per row.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    n = min(n, len(images))
    if n < 1:
        raise ValueError("plot_digits needs at least one image")
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.6 * ncols, 1.9 * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(np.asarray(images[i]).reshape(28, 28), cmap="gray_r", vmin=0, vmax=1)
        text = f"label {labels[i]}"
        color = "black"
        if predictions is not None:
            text += f" / pred {predictions[i]}"
            color = "black" if predictions[i] == labels[i] else "red"
        ax.set_title(text, fontsize=9, color=color)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_training_history(history):
    """Accuracy per epoch on the training and validation sets.

    Parameters
    ----------
    history : dict
        As returned by :func:`snnlib.train_convnet`: ``accuracy`` and optionally ``val_accuracy``
        lists, one value (0-1) per epoch.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = plt.subplots(figsize=(5, 3.2))
    epochs = np.arange(1, len(history["accuracy"]) + 1)
    ax.plot(epochs, 100 * np.asarray(history["accuracy"]), "o-", label="training images")
    if "val_accuracy" in history:
        ax.plot(epochs, 100 * np.asarray(history["val_accuracy"]), "s-", label="test images")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)")
    ax.set_xticks(epochs)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig
