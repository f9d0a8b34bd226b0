"""``python -m bench [NAMES] [--quick] [--profile]``: run the benchmarks (all by default).

``--quick`` runs a smaller version of the benchmarks that have one (B4b), written to
``<name>-quick.json``; ``--profile`` profiles the ones that support it (B4b).
"""

from __future__ import annotations

import os
import sys

from bench import (
    b2_overlays_and_start,
    b4a_parameter_scan,
    b4b_scheduler_scale,
    b5_fair_share,
    b6_build_cache,
)

BENCHMARKS = {
    "B2": b2_overlays_and_start.main,
    "B4a": b4a_parameter_scan.main,
    "B4b": b4b_scheduler_scale.main,
    "B5": b5_fair_share.main,
    "B6": b6_build_cache.main,
}
FLAGS = {"--quick": "BENCH_QUICK", "--profile": "BENCH_PROFILE"}


def main() -> None:
    args = sys.argv[1:]
    for flag, variable in FLAGS.items():
        if flag in args:
            os.environ[variable] = "1"
    unknown = [a for a in args if a.startswith("-") and a not in FLAGS]
    if unknown:
        sys.exit(f"unknown option {unknown[0]!r}; known: {', '.join(FLAGS)}")
    names = [a for a in args if not a.startswith("-")] or list(BENCHMARKS)
    for name in names:
        if name not in BENCHMARKS:
            sys.exit(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}")
    for name in names:
        BENCHMARKS[name]()


main()
