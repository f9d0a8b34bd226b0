"""Kernel modules: find them, read their dependencies, order them for insmod.

The extracted Debian kernel package has no ``modules.dep`` (``depmod`` runs in
its postinst) and the build host may lack kmod, so dependencies are read
straight from each module's ``.modinfo`` ELF section (``depends=a,b``), and
the guest loads modules with plain ``insmod`` in an order computed here.
"""

from __future__ import annotations

import gzip
import lzma
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from gridvm.common.errors import ToolFailed

_MODULE_SUFFIXES = (".ko", ".ko.xz", ".ko.gz")


class ModuleError(ToolFailed):
    """A kernel module is missing or the dependencies cannot be ordered."""


def module_name(file_name: str) -> str:
    """Kernel module name for a file name: suffix dropped, dashes become underscores."""
    for suffix in _MODULE_SUFFIXES:
        if file_name.endswith(suffix):
            file_name = file_name[: -len(suffix)]
            break
    return file_name.replace("-", "_")


def module_load_order(wanted: Iterable[str], depends: Mapping[str, Sequence[str]]) -> list[str]:
    """Every module needed for ``wanted``, each after all of its dependencies.

    ``depends`` maps a module name to the names it depends on. The order is
    deterministic: depth first, dependencies in the order listed, then the
    wanted modules in the order given. Raises ModuleError for an unknown
    module or a dependency cycle (which the kernel could not load either).
    """
    order: list[str] = []
    done: set[str] = set()
    in_progress: list[str] = []

    def visit(name: str) -> None:
        if name in done:
            return
        if name in in_progress:
            cycle = " -> ".join([*in_progress[in_progress.index(name) :], name])
            raise ModuleError(f"kernel module dependency cycle: {cycle}")
        if name not in depends:
            needed_by = f" (needed by {in_progress[-1]})" if in_progress else ""
            raise ModuleError(f"kernel module {name} not found{needed_by}")
        in_progress.append(name)
        for dependency in depends[name]:
            visit(dependency)
        in_progress.pop()
        done.add(name)
        order.append(name)

    for name in wanted:
        visit(module_name(name))
    return order


def _section(elf: bytes, wanted: bytes) -> bytes:
    """Contents of the named section of a 64-bit little-endian ELF file."""
    if elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
        raise ModuleError("not a 64-bit little-endian ELF file")
    (section_table,) = struct.unpack_from("<Q", elf, 0x28)
    entry_size, count, names_index = struct.unpack_from("<HHH", elf, 0x3A)

    def header(index: int) -> tuple[int, int, int]:
        base = section_table + index * entry_size
        (name_offset,) = struct.unpack_from("<I", elf, base)
        offset, size = struct.unpack_from("<QQ", elf, base + 0x18)
        return name_offset, offset, size

    _, names_offset, _ = header(names_index)
    for index in range(count):
        name_offset, offset, size = header(index)
        start = names_offset + name_offset
        if elf[start : elf.index(b"\0", start)] == wanted:
            return elf[offset : offset + size]
    raise ModuleError(f"no {wanted.decode()} section")


def read_module(path: Path) -> bytes:
    """The module's ELF bytes, decompressed if the file is .ko.xz or .ko.gz."""
    data = path.read_bytes()
    if path.name.endswith(".xz"):
        return lzma.decompress(data)
    if path.name.endswith(".gz"):
        return gzip.decompress(data)
    return data


def modinfo(path: Path) -> dict[str, str]:
    """The ``key=value`` pairs of a module's .modinfo (first value of each key)."""
    try:
        raw = _section(read_module(path), b".modinfo")
    except (ModuleError, ValueError, struct.error, lzma.LZMAError, OSError) as exc:
        raise ModuleError(f"cannot read .modinfo of {path}: {exc}") from exc
    info: dict[str, str] = {}
    for entry in raw.split(b"\0"):
        key, sep, value = entry.decode("utf-8", "replace").partition("=")
        if sep and key not in info:
            info[key] = value
    return info


def module_dependencies(path: Path) -> list[str]:
    """Names from the module's ``depends=`` field."""
    listed = modinfo(path).get("depends", "")
    return [name.replace("-", "_") for name in listed.split(",") if name]


@dataclass(frozen=True)
class ModuleTree:
    """The modules of one kernel: ``root`` is ``.../lib/modules/<version>``."""

    root: Path
    files: Mapping[str, Path]

    @classmethod
    def scan(cls, root: Path) -> ModuleTree:
        """Index every module file under ``root/kernel`` by module name."""
        files: dict[str, Path] = {}
        for path in sorted((root / "kernel").rglob("*.ko*")):
            if path.name.endswith(_MODULE_SUFFIXES):
                files.setdefault(module_name(path.name), path)
        return cls(root=root, files=files)

    @property
    def version(self) -> str:
        """The kernel release (``uname -r``) the modules belong to."""
        return self.root.name

    def dependency_map(self, wanted: Iterable[str]) -> dict[str, list[str]]:
        """``depends`` of ``wanted`` and everything they need, read from the files."""
        result: dict[str, list[str]] = {}
        pending = [module_name(name) for name in wanted]
        while pending:
            name = pending.pop()
            if name in result or name not in self.files:
                continue  # unknown names are reported by module_load_order
            result[name] = module_dependencies(self.files[name])
            pending.extend(result[name])
        return result

    def load_order(self, wanted: Iterable[str]) -> list[str]:
        """``wanted`` and their dependencies, in insmod order."""
        wanted = list(wanted)
        return module_load_order(wanted, self.dependency_map(wanted))

    def image_path(self, name: str) -> str:
        """Where the module goes relative to ``lib/modules/<version>`` in the guest.

        The same place as in the package, but always an uncompressed ``.ko``:
        busybox insmod is not relied on to decompress.
        """
        relative = self.files[name].relative_to(self.root).as_posix()
        for suffix in _MODULE_SUFFIXES:
            if relative.endswith(suffix):
                return relative[: -len(suffix)] + ".ko"
        return relative


def modules_dep(tree: ModuleTree, names: Sequence[str]) -> str:
    """A modules.dep for ``names`` so that busybox modprobe works in the guest too.

    Each line lists a module and everything it needs, nearest first, the
    format depmod writes.
    """
    lines = []
    for name in names:
        needed = module_load_order([name], tree.dependency_map([name]))[:-1]
        paths = [tree.image_path(dependency) for dependency in reversed(needed)]
        lines.append(f"{tree.image_path(name)}: {' '.join(paths)}".rstrip())
    return "\n".join(lines) + "\n"
