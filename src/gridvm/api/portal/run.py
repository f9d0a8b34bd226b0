"""The Run page: ask for VMs of an image, like ``gridvm vm run``.

The form posts to POST /ui/run, which makes the deployment through the same service as
POST /api/v1/vms, so the checks (site limits, the image's memory, quotas, the CSV) are
the API's own; a refused request re-renders the form with the message and what was typed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from starlette.datastructures import FormData, UploadFile

from gridvm.api.deps import services
from gridvm.api.portal.rendering import error_text, redirect, render
from gridvm.api.portal.session import PortalSession, checked_form, form_text
from gridvm.common.errors import GridvmError, InvalidInput, PayloadTooLarge
from gridvm.common.param_csv import parse_param_csv
from gridvm.common.units import format_duration, format_size, parse_duration, parse_size
from gridvm.schemas.images import ImageOut, TrustClass, Visibility
from gridvm.schemas.scheduling import QuotaOut, QuotaSubject
from gridvm.schemas.vms import VmCreate, VmMode
from gridvm.services.principal import Principal
from gridvm.services.web_sessions import OpenSession

router = APIRouter()

MAX_PARAM_FILE_BYTES = 4 * 1024**2
DEFAULTS = {
    "image": "",
    "mode": VmMode.multi.value,
    "count": "1",
    "cores": "1",
    "memory": "256",
    "walltime": "",
    "vm_name": "",
    "user_data": "",
}


@dataclass(frozen=True)
class ImageChoice:
    value: str  # what the form sends: NAME, NAME:N, or the id where a name is ambiguous
    label: str


@dataclass(frozen=True)
class QuotaLine:
    """What one quota (the user's, or a group's) leaves for new VMs."""

    subject: str
    cores: str
    memory: str
    vms: str


def image_choices(images: list[ImageOut], me: str) -> dict[str, list[ImageChoice]]:
    """The images the user may run, grouped for the select: site templates first, then
    their own, then those shared with them (and, for officers and admins, other users'
    private ones); NAME runs the latest version, NAME:N pins one."""
    owners: dict[str, set[str]] = defaultdict(set)
    versions: dict[tuple[str, str], list[ImageOut]] = defaultdict(list)
    for image in images:
        owners[image.name].add(image.owner)
        versions[(image.owner, image.name)].append(image)
    groups: dict[str, list[ImageChoice]] = {
        "Site templates": [],
        "Your images": [],
        "Shared with you": [],
        "Other users' private images": [],  # seen by officers and admins only
    }
    for (owner, name), found in sorted(versions.items(), key=lambda kv: kv[0][1]):
        found.sort(key=lambda i: i.version)
        latest = next((i for i in found if i.latest), found[-1])
        unique = len(owners[name]) == 1
        if latest.trust == TrustClass.site:
            heading = "Site templates"
        elif owner == me:
            heading = "Your images"
        elif latest.visibility == Visibility.private:
            heading = "Other users' private images"
        else:
            heading = "Shared with you"
        whose = "" if owner == me or latest.trust == TrustClass.site else f", from {owner}"
        groups[heading].append(
            ImageChoice(
                name if unique else latest.id,
                f"{name} (latest, version {latest.version}{whose})",
            )
        )
        if len(found) > 1:
            for image in found:
                ref = f"{name}:{image.version}"
                groups[heading].append(ImageChoice(ref if unique else image.id, f"{ref}{whose}"))
    return {heading: choices for heading, choices in groups.items() if choices}


def _left(cap: int | None, used: int, unit: str = "") -> str:
    if cap is None:
        return "no limit"
    left = max(0, cap - used)
    return f"{left}{unit} of {cap}{unit} left"


def quota_lines(quotas: list[QuotaOut], me: str, my_groups: list[str]) -> list[QuotaLine]:
    """The user's own quota and their groups' (admins are shown every quota by the
    service: only theirs are kept)."""
    lines = []
    for q in quotas:
        mine = q.name == me if q.kind == QuotaSubject.user else q.name in my_groups
        if not mine:
            continue
        lines.append(
            QuotaLine(
                subject=f"{q.kind.value} {q.name}",
                cores=_left(q.cores, q.used_cores),
                memory=_left(q.memory_mb, q.used_memory_mb, " MiB"),
                vms=_left(q.vms, q.used_vms),
            )
        )
    return lines


def _render_form(
    request: Request,
    session: OpenSession,
    values: dict[str, str],
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Any:
    svc = services(request)
    who: Principal = session.principal
    me = svc.identity.whoami(who)
    limits = svc.vms.limits
    return render(
        request,
        "run.html",
        session,
        status_code=status_code,
        active="run",
        error=error,
        values=values,
        images=image_choices(svc.images.list_images(who, all_versions=True), me.name),
        quotas=quota_lines(svc.quotas.show(who), me.name, me.groups),
        default_walltime=format_duration(limits.default_walltime_s),
        max_walltime=format_duration(limits.max_walltime_s),
        max_param_file=format_size(MAX_PARAM_FILE_BYTES),
    )


@router.get("/run")
def run_page(request: Request, session: PortalSession, image: str = "") -> Any:
    return _render_form(request, session, {**DEFAULTS, "image": image})


def _whole_number(text: str, label: str) -> int:
    if not text.isdigit():
        raise InvalidInput(f"{label} must be a whole number, not {text!r}", hint="e.g. 1 or 4")
    return int(text)


def _memory_mib(text: str) -> int:
    """MiB from the memory field: 256 (MiB), or with a unit such as 1G or 512M."""
    return parse_size(text, default_unit="M") // 1024**2


async def _param_rows(form: FormData) -> list[dict[str, str]] | None:
    upload = form.get("param_file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return None  # no file chosen (browsers send an empty part)
    data = await upload.read(MAX_PARAM_FILE_BYTES + 1)
    if len(data) > MAX_PARAM_FILE_BYTES:
        raise PayloadTooLarge(
            f"the parameter file {upload.filename} is larger than"
            f" {format_size(MAX_PARAM_FILE_BYTES)}",
            hint="split the scan into several requests",
        )
    return parse_param_csv(data, f"parameter file {upload.filename}")


async def request_from_form(form: FormData, values: dict[str, str]) -> VmCreate:
    """The request the form describes, each field checked with a message naming it."""
    if not values["image"]:
        raise InvalidInput("choose an image to run", hint="pick one in the Image list")
    try:
        mode = VmMode(values["mode"])
    except ValueError:
        raise InvalidInput(
            f"{values['mode']!r} is not a mode", hint="choose multi or single"
        ) from None
    user_data = values["user_data"].replace("\r\n", "\n")  # browsers send CRLF
    return VmCreate(
        image=values["image"],
        mode=mode,
        count=_whole_number(values["count"] or "1", "the number of machines"),
        vcpus=_whole_number(values["cores"] or "1", "the number of cores"),
        memory_mb=_memory_mib(values["memory"] or "256"),
        walltime_s=parse_duration(values["walltime"]) if values["walltime"] else None,
        name=values["vm_name"] or None,
        user_data=user_data if user_data.strip() else None,
        params=await _param_rows(form),
    )


@router.post("/run")
async def run(request: Request, session: PortalSession) -> Any:
    form = await checked_form(request, session)
    values = {field: form_text(form, field) for field in DEFAULTS}
    raw_user_data = form.get("user_data")
    values["user_data"] = raw_user_data if isinstance(raw_user_data, str) else ""
    try:
        made = services(request).vms.create(
            session.principal, await request_from_form(form, values)
        )
    except GridvmError as exc:
        return _render_form(
            request, session, values, error=error_text(exc), status_code=exc.http_status
        )
    vms = "1 VM" if made.count == 1 else f"{made.count} VMs"
    return redirect("/ui/queue", f"Deployment {made.name} ({made.id}) asked for {vms}.")
