"""Recipe builds: submit (an operation: the build record comes back at once), follow, log."""

from __future__ import annotations

from fastapi import APIRouter, status
from fastapi.responses import PlainTextResponse

from gridvm.api.deps import Caller, Services
from gridvm.schemas.builds import BuildCacheOut, BuildOut, Recipe

router = APIRouter(tags=["builds"])


@router.post("/builds", status_code=status.HTTP_202_ACCEPTED)
def submit_build(body: Recipe, svc: Services, who: Caller) -> BuildOut:
    """Queue a build of the recipe; poll GET /builds/{id} for its state, step and progress."""
    return svc.builds.submit(who, body)


@router.get("/builds")
def list_builds(svc: Services, who: Caller) -> list[BuildOut]:
    return svc.builds.list_builds(who)


@router.get("/builds/{ref}")
def show_build(ref: str, svc: Services, who: Caller) -> BuildOut:
    """A build by id, or the build that made the image ``ref``."""
    return svc.builds.get(who, ref)


@router.get("/builds/{ref}/log", response_class=PlainTextResponse)
def build_log(ref: str, svc: Services, who: Caller) -> str:
    """The build's log (kept with the build, also when it failed)."""
    return svc.builds.read_log(who, ref)


@router.get("/admin/build-cache")
def show_build_cache(svc: Services, who: Caller) -> BuildCacheOut:
    """The package cache recipe builds share (admins): size, limit, one entry per key."""
    return svc.builds.cache_usage(who)


@router.delete("/admin/build-cache")
def clear_build_cache(svc: Services, who: Caller) -> BuildCacheOut:
    """Empty the package cache (admins); the answer is what was removed."""
    return svc.builds.clear_cache(who)
