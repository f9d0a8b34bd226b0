"""``--role NAME[:COUNT][:provides=A,B][:requires=C]``: the roles of a group-context run."""

from __future__ import annotations

from gridvm.common.errors import InvalidInput
from gridvm.schemas.vms import RoleSpec

FORMAT_HINT = "write it like head:1:provides=nfs,torque or worker:4:requires=torque"


def parse_role(spec: str) -> RoleSpec:
    """One role from its command-line form; the server checks names and requirements."""
    name, *rest = spec.split(":")
    count = 1
    provides: list[str] = []
    requires: list[str] = []
    for number, part in enumerate(rest):
        key, sep, value = part.partition("=")
        if not sep and number == 0 and part.isdigit():
            count = int(part)
        elif sep and key in ("provides", "requires") and value:
            target = provides if key == "provides" else requires
            target.extend(v for v in value.split(",") if v)
        else:
            raise InvalidInput(f"--role {spec!r}: cannot read {part!r}", hint=FORMAT_HINT)
    if not name:
        raise InvalidInput(f"--role {spec!r}: the role needs a name", hint=FORMAT_HINT)
    return RoleSpec(name=name, count=count, provides=provides, requires=requires)
