"""The README's tour, through the `gridvm` command, with real guests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gridvm.cli.app import app
from tests.system.cloud import Cloud

pytestmark = pytest.mark.system


def gridvm(cloud: Cloud, tmp_path: Path, *args: str) -> tuple[int, str, str]:
    env = {
        "GRIDVM_URL": cloud.server.url,
        "GRIDVM_TOKEN": cloud.server.admin_token,
        "GRIDVM_CONFIG": str(tmp_path / "config.json"),
        "COLUMNS": "250",
    }
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def test_run_a_batch_wait_and_read_the_consoles(cloud: Cloud, tmp_path: Path) -> None:
    job = tmp_path / "job.sh"
    job.write_text('#!/bin/sh\necho "hello from $(hostname)"\n')
    code, out, err = gridvm(
        cloud,
        tmp_path,
        "-o",
        "json",
        "vm",
        "run",
        "tiny",
        "-n",
        "3",
        "--memory",
        "192M",
        "--user-data",
        str(job),
        "--walltime",
        "10m",
        "--name",
        "batch",
        "--wait",
        "--timeout",
        "5m",
    )
    assert code == 0, (out, err)
    vms = json.loads(out)
    vms = vms["vms"] if isinstance(vms, dict) else vms
    assert sorted(vm["state"] for vm in vms) == ["done"] * 3
    for vm in vms:
        code, console, _ = gridvm(cloud, tmp_path, "vm", "console", vm["id"])
        assert code == 0
        assert f"hello from {vm['name']}" in console


def test_a_failing_batch_exits_non_zero(cloud: Cloud, tmp_path: Path) -> None:
    job = tmp_path / "job.sh"
    job.write_text("#!/bin/sh\necho working\nsleep 600\n")
    code, out, err = gridvm(
        cloud,
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
    assert code == 1, (out, err)
    assert "expired" in out + err
