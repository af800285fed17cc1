"""The chat webhooks on the one ASGI app: verify, convert, hand to the shared gate.

Routes exist only for configured channels (anything else is a 404):
`POST /slack/events` (signature checked here and again by slack-bolt, which answers
url_verification and acks in time), `POST /telegram/webhook` (webhook mode:
`X-Telegram-Bot-Api-Secret-Token` checked), `GET|POST /whatsapp/webhook` (verify-token
handshake; `X-Hub-Signature-256` over the raw body), `POST /bridge/inbound` (timestamped HMAC,
docs/channels.md), and `GET /attachments/{public_id}` for the console to show stored photos and
voice notes.

The guard (mfgos/guard.py) has already capped the body and its nesting. A forged or stale
request gets 401/403 and changes nothing. A correctly signed delivery that is not a message we
can read (not JSON, the wrong shape) is answered 200 with nothing stored and a log line: the
platform would otherwise deliver it again and again. A chat text longer than `MAX_TEXT`
characters from the bridge or the console API is refused with 413.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from slack_bolt.request.internals import parse_body
from sqlmodel import Session, select

from bot.media import DOWNLOAD, sniff_file
from bot.middleware import hmac_hex, verify_bridge, verify_telegram, verify_whatsapp
from models import Attachment

log = logging.getLogger(__name__)

MAX_TEXT = 4000  # characters of one chat message (the console's limit; platforms allow about as much)
MAX_TIMESTAMP_DIGITS = 12
SLACK_MAX_AGE = 300  # seconds, as Slack asks
PUBLIC_ID_LENGTH = range(16, 65)  # secrets.token_urlsafe(16) is 22 characters; an integer key is never one
NOT_A_MESSAGE = {"ok": True, "stored": False}


def text_too_long() -> JSONResponse:
    return JSONResponse({"detail": f"the message is longer than {MAX_TEXT} characters; split it or shorten it"},
                        status_code=413)


def _ascii(value: str | None) -> str | None:
    """A signature header as sent, or None when it holds anything but ASCII (it cannot be ours)."""
    return value if value is not None and value.isascii() else None


def slack_signed(secret: str, raw: bytes, timestamp: str | None, signature: str | None,
                 now: float | None = None) -> bool:
    """Slack's v0 signature (HMAC-SHA256 of `v0:{timestamp}:{raw body}`) within 5 minutes. A timestamp
    that is not an integer is a forgery, not an error; the body is signed as bytes (slack-sdk's verifier
    decodes it as UTF-8 first and fails on anything else)."""
    timestamp, signature = _ascii(timestamp), _ascii(signature)
    if not timestamp or not timestamp.isdigit() or len(timestamp) > MAX_TIMESTAMP_DIGITS or not signature:
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > SLACK_MAX_AGE:
        return False
    expected = "v0=" + hmac_hex(secret, b"v0:" + timestamp.encode() + b":" + raw)
    return hmac.compare_digest(expected, signature)


def _load(raw: bytes, channel: str) -> Any:
    """The JSON of a verified delivery, or None (logged) when it is not JSON."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        log.warning("%s: a signed delivery that is not JSON was ignored: %s", channel, str(error)[:200])
        return None


