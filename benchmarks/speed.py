"""Speed: images x steps per second of snnlib.simulate vs NengoDL vs T Keras forward passes.

Run: ``.venv/bin/python benchmarks/speed.py [--batch 200] [--steps 32] [--repeats 3]``;
``--model deep`` times the deeper network (:func:`snnlib.load_pretrained_deep_convnet`,
percentile 99.9, one spike per step, initial voltage 0.5, float32) with each engine, at the
book's setting (scale 1000) and at a low rate (scale 100), as seconds per 1,000 images x 128
steps (measured on ``--batch`` images x ``--steps`` steps, default 200 x 128).
All timings are taken in this one process, best of ``--repeats``, after a warm-up; the ratios
(not the absolute numbers) are the result, since the machine may be shared.
"""
import argparse
import sys
import time

import _common  # noqa: F401  (sets up paths and warnings first)
import numpy as np
from _common import markdown_table, write_section


def best_time(function, repeats):
    function()  # warm-up (graph building, caches)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def best_times(function, repeats):
    """(wall, CPU) seconds, best of ``repeats`` after a warm-up. CPU time (all threads of this
    process) is the steadier one on a shared machine; wall time is what a reader waits."""
    function()
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        function()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus)


def deep(args):
    """The deeper network's table (text)."""
    from snnlib import convert, load_mnist, load_pretrained_deep_convnet, simulate

    model = load_pretrained_deep_convnet()
    (x_train, _), (x_test, _) = load_mnist()
    x = x_test[:args.batch]
    steps = args.steps or 128
    network = convert(model, calibration=x_train[:1000], normalization="percentile")
    per_1000 = (1000 / len(x)) * (128 / steps)
    table = []
    for neuron in ("if", "spiking_relu"):
        for scale in (1000.0, 100.0):
            times = {}
            for method in ("dense", "event", "auto"):
                options = dict(n_steps=steps, scale_firing_rates=scale, neuron=neuron,
                               max_spikes_per_step=1, initial_voltage=0.5, method=method)
                times[method] = best_times(lambda o=options: simulate(network, x, **o),
                                           args.repeats)
                wall, cpu = times[method]
                table.append({"neuron": neuron, "scale (Hz)": f"{scale:g}", "engine": method,
                              "CPU s per 1,000 x 128": f"{cpu * per_1000:.1f}",
                              "wall s per 1,000 x 128": f"{wall * per_1000:.1f}",
                              "CPU time / dense": f"{cpu / times['dense'][1]:.2f}"})
            print(table[-3:], file=sys.stderr, flush=True)
    return (f"Deeper network, percentile 99.9, one spike per step, initial voltage 0.5, float32; "
            f"{len(x)} images x {steps} steps, best of {args.repeats}, scaled to 1,000 images x "
            "128 steps. CPU: process time of all threads (steadier than wall time when others "
            "share the machine).\n\n" + markdown_table(table))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="convnet", choices=["convnet", "deep"],
                        help="convnet: the book's convnet against NengoDL and Keras (default); "
                        "deep: the deeper network, engine by engine")
    parser.add_argument("--batch", type=int, default=200, help="images per batch")
    parser.add_argument("--steps", type=int, help="time steps T (default 32; deep: 128)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (best is kept)")
    parser.add_argument("--scale", type=float, default=100.0, help="scale_firing_rates (Hz)")
    parser.add_argument("--no-nengo", action="store_true", help="skip NengoDL (slow import)")
    parser.add_argument("--output", help="append the table to this markdown file")
    args = parser.parse_args(argv)
    if args.model == "deep":
        text = deep(args)
        print(text)
        if args.output:
            command = "python benchmarks/speed.py " + " ".join(argv if argv is not None
                                                               else sys.argv[1:])
            write_section(args.output, "Speed of the deeper network", command.strip(), text)
        return
    args.steps = args.steps or 32

    import tensorflow as tf

    from snnlib import convert, load_mnist, load_pretrained_convnet, simulate

    model = load_pretrained_convnet()
    (_, _), (x_test, _) = load_mnist()
    x = x_test[:args.batch]
    batch, steps = len(x), args.steps
    network = convert(model)
    work = batch * steps
    rows = []

    def keras():
        for _ in range(steps):
            model(x, training=False)

    t_keras = best_time(keras, args.repeats)
    rows.append(("Keras forward x T", t_keras))

    def ours():
        simulate(network, x, n_steps=steps, scale_firing_rates=args.scale)

    t_ours = best_time(ours, args.repeats)
    rows.append(("snnlib.simulate (float32)", t_ours))

    def ours64():
        simulate(network, x, n_steps=steps, scale_firing_rates=args.scale, dtype=np.float64)

    rows.append(("snnlib.simulate (float64)", best_time(ours64, args.repeats)))

    # the same with the dense engine (every linear operation at every step)
    def ours_dense():
        simulate(network, x, n_steps=steps, scale_firing_rates=args.scale, method="dense")

    rows.append(("snnlib.simulate (float32, dense path)", best_time(ours_dense, args.repeats)))

    if not args.no_nengo:
        from snnlib.nengo.bridge import build_nengo_converter, import_nengo

        _, nengo_dl = import_nengo()
        converter = build_nengo_converter(model, scale_firing_rates=args.scale)
        tiled = np.tile(x.reshape(batch, 1, -1), (1, steps, 1))
        with nengo_dl.Simulator(converter.net, minibatch_size=batch, progress_bar=False) as sim:
            node = converter.inputs[model.inputs[0]]

            def nengo():
                sim.predict({node: tiled}, verbose=0)

            rows.append(("NengoDL Simulator.predict", best_time(nengo, args.repeats)))
        tf.keras.backend.clear_session()

    table = []
    for name, seconds in rows:
        table.append({"method": name, "seconds": f"{seconds:.3f}",
                      "images x steps / s": f"{work / seconds:,.0f}",
                      "time / snnlib float32": f"{seconds / t_ours:.2f}"})
    text = (f"Batch {batch}, T = {steps} steps, scale_firing_rates = {args.scale:g}, "
            f"best of {args.repeats}.\n\n" + markdown_table(table))
    named = dict(rows)
    if "NengoDL Simulator.predict" in named:
        text += (f"\n\nsnnlib is {named['NengoDL Simulator.predict'] / t_ours:.1f}x faster than "
                 f"NengoDL (aim: >= 10x) and takes {t_ours / t_keras:.2f}x the time of T Keras "
                 "forward passes (aim: <= 1.5x).")
    else:
        text += (f"\n\nsnnlib takes {t_ours / t_keras:.2f}x the time of T Keras forward passes "
                 "(aim: <= 1.5x).")
    print(text)
    if args.output:
        command = "python benchmarks/speed.py " + " ".join(argv if argv is not None
                                                           else sys.argv[1:])
        write_section(args.output, "Speed", command.strip(), text)


if __name__ == "__main__":
    main()
