"""The FastAPI application: REST under /api/v1, OpenAPI at /api/v1/openapi.json."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from gridvm import __version__
from gridvm.api.errors import install_error_handlers
from gridvm.api.portal import install_portal
from gridvm.api.routes import (
    agent,
    builds,
    certification,
    consoles,
    guest,
    hosts,
    identity,
    image_inspection,
    image_lists,
    images,
    scheduling,
    secrets,
    site_egress,
    uploads,
    usage,
    vms,
    volumes,
)
from gridvm.services.server import BackgroundLoops, ServerServices

API_PREFIX = "/api/v1"


def create_app(services: ServerServices, *, run_loops: bool = True) -> FastAPI:
    """The app over ``services``; ``run_loops`` starts the scheduler and lease loops with it."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        loops = BackgroundLoops(services)
        if run_loops:
            loops.start()
        try:
            yield
        finally:
            loops.stop()

    app = FastAPI(
        title="gridvm",
        version=__version__,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.services = services
    install_error_handlers(app)
    for module in (identity, images, vms, consoles, hosts, secrets, scheduling, agent, guest):
        app.include_router(module.router, prefix=API_PREFIX)
    app.include_router(builds.router, prefix=API_PREFIX)
    app.include_router(certification.router, prefix=API_PREFIX)
    app.include_router(image_lists.router, prefix=API_PREFIX)
    app.include_router(image_inspection.router, prefix=API_PREFIX)
    app.include_router(volumes.router, prefix=API_PREFIX)
    app.include_router(uploads.router, prefix=API_PREFIX)
    app.include_router(usage.router, prefix=API_PREFIX)
    app.include_router(site_egress.router, prefix=API_PREFIX)
    install_portal(app)
    return app
