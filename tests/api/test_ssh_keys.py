from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.api.helpers import assigned, make_qcow2, make_user, register_host, upload
from tests.servers import RunningServer

# Made with ssh-keygen -t ed25519; its fingerprint is what `ssh-keygen -lf` printed.
KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKxSeNAI5CFnfP6LtOi3aXasekAPX0GhNC8snRXGRKzK alice@laptop"
)
FINGERPRINT = "SHA256:WCTXa2vzu/TvAKl1/rrOUD089bpkL9y+lLBGtnARvnc"


@pytest.fixture
def admin(server: RunningServer, tmp_path: Path) -> httpx.Client:
    client = server.client()
    upload(client, make_qcow2(tmp_path / "a.qcow2"), "base", visibility="public")
    return client


def test_a_key_is_kept_with_its_fingerprint_and_reaches_the_vm(
    server: RunningServer, admin: httpx.Client
) -> None:
    added = admin.post("/api/v1/ssh-keys", json={"name": "laptop", "public_key": KEY + "\n"})
    assert added.status_code == 201
    assert (added.json()["fingerprint"], added.json()["public_key"]) == (FINGERPRINT, KEY)
    agent = register_host(server)
    vm = admin.post("/api/v1/vms", json={"image": "base", "ssh_keys": ["laptop"]}).json()["vms"][0]
    wanted = assigned(agent, vm["id"])
    assert (wanted["ssh_public_keys"], wanted["has_launch_files"]) == ([KEY], False)
    assert admin.delete("/api/v1/ssh-keys/laptop").status_code == 204
    assert admin.get("/api/v1/ssh-keys").json() == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hello", "not an SSH public key"),
        ("ssh-ed25519 !!!notbase64", "damaged"),
        ("ssh-rsa " + KEY.split()[1], "says ssh-rsa but holds a ssh-ed25519 key"),
        (KEY + "\nssh-ed25519 AAAA", "not an SSH public key"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----", "not an SSH public key"),
    ],
)
def test_things_that_are_not_public_keys_are_refused(
    server: RunningServer, admin: httpx.Client, text: str, message: str
) -> None:
    response = admin.post("/api/v1/ssh-keys", json={"name": "k", "public_key": text})
    assert response.status_code == 422
    assert message in response.json()["message"]
    assert admin.get("/api/v1/ssh-keys").json() == []


def test_only_your_own_keys_can_be_chosen(server: RunningServer, admin: httpx.Client) -> None:
    bob = make_user(server, "bob")
    bob.post("/api/v1/ssh-keys", json={"name": "bobs", "public_key": KEY})
    response = admin.post("/api/v1/vms", json={"image": "base", "ssh_keys": ["bobs"]})
    assert response.status_code == 404
    assert "no SSH key named 'bobs'" in response.json()["message"]
    assert admin.get("/api/v1/vms").json() == []
