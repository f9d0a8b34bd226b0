"""Sizes and durations as people write them ("256M", "10m") and as gridvm stores them."""

from __future__ import annotations

import re

from gridvm.common.errors import InvalidInput

_SIZE_SUFFIXES = {
    "": 1,
    "B": 1,
    "K": 1024,
    "KB": 1024,
    "KIB": 1024,
    "M": 1024**2,
    "MB": 1024**2,
    "MIB": 1024**2,
    "G": 1024**3,
    "GB": 1024**3,
    "GIB": 1024**3,
    "T": 1024**4,
    "TB": 1024**4,
    "TIB": 1024**4,
}
_DURATION_SUFFIXES = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")
_DURATION_PART_RE = re.compile(r"(\d+)([smhd])")


def parse_size(text: str, *, default_unit: str = "") -> int:
    """Bytes in a size such as ``256M``, ``8G`` or ``1.5GiB`` (powers of 1024)."""
    match = _SIZE_RE.match(text)
    if not match:
        raise InvalidInput(f"{text!r} is not a size", hint="write it like 256M, 8G or 1048576")
    number, unit = match.groups()
    unit = (unit or default_unit).upper()
    if unit not in _SIZE_SUFFIXES:
        raise InvalidInput(f"unknown size unit {unit!r} in {text!r}", hint="use K, M, G or T")
    return int(float(number) * _SIZE_SUFFIXES[unit])


def parse_duration(text: str) -> int:
    """Seconds in a duration such as ``90``, ``10m``, ``1h30m`` or ``2d``."""
    stripped = text.strip()
    if stripped.isdigit():
        return int(stripped)
    parts = _DURATION_PART_RE.findall(stripped)
    if not parts or "".join(n + u for n, u in parts) != stripped:
        raise InvalidInput(
            f"{text!r} is not a duration", hint="write it like 90s, 10m, 1h30m or 2d"
        )
    return sum(int(n) * _DURATION_SUFFIXES[u] for n, u in parts)


_SIZE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def format_size(num_bytes: int) -> str:
    """``1536`` → ``1.5 KiB``, ``2**30`` → ``1 GiB``: short, for tables and messages."""
    value = float(num_bytes)
    index = 0
    while abs(value) >= 1024 and index < len(_SIZE_UNITS) - 1:
        value /= 1024
        index += 1
    if index == 0:
        return f"{num_bytes} B"
    return f"{f'{value:.1f}'.removesuffix('.0')} {_SIZE_UNITS[index]}"


def format_duration(seconds: float) -> str:
    """``3725`` → ``1h2m5s``."""
    total = int(seconds)
    if total < 60:
        return f"{total}s"
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    out = f"{hours}h" if hours else ""
    out += f"{minutes}m" if minutes else ""
    out += f"{secs}s" if secs else ""
    return out
