"""Reading an ext2/3/4 file system in user space with debugfs, by inode number only.

Every request names inodes (``<1234>``), never paths from the image, so nothing the image
controls reaches debugfs's command parser. Paths are resolved here, against the image's own
directories: a symbolic link is data, followed inside the image root (``..`` stops at ``/``),
never on the host. File contents are copied with ``dump <ino> OUR_FILE`` into a private
directory whose file names we choose.
"""

from __future__ import annotations

import stat
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from gridvm.images.inspection.tools import ToolError, ToolLimits, binary, run_tool

ROOT_INODE = 2
MAX_SYMLINK_HOPS = 40
_LIMITS = ToolLimits(timeout_s=60, max_output=64 * 1024**2)


class InspectionLimit(Exception):
    """The inspection reached its time or byte budget."""


@dataclass
class Budget:
    """What one inspection may spend: wall-clock time and bytes copied out of the image."""

    seconds: float = 120.0
    max_bytes: int = 512 * 1024**2
    started: float = field(default_factory=time.monotonic)
    spent_bytes: int = 0

    def check(self) -> None:
        if time.monotonic() - self.started > self.seconds:
            raise InspectionLimit(f"the inspection took longer than {self.seconds:g} s")

    def take(self, size: int) -> None:
        if self.spent_bytes + size > self.max_bytes:
            raise InspectionLimit(f"the inspection would read more than {self.max_bytes} bytes")
        self.spent_bytes += size


@dataclass(frozen=True)
class Entry:
    inode: int
    mode: int
    name: str  # undecodable bytes as backslash escapes
    size: int

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)

    @property
    def is_file(self) -> bool:
        return stat.S_ISREG(self.mode)

    @property
    def is_link(self) -> bool:
        return stat.S_ISLNK(self.mode)


def _parse_ls(lines: list[bytes]) -> list[Entry]:
    """Entries of ``ls -p`` lines: ``/inode/mode/uid/gid/name/size/``; ``.``/``..`` left out.

    A name cannot hold ``/``; a name holding a newline breaks its line and is skipped.
    """
    entries: list[Entry] = []
    for line in lines:
        if not (line.startswith(b"/") and line.endswith(b"/")):
            continue
        parts = line[1:-1].split(b"/")
        if len(parts) != 6:
            continue
        try:
            inode, mode = int(parts[0]), int(parts[1], 8)
            size = int(parts[5]) if parts[5] else 0
        except ValueError:
            continue
        name = parts[4].decode("utf-8", errors="backslashreplace")
        if name in (".", "..") or not name:
            continue
        entries.append(Entry(inode, mode, name, size))
    return entries


