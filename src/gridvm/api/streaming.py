"""Raw request bodies: how the API describes them, and how they reach worker threads."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio.from_thread

# OpenAPI for an endpoint whose request body is raw bytes (an image, a secret).
RAW_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


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
