"""A fake WhatsApp Cloud API (Graph): `POST /<version>/<phone-number-id>/messages`, media upload
(`POST /<version>/<phone-number-id>/media`, multipart), look-up and download.

It validates what Meta validates for reply buttons (at most 3, titles of at most 20
characters, body at most 1024) with Graph-style 400 errors; a recipient starting with
`999` is "not a WhatsApp user" (131026). It keeps the 24-hour customer-service window as
the Cloud API does: a free-form message (text, interactive) to someone whose last message
to the number (a delivery through `deliver`, or `open_window`) is older than 24 hours, or
who never wrote, is refused with 131047 "Re-engagement message"; a template message is
accepted only if `templates` has it in that language with that many body parameters
(132001 / 132000 otherwise), and its parameters may not hold newlines, tabs or more than
four spaces in a row (132018). With `status_webhook` set it behaves as the API often does
instead: it accepts the free-form message (a wamid) and then reports 131047 in a `failed`
status, signed, on that webhook. As the platform it signs webhook deliveries with
`X-Hub-Signature-256` and builds the documented payloads (text, button reply, image,
`contacts[].user_id`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import re
import time
from typing import Any

from aiohttp import web

from tests.fakes.server import FakeServer

VERSION = "v21.0"


def graph_error(status: int, code: int, message: str, headers: dict[str, str] | None = None,
                error_data: dict[str, Any] | None = None) -> web.Response:
    error: dict[str, Any] = {"message": f"(#{code}) {message}", "type": "OAuthException", "code": code,
                             "fbtrace_id": "AbCdEf"}
    if error_data:
        error["error_data"] = error_data
    return web.json_response({"error": error}, status=status, headers=headers)


class FakeWhatsApp(FakeServer):
    def __init__(self, token: str = "wa-token", phone_number_id: str = "1055", app_secret: str = "wa-secret",
                 display_number: str = "15550001055", window_hours: float | None = 24.0) -> None:
        super().__init__()
        self.window_hours = window_hours  # None: every recipient counts as inside the window (benchmarks)
        self.last_inbound: dict[str, float] = {}  # recipient (digits or user id) -> unix time of their last message
        self.templates: dict[str, dict[str, int]] = {}  # approved: name -> {language code: body parameters}
        self.status_webhook: str | None = None  # report 131047 later, as a failed status posted here
        self.failed: list[dict[str, Any]] = []  # accepted, then reported failed
        self.token, self.phone_number_id, self.app_secret = token, phone_number_id, app_secret
        self.display_number = display_number
        self.sent: list[dict[str, Any]] = []
        self.media: dict[str, tuple[bytes, str]] = {}
        self._ids = itertools.count(1)
        self.app.router.add_post(f"/{VERSION}/{{phone}}/messages", self._messages)
        self.app.router.add_post(f"/{VERSION}/{{phone}}/media", self._upload)
        self.uploads: list[str] = []  # media ids of POST /<phone-number-id>/media, in order
        self.app.router.add_get(f"/{VERSION}/{{media_id}}", self._media_info)
        self.app.router.add_get("/download/{media_id}", self._download)

    @property
    def api_url(self) -> str:
        return self.url

    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.token}"

    async def _messages(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.record(request, body)
        if not self._authorised(request):
            return graph_error(401, 190, "Invalid OAuth access token")
        if request.match_info["phone"] != self.phone_number_id:
            return graph_error(400, 100, "Unsupported post request")
        outcome = self.faults.draw()
        if outcome == "429":  # the per-recipient pair limit: a random fault does not mean the number is over 80/s
            return graph_error(429, 131056, "(Business Account, Consumer Account) pair rate limit hit",
                               {"Retry-After": str(int(self.faults.retry_after))})
        if outcome == "5xx":
            return graph_error(503, 131016, "Service temporarily unavailable")
        recipient = body.get("to") or body.get("recipient")
        if body.get("messaging_product") != "whatsapp" or not recipient:
            return graph_error(400, 100, "Invalid parameter")
        if str(recipient).startswith("999"):
            return graph_error(400, 131026, "Message undeliverable: receiver is not a WhatsApp user")
        if body.get("type") == "template":
            if (refused := self._check_template(body.get("template") or {})) is not None:
                return refused
        elif not self.in_window(str(recipient)) and self.status_webhook:
            wamid = f"wamid.FAKE{next(self._ids):06d}"
            self.failed.append({"id": wamid, **body})
            asyncio.get_running_loop().create_task(self._report_failed(wamid, str(recipient)))
            return web.json_response({"messaging_product": "whatsapp", "contacts": [{"input": recipient, "wa_id": recipient}],
                                      "messages": [{"id": wamid}]})
        elif not self.in_window(str(recipient)):
            return graph_error(400, 131047, "Re-engagement message", error_data={
                "messaging_product": "whatsapp", "details": "Message failed to send because more than 24 hours have "
                "passed since the customer last replied to this number."})
        if body.get("type") == "image":
            image = body.get("image") or {}
            if not image.get("id") and not image.get("link"):
                return graph_error(400, 100, "Invalid parameter: image needs an id or a link")
            if image.get("id") and image["id"] not in self.media:
                return graph_error(400, 131053, "Media upload error: unknown media id")
            if len(str(image.get("caption") or "")) > 1024:
                return graph_error(400, 131009, "Parameter value is not valid: caption longer than 1024")
        if body.get("type") == "interactive" and body["interactive"].get("type") == "list":
            action = body["interactive"]["action"]
            rows = [r for section in action["sections"] for r in section["rows"]]
            if not 1 <= len(rows) <= 10 or not 1 <= len(action["button"]) <= 20:
                return graph_error(400, 131009, "Parameter value is not valid: a list has 1-10 rows and a button of 1-20")
            if any(len(r["title"]) > 24 or len(r["id"]) > 200 for r in rows):
                return graph_error(400, 131009, "Parameter value is not valid: row title longer than 24")
            if len(body["interactive"]["body"]["text"]) > 4096:
                return graph_error(400, 131009, "Parameter value is not valid: body longer than 4096")
        elif body.get("type") == "interactive":
            interactive = body["interactive"]
            buttons = interactive["action"]["buttons"]
            if not 1 <= len(buttons) <= 3:
                return graph_error(400, 131009, "Parameter value is not valid: buttons must be 1-3")
            if any(len(b["reply"]["title"]) > 20 for b in buttons):
                return graph_error(400, 131009, "Parameter value is not valid: button title longer than 20")
            if len(interactive["body"]["text"]) > 1024:
                return graph_error(400, 131009, "Parameter value is not valid: body longer than 1024")
        wamid = f"wamid.FAKE{next(self._ids):06d}"
        self.sent.append({"id": wamid, **body})
        return web.json_response({"messaging_product": "whatsapp", "contacts": [{"input": recipient, "wa_id": recipient}],
                                  "messages": [{"id": wamid}]})

    async def _upload(self, request: web.Request) -> web.Response:
        """POST /<phone-number-id>/media as documented: multipart with `messaging_product` "whatsapp", the
        `file` and its `type`; an image is JPEG or PNG of at most 5 MB, and the bytes must be what `type` says."""
        if not self._authorised(request):
            return graph_error(401, 190, "Invalid OAuth access token")
        if request.match_info["phone"] != self.phone_number_id:
            return graph_error(400, 100, "Unsupported post request")
        if request.content_type != "multipart/form-data":
            return graph_error(400, 100, "Invalid parameter: the upload is multipart/form-data")
        form = await request.post()
        self.record(request, {k: v for k, v in form.items() if isinstance(v, str)})
        file = form.get("file")
        if form.get("messaging_product") != "whatsapp" or not isinstance(file, web.FileField):
            return graph_error(400, 100, "Invalid parameter: messaging_product and file are required")
        data, declared = file.file.read(), str(form.get("type") or file.content_type or "")
        magic = {"image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff"}
        if declared not in magic:
            return graph_error(400, 131053, f"Media upload error: unsupported type {declared!r}")
        if not data.startswith(magic[declared]) or len(data) > 5 * 1024 * 1024:
            return graph_error(400, 131053, "Media upload error: the file is not the type it claims or too large")
        media_id = f"{next(self._ids) + 900000000000}"
        self.media[media_id] = (data, declared)
        self.uploads.append(media_id)
        return web.json_response({"id": media_id})

    def images_to(self, number: str) -> list[tuple[dict[str, Any], bytes]]:
        """Image messages sent to `number`, each with the bytes of the media it showed."""
        return [(m, self.media[m["image"]["id"]][0]) for m in self.sent_to(number) if m.get("type") == "image"]

    async def _report_failed(self, wamid: str, recipient: str) -> None:
        await asyncio.sleep(0.05)
        body = self.envelope([], [])
        body["entry"][0]["changes"][0]["value"]["statuses"] = [{
            "id": wamid, "status": "failed", "timestamp": str(int(time.time())), "recipient_id": recipient,
            "errors": [{"code": 131047, "title": "Re-engagement message", "message": "Re-engagement message",
                        "error_data": {"details": "Message failed to send because more than 24 hours have passed "
                                                  "since the customer last replied to this number."}}]}]
        assert self.status_webhook is not None
        await self.deliver(self.status_webhook, body)

    def in_window(self, recipient: str) -> bool:
        if self.window_hours is None:
            return True
        last = self.last_inbound.get(recipient.lstrip("+"))
        return last is not None and time.time() - last <= self.window_hours * 3600

    def open_window(self, recipient: str, at: float | None = None) -> None:
        """As if `recipient` had just written (or wrote at `at`) to the business number."""
        self.last_inbound[recipient.lstrip("+")] = time.time() if at is None else at

    def _check_template(self, template: dict[str, Any]) -> web.Response | None:
        name, language = template.get("name"), (template.get("language") or {}).get("code")
        approved = self.templates.get(str(name), {})
        if language not in approved:
            return graph_error(404, 132001, "Template name does not exist in the translation",
                               error_data={"details": f"template name ({name}) does not exist in {language}"})
        parameters = [p for c in template.get("components") or [] if c.get("type") == "body"
                      for p in c.get("parameters") or []]
        if len(parameters) != approved[language]:
            return graph_error(400, 132000, "Number of parameters does not match the expected number of params")
        if any(re.search(r"[\n\t]| {5,}", str(p.get("text", ""))) for p in parameters):
            return graph_error(400, 132018, "There was an issue with the parameters in your template.")
        return None

    async def _media_info(self, request: web.Request) -> web.Response:
        media_id = request.match_info["media_id"]
        if not self._authorised(request) or media_id not in self.media:
            return graph_error(404, 100, "Unsupported get request")
        data, mime = self.media[media_id]
        return web.json_response({"messaging_product": "whatsapp", "url": f"{self.url}/download/{media_id}",
                                  "mime_type": mime, "sha256": hashlib.sha256(data).hexdigest(), "file_size": len(data),
                                  "id": media_id})

    async def _download(self, request: web.Request) -> web.Response:
        media_id = request.match_info["media_id"]
        if not self._authorised(request) or media_id not in self.media:
            return web.Response(status=404)
        data, mime = self.media[media_id]
        return web.Response(body=data, content_type=mime.split(";")[0])

    # --- what a person sees ----------------------------------------------------------------

    def sent_to(self, number: str) -> list[dict[str, Any]]:
        return [m for m in self.sent if (m.get("to") or m.get("recipient")) == number.lstrip("+")]

    @staticmethod
    def text(message: dict[str, Any]) -> str:
        if message["type"] == "template":
            return " | ".join(p["text"] for c in message["template"]["components"] for p in c["parameters"])
        if message["type"] == "interactive":
            return message["interactive"]["body"]["text"]
        if message["type"] == "image":
            return message["image"].get("caption", "")
        return message["text"]["body"]

    @staticmethod
    def buttons(message: dict[str, Any]) -> list[str]:
        if message["type"] != "interactive":
            return []
        if message["interactive"]["type"] == "list":
            return [r["id"] for s in message["interactive"]["action"]["sections"] for r in s["rows"]]
        return [b["reply"]["id"] for b in message["interactive"]["action"]["buttons"]]

    @staticmethod
    def titles(message: dict[str, Any]) -> list[str]:
        if message["type"] != "interactive":
            return []
        if message["interactive"]["type"] == "list":
            return [r["title"] for s in message["interactive"]["action"]["sections"] for r in s["rows"]]
        return [b["reply"]["title"] for b in message["interactive"]["action"]["buttons"]]

    def state(self) -> dict[str, Any]:
        return {**super().state(), "sent": self.sent}

    # --- as the platform -------------------------------------------------------------------

    def envelope(self, messages: list[dict[str, Any]], contacts: list[dict[str, Any]]) -> dict[str, Any]:
        return {"object": "whatsapp_business_account", "entry": [{"id": "WABA1", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": self.display_number, "phone_number_id": self.phone_number_id},
            "contacts": contacts, "messages": messages}}]}]}

    @staticmethod
    def contact(wa_id: str | None, name: str = "Person", user_id: str | None = None) -> dict[str, Any]:
        contact: dict[str, Any] = {"profile": {"name": name}}
        if wa_id:
            contact["wa_id"] = wa_id.lstrip("+")
        if user_id:
            contact["user_id"] = user_id
        return contact

    def text_message(self, sender: str | None, text: str, *, context: str | None = None, user_id: str | None = None,
                     message_id: str | None = None) -> dict[str, Any]:
        item: dict[str, Any] = {"id": message_id or f"wamid.IN{next(self._ids):06d}", "timestamp": str(int(time.time())),
                                "type": "text", "text": {"body": text}}
        if sender:
            item["from"] = sender.lstrip("+")
        if context:
            item["context"] = {"from": self.display_number, "id": context}
        return self.envelope([item], [self.contact(sender, user_id=user_id)])

    def button_reply(self, sender: str, reply_id: str, title: str, context: str, kind: str = "button_reply") -> dict[str, Any]:
        """A press of a reply button, or (`kind="list_reply"`) the pick of a list message's row."""
        item = {"id": f"wamid.IN{next(self._ids):06d}", "from": sender.lstrip("+"), "timestamp": str(int(time.time())),
                "type": "interactive", "context": {"from": self.display_number, "id": context},
                "interactive": {"type": kind, kind: {"id": reply_id, "title": title}}}
        return self.envelope([item], [self.contact(sender)])

    def image_message(self, sender: str, data: bytes, caption: str = "", mime: str = "image/jpeg") -> dict[str, Any]:
        media_id = f"MEDIA{next(self._ids)}"
        self.media[media_id] = (data, mime)
        item = {"id": f"wamid.IN{next(self._ids):06d}", "from": sender.lstrip("+"), "timestamp": str(int(time.time())),
                "type": "image", "image": {"id": media_id, "mime_type": mime, "caption": caption,
                                           "sha256": hashlib.sha256(data).hexdigest()}}
        return self.envelope([item], [self.contact(sender)])

    def sign(self, raw: bytes, secret: str | None = None) -> str:
        return "sha256=" + hmac.new((secret or self.app_secret).encode(), raw, hashlib.sha256).hexdigest()

    async def deliver(self, url: str, body: dict[str, Any], *, secret: str | None = None,
                      signature: str | None = None) -> tuple[int, str]:
        raw = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signature or self.sign(raw, secret)}
        for entry in body.get("entry") or []:  # the person wrote to the number: their window opens
            for change in entry.get("changes") or []:
                value = change.get("value") or {}
                for item in value.get("messages") or []:
                    for contact in value.get("contacts") or [{}]:
                        for who in (item.get("from"), contact.get("user_id")):
                            if who:
                                self.open_window(str(who), float(item.get("timestamp") or time.time()))
        return await self.post(url, raw, headers)
