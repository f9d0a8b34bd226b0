"""``gridvm server --config FILE``: server options from a TOML file.

Every option of ``gridvm server`` may be set in the file under its name (``build_workers``
or ``build-workers``); options given on the command line win, a repeatable option given
there replaces the file's list. The site's per-zone egress whitelists are a table::

    [zone_egress]
    trusted = ["10.0.0.53:53/udp", "192.0.2.10:443"]
    dmz = []

The file becomes click's ``default_map``: the command sees the file's values exactly as
if they had been typed, and its own checks apply. Wrong keys and wrong kinds of value are
refused here, naming the key and the file.
"""

from __future__ import annotations

import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from gridvm.common.errors import GridvmError, InvalidInput
from gridvm.services.egress import check_zone_egress

NOT_IN_FILE = frozenset({"config_file"})  # --config itself


def load_defaults(path: Path, command: Callable[..., object]) -> dict[str, Any]:
    """The options in ``path`` as a ``default_map`` for ``command`` (a Typer command
    function: its parameters are the option names, their types the kinds of value)."""
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise InvalidInput(f"cannot read the server config {path}: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path} is not valid TOML: {exc}") from exc
    kinds = {
        name: _kind(hint)
        for name, hint in typing.get_type_hints(command).items()
        if name != "return" and name not in NOT_IN_FILE
    }
    defaults: dict[str, Any] = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name not in kinds:
            raise InvalidInput(
                f"{path}: unknown key {key!r}; the keys are the options of gridvm server: "
                + ", ".join(sorted(kinds))
            )
        if name == "zone_egress":
            defaults[name] = _zone_egress(path, value)
        else:
            defaults[name] = _checked(path, key, kinds[name], value)
    return defaults


def _kind(hint: object) -> type:
    """list, bool, int, float or str: what a TOML value for an option of this type is."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if typing.get_origin(hint) is list:
        return list
    if hint in (bool, int, float):
        return typing.cast(type, hint)
    return str


def _zone_egress(path: Path, value: object) -> list[str]:
    """The ``[zone_egress]`` table as the repeatable option's ZONE=ENTRY items."""
    if not isinstance(value, Mapping) or not all(
        isinstance(v, list) and all(isinstance(e, str) for e in v) for v in value.values()
    ):
        raise InvalidInput(
            f"{path}: zone_egress must be a table of zone = [entries], e.g. "
            '[zone_egress] trusted = ["10.0.0.53:53/udp"]'
        )
    try:
        checked = check_zone_egress(value)
    except GridvmError as exc:
        raise InvalidInput(f"{path}: zone_egress: {exc}") from exc
    return [f"{zone}={entry}" for zone, entries in checked.items() for entry in entries]


WANTED = {
    list: "a list of strings",
    bool: "true or false",
    int: "a whole number",
    float: "a number",
    str: "a string",
}


def _checked(path: Path, key: str, kind: type, value: object) -> object:
    if kind is list:
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    elif kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise InvalidInput(f"{path}: {key} must be {WANTED[kind]}, not {value!r}")
    return value
