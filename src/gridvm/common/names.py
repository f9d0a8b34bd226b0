"""Identifiers gridvm makes and names users give.

User-chosen names end up in file names, URLs and log lines, so they are held to
a small alphabet rather than sanitised after the fact.
"""

from __future__ import annotations

import re
import secrets

from gridvm.common.errors import InvalidInput

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


def new_id(prefix: str) -> str:
    """A short random id such as ``vm-3f9a2c1b0d4e`` (48 random bits)."""
    return f"{prefix}-{secrets.token_hex(6)}"


def validate_name(name: str, *, what: str = "name") -> str:
    """Return ``name`` if it is safe to use anywhere, else raise a clear InvalidInput."""
    if "/" in name or "\\" in name or ".." in name or not NAME_RE.fullmatch(name):
        raise InvalidInput(
            f"invalid {what} {name!r}",
            hint="use 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit,"
            " without '/' or '..'",
        )
    return name
