"""The server's side of the agent protocol: registration, sync, console upload, blobs."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Iterable
from datetime import timedelta
from pathlib import Path

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from gridvm.common.config import SiteLimits
from gridvm.common.errors import Conflict, GridvmError, InvalidInput, NotFound
from gridvm.common.names import new_id, validate_name
from gridvm.images.blobstore import BlobStore
from gridvm.schemas.agent import (
    Assignment,
    DesiredState,
    EndCause,
    HostRegistration,
    LaunchBundle,
    LocalState,
    RegistrationOut,
    RemotePeer,
    SyncRequest,
    SyncResponse,
    VmReport,
)
from gridvm.schemas.consoles import ConsoleSessionOrder
from gridvm.schemas.hosts import HostState, Zone
from gridvm.schemas.images import ImageOut
from gridvm.schemas.vms import FINAL_STATES, LaunchFile, VmMode, VmState
from gridvm.services.consoles import ConsoleStore
from gridvm.services.guest_tokens import GuestTokens
from gridvm.services.images import ImageService
from gridvm.services.principal import Principal
from gridvm.services.results import ResultStore
from gridvm.services.secrets import SecretService
from gridvm.services.site_egress import SiteEgressService
from gridvm.services.vm_runs import close_run, open_run
from gridvm.services.volumes import VolumeService, attachments, detach_ended
from gridvm.store.db import Database
from gridvm.store.models import Deployment, Host, Vm, utcnow

log = logging.getLogger(__name__)

_FINAL = [s.value for s in FINAL_STATES]


class AgentService:
    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        limits: SiteLimits,
        consoles: ConsoleStore,
        results: ResultStore,
        images: ImageService,
        secrets: SecretService,
        guest_tokens: GuestTokens,
        poll_interval_s: float = 1.0,
        console_sessions: Callable[[str], list[ConsoleSessionOrder]] = lambda host_id: [],
        bump: Callable[..., None] = lambda *host_ids: None,
    ) -> None:
        self.db = db
        self.site_egress = SiteEgressService(db, limits)
        self.blobs = blobs
        self.limits = limits
        self.consoles = consoles
        self.results = results
        self.images = images
        self.secrets = secrets
        self.guest_tokens = guest_tokens
        self.poll_interval_s = poll_interval_s
        # The attached consoles a host's agent should open (by host id).
        self.console_sessions = console_sessions
        # Wakes the syncs of these hosts (HostSignals.bump): a VM-to-VM peer came or went.
        self.bump = bump

    def register(self, who: Principal, reg: HostRegistration) -> RegistrationOut:
        """Register or refresh a host; ``who`` must be the agent bound to it."""
        validate_name(reg.name, what="host name")
        who.require_agent_of(reg.name)
        with self.db.session() as s:
            host = s.scalar(select(Host).where(Host.name == reg.name))
            if host is None:
                host = Host(id=new_id("host"), name=reg.name, state=HostState.enabled.value)
                s.add(host)
                log.info("host %s registered", reg.name)
            host.address = reg.address
            host.arch = reg.arch
            host.accelerator = reg.accelerator
            host.cores = reg.cores
            host.memory_mb = reg.memory_mb
            host.disk_bytes = reg.disk_bytes
            host.labels = dict(reg.labels)
            host.zones = sorted({z.value for z in reg.zones})
            host.cached_images = host.cached_images or {"digests": []}
            host.last_seen_at = utcnow()
        return RegistrationOut(host=reg.name, poll_interval_s=self.poll_interval_s)

    def apply_reports(self, who: Principal, req: SyncRequest) -> str:
        """Record what the agent saw on its host; returns the host's id."""
        who.require_agent_of(req.host)
        with self.db.session() as s:
            host = s.scalar(select(Host).where(Host.name == req.host))
            if host is None:
                raise NotFound(f"host {req.host!r} is not registered", hint="register first")
            host.last_seen_at = utcnow()
            host.cached_images = {"digests": sorted(req.cached_images)}
            host.load = req.load.model_dump() if req.load else None
            host.uplink_address = _ipv4_or_none(req.uplink_address)
            host.site_egress_applied = req.site_egress_applied
            changed: set[str] = set()  # vm_to_vm deployments whose members came or went
            for report in req.vms:
                # Locked: a user's action on the same VM waits, and is not overwritten.
                vm = s.get(Vm, report.vm_id, with_for_update={"of": Vm})
                if (
                    vm is not None
                    and (report.attempt, report.boot) == (vm.attempt, vm.boot)
                    and vm.host_id == host.id
                ):
                    before = (vm.site_address, vm.state in _FINAL)
                    _apply_report(s, vm, report)
                    vm.site_address = (
                        None if vm.state in _FINAL else _ipv4_or_none(report.site_address)
                    )
                    if vm.deployment.vm_to_vm and before != (
                        vm.site_address,
                        vm.state in _FINAL,
                    ):
                        changed.add(vm.deployment_id)
            detach_ended(s)  # the volumes of VMs that ended are free for the next run
            VolumeService.files_deleted(s, host.id, req.deleted_volumes)
            host_id = host.id
            others = _hosts_of(s, changed, host_id)
        self.bump(*others)  # after the commit: their next answer has the new peers
        return host_id

    def assignments(self, host_id: str, generation: int) -> SyncResponse:
        """Everything the host should hold, with the wanted state of each VM."""
        with self.db.session() as s:
            host = s.get_one(Host, host_id)
            assigned = _assigned(s, host)
            peers = _remote_peers(s, host_id, assigned)
            assignments = [self._assignment(vm, peers.get(vm.id, [])) for vm in assigned]
            delete_volumes = VolumeService.to_delete(s, host.id)
        offsets = {a.vm_id: self.consoles.offset(a.vm_id) for a in assignments}
        site = self.site_egress.effective()
        return SyncResponse(
            generation=generation,
            assignments=assignments,
            console_offsets=offsets,
            console_sessions=self.console_sessions(host_id),
            delete_volumes=delete_volumes,
            zone_egress={Zone(z): list(e) for z, e in site.zones.items()},
            zone_egress_digest=site.digest,
        )

    def _assignment(self, vm: Vm, remote_peers: list[RemotePeer]) -> Assignment:
        image = vm.image
        if image is None:  # images in use cannot be deleted; this would be a bug
            raise Conflict(f"VM {vm.id} has lost its image")
        desired = DesiredState(vm.desired)
        if desired != DesiredState.deleted and vm.state in (
            VmState.stopped.value,
            VmState.pending.value,
        ):
            # A kept single-mode disk waiting to start again: the host keeps it, runs nothing.
            desired = DesiredState.stopped
        return Assignment(
            vm_id=vm.id,
            attempt=vm.attempt,
            boot=vm.boot,
            desired=desired,
            mode=VmMode(vm.mode),
            vcpus=vm.vcpus,
            memory_mb=vm.memory_mb,
            disk_bytes=vm.disk_gb * 1024**3 if vm.disk_gb else None,
            image_digest=image.digest,
            kernel_digest=image.kernel_digest,
            initrd_digest=image.initrd_digest,
            kernel_cmdline=image.kernel_cmdline,
            hostname=vm.name,
            user_data=vm.user_data,
            env={
                **{str(k): str(v) for k, v in vm.params.items()},
                "GRIDVM_INDEX": str(vm.index),
                "GRIDVM_ATTEMPT": str(vm.attempt),
                "GRIDVM_VM_ID": vm.id,
                "GRIDVM_DEPLOYMENT": vm.deployment_id,
                **({"GRIDVM_ROLE": vm.role} if vm.role else {}),
            },
            output_bytes=self.limits.max_results_bytes_per_vm,
            ssh_public_keys=[str(k) for k in vm.launch.get("ssh_keys", [])],
            has_launch_files=bool(vm.launch.get("secrets") or vm.launch.get("files")),
            save_as=vm.save_as,
            save_id=vm.save_id,
            stop_grace_s=self.limits.stop_grace_s,
            guest_token=self.guest_tokens.issue(vm.id, vm.attempt, vm.boot),
            volumes=attachments(vm),
            zone=Zone(vm.zone) if vm.zone else None,
            egress=[str(e) for e in vm.egress or []],
            deployment_id=vm.deployment_id,
            vm_to_vm=bool(vm.deployment.vm_to_vm),
            remote_peers=remote_peers,
        )

    def append_console(self, who: Principal, vm_id: str, offset: int, data: bytes) -> int:
        """Take output the agent read from the VM's serial console; returns the new offset."""
        who.require_agent()
        with self.db.session() as s:
            vm = s.get(Vm, vm_id)
            host = vm.host if vm is not None else None
            if vm is None or host is None:
                raise NotFound(f"no VM {vm_id!r} on a host")
            who.require_agent_of(host.name)
        return self.consoles.append(vm_id, offset, data)

    def store_results(self, who: Principal, vm_id: str, chunks: Iterable[bytes]) -> int:
        """Keep the results tar the agent read from the VM's results disk; returns its size."""
        who.require_agent()
        with self.db.session() as s:
            vm = s.get(Vm, vm_id)
            if vm is None or vm.host is None:
                raise NotFound(f"no VM {vm_id!r} on a host")
            who.require_agent_of(vm.host.name)
            used = s.scalar(
                select(func.coalesce(func.sum(Vm.results_bytes), 0)).where(
                    Vm.owner_id == vm.owner_id, Vm.id != vm.id
                )
            )
            room = self.limits.results_quota_bytes_per_user - int(used or 0)
        limit = min(room, self.limits.max_results_bytes_per_vm)
        size = self.results.save(vm_id, chunks, max_bytes=max(0, limit))
        with self.db.session() as s:
            s.get_one(Vm, vm_id, with_for_update={"of": Vm}).results_bytes = size
        return size

    def store_saved_disk(self, who: Principal, vm_id: str, chunks: Iterable[bytes]) -> ImageOut:
        """The flattened disk of a VM being saved: it becomes the image the user asked for."""
        who.require_agent()
        with self.db.session() as s:
            vm = s.get(Vm, vm_id)
            if vm is None or vm.host is None:
                raise NotFound(f"no VM {vm_id!r} on a host")
            who.require_agent_of(vm.host.name)
        try:
            image = self.images.create_from_vm(vm_id, chunks)
            error = None
        except GridvmError as exc:
            image, error = None, str(exc)
        with self.db.session() as s:
            vm = s.get_one(Vm, vm_id, with_for_update={"of": Vm})
            vm.save_as, vm.save_id, vm.save_error = None, None, error
        if image is None:
            raise Conflict(f"the image could not be saved: {error}")
        return image

    def launch_bundle(self, who: Principal, vm_id: str) -> LaunchBundle:
        """The VM's secrets (decrypted) and files, for its seed ISO; only its host's agent
        gets them, and only while the VM is placed there."""
        with self.db.session() as s:
            vm = s.get(Vm, vm_id)
            if vm is None or vm.host is None or vm.state in _FINAL:
                raise NotFound(f"no VM {vm_id!r} on a host")
            who.require_agent_of(vm.host.name)
            owner_id, launch = vm.owner_id, dict(vm.launch)
        return LaunchBundle(
            secrets=self.secrets.decrypted(owner_id, list(launch.get("secrets", []))),
            files=[LaunchFile.model_validate(f) for f in launch.get("files", [])],
        )

    def blob_path(self, who: Principal, digest: str) -> Path:
        who.require_agent()
        if not digest.startswith("sha256:"):
            raise InvalidInput(f"{digest!r} is not a digest")
        return self.blobs.path_of(digest)


