"""VMs and deployments (the group of VMs one request made)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from pydantic import TypeAdapter

from gridvm.client.transport import Transport
from gridvm.schemas.vms import DeploymentOut, VmCreate, VmOut, VmState

_VM = TypeAdapter(VmOut)
_VMS = TypeAdapter(list[VmOut])
_DEPLOYMENT = TypeAdapter(DeploymentOut)
_DEPLOYMENTS = TypeAdapter(list[DeploymentOut])


def _id(value: str) -> str:
    return quote(value, safe="")


class Vms:
    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def create(self, request: VmCreate | None = None, /, **fields: Any) -> DeploymentOut:
        """Ask for VMs: pass a ``VmCreate``, or its fields (``image=``, ``count=``, ...).

        The VMs start ``pending``; the returned deployment lists them.
        """
        if request is None:
            request = VmCreate.model_validate(fields)
        elif fields:
            request = request.model_copy(update=fields)
        body = request.model_dump(mode="json", exclude_none=True)
        return self._t.send("POST", "/vms", _DEPLOYMENT, json=body)

    def list(
        self,
        state: VmState | str | None = None,
        deployment: str | None = None,
        host: str | None = None,
        all: bool = False,
    ) -> list[VmOut]:
        """Your VMs (``all=True``: everyone's, for an admin), optionally filtered."""
        params = {
            "state": None if state is None else VmState(state).value,
            "deployment": deployment,
            "host": host,
            "all": all or None,
        }
        return self._t.get("/vms", _VMS, params=params)

    def get(self, vm_id: str) -> VmOut:
        return self._t.get(f"/vms/{_id(vm_id)}", _VM)

    def _act(self, vm_id: str, action: str) -> VmOut:
        return self._t.send("POST", f"/vms/{_id(vm_id)}/{action}", _VM)

    def stop(self, vm_id: str) -> VmOut:
        """Power off (ACPI, forced after the site's grace period); a pending VM is cancelled."""
        return self._act(vm_id, "stop")

    def start(self, vm_id: str) -> VmOut:
        """Start a stopped single-mode VM again, on the host that keeps its disk."""
        return self._act(vm_id, "start")

    def terminate(self, vm_id: str) -> VmOut:
        """End the VM now and delete its disk, whatever its mode."""
        return self._act(vm_id, "terminate")

    def redeploy(self, vm_id: str) -> VmOut:
        """Start the VM afresh from its image."""
        return self._act(vm_id, "redeploy")

    def suspend(self, vm_id: str) -> VmOut:
        return self._act(vm_id, "suspend")

    def resume(self, vm_id: str) -> VmOut:
        return self._act(vm_id, "resume")

    def console(self, vm_id: str, offset: int = 0) -> bytes:
        """The VM's serial console output from byte ``offset`` on."""
        path = f"/vms/{_id(vm_id)}/console"
        return self._t.request("GET", path, params={"offset": offset}).content


class Deployments:
    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def list(self, all: bool = False) -> list[DeploymentOut]:
        """Your deployments (``all=True``: everyone's, for an admin)."""
        return self._t.get("/deployments", _DEPLOYMENTS, params={"all": all or None})

    def get(self, deployment_id: str) -> DeploymentOut:
        return self._t.get(f"/deployments/{_id(deployment_id)}", _DEPLOYMENT)
