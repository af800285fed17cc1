"""The guard and the webhooks against an attacker: body limits, nesting, control characters, headers,
hosts, signed payloads of the wrong shape, attachments and the fetching of media named in payloads.

Everything goes over real HTTP to the app as `serve` builds it, with every channel configured
against the fake platforms (tests/guard_stack.py).
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from mfgos.config import Settings
from mfgos.runtime import Runtime
from mfgos.web import create_app
from tests.fakes.stack import PLANT
from tests.guard_stack import GuardedApp, signed

pytestmark = [pytest.mark.timeout(120), pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")]

HEADERS = {
    "content-security-policy": "default-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'; "
                               "base-uri 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}
MIB = 1024 * 1024
BEA = "+4915100000009"  # a person of the test plant on the bridge
WEBHOOKS = ["/slack/events", "/telegram/webhook", "/whatsapp/webhook", "/bridge/inbound", "/signals/mes"]
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GuardedApp]:
    running = GuardedApp(tmp_path_factory.mktemp("guard"), media_max_bytes=4096)
    yield running
    running.stop()


@pytest.fixture
def http(guarded: GuardedApp) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=guarded.url, timeout=30) as client:
        yield client


def has_headers(response: httpx.Response) -> bool:
    return all(response.headers.get(name) == value for name, value in HEADERS.items())


def raw_exchange(url: str, head: bytes, body_chunks: Iterator[bytes]) -> tuple[int, bytes, int]:
    """Send a request over a plain socket, body chunk by chunk until the server answers or closes;
    returns (status, response head, body bytes that were sent)."""
    parts = urlsplit(url)
    sent = 0
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(head)
        sock.setblocking(False)
        answer = b""
        for chunk in body_chunks:
            with contextlib.suppress(BlockingIOError):
                answer += sock.recv(65536)
            if answer:
                break
            try:
                sock.setblocking(True)
                sock.sendall(chunk)
                sent += len(chunk)
                sock.setblocking(False)
            except OSError:  # the server closed: it will not read the rest
                break
        sock.setblocking(True)
        sock.settimeout(10)
        while b"\r\n\r\n" not in answer:
            more = sock.recv(65536)
            if not more:
                break
            answer += more
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0
    return status, answer.split(b"\r\n\r\n", 1)[0], sent


def post_message(guarded: GuardedApp, **extra: Any) -> dict[str, Any]:
    return {"person_id": "tom", "text": "hobber 1 down", "event_id": uuid.uuid4().hex, **extra}


# --- body limits -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/messages", *WEBHOOKS])
def test_a_declared_body_over_the_limit_is_refused_before_it_is_read(guarded: GuardedApp, path: str) -> None:
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {50 * MIB}\r\n\r\n").encode()
    status, answer, sent = raw_exchange(guarded.url, head, iter([b"x" * 65536] * 800))
    assert status == 413 and b"content-security-policy" in answer.lower()
    # The answer came while the client was still sending (what went in sits in socket buffers).
    assert sent < 10 * MIB, f"{sent} bytes went in before the refusal"


@pytest.mark.parametrize("path", ["/api/messages", "/whatsapp/webhook", "/signals/mes"])
def test_a_chunked_body_is_cut_off_at_the_limit(guarded: GuardedApp, path: str) -> None:
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunk = b"10000\r\n" + b"[" * 65536 + b"\r\n"
    before = len(guarded.signals())
    status, _, sent = raw_exchange(guarded.url, head.encode(), iter([chunk] * 800))
    assert status == 413
    assert sent < 10 * MIB, f"{sent} bytes went in before the refusal"
    assert len(guarded.signals()) == before


def test_a_chat_message_over_4000_characters_is_a_413_from_the_api_and_the_bridge(
        guarded: GuardedApp, http: httpx.Client) -> None:
    before = len(guarded.signals())
    answer = http.post("/api/messages", json=post_message(guarded, text="a" * 4001))
    assert answer.status_code == 413 and "4000" in answer.json()["detail"] and has_headers(answer)
    raw = json.dumps({"event_id": uuid.uuid4().hex, "from": BEA, "text": "b" * 4001}).encode()
    answer = http.post("/bridge/inbound", content=raw, headers={"Content-Type": "application/json",
                                                                 **signed("/bridge/inbound", raw)})
    assert answer.status_code == 413 and "4000" in answer.text
    assert len(guarded.signals()) == before
    assert http.post("/api/messages", json=post_message(guarded, text="c" * 4000)).status_code == 200


# --- nesting and control characters ------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/messages", *WEBHOOKS])
def test_deep_nesting_is_a_400_before_the_route(guarded: GuardedApp, http: httpx.Client, path: str) -> None:
    raw = ('{"person_id": "tom", "text": ' + "[" * 100_000 + "]" * 100_000 + "}").encode()
    answer = http.post(path, content=raw, headers={"Content-Type": "application/json", **signed(path, raw)})
    assert answer.status_code == 400 and "nested" in answer.json()["detail"] and has_headers(answer)


def test_deep_nesting_inside_a_slack_form_field_is_a_400(http: httpx.Client) -> None:
    raw = ("payload=" + "%5B" * 5000 + "%5D" * 5000).encode()
    answer = http.post("/slack/events", content=raw, headers={
        "Content-Type": "application/x-www-form-urlencoded", **signed("/slack/events", raw)})
    assert answer.status_code == 400


@pytest.mark.parametrize("path", ["/api/exceptions/E-0001%00", "/api/people/tom%00/messages", "/api/exceptions/E%0A1",
                                  "/api/exceptions?status=open%00", "/attachments/%1Babc", "/static/app.js%00"])
def test_control_characters_in_a_path_or_query_are_a_400(http: httpx.Client, path: str) -> None:
    answer = http.get(path)
    assert answer.status_code == 400 and has_headers(answer)


@pytest.mark.parametrize("path", ["/api/messages", "/bridge/inbound", "/signals/mes"])
def test_a_nul_in_a_body_of_our_own_protocols_is_a_400(guarded: GuardedApp, http: httpx.Client, path: str) -> None:
    before = len(guarded.signals())
    for body in (post_message(guarded, person_id="tom\x00"), {"event_id": "n1", "from": BEA, "text": "a\x00b",
                                                             "machine": "HOB-01", "state": "DOWN"}):
        raw = json.dumps(body).encode()
        answer = http.post(path, content=raw, headers={"Content-Type": "application/json", **signed(path, raw)})
        assert answer.status_code == 400 and "NUL" in answer.text and has_headers(answer)
    assert len(guarded.signals()) == before


# --- headers and hosts -------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), [("GET", "/"), ("GET", "/static/app.js"), ("GET", "/api/plant"),
                                               ("GET", "/api/exceptions/E-9999"), ("GET", "/nowhere"),
                                               ("POST", "/slack/events"), ("POST", "/api/messages")])
def test_every_answer_has_the_security_headers(http: httpx.Client, method: str, path: str) -> None:
    answer = http.request(method, path, content=b"{}" if method == "POST" else None)
    assert has_headers(answer), dict(answer.headers)


def test_the_console_page_runs_under_the_policy_it_is_served_with(http: httpx.Client) -> None:
    page = http.get("/")
    assert page.headers.get("content-security-policy") == HEADERS["content-security-policy"]
    lower = page.text.lower()  # 'self' scripts and styles only: no inline script, style or handler
    assert "<script>" not in lower and "<style" not in lower and " style=" not in lower
    assert not any(f" on{event}=" in lower for event in ("click", "load", "submit", "input", "change"))
    scripts = re.findall(r'<script src="([^"]+)"', page.text)
    assert scripts and all(s.startswith("/static/") and http.get(s).status_code == 200 for s in scripts)


@pytest.fixture
def host_checked(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(_env_file=None, database_url=f"sqlite:///{tmp_path / 'h.db'}", plant_file=PLANT,  # type: ignore[call-arg]
                        allowed_hosts="mfgos.example.com, 10.0.0.5")
    runtime = Runtime(settings)
    with TestClient(create_app(runtime, demo=True), base_url="http://mfgos.example.com") as client:
        yield client
    runtime.engine.dispose()


def test_an_unknown_host_is_refused_and_health_checks_answer_any(host_checked: TestClient) -> None:
    assert host_checked.get("/api/plant").status_code == 200
    assert host_checked.get("/api/plant", headers={"Host": "10.0.0.5:8000"}).status_code == 200
    refused = host_checked.get("/api/plant", headers={"Host": "evil.example"})
    assert refused.status_code == 400 and has_headers(refused)
    assert host_checked.get("/healthz", headers={"Host": "10.1.2.3:8000"}).status_code == 200  # probes use the pod IP


def test_a_route_that_fails_answers_json_500_without_a_trace_and_logs_it(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from sqlalchemy import text

    settings = Settings(_env_file=None, database_url=f"sqlite:///{tmp_path / 'f.db'}", plant_file=PLANT)  # type: ignore[call-arg]
    runtime = Runtime(settings)
    with runtime.engine.begin() as connection:  # a store broken under the running app
        connection.execute(text("DROP TABLE machines"))
    with TestClient(create_app(runtime, demo=True), raise_server_exceptions=False) as client, caplog.at_level(logging.ERROR):
        answer = client.get("/api/plant")
    runtime.engine.dispose()
    assert answer.status_code == 500 and answer.json() == {"detail": "internal error; it has been logged"}
    assert "Traceback" not in answer.text and "machines" not in answer.text and has_headers(answer)
    assert any("GET /api/plant failed" in r.getMessage() and r.exc_info for r in caplog.records)


def test_serve_answers_its_own_host_and_loopback_names_by_default() -> None:
    from mfgos.guard import allowed_hosts

    assert allowed_hosts([], "10.0.0.7") == ["localhost", "127.0.0.1", "[::1]", "10.0.0.7"]
    assert allowed_hosts([], "0.0.0.0", ["plant-box"]) == ["localhost", "127.0.0.1", "[::1]", "plant-box"]
    assert allowed_hosts(["MFGOS.example.com "], "0.0.0.0") == ["mfgos.example.com"]


# --- Slack signatures and signed payloads of the wrong shape ------------------------------------


@pytest.mark.parametrize("timestamp", ["abc", "", "1e9", "-5", "9" * 40, "١٧٠٠٠٠٠٠٠٠"])
def test_a_slack_timestamp_that_is_not_an_integer_is_a_401(http: httpx.Client, timestamp: str) -> None:
    raw = b'{"type": "event_callback", "event": {"type": "message"}}'
    headers = {**signed("/slack/events", raw), "X-Slack-Request-Timestamp": timestamp, "Content-Type": "application/json"}
    answer = http.post("/slack/events", content=raw, headers={k: v.encode() for k, v in headers.items()})
    assert answer.status_code == 401 and has_headers(answer)


@pytest.mark.parametrize("raw", [b"not json at all {", b"\xff\xfe\x00garbage", b'{"type": "event_callback", '])
def test_a_slack_body_that_is_not_json_is_401_unsigned_and_200_signed(
        guarded: GuardedApp, http: httpx.Client, raw: bytes, caplog: pytest.LogCaptureFixture) -> None:
    before = len(guarded.signals())
    assert http.post("/slack/events", content=raw, headers={"Content-Type": "application/json"}).status_code == 401
    with caplog.at_level(logging.WARNING):
        answer = http.post("/slack/events", content=raw,
                           headers={"Content-Type": "application/json", **signed("/slack/events", raw)})
    assert answer.status_code == 200
    assert any("slack" in r.getMessage() and "ignored" in r.getMessage() for r in caplog.records)
    assert len(guarded.signals()) == before


MALFORMED = {
    "/slack/events": [{"type": "event_callback", "event": "x"}, {"type": "event_callback", "event": None},
                      {"type": None, "user": False, "container": None, "actions": None, "trigger_id": "t1"}],
    "/telegram/webhook": [{"update_id": 1, "message": [1]}, {"update_id": 2, "message": {"chat": "x", "from": 5}},
                          {"update_id": "3"}, {"message": {"text": "no update id"}}, ["x"], 10**400],
    "/whatsapp/webhook": [{"entry": "x"}, {"entry": [{"changes": "x"}]}, {"entry": [{"changes": [{"field": "messages",
                          "value": {"messages": [{"from": ["x"], "id": {"a": 1}, "type": ["text"]}]}}]}]},
                          {"entry": [{"changes": [{"field": "messages", "value": {"statuses": [{"id": 1, "status":
                           "failed", "errors": "x"}], "messages": "y", "metadata": [1]}}]}]}, [None], 10**400],
}


@pytest.mark.parametrize(("path", "body"), [(p, b) for p, bodies in MALFORMED.items() for b in bodies])
def test_a_signed_payload_of_the_wrong_shape_gets_200_stores_nothing_and_is_logged(
        guarded: GuardedApp, http: httpx.Client, path: str, body: Any, caplog: pytest.LogCaptureFixture) -> None:
    raw = json.dumps(body).encode() if not isinstance(body, int) else str(body).encode()
    before = len(guarded.signals())
    with caplog.at_level(logging.WARNING):
        answer = http.post(path, content=raw, headers={"Content-Type": "application/json", **signed(path, raw)})
        time.sleep(0.2)  # Slack's listeners run after the ack
    assert answer.status_code == 200, answer.text
    assert len(guarded.signals()) == before
    assert any(r.levelno >= logging.WARNING for r in caplog.records), "a log line says what was ignored"


def test_a_signed_telegram_update_with_a_huge_number_is_ignored(guarded: GuardedApp, http: httpx.Client) -> None:
    raw = ('{"update_id": 5, "message": {"message_id": ' + "9" * 5000 + "}}").encode()
    answer = http.post("/telegram/webhook", content=raw, headers=signed("/telegram/webhook", raw))
    assert answer.status_code == 200


# --- attachments ---------------------------------------------------------------------------------


def bridge_attachment(guarded: GuardedApp, http: httpx.Client, kind: str, declared: str, data: bytes) -> Any:
    """Send one attachment by value over the bridge; returns its stored row."""
    before = {a.id for a in guarded.attachments()}
    body = {"event_id": uuid.uuid4().hex, "from": BEA, "text": "so sieht es aus",
            "attachments": [{"kind": kind, "content_type": declared, "data": base64.b64encode(data).decode()}]}
    raw = json.dumps(body).encode()
    answer = http.post("/bridge/inbound", content=raw, headers={"Content-Type": "application/json",
                                                                 **signed("/bridge/inbound", raw)})
    assert answer.status_code == 200, answer.text
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        new = [a for a in guarded.attachments() if a.id not in before]
        if new:
            return new[0]
        time.sleep(0.05)
    pytest.fail("the attachment was not stored")


@pytest.mark.parametrize(("kind", "declared", "data"), [
    ("file", "text/html", b"<html><script>fetch('/api/plant')</script></html>"),
    ("photo", "image/svg+xml", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'),
    ("photo", "image/png", b"<!doctype html><script>alert(1)</script>"),  # a lie about the type
])
def test_html_and_svg_are_served_as_downloads(guarded: GuardedApp, http: httpx.Client, kind: str, declared: str,
                                              data: bytes) -> None:
    row = bridge_attachment(guarded, http, kind, declared, data)
    assert row.content_type == "application/octet-stream"
    answer = http.get(f"/attachments/{row.public_id}")
    assert answer.status_code == 200 and answer.content == data
    assert answer.headers["content-type"] == "application/octet-stream"
    assert answer.headers["content-disposition"].startswith("attachment")
    assert answer.headers["x-content-type-options"] == "nosniff" and has_headers(answer)


@pytest.mark.parametrize(("data", "served"), [(PNG, "image/png"), (b"\xff\xd8\xff\xe0" + b"\x00" * 20, "image/jpeg"),
                                              (b"%PDF-1.7\n", "application/pdf"), (b"OggS\x00\x02" + b"\x00" * 20, "audio/ogg"),
                                              (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
                                              (b"\x00\x00\x00\x1cftypM4A " + b"\x00" * 8, "audio/mp4")])
def test_images_pdf_and_audio_are_shown_inline_with_the_sniffed_type(guarded: GuardedApp, http: httpx.Client,
                                                                     data: bytes, served: str) -> None:
    row = bridge_attachment(guarded, http, "photo", "text/html", data)  # what the sender claims does not count
    answer = http.get(f"/attachments/{row.public_id}")
    assert answer.status_code == 200 and answer.headers["content-type"] == served
    assert answer.headers["content-disposition"].startswith("inline") and answer.headers["x-content-type-options"] == "nosniff"


def test_attachments_have_random_ids_and_never_answer_to_their_integer_key(guarded: GuardedApp,
                                                                           http: httpx.Client) -> None:
    first = bridge_attachment(guarded, http, "photo", "image/png", PNG + b"1")
    second = bridge_attachment(guarded, http, "photo", "image/png", PNG + b"2")
    assert len(first.public_id) >= 16 and first.public_id != second.public_id
    assert http.get(f"/attachments/{first.id}").status_code == 404
    assert http.get(f"/attachments/{second.id}").status_code == 404
    assert http.get(f"/attachments/{first.public_id[:-1]}x").status_code == 404


# --- media named by URL (SSRF) ---------------------------------------------------------------------


def stored_attachment_of_url(guarded: GuardedApp, http: httpx.Client, url: str) -> dict[str, Any]:
    """Send a bridge message with an attachment by URL; returns what its signal recorded about the file."""
    event_id = uuid.uuid4().hex
    body = {"event_id": event_id, "from": BEA, "text": "foto", "attachments": [{"kind": "photo", "url": url}]}
    raw = json.dumps(body).encode()
    answer = http.post("/bridge/inbound", content=raw, headers={"Content-Type": "application/json",
                                                                 **signed("/bridge/inbound", raw)})
    assert answer.status_code == 200, answer.text
    [signal] = [s for s in guarded.signals() if s.source_key == f"bridge:{event_id}"]
    [attachment] = signal.payload["attachments"]
    return attachment


@pytest.fixture
def listener() -> Iterator[tuple[int, list[Any]]]:
    """A TCP port on loopback that records every connection made to it."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    connections: list[Any] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):
                connection, _ = server.accept()
                connections.append(connection)
                connection.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], connections
    stop.set()
    thread.join()
    server.close()


