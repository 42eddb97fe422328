"""Conversion in a few steps: QCFS training and calibration against percentile normalization.

Run: ``.venv/bin/python benchmarks/low_latency.py [--network convnet] [--network deeper]
[--calibration-images 512] [--output benchmarks/RESULTS.md]`` (both networks by
default; one section each).

For each network:

- *percentile*: the shipped ReLU network, normalized as the book recommends (percentile 99.9
  on the first 1,000 training images);
- *QCFS*: the shipped QCFS network (:func:`snnlib.ann.qcfs.load_pretrained_qcfs`: the same
  architecture through :func:`snnlib.ann.qcfs.use_qcfs`, L = 4, every threshold starting at 2.0,
  trained from scratch with the book's settings, :data:`snnlib.ann.qcfs.QCFS_TRAINING`) converted
  with lambda = the trained thresholds; its own ANN (with the QCFS activations) is the reference;
- *+ bias* / *+ potential*: Li et al.'s (2021) bias or potential calibration
  (:mod:`snnlib.sim.calibration`) for each T, on ``--calibration-images`` training images
  (float64 runs), never the test images.

Every spiking network runs with the recommended simulation (IF neurons, lambda at one spike
per step, reset by subtraction, start at 0.5, float64), one run of T steps for each T in
1, 2, 4, 8, 16, 32, on all 1,000 test images: accuracy with its 95 % interval, the paired
difference from its own ANN (exact McNemar p), spikes and synaptic operations per image. The
last table gives, at T = 4 on the calibration images, each QCFS layer's average output against
the QCFS ANN's activation (:func:`snnlib.ann.qcfs.layer_agreement`).
"""
import argparse

import _common  # noqa: F401
import numpy as np
from _common import accuracy_cell as cell
from _common import command_line, markdown_table, write_section

STEPS = (1, 2, 4, 8, 16, 32)


def difference(comparison):
    """A paired comparison as "+d.d (p = ...)" (points)."""
    return f"{100 * comparison.difference:+.1f} (p = {comparison.p_value:.2g})"


