"""``python -m gridvm.images.starter build --out DIR [--force] [--only NAME]``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from gridvm.common.errors import GridvmError

from .build import build_tiny

IMAGES = ("tiny", "debian-12-minimal")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m gridvm.images.starter",
        description="Build gridvm's starter guest images.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser(
        "build", help="build the starter images into DIR/tiny and DIR/debian-12-minimal (cached)"
    )
    build.add_argument("--out", type=Path, required=True, metavar="DIR", help="output directory")
    build.add_argument("--force", action="store_true", help="rebuild even if up to date")
    build.add_argument(
        "--only", choices=IMAGES, action="append", help="build only this image (repeatable)"
    )
    build.add_argument(
        "--debian-mirror",
        metavar="URL",
        help="Debian mirror for debian-12-minimal (default: $GRIDVM_DEBIAN_MIRROR, "
        "else http://deb.debian.org/debian)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the command; print each image directory on stdout, errors on stderr."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    wanted = args.only or list(IMAGES)
    status = 0
    for name in wanted:
        try:
            if name == "tiny":
                image_dir = build_tiny(args.out, force=args.force)
            elif os.geteuid() != 0 and not args.only:
                print(
                    f"{name}: skipped: building it needs root (run: sudo make images)",
                    file=sys.stderr,
                )
                continue
            else:
                # Imported here: tiny alone needs none of the Debian build code.
                from gridvm.images.debian.template import build_debian_minimal

                image_dir = build_debian_minimal(
                    args.out, mirror=args.debian_mirror, force=args.force
                )
        except GridvmError as exc:
            print(f"{name}: error: {exc}", file=sys.stderr)
            status = 1
            continue
        print(image_dir)
    return status


if __name__ == "__main__":
    sys.exit(main())
