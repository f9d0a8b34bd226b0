"""Real guest disks for the inspection tests: a staged tree -> mkfs.ext4 -d -> qcow2.

Nothing is mounted: ``mkfs.ext4 -d`` fills the file system from a directory, and a
partitioned disk gets its file system at an offset (``mkfs.ext4 -E offset=``).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

MiB = 1024 * 1024

DEBIAN_12_OS_RELEASE = (
    'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n'
    'NAME="Debian GNU/Linux"\n'
    'VERSION_ID="12"\n'
    "ID=debian\n"
)


def run(*argv: str, input: bytes | None = None) -> bytes:
    proc = subprocess.run(list(argv), capture_output=True, input=input, check=False)
    assert proc.returncode == 0, (argv, proc.stderr.decode(errors="replace"))
    return proc.stdout


def stage(root: Path, files: dict[str, str | bytes], links: dict[str, str] | None = None) -> Path:
    """Write ``files`` (path in the guest -> content) and ``links`` (path -> target) under root."""
    root.mkdir(parents=True, exist_ok=True)
    for path, content in files.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            content = content.encode()
        target.write_bytes(content)
    for path, dest in (links or {}).items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(dest, target)
    return root


def to_qcow2(raw: Path, qcow2: Path) -> Path:
    run("qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", str(raw), str(qcow2))
    raw.unlink()
    return qcow2


def ext4_disk(tmp: Path, name: str, root: Path, size_mib: int = 32) -> Path:
    """A whole-disk ext4 file system holding ``root``'s tree, as qcow2."""
    raw = tmp / f"{name}.raw"
    run("truncate", "-s", f"{size_mib}M", str(raw))
    run("mkfs.ext4", "-q", "-F", "-d", str(root), str(raw))
    return to_qcow2(raw, tmp / f"{name}.qcow2")


def partitioned_disk(tmp: Path, name: str, root: Path, size_mib: int = 48) -> Path:
    """A GPT disk: an EFI system partition (left empty) and a Linux partition holding root."""
    raw = tmp / f"{name}.raw"
    run("truncate", "-s", f"{size_mib}M", str(raw))
    esp_start, esp_sectors = 2048, 8 * 2048
    linux_start = esp_start + esp_sectors
    table = (
        "label: gpt\n"
        f"start={esp_start}, size={esp_sectors}, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\n"
        f"start={linux_start}, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n"
    )
    run("sfdisk", "-q", str(raw), input=table.encode())
    linux_kib = (size_mib * MiB - linux_start * 512) // 1024 - 64  # room for the backup GPT
    run(
        "mkfs.ext4",
        "-q",
        "-F",
        "-d",
        str(root),
        "-E",
        f"offset={linux_start * 512}",
        str(raw),
        f"{linux_kib}k",
    )
    return to_qcow2(raw, tmp / f"{name}.qcow2")


def vfat_disk(tmp: Path, name: str, size_mib: int = 16) -> Path:
    raw = tmp / f"{name}.raw"
    run("truncate", "-s", f"{size_mib}M", str(raw))
    run("mkfs.vfat", str(raw))
    return to_qcow2(raw, tmp / f"{name}.qcow2")


def garbage_disk(tmp: Path, name: str, size_mib: int = 8) -> Path:
    raw = tmp / f"{name}.raw"
    raw.write_bytes(os.urandom(size_mib * MiB))
    return to_qcow2(raw, tmp / f"{name}.qcow2")


def dpkg_entry(
    package: str, version: str, source: str | None = None, status: str = "install ok installed"
) -> str:
    lines = [f"Package: {package}", f"Status: {status}", "Architecture: amd64"]
    if source:
        lines.append(f"Source: {source}")
    lines += [f"Version: {version}", f"Description: {package} for the tests", ""]
    return "\n".join(lines) + "\n"


def debian_root(tmp: Path, name: str, packages: list[str]) -> Path:
    """A minimal Debian 12 tree: os-release (via the usual link) and a dpkg status file."""
    return stage(
        tmp / f"{name}-root",
        {
            "/usr/lib/os-release": DEBIAN_12_OS_RELEASE,
            "/var/lib/dpkg/status": "".join(packages),
            "/etc/hostname": "guest\n",
        },
        links={"/etc/os-release": "../usr/lib/os-release"},
    )


def ssh_key(path: Path, passphrase: str = "") -> bytes:
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", "test", "-f", str(path))
    return path.read_bytes()


def pem_private_key(path: Path) -> bytes:
    run("openssl", "genpkey", "-algorithm", "ed25519", "-out", str(path))
    return path.read_bytes()


def self_signed_cert(key: Path, cert: Path) -> bytes:
    run(
        "openssl",
        "req",
        "-new",
        "-x509",
        "-key",
        str(key),
        "-subj",
        "/CN=test user",
        "-days",
        "1",
        "-out",
        str(cert),
    )
    return cert.read_bytes()


def crypt_sha512(password: str) -> str:
    return run("openssl", "passwd", "-6", password).decode().strip()
