"""Carry out the agent's actions on one host: stage and boot VMs, stop, finish, delete.

Staging a VM is several steps (cached image, overlay disk, volumes, seed ISO,
QEMU); each registers its undo, so a start that fails half-way leaves no disk,
ISO, pin or process behind (a kept single-mode disk and its pins stay, and so
do the user's volumes, made or not by this start).
"""

from __future__ import annotations

import base64
import functools
import logging
import time
from collections.abc import Callable
from pathlib import Path

from gridvm.agent.network import NET_STATES, SiteNetwork, tap_name
from gridvm.agent.reconcile import Action, Do, Runtime
from gridvm.agent.records import RecordStore, VmRecord
from gridvm.agent.results import collect_results
from gridvm.agent.undo import UndoStack
from gridvm.agent.volumes import VolumeFiles
from gridvm.common.errors import GridvmError, HypervisorError
from gridvm.context.nocloud import build_seed_iso, render_network_config
from gridvm.hypervisor.driver import HypervisorDriver
from gridvm.hypervisor.spec import ExtraDisk, MachineSpec
from gridvm.images.cache import ImageCache
from gridvm.images.formats import create_overlay, flatten_overlay
from gridvm.network.addresses import mac_for
from gridvm.schemas.agent import Assignment, EndCause, LaunchBundle, LocalState
from gridvm.schemas.vms import VmMode

log = logging.getLogger(__name__)

DISK = "disk.qcow2"
SEED = "seed.iso"
# The raw disk a job writes its results to (one tar), read when the guest powers off.
OUTPUT = "output.raw"
RESULTS = "results.tar"
OUTPUT_SERIAL = "gridvm-output"

Fetch = Callable[[str, Path], None]
Upload = Callable[[str, Path], None]


