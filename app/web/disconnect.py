"""Whether the client of a request is still there, for the routes that sample (the API and
the page): the scheduler drops a request whose client hung up (see ``app.web.scheduler``).

    async with watch_disconnect(request) as client_gone:
        batch = await generate_names(registry, query, scheduler, client_gone)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from starlette.requests import Request


@asynccontextmanager
async def watch_disconnect(request: Request) -> AsyncIterator[Callable[[], bool]]:
    """A check, free to call between slices, of whether the client has hung up: a task waits
    for the server's disconnect message meanwhile (as Starlette's streaming responses do)."""
    async def wait() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass   # the (empty) body of a GET comes first

    waiting = asyncio.create_task(wait())
    try:
        yield waiting.done
    finally:
        waiting.cancel()
