"""Machines over real files: record store, image cache, qcow2 overlays; QEMU is a fake."""

from __future__ import annotations

from gridvm.agent.machines import DISK, SEED, Machines
from gridvm.agent.reconcile import Action, Do, Runtime
from gridvm.agent.records import RecordStore, VmRecord
from gridvm.common.errors import HypervisorError
from gridvm.schemas.agent import Assignment, DesiredState, EndCause, LocalState
from gridvm.schemas.vms import VmMode
from gridvm.schemas.volumes import VolumeAttachment
from tests.agent.helpers import Host, Images, assignment


def started(host: Host, a: Assignment) -> VmRecord:
    host.machines.apply(Action(Do.start, a.vm_id, a), None)
    return host.records.load_all()[a.vm_id]


def stopped_single(host: Host, images: Images, boot: int = 1) -> VmRecord:
    """A single-mode VM that ran and powered off: its disk is kept."""
    a = assignment(mode=VmMode.single, image_digest=images.old, boot=boot)
    r = started(host, a)
    host.machines.apply(
        Action(Do.finish, a.vm_id, a, cause=EndCause.poweroff, state=LocalState.stopped), r
    )
    r = host.records.load_all()[a.vm_id]
    assert r.state == LocalState.stopped and host.machines.has_disk(a.vm_id)
    return r


def disk_of(host: Host, vm_id: str) -> bool:
    return host.machines.has_disk(vm_id)


# --- 1. boot numbers ------------------------------------------------------------------------


def test_terminate_of_a_pending_start_is_reported_under_the_new_boot(
    host: Host, images: Images
) -> None:
    r = stopped_single(host, images, boot=1)
    a = assignment(
        mode=VmMode.single, image_digest=images.old, boot=2, desired=DesiredState.deleted
    )
    host.machines.apply(Action(Do.delete, a.vm_id, a), r)
    saved = host.records.load_all()[a.vm_id]
    assert (saved.state, saved.boot, saved.assignment) == (LocalState.deleted, 2, a)
    assert not disk_of(host, a.vm_id)


def test_note_on_a_kept_disk_takes_the_new_boot_and_keeps_the_rest(
    host: Host, images: Images
) -> None:
    r = stopped_single(host, images, boot=1)
    a = assignment(
        mode=VmMode.single, image_digest=images.old, boot=2, desired=DesiredState.stopped
    )
    host.machines.apply(
        Action(Do.note, a.vm_id, a, cause=r.cause, state=LocalState.stopped, detail=r.detail), r
    )
    saved = host.records.load_all()[a.vm_id]
    assert (saved.state, saved.boot, saved.cause, saved.pins) == (
        LocalState.stopped,
        2,
        EndCause.poweroff,
        [images.old],
    )
    assert disk_of(host, a.vm_id)


# --- 3. a start that fails in any way ends ------------------------------------------------------


def test_fresh_start_that_hits_an_os_error_fails_and_leaves_nothing(
    host: Host, images: Images
) -> None:
    def disk_full(digest: str, target: object) -> None:
        raise OSError(28, "No space left on device")

    host.machines.fetch = disk_full
    a = assignment(image_digest=images.old)
    r = started(host, a)
    assert (r.state, r.cause) == (LocalState.failed, EndCause.start_failed)
    assert r.detail is not None and "No space left" in r.detail
    assert r.pins == [] and not disk_of(host, a.vm_id)
    assert host.cache.entries() == []


def test_restart_whose_record_cannot_be_saved_stops_with_the_disk_kept(
    host: Host, images: Images
) -> None:
    r = stopped_single(host, images)

    class Flaky(RecordStore):
        def save(self, record: VmRecord) -> None:
            if record.state == LocalState.booting:
                raise OSError(28, "No space left on device")
            super().save(record)

    m = host.machines
    flaky = Machines(Flaky(host.records.root), m.cache, m.driver, m.fetch, "tcg")
    a = assignment(mode=VmMode.single, image_digest=images.old, boot=2)
    flaky.apply(Action(Do.restart, a.vm_id, a), r)
    saved = host.records.load_all()[a.vm_id]
    assert (saved.state, saved.cause, saved.boot) == (LocalState.stopped, EndCause.start_failed, 2)
    assert disk_of(host, a.vm_id) and saved.pins == [images.old]
    assert host.cache.pins(images.old) == {a.vm_id}


