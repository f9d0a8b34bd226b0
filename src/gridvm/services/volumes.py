"""Volumes: persistent user disks, attached to at most one VM at a time, kept across runs.

A volume is a qcow2 file on one host, made empty by that host's agent when a VM first
uses it; from then on the VMs it is attached to run on that host (the scheduler's
pinned-host filter). It is detached when its VM ends, and may be attached to the next
run. Its full size counts in its owner's and group's image storage quota.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from gridvm.common.config import SiteLimits
from gridvm.common.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge
from gridvm.common.names import new_id, validate_name
from gridvm.common.units import format_size, parse_size
from gridvm.schemas.vms import FINAL_STATES, VmMode, VmState
from gridvm.schemas.volumes import VolumeAttachment, VolumeCreate, VolumeOut, VolumeState
from gridvm.services.principal import Principal
from gridvm.services.storage_quotas import storage_refusal
from gridvm.store.db import Database
from gridvm.store.models import User, Vm, Volume

MIN_VOLUME_BYTES = 1024**2
QUOTA_HINT = "delete volumes or images you no longer need (gridvm volume rm, gridvm image rm)"
_FINAL = [s.value for s in FINAL_STATES]


def volume_out(volume: Volume) -> VolumeOut:
    return VolumeOut(
        id=volume.id,
        name=volume.name,
        owner=volume.owner.name,
        size_bytes=volume.size_bytes,
        state=VolumeState(volume.state),
        host=volume.host.name if volume.host else None,
        vm=volume.vm_id,
        serial=serial_of(volume.id),
        created_at=volume.created_at,
    )


def serial_of(volume_id: str) -> str:
    """The disk serial the guest sees (virtio-blk keeps 20 bytes): the volume's id."""
    return volume_id[:20]


def attachments(vm: Vm) -> list[VolumeAttachment]:
    """The volumes the VM's agent attaches to it."""
    return [
        VolumeAttachment(id=v.id, size_bytes=v.size_bytes, serial=serial_of(v.id))
        for v in vm.volumes
        if v.state == VolumeState.attached.value
    ]


def volume_host(vm: Vm) -> str | None:
    """The host holding the files of the VM's volumes (where it must run), if any."""
    return next((v.host_id for v in vm.volumes if v.host_id is not None), None)


def place_volumes(vm: Vm, host_id: str) -> None:
    """The VM was placed on ``host_id``: its volumes never used before live there now."""
    for volume in vm.volumes:
        if volume.host_id is None:
            volume.host_id = host_id


def find_volume(s: Session, who: Principal, ref: str, *, lock: bool = False) -> Volume:
    """The caller's volume named or numbered ``ref`` (admins: anyone's, by id)."""
    lock_of = {"of": Volume} if lock else None
    query = select(Volume).where(or_(Volume.id == ref, Volume.name == ref))
    if not who.is_admin:
        query = query.where(Volume.owner_id == who.user_id)
    else:
        query = query.where(or_(Volume.id == ref, Volume.owner_id == who.user_id))
    if lock_of is not None:
        query = query.with_for_update(of=Volume)
    volume = s.scalars(query).unique().first()
    if volume is None:
        raise NotFound(f"no volume {ref!r}", hint="see your volumes with: gridvm volume list")
    return volume


def claim(s: Session, who: Principal, refs: Sequence[str]) -> list[Volume]:
    """Lock the caller's volumes ``refs`` for attaching to one new VM; each must be free."""
    volumes = [find_volume(s, who, ref, lock=True) for ref in refs]
    seen: set[str] = set()
    for volume in volumes:
        if volume.id in seen:
            raise InvalidInput(f"volume {volume.name!r} is named twice")
        seen.add(volume.id)
        if volume.owner_id != who.user_id:
            raise Conflict(
                f"volume {volume.name!r} belongs to {volume.owner.name}",
                hint="a VM takes only volumes of its owner",
            )
        _require_available(volume)
    hosts = {v.host_id for v in volumes if v.host_id is not None}
    if len(hosts) > 1:
        raise Conflict(
            "these volumes live on different hosts, and a VM runs on one host",
            hint="attach volumes of one host only (gridvm volume list shows their hosts)",
        )
    return volumes


