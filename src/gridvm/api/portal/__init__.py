"""The web portal: server-rendered pages under /ui for people who would rather click.

Pages call the services directly; their scripts (live queue, upload progress) call the
REST API with the session cookie and the CSRF header. Every asset is the project's own
(no CDN), so the portal works on a site without internet access.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from gridvm.api.errors import error_json
from gridvm.api.portal import account, admin, images, login, queue, run, vm_page
from gridvm.api.portal.rendering import STATIC_DIR, render
from gridvm.api.portal.session import LoginRequired
from gridvm.common.errors import GridvmError

PREFIX = "/ui"


def _is_page(request: Request) -> bool:
    return request.url.path.startswith(f"{PREFIX}/")


def install_portal(app: FastAPI) -> None:
    app.mount(f"{PREFIX}/static", StaticFiles(directory=str(STATIC_DIR)), name="portal-static")
    for module in (login, account, images, admin, run, queue, vm_page):
        app.include_router(module.router, prefix=PREFIX, include_in_schema=False)

    @app.get("/", include_in_schema=False)
    @app.get(PREFIX, include_in_schema=False)
    @app.get(f"{PREFIX}/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse(login.HOME, status_code=303)

    @app.exception_handler(LoginRequired)
    async def login_required(_request: Request, exc: LoginRequired) -> RedirectResponse:
        query = urlencode({"next": exc.next_path})
        return RedirectResponse(f"{PREFIX}/login?{query}", status_code=303)

    @app.exception_handler(GridvmError)
    async def page_or_json_error(request: Request, exc: GridvmError) -> Any:
        if not _is_page(request):
            return error_json(exc)
        return render(request, "error.html", None, status_code=exc.http_status, failure=exc)
