"""scripts/testbed.py (make testbed-up / testbed-down): the demo bed comes up usable from the
CLI, and going down leaves no namespace, process or file behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "testbed.py"

pytestmark = [pytest.mark.system, pytest.mark.timeout(300)]


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in args:
            found.append(args)
    return found


def test_up_gives_a_bed_the_cli_can_use_and_down_leaves_nothing(tmp_path: Path) -> None:
    work = tmp_path / "bed"
    run = [sys.executable, str(SCRIPT)]
    up = subprocess.run(
        [*run, "up", "--dir", str(work)], capture_output=True, text=True, timeout=180
    )
    try:
        assert up.returncode == 0, up.stderr
        state = json.loads((work / "state.json").read_text())
        assert f"ip netns exec {state['hosts']['host1']} " in up.stdout
        env = dict(os.environ)
        for line in (work / "env").read_text().splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            env[key] = value
        hosts = subprocess.run(
            [str(REPO / ".venv" / "bin" / "gridvm"), "-o", "json", "host", "list"],
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
            check=True,
        )
        assert {h["name"] for h in json.loads(hosts.stdout)} == {"host1", "host2"}
        assert _processes_mentioning(str(work))  # the agents run from the bed's directory
        again = subprocess.run([*run, "up", "--dir", str(work)], capture_output=True, text=True)
        assert again.returncode == 1
        assert "already up" in again.stderr
    finally:
        down = subprocess.run(
            [*run, "down", "--dir", str(work)], capture_output=True, text=True, timeout=120
        )
    assert down.returncode == 0, down.stderr
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not any(ns in listed for ns in state["namespaces"]), listed
    assert _processes_mentioning(str(work)) == []
    assert not work.exists()