@pytest.mark.parametrize(("target", "reason"), [
    ("http://127.0.0.1:{port}/p.jpg", "only https"), ("https://127.0.0.1:{port}/p.jpg", "not public"),
    ("https://[::ffff:127.0.0.1]:{port}/p.jpg", "not public"), ("https://2130706433:{port}/p.jpg", "not public"),
    ("https://10.1.2.3/p.jpg", "not public"), ("https://169.254.169.254/latest/meta-data/", "not public"),
    ("https://[::1]/p.jpg", "not public"), ("https://0.0.0.0/p.jpg", "not public"),
    ("https://192.168.1.10/p.jpg", "not public"), ("https://100.64.0.1/x", "not public")])
def test_a_bridge_url_to_a_private_address_or_over_http_is_refused_before_connecting(
        guarded: GuardedApp, http: httpx.Client, listener: tuple[int, list[Any]], target: str, reason: str) -> None:
    port, connections = listener
    attachment = stored_attachment_of_url(guarded, http, target.format(port=port))
    assert attachment["stored"] is False and reason in attachment["error"]
    assert connections == [], "no connection was even attempted"


def test_the_attack_url_on_our_own_api_is_not_fetched_or_served(guarded: GuardedApp, http: httpx.Client) -> None:
    before = len(guarded.attachments())
    attachment = stored_attachment_of_url(guarded, http, f"{guarded.url}/api/plant")
    assert attachment["stored"] is False and "https" in attachment["error"]
    assert len(guarded.attachments()) == before


