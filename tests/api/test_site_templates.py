"""Admins add site templates: an admin's image becomes a public ``site`` image and back."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.api.helpers import make_qcow2, make_user, upload
from tests.servers import RunningServer


def test_an_admin_makes_an_image_a_template_everyone_sees_and_unmakes_it(
    server: RunningServer, tmp_path: Path
) -> None:
    admin = server.client()
    alice = make_user(server, "alice")
    made = upload(admin, make_qcow2(tmp_path / "base.qcow2"), "site-base").json()
    assert made["trust"] == "user" and made["visibility"] == "private"
    assert alice.get("/api/v1/images/site-base").status_code == 404

    template = admin.post("/api/v1/images/site-base/template")
    assert template.status_code == 200, template.text
    assert (template.json()["trust"], template.json()["visibility"]) == ("site", "public")
    seen = alice.get("/api/v1/images/site-base").json()
    assert (seen["id"], seen["trust"]) == (made["id"], "site")
    again = admin.post("/api/v1/images/site-base/template")
    assert again.status_code == 409
    assert "a site template already" in again.json()["message"]

    removed = admin.delete("/api/v1/images/site-base/template")
    assert removed.status_code == 200, removed.text
    assert removed.json()["trust"] == "user"
    assert admin.delete("/api/v1/images/site-base/template").status_code == 409


def test_only_admins_make_templates_and_only_of_the_sites_images(
    server: RunningServer, tmp_path: Path
) -> None:
    alice = make_user(server, "alice")
    upload(alice, make_qcow2(tmp_path / "mine.qcow2"), "mine")
    refused = alice.post("/api/v1/images/mine/template")
    assert refused.status_code == 403
    assert "admin" in refused.json()["message"]

    mine = alice.get("/api/v1/images/mine").json()
    not_the_sites = server.client().post(f"/api/v1/images/{mine['id']}/template")
    assert not_the_sites.status_code == 422
    assert "belongs to alice" in not_the_sites.json()["message"]
    assert "as an admin" in not_the_sites.json()["hint"]
    assert alice.get("/api/v1/images/mine").json()["trust"] == "user"


def test_an_uploaded_template_runs_but_recipes_cannot_build_on_it(
    server: RunningServer, tmp_path: Path
) -> None:
    admin = server.client()
    upload(admin, make_qcow2(tmp_path / "up.qcow2"), "uploaded-base")
    admin.post("/api/v1/images/uploaded-base/template")
    alice: httpx.Client = make_user(server, "alice")
    response = alice.post(
        "/api/v1/builds", json={"name": "child", "template": "uploaded-base", "packages": ["jq"]}
    )
    assert response.status_code == 422
    assert "has no build record" in response.json()["message"]
    assert "debian-12-minimal" in response.json()["hint"]
