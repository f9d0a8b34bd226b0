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


def principal(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    token = secret.strip() if scheme.lower() == "bearer" else None
    return services(request).identity.authenticate(token)


Services = Annotated[ServerServices, Depends(services)]
Caller = Annotated[Principal, Depends(principal)]
