"""Checks of a request for VMs, before anything is made: pure functions over the request."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath

from gridvm.common.config import SiteLimits
from gridvm.common.errors import InvalidInput
from gridvm.common.units import format_duration, format_size
from gridvm.scheduler import QuotaLimit
from gridvm.scheduler.quotas import Subject
from gridvm.scheduler.selectors import parse_selector
from gridvm.schemas.vms import LaunchFile, VmCreate

ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
MAX_PARAM_ROW_BYTES = 16 * 1024
# Role names end up in hostnames (NAME-ROLE-N): lower case, digits and '-'.
ROLE_NAME_RE = re.compile(r"[a-z][a-z0-9-]{0,30}")
CAPABILITY_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,31}")
MAX_ROLES = 16


def scan_rows(req: VmCreate) -> list[dict[str, str]]:
    """The parameter rows of a scan, checked: they become environment variables in guests."""
    if req.params is None:
        return []
    rows = req.params
    if not rows:
        raise InvalidInput("the parameter list has no rows", hint="give one row per VM")
    if req.count not in (1, len(rows)):
        raise InvalidInput(
            f"{req.count} VMs asked for, but the parameters have {len(rows)} rows",
            hint="leave the count out: a scan makes one VM per row",
        )
    for number, row in enumerate(rows, start=1):
        for key in row:
            if not ENV_NAME_RE.fullmatch(key) or key.upper().startswith("GRIDVM_"):
                raise InvalidInput(
                    f"parameter name {key!r} (row {number}) cannot be an environment variable",
                    hint="use letters, digits and '_', not starting with a digit or GRIDVM_",
                )
        if sum(len(k) + len(v.encode()) for k, v in row.items()) > MAX_PARAM_ROW_BYTES:
            raise InvalidInput(
                f"parameter row {number} is larger than {MAX_PARAM_ROW_BYTES} bytes",
                hint="pass large inputs as files, not parameters",
            )
    return rows


def member_roles(req: VmCreate) -> list[str]:
    """The role of each member of a group-context deployment, in order (empty: no roles).

    Every capability a role requires must be provided by some role, or its members
    would wait for ever."""
    if req.roles is None:
        return []
    if req.params is not None:
        raise InvalidInput(
            "a deployment has either roles or scan parameters, not both",
            hint="run the scan and the group as two deployments",
        )
    if not 1 <= len(req.roles) <= MAX_ROLES:
        raise InvalidInput(f"give 1 to {MAX_ROLES} roles, not {len(req.roles)}")
    names: set[str] = set()
    provided = {cap for role in req.roles for cap in role.provides}
    for role in req.roles:
        if not ROLE_NAME_RE.fullmatch(role.name) or role.name in names:
            raise InvalidInput(
                f"{role.name!r} is not a usable role name",
                hint="use each name once: a lower-case letter, then letters, digits or '-'",
            )
        names.add(role.name)
        if role.count < 1:
            raise InvalidInput(f"role {role.name!r} needs a count of at least 1")
        for cap in [*role.provides, *role.requires]:
            if not CAPABILITY_RE.fullmatch(cap):
                raise InvalidInput(
                    f"{cap!r} (role {role.name}) is not a usable capability name",
                    hint="use lower-case letters, digits, '_', '.' and '-'",
                )
        for cap in role.requires:
            if cap not in provided:
                raise InvalidInput(
                    f"role {role.name!r} requires {cap!r}, which no role provides",
                    hint=f"add a role that provides {cap!r}, or drop the requirement",
                )
    members = [role.name for role in req.roles for _ in range(role.count)]
    if req.count not in (1, len(members)):
        raise InvalidInput(
            f"{req.count} VMs asked for, but the roles add up to {len(members)}",
            hint="leave the count out: the roles' counts make the deployment",
        )
    return members


def check_placement(req: VmCreate) -> None:
    """Placement wishes must make sense: a readable label selector, a positive timeout."""
    if req.selector:
        parse_selector(req.selector)
    if req.queue_timeout_s is not None and req.queue_timeout_s < 1:
        raise InvalidInput("the queue timeout must be at least one second")


def check_limits(req: VmCreate, limits: SiteLimits) -> None:
    """Refuse a request outside the site's limits."""
    if not 1 <= req.count <= limits.max_vms_per_request:
        raise InvalidInput(
            f"cannot start {req.count} VMs in one request",
            hint=f"ask for 1 to {limits.max_vms_per_request}",
        )
    if not 1 <= req.vcpus <= limits.max_vcpus_per_vm:
        raise InvalidInput(
            f"{req.vcpus} vCPUs is outside the site's limit",
            hint=f"ask for 1 to {limits.max_vcpus_per_vm} vCPUs",
        )
    if not 16 <= req.memory_mb <= limits.max_memory_mb_per_vm:
        raise InvalidInput(
            f"{req.memory_mb} MiB of memory is outside the site's limit",
            hint=f"ask for 16 to {limits.max_memory_mb_per_vm} MiB",
        )
    if req.disk_gb is not None and not 1 <= req.disk_gb <= limits.max_disk_gb_per_vm:
        raise InvalidInput(
            f"a disk of {req.disk_gb} GiB is outside the site's limit",
            hint=f"ask for 1 to {limits.max_disk_gb_per_vm} GiB",
        )
    if req.walltime_s is not None and not 1 <= req.walltime_s <= limits.max_walltime_s:
        raise InvalidInput(
            f"a walltime of {format_duration(req.walltime_s)} is outside the site's limit",
            hint=f"ask for at most {format_duration(limits.max_walltime_s)}",
        )
    if req.max_running is not None and req.max_running < 1:
        raise InvalidInput(
            "--max-running must be at least 1", hint="leave it out to run all at once"
        )
    if req.user_data is not None and len(req.user_data.encode()) > limits.max_user_data_bytes:
        raise InvalidInput(
            f"user-data of {len(req.user_data.encode())} bytes is too large",
            hint=f"keep it under {limits.max_user_data_bytes} bytes",
        )


