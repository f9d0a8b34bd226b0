"""Options of ``gridvm server`` and ``gridvm agent`` that are refused before anything starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import gridvm.main  # noqa: F401 - adds the daemon commands to the app
from gridvm.cli.app import app
from gridvm.common.config import SchedulingSettings
from gridvm.common.errors import InvalidInput
from gridvm.scheduler import FairShareAlgorithm
from gridvm.services.server import policy_of


@pytest.mark.usefixtures("logging_restored")
@pytest.mark.parametrize("label", ["site", "=a", "9x=1", "site="])
def test_a_bad_host_label_stops_the_agent_with_the_reason(label: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["agent", "--server", "http://127.0.0.1:9", "--data-dir", str(tmp_path), "--label", label],
        env={"GRIDVM_AGENT_TOKEN": "gvm_x"},
    )
    assert result.exit_code == 1
    assert "expected KEY=VALUE" in result.stderr


@pytest.mark.usefixtures("logging_restored")
def test_an_unknown_zone_stops_the_agent_with_the_reason(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["agent", "--server", "http://127.0.0.1:9", "--data-dir", str(tmp_path), "--zone", "lab"],
        env={"GRIDVM_AGENT_TOKEN": "gvm_x"},
    )
    assert result.exit_code == 1
    assert "--zone 'lab': the zones are trusted and dmz" in result.stderr


def test_the_servers_scheduling_options_make_its_policy() -> None:
    policy = policy_of(SchedulingSettings(fairshare="fair-tree", half_life_s=3600, pack=True))
    assert policy.fairshare == FairShareAlgorithm.fair_tree
    assert (policy.half_life_s, policy.spread, policy.backfill) == (3600, -1.0, True)
    with pytest.raises(InvalidInput, match="unknown fair-share algorithm 'fifo'"):
        policy_of(SchedulingSettings(fairshare="fifo"))
    with pytest.raises(InvalidInput, match="half-life must be positive"):
        policy_of(SchedulingSettings(half_life_s=0))


@pytest.mark.usefixtures("logging_restored")
@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--build-workers", "0"], "0 build workers: at least one is needed"),
        (["--certified-repo", "ftp://mirror/debian"], "is not a Debian mirror URL"),
        (["--zone-egress", "10.0.0.53:53"], "write ZONE=ADDRESS:PORT"),
        (["--zone-egress", "lab=10.0.0.53:53"], "zone egress for 'lab'"),
        (["--zone-egress", "dmz=10.0.0.53"], "is not of the form ADDRESS:PORT"),
    ],
)
def test_bad_server_options_stop_the_server_with_the_reason(
    option: list[str], message: str, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        app, ["server", "--data-dir", str(tmp_path), "--listen", "127.0.0.1:9", *option]
    )
    assert result.exit_code == 1
    assert message in result.stderr


@pytest.mark.usefixtures("logging_restored")
@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--network", "bridge"], "--network 'bridge': choose user or site"),
        (["--zone-subnet", "lab=10.1.0.0/24"], "write ZONE=CIDR with ZONE trusted or dmz"),
        (
            ["--network", "site", "--zone-subnet", "trusted=10.64.0.5/24"],
            "subnet '10.64.0.5/24' of zone trusted is not an IPv4 network",
        ),
        (
            ["--network", "site", "--zone-subnet", "dmz=10.64.0.0/25"],
            "subnets of zones dmz (10.64.0.0/25) and trusted (10.64.0.0/24) overlap",
        ),
    ],
)
def test_bad_network_options_stop_the_agent_with_the_reason(
    option: list[str], message: str, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        app,
        ["agent", "--server", "http://127.0.0.1:9", "--data-dir", str(tmp_path), *option],
        env={"GRIDVM_AGENT_TOKEN": "gvm_x"},
    )
    assert result.exit_code == 1
    assert message in result.stderr


@pytest.mark.usefixtures("logging_restored")
@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--network", "bridge"], "--network 'bridge': choose user or site"),
        (["--network", "site", "--zone-egress", "lab=10.0.0.53:53"], "zone egress for 'lab'"),
    ],
)
def test_bad_network_options_stop_gridvm_up_before_it_starts(
    option: list[str], message: str, tmp_path: Path
) -> None:
    result = CliRunner().invoke(app, ["up", "--data-dir", str(tmp_path / "up"), *option])
    assert result.exit_code == 1
    assert message in result.stderr
    assert not (tmp_path / "up").exists()


def test_the_agent_puts_vms_on_site_networking_by_default_and_says_it_needs_root(
    tmp_path: Path,
) -> None:
    """Run as an unprivileged user, a plain ``gridvm agent`` refuses to start and says why:
    site networking is its default, and --network user is the way out."""
    tmp_path.chmod(0o777)
    result = subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
            sys.executable,
            "-m",
            "gridvm.main",
            "agent",
            "--server",
            "http://127.0.0.1:9",
            "--data-dir",
            str(tmp_path / "agent"),
        ],
        env={**os.environ, "GRIDVM_AGENT_TOKEN": "gvm_x"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "site networking (the agent's default) needs root" in result.stderr
    assert "--network user" in result.stderr
    assert not (tmp_path / "agent").exists()  # nothing made
