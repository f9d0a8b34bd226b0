"""Volumes: persistent user disks that a VM after another can use."""

from __future__ import annotations

from urllib.parse import quote

from pydantic import TypeAdapter

from gridvm.client.transport import Transport, decode
from gridvm.schemas.volumes import VolumeAttach, VolumeCreate, VolumeOut

_VOLUME = TypeAdapter(VolumeOut)
_VOLUMES = TypeAdapter(list[VolumeOut])


def _ref(ref: str) -> str:
    return quote(ref, safe="")


class Volumes:
    """Create volumes, attach them to VMs, delete them.

    >>> gv.volumes.create("scratch", "10G")
    >>> gv.vms.create(image="tiny", volumes=["scratch"])   # the guest sees virtio-<id>
    """

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def create(self, name: str, size: str) -> VolumeOut:
        """A new empty volume of ``size`` (``"1G"``, ``"512M"``); it counts in your storage
        quota with its full size."""
        body = VolumeCreate(name=name, size=size).model_dump(mode="json")
        return self._t.send("POST", "/volumes", _VOLUME, json=body)

    def list(self, all: bool = False) -> list[VolumeOut]:
        """Your volumes (``all=True``: everyone's, for an admin)."""
        return self._t.get("/volumes", _VOLUMES, params={"all": all or None})

    def get(self, ref: str) -> VolumeOut:
        """A volume by name or id."""
        return self._t.get(f"/volumes/{_ref(ref)}", _VOLUME)

    def delete(self, ref: str) -> VolumeOut | None:
        """Delete a volume no VM holds. Returns None if it is gone, or the volume in state
        ``deleting`` while its host's agent deletes its file."""
        response = self._t.request("DELETE", f"/volumes/{_ref(ref)}")
        return None if response.status_code == 204 else decode(response, _VOLUME)

    def attach(self, vm_id: str, ref: str) -> VolumeOut:
        """Attach a volume to a stopped single-mode VM (used from its next start)."""
        body = VolumeAttach(volume=ref).model_dump(mode="json")
        return self._t.send("POST", f"/vms/{_ref(vm_id)}/volumes", _VOLUME, json=body)

    def detach(self, vm_id: str, ref: str) -> VolumeOut:
        """Detach a volume from a stopped single-mode VM."""
        return self._t.send("DELETE", f"/vms/{_ref(vm_id)}/volumes/{_ref(ref)}", _VOLUME)
