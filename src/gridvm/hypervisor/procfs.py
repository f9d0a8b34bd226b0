"""Finding and recognising gridvm's QEMU processes through /proc.

A daemonized QEMU is not the agent's child, so the agent cannot ``wait()``
for it: liveness comes from /proc. A pid alone proves nothing (pids are
recycled), so a process counts as a VM's QEMU only if its command line is a
``qemu-system-*`` binary run with ``-name gridvm-<vm_id>,...``. A zombie
(state Z) or dead (X) process counts as gone: it no longer runs a guest, and
when QEMU was reparented to an init that does not reap, it may stay a zombie.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

PROC = Path("/proc")
QEMU_NAME_PREFIX = "gridvm-"


def process_state(pid: int) -> str | None:
    """The one-letter state from /proc/<pid>/stat, or None if there is no such process."""
    try:
        stat = (PROC / str(pid) / "stat").read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, ProcessLookupError, NotADirectoryError):
        return None
    # "pid (comm) S ...": comm may contain spaces and parentheses.
    fields = stat[stat.rfind(")") + 1 :].split()
    return fields[0] if fields else None


def is_alive(pid: int) -> bool:
    return process_state(pid) not in (None, "Z", "X")


def read_cmdline(pid: int) -> list[str] | None:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, NotADirectoryError, PermissionError):
        return None
    if not raw:
        return None  # kernel thread, or a zombie
    return raw.rstrip(b"\0").decode("utf-8", errors="surrogateescape").split("\0")


def qemu_name(argv: list[str]) -> str | None:
    """The ``-name`` guest name of a QEMU command line (None if it is not QEMU)."""
    if not argv or not Path(argv[0]).name.startswith("qemu-system"):
        return None
    try:
        value = argv[argv.index("-name") + 1]
    except (ValueError, IndexError):
        return None
    # "-name gridvm-x,process=gridvm-x" (also accept the "guest=" spelling)
    first = value.split(",", 1)[0]
    return first.removeprefix("guest=")


def is_qemu_named(pid: int, name: str) -> bool:
    """True if ``pid`` is a live QEMU running under ``-name name``."""
    if not is_alive(pid):
        return False
    argv = read_cmdline(pid)
    return argv is not None and qemu_name(argv) == name and is_alive(pid)


def read_pidfile(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None


def parent_pid(pid: int) -> int | None:
    try:
        stat = (PROC / str(pid) / "stat").read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, ProcessLookupError, NotADirectoryError):
        return None
    fields = stat[stat.rfind(")") + 1 :].split()
    return int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else None


def iter_gridvm_qemus() -> Iterator[tuple[str, int]]:
    """Yield (vm_id, pid) for every live gridvm QEMU on this host."""
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        argv = read_cmdline(pid)
        if argv is None:
            continue
        name = qemu_name(argv)
        if name is None or not name.startswith(QEMU_NAME_PREFIX) or not is_alive(pid):
            continue
        yield name.removeprefix(QEMU_NAME_PREFIX), pid
