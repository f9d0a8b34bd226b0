"""Per-host change counters, so an agent's sync can wait for news instead of polling.

Anything that changes what a host should run (a placement, a stop, a
terminate, a walltime running out) bumps that host's generation. An agent
syncs with the generation it last saw; the server answers at once if it
moved, else waits up to the agent's timeout. Generations live in memory: after
a server restart they start again, and the ``!=`` comparison makes every
agent's first sync answer at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import defaultdict


class HostSignals:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generations: defaultdict[str, int] = defaultdict(int)
        self._events: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Event]] = {}

    def generation(self, host_id: str) -> int:
        with self._lock:
            return self._generations[host_id]

    def bump(self, *host_ids: str | None) -> None:
        """Tell waiting syncs of these hosts that there is news (callable from any thread)."""
        for host_id in host_ids:
            if host_id is None:
                continue
            with self._lock:
                self._generations[host_id] += 1
                waiting = self._events.pop(host_id, None)
            if waiting is not None:
                loop, event = waiting
                loop.call_soon_threadsafe(event.set)

    async def wait(self, host_id: str, since: int | None, timeout: float) -> int:
        """Return the host's generation once it differs from ``since``, or after ``timeout``."""
        with self._lock:
            current = self._generations[host_id]
            if since is None or since != current or timeout <= 0:
                return current
            loop = asyncio.get_running_loop()
            waiting = self._events.get(host_id)
            if waiting is None or waiting[0] is not loop:
                waiting = (loop, asyncio.Event())
                self._events[host_id] = waiting
            event = waiting[1]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
        return self.generation(host_id)
