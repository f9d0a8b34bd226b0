"""VMs and deployments (the group of VMs one request made)."""

from __future__ import annotations

import builtins
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pydantic import TypeAdapter

from gridvm.client.consoles import ConsoleAttachment
from gridvm.client.errors import TransferError
from gridvm.client.files import CHUNK_SIZE, Progress, replacing
from gridvm.client.transport import Params, Transport, decode
from gridvm.schemas.consoles import MAX_MESSAGE_BYTES
from gridvm.schemas.scheduling import LeaseExtend
from gridvm.schemas.vms import DeploymentOut, VmCreate, VmOut, VmRunOut, VmState

_VM = TypeAdapter(VmOut)
_VMS = TypeAdapter(list[VmOut])
_RUNS = TypeAdapter(list[VmRunOut])
_DEPLOYMENT = TypeAdapter(DeploymentOut)
_DEPLOYMENTS = TypeAdapter(list[DeploymentOut])


@dataclass(frozen=True)
class VmPage:
    """One page of VMs and how many match the filters on all pages."""

    vms: list[VmOut]
    total: int


def _id(value: str) -> str:
    return quote(value, safe="")


class Vms:
    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def create(self, request: VmCreate | None = None, /, **fields: Any) -> DeploymentOut:
        """Ask for VMs: pass a ``VmCreate``, or its fields (``image=``, ``count=``, ...).

        The VMs start ``pending``; the returned deployment lists them. A
        parameter scan passes ``params``, one ``{column: value}`` dict per VM
        (the job sees them as environment variables), and may cap how many
        run at once with ``max_running``:

        >>> gv.vms.create(image="tiny", params=[{"X": "1"}, {"X": "2"}], max_running=1)
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
        *,
        states: Iterable[VmState | str] = (),
        limit: int | None = None,
        offset: int = 0,
    ) -> list[VmOut]:
        """Your VMs (``all=True``: everyone's, for an admin), oldest first, optionally
        filtered: ``state`` or any of ``states``; ``limit``/``offset`` give one page
        (``page`` also says how many VMs match)."""
        return self.page(
            state, deployment, host, all, states=states, limit=limit, offset=offset
        ).vms

    def page(
        self,
        state: VmState | str | None = None,
        deployment: str | None = None,
        host: str | None = None,
        all: bool = False,
        *,
        states: Iterable[VmState | str] = (),
        limit: int | None = None,
        offset: int = 0,
    ) -> VmPage:
        """As ``list``, with ``total``: how many VMs match the filters on all pages.

        >>> first = gv.vms.page(states=["pending", "running"], limit=50)
        >>> first.total, len(first.vms)
        """
        wanted = [VmState(s).value for s in ([] if state is None else [state])]
        wanted += [VmState(s).value for s in states]
        params: Params = {
            "state": wanted or None,
            "deployment": deployment,
            "host": host,
            "all": all or None,
            "limit": limit,
            "offset": offset or None,
        }
        response = self._t.request("GET", "/vms", params=params)
        vms = decode(response, _VMS)
        total = response.headers.get("x-total-count", "")
        return VmPage(vms=vms, total=int(total) if total.isdigit() else len(vms))

    def get(self, vm_id: str) -> VmOut:
        return self._t.get(f"/vms/{_id(vm_id)}", _VM)

    def runs(self, vm_id: str) -> builtins.list[VmRunOut]:
        """Each run of the VM, oldest first: a start after a stop and a redeploy each
        begin a new run (``ended_at`` None: the run goes on)."""
        return self._t.get(f"/vms/{_id(vm_id)}/runs", _RUNS)

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

    def save(self, vm_id: str, name: str) -> VmOut:
        """Save a stopped single-mode VM's disk as a new private image called ``name``;
        the image appears when the VM's host has sent it (``saving_as`` goes back to None)."""
        return self._t.send("POST", f"/vms/{_id(vm_id)}/save", _VM, json={"name": name})

    def extend(self, vm_id: str, by_s: int) -> VmOut:
        """Lengthen the VM's walltime (lease) by ``by_s`` seconds, within the site's limit."""
        body = LeaseExtend(by_s=by_s).model_dump(mode="json")
        return self._t.send("POST", f"/vms/{_id(vm_id)}/extend", _VM, json=body)

    def suspend(self, vm_id: str) -> VmOut:
        return self._act(vm_id, "suspend")

    def resume(self, vm_id: str) -> VmOut:
        return self._act(vm_id, "resume")

    def console(self, vm_id: str, offset: int = 0) -> bytes:
        """The VM's serial console output from byte ``offset`` on."""
        path = f"/vms/{_id(vm_id)}/console"
        return self._t.request("GET", path, params={"offset": offset}).content

    def attach(self, vm_id: str) -> ConsoleAttachment:
        """Attach to the serial console of a running VM, through the server.

        Returns once the VM's host has joined (a few seconds at most); raises
        ``ConflictError`` if the VM is not running or someone is attached already,
        ``NotFoundError`` if there is no such VM of yours, ``ServerError`` if its host
        did not answer. One attached console per VM at a time.
        """
        connection = self._t.websocket(
            f"/vms/{_id(vm_id)}/console/attach", max_size=MAX_MESSAGE_BYTES
        )
        return ConsoleAttachment(vm_id, connection)

    def results(
        self,
        vm_id: str,
        dest: str | os.PathLike[str],
        progress: Progress | None = None,
    ) -> int:
        """Save the VM's job results (an uncompressed tar) to ``dest``; returns its size.

        The tar holds the files the job left under ``$GRIDVM_OUTPUT``; unpack it
        with ``gridvm.client.results.extract_results``, which refuses unsafe
        members. The data goes to a temporary file next to ``dest`` that is
        renamed into place only when complete: a failed download leaves nothing
        behind. A VM without results raises ``NotFoundError``.
        """
        received = 0
        with (
            replacing(Path(dest)) as out,
            self._t.stream("GET", f"/vms/{_id(vm_id)}/results") as response,
        ):
            declared = response.headers.get("content-length")
            for chunk in response.iter_bytes(CHUNK_SIZE):
                out.write(chunk)
                received += len(chunk)
                if progress is not None:
                    progress(received)
            if declared is not None and declared.isdigit() and int(declared) != received:
                raise TransferError(
                    f"the download of the results of VM {vm_id} stopped after {received} of"
                    f" {declared} bytes",
                    hint="try again",
                )
        return received


class Deployments:
    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def list(self, all: bool = False) -> list[DeploymentOut]:
        """Your deployments (``all=True``: everyone's, for an admin)."""
        return self._t.get("/deployments", _DEPLOYMENTS, params={"all": all or None})

    def get(self, deployment_id: str) -> DeploymentOut:
        return self._t.get(f"/deployments/{_id(deployment_id)}", _DEPLOYMENT)

    def redeploy_failed(self, deployment_id: str) -> DeploymentOut:
        """Start the failed and expired members of the deployment over from their image."""
        path = f"/deployments/{_id(deployment_id)}/redeploy-failed"
        return self._t.send("POST", path, _DEPLOYMENT)

    def cancel(self, deployment_id: str) -> DeploymentOut:
        """End every VM of the deployment that has not ended: pending ones are cancelled,
        the others terminated (their disks deleted). Returns the deployment after.
        """
        return self._t.send("POST", f"/deployments/{_id(deployment_id)}/cancel", _DEPLOYMENT)
