"""Recipe builds through the REST API, with real mmdebstrap builds on this machine.

One server (SQLite) for the module, with the real starter images (tiny and
debian-12-minimal, built once and cached in build/starter); its background
worker runs the builds one after the other. Real builds take tens of seconds.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gridvm.images.debian.template import build_debian_minimal
from gridvm.images.starter import build_tiny
from tests.api.helpers import make_user
from tests.servers import RunningServer, run_server

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    starter = REPO / "build" / "starter"
    build_tiny(starter)
    build_debian_minimal(starter)
    with run_server(tmp_path_factory.mktemp("builds"), starter_dir=starter) as running:
        yield running


@pytest.fixture(scope="module")
def alice(server: RunningServer) -> httpx.Client:
    return make_user(server, "alice")


def wait_build(client: httpx.Client, build_id: str, timeout: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        build: dict[str, Any] = client.get(f"/api/v1/builds/{build_id}").json()
        if build["state"] in ("succeeded", "failed"):
            return build
        assert time.monotonic() < deadline, build
        time.sleep(1)


def submit(client: httpx.Client, **recipe: Any) -> httpx.Response:
    return client.post("/api/v1/builds", json={"template": "debian-12-minimal", **recipe})


def image_names(client: httpx.Client) -> set[str]:
    return {i["name"] for i in client.get("/api/v1/images").json()}


def work_dirs(server: RunningServer) -> list[Path]:
    builds = server.data_dir / "builds"
    return [p for p in builds.iterdir() if p.is_dir() and p.name != ".debs"]


_USE = re.compile(r"gridvm-build: (\d+) packages from the site cache, (\d+) downloaded")
_KEY = re.compile(r"I: package cache ([0-9a-f]{12}): (\d+) packages for this build")


def cache_use(log: str) -> tuple[int, int]:
    """(from the site cache, downloaded) as the build's log says."""
    match = _USE.search(log)
    assert match, log[-3000:]
    return int(match[1]), int(match[2])


def cache_key_of(log: str) -> str:
    match = _KEY.search(log)
    assert match, log[:3000]
    return match[1]


def cached_debs(server: RunningServer) -> set[str]:
    root = server.data_dir / "build-cache" / "apt"
    return {f"{d.name[:12]}/{f.name}" for d in root.iterdir() for f in d.iterdir()}


def test_unknown_template_is_refused(alice: httpx.Client) -> None:
    response = submit(alice, name="x", template="no-such-template")
    assert response.status_code == 404
    assert "no image 'no-such-template'" in response.json()["message"]


def test_tiny_is_not_a_debian_template(alice: httpx.Client) -> None:
    response = submit(alice, name="x", template="tiny", packages=["jq"])
    assert response.status_code == 422
    assert "not a Debian template" in response.json()["message"]
    assert "debian-12-minimal" in response.json()["hint"]


def test_unknown_keys_and_bad_packages_are_refused(alice: httpx.Client) -> None:
    assert submit(alice, name="x", packages=["jq"], colour="blue").status_code == 422
    response = submit(alice, name="x", packages=["jq; rm -rf /"])
    assert response.status_code == 422
    assert "is not a Debian package" in response.text
    response = submit(alice, name="x", files=[{"path": "../etc/passwd", "content": "x"}])
    assert response.status_code == 422


