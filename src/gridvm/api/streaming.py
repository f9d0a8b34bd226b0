"""Request bodies streamed to code that runs in a worker thread."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import anyio.from_thread


def blocking_chunks(stream: AsyncIterator[bytes]) -> Iterator[bytes]:
    """Hand a request body, read on the event loop, to code running in a worker thread."""

    async def next_chunk() -> bytes:
        return await stream.__anext__()

    while True:
        try:
            chunk = anyio.from_thread.run(next_chunk)
        except StopAsyncIteration:
            return
        if chunk:
            yield chunk
