"""Memory: peak memory of calibration (``convert`` with percentile) and ``simulate`` vs data size.

Run: ``.venv/bin/python benchmarks/memory.py [--convert 1000 4000 16000] [--simulate 1000 8000]
[--batch-size 500] [--output benchmarks/RESULTS.md]``.

What is measured, and why: each case runs in a **fresh subprocess** (so one case's freed
memory, allocator caches or TensorFlow state cannot hide or inflate another's). The child loads
the book's convnet and the data, warms up (one small call, so that TensorFlow's one-time
allocations are not counted), then measures the **growth of the process's peak resident set
size (RSS)** during the one call: it resets the kernel's peak counter (``VmHWM``, by writing 5
to ``/proc/self/clear_refs``), reads the current RSS, calls, and reports ``VmHWM - RSS before``.
RSS rather than ``tracemalloc``: the convolutions run in TensorFlow, whose buffers
``tracemalloc`` does not see; RSS counts everything the call touches (NumPy, TensorFlow,
Python objects). Where ``clear_refs`` cannot be written, the peak is read with
``resource.getrusage`` (peak since the process started; the table says so).

The aim (issue 12): flat within 20 % across sizes, i.e. memory bounded by ``batch_size``, not by
the number of images. Calibration with 16k images repeats the 4,000 training images; simulation
with 8k images repeats the 1,000 test images.
"""
import argparse
import json
import re
import resource
import subprocess
import sys
from pathlib import Path

import _common  # noqa: F401  (sets up paths and warnings first)
from _common import markdown_table, write_section

HERE = Path(__file__).resolve().parent


def _status(key):
    """A value (kB) from /proc/self/status, or None where there is no /proc."""
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    found = re.search(rf"^{key}:\s+(\d+) kB", text, re.MULTILINE)
    return int(found.group(1)) if found else None


def _reset_peak():
    """Reset the peak RSS counter (Linux >= 4.0); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return _status("VmHWM") is not None


def _repeat(x, n):
    """The first ``n`` examples of ``x`` repeated as often as needed."""
    import numpy as np

    reps = -(-n // len(x))
    return np.concatenate([x] * reps)[:n]


def run_case(kind, n, batch_size, n_steps):
    """Measure one case in this process; return a dict (MB)."""
    import gc

    from snnlib import convert, load_mnist, load_pretrained_convnet, simulate

    model = load_pretrained_convnet()
    (x_train, _), (x_test, _) = load_mnist()
    if kind == "convert":
        data = _repeat(x_train, n)

        def call():
            return convert(model, calibration=data, normalization="percentile",
                           batch_size=batch_size)

        convert(model, calibration=x_train[:64], normalization="percentile",
                batch_size=batch_size)  # warm-up
    else:
        network = convert(model)
        data = _repeat(x_test, n)

        def call():
            return simulate(network, data, n_steps=n_steps, scale_firing_rates=100.0,
                            batch_size=batch_size)

        simulate(network, x_test[:64], n_steps=n_steps, scale_firing_rates=100.0,
                 batch_size=batch_size)  # warm-up
    gc.collect()
    exact = _reset_peak()
    before_kb = _status("VmRSS")
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = call()
    if exact:
        peak_kb = _status("VmHWM")
        growth_kb = peak_kb - before_kb
    else:  # ru_maxrss: kB on Linux; the peak since the process started
        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        growth_kb = max(peak_kb - (before_kb or peak_before), 0)
    del result
    return dict(kind=kind, n=n, growth_mb=growth_kb / 1024, peak_mb=peak_kb / 1024,
                data_mb=data.nbytes / 2 ** 20, method="VmHWM" if exact else "ru_maxrss")


def measure(kind, n, batch_size, n_steps):
    """Run one case in a fresh subprocess and return its dict."""
    command = [sys.executable, str(HERE / "memory.py"), "--case", f"{kind}:{n}",
               "--batch-size", str(batch_size), "--steps", str(n_steps)]
    out = subprocess.run(command, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"case {kind}:{n} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--convert", type=int, nargs="*", default=[1000, 4000, 16000],
                        help="calibration sizes for convert(normalization='percentile')")
    parser.add_argument("--simulate", type=int, nargs="*", default=[1000, 8000],
                        help="numbers of images for simulate")
    parser.add_argument("--batch-size", type=int, default=500, help="batch_size of both calls")
    parser.add_argument("--steps", type=int, default=10, help="n_steps of simulate")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: one case, JSON out
    parser.add_argument("--output", help="append the table to this markdown file")
    parser.add_argument("--title", default="Memory", help="section title in --output")
    args = parser.parse_args(argv)

    if args.case:
        kind, n = args.case.split(":")
        print(json.dumps(run_case(kind, int(n), args.batch_size, args.steps)))
        return

    rows, methods = [], set()
    for kind, sizes in (("convert", args.convert), ("simulate", args.simulate)):
        results = [measure(kind, n, args.batch_size, args.steps) for n in sizes]
        methods.update(r["method"] for r in results)
        for r in results:
            print(json.dumps(r), file=sys.stderr)
        base = results[0]["growth_mb"] if results else 1.0
        for r in results:
            call = ("convert(percentile)" if kind == "convert"
                    else f"simulate(n_steps={args.steps})")
            rows.append({"call": call, "images": f"{r['n']:,}",
                         "peak growth (MB)": f"{r['growth_mb']:,.0f}",
                         "ratio to smallest": f"{r['growth_mb'] / max(base, 1e-9):.2f}",
                         "input data (MB)": f"{r['data_mb']:,.0f}"})
    how = ("the kernel's peak counter VmHWM, reset before the call" if methods == {"VmHWM"}
           else "ru_maxrss, the peak since the process started")
    text = (f"`batch_size={args.batch_size}`; `simulate` with `n_steps={args.steps}`, "
            "`scale_firing_rates=100`, the default `keep_counts`. Peak RSS growth during the "
            f"call ({how}), each case in a fresh subprocess after a warm-up; the input array "
            "was allocated before. Aim: flat within 20 % across sizes.\n\n"
            + markdown_table(rows))
    print(text)
    if args.output:
        command = "python benchmarks/memory.py " + " ".join(argv if argv is not None
                                                            else sys.argv[1:])
        write_section(args.output, args.title, command.strip(), text)


if __name__ == "__main__":
    main()