def test_a_name_that_resolves_to_loopback_is_not_fetched(guarded: GuardedApp, http: httpx.Client,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import bot.fetch

    async def loopback(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    monkeypatch.setattr(bot.fetch, "resolve", loopback)
    attachment = stored_attachment_of_url(guarded, http, "https://localtest.me/p.jpg")
    assert attachment["stored"] is False and "not public" in attachment["error"]


def test_slack_files_come_only_from_slacks_file_host(guarded: GuardedApp) -> None:
    import asyncio

    from bot.channels.base import InboundAttachment
    from bot.fetch import FetchRefused

    slack = guarded.hub.channels["slack"]
    for url in (f"{guarded.bridge.url}/files/x.jpg", "https://evil.example/x.jpg", "https://files.slack.com.evil.example/x"):
        with pytest.raises(FetchRefused):
            asyncio.run(slack.fetch(InboundAttachment("photo", url=url)))


class _Redirects(BaseHTTPRequestHandler):
    """A trusted origin that redirects to wherever the path says (`/to/<url>`) and serves bytes (`/bytes/<n>`)."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path.startswith("/to/"):
            self.send_response(302)
            self.send_header("Location", self.path[4:])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        size = int(self.path.rsplit("/", 1)[1])
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        if "chunked" not in self.path:
            self.send_header("Content-Length", str(size))
        self.end_headers()
        self.wfile.write(PNG[:size].ljust(size, b"\x00"))

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def origin() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Redirects)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.anyio
@pytest.mark.parametrize("location", ["http://127.0.0.1:{port}/bytes/10", "https://127.0.0.1:{port}/bytes/10",
                                      "https://169.254.169.254/latest/", "https://localtest.me/x"])
async def test_a_redirect_to_a_private_address_is_not_followed(origin: str, location: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import bot.fetch
    from bot.fetch import FetchRefused, MediaPolicy, fetch_media

    async def loopback(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    monkeypatch.setattr(bot.fetch, "resolve", loopback)
    other_port = int(origin.rsplit(":", 1)[1]) + 1  # not the trusted origin: another port on loopback
    policy = MediaPolicy.for_channel(None, origin)
    assert (await fetch_media(f"{origin}/bytes/10", policy))[0] == PNG[:10]  # the trusted origin itself is fine
    with pytest.raises(FetchRefused):
        await fetch_media(f"{origin}/to/{location.format(port=other_port)}", policy)


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/bytes/5000", "/bytes/chunked/5000"])
async def test_a_file_over_the_size_cap_is_not_stored(origin: str, path: str) -> None:
    from bot.fetch import FetchRefused, MediaLimits, MediaPolicy, fetch_media

    policy = MediaPolicy.for_channel(None, origin, MediaLimits(max_bytes=4096, timeout=5))
    assert len((await fetch_media(f"{origin}/bytes/4096", policy))[0]) == 4096
    with pytest.raises(FetchRefused, match="4096"):
        await fetch_media(f"{origin}{path}", policy)


def test_a_bridge_file_over_the_configured_cap_is_not_stored(guarded: GuardedApp, http: httpx.Client) -> None:
    guarded.bridge.files["big.png"] = (PNG.ljust(5000, b"\x00"), "image/png")  # MFGOS_MEDIA_MAX_BYTES is 4096 here
    attachment = stored_attachment_of_url(guarded, http, f"{guarded.bridge.url}/files/big.png")
    assert attachment["stored"] is False and "4096" in attachment["error"]
    guarded.bridge.files["small.png"] = (PNG, "image/png")
    assert stored_attachment_of_url(guarded, http, f"{guarded.bridge.url}/files/small.png")["stored"] is True


# --- migration 0006 --------------------------------------------------------------------------------


def test_migration_0006_gives_stored_attachments_random_ids(database_url: str) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from models.db import MIGRATIONS, make_engine, migrate

    engine = make_engine(database_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0005")
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO plants (id, name, timezone, erp) VALUES ('p', 'P', 'UTC', '{}')"))
        connection.execute(text("INSERT INTO signals (id, plant_id, source, source_key, kind, received_at, payload) "
                                "VALUES (1, 'p', 'bridge', 'bridge:1', 'chat', CURRENT_TIMESTAMP, '{}')"))
        for n in (1, 2):
            connection.execute(text("INSERT INTO attachments (id, signal_id, kind, path, created_at) "
                                    f"VALUES ({n}, 1, 'photo', '/x/{n}.jpg', CURRENT_TIMESTAMP)"))
    migrate(engine)
    with engine.connect() as connection:
        ids = [row[0] for row in connection.execute(text("SELECT public_id FROM attachments ORDER BY id"))]
    engine.dispose()
    assert len(ids) == 2 and len(set(ids)) == 2 and all(len(i) >= 16 for i in ids)
