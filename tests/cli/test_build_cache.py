"""``gridvm admin build-cache show|clear``: the package cache as an admin sees and empties it.

The cache's files are put in place here as builds leave them (real builds filling it are in
tests/api/test_builds.py)."""

from __future__ import annotations

from pathlib import Path

from gridvm.images.debian.apt_cache import cache_key
from gridvm.images.debian.mmdebstrap import RootSpec
from tests.api.helpers import make_user
from tests.cli.conftest import Cli


def seed(data_dir: Path, spec: RootSpec, *names: str) -> Path:
    directory = data_dir / "build-cache" / "apt" / cache_key(spec, "amd64")
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        (directory / name).write_bytes(b"d" * 1000)
    return directory


def test_an_admin_sees_and_clears_the_cache(cli: Cli) -> None:
    empty = cli.json("admin", "build-cache", "show")
    assert (empty["enabled"], empty["files"], empty["max_bytes"]) == (True, 0, 2048 * 2**20)
    mirror = seed(cli.server.data_dir, RootSpec(), "jq_1.6_amd64.deb", "bc_1.07_amd64.deb")
    seed(cli.server.data_dir, RootSpec(extra_sources=("deb http://apt.example.org/x b main",)))
    (mirror / "lock").write_text("")  # not a package: neither counted nor removed

    shown = cli.ok("admin", "build-cache", "show").stdout
    assert "packages   2 " in shown and "limit      2 GiB" in shown
    assert mirror.name[:16] in shown
    cache = cli.json("admin", "build-cache", "show")
    assert (cache["files"], cache["bytes"], len(cache["keys"])) == (2, 2000, 2)

    cleared = cli.ok("admin", "build-cache", "clear")
    assert "removed 2 packages" in cleared.stderr + cleared.stdout
    assert cli.json("admin", "build-cache", "show")["files"] == 0
    assert sorted(p.name for p in mirror.iterdir()) == ["lock"]


def test_others_may_not_see_or_clear_it(cli: Cli) -> None:
    seed(cli.server.data_dir, RootSpec(), "jq_1.6_amd64.deb")
    alice = make_user(cli.server, "alice")
    token = alice.headers["Authorization"].removeprefix("Bearer ")
    for command in ("show", "clear"):
        assert "needs the admin role" in cli.fails("admin", "build-cache", command, token=token)
    assert alice.get("/api/v1/admin/build-cache").status_code == 403
    response = alice.delete("/api/v1/admin/build-cache")
    assert response.status_code == 403
    assert response.json()["message"] == "this needs the admin role"
    assert cli.json("admin", "build-cache", "show")["files"] == 1
