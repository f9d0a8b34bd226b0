"""Who is using the portal, and the checks every form post passes (CSRF token, origin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.datastructures import FormData

from gridvm.api.deps import SESSION_COOKIE, services
from gridvm.common.errors import Forbidden, Unauthorized
from gridvm.services.web_sessions import OpenSession

CSRF_FIELD = "csrf_token"


class LoginRequired(Exception):
    """A page was asked for without a live session: the browser goes to the login page."""

    def __init__(self, next_path: str, reason: str) -> None:
        super().__init__(reason)
        self.next_path = next_path
        self.reason = reason


def portal_session(request: Request) -> OpenSession:
    try:
        return services(request).web_sessions.open(request.cookies.get(SESSION_COOKIE))
    except Unauthorized as exc:
        raise LoginRequired(request.url.path, exc.message) from exc


PortalSession = Annotated[OpenSession, Depends(portal_session)]


def check_origin(request: Request) -> None:
    """Refuse a form posted from another site (browsers send Origin on every POST)."""
    origin = request.headers.get("origin")
    if origin is not None and origin != "null":
        own = f"{request.url.scheme}://{request.url.netloc}"
        if origin != own:
            raise Forbidden(f"a form from {origin} may not post here", hint="use the portal")


async def checked_form(request: Request, session: OpenSession) -> FormData:
    """The posted form, once it has shown this session's CSRF token."""
    check_origin(request)
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    if not session.csrf_matches(sent if isinstance(sent, str) else None):
        raise Forbidden(
            "the form has no valid CSRF token", hint="reload the page and send the form again"
        )
    return form


def form_text(form: FormData, field: str) -> str:
    """A text field of the form, stripped; an upload or a missing field gives ''."""
    value = form.get(field)
    return value.strip() if isinstance(value, str) else ""