def test_packages_only_build_is_certified_by_construction(
    server: RunningServer, alice: httpx.Client
) -> None:
    response = submit(alice, name="with-jq", packages=["jq"])
    assert response.status_code == 202, response.text
    queued = response.json()
    assert queued["state"] in ("queued", "running")
    assert queued["trust"] == "certified"
    assert "site template debian-12-minimal" in queued["trust_reason"]
    assert "jq" in queued["trust_reason"]

    build = wait_build(alice, queued["id"])
    assert build["state"] == "succeeded", build
    assert build["progress"] == 1.0
    image = alice.get(f"/api/v1/images/{build['image_id']}").json()
    assert image["name"] == "with-jq"
    assert image["trust"] == "certified"
    assert image["owner"] == "alice"
    assert image["boot_mode"] == "kernel"
    assert image["os"] == "debian-12"
    template = alice.get("/api/v1/images/debian-12-minimal").json()
    assert image["kernel_cmdline"] == template["kernel_cmdline"]
    with server.services.db.session() as s:
        from gridvm.store.models import ImageCertification

        rows = s.query(ImageCertification).filter_by(image_id=image["id"]).all()
        assert [(r.source, r.certified_by) for r in rows] == [("construction", "gridvm-builder")]
        assert "jq" in rows[0].reason
    # The log stays with the image: by build id and by image name.
    log = alice.get(f"/api/v1/builds/{build['id']}/log").text
    assert "jq" in log and "registered" in log
    # The first build of the module found the site's package cache empty and filled it.
    from_cache, downloaded = cache_use(log)
    assert from_cache == 0 and downloaded > 100, log[-3000:]
    assert any(name.endswith(".deb") and "/jq_" in name for name in cached_debs(server))
    assert alice.get("/api/v1/builds/with-jq/log").text == log
    assert work_dirs(server) == []
    # Built images are inspected like every stored image.
    inspection = alice.get(f"/api/v1/images/{image['id']}/inspection")
    assert inspection.status_code == 200, inspection.text
    packages = {p["name"] for p in inspection.json()["packages"]}
    assert {"jq", "systemd", "acpid"} <= packages


def test_unknown_package_fails_the_build_and_keeps_the_log(
    server: RunningServer, alice: httpx.Client
) -> None:
    queued = submit(alice, name="bad", packages=["no-such-package-xyz"]).json()
    build = wait_build(alice, queued["id"])
    assert build["state"] == "failed"
    assert build["error"] == "unknown package 'no-such-package-xyz'"
    assert build["image_id"] is None
    assert "bad" not in image_names(alice)
    log = alice.get(f"/api/v1/builds/{build['id']}/log").text
    assert "Unable to locate package no-such-package-xyz" in log
    assert work_dirs(server) == []


def test_failing_run_command_fails_at_that_step(server: RunningServer, alice: httpx.Client) -> None:
    queued = submit(
        alice,
        name="runs",
        files=[{"path": "/etc/demo.conf", "content": "hello\n", "mode": "0640"}],
        run=[
            'id -un > "$HOME/who" && test "$(cat "$HOME/who")" = gridvm-build',
            "mkdir -p /opt/tool && echo built > /opt/tool/out",
            "false",
            "echo never",
        ],
    ).json()
    assert queued["trust"] == "user"
    assert "1 added file" in queued["trust_reason"] and "4 run commands" in queued["trust_reason"]
    build = wait_build(alice, queued["id"])
    assert build["state"] == "failed"
    assert build["error"] == "run command 3 failed: false"
    assert "runs" not in image_names(alice)
    log = alice.get(f"/api/v1/builds/{build['id']}/log").text
    assert "gridvm-build: added /etc/demo.conf (0640)" in log
    assert "gridvm-build: run 3/4" in log and "gridvm-build: run 4/4" not in log
    assert work_dirs(server) == []
    # Packages from the cache the first build filled: apt downloaded nothing.
    from_cache, downloaded = cache_use(log)
    assert from_cache > 100 and downloaded == 0


def test_a_build_with_its_own_repository_has_its_own_cache_and_a_failure_adds_nothing(
    server: RunningServer, alice: httpx.Client
) -> None:
    before = cached_debs(server)
    mirror_key = {name.split("/")[0] for name in before}
    queued = submit(
        alice,
        name="own-repo",
        packages=["bc"],
        repositories=["deb http://deb.debian.org/debian bookworm-updates main"],
        run=["false"],
    ).json()
    build = wait_build(alice, queued["id"])
    assert build["state"] == "failed" and build["error"] == "run command 1 failed: false"
    log = alice.get(f"/api/v1/builds/{build['id']}/log").text
    # Another set of sources: another cache key, and none of the mirror-only builds' files.
    assert cache_key_of(log) not in mirror_key
    from_cache, downloaded = cache_use(log)
    assert from_cache == 0 and downloaded > 100
    # The build failed: nothing it downloaded (bc included) went into any cache.
    assert cached_debs(server) == before
    assert not any("/bc_" in name for name in before)


