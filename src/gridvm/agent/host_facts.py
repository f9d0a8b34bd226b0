"""What this host offers: cores, memory, disk, architecture, accelerator."""

from __future__ import annotations

import os
import platform
import shutil
import socket
from pathlib import Path

from gridvm.common.config import AgentConfig
from gridvm.hypervisor.accel import detect_accelerator
from gridvm.schemas.agent import HostRegistration
from gridvm.schemas.hosts import Zone


def memory_mb() -> int:
    with Path("/proc/meminfo").open() as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    raise RuntimeError("no MemTotal in /proc/meminfo")


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
