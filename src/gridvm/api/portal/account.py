"""The account page: who the portal thinks you are, and how to use the CLI with the same token."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from gridvm.api.deps import services
from gridvm.api.portal.rendering import render
from gridvm.api.portal.session import PortalSession

router = APIRouter()


@router.get("/account")
def account_page(request: Request, session: PortalSession) -> Any:
    me = services(request).identity.whoami(session.principal)
    return render(request, "account.html", session, active="account", me=me)
