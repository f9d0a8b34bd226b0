"""Reading real guest disks without booting them: OS, packages, credentials, bad disks."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from gridvm.images.inspection import credentials, inspect_disk
from gridvm.images.inspection.extfs import Budget
from tests.guest_disks import (
    DEBIAN_12_OS_RELEASE,
    crypt_sha512,
    debian_root,
    dpkg_entry,
    ext4_disk,
    garbage_disk,
    partitioned_disk,
    pem_private_key,
    run,
    self_signed_cert,
    ssh_key,
    stage,
    vfat_disk,
)


def pkcs12(key: Path, cert: Path) -> bytes:
    out = key.parent / "bundle.p12"
    run(
        "openssl",
        "pkcs12",
        "-export",
        "-inkey",
        str(key),
        "-in",
        str(cert),
        "-passout",
        "pass:bundle",
        "-out",
        str(out),
    )
    return out.read_bytes()


def no_leftovers() -> None:
    mounts = Path("/proc/self/mounts").read_text()
    assert "gridvm-inspect-" not in mounts
    leftovers = list(Path(tempfile.gettempdir()).glob("gridvm-inspect-*"))
    assert leftovers == [], leftovers


def test_debian_disk_os_and_packages(tmp_path: Path) -> None:
    root = debian_root(
        tmp_path,
        "deb",
        [
            dpkg_entry("libc6", "2.36-9+deb12u1", source="glibc"),
            dpkg_entry("bash", "5.2.15-2+b2", source="bash (5.2.15-2)"),
            dpkg_entry("gone", "1.0-1", status="deinstall ok config-files"),
        ],
    )
    found = inspect_disk(ext4_disk(tmp_path, "deb", root))
    assert found.state == "ok", found.error
    assert (found.os_id, found.os_version) == ("debian", "12")
    assert found.os_name == "Debian GNU/Linux 12 (bookworm)"  # through the os-release link
    assert [(p["name"], p["source"], p["source_version"]) for p in found.packages] == [
        ("bash", "bash", "5.2.15-2"),
        ("libc6", "glibc", "2.36-9+deb12u1"),
    ]
    assert found.findings == []
    no_leftovers()


def test_partitioned_disk(tmp_path: Path) -> None:
    root = debian_root(tmp_path, "gpt", [dpkg_entry("libc6", "2.36-9+deb12u3", source="glibc")])
    found = inspect_disk(partitioned_disk(tmp_path, "gpt", root))
    assert found.state == "ok", found.error
    assert found.volume == "partition 2"
    assert found.os_id == "debian"
    assert [p["name"] for p in found.packages] == ["libc6"]


def test_credential_sweep(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    grid_key = keys / "userkey.pem"
    pem_private_key(grid_key)
    cert = self_signed_cert(grid_key, keys / "usercert.pem")
    files: dict[str, str | bytes] = {
        "/etc/os-release": DEBIAN_12_OS_RELEASE,
        "/root/.ssh/id_ed25519": ssh_key(keys / "root_key"),
        "/root/.ssh/id_ed25519.pub": (keys / "root_key.pub").read_bytes(),
        "/home/alice/.ssh/id_work": ssh_key(keys / "alice_key", passphrase="secret words"),
        "/home/alice/.globus/userkey.pem": grid_key.read_bytes(),
        "/home/alice/.globus/usercert.pem": cert,
        "/home/alice/.globus/usercred.p12": pkcs12(grid_key, keys / "usercert.pem"),
        "/home/alice/backup/old.key": pem_private_key(keys / "other.pem"),
        "/home/alice/.aws/credentials": "[default]\naws_access_key_id = AKIAEXAMPLE\n"
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
        "/home/alice/.netrc": "machine example.org login alice password hunter2\n",
        "/home/alice/.git-credentials": "https://alice:ghp_exampletoken@github.com\n",
        "/home/alice/.docker/config.json": '{"auths": {"registry.example.org": {"auth": "YTpi"}}}',
        "/home/alice/.config/openstack/clouds.yaml": "clouds:\n  site:\n    auth:\n"
        "      username: alice\n      password: s3cret\n",
        "/home/alice/.s3cfg": "[default]\naccess_key = AK\nsecret_key = SK\n",
        "/home/alice/notes.txt": "nothing secret here\n",
        "/etc/ssh/ssh_host_ed25519_key": ssh_key(keys / "host_key"),
        "/etc/ssh/ssh_host_ed25519_key.pub": (keys / "host_key.pub").read_bytes(),
        "/etc/grid-security/hostkey.pem": pem_private_key(keys / "hostkey.pem"),
        "/tmp/x509up_u1000": cert + grid_key.read_bytes(),
        "/tmp/bt_u1000": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlc2ln\n",
        "/etc/shadow": f"root:{crypt_sha512('root password')}:19000:0:99999:7:::\n"
        "daemon:*:19000:0:99999:7:::\n"
        "nobody:!:19000:0:99999:7:::\n"
        f"old:!{crypt_sha512('x')}:19000:0:99999:7:::\n",
    }
    root = stage(
        tmp_path / "creds-root",
        files,
        # Links are data: neither followed out of the image nor into another part of it.
        links={"/home/alice/hostroot": "/", "/home/alice/shadow": "/etc/shadow"},
    )
    found = inspect_disk(ext4_disk(tmp_path, "creds", root))
    assert found.state == "ok", found.error
    by_path = {f["path"]: f for f in found.findings}
    expected_kinds = {
        "/root/.ssh/id_ed25519": "ssh_private_key",
        "/home/alice/.ssh/id_work": "ssh_private_key",
        "/home/alice/.globus": "grid_credentials",
        "/home/alice/.globus/userkey.pem": "grid_private_key",
        "/home/alice/.globus/usercred.p12": "grid_private_key",
        "/home/alice/backup/old.key": "private_key",
        "/home/alice/.aws/credentials": "cloud_credentials",
        "/home/alice/.netrc": "token",
        "/home/alice/.git-credentials": "token",
        "/home/alice/.docker/config.json": "token",
        "/home/alice/.config/openstack/clouds.yaml": "cloud_credentials",
        "/home/alice/.s3cfg": "cloud_credentials",
        "/etc/ssh/ssh_host_ed25519_key": "ssh_host_key",
        "/etc/grid-security/hostkey.pem": "grid_private_key",
        "/tmp/x509up_u1000": "x509_proxy",
        "/tmp/bt_u1000": "token",
    }
    assert {p: f["kind"] for p, f in by_path.items() if p != "/etc/shadow"} == expected_kinds
    assert "not protected" in by_path["/root/.ssh/id_ed25519"]["detail"]
    assert "protected by a passphrase" in by_path["/home/alice/.ssh/id_work"]["detail"]
    shadow = [f["detail"] for f in found.findings if f["path"] == "/etc/shadow"]
    assert shadow == [
        "user 'root': SHA-512 crypt hash",
        "user 'old': locked account, SHA-512 crypt hash",
    ]
    # Never the secret itself.
    text = repr(found.findings)
    assert "hunter2" not in text and "-----BEGIN" not in text and "s3cret" not in text


def test_rpm_database(tmp_path: Path) -> None:
    build = tmp_path / "rpmbuild"
    (build / "SPECS").mkdir(parents=True)
    (build / "SPECS" / "hello.spec").write_text(
        "Name: hello-grid\nVersion: 1.2\nRelease: 3\nEpoch: 1\nSummary: test\nLicense: MIT\n"
        "BuildArch: noarch\n%description\ntest\n%files\n"
    )
    run("rpmbuild", "--define", f"_topdir {build}", "-bb", str(build / "SPECS" / "hello.spec"))
    rpm_file = next((build / "RPMS").rglob("*.rpm"))
    root = stage(tmp_path / "rpm-root", {"/etc/os-release": 'ID=rocky\nVERSION_ID="9.3"\n'})
    dbpath = root / "var" / "lib" / "rpm"
    dbpath.mkdir(parents=True)
    run("rpm", "-i", "--justdb", "--nodeps", "--dbpath", str(dbpath), str(rpm_file))
    found = inspect_disk(ext4_disk(tmp_path, "rpm", root))
    assert found.state == "ok", found.error
    assert found.os_id == "rocky"
    assert found.packages == [
        {
            "name": "hello-grid",
            "version": "1:1.2-3",
            "arch": "noarch",
            "source": "hello-grid",
            "source_version": "1.2-3",
            "kind": "rpm",
        }
    ]


@pytest.mark.parametrize(
    ("maker", "message"),
    [
        (garbage_disk, "no file system or partition table"),
        (vfat_disk, "no ext2/3/4 file system was found (found: vfat (whole disk))"),
    ],
)
def test_unreadable_disks(tmp_path: Path, maker, message: str) -> None:  # type: ignore[no-untyped-def]
    found = inspect_disk(maker(tmp_path, "bad"))
    assert found.state == "unreadable"
    assert found.error is not None and message in found.error
    no_leftovers()


def test_damaged_ext_file_system(tmp_path: Path) -> None:
    root = debian_root(tmp_path, "dmg", [])
    raw = tmp_path / "dmg.raw"
    run("truncate", "-s", "16M", str(raw))
    run("mkfs.ext4", "-q", "-F", "-d", str(root), str(raw))
    with raw.open("r+b") as f:  # keep the magic, destroy the rest of the superblock
        f.seek(1024)
        head = bytearray(f.read(1024))
        head[0:56] = os.urandom(56)
        head[60:200] = os.urandom(140)
        f.seek(1024)
        f.write(head)
        f.seek(4096)
        f.write(os.urandom(64 * 1024))
    qcow2 = tmp_path / "dmg.qcow2"
    run("qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", str(raw), str(qcow2))
    found = inspect_disk(qcow2)
    assert found.state == "unreadable"
    assert found.error is not None and "damaged" in found.error
    no_leftovers()


def test_time_budget_stops_the_inspection(tmp_path: Path) -> None:
    root = debian_root(tmp_path, "slow", [])
    found = inspect_disk(ext4_disk(tmp_path, "slow", root), Budget(seconds=0.0))
    assert found.state == "unreadable"
    assert found.error is not None and "inspection stopped" in found.error
    no_leftovers()


def test_the_tiny_starter_template(starter_dir: Path) -> None:
    disk = starter_dir / "tiny" / "disk.qcow2"
    found = inspect_disk(disk)
    assert found.state == "ok"
    assert found.packages == [] and found.findings == []  # busybox: no package database


def test_cleanup_when_the_daemon_cannot_start(tmp_path: Path) -> None:
    not_qcow2 = tmp_path / "plain.qcow2"
    not_qcow2.write_bytes(b"not a qcow2 at all" * 100)
    found = inspect_disk(not_qcow2)
    assert found.state == "unreadable"
    assert found.error is not None and "could not be read" in found.error
    no_leftovers()
    assert subprocess.run(["pgrep", "-f", str(not_qcow2)], capture_output=True).returncode == 1


def test_links_resolve_inside_the_image_only(tmp_path: Path) -> None:
    # ../../.. cannot climb out of the image's root: it stops at "/" of the image.
    root = stage(
        tmp_path / "links-root",
        {f"/usr/lib/{'long' * 20}/os-release": 'ID=inside\nPRETTY_NAME="the image\'s own"\n'},
        links={
            # A target longer than 60 bytes is stored in a data block, not in the inode.
            "/etc/os-release": f"../../../../../../usr/lib/{'long' * 20}/os-release",
            "/usr/lib/loop-a": "loop-b",
            "/usr/lib/loop-b": "loop-a",
            "/var/lib/dpkg": "/usr/lib/loop-a",  # a loop where a directory should be
        },
    )
    found = inspect_disk(ext4_disk(tmp_path, "links", root))
    assert found.state == "ok", found.error
    assert (found.os_id, found.os_name) == ("inside", "the image's own")
    assert found.packages == []


def test_a_sweep_that_reaches_its_bound_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(credentials, "MAX_ENTRIES", 5)
    files: dict[str, str | bytes] = {f"/home/alice/file{n}": "x" for n in range(10)}
    found = inspect_disk(ext4_disk(tmp_path, "many", stage(tmp_path / "many-root", files)))
    assert [f["kind"] for f in found.findings] == ["inspection_incomplete"]
