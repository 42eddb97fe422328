"""Quantized weights and energy per inference, on the book's convnet and the deeper network.

Run: ``.venv/bin/python benchmarks/quantization.py [--network convnet] [--network deeper]
[--steps 64] [--output benchmarks/RESULTS.md]`` (both networks by default; one section each).

Both pretrained networks are normalized as recommended (percentile 99.9 on the first 1,000
training images) and quantized with :func:`snnlib.quantize` (max rule, k = 2 ... 8 bits, per layer
and per channel; biases and thresholds on the weights' scale). Each runs with the recommended
simulation (the papers' IF neuron at 1000 Hz, one spike per step at most, membranes starting at
0.5, float64) on all 1,000 test images for ``--steps`` steps. Accuracy with its 95 % interval,
and the paired difference from the float network (Newcombe interval, exact McNemar p).

Energy (:mod:`snnlib.analysis.energy`, KerasSpiking's constants): the ANN on CPU, GPU and ARM
against the float and 8-bit networks on Loihi, SpiNNaker 2 and SpiNNaker, each spiking network
run only up to its latency (the first step from which its accuracy stays within one point of
the ANN's; a run that never gets there is charged for all its steps, and the table says so), and
as NengoLoihi's neurons run it (``loihi_relu``: one spike per step, reset to zero)
at a rate where they stay below 500 Hz (lambda at 250 Hz), with its own latency.
"""
import argparse
import sys

import _common  # noqa: F401
import numpy as np
from _common import accuracy_cell as cell
from _common import command_line, markdown_table, write_section

BITS = (2, 3, 4, 5, 6, 8)
LOIHI = {"neuron": "loihi_relu", "scale_firing_rates": 250.0}


def paired(correct, reference):
    from snnlib.analysis import stats

    comparison = stats.compare_paired(correct, reference)
    low, high = stats.paired_difference_interval(correct, reference)
    return (f"{100 * comparison.difference:+.1f} ({100 * low:+.1f} to {100 * high:+.1f}), "
            f"p = {comparison.p_value:.2g}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", action="append", choices=("convnet", "deeper"),
                        help="a network to measure (repeat for both; default: both)")
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--output", help="append the tables to this markdown file")
    args = parser.parse_args(argv)
    args.argv = argv

    import snnlib
    from snnlib.analysis import energy, protocol, stats
    from snnlib.ann import zoo

    (x_train, _), (x_test, y_test) = snnlib.load_mnist()
    calibration = x_train[:zoo.N_CALIBRATION]
    recipe = dict(zoo.RECOMMENDED_SIMULATION, dtype=np.float64)
    loaders = {"convnet": snnlib.load_pretrained_convnet,
               "deeper": snnlib.load_pretrained_deep_convnet}
    for label in args.network or list(loaders):
        bits_rows, energy_rows = [], []
        model = loaders[label]()
        ann = np.argmax(snnlib.keras_predict.predict(model, x_test), axis=-1) == y_test
        network = snnlib.convert(model, calibration=calibration,
                                 **zoo.RECOMMENDED_NORMALIZATION)
        print(f"{label}: float network", file=sys.stderr, flush=True)
        base = snnlib.simulate(network, x_test, n_steps=args.steps, **recipe).correct(y_test)
        bits_rows.append({"network": label, "weights": "float (64 bit)",
                          "accuracy % (95 % CI)": cell(stats.accuracy_interval(base)),
                          "vs float, points (95 % CI), McNemar": "",
                          "vs ANN": paired(base, ann)})
        for granularity in ("layer", "channel"):
            for bits in BITS:
                print(f"{label}: {bits} bits per {granularity}", file=sys.stderr, flush=True)
                quantized = snnlib.quantize(network, bits, granularity=granularity)
                correct = snnlib.simulate(quantized, x_test, n_steps=args.steps,
                                          **recipe).correct(y_test)
                bits_rows.append({"network": label, "weights": f"{bits} bit, per {granularity}",
                                  "accuracy % (95 % CI)": cell(stats.accuracy_interval(correct)),
                                  "vs float, points (95 % CI), McNemar": paired(correct, base),
                                  "vs ANN": paired(correct, ann)})
        for device in ("cpu", "gpu", "arm"):
            cost = energy.ann_energy(network, device)
            energy_rows.append({"network": label, "model": "ANN", "device": device,
                                "steps charged": "-",
                                "accuracy there %": f"{100 * ann.mean():.1f}",
                                "operations / inference": f"{cost['macs']:.3g} MACs",
                                "energy / inference (J)": f"{cost['total']:.2g}"})
        for weights, net in (("float", network), ("8 bit", snnlib.quantize(network, 8))):
            for neuron_label, settings in (("IF at 1000 Hz", recipe),
                                           ("Loihi ReLU at 250 Hz",
                                            dict(recipe, max_spikes_per_step=None, **LOIHI))):
                run = snnlib.simulate(net, x_test, n_steps=args.steps, **settings)
                curve = run.accuracy_over_time(y_test)
                latency = protocol.latency_steps(curve, ann.mean())
                if np.isnan(latency):  # never within one point: charged for the whole run
                    upto, steps = run, f"{args.steps} (never within 1 pt)"
                else:
                    upto = snnlib.simulate(net, x_test, n_steps=int(latency), **settings)
                    steps = str(int(latency))
                accuracy = curve[upto.n_steps - 1]
                for device in ("loihi", "spinnaker2", "spinnaker"):
                    cost = energy.snn_energy(net, upto, device)
                    energy_rows.append({
                        "network": label, "model": f"{weights}, {neuron_label}",
                        "device": device, "steps charged": steps,
                        "accuracy there %": f"{100 * accuracy:.1f}",
                        "operations / inference": f"{cost['synops']:.3g} synops",
                        "energy / inference (J)": f"{cost['total']:.2g}"})
        write_tables(args, label, bits_rows, energy_rows)


def write_tables(args, label, bits_rows, energy_rows):
    body = ("Accuracy vs bits (all 1,000 test images, T = "
            f"{args.steps} steps, recommended recipe):\n\n" + markdown_table(bits_rows)
            + "\n\nEnergy per inference at matched accuracy (KerasSpiking's constants; "
            "spiking runs charged up to their latency, within 1 point of the ANN):\n\n"
            + markdown_table(energy_rows))
    print(body)
    if args.output:
        write_section(args.output, f"Quantization and energy: {label}",
                      command_line("quantization.py", args.argv), body)


if __name__ == "__main__":
    main()
