"""The README's example journeys, through the `gridvm` command, on real guests."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import Result

from tests.system.cloud import Cloud

pytestmark = pytest.mark.system

SCAN = """#!/bin/sh
echo "rate=$RATE attempt=$GRIDVM_ATTEMPT licence=$(cat $GRIDVM_SECRETS/licence)"
echo "$RATE" > "$GRIDVM_OUTPUT/rate.txt"
# The 'flaky' row fails on its first attempt only.
[ "$RATE" = flaky ] && [ "$GRIDVM_ATTEMPT" = 1 ] && exit 1
exit 0
"""


def vm_run(
    cloud: Cloud, home: Path, image: str, *options: str, name: str, wait: bool = True
) -> Result:
    """``gridvm -o json vm run IMAGE OPTIONS --memory 192M --name NAME`` (+ ``--wait``)."""
    args = ["-o", "json", "vm", "run", image, *options, "--memory", "192M", "--name", name]
    if wait:
        args += ["--wait", "--timeout", "10m"]
    return cloud.cli(home, *args)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def test_journey_1_a_scan_with_results_and_a_failed_row_redeployed(
    cloud: Cloud, tmp_path: Path
) -> None:
    rows = ["1", "2", "3", "flaky", "5", "6", "7", "8"]
    (tmp_path / "params.csv").write_text("RATE\n" + "\n".join(rows) + "\n")
    (tmp_path / "scan.sh").write_text(SCAN)
    ok(cloud.cli(tmp_path, "secret", "create", "licence", "-", stdin="KEY-7"))
    ran = vm_run(
        cloud,
        tmp_path,
        "tiny",
        *("--param-file", str(tmp_path / "params.csv")),
        *("--user-data", str(tmp_path / "scan.sh")),
        *("--secret", "licence"),
        name="scan",
    )
    assert ran.exit_code == 1, (ran.stdout, ran.stderr)  # one row failed
    vms = json.loads(ok(cloud.cli(tmp_path, "-o", "json", "vm", "list")).stdout)
    deployment = vms[0]["deployment"]
    assert sorted(vm["state"] for vm in vms) == ["done"] * 7 + ["failed"]
    failed = next(vm for vm in vms if vm["state"] == "failed")
    assert failed["name"] == "scan-3" and failed["exit_status"] == 1
    ok(cloud.cli(tmp_path, "deployment", "redeploy-failed", deployment))
    ok(cloud.cli(tmp_path, "deployment", "wait", deployment, "--timeout", "5m"))
    console = ok(cloud.cli(tmp_path, "vm", "console", failed["id"])).stdout
    assert "rate=flaky attempt=2 licence=KEY-7" in console
    ok(cloud.cli(tmp_path, "vm", "results", deployment, "-d", str(tmp_path / "results")))
    for index, rate in enumerate(rows):
        assert (tmp_path / "results" / f"scan-{index}" / "rate.txt").read_text() == f"{rate}\n"


CLUSTER = """#!/bin/sh
case "$GRIDVM_ROLE" in
head)
    gridvm-guest publish export /srv/data
    gridvm-guest peers all 300 > "$GRIDVM_OUTPUT/workers.txt"
    echo "head: $(wc -l < "$GRIDVM_OUTPUT/workers.txt") workers joined"
    ;;
worker)
    head=$(gridvm-guest peers required 300 | awk '$2 == "head" {print $1}')
    echo "worker $(hostname): head is $head, export $(gridvm-guest get "$head" export 60)"
    ;;
