"""Attached serial consoles (``gridvm vm console ID --attach``): the wire protocol.

A user opens a websocket to ``/api/v1/vms/{id}/console/attach``. The server
asks the VM's host (in the answer to its agent's sync) to open a websocket to
``/api/v1/agent/console-sessions/{session}``; the agent connects that one to
the VM's serial port, says it is ready, and the server joins the two. Only
then does the user's handshake succeed: a refusal (no such VM, VM not
running, console in use, host did not answer) is an HTTP error with the
usual JSON body.

Once joined, both websockets carry the console's bytes as binary messages,
each at most ``MAX_MESSAGE_BYTES``. The end of a session is a close frame
whose code says why (below) and whose reason is one line for the user.
"""

from __future__ import annotations

from gridvm.schemas.base import Wire

# Console bytes per websocket message, either way; senders split larger writes.
MAX_MESSAGE_BYTES = 64 * 1024

# Close codes (1000-1011 are the standard ones; 4000-4999 are for applications).
CLOSE_NORMAL = 1000  # detached, or the VM's serial port closed (the VM stopped)
CLOSE_GOING_AWAY = 1001  # the server or the host's agent is stopping
CLOSE_TOO_BIG = 1009  # a message above MAX_MESSAGE_BYTES
CLOSE_HOST_LOST = 4502  # the host's side of the console broke off


class ConsoleSessionOrder(Wire):
    """In a sync answer: open the agent's websocket for this session and join it to the
    VM's serial port."""

    session_id: str
    vm_id: str


class AgentConsoleHello(Wire):
    """The agent's first message on its websocket (a text message): whether it could open
    the VM's serial port, and if not why."""

    ready: bool
    message: str | None = None
