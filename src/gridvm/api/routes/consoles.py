"""Attached serial consoles: the user's websocket, the host agent's, and the pipe between them.

See ``gridvm.schemas.consoles`` for the protocol and
``gridvm.services.console_sessions`` for how the two ends find each other.
Errors before the user's handshake completes (bad token, no such VM, VM not
running, console in use, host not answering) are ordinary HTTP error
responses with the JSON error body; afterwards the close frame says why the
session ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import anyio
import anyio.to_thread
from fastapi import APIRouter, WebSocket
from pydantic import ValidationError
from starlette.websockets import WebSocketDisconnect, WebSocketState

from gridvm.api.deps import AgentCaller, Caller, Services
from gridvm.schemas.consoles import (
    CLOSE_GOING_AWAY,
    CLOSE_HOST_LOST,
    CLOSE_NORMAL,
    CLOSE_TOO_BIG,
    MAX_MESSAGE_BYTES,
    AgentConsoleHello,
)

router = APIRouter(tags=["consoles"])
log = logging.getLogger(__name__)

# A close frame's reason holds at most 123 bytes of UTF-8.
MAX_REASON_BYTES = 123
USER, AGENT = "user", "agent"


@router.websocket("/vms/{vm_id}/console/attach")
async def attach(websocket: WebSocket, vm_id: str, svc: Services, who: Caller) -> None:
    """An interactive serial console of a running VM (binary messages both ways).

    The handshake completes once the VM's host has joined; one attached console per VM.
    """
    sessions = svc.console_sessions
    target = await anyio.to_thread.run_sync(sessions.target, who, vm_id)
    session = sessions.start(target, who.name)
    try:
        agent = await sessions.wait_for_agent(session)
        try:
            await websocket.accept()
        except OSError:  # the user left while the host was joining
            await _close(agent, CLOSE_NORMAL, "the user left")
            return
        log.info("console of VM %s attached by %s (session %s)", vm_id, who.name, session.id)
        try:
            why = await _relay(websocket, agent)
        except Exception:
            log.exception("console session %s failed", session.id)
            await _close(websocket, 1011, "the server failed; see its log")
            await _close(agent, 1011, "the server failed")
            why = "server error"
        log.info("console of VM %s detached (session %s): %s", vm_id, session.id, why)
    finally:
        sessions.end(session)


@router.websocket("/agent/console-sessions/{session_id}")
async def agent_end(websocket: WebSocket, session_id: str, svc: Services, who: AgentCaller) -> None:
    """The host agent's end of an attached console: a ``AgentConsoleHello`` text message,
    then the VM's serial port as binary messages, until the session ends."""
    sessions = svc.console_sessions
    session = sessions.claim(who, session_id)
    await websocket.accept()
    try:
        remaining = max(1.0, session.deadline - time.monotonic())
        hello = await _hello(websocket, remaining)
        if hello.ready:
            sessions.join(session, websocket)
            await session.ended.wait()
        else:
            sessions.refuse(session, hello.message or "the host could not open the serial port")
    except TimeoutError:
        sessions.refuse(session, "the host's agent did not say whether it had the serial port")
    except WebSocketDisconnect:
        sessions.refuse(session, "the host's agent left before it had the serial port")
    except ValueError as exc:
        sessions.refuse(session, f"the host's agent sent no valid greeting ({exc})")
    finally:
        await _close(websocket, CLOSE_NORMAL, "the session ended")


async def _hello(websocket: WebSocket, timeout: float) -> AgentConsoleHello:
    message = await asyncio.wait_for(websocket.receive(), timeout)
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1006), message.get("reason"))
    text = message.get("text")
    if not isinstance(text, str):
        raise ValueError("expected a text message")
    try:
        return AgentConsoleHello.model_validate_json(text)
    except ValidationError:
        raise ValueError("not a console greeting") from None


async def _relay(user: WebSocket, agent: WebSocket) -> str:
    """Pipe console bytes both ways until one side ends; close the other; say why."""
    ends: list[tuple[str, int, str]] = []

    async def pump(src: WebSocket, dst: WebSocket, side: str, other: str) -> None:
        ends.append(await _pump(src, dst, side, other))
        tg.cancel_scope.cancel()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(pump, user, agent, USER, AGENT)
            tg.start_soon(pump, agent, user, AGENT, USER)
    finally:
        if not ends:  # cancelled from outside: the server is stopping
            with anyio.CancelScope(shield=True):
                await _close(user, CLOSE_GOING_AWAY, "the server is stopping")
                await _close(agent, CLOSE_GOING_AWAY, "the server is stopping")
    side, code, reason = ends[0]
    if side == USER:
        if code == CLOSE_TOO_BIG:
            await _close(user, code, reason)
        await _close(agent, CLOSE_NORMAL, "the user detached")
        return "the user detached" if code != CLOSE_TOO_BIG else reason
    if code in (CLOSE_NORMAL, CLOSE_GOING_AWAY) or 4000 <= code < 5000:
        reason = reason or "the console closed"
    else:
        code, reason = CLOSE_HOST_LOST, f"the host's end of the console broke off (code {code})"
    await _close(user, code, reason)
    await _close(agent, CLOSE_NORMAL, "the session ended")
    return reason


async def _pump(src: WebSocket, dst: WebSocket, side: str, other: str) -> tuple[str, int, str]:
    """Copy ``src``'s messages to ``dst``: (the side that ended, close code, reason)."""
    while True:
        message = await src.receive()
        if message["type"] == "websocket.disconnect":
            return side, int(message.get("code") or 1006), str(message.get("reason") or "")
        data = message.get("bytes")
        if data is None:
            data = str(message.get("text") or "").encode()
        if len(data) > MAX_MESSAGE_BYTES:
            limit = f"console messages are at most {MAX_MESSAGE_BYTES // 1024} KiB"
            return side, CLOSE_TOO_BIG, limit
        try:
            await dst.send_bytes(data)
        except (WebSocketDisconnect, RuntimeError, OSError):
            return other, 1006, ""


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    """Close ``websocket`` if it is still open (whichever side closed first)."""
    if websocket.application_state != WebSocketState.CONNECTED:
        return
    reason = reason.encode()[:MAX_REASON_BYTES].decode(errors="ignore")
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
        await websocket.close(code, reason)
