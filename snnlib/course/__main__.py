"""Command line: ``python -m snnlib.course generate | check | grade PATH...``."""
import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None):
    from snnlib.course import generate as gen
    from snnlib.course import grade

    parser = argparse.ArgumentParser(prog="python -m snnlib.course", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("generate", help="write assignments/student/*.ipynb from assignments/source/")
    sub.add_parser("check", help="exit 1 if the student versions are stale or stubs drifted")
    g = sub.add_parser("grade", help="grade completed notebooks (files or folders of them)")
    g.add_argument("paths", nargs="+", help="student notebooks, or folders holding them")
    g.add_argument("--timeout", type=float, default=grade.NOTEBOOK_TIMEOUT,
                   help="seconds all of a notebook's cells may run (default %(default)s)")
    g.add_argument("--cell-timeout", type=float, default=grade.CELL_TIMEOUT,
                   help="seconds one cell may run (default %(default)s)")
    g.add_argument("--check-timeout", type=float, default=grade.CHECK_TIMEOUT,
                   help="seconds one question's checks may run (default %(default)s)")
    g.add_argument("--json", metavar="FILE", help="also write all results as JSON")
    g.add_argument("--csv", metavar="FILE", help="also write a gradebook CSV (one row a notebook)")
    args = parser.parse_args(argv)

    if args.command == "generate":
        for path in gen.generate():
            print(f"wrote {path.relative_to(gen.ROOT)}")
    if args.command in ("generate", "check"):
        problems = gen.problems()
        for problem in problems:
            print(f"problem: {problem}", file=sys.stderr)
        if args.command == "check" and not problems:
            print(f"student versions up to date ({len(gen.sources())} assignments)")
        return 1 if problems else 0

    paths = grade.notebooks(args.paths)
    if not paths:
        print("no notebooks found", file=sys.stderr)
        return 2
    results = []
    for path in paths:
        result = grade.grade_notebook(path, notebook_timeout=args.timeout,
                                      cell_timeout=args.cell_timeout,
                                      check_timeout=args.check_timeout)
        results.append(result)
        print(grade.format_report(result), flush=True)
    if len(results) > 1:
        print("\nsummary")
        for r in results:
            print(f"   {r.points:g}/{r.max_points:g}  {r.path}")
    if args.json:
        grade.write_json(results, args.json)
    if args.csv:
        grade.write_csv(results, args.csv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
