"""The Queue page (your VMs and deployments, with what they wait for), the buttons that
stop, start, terminate or redeploy a VM or cancel a deployment, and a VM's console log.

The buttons are plain forms (they work without JavaScript); static/queue.js keeps the
tables current by polling the REST API, and static/console.js follows a running VM's log.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from fastapi import APIRouter, Request

from gridvm.api.deps import services
from gridvm.api.portal.console_text import printable_console
from gridvm.api.portal.rendering import error_text, redirect, render
from gridvm.api.portal.session import PortalSession, checked_form, form_text
from gridvm.common.errors import GridvmError
from gridvm.schemas.vms import FINAL_STATES, DeploymentOut, VmOut, VmState
from gridvm.services.principal import Principal
from gridvm.services.vms import VmService
from gridvm.services.web_sessions import OpenSession

router = APIRouter()

QUEUE = "/ui/queue"
# The console page shows at most the last part of a long log (the API serves it all).
CONSOLE_TAIL_BYTES = 1024**2
LIVE_STATES = frozenset(VmState) - FINAL_STATES - {VmState.stopped}


def vm_actions(vm: VmOut) -> list[str]:
    """The buttons that apply to ``vm`` in its state (the service has the last word)."""
    state = vm.state
    actions = []
    if state in LIVE_STATES and state != VmState.stopping:
        actions.append("stop")
    if state == VmState.stopped:
        actions.append("start")
    if state not in FINAL_STATES:
        actions.append("terminate")
    if state in FINAL_STATES:
        actions.append("redeploy")
    return actions


def queue_url(all_users: bool, deployment: str | None) -> str:
    query = {k: v for k, v in (("all", "1" if all_users else ""), ("deployment", deployment)) if v}
    return f"{QUEUE}?{urlencode(query)}" if query else QUEUE


def _filters_of(back: str) -> tuple[bool, str | None]:
    """The queue's filters from the page a form was sent from (only a queue URL counts)."""
    parts = urlsplit(back)
    if parts.path != QUEUE or parts.netloc or parts.scheme:
        return False, None
    query = parse_qs(parts.query)
    deployments = query.get("deployment", [])
    return query.get("all") == ["1"], deployments[0] if deployments else None


def _queue_page(
    request: Request,
    session: OpenSession,
    all_users: bool,
    deployment: str | None,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Any:
    who: Principal = session.principal
    all_users = all_users and who.is_admin
    vms = services(request).vms
    deployments = vms.deployments(who, all_users=all_users)
    shown = vms.list_vms(who, deployment=deployment, all_users=all_users)
    return render(
        request,
        "queue.html",
        session,
        status_code=status_code,
        active="queue",
        error=error,
        vms=shown,
        deployments=deployments,
        all_users=all_users,
        deployment=deployment,
        here=queue_url(all_users, deployment),
        actions_of=vm_actions,
        final_states=[s.value for s in FINAL_STATES],
    )


@router.get("/queue")
def queue_page(
    request: Request, session: PortalSession, all: str = "", deployment: str = ""
) -> Any:
    return _queue_page(request, session, all == "1", deployment or None)


VERBS: dict[str, tuple[str, Callable[[VmService], Callable[[Principal, str], VmOut]]]] = {
    "stop": ("is stopping", lambda vms: vms.stop),
    "start": ("is starting again", lambda vms: vms.start),
    "terminate": ("is being terminated", lambda vms: vms.terminate),
    "redeploy": ("starts over", lambda vms: vms.redeploy),
}


async def _acted(request: Request, session: OpenSession, do: Callable[[VmService], str]) -> Any:
    """Carry out one posted queue action: back to the queue with ``do``'s notice, or the queue
    page with the service's reason (and its status) when it refused."""
    form = await checked_form(request, session)
    all_users, deployment = _filters_of(form_text(form, "back") or QUEUE)
    try:
        notice = do(services(request).vms)
    except GridvmError as exc:
        return _queue_page(
            request,
            session,
            all_users,
            deployment,
            error=error_text(exc),
            status_code=exc.http_status,
        )
    return redirect(queue_url(all_users, deployment), notice)


async def _act(request: Request, session: OpenSession, action: str, vm_id: str) -> Any:
    what, method = VERBS[action]

    def do(vms: VmService) -> str:
        vm = method(vms)(session.principal, vm_id)
        return f"VM {vm.name} ({vm.id}) {what}."

    return await _acted(request, session, do)


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

    def do(vms: VmService) -> str:
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
