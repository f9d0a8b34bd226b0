"""The Queue page (your VMs and deployments, with what they wait for), the buttons that
stop, start, terminate or redeploy a VM or cancel a deployment (also shown on a VM's own
page, vm_page.py, and coming back to it), and a VM's console log.

The buttons are plain forms (they work without JavaScript); static/queue.js keeps the
tables current by polling the REST API, and static/console.js follows a running VM's log.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from fastapi import APIRouter, Request
from starlette.datastructures import FormData

from gridvm.api.deps import services
from gridvm.api.portal.console_text import printable_console
from gridvm.api.portal.rendering import error_text, redirect, render
from gridvm.api.portal.session import PortalSession, checked_form, form_text
from gridvm.common.errors import GridvmError, InvalidInput
from gridvm.common.units import format_duration, parse_duration
from gridvm.schemas.vms import FINAL_STATES, DeploymentOut, VmMode, VmOut, VmState
from gridvm.services.principal import Principal
from gridvm.services.vms import VmService
from gridvm.services.web_sessions import OpenSession

router = APIRouter()

QUEUE = "/ui/queue"
# The console page shows at most the last part of a long log (the API serves it all).
CONSOLE_TAIL_BYTES = 1024**2
LIVE_STATES = frozenset(VmState) - FINAL_STATES - {VmState.stopped}
# VMs per page of the queue (queue.js polls only the page shown).
PAGE_SIZE = 50
STARTING = (VmState.scheduled, VmState.staging, VmState.booting)
# The "Show" filter: value -> (label, the states it shows; none: every state).
SHOW: dict[str, tuple[str, tuple[VmState, ...]]] = {
    "": ("All", ()),
    "waiting": ("Waiting (pending)", (VmState.pending,)),
    "active": (
        "Active (starting/running/suspended/stopping)",
        (*STARTING, VmState.running, VmState.suspended, VmState.stopping),
    ),
    "stopped": ("Stopped", (VmState.stopped,)),
    "ended": (
        "Ended (done/failed/cancelled/expired)",
        (VmState.done, VmState.failed, VmState.cancelled, VmState.expired),
    ),
}


def vm_actions(vm: VmOut) -> list[str]:
    """The buttons that apply to ``vm`` in its state (the service has the last word);
    static/vm_buttons.js mirrors this in actionsOf (for the queue and the VM page)."""
    state = vm.state
    actions = []
    if state in LIVE_STATES and state != VmState.stopping:
        actions.append("stop")
    if state == VmState.stopped:
        actions.append("start")
    if state == VmState.running:
        actions.append("suspend")
    if state == VmState.suspended:
        actions.append("resume")
    if state in LIVE_STATES and state != VmState.stopping:
        actions.append("extend")
    if state == VmState.stopped and vm.mode == VmMode.single and vm.saving_as is None:
        actions.append("save")
    if state not in FINAL_STATES:
        actions.append("terminate")
    if state in FINAL_STATES:
        actions.append("redeploy")
    return actions


@dataclass(frozen=True)
class Filters:
    """What the queue page shows: everyone's VMs (admins), one deployment, a state group,
    and which page of them."""

    all_users: bool = False
    deployment: str | None = None
    show: str = ""
    page: int = 1

    def url(self, page: int | None = None) -> str:
        number = self.page if page is None else page
        query = {
            k: v
            for k, v in (
                ("all", "1" if self.all_users else ""),
                ("deployment", self.deployment),
                ("show", self.show),
                ("page", str(number) if number > 1 else ""),
            )
            if v
        }
        return f"{QUEUE}?{urlencode(query)}" if query else QUEUE


def _page_number(text: str) -> int:
    return int(text) if text.isdigit() and 0 < len(text) < 7 else 1


def _filters_of(back: str) -> Filters:
    """The queue's filters from the page a form was sent from (only a queue URL counts)."""
    parts = urlsplit(back)
    if parts.path != QUEUE or parts.netloc or parts.scheme:
        return Filters()
    query = parse_qs(parts.query)

    def first(name: str) -> str:
        return query.get(name, [""])[0]

    show = first("show")
    return Filters(
        all_users=first("all") == "1",
        deployment=first("deployment") or None,
        show=show if show in SHOW else "",
        page=_page_number(first("page")),
    )


