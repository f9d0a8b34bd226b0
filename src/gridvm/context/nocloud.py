"""The per-VM cloud-init NoCloud seed: an ISO 9660 image labelled ``cidata``.

cloud-init finds the seed by its volume label and reads ``meta-data``,
``user-data`` (required, may be empty), and optionally ``network-config`` and
``vendor-data``. Joliet and Rock Ridge keep those lower-case names with
dashes, which plain ISO 9660 cannot hold.

The file is written with mode 0600 through a temp file and a rename: it
may carry credentials, and a VM must never boot from a half-written seed.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import os
import re
import shlex
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pycdlib

from gridvm.common.errors import InvalidInput
from gridvm.common.names import validate_name

LABEL = "cidata"
#: busybox ``findfs`` does not see smaller ISO images (see FIELD-NOTES).
MIN_SIZE = 1024 * 1024
FILE_MODE = 0o600

# (Rock Ridge / Joliet name, ISO 9660 level-1 name)
_NAMES = {
    "meta-data": "METADATA.;1",
    "user-data": "USERDATA.;1",
    "network-config": "NETWORK.;1",
    "vendor-data": "VENDOR.;1",
    "gridvm-env": "GRIDVMEN.;1",
    "gridvm-ssh-keys": "GRIDVMSK.;1",
    "gridvm-token": "GRIDVMTK.;1",
    "gridvm-net": "GRIDVMNT.;1",
}
NET_FILE = "gridvm-net"
ENV_FILE = "gridvm-env"
_ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEY_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
# Characters YAML folds or treats as line breaks even inside quotes: always escaped.
_LINE_BREAKS = frozenset("\t\n\r\x85\u2028\u2029")


def _yaml_printable(ch: str) -> bool:
    """Whether YAML allows ``ch`` unescaped (the YAML 1.1/1.2 printable set)."""
    c = ord(ch)
    return (
        c in (0x09, 0x0A, 0x0D, 0x85)
        or 0x20 <= c <= 0x7E
        or 0xA0 <= c <= 0xD7FF
        or 0xE000 <= c <= 0xFFFD
        or 0x10000 <= c <= 0x10FFFF
    ) and c not in (0xFEFF,)


def yaml_quote(value: str) -> str:
    """``value`` as a YAML double-quoted scalar that PyYAML reads back exactly."""
    out = ['"']
    for ch in value:
        c = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch in _LINE_BREAKS or not _yaml_printable(ch):
            if c <= 0xFF:
                out.append(f"\\x{c:02x}")
            elif c <= 0xFFFF:
                out.append(f"\\u{c:04x}")
            else:
                out.append(f"\\U{c:08x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def render_meta_data(meta_data: Mapping[str, str]) -> bytes:
    """``key: "value"`` lines; every value is quoted so no hostname can inject YAML."""
    lines = []
    for key, value in meta_data.items():
        if not isinstance(key, str) or not _KEY_RE.fullmatch(key):
            raise InvalidInput(
                f"{key!r} is not a valid meta-data key",
                hint="use letters, digits, '_', '.' and '-' (e.g. instance-id, local-hostname)",
            )
        if not isinstance(value, str):
            raise InvalidInput(
                f"meta-data value for {key!r} must be a string, not {type(value).__name__}",
                hint="convert the value to text",
            )
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput(
                f"meta-data value for {key!r} is not valid Unicode text",
                hint="remove unpaired surrogate characters from the value",
            ) from None
        lines.append(f"{key}: {yaml_quote(value)}\n")
    return "".join(lines).encode("utf-8")


def _public_keys_yaml(keys: Sequence[str]) -> bytes:
    for key in keys:
        if any(c in key for c in "\r\n\0"):
            raise InvalidInput("an SSH public key must be a single line")
    if not keys:
        return b""
    return ("public-keys:\n" + "".join(f"  - {yaml_quote(k)}\n" for k in keys)).encode()


@dataclass(frozen=True)
class StaticAddress:
    """A fixed IPv4 set-up for the guest's NIC: its address/prefix, the gateway, DNS servers."""

    interface: ipaddress.IPv4Interface
    gateway: ipaddress.IPv4Address
    nameservers: tuple[ipaddress.IPv4Address, ...] = ()

    def __post_init__(self) -> None:
        if self.gateway not in self.interface.network or self.gateway == self.interface.ip:
            raise InvalidInput(
                f"gateway {self.gateway} is not another address of {self.interface.network}"
            )