def _require_available(volume: Volume) -> None:
    if volume.state == VolumeState.deleting.value:
        raise Conflict(f"volume {volume.name!r} is being deleted")
    if volume.vm_id is not None:
        raise Conflict(
            f"volume {volume.name!r} is attached to VM {volume.vm_id}",
            hint="a volume attaches to one VM at a time: wait for that VM to end, or"
            f" gridvm vm detach {volume.vm_id} {volume.name} while it is stopped",
        )


def attach(volume: Volume, vm: Vm) -> None:
    volume.vm_id = vm.id
    volume.state = VolumeState.attached.value


def attach_to_deployment(s: Session, volumes: Sequence[Volume], deployment_id: str) -> None:
    """Attach ``volumes`` (claimed) to the one VM of a new deployment."""
    vm = s.scalars(select(Vm).where(Vm.deployment_id == deployment_id)).unique().one()
    for volume in volumes:
        attach(volume, vm)
    s.flush()
    s.expire(vm, ["volumes"])


def detach_ended(s: Session) -> list[str]:
    """Detach every volume whose VM has ended; returns the ids of the VMs they were on.

    Called wherever VMs end (agent reports, the scheduler's passes, user actions), and
    harmless anywhere else: a volume's attachment follows its VM's state."""
    s.flush()
    ended = select(Vm.id).where(Vm.state.in_(_FINAL))
    found = s.scalars(
        select(Volume).where(Volume.vm_id.in_(ended)).with_for_update(of=Volume)
    ).unique()
    vms = []
    for volume in found.all():
        if volume.vm_id is not None:
            vms.append(volume.vm_id)
        volume.vm_id = None
        volume.state = VolumeState.available.value
    if vms:
        s.flush()
    return vms