def _assigned(s: Session, host: Host) -> list[Vm]:
    """Every VM the host should hold: placed on it and not ended, or a kept disk waiting there."""
    query = select(Vm).where(
        or_(
            and_(Vm.host_id == host.id, Vm.state.not_in(_FINAL)),
            and_(Vm.pinned_host_id == host.id, Vm.state == VmState.pending.value),
        )
    )
    return list(s.scalars(query).unique().all())


# States in which a VM holds its site address on its host (it may be a VM-to-VM peer).
_NETWORKED = [
    s.value
    for s in (
        VmState.staging,
        VmState.booting,
        VmState.running,
        VmState.suspended,
        VmState.stopping,
    )
]


def _ipv4_or_none(text: str | None) -> str | None:
    """An IPv4 address as an agent reported it, or None if it is not one."""
    if text is None:
        return None
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        log.warning("ignoring %r reported by an agent: not an IPv4 address", text)
        return None


def _remote_peers(s: Session, host_id: str, assigned: list[Vm]) -> dict[str, list[RemotePeer]]:
    """For each vm_to_vm VM of the host: its deployment's other members that hold a site
    address on another host whose uplink address is known."""
    deployments = {
        vm.deployment_id for vm in assigned if vm.deployment.vm_to_vm and vm.host_id == host_id
    }
    if not deployments:
        return {}
    rows = s.execute(
        select(Vm.id, Vm.deployment_id, Vm.site_address, Host.uplink_address)
        .join(Host, Host.id == Vm.host_id)
        .join(Deployment, Deployment.id == Vm.deployment_id)
        .where(
            Vm.deployment_id.in_(deployments),
            Deployment.vm_to_vm.is_(True),
            Vm.host_id != host_id,
            Vm.state.in_(_NETWORKED),
            Vm.site_address.is_not(None),
            Host.uplink_address.is_not(None),
        )
    ).all()
    by_deployment: dict[str, list[RemotePeer]] = {}
    for _, deployment_id, address, via in sorted(rows):
        by_deployment.setdefault(deployment_id, []).append(RemotePeer(address=address, via=via))
    return {
        vm.id: by_deployment.get(vm.deployment_id, [])
        for vm in assigned
        if vm.deployment.vm_to_vm and vm.host_id == host_id
    }


