from __future__ import annotations

import ipaddress
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pycdlib
import pytest
import yaml

from gridvm.common.errors import InvalidInput
from gridvm.context.nocloud import (
    MIN_SIZE,
    StaticAddress,
    build_seed_iso,
    read_seed_iso,
    render_meta_data,
    render_network_config,
)

ODD_HOSTNAMES = [
    "plain-host",
    "yes",
    "null",
    "~",
    "0x1F",
    "1e3",
    "2024-01-01",
    "host: evil\nuser-data: injected",
    "- list item",
    "# comment",
    "'single' \"double\" \\back\\",
    "tab\there",
    "trailing space ",
    " leading space",
    "ümlaut-ħøst-日本",
    "emoji-\U0001f600",
    "ctrl-\x00-\x07-\x1b-\x7f-\x85-\ufeff-\u2028-\u2029-\r\n",
    "{flow: mapping}",
    "[1, 2]",
    "&anchor *alias !tag %directive @ `",
    "",
]


def build(path: Path, **kwargs: object) -> dict[str, bytes]:
    args: dict[str, object] = {"meta_data": {"instance-id": "i-1"}, "user_data": b"#!/bin/sh\n"}
    args.update(kwargs)
    build_seed_iso(path, **args)  # type: ignore[arg-type]
    return read_seed_iso(path)


def test_round_trip_of_all_files(tmp_path: Path) -> None:
    seed = tmp_path / "seed.iso"
    files = build(
        seed,
        meta_data={"instance-id": "vm-42", "local-hostname": "node42"},
        user_data=b"#cloud-config\nruncmd: [echo hi]\n",
        network_config="version: 2\nethernets: {}\n",
        vendor_data=b"#cloud-config\n{}\n",
    )
    assert files == {
        "meta-data": b'instance-id: "vm-42"\nlocal-hostname: "node42"\n',
        "user-data": b"#cloud-config\nruncmd: [echo hi]\n",
        "network-config": b"version: 2\nethernets: {}\n",
        "vendor-data": b"#cloud-config\n{}\n",
    }


def test_user_data_file_exists_even_when_empty(tmp_path: Path) -> None:
    files = build(tmp_path / "seed.iso", user_data=None)
    assert files["user-data"] == b""
    assert set(files) == {"meta-data", "user-data"}  # no network-config unless given


def test_user_data_bytes_are_kept_exactly(tmp_path: Path) -> None:
    binary = bytes(range(256)) * 50
    assert build(tmp_path / "a.iso", user_data=binary)["user-data"] == binary
    text = "#!/bin/sh\necho 'grüße, 世界 🚀'\n".encode()
    assert build(tmp_path / "b.iso", user_data=text)["user-data"] == text


def test_label_and_long_names_in_the_iso(tmp_path: Path) -> None:
    seed = tmp_path / "seed.iso"
    build(seed, network_config="version: 2\n")
    iso = pycdlib.PyCdlib()
    iso.open(str(seed))
    try:
        assert iso.pvd.volume_identifier.decode().strip() == "cidata"
        assert iso.has_rock_ridge() and iso.has_joliet()
        rr = {c.rock_ridge.name().decode() for c in iso.list_children(rr_path="/") if c.is_file()}
        joliet = {
            c.file_identifier().decode("utf-16-be")
            for c in iso.list_children(joliet_path="/")
            if c.is_file()
        }
    finally:
        iso.close()
    assert rr == {"meta-data", "user-data", "network-config"}
    assert {n.split(";")[0] for n in joliet} == rr


def test_blkid_sees_the_cidata_label(tmp_path: Path) -> None:
    blkid = shutil.which("blkid") or "/usr/sbin/blkid"
    assert Path(blkid).exists(), "blkid (util-linux) is needed for this test"
    seed = tmp_path / "seed.iso"
    build(seed)
    out = subprocess.run(
        [blkid, "-p", "-o", "export", str(seed)], capture_output=True, text=True, check=True
    ).stdout
    fields = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    assert fields["TYPE"] == "iso9660"
    assert fields["LABEL"] == "cidata"


def test_padded_to_at_least_one_mib(tmp_path: Path) -> None:
    seed = tmp_path / "seed.iso"
    build(seed)
    assert seed.stat().st_size >= MIN_SIZE
    assert seed.stat().st_size % 2048 == 0
    big = os.urandom(3 * MIN_SIZE)
    assert build(seed, user_data=big)["user-data"] == big
    assert seed.stat().st_size > 3 * MIN_SIZE


