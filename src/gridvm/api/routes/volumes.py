"""Volumes: persistent user disks, and attaching them to a stopped VM."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from gridvm.api.deps import Caller, Services
from gridvm.schemas.volumes import VolumeAttach, VolumeCreate, VolumeOut

router = APIRouter(tags=["volumes"])


@router.post("/volumes", status_code=status.HTTP_201_CREATED)
def create_volume(body: VolumeCreate, svc: Services, who: Caller) -> VolumeOut:
    """A new empty volume; its full size counts in your image storage quota."""
    return svc.volumes.create(who, body)


@router.get("/volumes")
def list_volumes(svc: Services, who: Caller, all: bool = False) -> list[VolumeOut]:
    """Your volumes; admins may pass ``all=true`` to see everyone's."""
    return svc.volumes.list_volumes(who, all_users=all)


@router.get("/volumes/{ref}")
def show_volume(ref: str, svc: Services, who: Caller) -> VolumeOut:
    return svc.volumes.get(who, ref)


@router.delete(
    "/volumes/{ref}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=VolumeOut,
    responses={204: {"description": "deleted (no host held its file)"}},
)
def delete_volume(ref: str, svc: Services, who: Caller) -> VolumeOut | Response:
    """Delete a volume no VM holds: gone at once if never used, otherwise ``deleting``
    until its host's agent has deleted the file."""
    out = svc.volumes.delete(who, ref)
    return Response(status_code=status.HTTP_204_NO_CONTENT) if out is None else out


@router.post("/vms/{vm_id}/volumes")
def attach_volume(vm_id: str, body: VolumeAttach, svc: Services, who: Caller) -> VolumeOut:
    """Attach a volume to a stopped single-mode VM (for its next start)."""
    return svc.volumes.attach_to_vm(who, vm_id, body.volume)


@router.delete("/vms/{vm_id}/volumes/{ref}")
def detach_volume(vm_id: str, ref: str, svc: Services, who: Caller) -> VolumeOut:
    """Detach a volume from a stopped single-mode VM."""
    return svc.volumes.detach_from_vm(who, vm_id, ref)