class VolumeService:
    def __init__(
        self,
        db: Database,
        limits: SiteLimits,
        notify_hosts: Callable[..., None] = lambda *hosts: None,
    ) -> None:
        self.db = db
        self.limits = limits
        # Called with the ids of hosts whose agents have something new to do.
        self.notify_hosts = notify_hosts

    def create(self, who: Principal, req: VolumeCreate) -> VolumeOut:
        name = validate_name(req.name, what="volume name")
        size = parse_size(req.size)
        if not MIN_VOLUME_BYTES <= size <= self.limits.max_volume_bytes:
            raise InvalidInput(
                f"a volume of {format_size(size)} is not allowed here",
                hint=f"ask for 1M to {format_size(self.limits.max_volume_bytes)}",
            )
        with self.db.session() as s:
            # Locked: two requests of one owner are checked against the quota in turn.
            s.get_one(User, who.user_id, with_for_update=True)
            taken = s.scalar(
                select(Volume.id).where(Volume.owner_id == who.user_id, Volume.name == name)
            )
            if taken is not None:
                raise Conflict(f"you have a volume named {name!r} already", hint="pick another")
            refusal = storage_refusal(s, who.user_id, who.primary_group_id, size, volume=True)
            if refusal is not None:
                raise PayloadTooLarge(f"storage quota: {refusal}", hint=QUOTA_HINT)
            volume = Volume(
                id=new_id("vol"),
                name=name,
                owner_id=who.user_id,
                group_id=who.primary_group_id,
                size_bytes=size,
                state=VolumeState.available.value,
            )
            s.add(volume)
            s.flush()
            s.refresh(volume)
            return volume_out(volume)

    def list_volumes(self, who: Principal, all_users: bool = False) -> list[VolumeOut]:
        with self.db.session() as s:
            detach_ended(s)
            query = select(Volume).order_by(Volume.created_at, Volume.name)
            if not (who.is_admin and all_users):
                query = query.where(Volume.owner_id == who.user_id)
            return [volume_out(v) for v in s.scalars(query).unique().all()]

    def get(self, who: Principal, ref: str) -> VolumeOut:
        with self.db.session() as s:
            detach_ended(s)
            return volume_out(find_volume(s, who, ref))

    def delete(self, who: Principal, ref: str) -> VolumeOut | None:
        """Delete the volume: at once if no host holds its file, else once its host's agent
        deleted the file (state ``deleting`` meanwhile). None: it is gone."""
        with self.db.session() as s:
            detach_ended(s)
            volume = find_volume(s, who, ref, lock=True)
            if volume.vm_id is not None:
                raise Conflict(
                    f"volume {volume.name!r} is attached to VM {volume.vm_id}",
                    hint=f"detach it first: gridvm vm detach {volume.vm_id} {volume.name}"
                    " (the VM stopped), or wait until the VM ends",
                )
            host_id = volume.host_id
            if host_id is None:
                s.delete(volume)
                return None
            volume.state = VolumeState.deleting.value
            s.flush()
            out = volume_out(volume)
        self.notify_hosts(host_id)
        return out

    # --- a stopped VM's volumes ------------------------------------------------
    def attach_to_vm(self, who: Principal, vm_id: str, ref: str) -> VolumeOut:
        with self.db.session() as s:
            vm = self._stopped_vm(s, who, vm_id, "attach a volume to")
            volume = find_volume(s, who, ref, lock=True)
            detach_ended(s)
            _require_available(volume)
            if volume.owner_id != vm.owner_id:
                raise Conflict(f"volume {volume.name!r} and VM {vm_id} have different owners")
            others = volume_host(vm)
            host = vm.host_id or vm.pinned_host_id or others
            if volume.host_id is not None and host is not None and volume.host_id != host:
                where = volume.host.name if volume.host else volume.host_id
                raise Conflict(
                    f"volume {volume.name!r} lives on host {where} and VM {vm_id} on another",
                    hint="a VM and its volumes share a host: use a volume of the VM's host",
                )
            if volume.host_id is None and host is not None:
                volume.host_id = host
            attach(volume, vm)
            s.flush()
            s.refresh(volume)
            return volume_out(volume)

    def detach_from_vm(self, who: Principal, vm_id: str, ref: str) -> VolumeOut:
        with self.db.session() as s:
            vm = self._stopped_vm(s, who, vm_id, "detach a volume from")
            volume = find_volume(s, who, ref, lock=True)
            if volume.vm_id != vm.id:
                raise Conflict(f"volume {volume.name!r} is not attached to VM {vm_id}")
            volume.vm_id = None
            volume.state = VolumeState.available.value
            s.flush()
            return volume_out(volume)

    @staticmethod
    def _stopped_vm(s: Session, who: Principal, vm_id: str, doing: str) -> Vm:
        vm = s.get(Vm, vm_id, with_for_update={"of": Vm})
        if vm is None or not who.can_change_vm(vm):
            raise NotFound(f"no VM {vm_id!r}", hint="see your VMs with: gridvm vm list")
        if vm.mode != VmMode.single.value or vm.state != VmState.stopped.value:
            raise Conflict(
                f"cannot {doing} VM {vm_id}: it is a {vm.mode}-mode VM in state {vm.state}",
                hint="volumes change only on a stopped single-mode VM: gridvm vm stop it and"
                " wait for it, or name the volume when you start a VM (gridvm vm run --volume)",
            )
        return vm

    # --- the agents' side ----------------------------------------------------------
    @staticmethod
    def to_delete(s: Session, host_id: str) -> list[str]:
        """Volumes whose files the host's agent should delete."""
        query = select(Volume.id).where(
            Volume.host_id == host_id, Volume.state == VolumeState.deleting.value
        )
        return sorted(str(i) for i in s.scalars(query))

    @staticmethod
    def files_deleted(s: Session, host_id: str, volume_ids: Sequence[str]) -> None:
        """The host's agent deleted these volumes' files: their rows go."""
        if not volume_ids:
            return
        query = select(Volume).where(
            Volume.id.in_(list(volume_ids)),
            Volume.host_id == host_id,
            Volume.state == VolumeState.deleting.value,
        )
        for volume in s.scalars(query).unique().all():
            s.delete(volume)
