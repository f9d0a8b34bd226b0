"""Carry out the agent's actions on one host: stage and boot VMs, stop, finish, delete.

Staging a VM is several steps (cached image, overlay disk, seed ISO, QEMU);
each registers its undo, so a start that fails half-way leaves no disk,
ISO, pin or process behind.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from pathlib import Path

from gridvm.agent.reconcile import Action, Do, Runtime, keeps_disk
from gridvm.agent.records import RecordStore, VmRecord
from gridvm.agent.undo import UndoStack
from gridvm.common.errors import GridvmError
from gridvm.context.nocloud import build_seed_iso
from gridvm.hypervisor.driver import HypervisorDriver
from gridvm.hypervisor.spec import MachineSpec
from gridvm.images.cache import ImageCache
from gridvm.images.formats import create_overlay
from gridvm.schemas.agent import Assignment, EndCause, LocalState

log = logging.getLogger(__name__)

DISK = "disk.qcow2"
SEED = "seed.iso"

Fetch = Callable[[str, Path], None]


class Machines:
    def __init__(
        self,
        records: RecordStore,
        cache: ImageCache,
        driver: HypervisorDriver,
        fetch: Fetch,
        accelerator: str,
    ) -> None:
        self.records = records
        self.cache = cache
        self.driver = driver
        self.fetch = fetch
        self.accelerator = accelerator

    # --- observing ------------------------------------------------------------
    def runtime(self, record: VmRecord) -> Runtime:
        state = self.driver.state(self.spec(record.assignment))
        if state in ("running", "starting"):
            return Runtime.running
        if state == "paused":
            return Runtime.paused
        if state == "shutdown":
            return Runtime.shutdown
        return Runtime.gone

    def spec(self, a: Assignment) -> MachineSpec:
        run_dir = self.records.dir_of(a.vm_id)
        kernel = self.cache.path_if_cached(a.kernel_digest) if a.kernel_digest else None
        initrd = self.cache.path_if_cached(a.initrd_digest) if a.initrd_digest else None
        return MachineSpec(
            vm_id=a.vm_id,
            vcpus=a.vcpus,
            memory_mb=a.memory_mb,
            disk=run_dir / DISK,
            seed_iso=run_dir / SEED,
            kernel=kernel,
            initrd=initrd,
            kernel_cmdline=a.kernel_cmdline if kernel else None,
            accelerator="kvm" if self.accelerator == "kvm" else "tcg",
            run_dir=run_dir,
            network="user",
            mac=None,
        )

    # --- acting ---------------------------------------------------------------
    def apply(self, action: Action, record: VmRecord | None) -> None:
        """Carry out ``action``; failures are recorded on the VM, never raised."""
        try:
            self._apply(action, record)
        except GridvmError as exc:
            log.warning("%s of %s failed: %s", action.do.value, action.vm_id, exc)
            if record is not None and action.do in (Do.pause, Do.resume, Do.powerdown):
                return
            if record is not None:
                self._end(record, LocalState.failed, EndCause.crashed, str(exc))

    def _apply(self, action: Action, record: VmRecord | None) -> None:
        match action.do:
            case Do.start | Do.restart:
                assert action.assignment is not None
                self.boot(action.assignment, fresh=action.do == Do.start)
            case Do.note:
                assert action.assignment is not None and action.state is not None
                self.records.save(
                    VmRecord(
                        action.vm_id,
                        action.assignment.attempt,
                        action.assignment,
                        action.state,
                        action.cause,
                        boot=action.assignment.boot,
                    )
                )
            case Do.forget:
                self.forget(action.vm_id, record)
            case Do.pause | Do.resume | Do.powerdown | Do.kill | Do.finish | Do.delete:
                assert record is not None
                if action.assignment is not None:
                    record.assignment = action.assignment
                self._control(action, record)

    def _control(self, action: Action, record: VmRecord) -> None:
        spec = self.spec(record.assignment)
        match action.do:
            case Do.pause:
                self.driver.pause(spec)
                self._set(record, LocalState.suspended)
            case Do.resume:
                self.driver.resume(spec)
                self._set(record, LocalState.running)
            case Do.powerdown:
                record.stop_requested_at = time.time()
                self._set(record, LocalState.stopping)
                self.driver.powerdown(spec)
            case Do.kill | Do.finish:
                assert action.cause is not None
                self.driver.kill(spec)
                self._finish(record, action.cause)
            case Do.delete:
                self.driver.kill(spec)
                self._drop_disk(record)
                self._end(record, LocalState.deleted, EndCause.killed, None)

    def boot(self, a: Assignment, *, fresh: bool) -> None:
        """Stage (image, overlay, seed ISO) and start the VM; undo everything on failure."""
        record = VmRecord(a.vm_id, a.attempt, a, LocalState.staging, boot=a.boot)
        run_dir = self.records.dir_of(a.vm_id)
        if fresh:
            self.records.remove(a.vm_id)
        self.records.save(record)
        try:
            with UndoStack() as undo:
                base = self._stage_images(a, undo if fresh else None)
                disk = run_dir / DISK
                if fresh or not disk.exists():
                    create_overlay(base, disk, size_bytes=a.disk_bytes)
                    undo.push("overlay", lambda: disk.unlink(missing_ok=True))
                seed = run_dir / SEED
                build_seed_iso(
                    seed,
                    meta_data={
                        "instance-id": f"{a.vm_id}-{a.attempt}",
                        "local-hostname": a.hostname,
                    },
                    user_data=a.user_data.encode() if a.user_data is not None else None,
                )
                undo.push("seed ISO", lambda: seed.unlink(missing_ok=True))
                self._set(record, LocalState.booting)
                spec = self.spec(a)
                self.driver.start(spec)
                undo.push("QEMU", lambda: self.driver.kill(spec))
                undo.commit()
        except GridvmError as exc:
            log.warning("VM %s could not start: %s", a.vm_id, exc)
            # A kept single-mode disk stays: the user may fix the cause and start again.
            state = LocalState.failed if fresh else LocalState.stopped
            self._end(record, state, EndCause.start_failed, str(exc))
            return
        record.stop_requested_at = None
        self._set(record, LocalState.running)
        log.info("VM %s is running", a.vm_id)

    def _stage_images(self, a: Assignment, undo: UndoStack | None) -> Path:
        """Cached paths of the VM's blobs, each pinned for the VM (the first is the disk).

        Without ``undo`` (booting a kept disk again) the pins stay whatever happens:
        the kept overlay still needs its base."""
        base: Path | None = None
        for digest in (a.image_digest, a.kernel_digest, a.initrd_digest):
            if digest is None:
                continue
            path = self.cache.ensure(
                digest,
                functools.partial(self.fetch, digest),
                pin_as=a.vm_id,
                qcow2=digest == a.image_digest,
            )
            if undo is not None:
                undo.push(f"pin {digest}", functools.partial(self.cache.unpin, digest, a.vm_id))
            base = base or path
        assert base is not None
        return base

    def _finish(self, record: VmRecord, cause: EndCause) -> None:
        if keeps_disk(record.assignment.mode, cause):
            (self.records.dir_of(record.vm_id) / SEED).unlink(missing_ok=True)
            detail = None if cause != EndCause.crashed else "QEMU exited unexpectedly"
            self._end(record, LocalState.stopped, cause, detail)
            return
        self._drop_disk(record)
        self._end(record, LocalState.ended, cause, None)

    def _drop_disk(self, record: VmRecord) -> None:
        run_dir = self.records.dir_of(record.vm_id)
        (run_dir / DISK).unlink(missing_ok=True)
        (run_dir / SEED).unlink(missing_ok=True)
        self._unpin_all(record)

    def _unpin_all(self, record: VmRecord) -> None:
        a = record.assignment
        for digest in (a.image_digest, a.kernel_digest, a.initrd_digest):
            if digest is not None:
                self.cache.unpin(digest, a.vm_id)

    def forget(self, vm_id: str, record: VmRecord | None) -> None:
        """Remove every trace of a VM this host no longer holds."""
        if record is not None:
            self.driver.kill(self.spec(record.assignment))
            self._unpin_all(record)
        self.records.remove(vm_id)

    def _set(self, record: VmRecord, state: LocalState) -> None:
        record.state = state
        self.records.save(record)

    def _end(
        self, record: VmRecord, state: LocalState, cause: EndCause | None, detail: str | None
    ) -> None:
        record.state = state
        record.cause = cause
        record.detail = detail
        self.records.save(record)