def render_network_config(mac: str, static: StaticAddress | None = None) -> str:
    """cloud-init network-config (version 2) for the NIC with ``mac``, named eth0: DHCP, or
    ``static`` (address/prefix, default route via the gateway, name servers)."""
    if not re.fullmatch(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}", mac):
        raise InvalidInput(f"invalid MAC address {mac!r}")
    head = (
        "version: 2\n"
        "ethernets:\n"
        "  eth0:\n"
        "    match:\n"
        f'      macaddress: "{mac}"\n'
        "    set-name: eth0\n"
    )
    if static is None:
        return head + "    dhcp4: true\n"
    text = head + (
        "    dhcp4: false\n"
        f'    addresses: ["{static.interface.with_prefixlen}"]\n'
        "    routes:\n"
        "      - to: 0.0.0.0/0\n"
        f'        via: "{static.gateway}"\n'
    )
    if static.nameservers:
        servers = ", ".join(f'"{s}"' for s in static.nameservers)
        text += f"    nameservers:\n      addresses: [{servers}]\n"
    return text


def render_net_file(static: StaticAddress) -> bytes:
    """``gridvm-net``: the static set-up as ``key=value`` lines, for guests without
    cloud-init (busybox ``sh``, bash ``read``): ``address=A/P``, ``gateway=G``,
    ``nameserver=N`` (one line per server)."""
    lines = [f"address={static.interface.with_prefixlen}", f"gateway={static.gateway}"]
    lines += [f"nameserver={s}" for s in static.nameservers]
    return "".join(f"{line}\n" for line in lines).encode()


def render_env(env: Mapping[str, str]) -> bytes:
    """``export NAME='value'`` lines, safe for any value: the guest's shell sources them."""
    lines = []
    for name, value in env.items():
        if not _ENV_NAME_RE.fullmatch(name):
            raise InvalidInput(f"{name!r} cannot be an environment variable name")
        if "\0" in value:
            raise InvalidInput(f"the value of {name} holds a NUL byte")
        lines.append(f"export {name}={shlex.quote(value)}\n")
    return "".join(lines).encode("utf-8")


