from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import Cli


@pytest.fixture
def image(cli: Cli, qcow2: Path) -> str:
    cli.ok("image", "upload", str(qcow2), "--name", "base")
    return "base"


def test_secret_create_list_and_remove(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "proxy").write_bytes(b"-----PROXY----- very secret")
    assert "stored" in cli.ok("secret", "create", "proxy", str(tmp_path / "proxy")).stdout
    cli.ok("secret", "create", "token", "-", input="abc")
    listing = cli.ok("secret", "list").stdout
    assert "proxy" in listing and "token" in listing and "very secret" not in listing
    assert [s["name"] for s in cli.json("secret", "list")] == ["proxy", "token"]
    cli.ok("secret", "rm", "token")
    assert "no secret named 'token'" in cli.fails("secret", "rm", "token")
    assert "no such file" in cli.fails("secret", "create", "x", str(tmp_path / "missing"))


def test_run_with_an_unknown_secret_starts_nothing(cli: Cli, image: str) -> None:
    assert "no secret named 'nope'" in cli.fails("vm", "run", image, "--secret", "nope")
    assert cli.json("vm", "list") == []


@pytest.mark.parametrize("spec", ["nocolon", "file.txt:relative/path", ":/root/x"])
def test_bad_file_specs_are_refused(cli: Cli, image: str, spec: str) -> None:
    assert "--file" in cli.fails("vm", "run", image, "--file", spec)
    assert cli.json("vm", "list") == []


def test_files_reach_the_request(cli: Cli, image: str, tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text("a,b\n")
    made = cli.json("vm", "run", image, "--file", f"{tmp_path / 'in.csv'}:/root/in.csv")
    assert made["count"] == 1


def test_saving_a_vm_that_is_not_stopped_is_refused(cli: Cli, image: str) -> None:
    vm = cli.json("vm", "run", image, "--mode", "single")["vms"][0]
    assert "only a stopped single-mode VM" in cli.fails("vm", "save", vm["id"], "--name", "copy")
    assert json.loads(cli.ok("-o", "json", "image", "list").stdout)[0]["name"] == "base"


def test_ssh_key_add_list_and_remove(cli: Cli, tmp_path: Path) -> None:
    from tests.api.test_ssh_keys import FINGERPRINT, KEY

    (tmp_path / "id.pub").write_text(KEY + "\n")
    assert FINGERPRINT in cli.ok("ssh-key", "add", "laptop", str(tmp_path / "id.pub")).stdout
    assert "laptop" in cli.ok("ssh-key", "list").stdout
    assert "not an SSH public key" in cli.fails("ssh-key", "add", "bad", "-", input="nonsense")
    cli.ok("ssh-key", "rm", "laptop")
    assert cli.json("ssh-key", "list") == []
