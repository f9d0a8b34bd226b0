"""Request dependencies: the services and the caller's identity.

They take the connection (``HTTPConnection``), so websocket endpoints authenticate
exactly like HTTP ones: a bearer token in the Authorization header of the handshake.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from gridvm.services.principal import Principal
from gridvm.services.server import ServerServices


def services(conn: HTTPConnection) -> ServerServices:
    svc = conn.app.state.services
    assert isinstance(svc, ServerServices)
    return svc


def _authenticated(conn: HTTPConnection) -> Principal:
    header = conn.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    token = secret.strip() if scheme.lower() == "bearer" else None
    return services(conn).identity.authenticate(token)


def user_principal(conn: HTTPConnection) -> Principal:
    who = _authenticated(conn)
    who.require_user()
    return who


def agent_principal(conn: HTTPConnection) -> Principal:
    who = _authenticated(conn)
    who.require_agent()
    return who


Services = Annotated[ServerServices, Depends(services)]
# A user or admin of the REST API.
Caller = Annotated[Principal, Depends(user_principal)]
# A host agent (the /agent endpoints).
AgentCaller = Annotated[Principal, Depends(agent_principal)]
