"""Max pooling on spikes: the average-pooling swap against the spiking max pool, on the zoo's
max-pooling model, each paired against its ANN on the same test images.

Run: ``.venv/bin/python benchmarks/max_pooling.py [--epochs 3] [--output benchmarks/RESULTS.md]``.

The model (:func:`snnlib.ann.zoo.maxpool_softmax`, conv 16 -> max pool -> conv 32 -> max pool
-> dense 10 softmax) is built with seed 0 and trained as in ``benchmarks/models.py``; both
conversions use the zoo's recommended settings (percentile 99.9 on 1,000 training images, the
papers' IF neuron, one spike per step at most, initial voltage 0.5, no synapse, the output
averaged over the run). ``max_to_avg_pool=True`` computes another function (average pooling);
``spiking_max_pool=True`` keeps max pooling, gated on spikes by each input's spike count
(Rueckauer et al. 2017, section 2.2.5; the estimate of SNN Toolbox's TensorFlow simulator).
"""
import argparse
import sys
import warnings

import _common  # noqa: F401
from _common import accuracy_cell as cell
from _common import command_line, markdown_table, write_section

CHOICES = {"average-pooling swap (max_to_avg_pool=True)": {"max_to_avg_pool": True},
           "spiking max pool (spiking_max_pool=True)": {"spiking_max_pool": True}}
STEPS = (32, 64, 128)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="training epochs")
    parser.add_argument("--output", help="append the table to this markdown file")
    args = parser.parse_args(argv)

    from snnlib import load_mnist
    from snnlib.analysis import stats
    from snnlib.ann import zoo

    (x_train, y_train), (x_test, y_test) = load_mnist()
    model = zoo.build_and_train("maxpool_softmax", x_train, y_train, epochs=args.epochs)
    rows, results = [], {}
    for label, options in CHOICES.items():
        print(f"{label}: converting and simulating {len(x_test)} images x {max(STEPS)} steps",
              file=sys.stderr, flush=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # max_to_avg_pool's (in the notes)
            result = zoo.evaluate(model, x_train, x_test, y_test, steps=STEPS,
                                  convert_options=options)
        results[label] = result
        row = {"conversion": label, "ANN": cell(result.ann), "rate mode": cell(result.rate)}
        for t in STEPS:
            row[f"T={t}"] = cell(result.snn[t])
        comparison = result.compare(64)
        row["SNN-ANN at 64 (exact McNemar)"] = (f"{100 * comparison.difference:+.1f} "
                                                f"(p = {comparison.p_value:.2g})")
        row["verify max diff"] = f"{result.verify:.1e}"
        rows.append(row)
    swap, gate = (results[label] for label in CHOICES)
    between = stats.compare_paired(gate.snn_correct[64], swap.snn_correct[64])
    text = (f"The zoo's maxpool_softmax trained {args.epochs} epochs (seed 0) on the 4,000 "
            f"training images; accuracy (%) with 95 % interval on all {len(x_test)} test "
            "images; the zoo's recommended conversion and simulation. 'rate mode': the "
            "converted network without spikes. Spiking max pool against the swap at T = 64, "
            f"same images: {100 * between.difference:+.1f} points (exact McNemar "
            f"p = {between.p_value:.2g}).\n\n" + markdown_table(rows))
    print(text)
    if args.output:
        write_section(args.output, "Max pooling on spikes (issue 20)",
                      command_line("max_pooling.py", argv), text)


if __name__ == "__main__":
    main()
