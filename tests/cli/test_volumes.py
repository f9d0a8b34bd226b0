"""``gridvm volume ...`` and the volume options of ``gridvm vm``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import Cli


@pytest.fixture
def image(cli: Cli, qcow2: Path) -> str:
    cli.ok("image", "upload", str(qcow2), "--name", "base")
    return "base"


def test_volume_create_list_show_and_rm(cli: Cli) -> None:
    made = cli.ok("volume", "create", "scratch", "--size", "2G").stdout
    assert "volume scratch" in made and "2 GiB" in made and "--volume scratch" in made
    listing = cli.ok("volume", "list").stdout
    assert "scratch" in listing and "available" in listing
    shown = cli.json("volume", "show", "scratch")
    assert (shown["size_bytes"], shown["serial"]) == (2 * 1024**3, shown["id"])
    text = cli.ok("volume", "show", shown["id"]).stdout
    assert f"serial {shown['id']}" in text
    assert "volume scratch deleted" in cli.ok("volume", "rm", "scratch").stdout
    assert "no volumes" in cli.ok("volume", "list").stderr + cli.ok("volume", "list").stdout
    assert "no volume 'scratch'" in cli.fails("volume", "show", "scratch")


def test_bad_volume_sizes_and_quotas_fail_cleanly(cli: Cli) -> None:
    assert "'big' is not a size" in cli.fails("volume", "create", "v", "--size", "big")
    cli.ok("quota", "set", "--user", "admin", "--image-storage", "1G")
    line = cli.fails("volume", "create", "v", "--size", "2G")
    assert "storage quota: user admin may store 1 GiB of images and volumes" in line
    assert cli.json("volume", "list") == []
    cli.ok("volume", "create", "v", "--size", "512M")
    assert "(512 MiB volumes)" in cli.ok("quota", "show").stdout


def test_vm_run_with_a_volume_and_the_refusals(cli: Cli, image: str) -> None:
    cli.ok("volume", "create", "data", "--size", "1G")
    vm = cli.json("vm", "run", image, "--volume", "data", "--mode", "single")["vms"][0]
    assert vm["volumes"] == ["data"]
    assert "volumes" in cli.ok("vm", "show", vm["id"]).stdout
    assert f"attached to VM {vm['id']}" in cli.fails("vm", "run", image, "--volume", "data")
    cli.ok("volume", "create", "other", "--size", "1G")
    assert "a volume attaches to one VM" in cli.fails(
        "vm", "run", image, "--volume", "other", "-n", "2"
    )
    assert "attached to VM" in cli.fails("volume", "rm", "data")
    # Not stopped (it waits for a host): attach and detach are refused.
    assert "state pending" in cli.fails("vm", "attach", vm["id"], "other")
    assert "state pending" in cli.fails("vm", "detach", vm["id"], "data")
    # Ending the VM frees its volume.
    cli.ok("vm", "terminate", vm["id"])
    assert cli.json("volume", "show", "data")["state"] == "available"
    assert len(cli.json("vm", "list")) == 1
