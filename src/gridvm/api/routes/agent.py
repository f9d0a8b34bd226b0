"""The agent protocol: hosts register, sync, fetch image blobs and upload console output.

Only agent tokens get in, and an agent token speaks for one host: the first it registers.
"""

from __future__ import annotations

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from gridvm.api.deps import AgentCaller, Services
from gridvm.api.streaming import blocking_chunks
from gridvm.common.errors import PayloadTooLarge
from gridvm.schemas.agent import (
    HostRegistration,
    LaunchBundle,
    RegistrationOut,
    SyncRequest,
    SyncResponse,
)
from gridvm.schemas.images import ImageOut

router = APIRouter(prefix="/agent", tags=["agent"])

MAX_CONSOLE_CHUNK = 1024 * 1024


@router.post("/register")
def register(body: HostRegistration, svc: Services, who: AgentCaller) -> RegistrationOut:
    who = svc.identity.bind_agent_token(who, body.name)
    return svc.agents.register(who, body)


@router.post("/sync")
async def sync(body: SyncRequest, svc: Services, who: AgentCaller) -> SyncResponse:
    """Report the host's VMs; get back what it should run (long poll: see ``since``)."""
    host_id = await anyio.to_thread.run_sync(svc.agents.apply_reports, who, body)
    generation = await svc.signals.wait(host_id, body.since, body.wait_s)
    return await anyio.to_thread.run_sync(svc.agents.assignments, host_id, generation)


@router.get("/vms/{vm_id}/launch")
def launch(vm_id: str, svc: Services, who: AgentCaller) -> LaunchBundle:
    """The VM's secrets and per-launch files, for its seed ISO (fetched when staging)."""
    return svc.agents.launch_bundle(who, vm_id)


@router.get("/blobs/{digest}", response_class=FileResponse)
def blob(digest: str, svc: Services, who: AgentCaller) -> FileResponse:
    return FileResponse(svc.agents.blob_path(who, digest), media_type="application/octet-stream")


@router.put("/vms/{vm_id}/results")
async def results(vm_id: str, request: Request, svc: Services, who: AgentCaller) -> dict[str, int]:
    """The results tar the agent read from the VM's results disk."""
    stream = request.stream().__aiter__()
    size = await anyio.to_thread.run_sync(
        lambda: svc.agents.store_results(who, vm_id, blocking_chunks(stream))
    )
    return {"size": size}


@router.put("/vms/{vm_id}/disk-image")
async def saved_disk(vm_id: str, request: Request, svc: Services, who: AgentCaller) -> ImageOut:
    """The flattened disk of a VM being saved (``vm save``)."""
    stream = request.stream().__aiter__()
    return await anyio.to_thread.run_sync(
        lambda: svc.agents.store_saved_disk(who, vm_id, blocking_chunks(stream))
    )


@router.put("/vms/{vm_id}/console")
async def console(
    vm_id: str, offset: int, request: Request, svc: Services, who: AgentCaller
) -> dict[str, int]:
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_CONSOLE_CHUNK:
            raise PayloadTooLarge("console chunks are at most 1 MiB")
    size = await anyio.to_thread.run_sync(
        svc.agents.append_console, who, vm_id, offset, bytes(data)
    )
    return {"size": size}
