"""The reader's workflow in nengo_dl.Simulator (issue 18): five settings on every model.

Run: ``.venv/bin/python benchmarks/nengo_workflow.py [--output benchmarks/RESULTS.md]
[--json benchmarks/nengo_workflow.json]`` (about 75 minutes on 2 cores; ``--models`` and
``--n-test`` for less).

Models: the book's convnet and its deeper network (shipped weights), and every model of
:mod:`snnlib.ann.zoo` (its six kinds and its two graphs with ``Add``, ``Concatenate`` and
``Average``), each built with seed 0 and trained for ``--epochs`` epochs on the 4,000 training
images of ``load_mnist()``. Each is converted by ``nengo_dl.Converter`` and run by
``nengo_dl.Simulator`` on the whole 1,000-image test split for 64 steps (dt = 1 ms) with the five
settings of :data:`snnlib.nengo.workflow.SETTINGS`: NengoDL's default spiking swap (s = 1); the
NengoDL example's recipe (s = 100, 10 ms synapse); the book's per-layer dict (percentile 99.9 on
the first 1,000 training images, lambda at 1000 Hz) with Nengo's neuron; the same dict with the
papers' integrate-and-fire neuron (at most one spike per step, v0 = 0.5); the papers' neuron with
several spikes per step and the dict at 4000 Hz (for networks that need more than 64 steps at
1000 Hz). Every neuron starts
where NengoDL starts it unless the setting says otherwise. Readouts: the output averaged over
the 64 steps (the book's) and the last step (the example's); 95 % Wilson intervals; exact
McNemar tests and Newcombe's paired 95 % interval of the difference against the Keras model.

The aim (issue 18): the last setting within 0.5 point of Keras at 64 steps on every model
(mean readout), and ahead of the example's settings.
"""
import argparse
import json
import sys
import time
import warnings

import _common  # noqa: F401
from _common import markdown_table, write_section

#: The book's models (shipped weights) and the zoo's, in the table's order.
BOOK_MODELS = ("convnet", "deep")


def load_models(names, x_train, y_train, epochs):
    """name -> trained Keras model."""
    import snnlib
    from snnlib.ann import zoo

    for name in names:
        if name == "convnet":
            yield name, snnlib.load_pretrained_convnet()
        elif name == "deep":
            yield name, snnlib.load_pretrained_deep_convnet()
        else:
            yield name, zoo.build_and_train(name, x_train, y_train, epochs=epochs)


def cell(entry):
    return f"{100 * entry['accuracy']:.1f} ({100 * entry['low']:.1f}-{100 * entry['high']:.1f})"


def verdict(entry):
    """Within 0.5 point of Keras, and no measurable loss (exact McNemar, 5 %)."""
    loss = -100 * entry["difference"]
    return loss <= 0.5 and not (entry["p_value"] < 0.05 and entry["difference"] < 0)


def main(argv=None):
    from snnlib.ann import zoo

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    every = list(BOOK_MODELS) + list(zoo.MODELS) + list(zoo.GRAPH_MODELS)
    parser.add_argument("--models", nargs="+", choices=every, help="default: all")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs (zoo models)")
    parser.add_argument("--n-test", type=int, default=1000, help="test images (at most 1000)")
    parser.add_argument("--n-steps", type=int, default=64)
    parser.add_argument("--minibatch-size", type=int, default=25)
    parser.add_argument("--output", help="write the table as a section of this markdown file")
    parser.add_argument("--json", help="write every number to this JSON file")
    args = parser.parse_args(argv)

    import snnlib
    from snnlib.nengo import workflow as nengo_workflow

    warnings.filterwarnings("ignore", message=".*TensorNode")  # max pooling, softmax
    warnings.filterwarnings("ignore", message="Converting sequential model")
    (x_train, y_train), (x_test, y_test) = snnlib.load_mnist()
    x_test, y_test = x_test[:args.n_test], y_test[:args.n_test]
    results, rows, checks = [], [], []
    started = time.perf_counter()
    for name, model in load_models(args.models or every, x_train, y_train, args.epochs):
        t0 = time.perf_counter()
        result = nengo_workflow.measure(model, x_train[:1000], x_test, y_test,
                                        n_steps=args.n_steps, name=name,
                                        minibatch_size=args.minibatch_size)
        summary = result.summary()
        summary["seconds"] = round(time.perf_counter() - t0, 1)
        results.append(summary)
        settings = summary["settings"]
        papers = settings["dict_papers_neuron"]["mean"]
        example = max(settings["nengo_example"][r]["accuracy"] for r in ("mean", "last"))
        ahead = result.compare("dict_papers_neuron", "nengo_example", "mean", "last")
        summary["papers_vs_example_last"] = {"difference": ahead.difference,
                                             "p_value": ahead.p_value}
        rows.append({
            "model": name, "Keras": f"{100 * summary['keras']:.1f}",
            **{settings[s.name]["label"] + f" ({s.readout})": cell(settings[s.name][s.readout])
               for s in nengo_workflow.SETTINGS},
            "papers' IF, mean - Keras (95 % CI)":
                f"{100 * papers['difference']:+.1f} ({100 * papers['difference_low']:+.1f} to "
                f"{100 * papers['difference_high']:+.1f}), p = {papers['p_value']:.2g}",
        })
        fast = settings["dict_papers_neuron_4000"]["mean"]
        gap = 100 * (papers["accuracy"] - example)
        checks.append(f"- {name}: papers' IF {100 * papers['difference']:+.1f} points vs Keras "
                      f"-> {'met' if verdict(papers) else 'NOT met'}; vs the example's best "
                      f"readout ({100 * example:.1f} %): {gap:+.1f} points (paired against its "
                      f"last step: {ahead}); at 4000 Hz, several spikes per step: "
                      f"{100 * fast['difference']:+.1f} points vs Keras -> "
                      f"{'met' if verdict(fast) else 'NOT met'}")
        print(f"{name}: {summary['seconds']:.0f} s", file=sys.stderr, flush=True)
    table = markdown_table(rows)
    body = (f"{args.n_test} test images, {args.n_steps} steps of 1 ms, nengo_dl.Simulator "
            f"(float32), minibatch {args.minibatch_size}. Each setting with the readout it is "
            "usually read with (mean: the output averaged over the run; last: the last step); "
            "accuracy % (95 % interval). Zoo models trained "
            f"{args.epochs} epochs, seed 0. Total {time.perf_counter() - started:.0f} s.\n\n"
            + table + "\n\nAim: the papers' neuron with the book's dict within 0.5 point of "
            "Keras at 64 steps (mean readout), no measurable loss (exact McNemar), and ahead "
            "of the example's settings:\n" + "\n".join(checks) + "\n")
    print(body)
    if args.output:
        command = "python benchmarks/nengo_workflow.py " + " ".join(argv or sys.argv[1:])
        write_section(args.output, "The reader's workflow in NengoDL", command, body)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"n_test": args.n_test, "n_steps": args.n_steps, "epochs": args.epochs,
                       "models": results}, handle, indent=1)
            handle.write("\n")


if __name__ == "__main__":
    main()
