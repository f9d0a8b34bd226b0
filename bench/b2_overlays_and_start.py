"""B2: copy-on-write overlay creation, and API request to QEMU running for 8 VMs at once.

Part 1 times ``create_overlay`` over sparse 1, 10 and 100 GiB qcow2 bases.
Part 2 starts a real one-host gridvm (``gridvm up`` in a child process, SQLite),
warms the image cache with one VM, then asks for 8 VMs in one request and
records, per VM, the time from the request to its QEMU process existing. For
comparison, the same 8 QEMU command lines (same overlays, seed ISOs, kernel)
are started by hand, all at once, and timed the same way.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from bench.report import publish, summary
from gridvm.hypervisor.qemu_argv import build_argv
from gridvm.hypervisor.spec import MachineSpec
from gridvm.images.formats import create_overlay

REPO = Path(__file__).resolve().parents[1]
COUNT = 8
SLEEPER = "#!/bin/sh\nsleep 600\n"


def overlay_times(work: Path, runs: int = 20) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for gib in (1, 10, 100):
        base = work / f"base-{gib}.qcow2"
        subprocess.run(
            ["qemu-img", "create", "-q", "-f", "qcow2", str(base), f"{gib}G"], check=True
        )
        times = []
        for i in range(runs):
            overlay = work / f"ov-{gib}-{i}.qcow2"
            start = time.perf_counter()
            create_overlay(base, overlay)
            times.append(time.perf_counter() - start)
        s = summary(times)
        rows.append(
            {
                "what": f"overlay on {gib} GiB base (s)",
                "n": runs,
                "p50": s["p50"],
                "p95": s["p95"],
                "max": s["max"],
            }
        )
    return rows


def _qemu_pid_for(name: str) -> bool:
    needle = name.encode()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                if needle in f.read():
                    return True
        except OSError:
            continue
    return False


def _watch(names: list[str], started: float, timeout: float = 120) -> dict[str, float]:
    seen: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while len(seen) < len(names) and time.monotonic() < deadline:
        for name in names:
            if name not in seen and _qemu_pid_for(name):
                seen[name] = time.perf_counter() - started
        time.sleep(0.005)
    return seen


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def api_to_qemu(work: Path) -> tuple[list[float], list[dict[str, object]]]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    data = work / "gridvm"
    env = {**os.environ, "GRIDVM_ACCEL": os.environ.get("GRIDVM_ACCEL", "tcg")}
    log = (work / "up.log").open("wb")
    up = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gridvm.main",
            "up",
            "--data-dir",
            str(data),
            "--listen",
            f"127.0.0.1:{port}",
            "--starter-dir",
            str(REPO / "build" / "starter"),
            "--cores",
            "32",
            "--memory",
            "8G",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if (
                    httpx.get(f"{url}/api/v1/health").status_code == 200
                    and (data / "admin.token").exists()
                ):
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("gridvm up did not start: see " + str(work / "up.log"))
            time.sleep(0.1)
        token = (data / "admin.token").read_text().strip()
        api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60)
        while not api.get("/api/v1/hosts").json():
            time.sleep(0.1)
        warm = api.post(
            "/api/v1/vms",
            json={"image": "tiny", "memory_mb": 128, "user_data": "#!/bin/sh\ntrue\n"},
        ).json()["vms"][0]
        while api.get(f"/api/v1/vms/{warm['id']}").json()["state"] not in ("done", "failed"):
            time.sleep(0.2)
        started = time.perf_counter()
        made = api.post(
            "/api/v1/vms",
            json={"image": "tiny", "count": COUNT, "memory_mb": 128, "user_data": SLEEPER},
        )
        ids = [vm["id"] for vm in made.json()["vms"]]
        seen = _watch([f"gridvm-{i}" for i in ids], started)
        for vm_id in ids:
            api.post(f"/api/v1/vms/{vm_id}/terminate")
        specs = _hand_specs(data / "agent", ids, work)
        return list(seen.values()), specs
    finally:
        time.sleep(3)
        up.terminate()
        up.wait(timeout=30)
        log.close()


def _hand_specs(agent_dir: Path, ids: list[str], work: Path) -> list[dict[str, object]]:
    """Describe QEMU runs equivalent to the agent's, on fresh overlays, for the by-hand run."""
    tiny = REPO / "build" / "starter" / "tiny"

    def cached(name: str) -> Path:
        digest = hashlib.sha256((tiny / name).read_bytes()).hexdigest()
        return agent_dir / "cache" / digest / "blob"

    return [
        {
            "base": cached("disk.qcow2"),
            "kernel": cached("vmlinuz"),
            "initrd": cached("initrd.img"),
            "work": work / f"hand-{i}",
        }
        for i in range(len(ids))
    ]


def by_hand(runs: list[dict[str, object]]) -> list[float]:
    import json

    manifest = json.loads((REPO / "build" / "starter" / "tiny" / "manifest.json").read_text())
    argvs = []
    for i, run in enumerate(runs):
        work = Path(str(run["work"]))
        work.mkdir(parents=True)
        disk = work / "disk.qcow2"
        create_overlay(Path(str(run["base"])), disk)
        spec = MachineSpec(
            vm_id=f"hand{i}",
            vcpus=1,
            memory_mb=128,
            disk=disk,
            accelerator="tcg",
            run_dir=work,
            kernel=Path(str(run["kernel"])),
            initrd=Path(str(run["initrd"])),
            kernel_cmdline=manifest["kernel_cmdline"],
        )
        argvs.append(build_argv(spec))
    started = time.perf_counter()
    threads = [
        threading.Thread(target=subprocess.run, args=(argv,), kwargs={"check": True})
        for argv in argvs
    ]
    for t in threads:
        t.start()
    seen = _watch([f"gridvm-hand{i}" for i in range(len(argvs))], started)
    for t in threads:
        t.join()
    for i in range(len(argvs)):
        pid_file = Path(str(runs[i]["work"])) / "qemu.pid"
        for candidate in Path(str(runs[i]["work"])).glob("*.pid"):
            pid_file = candidate
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pid_file.read_text().strip()), 9)
    return list(seen.values())


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="gvb") as tmp:
        work = Path(tmp)
        rows = overlay_times(work)
        api_times, runs = api_to_qemu(work)
        hand_times = by_hand(runs)
    a, h = summary(api_times), summary(hand_times)
    rows.append(
        {
            "what": f"API request -> QEMU running, {COUNT} VMs (s)",
            "n": int(a["n"]),
            "p50": a["p50"],
            "p95": a["p95"],
            "max": a["max"],
        }
    )
    rows.append(
        {
            "what": f"same QEMU by hand, {COUNT} at once (s)",
            "n": int(h["n"]),
            "p50": h["p50"],
            "p95": h["p95"],
            "max": h["max"],
        }
    )
    publish(
        "B2",
        "CoW overlays and start latency",
        rows,
        {"api_to_qemu_s": a, "by_hand_s": h, "overhead_p50_s": a["p50"] - h["p50"]},
    )
