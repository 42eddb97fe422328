"""Typical Keras models (issues 11 and 20): ANN vs SNN accuracy with the recommended settings.

Run: ``.venv/bin/python benchmarks/models.py [--epochs 3] [--output benchmarks/RESULTS.md]``.

Each model kind of :mod:`snnlib.ann.zoo` (the six chains of ``zoo.MODELS``, then the graphs and
the new layer types of ``zoo.GRAPH_MODELS`` and ``zoo.LAYER_MODELS``) is built with seed 0,
trained for ``--epochs`` epochs on the 4,000 training images of ``load_mnist()`` and converted
with its documented fix (``spiking_max_pool=True`` for max pooling; for the MobileNet-like model
channel-wise normalization at percentile 99.99, chosen without the test images by
``benchmarks/normalization_choice.py``), normalized with percentile 99.9 on the first 1,000
training images (unless the fix says otherwise), and simulated on the whole 1,000-image test
split for 64 steps with ``scale_firing_rates=1000``, at most one spike per step, initial voltage
0.5, no synapse, the output averaged over the run (the book's protocol). Two neurons: the
papers' integrate-and-fire neuron with the signed current (``neuron="if"``, recommended) and
NengoDL's rectified spiking ReLU (``neuron="spiking_relu"``). Accuracies carry their 95 % Wilson
intervals; "vs ANN" is the exact McNemar test of the SNN at T = 64 against the ANN on the same
images.
"""
import argparse
import re
import sys
import warnings

import _common  # noqa: F401
from _common import accuracy_cell as cell
from _common import command_line, markdown_table, write_section

NEURONS = {"if": "IF (signed)", "spiking_relu": "rectified (NengoDL)"}


def short_notes(notes):
    """A few words for each thing the conversion changed."""
    text = "\n".join(notes)
    out = []
    folded = len(re.findall(r"is folded into the weights", text))
    kept = len(re.findall(r"kept as a non-spiking per-channel affine stage", text))
    if folded:
        out.append(f"{folded} BN folded")
    if kept:
        out.append(f"{kept} affine stage(s)")
    if "softmax" in text and "dropped" in text:
        out.append("softmax dropped (logits)")
    change = re.search(r"predicted class changes for ([\d.]+ %)", text)
    if change:
        out.append(f"max->avg pooling ({change.group(1)} of predictions change)")
    gated = len(re.findall(r"is converted as spiking max pooling", text))
    if gated:
        out.append(f"{gated} spiking max pool(s)")
    joins = len(re.findall(r"^(Add|Average|Concatenate|Subtract) ", text, re.M))
    if joins:
        out.append(f"{joins} join(s)")
    if "has a ReLU: it is a non-spiking readout" in text:
        out.append("ReLU readout (lambda = 1)")
    return "; ".join(out) or "-"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="training epochs per model")
    parser.add_argument("--n-test", type=int, default=1000, help="test images (at most 1000)")
    parser.add_argument("--models", nargs="+", help="model kinds (default: all ten)")
    parser.add_argument("--output", help="append the table to this markdown file")
    args = parser.parse_args(argv)

    from snnlib import load_mnist
    from snnlib.ann import zoo

    (x_train, y_train), (x_test, y_test) = load_mnist()
    x_test, y_test = x_test[:args.n_test], y_test[:args.n_test]
    rows = []
    for name in args.models or [*zoo.MODELS, *zoo.GRAPH_MODELS, *zoo.LAYER_MODELS]:
        model = zoo.build_and_train(name, x_train, y_train, epochs=args.epochs)
        results = {}
        for neuron in NEURONS:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # max_to_avg_pool's (in notes)
                results[neuron] = zoo.evaluate(model, x_train, x_test, y_test, name=name,
                                               neuron=neuron,
                                               convert_options=zoo.FIXES.get(name))
        first = results["if"]
        row = {"model": name, "ANN": cell(first.ann), "rate mode": cell(first.rate)}
        for neuron, label in NEURONS.items():
            result = results[neuron]
            for t in (32, 64):
                row[f"{label} T={t}"] = cell(result.snn[t])
            comparison = result.compare(64)
            row[f"{label}: SNN-ANN at 64"] = (f"{100 * comparison.difference:+.1f} "
                                             f"(p = {comparison.p_value:.2g})")
        row["verify max diff"] = f"{first.verify:.1e}"
        row["conversion"] = short_notes(first.notes)
        rows.append(row)
        print(f"{name}: " + ", ".join(f"{k} {v}" for k, v in row.items() if k != "model"),
              file=sys.stderr, flush=True)
    text = (f"Each model trained {args.epochs} epochs (seed 0) on the 4,000 training images; "
            f"accuracy (%) with 95 % interval on {len(x_test)} test images. Normalization: "
            "percentile 99.9 on the first 1,000 training images (the MobileNet-like model: "
            "per channel, percentile 99.99, snnlib.ann.zoo.FIXES); scale_firing_rates = 1000, "
            "at most one spike per step, initial voltage 0.5, no synapse, readout: the output "
            "averaged over the run. 'rate mode': the converted network without spikes (the ANN "
            "unless the conversion changes the function). 'SNN-ANN at 64': difference in points "
            "and exact McNemar p on the same images.\n\n" + markdown_table(rows))
    print(text)
    if args.output:
        write_section(args.output, "Typical models (issue 11)",
                      command_line("models.py", argv), text)


if __name__ == "__main__":
    main()
