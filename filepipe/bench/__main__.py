"""``python -m filepipe.bench``: run the benchmark sections and print their results as a markdown table."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from filepipe.bench import BenchContext, Row, load_sections, markdown_table


def main(argv: list[str] | None = None) -> int:
    sections = load_sections()
    parser = argparse.ArgumentParser(
        prog="python -m filepipe.bench",
        description="Measure filepipe's thumbnail, validation and hashing paths against reference tools.",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(sections),
        metavar="NAME",
        help=f"run only this section (repeatable): {', '.join(sorted(sections))}",
    )
    parser.add_argument("--runs", type=int, default=7, help="timed runs per measurement (default 7)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when any target fails")
    parser.add_argument("--list", action="store_true", help="list the sections and exit")
    parser.add_argument("--workdir", type=Path, help="keep generated inputs here (default: a temp dir)")
    args = parser.parse_args(argv)

    if args.list:
        for name, entry in sorted(sections.items()):
            print(f"{name}: {entry.description}")
        return 0
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    selected = args.only or list(sections)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="filepipe-bench-") as scratch:
        workdir = args.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        context = BenchContext(workdir=workdir, runs=args.runs)
        for name in selected:
            started = time.perf_counter()
            print(f"[bench] {name}: {sections[name].description}", file=sys.stderr, flush=True)
            rows.extend(sections[name].run(context))
            print(f"[bench] {name} took {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)

    print(markdown_table(rows))
    failed = sum(row.passed is False for row in rows)
    passed = sum(row.passed is True for row in rows)
    print(f"\ntargets: {passed} PASS, {failed} FAIL")
    return 1 if args.strict and failed else 0


if __name__ == "__main__":
    sys.exit(main())
