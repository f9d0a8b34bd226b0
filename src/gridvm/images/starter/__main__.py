"""``python -m gridvm.images.starter build --out DIR [--force]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gridvm.common.errors import GridvmError

from .build import build_tiny


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m gridvm.images.starter",
        description="Build gridvm's starter guest images.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build the tiny image into DIR/tiny (cached)")
    build.add_argument("--out", type=Path, required=True, metavar="DIR", help="output directory")
    build.add_argument("--force", action="store_true", help="rebuild even if up to date")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the command; print the image directory on stdout, errors on stderr."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        image_dir = build_tiny(args.out, force=args.force)
    except GridvmError as exc:
        print(f"tiny: error: {exc}", file=sys.stderr)
        return 1
    print(image_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
