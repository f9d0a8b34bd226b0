"""Certification of images by security officers, and the zones their VMs may run in.

The images are real disks, inspected and scanned by the server at upload against the
project's OSV feed (see tests/scanned_disks.py for what each disk yields).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from tests.api.helpers import (
    eventually,
    host_registration,
    make_qcow2,
    make_user,
    register_host,
    run_then_stop,
    upload,
)
from tests.certification_time import set_certification_expiry
from tests.scanned_disks import (
    BELOW_BLOCK_VULN,
    clean_debian,
    keyed_debian,
    old_glibc_debian,
    old_openssl_debian,
)
from tests.servers import RunningServer


def _officer(server: RunningServer) -> httpx.Client:
    admin = server.client()
    admin.post("/api/v1/groups", json={"name": "security"})
    made = admin.post(
        "/api/v1/users", json={"name": "olga", "group": "security", "role": "officer"}
    )
    assert made.status_code == 201, made.text
    token = admin.post("/api/v1/tokens", json={"user": "olga"}).json()["token"]
    return server.client(token)


def _image(owner: httpx.Client, disk: Path, name: str) -> str:
    made = upload(owner, disk, name)
    assert made.status_code == 201, made.text
    image_id: str = made.json()["id"]
    return image_id


def _certify(client: httpx.Client, ref: str, **body: object) -> httpx.Response:
    return client.post(f"/api/v1/images/{ref}/certifications", json={"reason": "reviewed", **body})


def _run(client: httpx.Client, image: str, zone: str | None = None) -> httpx.Response:
    body: dict[str, object] = {"image": image, "memory_mb": 128}
    if zone is not None:
        body["zone"] = zone
    return client.post("/api/v1/vms", json=body)


def test_an_officer_certifies_an_inspected_clean_image_and_revokes_it(
    scanned_server: RunningServer, tmp_path: Path
) -> None:
    officer = _officer(scanned_server)
    assert officer.get("/api/v1/whoami").json()["role"] == "officer"
    alice = make_user(scanned_server, "alice")
    blank = _image(alice, make_qcow2(tmp_path / "blank.qcow2", "16M"), "blank")
    image = _image(alice, old_openssl_debian(tmp_path, "analysis"), "analysis")
    # Alice's private images: the officer sees them, to inspect and certify them.
    assert sorted(i["id"] for i in officer.get("/api/v1/images").json()) == sorted([blank, image])

    # Inspected at upload: a blank disk has no file system to read. Refused, with the reason.
    refused = _certify(officer, blank)
    assert refused.status_code == 409
    assert "its inspection could not read it" in refused.json()["message"]

    # Scanned at upload: a vulnerability below the block severity does not stop it.
    scan = officer.get(f"/api/v1/images/{image}/vulnerabilities").json()
    assert [(v["id"], v["severity"]) for v in scan["vulns"]] == [(BELOW_BLOCK_VULN, "unknown")]
    until = datetime.now(UTC) + timedelta(days=30)
    made = _certify(officer, image, expires_at=until.isoformat())
    assert made.status_code == 201, made.text
    cert = made.json()
    assert (cert["source"], cert["certified_by"], cert["state"]) == ("officer", "olga", "valid")
    shown = alice.get(f"/api/v1/images/{image}").json()
    assert (shown["trust"], shown["certification"]) == ("certified", "valid")
    assert shown["certification_until"].startswith(until.strftime("%Y-%m-%d"))

    # The owner may not revoke, nor certify.
    assert (
        alice.post(
            f"/api/v1/images/{image}/certifications/revoke", json={"reason": "x"}
        ).status_code
        == 403
    )
    assert _certify(alice, image).status_code == 403

    revoked = officer.post(
        f"/api/v1/images/{image}/certifications/revoke", json={"reason": "CVE-2026-9 found"}
    )
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()[0]["revoked_by"] == "olga"
    shown = alice.get(f"/api/v1/images/{image}").json()
    assert (shown["trust"], shown["certification"]) == ("user", "revoked")
    history = alice.get(f"/api/v1/images/{image}/certifications").json()
    assert [(h["state"], h["reason"], h["revoke_reason"]) for h in history] == [
        ("revoked", "reviewed", "CVE-2026-9 found")
    ]
    again = officer.post(f"/api/v1/images/{image}/certifications/revoke", json={"reason": "x"})
    assert again.status_code == 409


def test_certification_is_refused_for_unreadable_credentials_or_vulnerable_images(
    scanned_server: RunningServer, tmp_path: Path
) -> None:
    admin = scanned_server.client()  # admins hold officer powers
    blank = _image(admin, make_qcow2(tmp_path / "blank.qcow2", "16M"), "blank")
    refused = _certify(admin, blank)
    assert refused.status_code == 409
    assert (
        "could not read it (no file system or partition table was found on the disk"
        in refused.json()["message"]
    )

    keyed = _image(admin, keyed_debian(tmp_path, "keyed"), "keyed")
    refused = _certify(admin, keyed)
    assert refused.status_code == 409
    assert (
        "carries credentials: ssh_private_key at /root/.ssh/id_ed25519" in refused.json()["message"]
    )

    # glibc before its security update: the high CVE in each of its packages; the DSA
    # (no severity in the feed, so below the block severity) is not a reason.
    old = _image(admin, old_glibc_debian(tmp_path, "old-glibc"), "old-glibc")
    refused = _certify(admin, old)
    assert refused.status_code == 409
    message = refused.json()["message"]
    assert "vulnerabilities at or above high: DEBIAN-CVE-2023-4911 (high, libc-bin)" in message
    assert "DEBIAN-CVE-2023-4911 (high, libc6)" in message
    assert "DSA-5514-1" not in message
    for image in (blank, keyed, old):
        assert admin.get(f"/api/v1/images/{image}").json()["trust"] == "user"


def test_without_a_vulnerability_feed_nothing_is_certified(
    server: RunningServer, tmp_path: Path
) -> None:
    admin = server.client()  # this server has no feed: uploads are inspected, not scanned
    image = _image(admin, clean_debian(tmp_path, "base"), "base")
    assert admin.get(f"/api/v1/images/{image}/vulnerabilities").json()["scanned"] is False
    refused = _certify(admin, image)
    assert refused.status_code == 409
    assert "have not been scanned for vulnerabilities yet" in refused.json()["message"]
    assert admin.get(f"/api/v1/images/{image}").json()["trust"] == "user"


def test_expiry_limits_and_lapse(scanned_server: RunningServer, tmp_path: Path) -> None:
    admin = scanned_server.client()
    image = _image(admin, clean_debian(tmp_path, "base"), "base")
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    assert _certify(admin, image, expires_at=past).status_code == 422
    far = (datetime.now(UTC) + timedelta(days=400)).isoformat()
    too_long = _certify(admin, image, expires_at=far)
    assert too_long.status_code == 422 and "at most 365 days" in too_long.json()["message"]
    default = _certify(admin, image).json()  # the site's default length: 90 days
    assert default["expires_at"].startswith(
        (datetime.now(UTC) + timedelta(days=90)).strftime("%Y-%m-%d")
    )
    set_certification_expiry(scanned_server, image, datetime.now(UTC) - timedelta(hours=1))
    shown = admin.get(f"/api/v1/images/{image}").json()
    assert (shown["trust"], shown["certification"]) == ("user", "expired")


def test_zones_follow_the_class_and_refusals_say_why(
    scanned_server: RunningServer, tmp_path: Path
) -> None:
    register_host(scanned_server)
    admin = scanned_server.client()
    alice = make_user(scanned_server, "alice")
    # Scanned: one vulnerability, below the block severity.
    image = _image(alice, old_openssl_debian(tmp_path, "analysis"), "analysis")

    # A user image: the DMZ by default, never the trusted zone.
    made = _run(alice, image)
    assert made.status_code == 201, made.text
    assert made.json()["vms"][0]["zone"] == "dmz"
    refused = _run(alice, image, "trusted")
    assert refused.status_code == 403
    body = refused.json()
    assert "a user image runs only in the DMZ zone" in body["message"]
    assert "--zone dmz" in body["hint"]

    # Certified: the trusted zone by default, the DMZ if asked.
    assert _certify(admin, image).status_code == 201
    assert _run(alice, image).json()["vms"][0]["zone"] == "trusted"
    assert _run(alice, image, "dmz").json()["vms"][0]["zone"] == "dmz"

    # Expired: refused in the trusted zone, with the DMZ as the way out.
    set_certification_expiry(scanned_server, image, datetime.now(UTC) - timedelta(days=1))
    refused = _run(alice, image, "trusted")
    assert refused.status_code == 403
    assert "certification was expired" in refused.json()["message"]
    assert "--zone dmz" in refused.json()["hint"]
    assert _run(alice, image).json()["vms"][0]["zone"] == "dmz"

    # Vulnerable beyond the block severity, or carrying credentials: refused anywhere.
    old = _image(alice, old_glibc_debian(tmp_path, "old-glibc"), "old-glibc")
    refused = _run(alice, old, "dmz")
    assert refused.status_code == 403 and "high vulnerability" in refused.json()["message"]
    keyed = _image(alice, keyed_debian(tmp_path, "keyed"), "keyed")
    refused = _run(alice, keyed, "dmz")
    assert refused.status_code == 403
    assert (
        "carries credentials (ssh_private_key at /root/.ssh/id_ed25519)"
        in refused.json()["message"]
    )


def test_vms_are_placed_in_their_zone(scanned_server: RunningServer, tmp_path: Path) -> None:
    agent = register_host(scanned_server)
    dmz_only = host_registration(zones=["dmz"])
    assert agent.post("/api/v1/agent/register", json=dmz_only).status_code == 200
    admin = scanned_server.client()
    image = _image(admin, clean_debian(tmp_path, "base"), "base")
    assert _certify(admin, image).status_code == 201
    # Certified, asked for the trusted zone: the DMZ-only host will not take it.
    trusted = _run(admin, image, "trusted").json()["id"]
    dmz = _run(admin, image, "dmz").json()["id"]

    def vm_of(deployment: str) -> dict[str, object]:
        vm: dict[str, object] = admin.get(f"/api/v1/deployments/{deployment}").json()["vms"][0]
        return vm

    eventually(lambda: vm_of(dmz)["state"] == "scheduled")
    eventually(lambda: "zone" in str(vm_of(trusted)["pending_reason"] or ""))
    assert vm_of(trusted)["state"] == "pending"


def test_queued_trusted_vms_fail_when_the_image_is_revoked(
    scanned_server: RunningServer, tmp_path: Path
) -> None:
    admin = scanned_server.client()  # no host: the VMs wait
    image = _image(admin, clean_debian(tmp_path, "base"), "base")
    assert _certify(admin, image).status_code == 201
    trusted = _run(admin, image).json()["id"]
    dmz = _run(admin, image, "dmz").json()["id"]
    revoked = admin.post(
        f"/api/v1/images/{image}/certifications/revoke", json={"reason": "CVE-2026-7"}
    )
    assert revoked.status_code == 200

    def vm_of(deployment: str) -> dict[str, object]:
        vm: dict[str, object] = admin.get(f"/api/v1/deployments/{deployment}").json()["vms"][0]
        return vm

    eventually(lambda: vm_of(trusted)["state"] == "failed")
    reason = str(vm_of(trusted)["exit_reason"])
    assert "certification of image 'base' was revoked" in reason and "--zone dmz" in reason
    assert vm_of(dmz)["state"] == "pending"  # the DMZ run is unaffected


def test_a_stopped_trusted_vm_may_not_start_once_its_image_is_revoked(
    scanned_server: RunningServer, tmp_path: Path
) -> None:
    agent = register_host(scanned_server)
    admin = scanned_server.client()
    image = _image(admin, clean_debian(tmp_path, "base"), "base")
    assert _certify(admin, image).status_code == 201
    body = {"image": image, "memory_mb": 128, "mode": "single"}
    vm = admin.post("/api/v1/vms", json=body).json()["vms"][0]
    assert vm["zone"] == "trusted"
    run_then_stop(admin, agent, vm)
    assert admin.get(f"/api/v1/vms/{vm['id']}").json()["state"] == "stopped"
    admin.post(f"/api/v1/images/{image}/certifications/revoke", json={"reason": "CVE"})
    refused = admin.post(f"/api/v1/vms/{vm['id']}/start")
    assert refused.status_code == 403
    assert (
        "may not start again: the certification of image 'base' was revoked"
        in (refused.json()["message"])
    )
    assert "gridvm vm save" in refused.json()["hint"]
    assert admin.get(f"/api/v1/vms/{vm['id']}").json()["state"] == "stopped"
