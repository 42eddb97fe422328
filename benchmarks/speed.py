"""Speed: snnlib.simulate against NengoDL and against T Keras forward passes, in one process.

Run: ``.venv/bin/python benchmarks/speed.py [--batch 200] [--steps 32] [--repeats 3]
[--output benchmarks/RESULTS.md]``.

For the book's convnet (:func:`snnlib.load_pretrained_convnet`, not normalized, as the book
converts it first), the deeper network (:func:`snnlib.load_pretrained_deep_convnet`,
percentile 99.9 as in its chapter) and chapter 9's residual network (a graph: ``snnlib.zoo``'s
"residual", trained here for 3 epochs, normalized as ``zoo.RECOMMENDED_NORMALIZATION``), at
``scale_firing_rates`` 100 and 1000, NengoDL's neuron (``spiking_relu``, several spikes per
step, initial voltage 0) and float32, it times:

- ``snnlib.simulate`` with ``method="auto"`` (the compiled engine on these networks), with the
  event-driven engine and with the dense engine;
- ``nengo_dl.Simulator.predict`` on what ``nengo_dl.Converter(scale_firing_rates=s)`` builds
  from the same Keras model (NengoDL computes every layer densely, so its time does not depend
  on the rates; it receives the weights unnormalized, which changes its rates, not its work);
- T forward passes of the Keras model (``model(x)``), the ANN's cost of T steps.

All timings are taken in this one process, best of ``--repeats`` after a warm-up (which also
compiles the kernels); the ratios, not the seconds, are the result, since the machine may be
shared. It also reports the synaptic operations per second of the compiled engine against the
multiply-accumulates per second of a float32 matrix product on this machine (how far the
engine is from that floor).
"""
import argparse
import functools
import time

import _common  # noqa: F401  (sets up paths and warnings first)
import numpy as np
from _common import command_line, markdown_table, write_section


def best_time(function, repeats):
    function()  # warm-up (graph building, compilation, caches)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


class KernelTimes:
    """Seconds spent in the compiled engine's kernels while active: neuron updates (with the
    listing of spikes) and fan-out (synaptic operations, pooling of events)."""

    def __init__(self):
        from snnlib.sim import compiled

        self.kernels = compiled._compile()
        self.original = dict(self.kernels)
        self.seconds = {"neurons": 0.0, "fan-out": 0.0}

    def __enter__(self):
        for name, kernel in self.original.items():
            part = "neurons" if name in ("neuron_step", "gather_active", "return_counts") \
                else "fan-out"
            self.kernels[name] = self._timed(kernel, part)
        return self

    def __exit__(self, *exc):
        self.kernels.update(self.original)

    def _timed(self, kernel, part):
        def run(*args, **kwargs):
            start = time.perf_counter()
            kernel(*args, **kwargs)
            self.seconds[part] += time.perf_counter() - start
        return run


def mac_rate(repeats):
    """Multiply-accumulates per second of a float32 matrix product (NumPy's BLAS)."""
    a = np.random.default_rng(0).random((1024, 1024), dtype=np.float32)
    return 1024 ** 3 / best_time(lambda: a @ a, repeats)


def keras_passes(model, x, steps):
    for _ in range(steps):
        model(x, training=False)


def nengo_time(model, x, steps, scale, repeats):
    """Seconds of ``nengo_dl.Simulator.predict`` on the converter's network, T steps."""
    import tensorflow as tf

    from snnlib.nengo.bridge import build_nengo_converter, import_nengo

    _, nengo_dl = import_nengo()
    converter = build_nengo_converter(model, scale_firing_rates=scale)
    tiled = np.tile(x.reshape(len(x), 1, -1), (1, steps, 1))
    with nengo_dl.Simulator(converter.net, minibatch_size=len(x), progress_bar=False) as sim:
        node = converter.inputs[model.inputs[0]]
        seconds = best_time(lambda: sim.predict({node: tiled}, verbose=0), repeats)
    tf.keras.backend.clear_session()
    return seconds


