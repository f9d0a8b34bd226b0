"""A volume keeps a job's data across runs, on a real `tiny` guest, through the CLI."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.system.cloud import Cloud
from tests.system.test_journeys import ok, vm_run

# The guest finds the volume by its serial (the volume's id) among its virtio disks.
FIND = """#!/bin/sh
dev=
for d in /sys/block/vd*; do
    [ "$(cat "$d/serial" 2>/dev/null)" = "SERIAL" ] && dev=/dev/${d##*/}
done
[ -n "$dev" ] || { echo "no volume disk"; exit 0; }
"""
WRITE = FIND + 'echo gridvm-volume-ok | dd of="$dev" conv=notrunc 2>/dev/null && sync\n'
READ = FIND + 'echo "volume says: $(head -c 16 "$dev")" | tee "$GRIDVM_OUTPUT/read.txt"\n'


def test_a_volume_keeps_data_from_one_run_to_the_next(cloud: Cloud, tmp_path: Path) -> None:
    made = json.loads(
        ok(cloud.cli(tmp_path, "-o", "json", "volume", "create", "data", "--size", "16M")).stdout
    )
    serial = made["serial"]
    (tmp_path / "write.sh").write_text(WRITE.replace("SERIAL", serial))
    (tmp_path / "read.sh").write_text(READ.replace("SERIAL", serial))

    first = json.loads(
        ok(
            vm_run(
                cloud,
                tmp_path,
                "tiny",
                *("--volume", "data", "--user-data", str(tmp_path / "write.sh")),
                name="writer",
            )
        ).stdout
    )["vms"][0]
    assert first["state"] == "done", first
    volume_file = cloud.agent.data_dir / "volumes" / f"{made['id']}.qcow2"
    assert volume_file.is_file()
    shown = json.loads(ok(cloud.cli(tmp_path, "-o", "json", "volume", "show", "data")).stdout)
    assert (shown["state"], shown["vm"], shown["host"]) == ("available", None, "testhost")

    second = json.loads(
        ok(
            vm_run(
                cloud,
                tmp_path,
                "tiny",
                *("--volume", "data", "--user-data", str(tmp_path / "read.sh")),
                name="reader",
            )
        ).stdout
    )["vms"][0]
    assert second["state"] == "done", second
    console = ok(cloud.cli(tmp_path, "vm", "console", second["id"])).stdout
    assert "volume says: gridvm-volume-ok" in console, console[-1500:]
    ok(cloud.cli(tmp_path, "vm", "results", second["id"], "-d", str(tmp_path / "r")))
    assert (tmp_path / "r" / "reader" / "read.txt").read_text() == "volume says: gridvm-volume-ok\n"

    # A stopped single-mode VM gets the volume from its next start.
    dev = json.loads(
        ok(
            vm_run(
                cloud,
                tmp_path,
                "tiny",
                *("--mode", "single", "--user-data", str(tmp_path / "read.sh")),
                name="dev",
            )
        ).stdout
    )["vms"][0]
    assert dev["state"] == "stopped", dev
    assert "no volume disk" in cloud.console(dev["id"])
    ok(cloud.cli(tmp_path, "vm", "attach", dev["id"], "data"))
    ok(cloud.cli(tmp_path, "vm", "start", dev["id"]))
    ok(cloud.cli(tmp_path, "vm", "wait", dev["id"], "--timeout", "5m"))
    assert "volume says: gridvm-volume-ok" in cloud.console(dev["id"]).split("no volume disk")[1]
    held = cloud.cli(tmp_path, "volume", "rm", "data")
    assert held.exit_code == 1 and "attached to VM" in held.stderr
    ok(cloud.cli(tmp_path, "vm", "detach", dev["id"], "data"))

    ok(cloud.cli(tmp_path, "volume", "rm", "data"))
    deadline = time.monotonic() + 30
    while cloud.cli(tmp_path, "volume", "show", "data").exit_code == 0:
        assert time.monotonic() < deadline, "the volume was not deleted"
        time.sleep(0.3)
    assert not volume_file.exists()