esac
"""


def test_journey_2_a_head_and_two_workers_find_each_other(cloud: Cloud, tmp_path: Path) -> None:
    (tmp_path / "cluster.sh").write_text(CLUSTER)
    ran = vm_run(
        cloud,
        tmp_path,
        "tiny",
        *("--role", "head:1:provides=nfs,torque"),
        *("--role", "worker:2:requires=torque"),
        *("--user-data", str(tmp_path / "cluster.sh")),
        name="cluster",
    )
    assert ran.exit_code == 0, (ran.stdout, ran.stderr)
    vms = {
        vm["name"]: vm
        for vm in json.loads(ok(cloud.cli(tmp_path, "-o", "json", "vm", "list")).stdout)
    }
    assert sorted(vms) == ["cluster-head-0", "cluster-worker-0", "cluster-worker-1"]
    head = ok(cloud.cli(tmp_path, "vm", "console", vms["cluster-head-0"]["id"])).stdout
    assert "head: 2 workers joined" in head, head[-1500:].replace("\n", "|")
    ok(cloud.cli(tmp_path, "vm", "results", vms["cluster-head-0"]["id"], "-d", str(tmp_path / "r")))
    workers = (tmp_path / "r" / "cluster-head-0" / "workers.txt").read_text().splitlines()
    assert workers == [
        "cluster-worker-0 worker cluster-worker-0 10.0.2.15 ready",
        "cluster-worker-1 worker cluster-worker-1 10.0.2.15 ready",
    ]
    for name in ("cluster-worker-0", "cluster-worker-1"):
        console = ok(cloud.cli(tmp_path, "vm", "console", vms[name]["id"])).stdout
        assert f"worker {name}: head is cluster-head-0, export /srv/data" in console


CUSTOMISE = (
    "mkdir -p /opt/tool && echo 'calibration 42' > /opt/tool/config && sync"
    " && echo customised-$((40+2))\n"
)
USE_TOOL = '#!/bin/sh\necho "$(cat /opt/tool/config) x $FACTOR" > "$GRIDVM_OUTPUT/out.txt"\n'


def wait_for_prompt(cloud: Cloud, vm_id: str, boot: int) -> None:
    """Until the shell of the VM's ``boot``-th boot has printed its prompt (the log goes on
    across boots of a single-mode VM)."""
    deadline = time.monotonic() + 120
    while True:
        boots = cloud.console(vm_id).split("gridvm-guest: ready")
        if len(boots) > boot and "root@dev:" in boots[boot]:
            return
        assert time.monotonic() < deadline, cloud.console(vm_id)
        time.sleep(0.5)


def test_journey_3_a_single_mode_vm_customised_through_its_console_saved_then_scanned(
    cloud: Cloud, tmp_path: Path
) -> None:
    ran = vm_run(cloud, tmp_path, "tiny", "--mode", "single", name="dev", wait=False)
    vm_id = json.loads(ok(ran).stdout)["vms"][0]["id"]
    cloud.wait(vm_id, {"running"})
    wait_for_prompt(cloud, vm_id, boot=1)
    # Customise it by hand through its console (piped here; a person would type it).
    typed = ok(
        cloud.cli(tmp_path, "vm", "console", vm_id, "--attach", "--linger", "10", stdin=CUSTOMISE)
    )
    assert "customised-42" in typed.stdout
    # Stopped and started again, it keeps the change.
    ok(cloud.cli(tmp_path, "vm", "stop", vm_id))
    ok(cloud.cli(tmp_path, "vm", "wait", vm_id, "--timeout", "5m"))
    ok(cloud.cli(tmp_path, "vm", "start", vm_id))
    cloud.wait(vm_id, {"running"})
    wait_for_prompt(cloud, vm_id, boot=2)
    shown = ok(
        cloud.cli(
            tmp_path,
            "vm",
            "console",
            vm_id,
            "--attach",
            "--linger",
            "10",
            stdin="cat /opt/tool/config\n",
        )
    )
    assert "\ncalibration 42\n" in shown.stdout
    # Stopped, its disk becomes a private image...
    ok(cloud.cli(tmp_path, "vm", "stop", vm_id))
    ok(cloud.cli(tmp_path, "vm", "wait", vm_id, "--timeout", "5m"))
    saved = ok(cloud.cli(tmp_path, "-o", "json", "vm", "save", vm_id, "--name", "calibrated"))
    image = json.loads(saved.stdout)
    assert (image["name"], image["visibility"]) == ("calibrated", "private")
    # ... that a scan runs on.
    (tmp_path / "params.csv").write_text("FACTOR\n1\n2\n")
    (tmp_path / "use.sh").write_text(USE_TOOL)
    scan = vm_run(
        cloud,
        tmp_path,
        "calibrated",
        *("--param-file", str(tmp_path / "params.csv")),
        *("--user-data", str(tmp_path / "use.sh")),
        name="scan",
    )
    deployment = json.loads(ok(scan).stdout)
    assert sorted(vm["state"] for vm in deployment["vms"]) == ["done", "done"]
    ok(cloud.cli(tmp_path, "vm", "results", deployment["id"], "-d", str(tmp_path / "results")))
    for index, factor in enumerate(("1", "2")):
        out = tmp_path / "results" / f"scan-{index}" / "out.txt"
        assert out.read_text() == f"calibration 42 x {factor}\n"


def test_run_a_batch_wait_and_read_the_consoles(cloud: Cloud, tmp_path: Path) -> None:
    job = tmp_path / "job.sh"
    job.write_text('#!/bin/sh\necho "hello from $(hostname)"\n')
    ran = vm_run(
        cloud, tmp_path, "tiny", "-n", "3", "--user-data", str(job), "--walltime", "10m",
        name="batch",
    )  # fmt: skip
    # With --wait, -o json prints the deployment as it ended.
    vms = json.loads(ok(ran).stdout)["vms"]
    assert sorted(vm["state"] for vm in vms) == ["done"] * 3
    for vm in vms:
        console = ok(cloud.cli(tmp_path, "vm", "console", vm["id"])).stdout
        assert f"hello from {vm['name']}" in console


def test_a_failing_batch_exits_non_zero(cloud: Cloud, tmp_path: Path) -> None:
    job = tmp_path / "job.sh"
    job.write_text("#!/bin/sh\necho working\nsleep 600\n")
    ran = cloud.cli(
        tmp_path,
        "vm",
        "run",
        "tiny",
        "--memory",
        "192M",
        "--user-data",
        str(job),
        "--walltime",
        "3s",
        "--wait",
        "--timeout",
        "5m",
    )
    # The script outlives its 3 s walltime: the VM expires, and --wait says so.
    assert ran.exit_code == 1, (ran.stdout, ran.stderr)
    assert "expired" in ran.stdout + ran.stderr
