"""Records on disk: what a restart reads back, including records of older agents."""

from __future__ import annotations

import json
from pathlib import Path

from gridvm.agent.records import RecordStore, VmRecord
from gridvm.schemas.agent import LocalState
from gridvm.schemas.hosts import Zone
from gridvm.schemas.vms import VmMode
from tests.agent.helpers import assignment, record

KERNEL = "sha256:" + "b" * 64


def test_pins_and_console_base_survive_a_restart(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    r = record(assignment(mode=VmMode.single), LocalState.running)
    r.pins = ["sha256:" + "c" * 64, KERNEL]
    r.console_base = 9 * 1024**2
    store.save(r)
    assert RecordStore(tmp_path).load_all() == {r.vm_id: r}


def test_a_record_from_before_pins_were_recorded_pins_its_assignments_digests(
    tmp_path: Path,
) -> None:
    a = assignment().model_copy(update={"kernel_digest": KERNEL})
    data = json.loads(record(a, LocalState.stopped).to_json())
    del data["pins"], data["console_base"]
    r = VmRecord.from_json(json.dumps(data))
    assert r.pins == [a.image_digest, KERNEL]
    assert r.console_base == 0


def test_a_record_removed_while_loading_is_skipped(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    store.save(record(assignment(), LocalState.running))
    # A directory whose record vanishes between the listing and the read (a fresh start).
    (tmp_path / "vm-2").mkdir()
    (tmp_path / "vm-2" / "record.json").symlink_to(tmp_path / "nowhere")
    assert list(store.load_all()) == ["vm-1"]


def test_an_unreadable_record_is_named_not_fatal(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    store.save(record(assignment(), LocalState.running))
    (tmp_path / "vm-2").mkdir()
    (tmp_path / "vm-2" / "record.json").write_text("")  # a power cut before fsync
    assert list(store.load_all()) == ["vm-1"]
    assert store.broken == {"vm-2"}


def test_records_hold_the_vm_token_so_only_the_agent_reads_them(tmp_path: Path) -> None:
    store = RecordStore(tmp_path / "vms")
    r = record(assignment(), LocalState.running)
    r.assignment = r.assignment.model_copy(update={"guest_token": "gvt.secret"})
    store.save(r)
    assert (tmp_path / "vms").stat().st_mode & 0o777 == 0o700
    assert store.dir_of(r.vm_id).stat().st_mode & 0o777 == 0o700
    assert (store.dir_of(r.vm_id) / "record.json").stat().st_mode & 0o777 == 0o600
    assert "gvt.secret" not in repr(r.assignment)


def test_the_site_network_address_and_zone_survive_a_restart(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    a = assignment().model_copy(update={"zone": Zone.dmz, "egress": ["192.0.2.10:443"]})
    r = record(a, LocalState.running)
    r.ipv4 = "10.65.0.7"
    store.save(r)
    assert RecordStore(tmp_path).load_all() == {r.vm_id: r}
    data = json.loads(r.to_json())
    del data["ipv4"]  # written before site networking: no address
    assert VmRecord.from_json(json.dumps(data)).ipv4 is None
