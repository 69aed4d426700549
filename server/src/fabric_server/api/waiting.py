"""Long waits: a read that answers once something happened, or after a time limit."""

from __future__ import annotations

from fastapi import Request

# The longest `?wait=` a read accepts; clients wait longer by asking again.
MAX_WAIT_SECONDS = 120.0


async def client_gone(request: Request) -> None:
    """Return once the client closed the connection (ends a long wait early)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return
