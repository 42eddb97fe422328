"""Command line: ``python -m course build | check | grade PATH... | pdf NOTEBOOK...``.

Run through ``python3 dev.py assignments ...`` (which sets up the environment first).
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None):
    from course import build, grade

    parser = grade.Parser(prog="python3 dev.py assignments", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=grade.Parser)
    b = sub.add_parser("build", help="otter assign: the student release and the autograder "
                                     "bundle in OUTPUT, the student versions in "
                                     "assignments/student/ (for the book)")
    b.add_argument("--output", default=str(build.OUTPUT),
                   help="folder for the release and the bundle (default %(default)s)")
    b.add_argument("--source", default=str(build.SOURCE_DIR),
                   help="folder of the instructor notebooks (default %(default)s)")
    sub.add_parser("check", help="exit 1 if assignments/student/ is not what the sources build, "
                                 "or a question has no checks")
    grade.add_arguments(sub.add_parser("grade", help="grade notebooks in sandboxes; exit status: "
                                                     "how many could not be graded"))
    p = sub.add_parser("pdf", help="a PDF of each notebook's manually graded answers")
    p.add_argument("notebooks", nargs="+")
    p.add_argument("--output", required=True, help="folder for the PDFs")
    args = parser.parse_args(argv)

    if args.command == "build":
        for path in build.build(args.source, args.output):
            print(f"built {path}")
        print(f"student release: {os.path.join(args.output, 'student')}; instructor bundle "
              f"(solutions, hidden tests, Gradescope zip): {os.path.join(args.output, 'autograder')}")
        return 0
    if args.command == "check":
        problems = build.problems()
        for problem in problems:
            print(f"problem: {problem}", file=sys.stderr)
        if not problems:
            print(f"student versions up to date ({len(build.sources())} assignments)")
        return 1 if problems else 0
    if args.command == "pdf":
        from course import pdf

        failed, names = 0, set()
        for notebook in args.notebooks:
            name, n = os.path.splitext(os.path.basename(notebook))[0], 1
            while name in names:
                n += 1
                name = f"{os.path.splitext(os.path.basename(notebook))[0]}-{n}"
            names.add(name)
            target = os.path.join(args.output, f"{name}-manual.pdf")
            try:
                print(f"wrote {pdf.manual_answers_pdf(notebook, target)}")
            except Exception as error:  # one bad notebook does not stop the others
                failed += 1
                print(f"{notebook}: no PDF: {type(error).__name__}: {error}", file=sys.stderr)
        return min(failed, grade.MAX_EXIT)
    return grade.main(args)


if __name__ == "__main__":
    sys.exit(main())
