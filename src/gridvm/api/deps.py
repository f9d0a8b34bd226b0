"""Request dependencies: the services and the caller's identity."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from gridvm.services.principal import Principal
from gridvm.services.server import ServerServices


def services(request: Request) -> ServerServices:
    svc = request.app.state.services
    assert isinstance(svc, ServerServices)
    return svc


def _authenticated(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    token = secret.strip() if scheme.lower() == "bearer" else None
    return services(request).identity.authenticate(token)


def user_principal(request: Request) -> Principal:
    who = _authenticated(request)
    who.require_user()
    return who


def agent_principal(request: Request) -> Principal:
    who = _authenticated(request)
    who.require_agent()
    return who


Services = Annotated[ServerServices, Depends(services)]
# A user or admin of the REST API.
Caller = Annotated[Principal, Depends(user_principal)]
# A host agent (the /agent endpoints).
AgentCaller = Annotated[Principal, Depends(agent_principal)]
