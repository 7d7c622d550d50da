"""Pure ASGI middleware, applied to every request before any route runs (see ``app.main``).

- ``HeadAsGet``: HEAD is answered as GET without the body (balancers and uptime checkers use it).
- ``SecurityHeaders``: a strict Content-Security-Policy (no inline script or style), nosniff,
  referrer policy and frame protection on every response that does not set its own.
- ``ShedLoad``: a saturated or draining worker refuses sampling requests with 503 before any
  validation or routing, so that a flood of clients retrying costs it as little as possible.
"""

from __future__ import annotations

import base64
import hashlib
import re
from urllib.parse import parse_qs

from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.web.scheduler import RETRY_AFTER_SECONDS
from app.web.service import is_heavy

CSP = ("default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
RAW_SECURITY_HEADERS = [(name.lower().encode(), value.encode())
                        for name, value in SECURITY_HEADERS.items()]
API_PREFIX = "/api/"   # JSON answers under it and on the probes; the Spanish pages elsewhere
PROBE_PATHS = {"/healthz", "/readyz"}
SAMPLING_PATHS = {"/api/names", "/"}
COUNT_DIGITS = 9   # more than any n the schema takes (int() refuses ~4300 digits)


def csp_allowing_inline_scripts(html: str) -> str:
    """CSP for a page we do not write (Swagger UI at /docs): the strict one, plus the hashes
    of exactly the inline scripts it has, so no other inline script can run."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in re.findall(r"<script>(.*?)</script>", html, re.S))
    return f"{CSP}; script-src 'self' {hashes}"


def heavy_count(text: str) -> bool:
    """Whether the ``n`` of a query string asks for a heavy request, read as validation reads
    it (spaces around, a '+' and zeros in front allowed). Only ASCII digits of a bounded length
    count: anything else ('²', 5000 digits) is left to validation, whose 422 says what is
    allowed (and whatever it lets through, ``Scheduler.run`` checks again)."""
    digits = text.strip().removeprefix("+").lstrip("0") or "0"
    return (digits.isascii() and digits.isdigit() and len(digits) <= COUNT_DIGITS
            and is_heavy(int(digits)))


def answers_json(path: str) -> bool:
    """Whether errors on ``path`` are JSON (the API and the probes) rather than a Spanish page."""
    return path.startswith(API_PREFIX) or path in PROBE_PATHS


def busy_response(path: str, reason: str) -> Response:
    """503 for a request the worker cannot take now: JSON under /api/, Spanish text elsewhere."""
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS), "Cache-Control": "no-store",
               "Connection": "close"}
    if answers_json(path):
        return JSONResponse(status_code=503, content={"detail": reason}, headers=headers)
    return PlainTextResponse("Toponimo está muy ocupado en este momento; inténtalo de nuevo en "
                             "unos segundos.", status_code=503, headers=headers)


class HeadAsGet:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            return await self.app(scope, receive, send)

        async def without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, without_body)


class SecurityHeaders:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in RAW_SECURITY_HEADERS
                            if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


class ShedLoad:
    """Asks the app's scheduler (``app.state.sampling_turn``) whether it would take the request
    (heavy or not, by ``heavy_count`` of its ``n``)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scheduler = getattr(scope["app"].state, "sampling_turn", None) if "app" in scope else None
        if scope["type"] == "http" and scope["path"] in SAMPLING_PATHS and scheduler is not None:
            n = parse_qs(scope["query_string"].decode("latin-1")).get("n", [""])[-1]
            refused = scheduler.refusal(heavy=heavy_count(n))
            if refused:
                response = busy_response(scope["path"], refused)
                return await response(scope, receive, send)
        await self.app(scope, receive, send)
