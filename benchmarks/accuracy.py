"""Accuracy: ANN vs SNN at T = 8, 16, 32, 64 steps for normalizations and neuron options.

Run: ``.venv/bin/python benchmarks/accuracy.py [--n-test 1000] [--n-calibration 1000]``;
``--model deep`` measures the deeper network (:func:`snnlib.load_pretrained_deep_convnet`)
instead: the signed-current IF neuron vs NengoDL's rectifying spiking ReLU, max vs percentile
normalization, at T = 16, 32, 64, 128, with 95 % intervals.

Base setting (the one the issue's aims are about): NengoDL's neuron (``neuron="spiking_relu"``),
the network normalized on the first
``--n-calibration`` *training* images, ``scale_firing_rates = 1 / dt = 1000`` Hz (lambda maps to
one spike per step), ``max_spikes_per_step=1``, reset by subtraction, initial voltage 0.5,
constant input, no synapse, readout of the output averaged over the steps (``--readout mean``;
without a synapse, the output of one step alone is very noisy). Each other row changes one
thing. The test images are only used for the table, never to choose a setting. Accuracy after
step T of one run of max(T) steps equals the accuracy of a run of T steps (the simulation is
causal: the readout at step T uses steps 1..T only).
"""
import argparse
import sys

import _common  # noqa: F401
import numpy as np
from _common import markdown_table, write_section

BASE = dict(scale_firing_rates=1000.0, max_spikes_per_step=1, reset="subtract",
            initial_voltage=0.5, input="constant", seed=0)

# label -> (normalization, percentile, changes to BASE)
CONFIGS = {
    "no normalization": (None, None, {}),
    "max": ("max", None, {}),
    "percentile 99.9": ("percentile", 99.9, {}),
    "percentile 99.99": ("percentile", 99.99, {}),
    "percentile 99.9, reset to zero": ("percentile", 99.9, dict(reset="zero")),
    "percentile 99.99, reset to zero": ("percentile", 99.99, dict(reset="zero")),
    "percentile 99.9, initial voltage 0": ("percentile", 99.9, dict(initial_voltage=0.0)),
    "percentile 99.99, initial voltage 0": ("percentile", 99.99, dict(initial_voltage=0.0)),
    "percentile 99.9, Poisson input": ("percentile", 99.9, dict(input="poisson")),
    "percentile 99.99, Poisson input": ("percentile", 99.99, dict(input="poisson")),
    # the rows above use NengoDL's neuron, which rectifies its input current every step; the
    # papers' integrate-and-fire neuron integrates the signed current (the drift over T of the
    # rows above is the rectification: a neuron fed spikes of both signs fires too fast)
    "no normalization, papers' IF neuron": (None, None, dict(neuron="if")),
    "percentile 99.9, papers' IF neuron": ("percentile", 99.9, dict(neuron="if")),
}


# the deeper network: label -> (normalization, percentile, neuron)
DEEP_CONFIGS = {
    "IF (signed current), max": ("max", None, "if"),
    "IF (signed current), percentile 99.9": ("percentile", 99.9, "if"),
    "spiking ReLU (NengoDL, rectified), max": ("max", None, "spiking_relu"),
    "spiking ReLU (NengoDL, rectified), percentile 99.9": ("percentile", 99.9, "spiking_relu"),
}