def test_written_atomically_with_mode_0600(tmp_path: Path) -> None:
    seed = tmp_path / "seed.iso"
    seed.write_bytes(b"old")
    seed.chmod(0o644)
    old_umask = os.umask(0)
    try:
        build(seed)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(seed.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["seed.iso"]


def test_a_failed_build_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    seed = tmp_path / "seed.iso"
    seed.write_bytes(b"old")
    with pytest.raises(InvalidInput):
        build(seed, meta_data={"bad key": "x"})
    assert seed.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["seed.iso"]


def yaml_load_with_pyyaml(texts: list[str]) -> list[object]:
    """Parse with PyYAML, the parser cloud-init uses."""
    import yaml

    return [yaml.safe_load(text) for text in texts]


def test_meta_data_values_are_quoted_safely_for_pyyaml() -> None:
    texts = [
        render_meta_data({"instance-id": "i-1", "local-hostname": name}).decode("utf-8")
        for name in ODD_HOSTNAMES
    ]
    loaded = yaml_load_with_pyyaml(texts)
    assert loaded == [{"instance-id": "i-1", "local-hostname": n} for n in ODD_HOSTNAMES]


def test_meta_data_is_one_line_per_key() -> None:
    for name in ODD_HOSTNAMES:
        text = render_meta_data({"local-hostname": name}).decode("utf-8")
        assert text.count("\n") == 1 and text.startswith('local-hostname: "')


@pytest.mark.parametrize("key", ["", "a b", "a:b", "x\n", "-", "#k"])
def test_meta_data_keys_are_validated(key: str) -> None:
    with pytest.raises(InvalidInput, match="not a valid meta-data key") as err:
        render_meta_data({key: "v"})
    assert err.value.hint


def test_meta_data_values_must_be_text() -> None:
    with pytest.raises(InvalidInput, match="must be a string"):
        render_meta_data({"instance-id": 5})  # type: ignore[dict-item]
    with pytest.raises(InvalidInput, match="not valid Unicode"):
        render_meta_data({"instance-id": "bad-\ud800"})


def test_read_seed_iso_refuses_non_iso(tmp_path: Path) -> None:
    junk = tmp_path / "junk.iso"
    junk.write_bytes(b"\0" * 100_000)
    with pytest.raises(InvalidInput, match="not a readable ISO 9660 image"):
        read_seed_iso(junk)


def test_read_seed_iso_limits_file_size(tmp_path: Path) -> None:
    seed = tmp_path / "seed.iso"
    build(seed, user_data=b"x" * 5000)
    with pytest.raises(InvalidInput, match="user-data"):
        read_seed_iso(seed, max_file_bytes=4096)


def test_network_config_names_the_nic_by_its_mac_for_dhcp() -> None:
    config = yaml.safe_load(render_network_config("52:54:00:ab:cd:ef"))
    assert config == {
        "version": 2,
        "ethernets": {
            "eth0": {
                "match": {"macaddress": "52:54:00:ab:cd:ef"},
                "set-name": "eth0",
                "dhcp4": True,
            }
        },
    }
    with pytest.raises(InvalidInput, match="invalid MAC"):
        render_network_config("52:54:00:ab:cd:ef\nversion: 1")


STATIC = StaticAddress(
    interface=ipaddress.IPv4Interface("10.64.0.2/24"),
    gateway=ipaddress.IPv4Address("10.64.0.1"),
    nameservers=(ipaddress.IPv4Address("10.64.0.1"),),
)


def test_network_config_gives_a_static_address_with_gateway_and_dns() -> None:
    config = yaml.safe_load(render_network_config("52:54:00:ab:cd:ef", STATIC))
    assert config == {
        "version": 2,
        "ethernets": {
            "eth0": {
                "match": {"macaddress": "52:54:00:ab:cd:ef"},
                "set-name": "eth0",
                "dhcp4": False,
                "addresses": ["10.64.0.2/24"],
                "routes": [{"to": "0.0.0.0/0", "via": "10.64.0.1"}],
                "nameservers": {"addresses": ["10.64.0.1"]},
            }
        },
    }


def test_a_static_address_also_travels_as_key_value_lines_for_small_guests(
    tmp_path: Path,
) -> None:
    files = build(tmp_path / "seed.iso", static_network=STATIC)
    assert files["gridvm-net"] == b"address=10.64.0.2/24\ngateway=10.64.0.1\nnameserver=10.64.0.1\n"
    assert "gridvm-net" not in build(tmp_path / "dhcp.iso")


def test_a_gateway_outside_the_subnet_is_refused() -> None:
    with pytest.raises(InvalidInput, match=r"gateway 10\.65\.0\.1"):
        StaticAddress(
            interface=ipaddress.IPv4Interface("10.64.0.2/24"),
            gateway=ipaddress.IPv4Address("10.65.0.1"),
        )


def test_the_vm_token_travels_in_its_own_file(tmp_path: Path) -> None:
    files = build(tmp_path / "seed.iso", vm_token="gvt.vm-1.1.2.abc_-")
    assert files["gridvm-token"] == b"gvt.vm-1.1.2.abc_-\n"
    assert b"gvt." not in files["meta-data"] + files["user-data"]
    with pytest.raises(InvalidInput, match="unexpected characters"):
        build(tmp_path / "bad.iso", vm_token="gvt.x\nuser-data: evil")