def test_fresh_start_whose_qemu_raises_anything_fails(host: Host, images: Images) -> None:
    host.driver.fail["start"] = RuntimeError("surprise")
    r = started(host, assignment(image_digest=images.old))
    assert (r.state, r.detail) == (LocalState.failed, "surprise")
    assert host.cache.pins(images.old) == set()


# --- 4. control failures keep single-mode disks ---------------------------------------------------


def test_a_failed_kill_stops_a_single_mode_vm_and_keeps_its_disk(
    host: Host, images: Images
) -> None:
    host.driver.fail["kill"] = HypervisorError("QEMU survived SIGKILL")
    for mode, state in ((VmMode.single, LocalState.stopped), (VmMode.multi, LocalState.failed)):
        a = assignment(vm_id=f"vm-{mode.value}", mode=mode, image_digest=images.old)
        del host.driver.fail["kill"]
        r = started(host, a)
        host.driver.fail["kill"] = HypervisorError("QEMU survived SIGKILL")
        for do in (Do.kill, Do.finish, Do.delete):
            end = LocalState.stopped if mode == VmMode.single else LocalState.ended
            host.machines.apply(Action(do, a.vm_id, a, cause=EndCause.killed, state=end), r)
            saved = host.records.load_all()[a.vm_id]
            assert (saved.state, saved.detail) == (state, "QEMU survived SIGKILL")
            assert disk_of(host, a.vm_id)
            assert host.cache.pins(images.old) >= {a.vm_id}


# --- 2. adoption's actions as Machines carries them out ------------------------------------------


def test_interrupted_start_keeps_a_single_mode_disk_or_drops_all(
    host: Host, images: Images
) -> None:
    single = assignment("single", mode=VmMode.single, image_digest=images.old)
    multi = assignment("multi", image_digest=images.old)
    for a, state in ((single, LocalState.stopped), (multi, LocalState.failed)):
        r = started(host, a)
        host.machines.apply(
            Action(Do.finish, a.vm_id, a, cause=EndCause.start_failed, state=state, detail="d"), r
        )
        saved = host.records.load_all()[a.vm_id]
        assert (saved.state, saved.detail) == (state, "d")
        assert ("kill", a.vm_id) in host.driver.calls
        assert not (host.records.dir_of(a.vm_id) / SEED).exists()
    assert disk_of(host, "single") and not disk_of(host, "multi")
    assert host.cache.pins(images.old) == {"single"}


# --- 5. pins: exactly what the VM pinned ---------------------------------------------------------


def test_a_rebuilt_image_neither_leaks_the_old_pin_nor_drops_the_new_one(
    host: Host, images: Images
) -> None:
    r = stopped_single(host, images)
    assert r.pins == [images.old]
    # The site template is rebuilt: the server now names another digest. The kept disk
    # boots again on its old base; the new image is not even fetched.
    rebuilt = assignment(mode=VmMode.single, image_digest=images.new, boot=2)
    host.machines.apply(Action(Do.restart, rebuilt.vm_id, rebuilt), r)
    r = host.records.load_all()[rebuilt.vm_id]
    assert r.state == LocalState.running and r.pins == [images.old]
    assert host.fetched == [images.old]
    gone = rebuilt.model_copy(update={"desired": DesiredState.deleted})
    host.machines.apply(Action(Do.delete, gone.vm_id, gone), r)
    assert host.cache.pins(images.old) == set() and host.cache.pins(images.new) == set()
    assert host.records.load_all()[gone.vm_id].pins == []


def test_forget_unpins_what_an_old_record_pinned(host: Host, images: Images) -> None:
    a = assignment(image_digest=images.old)
    r = started(host, a)
    r.pins = []  # as read from a record written before pins were recorded...
    r = VmRecord.from_json(r.to_json().replace('"pins": []', '"_": []'))
    assert r.pins == [images.old]  # ...it falls back to its assignment's digests
    host.machines.apply(Action(Do.forget, a.vm_id), r)
    assert host.cache.pins(images.old) == set()
    assert host.records.load_all() == {}


# --- 8. a single-mode VM stopped before it ever booted --------------------------------------------