class ExtFs:
    """One ext file system at ``offset`` bytes into ``disk`` (a regular file)."""

    def __init__(self, disk: Path, offset: int, budget: Budget, workdir: Path) -> None:
        self._spec = f"{disk}?offset={offset}" if offset else str(disk)
        self._budget = budget
        self._dir = Path(tempfile.mkdtemp(prefix="files-", dir=workdir))
        self._debugfs = binary("debugfs", "e2fsprogs")
        self._listings: dict[int, list[Entry]] = {}
        self._dumped = 0

    def _batch(self, commands: list[str]) -> bytes:
        self._budget.check()
        return run_tool(
            [self._debugfs, "-f", "-", self._spec],
            stdin="".join(f"{c}\n" for c in commands).encode(),
            limits=_LIMITS,
        )

    def check_readable(self) -> None:
        """Raise ToolError unless debugfs can open the file system and list its root."""
        out = run_tool([self._debugfs, "-R", f"ls -p <{ROOT_INODE}>", self._spec], limits=_LIMITS)
        if not _parse_ls(out.splitlines()):
            raise ToolError("debugfs could not read the root directory")

    # --- directories ---------------------------------------------------------
    def list_many(self, inodes: list[int]) -> dict[int, list[Entry]]:
        wanted = [i for i in dict.fromkeys(inodes) if i not in self._listings]
        for start in range(0, len(wanted), 200):
            chunk = wanted[start : start + 200]
            out = self._batch([f"ls -p <{i}>" for i in chunk])
            current: int | None = None
            lines: dict[int, list[bytes]] = {i: [] for i in chunk}
            for line in out.splitlines():
                if line.startswith(b"debugfs: ls -p <"):
                    current = int(line[len(b"debugfs: ls -p <") : -1])
                elif current is not None:
                    lines[current].append(line)
            for inode in chunk:
                self._listings[inode] = _parse_ls(lines[inode])
        return {i: self._listings[i] for i in inodes}

    def listdir(self, inode: int) -> list[Entry]:
        return self.list_many([inode])[inode]

    # --- contents ------------------------------------------------------------
    def read_many(self, entries: list[Entry], max_each: int) -> dict[int, bytes]:
        """The contents of the regular files among ``entries`` no larger than ``max_each``."""
        chosen = [e for e in entries if e.is_file and e.size <= max_each]
        chosen = list({e.inode: e for e in chosen}.values())
        if not chosen:
            return {}
        for entry in chosen:
            self._budget.take(entry.size)
        targets: dict[int, Path] = {}
        commands = []
        for entry in chosen:
            self._dumped += 1
            target = self._dir / str(self._dumped)
            targets[entry.inode] = target
            commands.append(f"dump <{entry.inode}> {target}")
        self._batch(commands)
        found: dict[int, bytes] = {}
        for inode, target in targets.items():
            if target.is_file():
                found[inode] = target.read_bytes()[:max_each]
                target.unlink()
        return found

    def read(self, entry: Entry, max_bytes: int) -> bytes | None:
        return self.read_many([entry], max_bytes).get(entry.inode)

    def dump_into(self, entries: list[Entry], target_dir: Path) -> list[str]:
        """Copy the regular files among ``entries`` into ``target_dir``; the names written.

        debugfs writes to names we choose; the file is then renamed here, in Python, to its
        own name when that is a plain one (letters, digits, ``-_.``), else it is left out.
        """
        plain = [
            e
            for e in entries
            if e.is_file
            and not e.name.startswith(".")
            and e.name.replace("-", "").replace("_", "").replace(".", "").isalnum()
            and e.name.isascii()
        ]
        contents = self.read_many(plain, self._budget.max_bytes)
        written = []
        for entry in plain:
            data = contents.get(entry.inode)
            if data is not None:
                (target_dir / entry.name).write_bytes(data)
                written.append(entry.name)
        return written

    def readlink(self, entry: Entry) -> str:
        out = self._batch([f"stat <{entry.inode}>"])
        for line in out.splitlines():
            if line.startswith(b"Fast link dest: "):
                raw = line[len(b"Fast link dest: ") :].strip()
                if raw.startswith(b'"') and raw.endswith(b'"'):
                    raw = raw[1:-1]
                return raw.decode("utf-8", errors="backslashreplace")
        data = self.read_many([Entry(entry.inode, stat.S_IFREG, entry.name, entry.size)], 4096)
        return data.get(entry.inode, b"").decode("utf-8", errors="backslashreplace")

    # --- paths ---------------------------------------------------------------
    def lookup(self, path: str, *, follow: bool = True) -> Entry | None:
        """The entry at ``path`` inside the image, links resolved inside the image."""
        root = Entry(ROOT_INODE, stat.S_IFDIR | 0o755, "/", 0)
        pending = [p for p in path.split("/") if p]
        stack: list[Entry] = [root]  # the directories walked, for ".."
        hops = 0
        while pending:
            part = pending.pop(0)
            if part == ".":
                continue
            if part == "..":
                if len(stack) > 1:
                    stack.pop()
                continue
            here = stack[-1]
            if not here.is_dir:
                return None
            entry = next((e for e in self.listdir(here.inode) if e.name == part), None)
            if entry is None:
                return None
            if entry.is_link and (pending or follow):
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    return None
                target = self.readlink(entry)
                if target.startswith("/"):
                    stack = [root]
                pending = [p for p in target.split("/") if p] + pending
                continue
            stack.append(entry)
        return stack[-1]
