from __future__ import annotations

import sys

from bench import b2_overlays_and_start

BENCHMARKS = {"B2": b2_overlays_and_start.main}


def main() -> None:
    names = sys.argv[1:] or list(BENCHMARKS)
    for name in names:
        if name not in BENCHMARKS:
            sys.exit(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}")
        BENCHMARKS[name]()


main()
