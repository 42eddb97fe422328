"""LeakyReLU: what snnlib's refusal costs, measured against its two alternatives.

Run: ``.venv/bin/python benchmarks/leaky_relu.py [--epochs 3] [--output benchmarks/RESULTS.md]``.

snnlib's neurons fire for positive currents only, so it refuses ``LeakyReLU`` (negative outputs
need negative spikes). The alternatives a user has, each measured on all 1,000 test images and
paired (exact McNemar) against the LeakyReLU ANN on the same images:

1. NengoDL's signed neuron: ``nengo_dl.Converter`` with
   ``swap_activations={nengo_dl.LeakyReLU(a): nengo_dl.SpikingLeakyReLU(a)}`` (its neuron fires
   negative spikes, of the same size, at ``a`` times the rate of the negative current),
   per-layer ``scale_firing_rates = 1000 / lambda`` with lambda the 99.9th percentile of the
   layer's absolute activations on 1,000 training images (one spike per step at lambda),
   no synapse, run in ``nengo_dl.Simulator`` for 64 steps (random initial voltages, several
   spikes per step possible), the output averaged over the run.
2. The same architecture with ``ReLU`` retrained (same seed, data and epochs), converted by
   snnlib with the zoo's recommended settings (:data:`snnlib.ann.zoo.RECOMMENDED_SIMULATION`).

The network: conv 16 (3x3) -> activation -> average pool -> conv 32 (3x3) -> activation ->
average pool -> dense 10, the activation ``LeakyReLU(alpha)`` or ``ReLU``.
"""
import argparse
import sys

import _common  # noqa: F401
import numpy as np
from _common import accuracy_cell, command_line, markdown_table, write_section

N_STEPS = 64


def build(activation, alpha):
    import tensorflow as tf

    layers = tf.keras.layers

    def act(name):
        return layers.LeakyReLU(alpha, name=name) if activation == "leaky" else \
            layers.ReLU(name=name)

    tf.keras.utils.set_random_seed(0)
    return tf.keras.Sequential([
        tf.keras.Input((28, 28, 1)),
        layers.Conv2D(16, 3, name="conv0"), act("act0"), layers.AveragePooling2D(2, name="pool0"),
        layers.Conv2D(32, 3, name="conv1"), act("act1"), layers.AveragePooling2D(2, name="pool1"),
        layers.Flatten(name="flat"), layers.Dense(10, name="out")], name=f"{activation}_convnet")


def nengo_dl_signed(model, alpha, x_calibration, x_test):
    """Output of NengoDL's SpikingLeakyReLU network, (n, N_STEPS, 10)."""
    import tensorflow as tf

    from snnlib.nengo.bridge import import_nengo, run_nengo

    _, nengo_dl = import_nengo()
    acts = [layer for layer in model.layers if isinstance(layer, tf.keras.layers.LeakyReLU)]
    probe = tf.keras.Model(model.inputs, [layer.output for layer in acts])
    values = probe.predict(x_calibration, verbose=0)
    scales = {layer: 1000.0 / float(np.percentile(np.abs(v), 99.9))
              for layer, v in zip(acts, values, strict=True)}
    converter = nengo_dl.Converter(
        model, scale_firing_rates=scales, synapse=None,
        swap_activations={nengo_dl.LeakyReLU(negative_slope=alpha):
                          nengo_dl.SpikingLeakyReLU(negative_slope=alpha)})
    kinds = {type(ens.neuron_type).__name__ for ens in converter.net.all_ensembles}
    assert kinds == {"SpikingLeakyReLU"}, kinds  # the swap took
    return run_nengo(converter, x_test, n_steps=N_STEPS, simulator="nengo_dl",
                     minibatch_size=100)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="training epochs")
    parser.add_argument("--alpha", type=float, default=0.1, help="LeakyReLU's negative slope")
    parser.add_argument("--output", help="append the table to this markdown file")
    args = parser.parse_args(argv)

    from snnlib import load_mnist
    from snnlib.analysis import protocol, stats
    from snnlib.ann import zoo
    from snnlib.convert import check

    (x_train, y_train), (x_test, y_test) = load_mnist()
    leaky = zoo.train(build("leaky", args.alpha), x_train, y_train, epochs=args.epochs)
    relu = zoo.train(build("relu", args.alpha), x_train, y_train, epochs=args.epochs)
    refusal = check(leaky)
    assert not refusal.ok and {p.type for p in refusal.problems} == {"LeakyReLU"}
    ann = leaky.predict(x_test, verbose=0).argmax(1) == y_test
    print("NengoDL SpikingLeakyReLU: simulating", file=sys.stderr, flush=True)
    output = nengo_dl_signed(leaky, args.alpha, x_train[:1000], x_test)
    signed = protocol.correct_over_time(output, y_test, protocol.DEFAULT_READOUT)[:, -1]
    print("ReLU retrained, snnlib: simulating", file=sys.stderr, flush=True)
    retrained = zoo.evaluate(relu, x_train, x_test, y_test, steps=(N_STEPS,))

    def cell(correct):
        return accuracy_cell(stats.accuracy_interval(correct))

    def versus(correct):
        c = stats.compare_paired(correct, ann)
        return f"{100 * c.difference:+.1f} (p = {c.p_value:.2g})"

    rows = [
        {"network": f"LeakyReLU(alpha={args.alpha:g}) ANN (snnlib refuses it)",
         "accuracy": cell(ann),
         "vs the LeakyReLU ANN": "-"},
        {"network": f"NengoDL SpikingLeakyReLU, T = {N_STEPS}", "accuracy": cell(signed),
         "vs the LeakyReLU ANN": versus(signed)},
        {"network": "ReLU retrained: ANN", "accuracy": cell(retrained.ann_correct),
         "vs the LeakyReLU ANN": versus(retrained.ann_correct)},
        {"network": f"ReLU retrained: snnlib SNN, T = {N_STEPS}",
         "accuracy": cell(retrained.snn_correct[N_STEPS]),
         "vs the LeakyReLU ANN": versus(retrained.snn_correct[N_STEPS])},
    ]
    text = (f"Both networks trained {args.epochs} epochs (seed 0) on the 4,000 training images; "
            f"accuracy (%) with 95 % interval on all {len(x_test)} test images; differences in "
            "points with the exact McNemar p on the same images. snnlib refuses LeakyReLU "
            "(check(): negative outputs need negative spikes) and names both alternatives.\n\n"
            + markdown_table(rows))
    print(text)
    if args.output:
        write_section(args.output, "LeakyReLU: the refusal's alternatives (issue 20)",
                      command_line("leaky_relu.py", argv), text)


if __name__ == "__main__":
    main()
