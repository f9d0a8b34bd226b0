"""The credential sweep: secrets that should never be baked into an image others will run.

Findings are ``{"kind", "path", "detail"}``; the secret itself is never copied into them.

Decisions:
- SSH *host* keys (``/etc/ssh/ssh_host_*_key``) are findings too: every VM started from the
  image would share them, so any one of them can impersonate all the others.
- A password hash in ``/etc/shadow`` is one even on a locked account (``!$6$...``): the hash
  can still be cracked offline; ``*``, ``!`` and empty fields are not.
- Homes are ``/root`` and the directories in ``/home``, walked without following symbolic
  links (a link is data; the walk stays in the tree it started from), up to ``MAX_ENTRIES``
  entries and ``MAX_DEPTH`` levels; small files (up to ``MAX_PEEK`` bytes, at most
  ``MAX_PEEKED_FILES``) are read to recognise private keys whatever their names. When a
  bound is reached the sweep says so with an ``inspection_incomplete`` finding instead of
  claiming a clean image.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from gridvm.images.inspection.extfs import Entry, ExtFs

MAX_ENTRIES = 100_000
MAX_DEPTH = 32
# Private keys are a few KiB (an 8192-bit RSA key in PEM is about 6.5 KiB).
MAX_PEEK = 16 * 1024
MAX_PEEKED_FILES = 20_000

_PEM_KEY = re.compile(rb"-----BEGIN ((?:RSA |DSA |EC |OPENSSH |ENCRYPTED )?PRIVATE KEY)-----")
_JWT = re.compile(rb"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}")


@dataclass(frozen=True)
class Walked:
    path: str
    entry: Entry


def finding(kind: str, path: str, detail: str) -> dict[str, str]:
    return {"kind": kind, "path": path, "detail": detail}


def _walk(fs: ExtFs, top: str, root: Entry, budget: list[int]) -> tuple[list[Walked], bool]:
    """Every entry under ``root`` (breadth first, links not followed); complete or not."""
    found: list[Walked] = []
    level: list[tuple[str, Entry]] = [(top, root)]
    for _depth in range(MAX_DEPTH):
        if not level:
            return found, True
        listings = fs.list_many([e.inode for _, e in level])
        following: list[tuple[str, Entry]] = []
        for path, directory in level:
            for entry in listings[directory.inode]:
                budget[0] -= 1
                if budget[0] < 0:
                    return found, False
                child = f"{path.rstrip('/')}/{entry.name}"
                found.append(Walked(child, entry))
                if entry.is_dir:
                    following.append((child, entry))
        level = following
    return found, not level


def _key_detail(data: bytes, kind: bytes) -> str:
    if kind == b"OPENSSH PRIVATE KEY":
        body = data.split(b"-----BEGIN OPENSSH PRIVATE KEY-----", 1)[1]
        body = body.split(b"-----END", 1)[0]
        try:
            raw = base64.b64decode(b"".join(body.split()))
        except (binascii.Error, ValueError):
            return "OpenSSH private key"
        magic = b"openssh-key-v1\x00"
        if raw.startswith(magic) and len(raw) >= len(magic) + 4:
            size = int.from_bytes(raw[len(magic) : len(magic) + 4], "big")
            cipher = raw[len(magic) + 4 : len(magic) + 4 + size]
            if cipher == b"none":
                return "OpenSSH private key, not protected by a passphrase"
            return "OpenSSH private key, protected by a passphrase"
        return "OpenSSH private key"
    if kind == b"ENCRYPTED PRIVATE KEY" or b"Proc-Type: 4,ENCRYPTED" in data:
        return f"PEM {kind.decode()}, protected by a passphrase"
    return f"PEM {kind.decode()}, not protected by a passphrase"


def _classify_key(path: str, data: bytes) -> dict[str, str] | None:
    match = _PEM_KEY.search(data)
    if match is None:
        return None
    detail = _key_detail(data, match.group(1))
    name = path.rsplit("/", 1)[-1]
    parts = path.split("/")
    if ".globus" in parts or name in ("userkey.pem", "usercert.pem", "hostkey.pem"):
        if b"BEGIN CERTIFICATE" in data:
            detail = "certificate stored with its private key; " + detail
        return finding("grid_private_key", path, detail)
    if name.startswith("x509up_u"):
        return finding("x509_proxy", path, "X.509 proxy certificate with its private key")
    if ".ssh" in parts or name.startswith("id_") or match.group(1) == b"OPENSSH PRIVATE KEY":
        return finding("ssh_private_key", path, detail)
    return finding("private_key", path, detail)


def _cloud_or_token(path: str, data: bytes) -> dict[str, str] | None:
    parts = path.split("/")
    name = parts[-1]
    text = data.decode("utf-8", errors="replace")
    if parts[-2:] == [".aws", "credentials"] and "aws_secret_access_key" in text:
        return finding("cloud_credentials", path, "AWS access key and secret")
    gcloud_files = ("credentials.db", "access_tokens.db", "application_default_credentials.json")
    if parts[-3:-1] == [".config", "gcloud"] and name in gcloud_files:
        return finding("cloud_credentials", path, "Google Cloud SDK credentials")
    if "gcloud" in parts and "legacy_credentials" in parts:
        return finding("cloud_credentials", path, "Google Cloud SDK credentials")
    if ".azure" in parts and name in (
        "accessTokens.json",
        "msal_token_cache.json",
        "msal_token_cache.bin",
        "service_principal_entries.json",
    ):
        return finding("cloud_credentials", path, "Azure CLI tokens")
    if name == ".s3cfg" and re.search(r"(?m)^\s*secret_key\s*=\s*\S", text):
        return finding("cloud_credentials", path, "s3cmd secret key")
    if name in ("clouds.yaml", "clouds.yml") and re.search(r"(?m)^\s*password\s*:\s*\S", text):
        return finding("cloud_credentials", path, "OpenStack clouds.yaml with a password")
    if name == ".netrc" and re.search(r"\bpassword\s+\S", text):
        return finding("token", path, ".netrc with a password")
    if name == ".git-credentials" and re.search(r"://[^/\s:@]+:[^/\s@]+@", text):
        return finding("token", path, "git credentials with a password or token")
    if parts[-2:] == [".docker", "config.json"]:
        return _docker_auths(path, text)
    token_names = ("bearer_token", ".bearer_token", "token", ".token")
    if (name.startswith("bt_u") or name in token_names) and text.strip():
        return finding("token", path, "bearer token file")
    if any(w in name.lower() for w in ("token", "jwt", "bearer")) and _JWT.search(data):
        return finding("token", path, "file holding a JSON Web Token")
    return None


def _docker_auths(path: str, text: str) -> dict[str, str] | None:
    try:
        config: Any = json.loads(text)
    except ValueError:
        return None
    auths = config.get("auths") if isinstance(config, dict) else None
    if not isinstance(auths, dict):
        return None
    registries = [
        r
        for r, a in auths.items()
        if isinstance(a, dict) and (a.get("auth") or a.get("identitytoken"))
    ]
    if not registries:
        return None
    return finding("token", path, f"Docker registry credentials for {len(registries)} registries")


def shadow_findings(path: str, text: str) -> list[dict[str, str]]:
    found = []
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) < 2:
            continue
        user, field = fields[0], fields[1]
        locked = field.startswith("!")
        hashed = field.lstrip("!")
        if hashed in ("", "*", "x") or hashed.startswith("*"):
            continue
        scheme = _crypt_scheme(hashed)
        state = "locked account, " if locked else ""
        found.append(finding("password_hash", path, f"user {user!r}: {state}{scheme} hash"))
    return found


def _crypt_scheme(hashed: str) -> str:
    names = {"1": "MD5", "2a": "bcrypt", "2b": "bcrypt", "2y": "bcrypt", "5": "SHA-256"}
    names |= {"6": "SHA-512", "y": "yescrypt", "gy": "gost-yescrypt", "7": "scrypt"}
    if hashed.startswith("$"):
        return f"{names.get(hashed.split('$')[1], 'crypt')} crypt"
    return "DES crypt" if len(hashed) == 13 else "password"


def sweep(fs: ExtFs) -> list[dict[str, str]]:
    """Every credential finding in the file system."""
    findings: list[dict[str, str]] = []
    walked: list[Walked] = []
    budget = [MAX_ENTRIES]
    complete = True
    homes: list[tuple[str, Entry]] = []
    root_home = fs.lookup("/root")
    if root_home is not None and root_home.is_dir:
        homes.append(("/root", root_home))
    home = fs.lookup("/home")
    if home is not None and home.is_dir:
        homes += [(f"/home/{e.name}", e) for e in fs.listdir(home.inode) if e.is_dir]
    for top, entry in homes:
        found, whole = _walk(fs, top, entry, budget)
        walked += found
        complete = complete and whole
    for top in ("/etc/ssh", "/etc/grid-security", "/etc/openstack", "/tmp", "/var/tmp"):
        place = fs.lookup(top)
        if place is not None and place.is_dir:
            found, whole = _walk(fs, top, place, budget)
            walked += found
            complete = complete and whole

    for item in walked:
        if item.entry.is_dir and item.path.endswith("/.globus"):
            findings.append(
                finding(
                    "grid_credentials", item.path, "a .globus directory (grid user credentials)"
                )
            )
    small = [w for w in walked if w.entry.is_file and w.entry.size <= MAX_PEEK]
    if len(small) > MAX_PEEKED_FILES:
        small, complete = small[:MAX_PEEKED_FILES], False
    contents = fs.read_many([w.entry for w in small], MAX_PEEK)
    for item in small:
        data = contents.get(item.entry.inode)
        if not data:
            continue
        name = item.path.rsplit("/", 1)[-1]
        if item.path.startswith("/etc/ssh/") and name.startswith("ssh_host_"):
            if _PEM_KEY.search(data):
                findings.append(
                    finding("ssh_host_key", item.path, "SSH host private key shared by every clone")
                )
            continue
        if name.startswith("x509up_u") and b"BEGIN CERTIFICATE" in data:
            findings.append(
                finding("x509_proxy", item.path, "X.509 proxy certificate with its private key")
            )
            continue
        if name.lower().endswith((".p12", ".pfx")):
            kind = "grid_private_key" if "/.globus/" in item.path else "private_key"
            detail = "PKCS#12 bundle (a certificate with its private key)"
            findings.append(finding(kind, item.path, detail))
            continue
        found_key = _classify_key(item.path, data)
        if found_key is not None:
            findings.append(found_key)
            continue
        other = _cloud_or_token(item.path, data)
        if other is not None:
            findings.append(other)

    shadow = fs.lookup("/etc/shadow")
    if shadow is not None and shadow.is_file:
        data = fs.read(shadow, 16 * 1024**2)
        if data:
            findings += shadow_findings("/etc/shadow", data.decode("utf-8", errors="replace"))
    if not complete:
        findings.append(
            finding(
                "inspection_incomplete",
                "/",
                "the credential sweep stopped at its bound on entries or depth; "
                "the image was not searched completely",
            )
        )
    return sorted(findings, key=lambda f: (f["path"], f["kind"]))