def _queue_page(
    request: Request,
    session: OpenSession,
    filters: Filters,
    *,
    error: str | None = None,
    status_code: int = 200,
    **kept: Any,
) -> Any:
    who: Principal = session.principal
    filters = replace(filters, all_users=filters.all_users and who.is_admin)
    vms = services(request).vms
    deployments = vms.deployments(who, all_users=filters.all_users)
    states = SHOW[filters.show][1]
    total = vms.count_vms(
        who, states=states, deployment=filters.deployment, all_users=filters.all_users
    )
    pages = max(1, math.ceil(total / PAGE_SIZE))
    filters = replace(filters, page=min(filters.page, pages))
    shown = vms.list_vms(
        who,
        states=states,
        deployment=filters.deployment,
        all_users=filters.all_users,
        limit=PAGE_SIZE,
        offset=(filters.page - 1) * PAGE_SIZE,
    )
    return render(
        request,
        "queue.html",
        session,
        status_code=status_code,
        active="queue",
        error=error,
        vms=shown,
        deployments=deployments,
        all_users=filters.all_users,
        deployment=filters.deployment,
        filters=filters,
        show_options=[(value, label) for value, (label, _) in SHOW.items()],
        show_states={value: [s.value for s in states] for value, (_, states) in SHOW.items()},
        total=total,
        pages=pages,
        page_size=PAGE_SIZE,
        here=filters.url(),
        actions_of=vm_actions,
        final_states=[s.value for s in FINAL_STATES],
        kept=kept,
    )


@router.get("/queue")
def queue_page(
    request: Request,
    session: PortalSession,
    all: str = "",
    deployment: str = "",
    show: str = "",
    page: str = "",
) -> Any:
    if show not in SHOW:
        raise InvalidInput(
            f"{show!r} is not one of the queue's filters",
            hint="choose one from the Show list: " + ", ".join(v for v in SHOW if v),
        )
    filters = Filters(all == "1", deployment or None, show, _page_number(page))
    return _queue_page(request, session, filters)


VERBS: dict[str, tuple[str, Callable[[VmService], Callable[[Principal, str], VmOut]]]] = {
    "stop": ("is stopping", lambda vms: vms.stop),
    "start": ("is starting again", lambda vms: vms.start),
    "terminate": ("is being terminated", lambda vms: vms.terminate),
    "redeploy": ("starts over", lambda vms: vms.redeploy),
    "suspend": ("is being suspended", lambda vms: vms.suspend),
    "resume": ("is resuming", lambda vms: vms.resume),
}


def _vm_page_of(back: str, vm_id: str | None) -> str | None:
    """The VM's own page when the form was sent from it (only the page of the VM acted on)."""
    page = f"/ui/vms/{vm_id}"
    return page if vm_id is not None and back == page else None


async def _acted(
    request: Request,
    session: OpenSession,
    do: Callable[[VmService, FormData], str],
    keep: Callable[[FormData], dict[str, str]] = lambda form: {},
    vm_id: str | None = None,
) -> Any:
    """Carry out one posted queue action: back to the queue (or to the page of the VM
    ``vm_id`` it was sent from) with ``do``'s notice, or that page with the service's reason
    (and its status) when it refused, the values entered (``keep``) still in their fields."""
    form = await checked_form(request, session)
    back = form_text(form, "back") or QUEUE
    filters = _filters_of(back)
    vm_page = _vm_page_of(back, vm_id)
    try:
        notice = do(services(request).vms, form)
    except GridvmError as exc:
        if vm_page is not None and vm_id is not None:
            # The VM page shows this module's buttons: imported here, not at the top.
            from gridvm.api.portal.vm_page import vm_page as show_vm_page

            return show_vm_page(
                request,
                session,
                vm_id,
                error=error_text(exc),
                status_code=exc.http_status,
                **keep(form),
            )
        return _queue_page(
            request,
            session,
            filters,
            error=error_text(exc),
            status_code=exc.http_status,
            **keep(form),
        )
    return redirect(vm_page or filters.url(), notice)


async def _act(request: Request, session: OpenSession, action: str, vm_id: str) -> Any:
    what, method = VERBS[action]

    def do(vms: VmService, form: FormData) -> str:
        vm = method(vms)(session.principal, vm_id)
        return f"VM {vm.name} ({vm.id}) {what}."

    return await _acted(request, session, do, vm_id=vm_id)


@router.post("/vms/{vm_id}/stop")
async def stop(request: Request, session: PortalSession, vm_id: str) -> Any:
    return await _act(request, session, "stop", vm_id)