def test_vm_stopped_before_its_first_boot_gets_its_disk_when_started(
    host: Host, images: Images
) -> None:
    a = assignment(mode=VmMode.single, image_digest=images.new, desired=DesiredState.stopped)
    host.machines.apply(
        Action(Do.note, a.vm_id, a, cause=EndCause.stopped, state=LocalState.stopped), None
    )
    r = host.records.load_all()[a.vm_id]
    assert r.state == LocalState.stopped and not disk_of(host, a.vm_id)
    start = assignment(mode=VmMode.single, image_digest=images.new, boot=2)
    host.machines.apply(Action(Do.restart, a.vm_id, start), r)
    r = host.records.load_all()[a.vm_id]
    assert (r.state, r.boot, r.pins) == (LocalState.running, 2, [images.new])
    assert disk_of(host, a.vm_id)


def test_failed_first_boot_of_a_kept_disk_stops_without_leftovers(
    host: Host, images: Images
) -> None:
    a = assignment(mode=VmMode.single, image_digest=images.new, desired=DesiredState.stopped)
    host.machines.apply(Action(Do.note, a.vm_id, a, state=LocalState.stopped), None)
    host.driver.fail["start"] = HypervisorError("no QEMU")
    start = assignment(mode=VmMode.single, image_digest=images.new, boot=2)
    host.machines.apply(Action(Do.restart, a.vm_id, start), host.records.load_all()[a.vm_id])
    r = host.records.load_all()[a.vm_id]
    assert (r.state, r.pins) == (LocalState.stopped, [])
    assert not disk_of(host, a.vm_id) and host.cache.pins(images.new) == set()
    assert not (host.records.dir_of(a.vm_id) / DISK).exists()


# --- 6. a hung QEMU ----------------------------------------------------------------------------


def test_a_monitor_that_does_not_answer_is_hung(host: Host, images: Images) -> None:
    r = started(host, assignment(image_digest=images.old))
    assert host.machines.runtime(r) == Runtime.running
    host.driver.hung.add(r.vm_id)
    assert host.machines.runtime(r) == Runtime.hung


# --- 9. volumes: attached after the other disks, never deleted with the VM ---------------------


def _with_volume(a: Assignment) -> Assignment:
    volume = VolumeAttachment(
        id="vol-0a1b2c3d4e5f", size_bytes=8 * 1024**2, serial="vol-0a1b2c3d4e5f"
    )
    return a.model_copy(update={"volumes": [volume], "output_bytes": 1024**2})


def test_a_vm_boots_with_its_volume_last_and_ending_keeps_the_volume(
    host: Host, images: Images
) -> None:
    a = _with_volume(assignment(image_digest=images.old))
    r = started(host, a)
    assert r.state == LocalState.running
    volume = host.machines.volumes.path_of("vol-0a1b2c3d4e5f")
    assert volume.is_file()
    spec = host.machines.spec(a)
    assert [d.serial for d in spec.extra_disks] == ["gridvm-output", "vol-0a1b2c3d4e5f"]
    assert (spec.extra_disks[-1].path, spec.extra_disks[-1].cache) == (volume, "writeback")
    assert host.records.dir_of(a.vm_id) not in volume.parents
    host.machines.apply(
        Action(Do.finish, a.vm_id, a, cause=EndCause.poweroff, state=LocalState.ended), r
    )
    assert not disk_of(host, a.vm_id) and volume.is_file()
    host.machines.apply(Action(Do.forget, a.vm_id), host.records.load_all()[a.vm_id])
    assert volume.is_file()


def test_a_failed_start_undoes_its_disks_but_keeps_the_volume(host: Host, images: Images) -> None:
    host.driver.fail["start"] = HypervisorError("no QEMU today")
    a = _with_volume(assignment(image_digest=images.old))
    r = started(host, a)
    assert (r.state, r.cause) == (LocalState.failed, EndCause.start_failed)
    assert not disk_of(host, a.vm_id)
    assert not (host.records.dir_of(a.vm_id) / SEED).exists()
    assert host.machines.volumes.path_of("vol-0a1b2c3d4e5f").is_file()


def test_terminate_deletes_the_vm_disk_but_not_its_volume(host: Host, images: Images) -> None:
    a = _with_volume(assignment(mode=VmMode.single, image_digest=images.old))
    r = started(host, a)
    gone = a.model_copy(update={"desired": DesiredState.deleted})
    host.machines.apply(Action(Do.delete, a.vm_id, gone), r)
    assert not disk_of(host, a.vm_id)
    assert host.machines.volumes.path_of("vol-0a1b2c3d4e5f").is_file()
