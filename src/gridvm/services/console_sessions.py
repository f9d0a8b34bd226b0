"""Attached consoles: pair a user's websocket with the one the VM's host agent opens.

Hosts take no inbound connections, so the server cannot dial a VM's serial
port. Instead a user's attach request becomes a *session* (id, VM, host,
deadline) held here; the host's long poll is woken, its agent sees the
session in its sync answer, opens a websocket of its own for it and joins it
to the VM's serial socket. The API layer then pipes bytes between the two
websockets (see ``gridvm.api.routes.consoles``). What the guest prints still
goes to its console log, attached or not.

One session per VM at a time (QEMU's serial socket serves one client): a
second attach is refused with 409 until the first one ends.

Limit: sessions live in this server process only. With several API replicas,
the user's and the agent's websockets must reach the same replica (for example
by routing ``/console/attach`` and ``/agent/console-sessions`` to one of them);
a shared broker would be needed to lift that.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from gridvm.common.errors import Conflict, Forbidden, GridvmError, NotFound
from gridvm.schemas.consoles import ConsoleSessionOrder
from gridvm.schemas.vms import VmState
from gridvm.services.principal import Principal
from gridvm.store.db import Database
from gridvm.store.models import Vm

log = logging.getLogger(__name__)

# States in which the VM's QEMU runs, so its serial port is open.
ATTACHABLE = frozenset({VmState.booting, VmState.running, VmState.suspended})
DEFAULT_AGENT_TIMEOUT_S = 10.0

# Whatever stands for the agent's end of a session (a websocket, in the API layer).
Peer = TypeVar("Peer")


class HostTimeout(GridvmError):
    """The VM's host did not open its end of the console in time."""

    http_status = 504
    code = "host_timeout"


class HostRefused(GridvmError):
    """The VM's host could not open the VM's serial port."""

    http_status = 502
    code = "host_error"


@dataclass(frozen=True)
class ConsoleTarget:
    vm_id: str
    host_id: str
    host_name: str


@dataclass(eq=False)
class ConsoleSession(Generic[Peer]):
    id: str
    target: ConsoleTarget
    user: str
    # time.monotonic() by which the host's agent must have joined.
    deadline: float
    # The agent's end once it has joined (or the reason it could not).
    agent: asyncio.Future[Peer]
    # Set when the session is over: the agent's side may then let go of its websocket.
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    claimed: bool = False

    @property
    def vm_id(self) -> str:
        return self.target.vm_id


class ConsoleSessions(Generic[Peer]):
    """The sessions of this server process.

    ``target`` and ``waiting`` may be called from any thread; ``start``, ``claim``,
    ``join``, ``refuse``, ``wait_for_agent`` and ``end`` on the server's event loop.
    """

    def __init__(
        self,
        db: Database,
        notify_host: Callable[..., None] = lambda *hosts: None,
        agent_timeout_s: float = DEFAULT_AGENT_TIMEOUT_S,
    ) -> None:
        self.db = db
        self.notify_host = notify_host
        self.agent_timeout_s = agent_timeout_s
        self._lock = threading.Lock()
        self._sessions: dict[str, ConsoleSession[Peer]] = {}
        self._by_vm: dict[str, str] = {}

    # --- the user's side --------------------------------------------------------
    def target(self, who: Principal, vm_id: str) -> ConsoleTarget:
        """Where VM ``vm_id``'s console is, if ``who`` may attach to it now."""
        with self.db.session() as s:
            vm = s.get(Vm, vm_id)
            if vm is None or not who.can_see_vm(vm):
                raise NotFound(f"no VM {vm_id!r}", hint="see your VMs with: gridvm vm list")
            if not who.can_change_vm(vm):
                raise Forbidden(f"you may read VM {vm_id}'s console but not type into it")
            if VmState(vm.state) not in ATTACHABLE or vm.host is None:
                hint = f"its console log: gridvm vm console {vm_id}"
                if vm.state == VmState.stopped.value:
                    hint = f"start it first: gridvm vm start {vm_id}; {hint}"
                raise Conflict(
                    f"VM {vm_id} is {vm.state}: only a booting, running or suspended VM"
                    " has a console to attach to",
                    hint=hint,
                )
            return ConsoleTarget(vm.id, vm.host.id, vm.host.name)

    def start(self, target: ConsoleTarget, user: str) -> ConsoleSession[Peer]:
        """Open a session for ``target`` and wake its host's agent."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if target.vm_id in self._by_vm:
                other = self._sessions[self._by_vm[target.vm_id]]
                raise Conflict(
                    f"VM {target.vm_id} has a console attached already (by {other.user})",
                    hint="only one attached console per VM: detach the other one (Ctrl-]),"
                    f" or read the log with: gridvm vm console {target.vm_id}",
                )
            session = ConsoleSession[Peer](
                id=f"con-{secrets.token_hex(12)}",
                target=target,
                user=user,
                deadline=time.monotonic() + self.agent_timeout_s,
                agent=loop.create_future(),
            )
            self._sessions[session.id] = session
            self._by_vm[target.vm_id] = session.id
        log.info(
            "console of VM %s asked by %s (session %s, host %s)",
            target.vm_id,
            user,
            session.id,
            target.host_name,
        )
        self.notify_host(target.host_id)
        return session

    async def wait_for_agent(self, session: ConsoleSession[Peer]) -> Peer:
        """The agent's end of ``session``, once it has joined; raises if it does not."""
        remaining = max(0.0, session.deadline - time.monotonic())
        try:
            return await asyncio.wait_for(session.agent, remaining)
        except TimeoutError:
            raise HostTimeout(
                f"the host of VM {session.vm_id} ({session.target.host_name}) did not open"
                f" the console within {self.agent_timeout_s:g} s",
                hint="its agent may be offline or busy (see gridvm host list); try again",
            ) from None

    def end(self, session: ConsoleSession[Peer]) -> None:
        """Forget ``session``; the VM can be attached again."""
        with self._lock:
            self._sessions.pop(session.id, None)
            if self._by_vm.get(session.vm_id) == session.id:
                del self._by_vm[session.vm_id]
        if not session.agent.done():
            session.agent.cancel()
        session.ended.set()

    # --- the agent's side -------------------------------------------------------
    def waiting(self, host_id: str) -> list[ConsoleSessionOrder]:
        """The sessions the host's agent should open (for its sync answer)."""
        now = time.monotonic()
        with self._lock:
            return [
                ConsoleSessionOrder(session_id=s.id, vm_id=s.vm_id)
                for s in self._sessions.values()
                if s.target.host_id == host_id and not s.claimed and s.deadline > now
            ]

    def claim(self, who: Principal, session_id: str) -> ConsoleSession[Peer]:
        """The session an agent came to open: only the VM's host may, and only once."""
        who.require_agent()
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                raise NotFound(f"no console session {session_id!r}: it ended or timed out")
            who.require_agent_of(session.target.host_name)
            if session.claimed:
                raise Conflict(f"console session {session_id} is open already")
            session.claimed = True
        return session

    def join(self, session: ConsoleSession[Peer], peer: Peer) -> None:
        """The agent has the VM's serial port: hand its end to the user's side."""
        if not session.agent.done():
            session.agent.set_result(peer)

    def refuse(self, session: ConsoleSession[Peer], message: str) -> None:
        """The agent could not open the VM's serial port."""
        log.warning("console of VM %s not opened by its host: %s", session.vm_id, message)
        if not session.agent.done():
            session.agent.set_exception(HostRefused(message))
