"""Rows to wire types."""

from __future__ import annotations

from datetime import datetime

from gridvm.schemas.hosts import HostLoad, HostOut, HostState, Zone
from gridvm.schemas.images import BootMode, ImageOut, Visibility
from gridvm.schemas.vms import VmMode, VmOut, VmState
from gridvm.services.certification_state import certification_standing
from gridvm.services.zone_policy import CertState
from gridvm.store.models import Host, Image, Vm, utcnow


def image_out(image: Image, in_use_by: int = 0, *, latest: bool = True) -> ImageOut:
    standing = certification_standing(image, utcnow())
    return ImageOut(
        id=image.id,
        name=image.name,
        version=image.version,
        latest=latest,
        owner=image.owner.name,
        group=image.group.name if image.group else None,
        visibility=Visibility(image.visibility),
        trust=standing.image_class,
        digest=image.digest,
        format=image.format,
        uploaded_format=image.uploaded_format,
        size=image.size,
        virtual_size=image.virtual_size,
        boot_mode=BootMode(image.boot_mode),
        kernel_cmdline=image.kernel_cmdline,
        os=image.os,
        min_memory_mb=image.min_memory_mb,
        created_at=image.created_at,
        in_use_by=in_use_by,
        certification=None if standing.state == CertState.none else standing.state.value,
        certification_until=standing.until,
    )


def vm_out(vm: Vm) -> VmOut:
    return VmOut(
        id=vm.id,
        name=vm.name,
        owner=vm.owner.name,
        group=None if vm.group_id is None else _group_name(vm),
        deployment=vm.deployment_id,
        index=vm.index,
        image=vm.image_id,
        image_name=vm.image_name,
        image_version=vm.image.version if vm.image is not None else None,
        vcpus=vm.vcpus,
        memory_mb=vm.memory_mb,
        disk_gb=vm.disk_gb,
        mode=VmMode(vm.mode),
        state=VmState(vm.state),
        host=vm.host.name if vm.host else None,
        pending_reason=vm.pending_reason if vm.state == VmState.pending else None,
        exit_reason=vm.exit_reason,
        walltime_s=vm.walltime_s,
        created_at=vm.created_at,
        started_at=vm.started_at,
        expires_at=vm.expires_at,
        ended_at=vm.ended_at,
        attempt=vm.attempt,
        exit_status=vm.exit_status,
        results_bytes=vm.results_bytes,
        saving_as=vm.save_as,
        save_error=vm.save_error,
        role=vm.role,
        ready_at=vm.ready_at,
        ip=vm.guest_ip,
        site_address=vm.site_address,
        progress=vm.progress,
        progress_message=vm.progress_message,
        published={str(k): str(v) for k, v in (vm.published or {}).items()},
        priority=vm.priority if vm.state == VmState.pending else None,
        zone=Zone(vm.zone) if vm.zone else None,
        volumes=[v.name for v in vm.volumes],
        egress=[str(e) for e in vm.egress or []],
    )


def _group_name(vm: Vm) -> str | None:
    for membership in vm.owner.memberships:
        if membership.group_id == vm.group_id:
            return membership.group.name
    return None


def host_out(
    host: Host,
    *,
    online: bool,
    used_cores: int,
    used_memory_mb: int,
    vms: int,
    egress_digest: str | None = None,
) -> HostOut:
    last_seen: datetime | None = host.last_seen_at
    return HostOut(
        name=host.name,
        address=host.address,
        state=HostState(host.state),
        online=online,
        arch=host.arch,
        accelerator=host.accelerator,
        cores=host.cores,
        memory_mb=host.memory_mb,
        disk_bytes=host.disk_bytes,
        used_cores=used_cores,
        used_memory_mb=used_memory_mb,
        vms=vms,
        cached_images=sorted(host.cached_images.get("digests", [])),
        load=HostLoad.model_validate(host.load) if host.load else None,
        labels={str(k): str(v) for k, v in host.labels.items()},
        zones=[Zone(z) for z in host.zones or [z.value for z in Zone]],
        site_egress_applied=host.site_egress_applied,
        site_egress_current=(
            None if host.site_egress_applied is None else host.site_egress_applied == egress_digest
        ),
        last_seen_at=last_seen,
        registered_at=host.registered_at,
    )
