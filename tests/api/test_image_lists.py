"""Signed HEPiX image lists: one site exports, another subscribes and follows changes."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from gridvm.common.config import ImagePolicySettings
from gridvm.images.imagelist import document, smime
from gridvm.store.models import Image
from tests.api.helpers import eventually, make_qcow2, make_user, upload
from tests.image_list_sites import (
    Endorsement,
    file_server,
    make_endorsement,
    past,
    resigned,
    signed_content,
    tampered,
)
from tests.scanned_disks import OSV_FEED, clean_debian, keyed_debian
from tests.servers import RunningServer, run_server


@pytest.fixture
def site_a_endorser() -> Endorsement:
    return make_endorsement()


@pytest.fixture
def site_a(tmp_path: Path, site_a_endorser: Endorsement) -> Iterator[RunningServer]:
    """The publishing site: its list and images are served without a token; it scans its
    images against the project's OSV feed, so that its officers may certify them."""
    cert, key, _ = site_a_endorser.write(tmp_path / "site-a-pki")
    settings = ImagePolicySettings(publish_image_list=True, endorser_cert=cert, endorser_key=key)
    with run_server(tmp_path / "site-a", images=settings, vuln_feed=str(OSV_FEED)) as running:
        yield running


def _certified_public_image(site: RunningServer, tmp_path: Path, name: str) -> str:
    """A clean Debian disk, inspected and scanned at upload, then certified."""
    admin = site.client()
    made = upload(admin, clean_debian(tmp_path, name), name, visibility="public")
    assert made.status_code == 201, made.text
    image_id: str = made.json()["id"]
    certified = admin.post(f"/api/v1/images/{image_id}/certifications", json={"reason": "ok"})
    assert certified.status_code == 201, certified.text
    return image_id


def _subscribe(client: httpx.Client, name: str, url: str, dn: str, ca: bytes) -> dict[str, object]:
    made = client.post(
        "/api/v1/image-lists",
        json={"name": name, "url": url, "endorser_dn": dn, "ca_pem": ca.decode()},
    )
    assert made.status_code == 201, made.text
    out: dict[str, object] = made.json()
    return out


def _from_list(client: httpx.Client) -> dict[str, dict[str, object]]:
    return {i["name"]: i for i in client.get("/api/v1/images").json() if "-" in i["name"]}


