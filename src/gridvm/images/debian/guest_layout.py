"""What gridvm adds to a Debian root: the guest integration, staged as files.

The staged tree is copied into the root by mmdebstrap (``sync-in``), then a
customize hook (a fixed script, :func:`customize_script`) enables the units and
runs ``depmod`` for the kernel modules copied in. The same integration goes
into ``debian-12-minimal`` and into every image built from it by a recipe.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

from gridvm.common.errors import ToolFailed

GUEST_PACKAGE = "gridvm.images.debian.guest"
TINY_GUEST_PACKAGE = "gridvm.images.starter.guest"

# Packages on top of the minbase variant: what a useful minimal guest needs.
BASE_PACKAGES = (
    "systemd-sysv",
    "udev",
    "kmod",
    "iproute2",
    "ca-certificates",
    "acpid",
    "procps",
    "netbase",
)

# Guest files shipped in this package: source -> (path in the root, mode).
GUEST_FILES: Mapping[str, tuple[str, int]] = {
    "gridvm-init.sh": ("usr/lib/gridvm/gridvm-init", 0o755),
    "power-button.sh": ("usr/lib/gridvm/power-button", 0o755),
}

INIT_UNIT = """\
[Unit]
Description=gridvm guest: NoCloud seed, hostname, ready report, user-data
# Early, without waiting for basic.target: the boot under TCG counts in seconds.
DefaultDependencies=no
After=local-fs.target systemd-tmpfiles-setup.service systemd-journald.socket
After=systemd-udevd.service systemd-udev-trigger.service systemd-networkd.service
Wants=systemd-networkd.service systemd-udevd.service
Conflicts=shutdown.target
Before=shutdown.target

[Service]
Type=simple
ExecStart=/usr/lib/gridvm/gridvm-init
TimeoutStartSec=infinity
TimeoutStopSec=10
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
"""

DHCP_NETWORK = """\
[Match]
Type=ether

[Network]
DHCP=ipv4
LinkLocalAddressing=no
IPv6AcceptRA=no

[DHCPv4]
UseHostname=no
"""

POWER_BUTTON_EVENT = """\
event=button/power
action=/usr/lib/gridvm/power-button
"""

# A root shell on the serial console, as tiny has: the console is reachable only
# through gridvm (the VM's owner), never from the network.
AUTOLOGIN = """\
[Service]
ExecStart=
ExecStart=-/sbin/agetty --autologin root --keep-baud 115200,57600,38400,9600 --noclear %I $TERM
"""

TEXT_FILES: Mapping[str, tuple[str, int]] = {
    "etc/systemd/system/gridvm-init.service": (INIT_UNIT, 0o644),
    "etc/systemd/network/80-gridvm-dhcp.network": (DHCP_NETWORK, 0o644),
    "etc/acpi/events/gridvm-power-button": (POWER_BUTTON_EVENT, 0o644),
    "etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf": (AUTOLOGIN, 0o644),
    "etc/hostname": ("debian\n", 0o644),
    # The journal in RAM: no flush to disk at boot, nothing left on a saved disk.
    "etc/systemd/journald.conf.d/gridvm.conf": ("[Journal]\nStorage=volatile\n", 0o644),
    "etc/fstab": ("LABEL=gridvm-root / ext4 rw,errors=remount-ro 0 0\n", 0o644),
}

_KERNEL_VERSION_RE = re.compile(r"[0-9][0-9A-Za-z.+_-]*")


def guest_file(name: str) -> bytes:
    return resources.files(GUEST_PACKAGE).joinpath(name).read_bytes()


def gridvm_guest_script() -> bytes:
    """tiny's ``gridvm-guest`` for Debian: bash (``read -t``), ``usleep`` from sleep."""
    text = resources.files(TINY_GUEST_PACKAGE).joinpath("gridvm-guest.sh").read_text()
    first, _, rest = text.partition("\n")
    if first != "#!/bin/sh" or "\nset -u\n" not in rest:
        raise ToolFailed("gridvm-guest.sh changed shape: update the Debian adaptation")
    shim = "usleep() { sleep \"$(printf '%d.%06d' $(($1 / 1000000)) $(($1 % 1000000)))\"; }\n"
    rest = rest.replace("\nset -u\n", "\nset -u\n" + shim, 1)
    return ("#!/bin/bash\n" + rest).encode()


def customize_script(kernel_version: str) -> str:
    """The customize hook: enable the integration inside the root (``$1``)."""
    if not _KERNEL_VERSION_RE.fullmatch(kernel_version):
        raise ToolFailed(f"unexpected kernel version {kernel_version!r}")
    return f"""\
#!/bin/sh
# gridvm: enable the guest integration in the Debian root "$1".
set -eu
root="$1"
chroot "$root" depmod -a {kernel_version}
chroot "$root" systemctl enable gridvm-init.service systemd-networkd.service acpid.service
# Not needed in a VM that lives for a job (and each costs time under TCG); logind
# needs D-Bus, which is not installed (acpid handles the power button).
chroot "$root" systemctl mask systemd-networkd-wait-online.service getty@tty1.service \\
    apt-daily.timer apt-daily-upgrade.timer e2scrub_reap.service e2scrub_all.timer \\
    systemd-logind.service dpkg-db-backup.timer fstrim.timer getty-static.service \\
    systemd-update-utmp.service systemd-update-utmp-runlevel.service
# The console shell is started by gridvm-init when there is no user-data.
mkdir -p "$root/etc/systemd/system-generators"
ln -sf /dev/null "$root/etc/systemd/system-generators/systemd-getty-generator"
: >"$root/etc/resolv.conf"
# Each VM makes its own machine id at first boot.
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
"""


def inputs_digest() -> str:
    """Hash of the guest integration (scripts, units, base packages)."""
    digest = hashlib.sha256()
    for name in sorted(GUEST_FILES):
        digest.update(name.encode() + b"\0" + guest_file(name))
    for path, (text, mode) in sorted(TEXT_FILES.items()):
        digest.update(f"{path}\0{mode}\0{text}".encode())
    digest.update(gridvm_guest_script())
    digest.update(customize_script("0").encode())
    digest.update(" ".join(BASE_PACKAGES).encode())
    return digest.hexdigest()


def _write(root: Path, relative: str, content: bytes, mode: int) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    path.chmod(mode)


def stage_guest_tree(stage: Path, modules_dir: Path) -> None:
    """The files to copy into the root: integration files and the kernel modules.

    ``modules_dir`` is ``.../lib/modules/<version>`` of the extracted kernel package.
    """
    for source, (relative, mode) in GUEST_FILES.items():
        _write(stage, relative, guest_file(source), mode)
    _write(stage, "usr/bin/gridvm-guest", gridvm_guest_script(), 0o755)
    for relative, (text, mode) in TEXT_FILES.items():
        _write(stage, relative, text.encode(), mode)
    target = stage / "usr/lib/modules" / modules_dir.name
    shutil.copytree(modules_dir, target, symlinks=False, ignore=_skip_links)
    for directory in [stage, *[p for p in stage.rglob("*") if p.is_dir()]]:
        directory.chmod(0o755)


def _skip_links(directory: str, names: list[str]) -> list[str]:
    """The package's ``build`` and ``source`` links point to headers the guest lacks."""
    return [name for name in names if (Path(directory) / name).is_symlink()]
