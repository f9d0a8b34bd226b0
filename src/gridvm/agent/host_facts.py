"""What this host offers (cores, memory, disk, architecture, accelerator) and how busy it is."""

from __future__ import annotations

import os
import platform
import shutil
import socket
from pathlib import Path

from gridvm.common.config import AgentConfig
from gridvm.hypervisor.accel import detect_accelerator
from gridvm.schemas.agent import HostRegistration
from gridvm.schemas.hosts import HostLoad, Zone


def _meminfo_mb(field: str) -> int | None:
    with Path("/proc/meminfo").open() as f:
        for line in f:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) // 1024
    return None


def memory_mb() -> int:
    total = _meminfo_mb("MemTotal")
    if total is None:
        raise RuntimeError("no MemTotal in /proc/meminfo")
    return total


def host_load() -> HostLoad:
    """The kernel's load averages and available memory, sent with every sync."""
    one, five, fifteen = os.getloadavg()
    return HostLoad(
        load_1m=round(one, 2),
        load_5m=round(five, 2),
        load_15m=round(fifteen, 2),
        memory_available_mb=_meminfo_mb("MemAvailable"),
    )


def host_registration(config: AgentConfig) -> HostRegistration:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    return HostRegistration(
        name=config.host_name,
        address=socket.gethostname(),
        arch=platform.machine(),
        accelerator=detect_accelerator(config.qemu_binary),
        cores=config.cores or os.cpu_count() or 1,
        memory_mb=config.memory_mb or memory_mb(),
        disk_bytes=shutil.disk_usage(config.data_dir).free,
        labels=dict(config.labels),
        zones=[Zone(z) for z in config.zones],
    )
