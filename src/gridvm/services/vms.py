"""VM use cases: request N VMs, list them, and change their state."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, object_session

from gridvm.common.config import SiteLimits
from gridvm.common.errors import Conflict, Forbidden, InvalidInput, NotFound
from gridvm.common.names import new_id, validate_name
from gridvm.common.units import format_duration
from gridvm.schemas.agent import DesiredState
from gridvm.schemas.scheduling import Affinity
from gridvm.schemas.vms import (
    FINAL_STATES,
    DeploymentOut,
    VmCreate,
    VmMode,
    VmOut,
    VmRunOut,
    VmState,
)
from gridvm.services.consoles import ConsoleStore
from gridvm.services.deploy_policy import trusted_run_lapsed, zone_for
from gridvm.services.egress import vm_egress
from gridvm.services.group_tree import group_paths
from gridvm.services.images import find_image
from gridvm.services.presenters import vm_out
from gridvm.services.principal import Principal
from gridvm.services.quotas import requester_quotas
from gridvm.services.results import ResultStore
from gridvm.services.secrets import SecretService
from gridvm.services.site_egress import SiteEgressService
from gridvm.services.ssh_keys import SshKeyService
from gridvm.services.vm_requests import (
    check_files,
    check_fits_some_host,
    check_limits,
    check_placement,
    check_quota_could_allow,
    member_roles,
    scan_rows,
)
from gridvm.services.vm_runs import REDEPLOYED, close_run, run_count, runs_of
from gridvm.services.volumes import attach_to_deployment, claim, detach_ended
from gridvm.store.db import Database
from gridvm.store.models import Deployment, Host, Vm, utcnow

RUNNING_LIKE = {VmState.booting, VmState.running, VmState.suspended, VmState.staging}


def _get_vm(s: Session, who: Principal, vm_id: str, *, lock: bool = False) -> Vm:
    vm = s.get(Vm, vm_id, with_for_update={"of": Vm} if lock else None)
    if vm is None or not who.can_see_vm(vm):
        raise NotFound(f"no VM {vm_id!r}", hint="see your VMs with: gridvm vm list")
    return vm


def _deployment_out(s: Session, deployment: Deployment) -> DeploymentOut:
    vms = s.scalars(select(Vm).where(Vm.deployment_id == deployment.id).order_by(Vm.index)).all()
    states: dict[str, int] = {}
    for vm in vms:
        states[vm.state] = states.get(vm.state, 0) + 1
    return DeploymentOut(
        id=deployment.id,
        name=deployment.name,
        owner=deployment.owner.name,
        count=deployment.count,
        max_running=deployment.max_running,
        roles=deployment.roles,
        gang=deployment.gang,
        affinity=Affinity(deployment.affinity),
        selector=deployment.selector,
        queue_timeout_s=deployment.queue_timeout_s,
        created_at=deployment.created_at,
        states=states,
        vms=[vm_out(vm) for vm in vms],
    )


# One page of ``vm list`` / GET /vms holds at most this many VMs.
MAX_PAGE = 1000


def _check_page(limit: int | None, offset: int) -> None:
    if limit is not None and not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(
            f"a page of {limit} VMs is not possible",
            hint=f"ask for a limit from 1 to {MAX_PAGE}, or none for every VM",
        )
    if offset < 0:
        raise InvalidInput(
            f"an offset of {offset} is before the first VM", hint="give an offset of 0 or more"
        )


def _states(state: VmState | None, states: Collection[VmState]) -> set[str]:
    return {VmState(x).value for x in (*states, *([state] if state is not None else []))}


# VM names are the guests' hostnames: a DNS label is at most 63 characters.
MAX_HOSTNAME = 63


def _member_names(name: str, count: int, roles: list[str]) -> list[str]:
    """VM names (and hostnames): NAME, NAME-0, NAME-1, ..., or NAME-ROLE-0 with roles."""
    if roles:
        seen: dict[str, int] = {}
        names = []
        for role in roles:
            names.append(f"{name}-{role}-{seen.get(role, 0)}")
            seen[role] = seen.get(role, 0) + 1
        longest = max(names, key=len)
        if len(longest) > MAX_HOSTNAME:
            raise InvalidInput(
                f"VM names such as {longest!r} would be longer than {MAX_HOSTNAME} characters",
                hint="use a shorter --name or shorter role names",
            )
        return names
    return [name] if count == 1 else [f"{name}-{index}" for index in range(count)]


class VmService:
    def __init__(
        self,
        db: Database,
        limits: SiteLimits,
        consoles: ConsoleStore,
        results: ResultStore,
        secrets: SecretService,
        ssh_keys: SshKeyService,
        wake_scheduler: Callable[[], None] = lambda: None,
        notify_hosts: Callable[..., None] = lambda *hosts: None,
        block_severity: str = "high",
    ) -> None:
        self.db = db
        # Images with a vulnerability this severe or worse are not deployed.
        self.block_severity = block_severity
        self.limits = limits
        self.consoles = consoles
        self.results = results
        self.secrets = secrets
        self.ssh_keys = ssh_keys
        # Called after a change that gives the scheduler work, so it need not wait a tick.
        self.wake_scheduler = wake_scheduler
        # Called with the ids of hosts whose agents have something new to do.
        self.notify_hosts = notify_hosts
        self.site_egress = SiteEgressService(db, limits)

    # --- requests ---------------------------------------------------------
    def create(self, who: Principal, req: VmCreate) -> DeploymentOut:
        rows = scan_rows(req)
        roles = member_roles(req)
        if rows or roles:
            req = req.model_copy(update={"count": len(rows or roles)})
        check_limits(req, self.limits)
        check_placement(req)
        if req.volumes and req.count != 1:
            raise InvalidInput(
                f"a volume attaches to one VM, and this request is for {req.count} VMs",
                hint="attach volumes to a request for one VM (no -n, --param-file or --role)",
            )
        launch = self._launch(who, req)
        egress = vm_egress(req.allow_egress, self.limits)
        with self.db.session() as s:
            image = find_image(s, who, req.image)
            if req.memory_mb < image.min_memory_mb:
                raise InvalidInput(
                    f"image {image.name!r} needs at least {image.min_memory_mb} MiB of memory",
                    hint=f"ask for --memory {image.min_memory_mb}M or more",
                )
            if req.disk_gb is not None and req.disk_gb * 1024**3 < image.virtual_size:
                raise InvalidInput(
                    f"a {req.disk_gb} GiB disk is smaller than image {image.name!r}"
                    f" ({image.virtual_size / 1024**3:.1f} GiB)",
                    hint="ask for a larger disk, or leave the disk size out",
                )
            check_fits_some_host(req, [(h.cores, h.memory_mb) for h in s.scalars(select(Host))])
            check_quota_could_allow(req, requester_quotas(s, group_paths(s), who))
            zone = zone_for(s, image, req.zone, self.block_severity)
            volumes = claim(s, who, req.volumes)
            name = validate_name(req.name or image.name, what="VM name")
            deployment = Deployment(
                id=new_id("dep"),
                name=name,
                owner_id=who.user_id,
                count=req.count,
                max_running=req.max_running,
                roles=[r.model_dump() for r in req.roles] if req.roles else None,
                gang=req.gang,
                affinity=req.affinity.value,
                selector=req.selector or None,
                vm_to_vm=req.vm_to_vm,
                queue_timeout_s=req.queue_timeout_s,
            )
            s.add(deployment)
            walltime = req.walltime_s or self.limits.default_walltime_s
            for index, vm_name in enumerate(_member_names(name, req.count, roles)):
                s.add(
                    Vm(
                        id=new_id("vm"),
                        name=vm_name,
                        role=roles[index] if roles else None,
                        owner_id=who.user_id,
                        group_id=who.primary_group_id,
                        deployment_id=deployment.id,
                        index=index,
                        image_id=image.id,
                        image_name=image.name,
                        vcpus=req.vcpus,
                        memory_mb=req.memory_mb,
                        disk_gb=req.disk_gb,
                        mode=req.mode.value,
                        zone=zone.value,
                        egress=egress,
                        user_data=req.user_data,
                        params=rows[index] if rows else {},
                        launch=launch,
                        walltime_s=walltime,
                        state=VmState.pending.value,
                        desired=DesiredState.running.value,
                        pending_reason="waiting for the scheduler",
                    )
                )
            s.flush()
            if volumes:  # a request with volumes is for one VM
                attach_to_deployment(s, volumes, deployment.id)
            out = _deployment_out(s, deployment)
        self.wake_scheduler()
        return out

    def _launch(self, who: Principal, req: VmCreate) -> dict[str, Any]:
        """The secrets, files and SSH keys the request hands to its VMs, checked."""
        self.secrets.check_names(who.user_id, req.secrets)
        check_files(req.files, self.limits)
        launch: dict[str, Any] = {}
        if req.secrets or req.files:
            launch = {"secrets": list(req.secrets), "files": [f.model_dump() for f in req.files]}
        if req.ssh_keys:
            launch["ssh_keys"] = self.ssh_keys.public_keys(who.user_id, req.ssh_keys)
        return launch

    # --- reading ------------------------------------------------------------
    def list_vms(
        self,
        who: Principal,
        *,
        state: VmState | None = None,
        states: Collection[VmState] = (),
        deployment: str | None = None,
        host: str | None = None,
        all_users: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[VmOut]:
        """The VMs ``who`` may list that match the filters (a VM in ``state`` or any of
        ``states``), oldest first; ``limit``/``offset`` give one page of them."""
        _check_page(limit, offset)
        with self.db.session() as s:
            query = self._matching(
                select(Vm), who, _states(state, states), deployment, host, all_users
            )
            query = query.order_by(Vm.created_at, Vm.index, Vm.id).offset(offset or None)
            if limit is not None:
                query = query.limit(limit)
            return [vm_out(vm) for vm in s.scalars(query).unique().all()]

    def count_vms(
        self,
        who: Principal,
        *,
        state: VmState | None = None,
        states: Collection[VmState] = (),
        deployment: str | None = None,
        host: str | None = None,
        all_users: bool = False,
    ) -> int:
        """How many VMs ``list_vms`` with the same filters (and no limit) gives."""
        with self.db.session() as s:
            query = self._matching(
                select(func.count(Vm.id)), who, _states(state, states), deployment, host, all_users
            )
            return int(s.scalar(query) or 0)

    @staticmethod
    def _matching(
        query: Select[Any],
        who: Principal,
        states: set[str],
        deployment: str | None,
        host: str | None,
        all_users: bool,
    ) -> Select[Any]:
        if not (who.is_admin and all_users):
            query = query.where(Vm.owner_id == who.user_id)
        if states:
            query = query.where(Vm.state.in_(sorted(states)))
        if deployment is not None:
            query = query.where(Vm.deployment_id == deployment)
        if host is not None:
            query = query.join(Host, Vm.host_id == Host.id).where(Host.name == host)
        return query

    def get(self, who: Principal, vm_id: str) -> VmOut:
        site = self.site_egress.effective()
        with self.db.session() as s:
            vm = _get_vm(s, who, vm_id)
            out = vm_out(vm)
            runs = run_count(s, vm_id)
            live = vm.host is not None and VmState(vm.state) not in FINAL_STATES
            applied = vm.host.site_egress_applied if live and vm.host else None
        zone_rules = site.zones.get(out.zone.value, ()) if out.zone else ()
        return out.model_copy(
            update={
                "zone_egress": list(zone_rules),
                "zone_egress_applied": None if applied is None else applied == site.digest,
                "runs": runs,
            }
        )

    def runs(self, who: Principal, vm_id: str) -> list[VmRunOut]:
        """Each run of the VM (a start after a stop, a redeploy), oldest first."""
        with self.db.session() as s:
            _get_vm(s, who, vm_id)
            return runs_of(s, vm_id)

    def deployments(self, who: Principal, all_users: bool = False) -> list[DeploymentOut]:
        with self.db.session() as s:
            query = select(Deployment).order_by(Deployment.created_at)
            if not (who.is_admin and all_users):
                query = query.where(Deployment.owner_id == who.user_id)
            return [_deployment_out(s, d) for d in s.scalars(query).unique().all()]

    def deployment(self, who: Principal, deployment_id: str) -> DeploymentOut:
        with self.db.session() as s:
            deployment = s.get(Deployment, deployment_id)
            if deployment is None or not (who.is_admin or deployment.owner_id == who.user_id):
                raise NotFound(f"no deployment {deployment_id!r}")
            return _deployment_out(s, deployment)

    def _member_ids(self, who: Principal, deployment_id: str, states: set[VmState]) -> list[str]:
        with self.db.session() as s:
            deployment = s.get(Deployment, deployment_id)
            if deployment is None or not (who.is_admin or deployment.owner_id == who.user_id):
                raise NotFound(f"no deployment {deployment_id!r}")
            return list(
                s.scalars(
                    select(Vm.id)
                    .where(
                        Vm.deployment_id == deployment_id, Vm.state.in_([x.value for x in states])
                    )
                    .order_by(Vm.index)
                )
            )

    def cancel_deployment(self, who: Principal, deployment_id: str) -> DeploymentOut:
        """End every VM of the deployment that has not ended yet (one terminate each)."""
        live = set(VmState) - FINAL_STATES
        for vm_id in self._member_ids(who, deployment_id, live):
            with contextlib.suppress(Conflict):  # ended meanwhile
                self.terminate(who, vm_id)
        return self.deployment(who, deployment_id)

    def redeploy_failed(self, who: Principal, deployment_id: str) -> DeploymentOut:
        """Start the failed and expired members over; the others keep their results."""
        for vm_id in self._member_ids(who, deployment_id, {VmState.failed, VmState.expired}):
            self.redeploy(who, vm_id)
        return self.deployment(who, deployment_id)

    def results_file(self, who: Principal, vm_id: str) -> Path:
        with self.db.session() as s:
            _get_vm(s, who, vm_id)
        return self.results.existing(vm_id)

    def console(self, who: Principal, vm_id: str, offset: int = 0) -> bytes:
        with self.db.session() as s:
            _get_vm(s, who, vm_id)
        return self.consoles.read(vm_id, offset)

    # --- state changes --------------------------------------------------------
    def _change(self, who: Principal, vm_id: str, mutate: Callable[[Vm], None]) -> VmOut:
        """Apply ``mutate`` to the VM in one transaction, then tell whoever must act.

        The VM's hosts (before and after) are notified after the commit, so their
        agents' next sync sees the change; a VM left pending wakes the scheduler.
        """
        with self.db.session() as s:
            # Locked: an agent report or a scheduler pass on this VM waits for this change.
            vm = _get_vm(s, who, vm_id, lock=True)
            hosts = {vm.host_id, vm.pinned_host_id}
            mutate(vm)
            if detach_ended(s):  # a VM that ended here lets go of its volumes
                s.expire(vm, ["volumes"])
            hosts |= {vm.host_id, vm.pinned_host_id}
            out = vm_out(vm)
        self.notify_hosts(*hosts)
        if out.state == VmState.pending:
            self.wake_scheduler()
        return out

    def stop(self, who: Principal, vm_id: str) -> VmOut:
        def stop(vm: Vm) -> None:
            state = VmState(vm.state)
            if state == VmState.pending and vm.pinned_host_id is not None:
                # A start that has not been placed yet: back to stopped on its host.
                vm.state = VmState.stopped.value
                vm.host_id = vm.pinned_host_id
                vm.desired = DesiredState.stopped.value
            elif state == VmState.pending:
                self._end(vm, VmState.cancelled, f"cancelled by {who.name} before it started")
            elif state in RUNNING_LIKE or state == VmState.scheduled:
                vm.desired = DesiredState.stopped.value
                vm.stop_reason = "user"
                vm.state = VmState.stopping.value
            elif state != VmState.stopping:
                raise Conflict(f"VM {vm_id} is {state.value}: there is nothing to stop")

        return self._change(who, vm_id, stop)

    def start(self, who: Principal, vm_id: str) -> VmOut:
        def start(vm: Vm) -> None:
            if vm.state != VmState.stopped.value:
                hint = "only a stopped single-mode VM starts again; use redeploy for a fresh start"
                raise Conflict(f"VM {vm_id} is {vm.state}, not stopped", hint=hint)
            lapsed = trusted_run_lapsed(vm, utcnow())
            if lapsed is not None:
                raise Forbidden(
                    f"VM {vm_id} may not start again: {lapsed}",
                    hint="save its disk (gridvm vm save) and run that in the DMZ (--zone dmz),"
                    " or ask a security officer",
                )
            vm.pinned_host_id = vm.host_id
            vm.host_id = None
            vm.boot += 1
            self._back_to_pending(vm)

        return self._change(who, vm_id, start)

    def terminate(self, who: Principal, vm_id: str) -> VmOut:
        def terminate(vm: Vm) -> None:
            state = VmState(vm.state)
            if state in FINAL_STATES:
                raise Conflict(f"VM {vm_id} has ended already ({state.value})")
            if state == VmState.pending and vm.pinned_host_id is None:
                self._end(vm, VmState.cancelled, f"terminated by {who.name} before it started")
                return
            if vm.host_id is None:
                vm.host_id = vm.pinned_host_id
            vm.desired = DesiredState.deleted.value
            vm.stop_reason = "terminated"
            vm.exit_reason = f"terminated by {who.name}"
            vm.state = VmState.stopping.value

        return self._change(who, vm_id, terminate)

    def redeploy(self, who: Principal, vm_id: str) -> VmOut:
        """Start the VM over from its image, on any host; whatever ran before is discarded."""

        def redeploy(vm: Vm) -> None:
            if vm.state == VmState.pending.value and vm.pinned_host_id is None:
                raise Conflict(f"VM {vm_id} is waiting to start already")
            vm.attempt += 1
            vm.host_id = None
            vm.pinned_host_id = None
            self._back_to_pending(vm)
            vm.exit_status = None
            vm.results_bytes = None
            self.consoles.start_over(vm.id)
            self.results.delete(vm.id)

        return self._change(who, vm_id, redeploy)

    def extend(self, who: Principal, vm_id: str, by_s: int) -> VmOut:
        """Lengthen the VM's lease by ``by_s`` seconds, within the site's longest walltime."""

        def extend(vm: Vm) -> None:
            if vm.state in {s.value for s in FINAL_STATES} or vm.state == VmState.stopped.value:
                raise Conflict(f"VM {vm_id} is {vm.state}: there is no lease to extend")
            walltime = vm.walltime_s + by_s
            if walltime > self.limits.max_walltime_s:
                most = self.limits.max_walltime_s - vm.walltime_s
                raise InvalidInput(
                    f"a walltime of {format_duration(walltime)} is beyond the site's limit"
                    f" of {format_duration(self.limits.max_walltime_s)}",
                    hint=f"extend by at most {format_duration(max(0, most))}",
                )
            vm.walltime_s = walltime
            if vm.expires_at is not None:
                vm.expires_at += timedelta(seconds=by_s)

        return self._change(who, vm_id, extend)

    def save(self, who: Principal, vm_id: str, name: str) -> VmOut:
        """Ask the VM's host to save its disk as a new private image called ``name``."""
        validate_name(name, what="image name")

        def save(vm: Vm) -> None:
            if vm.mode != VmMode.single.value or vm.state != VmState.stopped.value:
                raise Conflict(
                    f"VM {vm_id} is a {vm.mode}-mode VM in state {vm.state}",
                    hint="only a stopped single-mode VM can be saved: gridvm vm stop it first",
                )
            if vm.save_as is not None:
                raise Conflict(f"VM {vm_id} is being saved as {vm.save_as!r} already")
            # A name the owner has already: the saved disk becomes its next version.
            vm.save_as = name
            vm.save_id = new_id("save")
            vm.save_error = None

        return self._change(who, vm_id, save)

    def suspend(self, who: Principal, vm_id: str) -> VmOut:
        def suspend(vm: Vm) -> None:
            if vm.state != VmState.running.value:
                raise Conflict(f"VM {vm_id} is {vm.state}: only a running VM can be suspended")
            vm.desired = DesiredState.suspended.value

        return self._change(who, vm_id, suspend)

    def resume(self, who: Principal, vm_id: str) -> VmOut:
        def resume(vm: Vm) -> None:
            if vm.state != VmState.suspended.value and vm.desired != DesiredState.suspended:
                raise Conflict(f"VM {vm_id} is {vm.state}: only a suspended VM can be resumed")
            vm.desired = DesiredState.running.value

        return self._change(who, vm_id, resume)

    @staticmethod
    def _back_to_pending(vm: Vm) -> None:
        """Reset the VM's times for its next run; a run still going (a redeploy of a
        running VM) ends here, as the agent discards it."""
        s = object_session(vm)
        if s is not None:
            ended = vm.state in {st.value for st in FINAL_STATES} | {VmState.stopped.value}
            close_run(s, vm, utcnow(), vm.state if ended else REDEPLOYED)
        vm.state = VmState.pending.value
        vm.desired = DesiredState.running.value
        vm.stop_reason = None
        vm.exit_reason = None
        vm.started_at = None
        vm.expires_at = None
        vm.ended_at = None
        vm.pending_reason = "waiting for the scheduler"
        vm.queued_at = utcnow()
        # The next boot reports afresh through the guest API (with a new VM token).
        vm.ready_at = vm.guest_ip = vm.progress = vm.progress_message = None
        vm.public_keys = vm.published = None

    @staticmethod
    def _end(vm: Vm, state: VmState, reason: str) -> None:
        vm.state = state.value
        vm.exit_reason = reason
        vm.ended_at = utcnow()
        vm.pending_reason = None