def test_other_users_do_not_see_a_build(server: RunningServer, alice: httpx.Client) -> None:
    builds = alice.get("/api/v1/builds").json()
    assert builds
    bob = make_user(server, "bob")
    assert bob.get("/api/v1/builds").json() == []
    assert bob.get(f"/api/v1/builds/{builds[0]['id']}").status_code == 404
    assert bob.get(f"/api/v1/builds/{builds[0]['id']}/log").status_code == 404


def test_a_full_image_quota_refuses_the_build_before_it_starts(
    server: RunningServer, alice: httpx.Client
) -> None:
    admin = server.client()
    assert admin.put("/api/v1/quotas/user/alice", json={"images": 0}).status_code == 200
    try:
        response = submit(alice, name="no-room", packages=["jq"])
        assert response.status_code == 413
        assert response.json()["message"].startswith("image storage quota: user alice may keep 0")
        assert all(b["name"] != "no-room" for b in alice.get("/api/v1/builds").json())
    finally:
        admin.put("/api/v1/quotas/user/alice", json={"images": None})


def test_an_admins_built_template_is_built_on_with_its_own_recipe_first(
    server: RunningServer, alice: httpx.Client
) -> None:
    admin = server.client()
    base = submit(
        admin,
        name="site-tools",
        packages=["jq"],
        files=[{"path": "/etc/site-tools.conf", "content": "site\n"}],
        run=["echo site-tools-base-step"],
    ).json()
    assert base["trust"] == "user"  # files and commands: not certified by construction
    built = wait_build(admin, base["id"])
    assert built["state"] == "succeeded", built
    assert cache_use(admin.get(f"/api/v1/builds/{built['id']}/log").text)[1] == 0
    made = admin.post("/api/v1/images/site-tools/template")
    assert made.status_code == 200, made.text
    assert made.json()["trust"] == "site"

    child = submit(alice, name="on-site-tools", template="site-tools", packages=["bc"]).json()
    # A site template and packages only: certified by construction.
    assert child["trust"] == "certified", child
    assert "site template site-tools" in child["trust_reason"]
    result = wait_build(alice, child["id"])
    assert result["state"] == "succeeded", result
    packages = {
        p["name"]
        for p in alice.get(f"/api/v1/images/{result['image_id']}/inspection").json()["packages"]
    }
    assert {"jq", "bc", "systemd"} <= packages
    log = alice.get(f"/api/v1/builds/{result['id']}/log").text
    assert "gridvm-build: added /etc/site-tools.conf" in log
    from_cache, downloaded = cache_use(log)  # bc (and what it needs) is new
    assert from_cache > 100 and 1 <= downloaded <= 5
    assert any("/bc_" in name for name in cached_debs(server))
    assert "site-tools-base-step" in log

    # The starter templates come from make images: not unmade through the API.
    starter = admin.delete("/api/v1/images/debian-12-minimal/template")
    assert starter.status_code == 409
    assert "make images" in starter.json()["hint"]


def test_an_admin_sees_and_clears_the_package_cache(
    server: RunningServer, alice: httpx.Client
) -> None:
    assert alice.get("/api/v1/admin/build-cache").status_code == 403
    assert alice.delete("/api/v1/admin/build-cache").status_code == 403
    admin = server.client()
    cache = admin.get("/api/v1/admin/build-cache").json()
    assert cache["enabled"] and cache["files"] == len(cached_debs(server)) > 100
    assert cache["bytes"] <= cache["max_bytes"] == 2048 * 2**20
    assert [k["files"] > 0 for k in cache["keys"]] == [True]  # the failed build added no key
    removed = admin.delete("/api/v1/admin/build-cache").json()
    assert removed["files"] == cache["files"]
    assert admin.get("/api/v1/admin/build-cache").json()["files"] == 0
    assert cached_debs(server) == set()
