"""B6: a recipe build cold (empty package cache), then the same recipe warm.

A real server's services (SQLite, the real debian-12-minimal template from build/starter,
real mmdebstrap in user namespaces) in a scratch data directory; the build runs as the
server's worker runs it. Per build: wall seconds, packages from the site cache, packages and
MB downloaded (the .debs apt fetched, from the build's own log line).
"""

from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.report import publish
from gridvm.common.config import ServerConfig
from gridvm.images.debian.template import build_debian_minimal, load_build_record
from gridvm.images.starter.packages import fetch, resolve
from gridvm.schemas.builds import Recipe
from gridvm.services.server import ServerServices

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ["jq", "bc"]
_USE = re.compile(
    r"gridvm-build: (\d+) packages from the site cache, (\d+) downloaded \(([0-9.]+) MB\)"
)


def build_once(services: ServerServices, admin_token: str, name: str) -> dict[str, Any]:
    who = services.identity.authenticate(admin_token)
    queued = services.builds.submit(who, Recipe(name=name, template="debian-12-minimal",
                                                packages=PACKAGES))  # fmt: skip
    started = time.perf_counter()
    claimed = services.builds.claim_next()
    assert claimed == queued.id, (claimed, queued.id)
    services.builds.run_build(claimed)
    seconds = time.perf_counter() - started
    build = services.builds.get(who, queued.id)
    log = services.builds.read_log(who, queued.id)
    assert build.state.value == "succeeded", (build.error, log[-2000:])
    match = _USE.search(log)
    assert match, log[-2000:]
    return {
        "what": name,
        "seconds": round(seconds, 1),
        "from cache": int(match[1]),
        "downloaded": int(match[2]),
        "MB downloaded": float(match[3]),
    }


def main() -> None:
    starter = REPO / "build" / "starter"
    build_debian_minimal(starter)
    with tempfile.TemporaryDirectory(prefix="gridvm-b6-") as scratch:
        config = ServerConfig(data_dir=Path(scratch) / "server", starter_dir=starter)
        services = ServerServices.from_config(config)
        services.prepare()
        token = config.admin_token_file.read_text().strip()
        # The kernel package builds take their modules from is kept apart (builds/.debs):
        # fetched here, so that the cold build's time is the packages' and mmdebstrap's.
        _spec, kernel = load_build_record(starter / "debian-12-minimal")
        (package,) = resolve([kernel])
        fetch(package, config.data_dir / "builds" / ".debs")
        rows = [build_once(services, token, "cold"), build_once(services, token, "warm")]
        cache = services.builds.package_cache
        assert cache is not None
        usage = cache.usage()
    publish(
        "B6",
        f"recipe build ({' + '.join(PACKAGES)} on debian-12-minimal), cold then warm cache",
        rows,
        {"cache_files": usage.files, "cache_bytes": usage.bytes},
    )
