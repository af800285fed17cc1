"""The generic REST / webhook MES adapter: one JSON POST per transaction, deduplicated by its key.

Wire format (docs/mes.md, "Wire format"): `POST <MFGOS_MES_URL>` with the body below, the
header `Idempotency-Key: <key>` and the auth header built from `MFGOS_MES_AUTH_HEADER` and
`MFGOS_MES_TOKEN`. The MES answers 2xx, with `{"reference": "..."}` (or `"id"`) when it numbers
what it stored, and the same answer again for a key it already holds.

    {"id": "<key>", "kind": "work_order_hold", "plant": "pune-1", "site": "PUNE",
     "exception": "E-0001", "decided_at": "2026-11-25T04:22:00+00:00",
     "data": {"work_order": "WO-1042", "machine": "HOB-01", "equipment": "HOB-01", "at": "..."}}

Answers map to the error family: 401/403 `AuthFailed`; 408, 409 (the key is being processed),
425, 429, 5xx, timeouts and network errors `Unavailable` (with Retry-After); a redirect and any
other 4xx `Rejected` with the MES's words. The URL comes from the environment only, never from
the plant file or a payload, and redirects are not followed: the token goes to the address the
operator configured and nowhere else. Answers are read up to `MAX_ANSWER` bytes.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx

from mes_adapters import kinds
from mes_adapters.base import AuthFailed, MesError, Rejected, Transaction, Unavailable

log = logging.getLogger(__name__)

MAX_ANSWER = 64 * 1024  # bytes of an answer read; an MES's reference and error fit in far less
MAX_REFERENCE = 200  # characters of a reference kept
TRANSIENT = frozenset({408, 409, 425, 429})
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")


class RestMes:
    """`MesAdapter` for any MES that takes a JSON webhook and honours the Idempotency-Key header."""

    name: ClassVar[str] = "rest"
    default_timeout: ClassVar[float] = 10.0  # well below the outbox lease (2 min)

    def __init__(self, url: str, *, token: str | None = None, auth_header: str = "Authorization",
                 timeout: float | None = None, transport: httpx.AsyncBaseTransport | None = None,
                 now: Callable[[], datetime] | None = None) -> None:
        problem = url_problem(url)
        if problem:
            raise ValueError(f"rest: MFGOS_MES_URL {problem}")
        if not _HEADER_NAME.match(auth_header):
            raise ValueError(f"rest: MFGOS_MES_AUTH_HEADER must be an HTTP header name, got {auth_header!r}")
        self.url = url
        self._token = token
        self._auth_header = auth_header
        self._timeout = timeout if timeout is not None else self.default_timeout
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self.now = now or (lambda: datetime.now(UTC))  # a Retry-After date is counted from it

    @classmethod
    def from_settings(cls, settings: Any, *, engine: Any = None, **kwargs: Any) -> RestMes:
        """From MFGOS_MES_URL, MFGOS_MES_TOKEN, MFGOS_MES_AUTH_HEADER and MFGOS_MES_TIMEOUT; the engine is unused."""
        token = getattr(settings, "mes_token", None)
        reveal = getattr(token, "get_secret_value", None)
        return cls(getattr(settings, "mes_url", None) or "",
                   token=reveal() if callable(reveal) else token,
                   auth_header=getattr(settings, "mes_auth_header", None) or "Authorization",
                   timeout=getattr(settings, "mes_timeout", None), **kwargs)

    def __repr__(self) -> str:  # never shows the token
        return f"RestMes({self.url!r})"

    def auth_headers(self) -> dict[str, str]:
        """`Authorization: Bearer <token>`, or the token as it stands in a header of the MES's own (X-Api-Key)."""
        if not self._token:
            return {}
        if self._auth_header.lower() == "authorization":
            return {"Authorization": f"Bearer {self._token}"}
        return {self._auth_header: self._token}

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self._timeout, connect=min(5.0, self._timeout)), transport=self._transport,
                follow_redirects=False, headers={"Accept": "application/json", "User-Agent": "mfgos-mes"})
        return self._client

    def body(self, transaction: Transaction) -> dict[str, Any]:
        """The JSON the MES gets (the module docstring): the neutral fields, with the MES's name of the machine."""
        settings = transaction.plant_settings
        data = dict(transaction.fields)
        if data.get("machine"):
            data["equipment"] = (settings.get("machines") or {}).get(data["machine"], data["machine"])
        return {"id": transaction.idempotency_key, "kind": transaction.kind, "plant": transaction.plant,
                "site": settings.get("site") or transaction.plant, "exception": transaction.exception_code,
                "decided_at": transaction.decided_at.isoformat() if transaction.decided_at else None, "data": data}

    async def post(self, transaction: Transaction) -> str:
        kinds.validate(transaction.kind, transaction.fields)
        headers = {**self.auth_headers(), "Idempotency-Key": transaction.idempotency_key}
        started = time.perf_counter()
        try:
            async with self.client.stream("POST", self.url, json=self.body(transaction), headers=headers) as response:
                answer = await _read_capped(response)
        except httpx.TimeoutException as exc:
            log.warning("rest MES: POST %s timed out after %.1f s", transaction.kind, time.perf_counter() - started)
            raise Unavailable("rest: the MES did not answer in time") from exc
        except httpx.TransportError as exc:
            log.warning("rest MES: POST %s failed: %s", transaction.kind, type(exc).__name__)
            raise Unavailable(f"rest: cannot reach the MES ({type(exc).__name__})") from exc
        log.debug("rest MES: POST %s -> %s in %.0f ms", transaction.kind, response.status_code,
                  (time.perf_counter() - started) * 1000)
        if response.is_success:
            return _reference(answer) or transaction.idempotency_key
        error = _error_for(response, answer, self.now())
        log.warning("rest MES: POST %s -> %s: %s", transaction.kind, response.status_code, error)
        raise error

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def url_problem(url: str) -> str | None:
    """What is wrong with an MES URL, or None: http(s), a host, and no credentials or fragment in it."""
    if not url:
        return "is not set"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError:
        return f"is not a URL: {url!r:.80}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"must be an http:// or https:// URL with a host, got {url!r:.80}"
    if parts.username or parts.password:
        return "must not carry credentials: put the token in MFGOS_MES_TOKEN"
    if parts.fragment:
        return "must not have a #fragment"
    return None