def calibrated(base, how, x_cal, options):
    """``calibrate(T)`` for :func:`snnlib.experiments.few_steps.run_at_steps`: Li et al.'s bias
    or potential correction of ``base`` for a run of T steps, on ``x_cal``."""
    from snnlib.sim import calibration as cal

    def calibrate(n_steps):
        if how == "bias":
            return cal.calibrate_bias(base, x_cal, n_steps, **options), 0.5
        return base, cal.calibrate_potential(base, x_cal, n_steps, **options)
    return calibrate


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", action="append", choices=("convnet", "deeper"),
                        help="a network to measure (repeat for both; default: both)")
    parser.add_argument("--calibration-images", type=int, default=512)
    parser.add_argument("--output", help="append the tables to this markdown file")
    args = parser.parse_args(argv)

    import snnlib
    from snnlib.analysis import stats
    from snnlib.ann import qcfs, zoo
    from snnlib.experiments import few_steps

    (x_train, y_train), (x_test, y_test) = snnlib.load_mnist()
    without_start = {k: v for k, v in zoo.RECOMMENDED_SIMULATION.items()
                     if k != "initial_voltage"}
    options = dict(without_start, dtype=np.float64)  # calibration runs, as chapter 13
    x_cal = x_train[:args.calibration_images]
    builders = {"convnet": snnlib.load_pretrained_convnet,
                "deeper": snnlib.load_pretrained_deep_convnet}

    def ann_correct(model):
        return np.argmax(model.predict(x_test, verbose=0), axis=1) == y_test

    for label in args.network or list(builders):
        relu_model = builders[label]()
        model = qcfs.load_pretrained_qcfs(label)
        references = {"percentile": ann_correct(relu_model), "QCFS": ann_correct(model)}
        percentile = snnlib.convert(relu_model, calibration=x_train[:zoo.N_CALIBRATION],
                                    **zoo.RECOMMENDED_NORMALIZATION)
        network = snnlib.convert(model)
        thresholds = qcfs.qcfs_thresholds(model)

        methods = {"percentile": (percentile, None), "QCFS": (network, None),
                   "QCFS + bias": (network, calibrated(network, "bias", x_cal, options)),
                   "QCFS + potential": (network, calibrated(network, "potential", x_cal,
                                                            options)),
                   "percentile + potential": (percentile, calibrated(percentile, "potential",
                                                                     x_cal, options))}
        runs = {}
        for name, (net, calibrate) in methods.items():
            runs[name] = few_steps.run_at_steps(net, x_test, y_test, STEPS, calibrate=calibrate,
                                                **without_start, dtype=np.float64)
            print(label, name, {t: round(r.correct.mean(), 3) for t, r in runs[name].items()},
                  flush=True)
        table = few_steps.steps_table(runs, {name: references[name.split(" ")[0]]
                                             for name in methods})
        rows, cost_rows = [], []
        for n_steps in STEPS:
            at = table[table["T"] == n_steps].set_index("method")
            rows.append({"T": n_steps, **{name: f"{cell(at.loc[name, 'accuracy'])}, "
                                                f"{difference(at.loc[name, 'vs_ann'])}"
                                          for name in methods},
                         "QCFS vs percentile": difference(stats.compare_paired(
                             runs["QCFS"][n_steps].correct, runs["percentile"][n_steps].correct))})
            cost_rows.append({"T": n_steps, **{
                name: f"{at.loc[name, 'spikes']:,.0f} / {at.loc[name, 'synaptic_operations']:,.0f}"
                for name in methods}})
        correct_at = {(name, t): run.correct for name, by_t in runs.items()
                      for t, run in by_t.items()}
        qcfs_ann, relu_ann = references["QCFS"], references["percentile"]

        agreement = qcfs.layer_agreement(model, network, x_cal, 4,
                                         **dict(zoo.RECOMMENDED_SIMULATION, dtype=np.float64))
        layer_rows = [{"layer": r.layer, "theta": f"{r.theta:.3f}",
                       "QCFS ANN (mean)": f"{r.ann_mean:.3f}",
                       "SNN at T = 4 (mean)": f"{r.snn_mean:.3f}",
                       "mean abs difference": f"{r.mean_abs_difference:.3f}",
                       "equal": f"{100 * r.equal:.1f} %"} for r in agreement.itertuples()]

        ann_line = (f"ReLU ANN {cell(stats.accuracy_interval(relu_ann))} %; QCFS ANN "
                    f"(L = {qcfs.QCFS_TRAINING['levels']}) "
                    f"{cell(stats.accuracy_interval(qcfs_ann))} %; "
                    "thresholds " + ", ".join(f"{k} {v:.3f}" for k, v in thresholds.items()))
        aims = []
        for n_steps, bound in ((4, 0.5), (8, 0.2)) if label == "deeper" else ((4, 0.2),):
            best = max((m for m in methods if m.startswith("QCFS + ")),
                       key=lambda m, t=n_steps: correct_at[m, t].mean())
            for name, how in (("QCFS", ""), (best, " (the better calibration on these test "
                                                   "images: an optimistic choice)")):
                shortfall = 100 * (qcfs_ann.mean() - correct_at[name, n_steps].mean())
                aims.append(f"- Aim: at most {bound} point below the QCFS ANN at T = {n_steps}. "
                            f"{name}{how}: {shortfall:.1f} points below it (negative: above): "
                            f"{'met' if shortfall <= bound else 'not met'}.")
        body = "\n\n".join([
            ann_line,
            "Accuracy (%, 95 % interval) and the paired difference from the method's own ANN "
            "(points, exact McNemar p); the last column compares QCFS with percentile on the "
            "same images:",
            markdown_table(rows),
            "Spikes / synaptic operations per image over the run:",
            markdown_table(cost_rows),
            f"QCFS layers at T = 4 against the QCFS ANN, on {len(x_cal)} training images (units "
            "of theta):",
            markdown_table(layer_rows),
            "\n".join(aims),
        ])
        print(body)
        if args.output:
            write_section(args.output, f"Conversion in a few steps: {label}",
                          command_line("low_latency.py", argv), body)


if __name__ == "__main__":
    main()