def build_seed_iso(
    path: Path,
    *,
    meta_data: Mapping[str, str],
    user_data: bytes | None,
    network_config: str | None = None,
    vendor_data: bytes | None = None,
    env: Mapping[str, str] | None = None,
    secrets: Mapping[str, bytes] | None = None,
    files: Sequence[tuple[str, bytes]] = (),
    public_keys: Sequence[str] = (),
    vm_token: str | None = None,
    static_network: StaticAddress | None = None,
) -> None:
    """Write the NoCloud seed ISO for one VM launch to ``path`` (atomically, mode 0600).

    ``env`` (the job's environment) goes in ``gridvm-env``, a file of ``export`` lines
    the guest sources before it runs the user-data script. Each secret goes in
    ``gridvm-secret-NAME``; launch files go in ``gridvm-file-N`` with ``gridvm-files``
    listing ``N<TAB>guest path`` per line, for the guest to put in place. ``vm_token``
    (the VM's token for the guest API) goes in ``gridvm-token``. ``static_network`` also
    goes in ``gridvm-net`` (see :func:`render_net_file`) for guests without cloud-init.
    """
    contents: dict[str, bytes] = {
        "meta-data": render_meta_data(meta_data) + _public_keys_yaml(public_keys),
        "user-data": b"" if user_data is None else bytes(user_data),
    }
    if network_config is not None:
        contents["network-config"] = network_config.encode("utf-8")
    if vendor_data is not None:
        contents["vendor-data"] = bytes(vendor_data)
    if env:
        contents[ENV_FILE] = render_env(env)
    if public_keys:
        # cloud-init reads public-keys from meta-data; a plain list for small guests.
        contents["gridvm-ssh-keys"] = "".join(f"{k}\n" for k in public_keys).encode()
    if vm_token is not None:
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,200}", vm_token):
            raise InvalidInput("the VM token holds unexpected characters")
        contents["gridvm-token"] = vm_token.encode() + b"\n"
    if static_network is not None:
        contents[NET_FILE] = render_net_file(static_network)
    iso_names = dict(_NAMES)
    for number, (name, value) in enumerate(sorted((secrets or {}).items())):
        rr = f"gridvm-secret-{validate_name(name, what='secret name')}"
        contents[rr], iso_names[rr] = bytes(value), f"S{number:07d}.;1"
    for number, (guest_path, value) in enumerate(files):
        if "\t" in guest_path or "\n" in guest_path:
            raise InvalidInput(f"invalid guest path {guest_path!r}")
        rr = f"gridvm-file-{number}"
        contents[rr], iso_names[rr] = bytes(value), f"F{number:07d}.;1"
    if files:
        listing = "".join(f"{n}\t{path}\n" for n, (path, _) in enumerate(files))
        contents["gridvm-files"], iso_names["gridvm-files"] = listing.encode(), "GRIDVMFL.;1"

    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident=LABEL)
    for name, data in contents.items():
        iso.add_fp(
            io.BytesIO(data),
            len(data),
            iso_path="/" + iso_names[name],
            rr_name=name,
            joliet_path="/" + name,
        )

    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            iso.write_fp(f)
            if f.tell() < MIN_SIZE:
                f.truncate(MIN_SIZE)
            f.flush()
            os.fsync(f.fileno())
        tmp.chmod(FILE_MODE)  # mkstemp already made it 0600; keep it explicit
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        iso.close()
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def read_seed_iso(path: Path, *, max_file_bytes: int = 64 * 1024 * 1024) -> dict[str, bytes]:
    """Files in the root of a seed ISO, by their long (Rock Ridge or Joliet) names.

    For tests and forensics; the ISO may be untrusted, so files larger than
    ``max_file_bytes`` are refused rather than read into memory.
    """
    iso = pycdlib.PyCdlib()
    try:
        iso.open(str(path))
    except FileNotFoundError:
        raise
    except Exception as exc:  # pycdlib raises its own and assorted errors on bad input
        raise InvalidInput(
            f"{path} is not a readable ISO 9660 image: {exc}",
            hint="check that the file is a NoCloud seed ISO",
        ) from exc
    try:
        if iso.has_rock_ridge():
            kind = "rr_path"
        elif iso.has_joliet():
            kind = "joliet_path"
        else:
            kind = "iso_path"
        result: dict[str, bytes] = {}
        for child in iso.list_children(**{kind: "/"}):
            if not child.is_file():
                continue
            if kind == "rr_path":
                name = child.rock_ridge.name().decode("utf-8", errors="replace")
                lookup = "/" + name
            elif kind == "joliet_path":
                ident = child.file_identifier().decode("utf-16-be")
                lookup, name = "/" + ident, ident.split(";")[0]
            else:
                ident = child.file_identifier().decode("ascii")
                lookup, name = "/" + ident, ident.split(";")[0].rstrip(".").lower()
            size = child.get_data_length()
            if size > max_file_bytes:
                raise InvalidInput(
                    f"{name!r} in {path} is {size} bytes, more than the {max_file_bytes} allowed",
                    hint="pass a larger max_file_bytes if the file is expected to be that big",
                )
            buf = io.BytesIO()
            iso.get_file_from_iso_fp(buf, **{kind: lookup})
            result[name] = buf.getvalue()
        return result
    finally:
        iso.close()