def channel_router(hub: Any) -> APIRouter:
    router = APIRouter(tags=["channels"])
    channels, gate = hub.channels, hub.gate

    if (slack := channels.get("slack")) is not None and slack.signing_secret:
        @router.post("/slack/events")
        async def slack_events(request: Request) -> Response:
            raw = await request.body()
            if not slack_signed(slack.signing_secret, raw, request.headers.get("X-Slack-Request-Timestamp"),
                                request.headers.get("X-Slack-Signature")):
                return JSONResponse({"detail": "bad or stale signature"}, status_code=401)
            try:  # what bolt will make of the body; it does not expect a signed body it cannot read
                parsed = parse_body(raw.decode("utf-8"), request.headers.get("content-type"))
            except (ValueError, RecursionError) as error:
                log.warning("slack: a signed request that is neither JSON nor a form was ignored: %s", str(error)[:200])
                return JSONResponse(NOT_A_MESSAGE)
            if not isinstance(parsed, dict):
                log.warning("slack: a signed request whose body is not an object was ignored")
                return JSONResponse(NOT_A_MESSAGE)
            # slack-bolt reads the payload's parts without checking their types: a wrong type raises while
            # it builds its request, or makes its middleware answer 500 (logged by bolt). The listeners run
            # after the ack, so nothing was stored either way: Slack gets its 200 instead of retrying.
            try:
                response = await slack.http.handle(request)
            except (TypeError, AttributeError, KeyError, IndexError, ValueError) as error:
                log.warning("slack: a signed request of a shape slack-bolt cannot read was ignored: %s: %s",
                            type(error).__name__, str(error)[:200])
                return JSONResponse(NOT_A_MESSAGE)
            if response.status_code >= 500:
                log.warning("slack: a signed request of a shape slack-bolt cannot read was ignored")
                return JSONResponse(NOT_A_MESSAGE)
            return response

    if (telegram := channels.get("telegram")) is not None and telegram.webhook_mode:
        @router.post("/telegram/webhook")
        async def telegram_webhook(request: Request) -> dict[str, bool]:
            if not verify_telegram(telegram.webhook_secret, request.headers.get("X-Telegram-Bot-Api-Secret-Token")):
                raise HTTPException(403, "wrong or missing secret token")
            body = _load(await request.body(), "telegram")
            update = telegram.parse(body)
            if update is None:
                return NOT_A_MESSAGE
            await telegram.handle_update(update)
            return {"ok": True}

    if (whatsapp := channels.get("whatsapp")) is not None:
        @router.get("/whatsapp/webhook")
        async def whatsapp_verify(request: Request) -> Response:
            params = request.query_params
            if params.get("hub.mode") == "subscribe" and whatsapp.verify_token \
                    and params.get("hub.verify_token") == whatsapp.verify_token:
                return PlainTextResponse(params.get("hub.challenge", ""))
            raise HTTPException(403, "verify token does not match")

        @router.post("/whatsapp/webhook")
        async def whatsapp_events(request: Request) -> dict[str, Any]:
            raw = await request.body()
            if not whatsapp.app_secret or not verify_whatsapp(whatsapp.app_secret, raw,
                                                              _ascii(request.headers.get("X-Hub-Signature-256"))):
                raise HTTPException(401, "bad signature")
            body = _load(raw, "whatsapp")
            items = whatsapp.parse(body)
            await whatsapp.save_heard()  # the 24-hour window, for every replica, before anyone is answered
            outcomes = [await gate.accept(item.message, own=item.own, language=item.language, fetch=whatsapp.fetch)
                        for item in items]
            if await whatsapp.handle_failed(whatsapp.failed_statuses(body)) and gate.wake is not None:
                gate.wake()  # a message queued again as the template
            return {"ok": True, "messages": [o.outcome for o in outcomes]}

    if (bridge := channels.get("bridge")) is not None:
        from bot.channels.bridge import BridgeError

        @router.post("/bridge/inbound")
        async def bridge_inbound(request: Request) -> Response:
            raw = await request.body()
            if not verify_bridge(bridge.secret, raw, _ascii(request.headers.get("X-Mfgos-Timestamp")),
                                 _ascii(request.headers.get("X-Mfgos-Signature"))):
                raise HTTPException(401, "bad or stale signature")
            body = _load(raw, "bridge")
            if body is None:
                return JSONResponse({"error": "the body is not JSON"}, status_code=400)
            try:
                message, language, from_me = bridge.parse(body)
            except BridgeError as error:
                return JSONResponse({"error": str(error)}, status_code=400)
            if len(message.text) > MAX_TEXT:
                return text_too_long()
            accepted = await gate.accept(message, own=from_me, language=language, fetch=bridge.fetch)
            return JSONResponse({"status": accepted.outcome, "signal_id": accepted.signal_id})

    @router.get("/attachments/{public_id}")
    def attachment(public_id: str) -> FileResponse:
        """The file under its random id. Its type is sniffed from its bytes: images, PDF and audio are
        shown inline; anything else (HTML, SVG, unknown) is a download, never a page of this origin."""
        row = None
        if len(public_id) in PUBLIC_ID_LENGTH:
            with Session(hub.runtime.engine) as session:
                row = session.exec(select(Attachment).where(Attachment.public_id == public_id)).first()
        path = Path(row.path) if row is not None else None
        if path is None or not path.is_file():
            raise HTTPException(404, "no such attachment")
        media_type = sniff_file(path)
        inline = media_type != DOWNLOAD
        return FileResponse(path, media_type=media_type, content_disposition_type="inline" if inline else "attachment",
                            filename=path.name, headers={"X-Content-Type-Options": "nosniff"})

    return router
