"""VMs and deployments."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from fastapi.responses import FileResponse

from gridvm.api.deps import Caller, Services
from gridvm.schemas.scheduling import LeaseExtend
from gridvm.schemas.vms import DeploymentOut, VmCreate, VmOut, VmRunOut, VmSave, VmState

router = APIRouter(tags=["vms"])


@router.post("/vms", status_code=status.HTTP_201_CREATED)
def create_vms(body: VmCreate, svc: Services, who: Caller) -> DeploymentOut:
    """Ask for ``count`` VMs of one image: they form one deployment."""
    return svc.vms.create(who, body)


@router.get("/vms")
def list_vms(
    svc: Services,
    who: Caller,
    response: Response,
    state: Annotated[list[VmState] | None, Query()] = None,
    deployment: str | None = None,
    host: str | None = None,
    all: bool = False,
    limit: int | None = None,
    offset: int = 0,
) -> list[VmOut]:
    """Your VMs, oldest first; admins may pass ``all=true`` to see everyone's. ``state`` may
    be given several times (a VM in any of them); ``limit`` (1 to 1000) and ``offset`` give
    one page. The ``X-Total-Count`` header says how many VMs match (on every page)."""
    states = state or []
    page = svc.vms.list_vms(
        who,
        states=states,
        deployment=deployment,
        host=host,
        all_users=all,
        limit=limit,
        offset=offset,
    )
    total = svc.vms.count_vms(who, states=states, deployment=deployment, host=host, all_users=all)
    response.headers["X-Total-Count"] = str(total)
    return page


@router.get("/vms/{vm_id}")
def show_vm(vm_id: str, svc: Services, who: Caller) -> VmOut:
    return svc.vms.get(who, vm_id)


@router.get("/vms/{vm_id}/runs")
def vm_runs(vm_id: str, svc: Services, who: Caller) -> list[VmRunOut]:
    """Each run of the VM (a start after a stop, a redeploy), newest last."""
    return svc.vms.runs(who, vm_id)


@router.get("/vms/{vm_id}/console", response_class=Response)
def console(vm_id: str, svc: Services, who: Caller, offset: int = 0) -> Response:
    """The VM's serial console log from ``offset`` on (bytes)."""
    data = svc.vms.console(who, vm_id, offset)
    return Response(
        content=data,
        media_type="text/plain; charset=utf-8",
        headers={"X-Console-Offset": str(offset + len(data))},
    )


@router.get("/vms/{vm_id}/results", response_class=FileResponse)
def results(vm_id: str, svc: Services, who: Caller) -> FileResponse:
    """The files the VM's job left in $GRIDVM_OUTPUT, as a tar."""
    return FileResponse(
        svc.vms.results_file(who, vm_id),
        media_type="application/x-tar",
        filename=f"{vm_id}-results.tar",
    )


@router.post("/vms/{vm_id}/stop", status_code=status.HTTP_202_ACCEPTED)
def stop(vm_id: str, svc: Services, who: Caller) -> VmOut:
    """ACPI power-off, forced after the site's grace period."""
    return svc.vms.stop(who, vm_id)


@router.post("/vms/{vm_id}/start", status_code=status.HTTP_202_ACCEPTED)
def start(vm_id: str, svc: Services, who: Caller) -> VmOut:
    return svc.vms.start(who, vm_id)


@router.post("/vms/{vm_id}/terminate", status_code=status.HTTP_202_ACCEPTED)
def terminate(vm_id: str, svc: Services, who: Caller) -> VmOut:
    """End the VM now and delete its disk, whatever its mode."""
    return svc.vms.terminate(who, vm_id)


@router.post("/vms/{vm_id}/redeploy", status_code=status.HTTP_202_ACCEPTED)
def redeploy(vm_id: str, svc: Services, who: Caller) -> VmOut:
    return svc.vms.redeploy(who, vm_id)


@router.post("/vms/{vm_id}/extend")
def extend(vm_id: str, body: LeaseExtend, svc: Services, who: Caller) -> VmOut:
    """Lengthen the VM's walltime (its lease) by ``by_s`` seconds, within the site's limit."""
    return svc.vms.extend(who, vm_id, body.by_s)


@router.post("/vms/{vm_id}/save", status_code=status.HTTP_202_ACCEPTED)
def save(vm_id: str, body: VmSave, svc: Services, who: Caller) -> VmOut:
    """Save a stopped single-mode VM's disk as a new private image (made on its host)."""
    return svc.vms.save(who, vm_id, body.name)


@router.post("/vms/{vm_id}/suspend", status_code=status.HTTP_202_ACCEPTED)
def suspend(vm_id: str, svc: Services, who: Caller) -> VmOut:
    return svc.vms.suspend(who, vm_id)


@router.post("/vms/{vm_id}/resume", status_code=status.HTTP_202_ACCEPTED)
def resume(vm_id: str, svc: Services, who: Caller) -> VmOut:
    return svc.vms.resume(who, vm_id)


@router.get("/deployments")
def list_deployments(svc: Services, who: Caller, all: bool = False) -> list[DeploymentOut]:
    return svc.vms.deployments(who, all_users=all)


@router.get("/deployments/{deployment_id}")
def show_deployment(deployment_id: str, svc: Services, who: Caller) -> DeploymentOut:
    return svc.vms.deployment(who, deployment_id)


@router.post("/deployments/{deployment_id}/cancel", status_code=status.HTTP_202_ACCEPTED)
def cancel_deployment(deployment_id: str, svc: Services, who: Caller) -> DeploymentOut:
    """Terminate every VM of the deployment that has not ended."""
    return svc.vms.cancel_deployment(who, deployment_id)


@router.post("/deployments/{deployment_id}/redeploy-failed", status_code=status.HTTP_202_ACCEPTED)
def redeploy_failed(deployment_id: str, svc: Services, who: Caller) -> DeploymentOut:
    """Start only the failed (and expired) members of the deployment over."""
    return svc.vms.redeploy_failed(who, deployment_id)