def measure(network, model, x, steps, scale, args):
    """One row: snnlib (auto and dense), NengoDL, the compiled kernels' share, synaptic
    operations per second."""
    from snnlib import simulate
    from snnlib.analysis.measures import synaptic_operations

    options = dict(n_steps=steps, scale_firing_rates=scale)
    result = simulate(network, x, **options)
    synops = sum(synaptic_operations(network, result).values()) * len(x)
    t_auto = best_time(functools.partial(simulate, network, x, **options), args.repeats)
    with KernelTimes() as kernels:  # one more run, to see where its time goes
        simulate(network, x, **options)
    t_event, t_dense = (best_time(functools.partial(simulate, network, x, method=method,
                                                    **options), args.repeats)
                        for method in ("event", "dense"))
    return {"mean rate (Hz)": float(np.mean(list(result.mean_rates.values()))),
            "snnlib (s)": t_auto, "event engine (s)": t_event, "dense engine (s)": t_dense,
            "NengoDL (s)": (np.nan if args.no_nengo
                            else nengo_time(model, x, steps, scale, args.repeats)),
            "in neuron updates (s)": kernels.seconds["neurons"],
            "in fan-out (s)": kernels.seconds["fan-out"],
            "synaptic ops / s": synops / t_auto}


def networks():
    from snnlib import convert, load_mnist, load_pretrained_convnet, load_pretrained_deep_convnet
    from snnlib.ann import zoo

    (x_train, y_train), _ = load_mnist()
    convnet = load_pretrained_convnet()
    deep = load_pretrained_deep_convnet()
    yield "book's convnet", convnet, convert(convnet)
    yield "deeper network", deep, convert(deep, calibration=x_train[:1000],
                                          normalization="percentile")
    residual = zoo.build_and_train("residual", x_train, y_train, epochs=3)
    yield "residual graph (ch. 9)", residual, convert(residual, calibration=x_train[:1000],
                                                      **zoo.RECOMMENDED_NORMALIZATION)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=200, help="images per batch")
    parser.add_argument("--steps", type=int, default=32, help="time steps T")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (best is kept)")
    parser.add_argument("--no-nengo", action="store_true", help="skip NengoDL (slow import)")
    parser.add_argument("--output", help="append the table to this markdown file")
    args = parser.parse_args(argv)

    from snnlib import load_mnist

    (_, _), (x_test, _) = load_mnist()
    x, steps = x_test[:args.batch], args.steps
    macs_per_s = mac_rate(args.repeats)
    rows = []
    for name, model, network in networks():
        t_keras = best_time(functools.partial(keras_passes, model, x, steps), args.repeats)
        for scale in (100.0, 1000.0):
            row = measure(network, model, x, steps, scale, args)
            row.update({"network": name, "scale (Hz)": f"{scale:g}",
                        "T Keras passes (s)": t_keras,
                        "synaptic ops / s / MAC rate": row["synaptic ops / s"] / macs_per_s})
            rows.append(row)
            print(row, flush=True)
    columns = ["network", "scale (Hz)", "mean rate (Hz)", "snnlib (s)", "event engine (s)",
               "dense engine (s)",
               "NengoDL (s)", "T Keras passes (s)", "NengoDL / snnlib", "snnlib / T Keras",
               "in neuron updates (s)", "in fan-out (s)", "synaptic ops / s",
               "synaptic ops / s / MAC rate"]
    for row in rows:
        row["NengoDL / snnlib"] = f"{row['NengoDL (s)'] / row['snnlib (s)']:.1f}"
        row["snnlib / T Keras"] = f"{row['snnlib (s)'] / row['T Keras passes (s)']:.2f}"
    summary = [(row["network"], row["scale (Hz)"], row["NengoDL / snnlib"],
                row["snnlib / T Keras"]) for row in rows]
    formats = {"mean rate (Hz)": "{:.0f}", "synaptic ops / s": "{:.3g}",
               "synaptic ops / s / MAC rate": "{:.3f}"}
    rows = [{key: formats.get(key, "{:.3f}").format(value) if isinstance(value, float)
             else value for key, value in row.items()} for row in rows]
    text = (f"{len(x)} images x T = {steps} steps, float32, best of {args.repeats}; snnlib: "
            "`method=\"auto\"` (the compiled engine here); \"in neuron updates\" and \"in "
            "fan-out\": the seconds its kernels took in one more run (the rest: the first "
            "layer's input current, computed once, and the result's bookkeeping). This "
            f"machine's float32 matrix product: {macs_per_s:.3g} multiply-accumulates per "
            "second.\n\n"
            + markdown_table(rows, columns) + "\n\n"
            + "; ".join(f"{name} at {scale} Hz: {nengo}x faster than NengoDL (aim >= 10x), "
                        f"{keras}x the time of T Keras passes (aim <= 0.5x)"
                        for name, scale, nengo, keras in summary) + ".")
    print(text)
    if args.output:
        write_section(args.output, "Speed", command_line("speed.py", argv), text)


if __name__ == "__main__":
    main()
