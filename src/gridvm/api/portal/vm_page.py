"""One VM's page (/ui/vms/ID): what ``gridvm vm show`` shows, its runs, its network rules,
the queue's buttons for it, and its job's results to download.

The buttons post to the queue's handlers with ``back`` set to this page, so they come back
here; static/vm.js follows the VM through the REST API until it has ended (details, the
buttons for its state, runs, published data, results) and makes the buttons act in place
(static/vm_buttons.js, shared with the queue); the page works without it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from gridvm.api.deps import services
from gridvm.api.portal.queue import QUEUE, vm_actions
from gridvm.api.portal.rendering import render
from gridvm.api.portal.session import PortalSession
from gridvm.common.units import format_duration
from gridvm.schemas.vms import FINAL_STATES, VmOut
from gridvm.services.web_sessions import OpenSession

router = APIRouter()


def vm_page_path(vm_id: str) -> str:
    return f"/ui/vms/{vm_id}"


def egress_rules(vm: VmOut) -> list[tuple[str, str]]:
    """The VM's effective egress rules as ``vm show`` lists them: (rule, where it comes from),
    its own whitelist first, then its zone's (the site's)."""
    zone = vm.zone.value if vm.zone else "zone"
    return [(rule, "this VM") for rule in vm.egress] + [
        (rule, f"site, {zone} zone") for rule in vm.zone_egress
    ]


def vm_page(
    request: Request,
    session: OpenSession,
    vm_id: str,
    *,
    error: str | None = None,
    status_code: int = 200,
    **kept: str,
) -> Any:
    """The page of VM ``vm_id`` (another user's or an unknown VM: NotFound, the 404 page),
    with ``error`` shown when an action from it was refused and the values entered ``kept``."""
    vms = services(request).vms
    vm = vms.get(session.principal, vm_id)
    return render(
        request,
        "vm.html",
        session,
        status_code=status_code,
        active="queue",
        error=error,
        vm=vm,
        runs=vms.runs(session.principal, vm_id),
        rules=egress_rules(vm),
        actions=vm_actions(vm),
        here=vm_page_path(vm.id),
        queue=QUEUE,
        live=vm.state not in FINAL_STATES,
        final_states=[s.value for s in FINAL_STATES],
        duration=format_duration,
        kept=kept,
    )


@router.get("/vms/{vm_id}")
def show(request: Request, session: PortalSession, vm_id: str) -> Any:
    return vm_page(request, session, vm_id)


@router.get("/vms/{vm_id}/results")
def results(request: Request, session: PortalSession, vm_id: str) -> FileResponse:
    """The files the VM's job left in $GRIDVM_OUTPUT, as a tar (as GET /api/v1/vms/ID/results);
    none (yet), another user's or an unknown VM: the 404 page saying so."""
    return FileResponse(
        services(request).vms.results_file(session.principal, vm_id),
        media_type="application/x-tar",
        filename=f"{vm_id}-results.tar",
    )
