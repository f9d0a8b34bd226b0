"""Logging in to the portal with an API token, and out again."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from gridvm.api.deps import SESSION_COOKIE, services
from gridvm.api.portal.rendering import error_text, redirect, render
from gridvm.api.portal.session import PortalSession, check_origin, checked_form, form_text
from gridvm.common.errors import GridvmError

router = APIRouter()

HOME = "/ui/images"


def _safe_next(path: str) -> str:
    """Only a portal path is a place to return to (never another site)."""
    if path.startswith("/ui/") and not path.startswith("//") and "\\" not in path:
        return path
    return HOME


@router.get("/login")
def login_page(request: Request, next: str = HOME) -> Any:
    return render(request, "login.html", None, next_path=_safe_next(next))


@router.post("/login")
async def login(request: Request) -> Any:
    check_origin(request)
    form = await request.form()
    token = form_text(form, "token")
    next_path = _safe_next(form_text(form, "next") or HOME)
    if not token:
        return render(
            request,
            "login.html",
            None,
            status_code=422,
            next_path=next_path,
            error="Enter your API token (gridvm token create prints one).",
        )
    try:
        opened = services(request).web_sessions.login(token)
    except GridvmError as exc:
        return render(
            request,
            "login.html",
            None,
            status_code=exc.http_status,
            next_path=next_path,
            error=error_text(exc),
        )
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        opened.secret,
        max_age=int(opened.lifetime.total_seconds()),
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
async def logout(request: Request, session: PortalSession) -> Any:
    await checked_form(request, session)
    services(request).web_sessions.logout(request.cookies.get(SESSION_COOKIE))
    response = redirect("/ui/login", "You are logged out.")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