async def _read_capped(response: httpx.Response) -> bytes:
    """The answer's first `MAX_ANSWER` bytes: an MES (or whatever answers at its address) cannot flood us."""
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= MAX_ANSWER:
            break
    return b"".join(chunks)[:MAX_ANSWER]


def _json(answer: bytes) -> Any:
    try:
        return json.loads(answer)
    except ValueError:
        return None


def _reference(answer: bytes) -> str | None:
    body = _json(answer)
    if not isinstance(body, dict):
        return None
    for key in ("reference", "id"):
        value = body.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            return _clip(str(value), MAX_REFERENCE)
    return None


def _words(answer: bytes, status: int) -> str:
    """The MES's own words for a refusal: `message`, `error` or `detail` of a JSON body, else its text."""
    body = _json(answer)
    if isinstance(body, dict):
        for key in ("message", "error", "detail"):
            if isinstance(body.get(key), str) and body[key].strip():
                return _clip(body[key])
    text = answer.decode("utf-8", "replace")
    return _clip(text) or f"HTTP {status}"


def _error_for(response: httpx.Response, answer: bytes, now: datetime) -> MesError:
    status = response.status_code
    if status in (401, 403):
        return AuthFailed(f"rest: the MES refused our credentials (HTTP {status})")
    if status in TRANSIENT or status >= 500:
        return Unavailable(f"rest: the MES answered HTTP {status}: {_words(answer, status)}",
                           retry_after=_retry_after(response.headers.get("Retry-After"), now))
    if 300 <= status < 400:
        return Rejected(f"the MES answered a redirect (HTTP {status}), which is not followed: set MFGOS_MES_URL "
                        "to the address it names")
    return Rejected(f"the MES refused it (HTTP {status}): {_words(answer, status)}")


def _retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP-date (RFC 9110 10.2.3)."""
    if not value or not value.strip():
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _clip(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
