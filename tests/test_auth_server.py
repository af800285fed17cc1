"""Sign-in through real `mfgos serve` / `mfgos demo` processes, as a browser and a stranger see them."""

from __future__ import annotations

import re
import signal
import uuid
from collections.abc import Callable

import httpx
from sqlmodel import Session, select

from mfgos.auth import LINK_KIND, SESSION_COOKIE
from models import Notification, make_engine
from tests import test_server
from tests.test_server import STARTUP_TIMEOUT, Demo, poll_until

start_demo = test_server.start_demo  # the fixture that runs `mfgos demo|serve` processes

REPORT = "hobber 1 band ho gaya, spindle se awaaz aa rahi hai. wo 1042"


def link_in_store(database_url: str, person: str) -> str | None:
    """The newest sign-in link the bot queued for the person's chat, read from the outbox."""
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            row = session.exec(select(Notification).where(Notification.person_id == person,
                                                          Notification.kind == LINK_KIND)
                               .order_by(Notification.id.desc())).first()  # type: ignore[union-attr]
    finally:
        engine.dispose()
    found = re.search(r"https?://\S+/auth/magic/[A-Za-z0-9_-]+", row.text) if row else None
    return found.group(0) if found else None


def test_serve_signs_people_in_by_chat_link(database_url: str, start_demo: Callable[..., Demo]) -> None:
    # One chat channel configured (the bridge): `serve` with none at all does not start today.
    serve = start_demo("--host", "127.0.0.1", "--port", "0", command="serve", MFGOS_DATABASE_URL=database_url,
                       MFGOS_BRIDGE_SECRET="s3cret", MFGOS_BRIDGE_CALLBACK_URL="http://127.0.0.1:9/never-called")
    url = serve.wait_for("mfgos console:").split("mfgos console:", 1)[1].strip()
    with httpx.Client(base_url=url, timeout=10) as stranger:
        assert stranger.get("/healthz").json()["status"] == "ok"
        assert stranger.get("/api/exceptions").status_code == 401
        forged = stranger.post("/api/actions", json={"person_id": "sara", "action": "approve", "exception": "E-0001"})
        assert forged.status_code == 401 and "detail" in forged.json()
        assert stranger.get("/api/people/sara/messages").status_code == 401
        page = stranger.get("/")
        assert page.status_code == 200 and 'id="login"' in page.text and "/static/login.js" in page.text

    with httpx.Client(base_url=url, timeout=10) as ravi:
        assert ravi.post("/auth/login", json={"person_id": "ravi"}).status_code == 202
        link = poll_until(lambda: link_in_store(database_url, "ravi"), bool)
        assert link.startswith(url.rstrip("/") + "/auth/magic/"), "links point where serve listens"
        signed = ravi.get(link)
        assert signed.status_code == 303 and signed.headers["location"] == "/" and SESSION_COOKIE in ravi.cookies
        assert "/static/app.js" in ravi.get("/").text, "the console instead of the sign-in page"
        assert ravi.get("/api/session").json()["person"]["id"] == "ravi"

        sent = ravi.post("/api/messages", json={"text": REPORT, "event_id": str(uuid.uuid4())})
        assert sent.status_code == 200, sent.text
        code = sent.json()["replies"][0]["exception"]
        as_sara = ravi.post("/api/actions", json={"person_id": "sara", "action": "approve", "exception": code})
        assert as_sara.status_code == 403
        assert ravi.get("/api/people/sara/messages").status_code == 403
        assert ravi.get(link).status_code == 410, "the link worked once"

        assert ravi.post("/auth/logout").status_code == 200
        assert ravi.get("/api/exceptions").status_code == 401
    serve.process.send_signal(signal.SIGINT)
    assert serve.process.wait(timeout=20) == 0


def test_the_demo_refuses_to_listen_beyond_this_machine(start_demo: Callable[..., Demo]) -> None:
    demo = start_demo("--host", "0.0.0.0", "--port", "0")
    assert demo.process.wait(timeout=STARTUP_TIMEOUT) == 2
    assert demo.process.stderr is not None
    said = demo.process.stderr.read()
    assert "refusing --host 0.0.0.0" in said and "mfgos serve" in said


def test_the_demo_says_it_is_the_demo(start_demo: Callable[..., Demo]) -> None:
    demo = start_demo("--host", "localhost", "--port", "0")
    url = demo.wait_for("mfgos console:").split("mfgos console:", 1)[1].strip()
    assert "no sign-in" in demo.wait_for("demo:")
    with httpx.Client(base_url=url, timeout=10) as anyone:
        assert anyone.get("/api/session").json()["demo"] is True
        assert "/static/session.js" in anyone.get("/").text
        assert anyone.get("/api/people/sara/messages").status_code == 200
    demo.process.send_signal(signal.SIGINT)
    assert demo.process.wait(timeout=20) == 0