def test_export_is_signed_by_the_endorser_and_needs_an_officer(
    site_a: RunningServer, site_a_endorser: Endorsement, tmp_path: Path
) -> None:
    image = _certified_public_image(site_a, tmp_path, "analysis")
    upload(site_a.client(), make_qcow2(tmp_path / "p.qcow2", "16M"), "private-one")
    exported = site_a.client().get("/api/v1/image-list")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("application/pkcs7-mime")
    # openssl itself accepts it against the CA, as vmcatcher would.
    (tmp_path / "list.smime").write_bytes(exported.content)
    (tmp_path / "ca.pem").write_bytes(site_a_endorser.ca.cert_pem)
    checked = subprocess.run(
        ["openssl", "smime", "-verify", "-in", str(tmp_path / "list.smime"),
         "-CAfile", str(tmp_path / "ca.pem"), "-purpose", "any"],
        capture_output=True, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    listed = document.parse(checked.stdout)
    assert listed.endorser.dn == site_a_endorser.dn
    assert [i.title for i in listed.images] == ["analysis"]  # not the private user image
    assert listed.images[0].uri.endswith(f"/api/v1/public/image-list/images/{image}")
    served = httpx.get(listed.images[0].uri)  # no token: the site publishes its list
    assert hashlib.sha512(served.content).hexdigest() == listed.images[0].sha512
    assert len(served.content) == listed.images[0].size
    # It boots from its disk: plain HEPiX, no kernel beside it.
    assert listed.images[0].kernel_boot is None
    assert httpx.get(f"{listed.images[0].uri}/kernel").status_code == 404

    alice = make_user(site_a, "alice")
    assert alice.get("/api/v1/image-list").status_code == 403


def test_the_list_is_not_published_by_default(server: RunningServer) -> None:
    response = httpx.get(f"{server.url}/api/v1/public/image-list")
    assert response.status_code == 404
    assert "does not publish" in response.json()["message"]
    kernel = httpx.get(f"{server.url}/api/v1/public/image-list/images/img_x/kernel")
    assert kernel.status_code == 404 and "does not publish" in kernel.json()["message"]


def test_subscribe_follow_and_refuse_bad_lists(
    server: RunningServer,
    site_a: RunningServer,
    site_a_endorser: Endorsement,
    tmp_path: Path,
) -> None:
    b = server.client()  # site B, the subscriber
    first = _certified_public_image(site_a, tmp_path, "analysis")
    good = site_a.client().get("/api/v1/image-list").content
    served = tmp_path / "served"
    served.mkdir()
    (served / "list.smime").write_bytes(good)
    ca = site_a_endorser.ca.cert_pem

    with file_server(served) as base:
        url = f"{base}/list.smime"
        sub = _subscribe(b, "sitea", url, site_a_endorser.dn, ca)
        assert sub["last_error"] is None, sub["last_error"]
        assert (sub["images"], sub["certified"]) == (1, 1)
        taken = _from_list(b)["sitea-analysis"]
        assert (taken["trust"], taken["visibility"], taken["certification"]) == (
            "certified", "public", "valid",
        )  # fmt: skip
        history = b.get(f"/api/v1/images/{taken['id']}/certifications").json()
        assert [(h["source"], h["certified_by"]) for h in history] == [
            ("imagelist", "imagelist sitea")
        ]
        # The certification lasts as long as the list.
        expires = document.parse(signed_content(good)).expires
        assert history[0]["expires_at"].startswith(expires.strftime("%Y-%m-%dT%H:%M"))
        # A user of site B may run it in the trusted zone.
        alice = make_user(server, "alice")
        run = alice.post("/api/v1/vms", json={"image": taken["id"], "memory_mb": 128})
        assert run.status_code == 201 and run.json()["vms"][0]["zone"] == "trusted"

        def refresh() -> dict[str, object]:
            out: dict[str, object] = b.post("/api/v1/image-lists/sitea/refresh").json()
            return out

        # A byte of the content changed: the signature no longer verifies; nothing changes.
        (served / "list.smime").write_bytes(tampered(good, b'"analysis"', b'"analysiz"'))
        assert "content or signature was changed" in str(refresh()["last_error"])
        assert _from_list(b)["sitea-analysis"]["trust"] == "certified"
        assert len(_from_list(b)) == 1

        # Signed by another endorser of the same CA: not the subscription's DN.
        other = make_endorsement(name="Someone else", ca=site_a_endorser.ca)
        (served / "list.smime").write_bytes(resigned(good, other))
        error = str(refresh()["last_error"])
        assert f"signed by {other.dn}, not by the endorser {site_a_endorser.dn}" in error

        # Signed by an endorser of another CA: the chain fails.
        (served / "list.smime").write_bytes(resigned(good, make_endorsement("Elsewhere")))
        assert "not issued by the subscription's CA" in str(refresh()["last_error"])
        assert _from_list(b)["sitea-analysis"]["certification"] == "valid"

        # Site A stops listing "analysis" and lists "second": de-listed here, second taken.
        site_a.client().post(
            f"/api/v1/images/{first}/certifications/revoke", json={"reason": "superseded"}
        )
        _certified_public_image(site_a, tmp_path, "second")
        newer = site_a.client().get("/api/v1/image-list").content
        (served / "list.smime").write_bytes(newer)
        after = refresh()
        assert after["last_error"] is None, after["last_error"]
        held = _from_list(b)
        assert (held["sitea-analysis"]["trust"], held["sitea-analysis"]["certification"]) == (
            "user", "revoked",
        )  # fmt: skip
        revoked = b.get(f"/api/v1/images/{held['sitea-analysis']['id']}/certifications").json()
        assert (revoked[-1]["revoked_by"], revoked[-1]["revoke_reason"]) == (
            "imagelist sitea", "de-listed",
        )  # fmt: skip
        assert held["sitea-second"]["trust"] == "certified"

        # An expired list (properly signed): refused, and its certifications end.
        expired = resigned(newer, site_a_endorser, expires=past(1), created=past(31))
        (served / "list.smime").write_bytes(expired)
        assert "the list expired" in str(refresh()["last_error"])
        second = _from_list(b)["sitea-second"]
        assert (second["trust"], second["certification"]) == ("user", "expired")
        listing = b.get("/api/v1/image-lists").json()
        assert [(s["name"], s["images"], s["certified"]) for s in listing] == [("sitea", 2, 0)]

    # Gone: the subscription; its images stay.
    assert b.delete("/api/v1/image-lists/sitea").status_code == 204
    assert b.get("/api/v1/image-lists").json() == []
    assert set(_from_list(b)) == {"sitea-analysis", "sitea-second"}


def test_a_download_that_does_not_match_the_list_is_not_kept(
    server: RunningServer, site_a: RunningServer, site_a_endorser: Endorsement, tmp_path: Path
) -> None:
    _certified_public_image(site_a, tmp_path, "analysis")
    good = site_a.client().get("/api/v1/image-list").content
    listed = document.parse(signed_content(good))
    wrong = listed.images[0].__class__(**{**listed.images[0].__dict__, "sha512": "0" * 128})
    served = tmp_path / "served"
    served.mkdir()
    (served / "list.smime").write_bytes(resigned(good, site_a_endorser, images=(wrong,)))
    before = {p for p in (server.data_dir / "images").rglob("*") if p.is_file()}
    with file_server(served) as base:
        sub = _subscribe(
            server.client(), "sitea", f"{base}/list.smime", site_a_endorser.dn,
            site_a_endorser.ca.cert_pem,
        )  # fmt: skip
    assert "does not match the list's SHA-512" in str(sub["last_error"])
    assert sub["images"] == 0
    after = {p for p in (server.data_dir / "images").rglob("*") if p.is_file()}
    assert after == before


def test_subscribing_needs_an_officer_and_a_ca(server: RunningServer) -> None:
    alice = make_user(server, "alice")
    body = {"name": "x", "url": "http://127.0.0.1:9/l", "endorser_dn": "/CN=x", "ca_pem": "x"}
    assert alice.post("/api/v1/image-lists", json=body).status_code == 403
    refused = server.client().post("/api/v1/image-lists", json=body)
    assert refused.status_code == 422 and "not a PEM certificate" in refused.json()["message"]
    assert server.client().get("/api/v1/image-lists").json() == []


def test_subscriptions_are_refreshed_periodically(
    site_a: RunningServer, site_a_endorser: Endorsement, tmp_path: Path
) -> None:
    _certified_public_image(site_a, tmp_path, "analysis")
    good = site_a.client().get("/api/v1/image-list").content
    served = tmp_path / "served"
    served.mkdir()
    (served / "list.smime").write_bytes(good)
    often = ImagePolicySettings(image_list_refresh_s=0.5)
    with run_server(tmp_path / "site-b", images=often) as site_b, file_server(served) as base:
        b = site_b.client()
        sub = _subscribe(
            b, "sitea", f"{base}/list.smime", site_a_endorser.dn, site_a_endorser.ca.cert_pem
        )
        assert sub["last_error"] is None
        (served / "list.smime").write_bytes(tampered(good, b'"analysis"', b'"analysiz"'))
        eventually(lambda: b.get("/api/v1/image-lists").json()[0]["last_error"], timeout=15)
        assert "changed after signing" in b.get("/api/v1/image-lists").json()[0]["last_error"]


def test_a_local_revocation_outranks_the_list(
    server: RunningServer, site_a: RunningServer, site_a_endorser: Endorsement, tmp_path: Path
) -> None:
    _certified_public_image(site_a, tmp_path, "analysis")
    served = tmp_path / "served"
    served.mkdir()
    (served / "list.smime").write_bytes(site_a.client().get("/api/v1/image-list").content)
    b = server.client()
    with file_server(served) as base:
        dn, ca = site_a_endorser.dn, site_a_endorser.ca.cert_pem
        assert _subscribe(b, "sitea", f"{base}/list.smime", dn, ca)["last_error"] is None
        taken = _from_list(b)["sitea-analysis"]["id"]
        revoked = b.post(
            f"/api/v1/images/{taken}/certifications/revoke", json={"reason": "not here"}
        )
        assert revoked.status_code == 200
        again = b.post("/api/v1/image-lists/sitea/refresh").json()
        assert again["last_error"] is None and again["certified"] == 0
        assert _from_list(b)["sitea-analysis"]["certification"] == "revoked"


def test_a_listed_image_carrying_credentials_is_not_certified_here(
    server: RunningServer, site_a_endorser: Endorsement, tmp_path: Path
) -> None:
    """The list vouches for its images, but this site's own inspection still counts."""
    served = tmp_path / "served"
    served.mkdir()
    disk = keyed_debian(served, "keyed")
    data = disk.read_bytes()
    now = datetime.now(UTC)
    with file_server(served) as base:
        listed = document.ListedImage(
            identifier="0f4d1c2e-3b5a-5c6d-8e7f-9a0b1c2d3e4f",
            title="keyed",
            sha512=hashlib.sha512(data).hexdigest(),
            size=len(data),
            uri=f"{base}/keyed.qcow2",
        )
        image_list = document.ImageList(
            identifier="1a2b3c4d-5e6f-5a7b-8c9d-0e1f2a3b4c5d",
            title="site A",
            created=now,
            expires=now + timedelta(days=7),
            version="1",
            uri=f"{base}/list.smime",
            endorser=document.Endorser(site_a_endorser.dn, "/O=Site A/CN=Site A CA"),
            images=(listed,),
        )
        signer = site_a_endorser.signer
        message = smime.sign(document.to_json(image_list), signer.cert_pem, signer.key_pem)
        (served / "list.smime").write_bytes(message)
        sub = _subscribe(
            server.client(), "sitea", f"{base}/list.smime", site_a_endorser.dn,
            site_a_endorser.ca.cert_pem,
        )  # fmt: skip
    assert (sub["images"], sub["certified"]) == (1, 0)
    assert "'sitea-keyed' is not certified here: it carries credentials" in str(sub["last_error"])
    taken = _from_list(server.client())["sitea-keyed"]
    assert taken["trust"] == "user"


def _boot_files(site: RunningServer, image_id: str) -> tuple[str | None, str | None]:
    """The kernel and initrd blobs an image boots with (not in the API's answers)."""
    with site.services.db.session() as s:
        image = s.get_one(Image, image_id)
        return image.kernel_digest, image.initrd_digest


def _signed_list(body: dict[str, object], by: Endorsement) -> bytes:
    content = json.dumps(body, indent=2, sort_keys=True).encode() + b"\n"
    return smime.sign(content, by.signer.cert_pem, by.signer.key_pem)


def test_kernel_boot_images_travel_with_their_kernel_and_initrd(
    server: RunningServer, site_a_endorser: Endorsement, tmp_path: Path, starter_dir: Path
) -> None:
    starters = tmp_path / "starters"
    shutil.copytree(starter_dir / "tiny", starters / "tiny")
    manifest = json.loads((starters / "tiny" / "manifest.json").read_text())
    cert, key, _ = site_a_endorser.write(tmp_path / "site-a-pki")
    settings = ImagePolicySettings(publish_image_list=True, endorser_cert=cert, endorser_key=key)
    b = server.client()
    with run_server(tmp_path / "site-a", images=settings, starter_dir=starters) as site_a:
        # Site A lists its tiny template (a site image booted with a kernel and initrd).
        tiny = next(i for i in site_a.client().get("/api/v1/images").json() if i["name"] == "tiny")
        assert tiny["boot_mode"] == "kernel"
        public_url = f"{site_a.url}/api/v1/public/image-list"
        good = httpx.get(public_url).content
        listed = document.parse(signed_content(good)).images
        assert [i.title for i in listed] == ["tiny"]
        boot = listed[0].kernel_boot
        assert boot is not None and boot.initrd is not None
        assert (boot.cmdline, boot.min_memory_mb) == (manifest["kernel_cmdline"], 128)
        assert boot.kernel.uri == f"{listed[0].uri}/kernel"
        for part, file in (("vmlinuz", boot.kernel), ("initrd.img", boot.initrd)):
            served = httpx.get(file.uri)  # no token, like the disk
            assert served.content == (starters / "tiny" / part).read_bytes()
            assert (hashlib.sha512(served.content).hexdigest(), len(served.content)) == (
                file.sha512, file.size,
            )  # fmt: skip

        dn, ca = site_a_endorser.dn, site_a_endorser.ca.cert_pem
        served_dir = tmp_path / "served"
        served_dir.mkdir()
        before = {p for p in (server.data_dir / "images").rglob("*") if p.is_file()}
        with file_server(served_dir) as base:
            # A kernel changed on the way (same size, one byte): nothing of the image kept.
            kernel = bytearray((starters / "tiny" / "vmlinuz").read_bytes())
            kernel[4096] ^= 0xFF
            (served_dir / "vmlinuz").write_bytes(kernel)
            swapped = document.KernelBoot(
                **{**boot.__dict__, "kernel": document.BootFile(**{
                    **boot.kernel.__dict__, "uri": f"{base}/vmlinuz"})}
            )  # fmt: skip
            bad_image = document.ListedImage(**{**listed[0].__dict__, "kernel_boot": swapped})
            (served_dir / "bad.smime").write_bytes(
                resigned(good, site_a_endorser, images=(bad_image,))
            )
            bad = _subscribe(b, "bad", f"{base}/bad.smime", dn, ca)
            assert "the kernel download" in str(bad["last_error"])
            assert "does not match the list's kernel SHA-512" in str(bad["last_error"])
            assert bad["images"] == 0

            # An entry naming a kernel but no initrd checksum: refused, and said why.
            body = json.loads(signed_content(good))
            body["hv:imagelist"]["dc:identifier"] = "7c1d2e3f-4a5b-5c6d-8e9f-0a1b2c3d4e5f"
            del body["hv:imagelist"]["hv:images"][0]["hv:image"]["gridvm:initrd_sha512"]
            (served_dir / "partial.smime").write_bytes(_signed_list(body, site_a_endorser))
            partial = _subscribe(b, "partial", f"{base}/partial.smime", dn, ca)
            assert "'kernel' but it lacks gridvm:initrd_sha512" in str(partial["last_error"])
            assert partial["images"] == 0
        after = {p for p in (server.data_dir / "images").rglob("*") if p.is_file()}
        assert after == before

        # The list as published: the image arrives with its kernel, initrd and command line.
        sub = _subscribe(b, "sitea", public_url, dn, ca)
        assert sub["last_error"] is None, sub["last_error"]
        assert (sub["images"], sub["certified"]) == (1, 1)
        taken = _from_list(b)["sitea-tiny"]
        assert (taken["boot_mode"], taken["trust"], taken["certification"]) == (
            "kernel", "certified", "valid",
        )  # fmt: skip
        assert (taken["kernel_cmdline"], taken["min_memory_mb"]) == (
            manifest["kernel_cmdline"],
            128,
        )
        assert _boot_files(server, str(taken["id"])) == _boot_files(site_a, tiny["id"])

        # The publisher changes the command line (same disk): that is a new image here, and
        # the one booted the old way is de-listed.
        with file_server(served_dir) as base:
            (served_dir / "list.smime").write_bytes(good)
            assert _subscribe(b, "mirror", f"{base}/list.smime", dn, ca)["last_error"] is None
            changed = document.ListedImage(
                **{**listed[0].__dict__, "kernel_boot": document.KernelBoot(
                    **{**boot.__dict__, "cmdline": f"{boot.cmdline} loglevel=3"})}
            )  # fmt: skip
            (served_dir / "list.smime").write_bytes(
                resigned(good, site_a_endorser, images=(changed,))
            )
            refreshed = b.post("/api/v1/image-lists/mirror/refresh").json()
            assert refreshed["last_error"] is None, refreshed["last_error"]
        versions = {
            v["version"]: (v["kernel_cmdline"], v["certification"])
            for v in b.get("/api/v1/images/mirror-tiny/versions").json()
        }
        assert versions == {
            1: (manifest["kernel_cmdline"], "revoked"),
            2: (f"{manifest['kernel_cmdline']} loglevel=3", "valid"),
        }

    # A user of site B may run it (in the trusted zone), with the memory it needs.
    alice = make_user(server, "alice")
    small = alice.post("/api/v1/vms", json={"image": taken["id"], "memory_mb": 64})
    assert small.status_code == 422 and "needs at least 128 MiB" in small.json()["message"]
    run = alice.post("/api/v1/vms", json={"image": taken["id"], "memory_mb": 128})
    assert run.status_code == 201, run.text
    assert run.json()["vms"][0]["zone"] == "trusted"
