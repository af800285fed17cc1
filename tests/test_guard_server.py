"""Black box: a real `mfgos serve` process under the attacks of issue 10 (forged, oversized and
malformed webhooks, NUL paths, unknown hosts), answering each without a 5xx, with the security
headers, and without holding oversized bodies in memory."""

from __future__ import annotations

import hashlib
import hmac
import json
import signal
import socket
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.test_server import Demo, start_demo  # noqa: F401 - the fixture that starts `mfgos serve`

pytestmark = pytest.mark.timeout(180)

HEADERS = {
    "content-security-policy": "default-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'; "
                               "base-uri 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}
MIB = 1024 * 1024
SECRETS = {"MFGOS_SLACK_BOT_TOKEN": "xoxb-test", "MFGOS_SLACK_SIGNING_SECRET": "slack-secret",
           "MFGOS_SLACK_API_URL": "http://127.0.0.1:9/api/",
           "MFGOS_WHATSAPP_TOKEN": "wa-token", "MFGOS_WHATSAPP_PHONE_NUMBER_ID": "1055",
           "MFGOS_WHATSAPP_APP_SECRET": "wa-secret", "MFGOS_WHATSAPP_API_URL": "http://127.0.0.1:9",
           "MFGOS_BRIDGE_SECRET": "bridge-secret", "MFGOS_BRIDGE_CALLBACK_URL": "http://127.0.0.1:9/never-called",
           "MFGOS_SIGNALS_WEBHOOK_SECRET": "mes-secret"}


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def post_50_mib(url: str, path: str) -> int:
    """POST a declared 50 MiB body as fast as the server takes it; the status it answers."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=20) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {50 * MIB}\r\n\r\n".encode())
        chunk = b"[" * (256 * 1024)
        try:
            for _ in range(200):
                sock.sendall(chunk)
        except OSError:  # refused and closed: the rest is never read
            pass
        answer = b""
        while b"\r\n" not in answer:
            more = sock.recv(4096)
            if not more:
                break
            answer += more
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0


def slack_headers(raw: bytes, timestamp: str | None = None) -> dict[str, str]:
    ts = timestamp or str(int(time.time()))
    digest = hmac.new(b"slack-secret", f"v0:{ts}:".encode() + raw, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}", "Content-Type": "application/json"}


def test_serve_withstands_forged_oversized_and_malformed_requests(start_demo: Callable[..., Demo],  # noqa: F811
                                                                  tmp_path: Path) -> None:
    serve = start_demo("--host", "127.0.0.1", "--port", "0", command="serve", **SECRETS)
    url = serve.wait_for("mfgos console:").split("mfgos console:", 1)[1].strip()
    answers: list[httpx.Response] = []
    with httpx.Client(base_url=url, timeout=30) as http:

        def send(method: str, path: str, **kw: object) -> httpx.Response:
            answer = http.request(method, path, **kw)  # type: ignore[arg-type]
            answers.append(answer)
            return answer

        # Forged: nothing gets past the signature checks.
        assert send("POST", "/slack/events", content=b"not json").status_code == 401
        assert send("POST", "/slack/events", content=b"{}", headers=slack_headers(b"{}", "abc")).status_code == 401
        assert send("POST", "/whatsapp/webhook", json={"entry": []},
                    headers={"X-Hub-Signature-256": "sha256=00"}).status_code == 401
        assert send("POST", "/bridge/inbound", json={"from": "x"}).status_code == 401
        assert send("POST", "/signals/mes", json={"event_id": "1"}).status_code == 401

        # Malformed but correctly signed: 200 (nothing to redeliver) or the protocol's 400.
        assert send("POST", "/slack/events", content=b"\xff not json",
                    headers=slack_headers(b"\xff not json")).status_code == 200
        raw = json.dumps({"entry": "x"}).encode()
        signature = "sha256=" + hmac.new(b"wa-secret", raw, hashlib.sha256).hexdigest()
        assert send("POST", "/whatsapp/webhook", content=raw, headers={"X-Hub-Signature-256": signature}).status_code == 200
        deep = ("[" * 50_000 + "]" * 50_000).encode()
        assert send("POST", "/slack/events", content=deep, headers=slack_headers(deep)).status_code == 400

        # Paths with NUL and control characters, and a host we do not answer to.
        for path in ("/api/exceptions/E-0001%00", "/api/exceptions?status=%00", "/attachments/%0d%0a"):
            assert send("GET", path).status_code == 400
        assert send("GET", "/api/plant", headers={"Host": "evil.example"}).status_code == 400
        assert send("GET", "/attachments/1").status_code == 401, "attachments only to people signed in"
        assert send("GET", "/healthz").status_code == 200

        # Six declared 50 MiB bodies: refused before they are read, so memory stays where it was.
        before = rss_kib(serve.process.pid)
        for path in ("/slack/events", "/whatsapp/webhook", "/bridge/inbound", "/signals/mes", "/api/messages",
                     "/slack/events"):
            assert post_50_mib(url, path) == 413
        grown = (rss_kib(serve.process.pid) - before) / 1024
        print(f"RSS before the six 50 MiB posts: {before / 1024:.0f} MiB, grown by {grown:.1f} MiB")
        assert grown < 20, f"the server grew by {grown:.0f} MiB"
        assert send("GET", "/healthz").json()["status"] == "ok"
        with sqlite3.connect(tmp_path / "mfgos.db") as store:  # serve's default store, in its working directory
            assert store.execute("SELECT count(*) FROM exceptions").fetchone() == (0,), "no attack opened anything"

    for answer in answers:
        assert answer.status_code < 500, (answer.request.url, answer.text)
        assert all(answer.headers.get(k) == v for k, v in HEADERS.items()), (answer.request.url, dict(answer.headers))
    serve.process.send_signal(signal.SIGINT)
    assert serve.process.wait(timeout=20) == 0