@router.post("/vms/{vm_id}/start")
async def start(request: Request, session: PortalSession, vm_id: str) -> Any:
    return await _act(request, session, "start", vm_id)


@router.post("/vms/{vm_id}/terminate")
async def terminate(request: Request, session: PortalSession, vm_id: str) -> Any:
    return await _act(request, session, "terminate", vm_id)


@router.post("/vms/{vm_id}/redeploy")
async def redeploy(request: Request, session: PortalSession, vm_id: str) -> Any:
    return await _act(request, session, "redeploy", vm_id)


@router.post("/vms/{vm_id}/suspend")
async def suspend(request: Request, session: PortalSession, vm_id: str) -> Any:
    return await _act(request, session, "suspend", vm_id)


@router.post("/vms/{vm_id}/resume")
async def resume(request: Request, session: PortalSession, vm_id: str) -> Any:
    return await _act(request, session, "resume", vm_id)


@router.post("/vms/{vm_id}/extend")
async def extend(request: Request, session: PortalSession, vm_id: str) -> Any:
    """Lengthen the VM's walltime by the amount entered ("1h", "30m")."""

    def do(vms: VmService, form: FormData) -> str:
        amount = form_text(form, "by")
        if not amount:
            raise InvalidInput("say how much longer the VM may run", hint="enter e.g. 1h or 30m")
        by_s = parse_duration(amount)
        if by_s < 1:
            raise InvalidInput(f"{amount!r} adds no time", hint="enter e.g. 1h or 30m")
        vm = vms.extend(session.principal, vm_id, by_s)
        return f"VM {vm.name} ({vm.id}) may now run for {format_duration(vm.walltime_s)} in all."

    return await _acted(
        request,
        session,
        do,
        lambda form: {"extend_" + vm_id: form_text(form, "by")},
        vm_id=vm_id,
    )


@router.post("/vms/{vm_id}/save")
async def save(request: Request, session: PortalSession, vm_id: str) -> Any:
    """Save a stopped single-mode VM's disk as a new private image called as entered."""

    def do(vms: VmService, form: FormData) -> str:
        name = form_text(form, "name")
        if not name:
            raise InvalidInput("name the image to save the VM as", hint="enter an image name")
        vm = vms.save(session.principal, vm_id, name)
        return (
            f"VM {vm.name} ({vm.id}) is being saved as image {name};"
            " it appears in My images when its host has sent it."
        )

    return await _acted(
        request,
        session,
        do,
        lambda form: {"save_" + vm_id: form_text(form, "name")},
        vm_id=vm_id,
    )


DEPLOYMENT_VERBS: dict[
    str, tuple[str, Callable[[VmService], Callable[[Principal, str], DeploymentOut]]]
] = {
    "cancel": (
        "is cancelled: its VMs that had not ended are ending",
        lambda vms: vms.cancel_deployment,
    ),
    "redeploy-failed": (
        "starts its failed and expired VMs over",
        lambda vms: vms.redeploy_failed,
    ),
}


async def _act_on_deployment(
    request: Request, session: OpenSession, action: str, deployment_id: str
) -> Any:
    what, method = DEPLOYMENT_VERBS[action]

    def do(vms: VmService, form: FormData) -> str:
        out = method(vms)(session.principal, deployment_id)
        return f"Deployment {out.name} ({out.id}) {what}."

    return await _acted(request, session, do)


@router.post("/deployments/{deployment_id}/cancel")
async def cancel(request: Request, session: PortalSession, deployment_id: str) -> Any:
    return await _act_on_deployment(request, session, "cancel", deployment_id)


@router.post("/deployments/{deployment_id}/redeploy-failed")
async def redeploy_failed(request: Request, session: PortalSession, deployment_id: str) -> Any:
    return await _act_on_deployment(request, session, "redeploy-failed", deployment_id)


@router.get("/vms/{vm_id}/console")
def console_page(request: Request, session: PortalSession, vm_id: str) -> Any:
    vms = services(request).vms
    vm = vms.get(session.principal, vm_id)  # NotFound: the 404 page
    data = vms.console(session.principal, vm_id)
    shown = data[-CONSOLE_TAIL_BYTES:]
    return render(
        request,
        "console.html",
        session,
        active="queue",
        vm=vm,
        log=printable_console(shown.decode("utf-8", errors="replace")),
        cut=len(data) - len(shown),
        offset=len(data),
        live=vm.state in LIVE_STATES,
    )
