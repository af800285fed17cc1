"""The chat webhooks on the one ASGI app: verify, convert, hand to the shared gate.

Routes exist only for configured channels (anything else is a 404):
`POST /slack/events` (slack-bolt: signature, url_verification, ack in time),
`POST /telegram/webhook` (webhook mode: `X-Telegram-Bot-Api-Secret-Token` checked),
`GET|POST /whatsapp/webhook` (verify-token handshake; `X-Hub-Signature-256` over the raw body),
`POST /bridge/inbound` (timestamped HMAC, docs/channels.md), and `GET /attachments/{id}` for
the console to show stored photos and voice notes. A forged or stale request gets 401/403
and changes nothing; a failure while storing answers 500 so the platform delivers again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from sqlmodel import Session

from bot.middleware import verify_bridge, verify_telegram, verify_whatsapp
from models import Attachment


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise HTTPException(400, f"the body is not JSON: {error}") from error


def channel_router(hub: Any) -> APIRouter:
    router = APIRouter(tags=["channels"])
    channels, gate = hub.channels, hub.gate

    if (slack := channels.get("slack")) is not None and slack.signing_secret:
        @router.post("/slack/events")
        async def slack_events(request: Request) -> Response:
            return await slack.http.handle(request)

    if (telegram := channels.get("telegram")) is not None and telegram.webhook_mode:
        @router.post("/telegram/webhook")
        async def telegram_webhook(request: Request) -> dict[str, bool]:
            if not verify_telegram(telegram.webhook_secret, request.headers.get("X-Telegram-Bot-Api-Secret-Token")):
                raise HTTPException(403, "wrong or missing secret token")
            body = _json(await request.body())
            if not isinstance(body, dict) or "update_id" not in body:
                raise HTTPException(400, "not a Telegram update")
            await telegram.handle_update(body)
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
                                                              request.headers.get("X-Hub-Signature-256")):
                raise HTTPException(401, "bad signature")
            body = _json(raw)
            outcomes = [await gate.accept(item.message, own=item.own, language=item.language, fetch=whatsapp.fetch)
                        for item in whatsapp.parse(body)]
            if await whatsapp.handle_failed(whatsapp.failed_statuses(body)) and gate.wake is not None:
                gate.wake()  # a message queued again as the template
            return {"ok": True, "messages": [o.outcome for o in outcomes]}

    if (bridge := channels.get("bridge")) is not None:
        from bot.channels.bridge import BridgeError

        @router.post("/bridge/inbound")
        async def bridge_inbound(request: Request) -> Response:
            raw = await request.body()
            if not verify_bridge(bridge.secret, raw, request.headers.get("X-Mfgos-Timestamp"),
                                 request.headers.get("X-Mfgos-Signature")):
                raise HTTPException(401, "bad or stale signature")
            try:
                message, language, from_me = bridge.parse(_json(raw))
            except BridgeError as error:
                return JSONResponse({"error": str(error)}, status_code=400)
            accepted = await gate.accept(message, own=from_me, language=language, fetch=bridge.fetch)
            return JSONResponse({"status": accepted.outcome, "signal_id": accepted.signal_id})

    @router.get("/attachments/{attachment_id}")
    def attachment(attachment_id: int) -> FileResponse:
        with Session(hub.runtime.engine) as session:
            row = session.get(Attachment, attachment_id)
        if row is None or not Path(row.path).is_file():
            raise HTTPException(404, "no such attachment")
        return FileResponse(row.path, media_type=row.content_type or "application/octet-stream")

    return router
