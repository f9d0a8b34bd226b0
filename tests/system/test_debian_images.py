"""debian-12-minimal and recipe builds on real guests, through the CLI.

The Debian template is built once (cached in build/starter, about a minute
the first time); each test runs a real server and agent with QEMU under TCG.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from gridvm.images.debian.template import build_debian_minimal
from tests.system.cloud import Cloud, run_cloud

pytestmark = [pytest.mark.system, pytest.mark.timeout(1200)]

MEMORY = "384M"

JOB = """#!/bin/sh
echo "hello from $(hostname) on $(. /etc/os-release; echo "$PRETTY_NAME"), row $GRIDVM_INDEX"
test -s /run/gridvm/token && echo "token: present"
gridvm-guest progress 50 "half way" && echo "channel: ok"
ls /sys/bus/virtio/drivers
echo "alpha=$alpha" > "$GRIDVM_OUTPUT/out.txt"
"""


@pytest.fixture(scope="module")
def debian_starter(starter_dir: Path) -> Path:
    build_debian_minimal(starter_dir)
    return starter_dir


@pytest.fixture
def debian_cloud(tmp_path_factory: pytest.TempPathFactory, debian_starter: Path) -> Iterator[Cloud]:
    with run_cloud(tmp_path_factory.mktemp("d"), debian_starter) as running:
        yield running


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def first_vms(result: Result) -> list[dict[str, Any]]:
    """The VMs of ``gridvm -o json vm run`` (a deployment, or its VMs after --wait)."""
    data = json.loads(result.stdout)
    vms: list[dict[str, Any]] = data["vms"] if isinstance(data, dict) else data
    return vms


def first_vm(result: Result) -> dict[str, Any]:
    return first_vms(result)[0]


def test_debian_vm_runs_user_data_reports_ready_and_returns_results(
    debian_cloud: Cloud, tmp_path: Path
) -> None:
    cloud = debian_cloud
    (tmp_path / "job.sh").write_text(JOB)
    (tmp_path / "params.csv").write_text("alpha\n0.5\n")
    started = time.monotonic()
    ran = ok(
        cloud.cli(
            tmp_path,
            *("-o", "json", "vm", "run", "debian-12-minimal"),
            *("--user-data", str(tmp_path / "job.sh")),
            *("--param-file", str(tmp_path / "params.csv")),
            *("--memory", MEMORY, "--name", "deb", "--wait", "--timeout", "10m"),
        )
    )
    elapsed = time.monotonic() - started
    vm = first_vm(ran)
    shown = cloud.vm(vm["id"])
    assert shown["state"] == "done", shown
    assert shown["exit_status"] == 0
    console = cloud.console(vm["id"]).replace("\r", "")
    assert "gridvm-guest: ready" in console, console
    assert f"hello from {vm['name']} on Debian GNU/Linux 12 (bookworm), row 0" in console
    assert "token: present" in console and "channel: ok" in console
    assert "virtio_net" in console  # loaded by udev from the module tree in the root
    assert "gridvm-guest: user-data exited with status 0" in console
    assert "gridvm-guest: results written" in console
    assert shown["ready_at"] is not None  # reported over the guest channel
    assert shown["progress_message"] == "half way"
    ok(cloud.cli(tmp_path, "vm", "results", vm["id"], "-d", str(tmp_path / "r")))
    assert (tmp_path / "r" / vm["name"] / "out.txt").read_text() == "alpha=0.5\n"
    print(f"debian-12-minimal: run to done in {elapsed:.1f} s")


def test_debian_vm_stops_cleanly_on_the_power_button(debian_cloud: Cloud, tmp_path: Path) -> None:
    cloud = debian_cloud
    ran = ok(
        cloud.cli(
            tmp_path,
            *("-o", "json", "vm", "run", "debian-12-minimal", "--mode", "single"),
            *("--memory", MEMORY, "--name", "dev"),
        )
    )
    vm = first_vm(ran)
    started = time.monotonic()
    cloud.wait_console(vm["id"], "gridvm-guest: ready", timeout=180)
    print(f"debian-12-minimal: boot to ready in {time.monotonic() - started:.1f} s")
    cloud.wait(vm["id"], {"running"})
    cloud.wait_console(vm["id"], "root@dev:~#", timeout=60)  # the console's root shell
    echoed = cloud.cli(
        tmp_path, "vm", "console", vm["id"], "--attach", stdin="echo marker-$((6 * 7))\n"
    )
    assert echoed.exit_code == 0, echoed.stderr
    cloud.wait_console(vm["id"], "marker-42", timeout=60)
    ok(cloud.cli(tmp_path, "vm", "stop", vm["id"]))
    stopped = cloud.wait(vm["id"], {"stopped"}, timeout=120)
    assert stopped["exit_reason"] == "stopped on request"
    console = cloud.console(vm["id"])
    assert "gridvm-guest: power button pressed, shutting down" in console
    assert "reboot: Power down" in console


RECIPE = """\
name: with-jq
template: debian-12-minimal
description: debian-12-minimal with jq
packages: [jq]
"""


def test_recipe_build_then_boot_the_image(debian_cloud: Cloud, tmp_path: Path) -> None:
    cloud = debian_cloud
    (tmp_path / "recipe.yaml").write_text(RECIPE)
    started = time.monotonic()
    built = ok(cloud.cli(tmp_path, "image", "build", str(tmp_path / "recipe.yaml")))
    print(f"recipe build (jq) in {time.monotonic() - started:.1f} s")
    assert "class certified" in built.stdout
    image = json.loads(ok(cloud.cli(tmp_path, "-o", "json", "image", "show", "with-jq")).stdout)
    assert image["trust"] == "certified"
    log = ok(cloud.cli(tmp_path, "image", "build-log", "with-jq")).stdout
    assert "Unpacking jq" in log or "jq" in log
    (tmp_path / "job.sh").write_text(
        '#!/bin/sh\necho "{\\"a\\": 41}" | jq -M ".a + 1"\njq --version\n'
    )
    ran = ok(
        cloud.cli(
            tmp_path,
            *("-o", "json", "vm", "run", "with-jq", "--user-data", str(tmp_path / "job.sh")),
            *("--memory", MEMORY, "--name", "jq", "--wait", "--timeout", "10m"),
        )
    )
    vm = first_vm(ran)
    console = cloud.console(vm["id"]).replace("\r", "")
    assert "\n42\n" in console, console[-1500:]
    assert "jq-1.6" in console
    assert "user-data exited with status 0" in console


def test_bad_recipes_fail_in_the_cli_before_anything_is_sent(
    debian_cloud: Cloud, tmp_path: Path
) -> None:
    cloud = debian_cloud
    (tmp_path / "bad.yaml").write_text("name: x\ntemplate: debian-12-minimal\npackges: [jq]\n")
    result = cloud.cli(tmp_path, "image", "build", str(tmp_path / "bad.yaml"))
    assert result.exit_code == 1
    assert "packges: unknown key" in result.stderr
    (tmp_path / "broken.yaml").write_text("name: [x\n")
    result = cloud.cli(tmp_path, "image", "build", str(tmp_path / "broken.yaml"))
    assert result.exit_code == 1 and "is not valid YAML" in result.stderr
    assert cloud.admin.get("/api/v1/builds").json() == []


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_example_2_bioinformatics_image_runs_a_two_task_scan(
    debian_cloud: Cloud, tmp_path: Path
) -> None:
    """examples/bioinformatics.yaml with the command lines its header shows."""
    cloud = debian_cloud
    started = time.monotonic()
    built = ok(cloud.cli(tmp_path, "image", "build", str(EXAMPLES / "bioinformatics.yaml")))
    build_s = time.monotonic() - started
    assert "class certified" in built.stdout
    started = time.monotonic()
    ran = cloud.cli(
        tmp_path,
        *("-o", "json", "vm", "run", "bioinformatics"),
        *("--param-file", str(EXAMPLES / "bioinformatics-params.csv")),
        *("--user-data", str(EXAMPLES / "bioinformatics-scan.sh")),
        *("--memory", "512M", "--name", "align", "--wait", "--timeout", "15m"),
    )
    if ran.exit_code != 0:
        consoles = [cloud.console(vm["id"])[-1500:] for vm in first_vms(ran)]
        raise AssertionError(f"{ran.stderr}\n" + "\n---\n".join(consoles))
    scan_s = time.monotonic() - started
    deployment = first_vms(ran)[0]["deployment"]
    ok(cloud.cli(tmp_path, "vm", "results", deployment, "-d", str(tmp_path / "results")))
    summaries = {
        path.parent.name: path.read_text()
        for path in (tmp_path / "results").glob("align-*/summary.txt")
    }
    assert sorted(summaries) == ["align-0", "align-1"], summaries
    assert "error rate: 0.01" in summaries["align-0"]
    assert "error rate: 0.08" in summaries["align-1"]
    for summary in summaries.values():
        assert "simulated bases: 200000" in summary
        assert "reads mapped: " in summary and " of 2000" in summary
        assert "bwa: 0.7.17" in summary and "samtools 1.16.1" in summary
    print(f"bioinformatics: build {build_s:.1f} s, 2-task scan {scan_s:.1f} s")
    print(summaries)
