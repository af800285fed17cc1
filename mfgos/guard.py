"""The ASGI guard in front of every route: hostile input is refused before any route, signature
or parser sees it, and every answer carries the browser's security headers.

In order, for each HTTP request:
1. a path or query with a NUL or another control character: 400 (no route takes one, and
   PostgreSQL refuses NUL in text);
2. an unknown `Host` (Starlette's `TrustedHostMiddleware`, `MFGOS_ALLOWED_HOSTS`): 400.
   `/healthz` is exempt, because orchestrators probe it by the pod's address;
3. a body over `MAX_BODY`: 413, from `Content-Length` before anything is read, or while a
   chunked body streams in (it is never read past the limit);
4. a body nested deeper than `MAX_DEPTH` (JSON, or JSON inside a form field as Slack sends
   button presses): 400, because Python's json parser recurses and would raise
   RecursionError; on our own protocols (the console API, sign-in, the bridge, the MES webhook) a body
   holding a NUL (raw or `\u0000`): 400, because PostgreSQL stores no NUL in text or JSON;
5. the route; an exception it lets out becomes a JSON 500 without a trace, and a log line.

The headers (`SECURITY_HEADERS`) go on every response, the guard's own refusals included:
the console page has no inline script or style, so the CSP allows only its own files.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from itertools import accumulate
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes

from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024  # bytes; a chat message or webhook delivery is a few kB (media come by URL)
MAX_DEPTH = 64  # nesting of arrays/objects; no platform payload comes near it
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; script-src 'self'; object-src 'none'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}
HOST_EXEMPT = frozenset({"/healthz", "/readyz"})
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
CONTROL = re.compile(rb"[\x00-\x1f\x7f]")
NUL_IN_BODY = re.compile(rb"\x00|\\u0000", re.IGNORECASE)
# Our own protocols refuse a NUL anywhere in a body (400 says what is wrong); the chat platforms' parsers
# drop NULs instead, because a platform would deliver a refused body again and again.
NUL_REFUSED = ("/api/", "/auth/", "/signals/", "/bridge/")
JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
BRACKETS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def allowed_hosts(configured: Iterable[str], listen_host: str, machine_names: Iterable[str] = ()) -> list[str]:
    """`MFGOS_ALLOWED_HOSTS` when set, else the host `serve` listens on plus the loopback names
    (and the machine's own names when it listens on every interface)."""
    hosts = [h.strip().lower() for h in configured if h.strip()]
    if hosts:
        return hosts
    names = [*LOOPBACK_HOSTS]
    if listen_host in ("", "0.0.0.0", "::"):
        names += [n.lower() for n in machine_names if n]
    else:
        names.append(f"[{listen_host}]" if ":" in listen_host else listen_host.lower())
    return list(dict.fromkeys(names))


def nesting_depth(raw: bytes) -> int:
    """The deepest nesting of `[`/`{` outside JSON strings (a cheap scan, no parse)."""
    brackets = JSON_STRING.sub(b"", raw).translate(BRACKETS, NOT_BRACKETS)
    return max(0, max(accumulate(memoryview(brackets).cast("b")), default=0))


def _too_deep(raw: bytes, content_type: str) -> bool:
    if nesting_depth(raw) > MAX_DEPTH:
        return True
    if content_type.startswith("application/x-www-form-urlencoded"):
        return any(nesting_depth(value.encode()) > MAX_DEPTH
                   for _, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True))
    return False


async def _answer(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class _BodyLimit:
    """Steps 3 and 4: the body read up to the limit, checked, then handed on as it came."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                return await _answer(send, 400, "Content-Length is not a number")
            if int(declared) > MAX_BODY:
                return await _answer(send, 413, f"the body is larger than {MAX_BODY} bytes")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client left; the route sees it as it would have
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY:
                return await _answer(send, 413, f"the body is larger than {MAX_BODY} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        raw = b"".join(chunks)
        if raw and scope["path"].startswith(NUL_REFUSED) and NUL_IN_BODY.search(raw):
            return await _answer(send, 400, "the body holds a NUL character")
        if raw and _too_deep(raw, headers.get(b"content-type", b"").decode("latin-1").lower()):
            return await _answer(send, 400, f"the body is nested deeper than {MAX_DEPTH} levels")
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class Guard:
    """The whole guard (module docstring); `install` puts it on an app."""

    def __init__(self, app: ASGIApp, hosts: list[str]) -> None:
        self.app = app
        self.checked = _BodyLimit(app)
        self.hosted = TrustedHostMiddleware(self.checked, allowed_hosts=hosts or ["*"], www_redirect=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def secured(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                names = {name.lower() for name, _ in message.get("headers", [])}
                message = {**message, "headers": [*message.get("headers", []), *(
                    (name.encode(), value.encode()) for name, value in SECURITY_HEADERS.items()
                    if name.encode() not in names)]}
            await send(message)

        path = scope.get("raw_path") or scope["path"].encode()
        if CONTROL.search(unquote_to_bytes(path)) or CONTROL.search(scope["path"].encode("utf-8", "replace")) \
                or CONTROL.search(unquote_to_bytes(scope.get("query_string", b"").replace(b"+", b" "))):
            return await _answer(secured, 400, "control characters in the path or query")
        try:
            await (self.checked if scope["path"] in HOST_EXEMPT else self.hosted)(scope, receive, secured)
        except Exception:
            log.exception("%s %s failed", scope.get("method"), scope["path"])
            if started:
                raise
            await _answer(secured, 500, "internal error; it has been logged")


def install(app: Any, hosts: list[str]) -> None:
    """Put the guard outermost on a Starlette/FastAPI app (inside Starlette's own error middleware)."""
    app.add_middleware(Guard, hosts=hosts)