def _hosts_of(s: Session, deployments: set[str], except_host: str) -> list[str]:
    """The other hosts with a live member of these deployments."""
    if not deployments:
        return []
    query = select(Vm.host_id).where(
        Vm.deployment_id.in_(deployments),
        Vm.host_id.is_not(None),
        Vm.host_id != except_host,
        Vm.state.not_in(_FINAL),
    )
    return sorted({h for h in s.scalars(query).all() if h is not None})


def _apply_report(s: Session, vm: Vm, report: VmReport) -> None:
    """Move the VM's recorded state along what the agent saw happen (and open or close its
    run: see services.vm_runs)."""
    if report.save_error and report.saved_id is not None and report.saved_id == vm.save_id:
        vm.save_as, vm.save_id, vm.save_error = None, None, report.save_error
    if vm.state in _FINAL:
        return
    now = utcnow()
    stopping = vm.desired in (DesiredState.stopped.value, DesiredState.deleted.value)
    match report.state:
        case LocalState.staging | LocalState.booting | LocalState.running | LocalState.suspended:
            if stopping and vm.state == VmState.stopping.value:
                return
            if vm.state == VmState.pending.value:
                return
            vm.state = VmState(report.state.value).value
            if report.state == LocalState.running and vm.started_at is None:
                vm.started_at = now
                vm.expires_at = now + timedelta(seconds=vm.walltime_s)
                open_run(s, vm, now)
        case LocalState.stopping:
            vm.state = VmState.stopping.value
        case LocalState.stopped:
            if vm.state in (VmState.pending.value, VmState.stopped.value):
                return  # a start came after what the agent saw, or nothing is new
            if vm.desired == DesiredState.deleted.value:
                return  # a terminate came after what the agent saw
            vm.exit_status = report.exit_status
            vm.state = VmState.stopped.value
            vm.ended_at = now
            vm.exit_reason = _exit_reason(vm, report)
            close_run(s, vm, now, vm.state)
        case LocalState.ended:
            vm.exit_status = report.exit_status
            vm.state = _final_state(vm, report).value
            vm.ended_at = now
            vm.exit_reason = _exit_reason(vm, report)
            close_run(s, vm, now, vm.state)
        case LocalState.failed:
            vm.state = VmState.failed.value
            vm.ended_at = now
            vm.exit_reason = report.detail or "failed on its host"
            close_run(s, vm, now, vm.state)
        case LocalState.deleted:
            vm.state = VmState.cancelled.value
            vm.ended_at = now
            vm.exit_reason = vm.exit_reason or "terminated"
            close_run(s, vm, now, vm.state)


def _final_state(vm: Vm, report: VmReport) -> VmState:
    if vm.desired == DesiredState.deleted.value:
        return VmState.cancelled
    if vm.stop_reason == "expired":
        return VmState.expired
    if report.cause in (EndCause.crashed, EndCause.start_failed):
        return VmState.failed
    if report.exit_status:
        return VmState.failed
    return VmState.done


def _exit_reason(vm: Vm, report: VmReport) -> str:
    if vm.stop_reason == "expired":
        return f"walltime of {vm.walltime_s}s expired"
    if vm.desired == DesiredState.deleted.value and vm.exit_reason:
        return vm.exit_reason
    if report.exit_status is not None and report.cause == EndCause.poweroff:
        if report.exit_status == 0:
            return "the job finished (exit status 0)"
        return f"the job exited with status {report.exit_status}"
    text = {
        EndCause.poweroff: "the guest powered off",
        EndCause.stopped: "stopped on request",
        EndCause.killed: "forced off after the stop grace period",
        EndCause.crashed: "QEMU exited unexpectedly",
        EndCause.start_failed: "the VM could not be started",
        None: "ended",
    }[report.cause]
    return f"{text}: {report.detail}" if report.detail else text
