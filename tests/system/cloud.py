"""A one-host gridvm for system tests: a server in this process, an agent in its own process.

The agent is a separate process so that a test can kill and restart it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner, Result

from gridvm.cli.app import app
from gridvm.common.config import SiteLimits
from tests.servers import RunningServer, run_server

FINAL = {"done", "failed", "cancelled", "expired", "stopped"}


@dataclass
class AgentProcess:
    server: RunningServer
    data_dir: Path
    name: str
    extra_args: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.name}.log"

    def start(self) -> None:
        token_file = self.server.data_dir / "agent.token"
        log = self.log_path.open("ab")
        env = {**os.environ, "GRIDVM_ACCEL": "tcg"}
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gridvm.main",
                "agent",
                "--server",
                self.server.url,
                "--token-file",
                str(token_file),
                "--data-dir",
                str(self.data_dir),
                "--name",
                self.name,
                "--cores",
                "8",
                "--memory",
                "4G",
                "--poll-interval",
                "0.3",
                # The one-host test cloud keeps QEMU user-mode networking, so tests that are not
                # about the network change nothing on the machine; site networking (the agent's
                # default) has its own tests: test_site_network.py and the multi-host test bed.
                "--network",
                "user",
                *self.extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        log.close()

    def kill(self) -> None:
        """SIGKILL: the agent gets no chance to tidy up (its VMs must survive)."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class Cloud:
    server: RunningServer
    agent: AgentProcess
    admin: httpx.Client

    def run(self, **body: Any) -> list[dict[str, Any]]:
        response = self.admin.post("/api/v1/vms", json={"image": "tiny", "memory_mb": 192, **body})
        assert response.status_code == 201, response.text
        vms: list[dict[str, Any]] = response.json()["vms"]
        return vms

    def vm(self, vm_id: str) -> dict[str, Any]:
        body: dict[str, Any] = self.admin.get(f"/api/v1/vms/{vm_id}").json()
        return body

    def wait(self, vm_id: str, states: set[str], timeout: float = 90.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            vm = self.vm(vm_id)
            if vm["state"] in states:
                return vm
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"VM {vm_id} is {vm['state']}, not {sorted(states)}, after {timeout}s\n"
                    f"console:\n{self.console(vm_id)}\nagent log:\n{self.agent.log_text()[-4000:]}"
                )
            time.sleep(0.25)

    def wait_console(self, vm_id: str, text: str, timeout: float = 90.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            console = self.console(vm_id)
            if text in console:
                return console
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{text!r} not in the console of {vm_id} ({self.vm(vm_id)}):\n{console}\n"
                    f"agent log:\n{self.agent.log_text()[-3000:]}"
                )
            time.sleep(0.25)

    def cli(self, home: Path, *args: str, stdin: str | None = None) -> Result:
        """``gridvm ARGS`` as the admin, in this process, against this cloud."""
        env = {
            "GRIDVM_URL": self.server.url,
            "GRIDVM_TOKEN": self.server.admin_token,
            "GRIDVM_CONFIG": str(home / "config.json"),
            "COLUMNS": "250",
        }
        return CliRunner().invoke(app, list(args), env=env, input=stdin)

    def console(self, vm_id: str) -> str:
        return self.admin.get(f"/api/v1/vms/{vm_id}/console").text

    def vm_dir(self, vm_id: str) -> Path:
        return self.agent.data_dir / "vms" / vm_id


def qemu_pids(vm_id: str) -> list[int]:
    """Pids of QEMU processes running VM ``vm_id`` (found by their -name)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            continue
        if any(arg.startswith(f"gridvm-{vm_id}".encode()) for arg in cmdline):
            pids.append(int(entry.name))
    return pids


@contextmanager
def run_cloud(
    tmp: Path,
    starter_dir: Path,
    *,
    limits: SiteLimits | None = None,
    agent_args: list[str] | None = None,
) -> Iterator[Cloud]:
    with run_server(tmp / "server", starter_dir=starter_dir, limits=limits) as server:
        agent = AgentProcess(server, tmp / "agent", "testhost", agent_args or [])
        agent.start()
        try:
            deadline = time.monotonic() + 30
            admin = server.client()
            while not admin.get("/api/v1/hosts").json():
                if time.monotonic() > deadline:
                    raise AssertionError("agent did not register:\n" + agent.log_text())
                time.sleep(0.1)
            yield Cloud(server, agent, admin)
        finally:
            for vm in server.client().get("/api/v1/vms", params={"all": True}).json():
                if vm["state"] not in ("done", "failed", "cancelled", "expired"):
                    server.client().post(f"/api/v1/vms/{vm['id']}/terminate")
            _wait_no_qemu(server, agent)
            agent.stop()


def _wait_no_qemu(server: RunningServer, agent: AgentProcess, timeout: float = 20) -> None:
    """Give the agent time to end the VMs terminated above; kill any that remain."""
    vm_dirs = agent.data_dir / "vms"
    deadline = time.monotonic() + timeout
    ids = [p.name for p in vm_dirs.iterdir()] if vm_dirs.exists() else []
    while time.monotonic() < deadline and any(qemu_pids(i) for i in ids):
        time.sleep(0.2)
    for vm_id in ids:
        for pid in qemu_pids(vm_id):
            os.kill(pid, signal.SIGKILL)
