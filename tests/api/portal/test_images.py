"""The "My images" page: the list, adding from a template, upload, rename, share, delete."""

from __future__ import annotations

import html
import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from gridvm.common.config import SiteLimits
from tests.api.helpers import make_qcow2, make_user, upload
from tests.api.portal.conftest import PortalClient
from tests.scanned_disks import OSV_FEED, clean_debian, old_glibc_debian
from tests.servers import RunningServer, run_server


def _token(client: httpx.Client) -> str:
    return client.headers["authorization"].removeprefix("Bearer ")


def _rows(page: str) -> list[str]:
    """The image names in table#images, in order."""
    table = page.split('id="images"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<tr data-image-name="([^"]+)"', table)


def _row(page: str, name: str) -> str:
    found = re.search(rf'<tr data-image-name="{re.escape(name)}".*?</tr>', page, re.S)
    assert found, f"no row for {name}"
    return found.group(0)


def _text(fragment: str) -> str:
    """What a reader sees of an HTML fragment: tags out, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


@pytest.fixture
def site(server: RunningServer, tmp_path: Path) -> dict[str, Any]:
    """A site template ``base`` (made by the admin), and alice of group physics."""
    admin = server.client()
    assert upload(admin, make_qcow2(tmp_path / "base.qcow2", "32M"), "base").status_code == 201
    template: dict[str, Any] = admin.post("/api/v1/images/base/template").json()
    return template


@pytest.fixture
def alice(server: RunningServer, site: dict[str, Any]) -> tuple[PortalClient, httpx.Client]:
    api = make_user(server, "alice")
    return PortalClient(server, _token(api)), api


def test_the_list_shows_my_images_with_their_columns_and_the_templates_to_add(
    alice: tuple[PortalClient, httpx.Client], site: dict[str, Any], tmp_path: Path
) -> None:
    portal, api = alice
    assert upload(api, make_qcow2(tmp_path / "w.qcow2"), "work").status_code == 201
    page = portal.get("/ui/images")
    assert page.status_code == 200
    assert _rows(page.text) == ["work"]  # the template is not alice's own
    header = _text(page.text.split('id="images"', 1)[1].split("</thead>", 1)[0])
    for column in ("Name", "Version", "Size", "Class", "Visibility", "Certification"):
        assert column in header
    assert "Vulnerabilities" in header
    row = _text(_row(page.text, "work"))
    assert "work 1" in row and "user private none not scanned" in row
    assert "Rename" in row and "Save" in row and "Delete" in row
    template_list = page.text.split('id="template"', 1)[1].split("</select>", 1)[0]
    assert f'<option value="{site["id"]}"' in template_list and ">base</option>" in template_list


def test_show_shared_images_adds_the_templates_and_the_groups_images(
    server: RunningServer, alice: tuple[PortalClient, httpx.Client], tmp_path: Path
) -> None:
    portal, _ = alice
    assert _rows(portal.get("/ui/images").text) == []
    page = portal.get("/ui/images", params={"shared": "1"}).text
    assert _rows(page) == ["base"]
    assert 'id="show-shared" name="shared" value="1" checked' in page
    row = _text(_row(page, "base"))
    assert "site public" in row and "admin's" in row and "Delete" not in row


def test_adding_from_a_template_makes_my_certified_copy(
    alice: tuple[PortalClient, httpx.Client], site: dict[str, Any]
) -> None:
    portal, api = alice
    done = portal.post_form("/ui/images/copy", {"template": site["id"], "name": "mine"})
    assert done.status_code == 303 and done.headers["location"] == "/ui/images"
    page = portal.get("/ui/images").text
    assert "Added image mine:1 (certified)." in page
    assert _rows(page) == ["mine"]
    row = _text(_row(page, "mine"))
    assert "certified private valid" in row
    copy = api.get("/api/v1/images/mine").json()
    assert (copy["trust"], copy["digest"], copy["owner"]) == ("certified", site["digest"], "alice")


def test_a_bad_new_name_shows_the_error_and_keeps_what_was_entered(
    alice: tuple[PortalClient, httpx.Client], site: dict[str, Any]
) -> None:
    portal, api = alice
    page = portal.post_form("/ui/images/copy", {"template": site["id"], "name": "no good"})
    assert page.status_code == 422
    assert 'id="form-error"' in page.text and "Invalid image name &#39;no good&#39;." in page.text
    assert 'id="new-name" name="name" value="no good"' in page.text
    assert api.get("/api/v1/images").json()[0]["name"] == "base"  # nothing made
    assert len(api.get("/api/v1/images").json()) == 1


def test_rename_share_unshare_and_delete(
    server: RunningServer, alice: tuple[PortalClient, httpx.Client], tmp_path: Path
) -> None:
    portal, api = alice
    admin = server.client()
    bob = make_user(server, "bob")
    assert admin.put("/api/v1/groups/physics/members/alice", json={"manager": True}).is_success
    image = upload(api, make_qcow2(tmp_path / "w.qcow2"), "work").json()

    renamed = portal.post_form(f"/ui/images/{image['id']}/rename", {"name": "analysis"})
    assert renamed.status_code == 303
    page = portal.get("/ui/images").text
    assert "Renamed the image to analysis." in page and _rows(page) == ["analysis"]

    shared = portal.post_form(f"/ui/images/{image['id']}/share", {"shared": "on"})
    assert shared.status_code == 303
    assert "shared with group physics" in portal.get("/ui/images").text
    assert bob.get("/api/v1/images/analysis").json()["visibility"] == "group"
    bob_portal = PortalClient(server, _token(bob))
    assert "analysis" in _rows(bob_portal.get("/ui/images?shared=1").text)

    assert portal.post_form(f"/ui/images/{image['id']}/share", {}).status_code == 303
    assert "is private" in portal.get("/ui/images").text
    assert bob.get("/api/v1/images/analysis").status_code == 404

    deleted = portal.post_form(f"/ui/images/{image['id']}/delete", {"shared_view": "1"})
    assert deleted.status_code == 303 and deleted.headers["location"] == "/ui/images?shared=1"
    page = portal.get("/ui/images").text
    assert "Deleted image analysis:1." in page and _rows(page) == []
    assert api.get("/api/v1/images/analysis").status_code == 404
    # The delete button asks first.
    upload(api, make_qcow2(tmp_path / "w.qcow2"), "again")
    assert 'data-confirm="Delete image again:1?' in portal.get("/ui/images").text


def _post_file(portal: PortalClient, path: Path, name: str, pad: int = 0) -> httpx.Response:
    """The upload form sent without JavaScript (``pad``: that many bytes more in the file)."""
    content = path.read_bytes() + b"\0" * pad
    return portal.http.post(
        "/ui/images/upload",
        data={"csrf_token": portal.csrf, "name": name},
        files={"file": (path.name, content, "application/octet-stream")},
    )


def test_upload_through_the_form_without_javascript(
    alice: tuple[PortalClient, httpx.Client], tmp_path: Path
) -> None:
    portal, api = alice
    done = _post_file(portal, make_qcow2(tmp_path / "disk.qcow2"), "")
    assert done.status_code == 303, done.text
    page = portal.get("/ui/images").text
    assert "Uploaded image disk:1" in page and _rows(page) == ["disk"]  # named after the file
    image = api.get("/api/v1/images/disk").json()
    assert (image["virtual_size"], image["owner"]) == (64 * 2**20, "alice")


def test_a_bad_upload_shows_the_error_and_leaves_nothing(
    alice: tuple[PortalClient, httpx.Client], tmp_path: Path
) -> None:
    portal, api = alice
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n" * 1000)
    refused = _post_file(portal, notes, "notes")
    assert refused.status_code == 422
    assert 'id="form-error"' in refused.text and "not a disk image" in refused.text
    assert 'id="upload-name" name="name" value="notes"' in refused.text

    evil = tmp_path / "evil.qcow2"
    backing = ["-F", "raw", "-b", "/etc/shadow"]
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", *backing, str(evil), "1M"], check=True
    )
    refused = _post_file(portal, evil, "evil")
    assert refused.status_code == 422 and "backing" in refused.text
    assert [i["name"] for i in api.get("/api/v1/images").json()] == ["base"]
    assert api.get("/api/v1/uploads").json() == []

    empty = portal.http.post("/ui/images/upload", data={"csrf_token": portal.csrf, "name": "x"})
    assert empty.status_code == 422 and "Choose an image file to upload." in empty.text


def test_forms_without_the_csrf_token_are_refused(
    alice: tuple[PortalClient, httpx.Client], site: dict[str, Any], tmp_path: Path
) -> None:
    portal, api = alice
    image = upload(api, make_qcow2(tmp_path / "w.qcow2"), "work").json()
    for path, data in [
        ("/ui/images/copy", {"template": site["id"], "name": "mine"}),
        (f"/ui/images/{image['id']}/rename", {"name": "other"}),
        (f"/ui/images/{image['id']}/delete", {}),
    ]:
        refused = portal.http.post(path, data=data)
        assert refused.status_code == 403 and "CSRF" in refused.text, path
    assert [i["name"] for i in api.get("/api/v1/images").json()] == ["base", "work"]


def test_a_user_cannot_change_anothers_image(
    server: RunningServer, alice: tuple[PortalClient, httpx.Client], site: dict[str, Any]
) -> None:
    portal, _ = alice
    bob = make_user(server, "bob")
    hidden = upload(bob, make_qcow2(Path(server.data_dir) / "b.qcow2"), "bobs").json()
    refused = portal.post_form(f"/ui/images/{hidden['id']}/delete", {})
    assert refused.status_code == 404 and 'id="form-error"' in refused.text
    refused = portal.post_form(f"/ui/images/{site['id']}/rename", {"name": "mine"})
    assert refused.status_code == 403 and "belongs to admin" in refused.text
    assert portal.post_form(f"/ui/images/{site['id']}/delete", {}).status_code == 403
    assert bob.get("/api/v1/images/bobs").status_code == 200
    assert server.client().get("/api/v1/images/base").json()["name"] == "base"


def test_the_vulnerability_status_and_a_copy_of_a_certified_image(tmp_path: Path) -> None:
    with run_server(tmp_path / "server", vuln_feed=str(OSV_FEED)) as server:
        admin = server.client()
        for name, disk in [
            ("clean", clean_debian(tmp_path, "clean")),
            ("old-glibc", old_glibc_debian(tmp_path, "old")),
        ]:
            assert upload(admin, disk, name).status_code == 201
        certified = admin.post(
            "/api/v1/images/clean/certifications", json={"reason": "checked by hand"}
        )
        assert certified.status_code == 201, certified.text
        portal = PortalClient(server, server.admin_token)
        copied = portal.post_form(
            "/ui/images/copy",
            {"template": admin.get("/api/v1/images/clean").json()["id"], "name": "copy"},
        )
        assert copied.status_code == 303
        page = portal.get("/ui/images").text
        assert _rows(page) == ["clean", "copy", "old-glibc"]
        assert "none found" in _text(_row(page, "clean"))
        old = _row(page, "old-glibc")
        assert 'class="badge high"' in old and "user private none 2 high, 2 unknown" in _text(old)
        source = admin.get("/api/v1/images/clean").json()
        copy = admin.get("/api/v1/images/copy").json()
        assert (copy["trust"], copy["certification"]) == ("certified", "valid")
        assert copy["certification_until"] == source["certification_until"]
        assert "certified private valid until 20" in _text(_row(page, "copy"))
        assert "none found" in _text(_row(page, "copy"))  # its scan came with it


def test_deleting_an_image_in_use_shows_why_not(
    alice: tuple[PortalClient, httpx.Client], tmp_path: Path
) -> None:
    portal, api = alice
    image = upload(api, make_qcow2(tmp_path / "w.qcow2"), "work").json()
    run = api.post("/api/v1/vms", json={"image": "work", "memory_mb": 128})
    assert run.status_code == 201, run.text
    refused = portal.post_form(f"/ui/images/{image['id']}/delete", {})
    assert refused.status_code == 409
    assert "Image work:1 is used by 1 VM. Terminate those VMs first" in _text(refused.text)
    assert _rows(refused.text) == ["work"]


def test_sharing_needs_a_manager_and_says_whom_to_ask(
    alice: tuple[PortalClient, httpx.Client], tmp_path: Path
) -> None:
    portal, api = alice
    image = upload(api, make_qcow2(tmp_path / "w.qcow2"), "work").json()
    refused = portal.post_form(f"/ui/images/{image['id']}/share", {"shared": "on"})
    assert refused.status_code == 403
    assert "Only a manager of group physics may publish images to it." in _text(refused.text)
    assert api.get("/api/v1/images/work").json()["visibility"] == "private"


def test_an_upload_over_the_sites_limit_is_refused_before_it_is_received(
    tmp_path: Path,
) -> None:
    with run_server(tmp_path / "server", limits=SiteLimits(max_upload_bytes=1024 * 1024)) as server:
        portal = PortalClient(server, server.admin_token)
        refused = _post_file(portal, make_qcow2(tmp_path / "d.qcow2"), "big", pad=3 * 2**20)
        assert refused.status_code == 413
        assert "larger than the site&#39;s limit" in refused.text
        assert server.client().get("/api/v1/images").json() == []


def _upload_rows(page: str) -> dict[str, str]:
    """The unfinished uploads listed on the page: id -> what a reader sees in its row."""
    if 'id="uploads"' not in page:
        return {}
    table = page.split('id="uploads"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r'<tr data-upload-id="([^"]+)">(.*?)</tr>', table, re.S)
    return {upload_id: _text(row) for upload_id, row in rows}


def _open_upload(api: httpx.Client, name: str, data: bytes, sent: int) -> str:
    """An upload of ``data`` under ``name`` with its first ``sent`` bytes received."""
    opened = api.post("/api/v1/uploads", json={"name": name, "total_bytes": len(data)})
    assert opened.status_code == 201, opened.text
    upload_id: str = opened.json()["id"]
    chunk = api.patch(
        f"/api/v1/uploads/{upload_id}", content=data[:sent], headers={"Upload-Offset": "0"}
    )
    assert chunk.status_code == 200, chunk.text
    return upload_id


def test_unfinished_uploads_are_listed_with_what_was_received(
    alice: tuple[PortalClient, httpx.Client], server: RunningServer
) -> None:
    portal, api = alice
    assert _upload_rows(portal.get("/ui/images").text) == {}  # none: no list at all
    upload_id = _open_upload(api, "big-analysis", bytes(4 * 2**20), 2**20)
    # Another user's unfinished upload is not alice's to see.
    _open_upload(server.client(), "admins-own", bytes(2**20), 2**19)
    page = portal.get("/ui/images").text
    rows = _upload_rows(page)
    assert list(rows) == [upload_id]
    assert "big-analysis" in rows[upload_id]
    assert "25%: 1 MiB of 4 MiB" in rows[upload_id]
    assert "Discard" in rows[upload_id]
    assert "Unfinished uploads" in page
    assert 'data-chunk-bytes="8388608"' in page  # the chunk size the page's script sends


def test_discard_deletes_the_unfinished_upload(
    alice: tuple[PortalClient, httpx.Client], server: RunningServer
) -> None:
    portal, api = alice
    upload_id = _open_upload(api, "half-sent", bytes(2 * 2**20), 2**20)
    response = portal.post_form(f"/ui/images/uploads/{upload_id}/discard", {})
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/images"
    page = portal.get("/ui/images").text
    assert "Discarded the unfinished upload of half-sent (1 MiB received)." in _text(page)
    assert _upload_rows(page) == {}
    assert api.get(f"/api/v1/uploads/{upload_id}").status_code == 404
    assert api.get("/api/v1/uploads").json() == []
    assert api.get("/api/v1/images/half-sent").status_code == 404  # no image either


def test_discard_of_anothers_or_a_gone_upload_says_so_and_keeps_it(
    alice: tuple[PortalClient, httpx.Client], server: RunningServer
) -> None:
    portal, _ = alice
    admin = server.client()
    theirs = _open_upload(admin, "admins-upload", bytes(2**20), 2**19)
    refused = portal.post_form(f"/ui/images/uploads/{theirs}/discard", {})
    assert refused.status_code == 404
    assert f"No upload {theirs!r}" in html.unescape(refused.text)
    assert 'id="form-error"' in refused.text
    assert admin.get(f"/api/v1/uploads/{theirs}").json()["received_bytes"] == 2**19
    # Without the CSRF token nothing happens either.
    forged = portal.http.post(f"/ui/images/uploads/{theirs}/discard", data={})
    assert forged.status_code == 403
    assert admin.get(f"/api/v1/uploads/{theirs}").status_code == 200
