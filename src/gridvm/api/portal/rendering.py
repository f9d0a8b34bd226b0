"""Pages from Jinja templates (autoescaped), and the notice a redirect carries to the next page.

After a form succeeds the portal redirects (post, redirect, get) and the next page shows
what happened; the text travels in a short-lived cookie, not in the URL, so nobody can
make the portal show words of their choosing.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from fastapi import Request
from fastapi.responses import RedirectResponse
from starlette.templating import Jinja2Templates

from gridvm.common.errors import GridvmError
from gridvm.common.units import format_size
from gridvm.services.web_sessions import OpenSession

TEMPLATE_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
NOTICE_COOKIE = "gridvm_notice"

templates = Jinja2Templates(directory=str(TEMPLATE_DIR))


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else ""


def _moment(value: datetime | None) -> str:
    """A compact time for wide tables (the year and seconds add width, rarely meaning)."""
    return value.strftime("%m-%d %H:%M") if value else ""


templates.env.filters["size"] = format_size
templates.env.filters["when"] = _when
templates.env.filters["moment"] = _moment


def render(
    request: Request,
    template: str,
    session: OpenSession | None,
    *,
    status_code: int = 200,
    **context: Any,
) -> Any:
    """The page ``template`` for the session's user (None: the logged-out pages)."""
    notice = request.cookies.get(NOTICE_COOKIE)
    page = templates.TemplateResponse(
        request,
        template,
        {
            "who": session.principal if session else None,
            "csrf_token": session.csrf_token if session else "",
            "notice": unquote(notice) if notice else None,
            **context,
        },
        status_code=status_code,
    )
    if notice:
        page.delete_cookie(NOTICE_COOKIE, path="/ui")
    return page


def redirect(url: str, notice: str | None = None) -> RedirectResponse:
    """303 to ``url`` (a portal path), showing ``notice`` there once."""
    response = RedirectResponse(url, status_code=303)
    if notice:
        response.set_cookie(
            NOTICE_COOKIE, quote(notice), max_age=60, path="/ui", httponly=True, samesite="strict"
        )
    return response


def error_text(exc: GridvmError) -> str:
    """An error as the sentences a form shows: what was wrong, then what to do."""
    text = exc.message[:1].upper() + exc.message[1:] + "."
    if exc.hint:
        text += " " + exc.hint[:1].upper() + exc.hint[1:] + "."
    return text