class Machines:
    def __init__(
        self,
        records: RecordStore,
        cache: ImageCache,
        driver: HypervisorDriver,
        fetch: Fetch,
        accelerator: str,
        upload_results: Upload | None = None,
        upload_disk_image: Upload | None = None,
        fetch_launch: Callable[[str], LaunchBundle] | None = None,
        volumes: VolumeFiles | None = None,
        network: SiteNetwork | None = None,
    ) -> None:
        self.records = records
        self.cache = cache
        self.driver = driver
        self.fetch = fetch
        self.accelerator = accelerator
        self.upload_results = upload_results
        self.upload_disk_image = upload_disk_image
        self.fetch_launch = fetch_launch
        # Users' volumes: beside the VM directories, never inside one (those are removed).
        self.volumes = volumes or VolumeFiles(records.root.parent / "volumes")
        # None: QEMU user-mode networking; else a tap per VM on its zone's bridge.
        self.network = network

    # --- observing ------------------------------------------------------------
    def runtime(self, record: VmRecord) -> Runtime:
        try:
            state = self.driver.state(self.spec(record.assignment))
        except HypervisorError as exc:
            log.warning("VM %s does not answer: %s", record.vm_id, exc)
            return Runtime.hung
        if state in ("running", "starting"):
            return Runtime.running
        if state == "paused":
            return Runtime.paused
        if state == "shutdown":
            return Runtime.shutdown
        return Runtime.gone

    def has_disk(self, vm_id: str) -> bool:
        return (self.records.dir_of(vm_id) / DISK).exists()

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
            network="tap" if self.network is not None else "user",
            tap=tap_name(a.vm_id) if self.network is not None else None,
            mac=mac_for(a.vm_id),
            guest_channel=True,
            extra_disks=(
                *(
                    (ExtraDisk(path=run_dir / OUTPUT, format="raw", serial=OUTPUT_SERIAL),)
                    if a.output_bytes
                    else ()
                ),
                *(
                    ExtraDisk(path=self.volumes.path_of(v.id), serial=v.serial, cache="writeback")
                    for v in a.volumes
                ),
            ),
        )

    # --- acting ---------------------------------------------------------------
    def apply(self, action: Action, record: VmRecord | None) -> None:
        """Carry out ``action``; failures are recorded on the VM, never raised."""
        try:
            self._apply(action, record)
        except Exception as exc:
            log.warning(
                "%s of %s failed: %s",
                action.do.value,
                action.vm_id,
                exc,
                exc_info=not isinstance(exc, GridvmError),
            )
            if record is None or action.do not in (Do.kill, Do.finish, Do.delete):
                return  # retried next round (a start records its own failure)
            # Whatever failed, a single-mode disk is kept: a delete is retried next round.
            single = record.assignment.mode == VmMode.single
            state = LocalState.stopped if single else LocalState.failed
            try:
                self._end(record, state, EndCause.crashed, str(exc))
            except Exception:
                log.exception("could not record the failure on %s", action.vm_id)

    def _apply(self, action: Action, record: VmRecord | None) -> None:
        a = action.assignment
        match action.do:
            case Do.start | Do.restart:
                assert a is not None
                fresh = action.do == Do.start
                self.boot(a, fresh=fresh, old=None if fresh else record)
            case Do.note:
                assert a is not None and action.state is not None
                if record is None or record.attempt != a.attempt:
                    record = VmRecord(a.vm_id, a.attempt, a, action.state)
                record.assignment, record.boot = a, a.boot
                self._end(record, action.state, action.cause, action.detail)
            case Do.forget:
                self.forget(action.vm_id, record)
            case Do.save:
                assert record is not None and a is not None
                self.save_disk(record, a)
            case Do.pause | Do.resume | Do.powerdown | Do.kill | Do.finish | Do.delete:
                assert record is not None and a is not None
                # Reports go out under the assignment acted on (its boot), or the server
                # takes them as stale.
                record.assignment, record.boot = a, a.boot
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
                assert action.state is not None
                self.driver.kill(spec)
                problem = None
                if action.do == Do.finish and action.cause in (EndCause.poweroff, EndCause.stopped):
                    problem = self._collect_results(record)
                (self.records.dir_of(record.vm_id) / OUTPUT).unlink(missing_ok=True)
                if action.state == LocalState.stopped:
                    (self.records.dir_of(record.vm_id) / SEED).unlink(missing_ok=True)
                else:
                    self._drop_disk(record)
                self._end(record, action.state, action.cause, action.detail or problem)
            case Do.delete:
                self.driver.kill(spec)
                self._drop_disk(record)
                self._end(record, LocalState.deleted, EndCause.killed, None)

    def boot(self, a: Assignment, *, fresh: bool, old: VmRecord | None = None) -> None:
        """Stage (images, overlay, seed ISO) and start the VM; undo everything on failure.

        ``fresh`` makes a new disk from the image; otherwise the kept disk of ``old``
        boots again (made from the image if it was never made). A failed fresh start
        ends ``failed``; a failed restart ends ``stopped`` with its disk kept, so the
        user may fix the cause and start again.
        """
        record = VmRecord(a.vm_id, a.attempt, a, LocalState.staging, boot=a.boot)
        if old is not None:
            record.ipv4 = old.ipv4  # kept if still free
        if old is not None and not fresh:
            record.pins = list(old.pins)
            record.console_base = old.console_base
        run_dir = self.records.dir_of(a.vm_id)
        disk = run_dir / DISK
        try:
            if fresh:
                self.records.remove(a.vm_id)
            with UndoStack() as undo:
                new_disk = fresh or not disk.exists()
                paths = self._pin_images(record, a, undo, with_disk_image=new_disk)
                if new_disk:
                    create_overlay(paths[a.image_digest], disk, size_bytes=a.disk_bytes)
                    undo.push("overlay", lambda: disk.unlink(missing_ok=True))
                output = run_dir / OUTPUT
                if a.output_bytes:
                    with output.open("wb") as f:  # sparse, all zeros: no results yet
                        f.truncate(a.output_bytes)
                    undo.push("results disk", lambda: output.unlink(missing_ok=True))
                for volume in a.volumes:  # kept whatever happens: the user's data
                    self.volumes.ensure(volume.id, volume.size_bytes)
                static = None
                if self.network is not None:
                    # Address, tap and rules are in place before QEMU starts.
                    network = self.network
                    static = network.attach(record)
                    undo.push("network", lambda: network.release(a.vm_id))
                seed = run_dir / SEED
                launch = self._launch_bundle(a)
                build_seed_iso(
                    seed,
                    meta_data={
                        "instance-id": f"{a.vm_id}-{a.attempt}",
                        "local-hostname": a.hostname,
                    },
                    user_data=a.user_data.encode() if a.user_data is not None else None,
                    env=a.env,
                    secrets={k: base64.b64decode(v) for k, v in launch.secrets.items()},
                    files=[(f.path, base64.b64decode(f.content_b64)) for f in launch.files],
                    public_keys=a.ssh_public_keys,
                    network_config=render_network_config(mac_for(a.vm_id), static),
                    vm_token=a.guest_token,
                    static_network=static,
                )
                undo.push("seed ISO", lambda: seed.unlink(missing_ok=True))
                self._set(record, LocalState.booting)
                spec = self.spec(a)
                self.driver.start(spec)
                undo.push("QEMU", lambda: self.driver.kill(spec))
                self._set(record, LocalState.running)
                undo.commit()
        except Exception as exc:
            log.warning(
                "VM %s could not start: %s", a.vm_id, exc, exc_info=not isinstance(exc, GridvmError)
            )
            state = LocalState.failed if fresh else LocalState.stopped
            self._end(record, state, EndCause.start_failed, str(exc) or type(exc).__name__)
            return
        log.info("VM %s is running", a.vm_id)

    def _launch_bundle(self, a: Assignment) -> LaunchBundle:
        """The VM's secrets and files, fetched now: they are kept only in its seed ISO."""
        if not a.has_launch_files:
            return LaunchBundle()
        if self.fetch_launch is None:
            raise GridvmError("this agent cannot fetch secrets and files")
        return self.fetch_launch(a.vm_id)

    def save_disk(self, record: VmRecord, a: Assignment) -> None:
        """Flatten the kept disk (overlay + cached base) into one qcow2 and send it as the
        image ``a.save_as``; the outcome goes out with the next report."""
        assert a.save_as is not None
        run_dir = self.records.dir_of(record.vm_id)
        flat = run_dir / "saving.qcow2"
        error = None
        try:
            flatten_overlay(run_dir / DISK, flat)
            if self.upload_disk_image is None:
                raise GridvmError("this agent cannot upload images")
            self.upload_disk_image(record.vm_id, flat)
            log.info("VM %s saved as image %s", record.vm_id, a.save_as)
        except Exception as exc:
            log.warning("saving VM %s as %s failed: %s", record.vm_id, a.save_as, exc)
            error = str(exc) or type(exc).__name__
        finally:
            flat.unlink(missing_ok=True)
        record.saved_id, record.save_error = a.save_id, error
        self.records.save(record)

    def _collect_results(self, record: VmRecord) -> str | None:
        """Read the job's exit status and files off its results disk; send the files on.

        Returns what went wrong with the results, if anything (for the exit reason)."""
        run_dir = self.records.dir_of(record.vm_id)
        disk = run_dir / OUTPUT
        if not disk.exists():
            return None
        tar = run_dir / RESULTS
        outcome = collect_results(disk, tar)
        record.exit_status = outcome.exit_status
        problem = outcome.problem
        if tar.exists() and self.upload_results is not None:
            try:
                self.upload_results(record.vm_id, tar)
                n = outcome.files
                log.info("VM %s: %d result files (%d bytes) sent", record.vm_id, n, outcome.size)
            except GridvmError as exc:
                problem = f"results not kept: {exc}"
            finally:
                tar.unlink(missing_ok=True)
        if problem:
            log.warning("VM %s: %s", record.vm_id, problem)
        return problem

    def _pin_images(
        self, record: VmRecord, a: Assignment, undo: UndoStack, *, with_disk_image: bool
    ) -> dict[str, Path]:
        """Cached paths of the blobs this boot needs, each pinned for the VM.

        The pins are recorded (and saved) before they are taken, so a crash cannot
        leak one; pins new to this boot are undone if the boot fails, while those of
        a kept disk stay (its overlay still needs its base)."""
        digests = [
            d
            for d in (a.image_digest if with_disk_image else None, a.kernel_digest, a.initrd_digest)
            if d is not None
        ]
        for digest in digests:
            if digest not in record.pins:
                record.pins.append(digest)
                undo.push(f"pin {digest}", functools.partial(self._unpin, record, digest))
        self.records.save(record)
        return {
            digest: self.cache.ensure(
                digest,
                functools.partial(self.fetch, digest),
                pin_as=a.vm_id,
                qcow2=digest == a.image_digest,
            )
            for digest in digests
        }

    def _unpin(self, record: VmRecord, digest: str) -> None:
        self.cache.unpin(digest, record.vm_id)
        record.pins.remove(digest)

    def _drop_disk(self, record: VmRecord) -> None:
        run_dir = self.records.dir_of(record.vm_id)
        (run_dir / DISK).unlink(missing_ok=True)
        (run_dir / SEED).unlink(missing_ok=True)
        for digest in list(record.pins):
            self._unpin(record, digest)

    def forget(self, vm_id: str, record: VmRecord | None) -> None:
        """Remove every trace of a VM this host no longer holds."""
        if record is not None:
            self.driver.kill(self.spec(record.assignment))
            for digest in list(record.pins):
                self._unpin(record, digest)
        self.records.remove(vm_id)
        if record is not None and record.ipv4 is not None:
            self._release_network(vm_id)

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
        if state not in NET_STATES and record.ipv4 is not None:
            self._release_network(record.vm_id)

    def _release_network(self, vm_id: str) -> None:
        """The VM's tap goes and the rules are re-applied without it (after QEMU ended)."""
        if self.network is None:
            return
        try:
            self.network.release(vm_id)
        except Exception:
            log.exception("could not take down the network of VM %s", vm_id)