def deep(args):
    """The deeper network's table (text)."""
    from snnlib import convert, load_mnist, load_pretrained_deep_convnet, simulate
    from snnlib.analysis.stats import accuracy_interval, compare_paired

    model = load_pretrained_deep_convnet()
    (x_train, _), (x_test, y_test) = load_mnist()
    x, y = x_test[:args.n_test], y_test[:args.n_test]
    calibration = x_train[:args.n_calibration]
    ann_correct = model.predict(x, verbose=0).argmax(axis=1) == y
    ann = accuracy_interval(ann_correct)
    steps = sorted(args.steps or [16, 32, 64, 128])
    networks, rows, correct = {}, [], {}
    for label, (normalization, percentile, neuron) in DEEP_CONFIGS.items():
        key = (normalization, percentile)
        if key not in networks:
            networks[key] = convert(model, calibration=calibration, normalization=normalization,
                                    **({"percentile": percentile} if percentile else {}))
        result = simulate(networks[key], x, n_steps=steps[-1], neuron=neuron, **BASE)
        curve = result.scores(args.readout).argmax(axis=-1) == y[:, None]
        correct[label] = curve[:, -1]
        row = {"setting": label}
        for t in steps:
            interval = accuracy_interval(curve[:, t - 1])
            row[f"T={t}"] = (f"{100 * interval.value:.1f} "
                             f"[{100 * interval.low:.1f}, {100 * interval.high:.1f}]")
        rates = result.mean_rates
        row["rate (Hz) per layer"] = " / ".join(f"{rates[name]:.0f}" for name in rates)
        rows.append(row)
        print(f"{label}: " + ", ".join(f"{k} {v}" for k, v in row.items() if k != "setting"),
              file=sys.stderr, flush=True)
    labels = list(DEEP_CONFIGS)
    return (f"Deeper network (`load_pretrained_deep_convnet`: 6 convolutions with batch "
            f"normalization folded in, average pooling). ANN accuracy: **{100 * ann.value:.1f}%"
            f"** [{100 * ann.low:.1f}, {100 * ann.high:.1f}] on {len(x)} test images. SNN "
            f"accuracy (%) after T steps with its 95 % interval, readout '{args.readout}'; "
            f"calibration: the first {len(calibration)} training images; {BASE}. rate: mean "
            "firing rate of each spiking layer (relu0 ... relu5) over the run.\n\n"
            + markdown_table(rows) + "\n\nPaired tests at T = " + str(steps[-1])
            + " (exact McNemar on the same images):\n" + "\n".join(
                f"- {a} vs {b}: {compare_paired(correct[a], correct[b])}"
                for a, b in [(labels[1], labels[0]), (labels[3], labels[2]),
                             (labels[1], labels[3])]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="convnet", choices=["convnet", "deep"],
                        help="convnet: the book's convnet (default); deep: the deeper network")
    parser.add_argument("--n-test", type=int, default=1000, help="test images (at most 1000)")
    parser.add_argument("--n-calibration", type=int, default=1000, help="training images")
    parser.add_argument("--steps", type=int, nargs="+",
                        help="time steps T (default 8 16 32 64 128; deep: 16 32 64 128)")
    parser.add_argument("--readout", default="mean", choices=["last", "mean"],
                        help="mean: output averaged over the steps so far (default); last: the "
                        "output of step T alone (noisy without a synapse)")
    parser.add_argument("--output", help="append the table to this markdown file")
    args = parser.parse_args(argv)
    if args.model == "deep":
        text = deep(args)
        print(text)
        if args.output:
            command = "python benchmarks/accuracy.py " + " ".join(
                argv if argv is not None else sys.argv[1:])
            write_section(args.output, "Accuracy of the deeper network", command.strip(), text)
        return
    args.steps = args.steps or [8, 16, 32, 64, 128]

    from snnlib import convert, load_mnist, load_pretrained_convnet, simulate

    model = load_pretrained_convnet()
    (x_train, _), (x_test, y_test) = load_mnist()
    x, y = x_test[:args.n_test], y_test[:args.n_test]
    calibration = x_train[:args.n_calibration]
    ann = float(np.mean(model.predict(x, verbose=0).argmax(axis=1) == y))
    steps = sorted(args.steps)
    networks, rows = {}, []
    for label, (normalization, percentile, changes) in CONFIGS.items():
        key = (normalization, percentile)
        if key not in networks:
            kwargs = dict(calibration=calibration, normalization=normalization) \
                if normalization else {}
            if percentile is not None:
                kwargs["percentile"] = percentile
            networks[key] = convert(model, **kwargs)
        options = dict(BASE, **changes)
        result = simulate(networks[key], x, n_steps=steps[-1], **options)
        curve = result.accuracy_over_time(y, readout=args.readout)
        row = {"setting": label}
        for t in steps:
            row[f"T={t}"] = f"{100 * curve[t - 1]:.1f}"
        row["rate (Hz)"] = f"{np.mean([v for v in result.mean_rates.values()]):.0f}"
        rows.append(row)
        print(f"{label}: " + ", ".join(f"{k} {v}" for k, v in row.items() if k != "setting"),
              file=sys.stderr, flush=True)
    text = (f"ANN accuracy: **{100 * ann:.1f}%** on {len(x)} test images. SNN accuracy (%) "
            f"after T steps (dt = 1 ms), readout '{args.readout}'; calibration: the first "
            f"{len(calibration)} training images. Base: {BASE}; each row changes what it names. "
            "rate: mean over the spiking layers of the mean firing rate at the last T.\n\n"
            + markdown_table(rows))
    pct = {r["setting"]: r for r in rows}
    lines = []
    for label in ("percentile 99.9", "percentile 99.99"):
        for t, aim in ((32, 0.2), (16, 1.0)):
            if label in pct and f"T={t}" in pct[label]:
                gap = 100 * ann - float(pct[label][f"T={t}"])
                lines.append(f"- {label}, T = {t}: {gap:+.1f} points below the ANN "
                             f"(aim: <= {aim}) -> {'met' if gap <= aim + 1e-9 else 'not met'}")
    text += "\n\nAims of the issue:\n" + "\n".join(lines)
    print(text)
    if args.output:
        command = "python benchmarks/accuracy.py " + " ".join(argv if argv is not None
                                                              else sys.argv[1:])
        write_section(args.output, "Accuracy", command.strip(), text)


if __name__ == "__main__":
    main()