def check_files(files: Sequence[LaunchFile], limits: SiteLimits) -> None:
    """Per-launch files must go to sane guest paths, each once, within the size limit."""
    total = 0
    paths = set()
    for f in files:
        path = PurePosixPath(f.path)
        if (
            not path.is_absolute()
            or ".." in path.parts
            or len(path.parts) < 2
            or path.parts[1] in ("proc", "sys", "dev", "run")
            or f.path in paths
        ):
            raise InvalidInput(
                f"{f.path!r} is not a place for a file in the guest",
                hint="give an absolute path such as /root/input.dat, outside /proc /sys /dev "
                "/run, and each path once",
            )
        paths.add(f.path)
        try:
            total += len(base64.b64decode(f.content_b64, validate=True))
        except binascii.Error as exc:
            raise InvalidInput(f"the content of {f.path} is not base64") from exc
    if total > limits.max_launch_files_bytes:
        limit = limits.max_launch_files_bytes
        raise InvalidInput(
            f"the files add up to {format_size(total)}, more than {format_size(limit)}",
            hint="put large inputs in an image or fetch them from the job",
        )


def check_fits_some_host(req: VmCreate, hosts: Sequence[tuple[int, int]]) -> None:
    """Refuse at once what no registered host (cores, memory MiB) could ever offer, even
    idle; with no host registered yet, the request waits for one."""
    if not hosts:
        return
    if not any(cores >= req.vcpus for cores, _ in hosts):
        biggest = max(cores for cores, _ in hosts)
        raise InvalidInput(
            f"no host has {req.vcpus} cores: the largest has {biggest}",
            hint=f"ask for at most {biggest} vCPUs",
        )
    if not any(memory >= req.memory_mb for _, memory in hosts):
        biggest = max(memory for _, memory in hosts)
        raise InvalidInput(
            f"no host has {req.memory_mb} MiB of memory: the largest has {biggest} MiB",
            hint=f"ask for at most {biggest}M",
        )
    if not any(cores >= req.vcpus and memory >= req.memory_mb for cores, memory in hosts):
        raise InvalidInput(
            f"no host has both {req.vcpus} cores and {req.memory_mb} MiB",
            hint="ask for fewer vCPUs or less memory",
        )


def check_quota_could_allow(req: VmCreate, quotas: Mapping[Subject, QuotaLimit]) -> None:
    """Refuse at once what the requester's quotas (``quotas``: theirs and their groups')
    could never let start, even with nothing else running: one VM larger than a quota, or
    a gang larger in all. A request that only has to wait for running VMs is accepted."""
    members = req.count if req.gang else 1
    want = (
        ("cores", req.vcpus * members, "vCPUs"),
        ("MiB of memory", req.memory_mb * members, "MiB"),
        ("VMs", members, "VMs"),
    )
    for (kind, name), limit in sorted(quotas.items()):
        caps = (limit.cores, limit.memory_mb, limit.vms)
        for (what, asked, unit), cap in zip(want, caps, strict=True):
            if cap is not None and asked > cap:
                whom = f"the gang of {members} VMs asks" if req.gang else "one VM asks"
                raise InvalidInput(
                    f"{whom} for {asked} {unit}, more than {kind} {name}'s quota of {cap} {what}",
                    hint=f"ask for less (at most {cap} {what}"
                    f"{' together' if req.gang else ''}), or ask an administrator for a"
                    " larger quota",
                )
