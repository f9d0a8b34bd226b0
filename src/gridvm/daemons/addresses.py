"""Parsing of ``HOST:PORT`` listen addresses."""

from __future__ import annotations

from gridvm.common.errors import InvalidInput


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidInput(f"{text!r} is not HOST:PORT", hint="for example 127.0.0.1:8750")
    return (host or "127.0.0.1").strip("[]"), int(port)
