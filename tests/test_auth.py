"""Sign-in by chat link, sessions and the one gate on every route, through the real app and Runtime.

People sign in the way the product does it: `POST /auth/login`, the link read from the
notification outbox (the row the bot sends to their chat), `GET /auth/magic/{token}`.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from sqlmodel import Session, select
from starlette.routing import Mount

from bot.channels.registry import ChannelHub
from mfgos.auth import LINK_KIND, LINKS_PER_PERSON, REQUESTS_PER_CLIENT, SESSION_COOKIE, is_public
from mfgos.config import DEMO_PLANT, Settings
from mfgos.runtime import Runtime
from mfgos.web import CONSOLE, ConsoleChannel, create_app
from models import Notification, Signal, WebSession
from routing.clock import SimulatedClock
from signals.registry import build_routers

START = datetime.fromisoformat("2026-11-25T09:00:00+05:30")
REPORT = "hobber 1 band ho gaya, spindle se awaaz aa rahi hai. wo 1042"
LINK = re.compile(r"https?://[^\s]+/auth/magic/([A-Za-z0-9_-]+)")


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(START)


def make_runtime(database_url: str, clock: SimulatedClock, **extra: Any) -> Runtime:
    settings = Settings(_env_file=None, database_url=database_url, plant_file=DEMO_PLANT, erp="ledger",  # type: ignore[call-arg]
                        **extra)
    return Runtime(settings, clock=clock, channels={CONSOLE: ConsoleChannel()})


@pytest.fixture
def runtime(database_url: str, clock: SimulatedClock) -> Iterator[Runtime]:
    built = make_runtime(database_url, clock)
    yield built
    built.engine.dispose()


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime)) as test_client:
        yield test_client


def links(runtime: Runtime, person: str) -> list[Notification]:
    with Session(runtime.engine) as session:
        return list(session.exec(select(Notification).where(
            Notification.person_id == person, Notification.kind == LINK_KIND).order_by(Notification.id)))


def newest_link(runtime: Runtime, person: str) -> str:
    """The path of the newest sign-in link the bot sent the person (as they would tap it in their chat)."""
    found = LINK.search(links(runtime, person)[-1].text)
    assert found, links(runtime, person)[-1].text
    return f"/auth/magic/{found.group(1)}"


def sign_in(client: TestClient, runtime: Runtime, person: str) -> TestClient:
    assert client.post("/auth/login", json={"person_id": person}).status_code == 202
    answer = client.get(newest_link(runtime, person), follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/", answer.text
    return client


def signed_in_client(runtime: Runtime, person: str) -> TestClient:
    return sign_in(TestClient(create_app(runtime)), runtime, person)


def full_app(runtime: Runtime, tmp_path: Path) -> Any:
    """The app as `serve` builds it with a channel (bridge: its webhook and /attachments) and the MES webhook."""
    settings = runtime.settings.model_copy(update={
        "bridge_secret": SecretStr("bridge-secret"), "bridge_callback_url": "http://127.0.0.1:9/never",
        "signals_webhook_secret": SecretStr("mes-secret"), "attachments_dir": tmp_path / "attachments"})
    hub = ChannelHub(settings, runtime)
    return create_app(runtime, extra_routers=[*hub.routers(), *build_routers(runtime, settings)])


# --- default deny ------------------------------------------------------------------------------


def every_route(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(prefix, route) for every route, including those of included routers (FastAPI may keep them
    as one entry per included router)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            context = getattr(route, "include_context", None)
            yield from every_route(included.routes, prefix + (getattr(context, "prefix", "") or ""))
        else:
            yield prefix, route


def test_every_protected_route_refuses_anonymous(runtime: Runtime, tmp_path: Path) -> None:
    """Enumerates the app's routes, so a route added later is covered without touching this test."""
    app = full_app(runtime, tmp_path)
    checked = []
    with TestClient(app) as anonymous:
        for prefix, route in every_route(app.routes):
            if isinstance(route, Mount):
                paths, methods = [f"{route.path}/app.js", f"{route.path}/index.html"], {"GET"}
            elif isinstance(route, APIRoute) or hasattr(route, "methods"):
                paths, methods = [route.path], set(route.methods or ()) - {"HEAD"}
            else:
                continue
            for path in paths:
                concrete = re.sub(r"\{[^}]+\}", "1", prefix + path)
                if is_public(concrete):
                    continue
                for method in methods:
                    answer = anonymous.request(method, concrete)
                    checked.append(f"{method} {concrete}")
                    if (method, concrete) == ("GET", "/"):
                        assert answer.status_code == 200 and 'id="login"' in answer.text, "the sign-in page"
                        assert "app.js" not in answer.text
                        continue
                    assert answer.status_code == 401, f"{method} {concrete}: {answer.status_code} {answer.text}"
                    assert "sign in" in answer.json()["detail"]
        # Unknown paths are refused too (no probing for routes).
        assert anonymous.get("/api/no-such-route").status_code == 401
    assert {"POST /api/messages", "POST /api/actions", "GET /api/people/1/messages", "GET /attachments/1",
            "GET /api/exceptions", "GET /static/app.js"} <= set(checked)


def test_public_routes_stay_reachable_without_sign_in(runtime: Runtime, tmp_path: Path) -> None:
    with TestClient(full_app(runtime, tmp_path)) as anonymous:
        assert anonymous.get("/healthz").json()["status"] == "ok"
        for asset in ("/static/login.js", "/static/login.css"):
            assert anonymous.get(asset).status_code == 200
        # The webhooks answer with their own signature checks, not the sign-in's 401 text.
        bridge = anonymous.post("/bridge/inbound", content=b"{}")
        assert bridge.status_code == 401 and "signature" in bridge.json()["detail"]
        mes = anonymous.post("/signals/mes", content=b"{}")
        assert mes.status_code == 401 and "X-Mfgos-Signature" in mes.json()["detail"]


# --- sign-in by chat link ------------------------------------------------------------------------


def test_login_answers_the_same_for_known_and_unknown_people(client: TestClient, runtime: Runtime) -> None:
    known = client.post("/auth/login", json={"person_id": "tom"})
    unknown = client.post("/auth/login", json={"person_id": "nobody-here"})
    assert known.status_code == unknown.status_code == 202
    assert known.content == unknown.content
    assert known.headers.get("set-cookie") is None and unknown.headers.get("set-cookie") is None
    assert len(links(runtime, "tom")) == 1 and links(runtime, "nobody-here") == []


def test_the_link_goes_to_the_persons_chat_in_their_language(client: TestClient, runtime: Runtime) -> None:
    client.post("/auth/login", json={"person_id": "tom"})  # German, on Slack
    client.post("/auth/login", json={"person_id": "ravi"})  # Hindi, on WhatsApp
    [tom] = links(runtime, "tom")
    [ravi] = links(runtime, "ravi")
    assert (tom.channel, tom.address, tom.language) == ("slack", "U01TOM", "de")
    assert "Anmeldung" in tom.text and LINK.search(tom.text)
    assert (ravi.channel, ravi.address, ravi.language) == ("whatsapp", "+919800000001", "hi")
    assert "sign in karne ka link" in ravi.text
    # The link points at the console's public address (here the test client's) and is not shown by the API.
    assert tom.text.count("http://testserver/auth/magic/") == 1
    assert tom.status == "pending" and tom.exception_id is None  # the outbox delivers it like any message


def test_the_link_signs_in_once(client: TestClient, runtime: Runtime) -> None:
    client.post("/auth/login", json={"person_id": "sara"})
    link = newest_link(runtime, "sara")
    answer = client.get(link, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=lax", "path=/"} <= flags and "secure" not in flags
    page = client.get("/")
    assert page.status_code == 200 and "app.js" in page.text, "the console, not the sign-in page"
    assert client.get("/api/session").json()["person"]["id"] == "sara"

    again = TestClient(create_app(runtime)).get(link, follow_redirects=False)
    assert again.status_code == 410 and "text/html" in again.headers["content-type"]
    assert "no longer works" in again.text and "Traceback" not in again.text
    assert "set-cookie" not in again.headers
    # The spent token is no longer readable in the outbox row either.
    assert link.rsplit("/", 1)[1] not in links(runtime, "sara")[-1].text


def test_an_expired_or_made_up_link_gets_the_clear_page(client: TestClient, runtime: Runtime,
                                                         clock: SimulatedClock) -> None:
    client.post("/auth/login", json={"person_id": "sara"})
    link = newest_link(runtime, "sara")
    clock.set(clock.now() + timedelta(minutes=10, seconds=1))
    for path in (link, "/auth/magic/made-up", "/auth/magic/" + "x" * 5000):
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 410 and "no longer works" in answer.text, path
    assert client.get("/api/exceptions").status_code == 401


def test_link_preview_robots_do_not_spend_the_link(client: TestClient, runtime: Runtime) -> None:
    client.post("/auth/login", json={"person_id": "tom"})
    link = newest_link(runtime, "tom")
    preview = client.get(link, headers={"User-Agent": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"})
    assert preview.status_code == 200 and "set-cookie" not in preview.headers
    assert client.get(link, follow_redirects=False).status_code == 303


def test_the_cookie_is_secure_when_the_public_url_is_https(database_url: str, clock: SimulatedClock) -> None:
    runtime = make_runtime(database_url, clock, public_url="https://console.example.com/")
    try:
        with TestClient(create_app(runtime)) as client:
            client.post("/auth/login", json={"person_id": "sara"})
            text = links(runtime, "sara")[-1].text
            assert "https://console.example.com/auth/magic/" in text
            answer = client.get(newest_link(runtime, "sara"), follow_redirects=False)
            assert "secure" in {p.strip().lower() for p in answer.headers["set-cookie"].split(";")}
    finally:
        runtime.engine.dispose()


def test_logout_ends_the_session(client: TestClient, runtime: Runtime) -> None:
    sign_in(client, runtime, "sara")
    secret = client.cookies[SESSION_COOKIE]
    assert client.get("/api/exceptions").status_code == 200
    out = client.post("/auth/logout")
    assert out.status_code == 200 and f'{SESSION_COOKIE}=""' in out.headers["set-cookie"]
    assert client.get("/api/exceptions").status_code == 401
    # The old cookie, replayed, does not come back to life.
    replay = TestClient(create_app(runtime), cookies={SESSION_COOKIE: secret})
    assert replay.get("/api/exceptions").status_code == 401
    with Session(runtime.engine) as session:
        stored = session.exec(select(WebSession)).all()
    assert [s.ended_at is not None for s in stored] == [True]
    assert all(secret not in (s.session_hash) for s in stored), "only the digest is stored"


def test_a_session_ends_after_session_hours(client: TestClient, runtime: Runtime, clock: SimulatedClock) -> None:
    sign_in(client, runtime, "sara")
    clock.set(clock.now() + timedelta(hours=11, minutes=59))
    assert client.get("/api/exceptions").status_code == 200
    clock.set(clock.now() + timedelta(minutes=1, seconds=1))
    assert client.get("/api/exceptions").status_code == 401
    assert client.get("/").text.count('id="login"') == 1


def test_session_hours_is_a_setting(database_url: str, clock: SimulatedClock) -> None:
    runtime = make_runtime(database_url, clock, session_hours=1)
    try:
        with signed_in_client(runtime, "sara") as client:
            clock.set(clock.now() + timedelta(minutes=61))
            assert client.get("/api/exceptions").status_code == 401
    finally:
        runtime.engine.dispose()


# --- a person acts and reads only as themselves --------------------------------------------------


def test_a_signed_in_person_acts_only_as_themselves(runtime: Runtime) -> None:
    ravi = signed_in_client(runtime, "ravi")
    sent = ravi.post("/api/messages", json={"text": REPORT})  # person_id left out: the signed-in person
    assert sent.status_code == 200, sent.text
    code = sent.json()["replies"][0]["exception"]
    assert ravi.post("/api/messages", json={"person_id": "ravi", "text": "still down", "exception": code}
                     ).status_code == 200
    with Session(runtime.engine) as session:
        assert {s.person_id for s in session.exec(select(Signal))} == {"ravi"}

    # Ravi cannot approve as Sara, nor write as Tom.
    forged = ravi.post("/api/actions", json={"person_id": "sara", "action": "approve", "exception": code})
    assert forged.status_code == 403 and "yourself" in forged.json()["detail"]
    assert ravi.post("/api/messages", json={"person_id": "tom", "text": "on my way", "exception": code}
                     ).status_code == 403
    with Session(runtime.engine) as session:
        assert session.exec(select(Signal).where(Signal.person_id != "ravi")).all() == []

    tom = signed_in_client(runtime, "tom")
    ack = tom.post("/api/actions", json={"action": "ack", "exception": code})
    assert ack.status_code == 200, ack.text
    assert tom.get(f"/api/exceptions/{code}").json()["status"] == "acknowledged"


def test_a_signed_in_person_reads_only_their_own_messages(runtime: Runtime) -> None:
    ravi = signed_in_client(runtime, "ravi")
    ravi.post("/api/messages", json={"text": REPORT})
    own = ravi.get("/api/people/ravi/messages")
    assert own.status_code == 200 and own.json()["messages"]
    assert all(m["kind"] != LINK_KIND for m in own.json()["messages"]), "sign-in links are never shown"
    other = ravi.get("/api/people/tom/messages")
    assert other.status_code == 403
    assert ravi.get("/api/people/nobody/messages").status_code == 403


# --- rate limits -------------------------------------------------------------------------------


def test_login_is_limited_per_person_without_telling(client: TestClient, runtime: Runtime,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    answers = [client.post("/auth/login", json={"person_id": "tom"}) for _ in range(LINKS_PER_PERSON + 2)]
    assert {a.status_code for a in answers} == {202} and len({a.content for a in answers}) == 1
    assert len(links(runtime, "tom")) == LINKS_PER_PERSON
    assert any("not sent" in r.getMessage() and "'tom'" in r.getMessage() for r in caplog.records
               if r.levelno == logging.WARNING)


def test_login_is_limited_per_client_address(client: TestClient, runtime: Runtime, clock: SimulatedClock,
                                             caplog: pytest.LogCaptureFixture) -> None:
    for n in range(REQUESTS_PER_CLIENT):
        assert client.post("/auth/login", json={"person_id": f"guess-{n}"}).status_code == 202
    over = client.post("/auth/login", json={"person_id": "sara"})
    assert over.status_code == 202 and over.content == client.post("/auth/login", json={"person_id": "x"}).content
    assert links(runtime, "sara") == []
    assert any("requests from testclient" in r.getMessage() for r in caplog.records)
    # Another address is not held up, and the window passes.
    other = TestClient(create_app(runtime), client=("203.0.113.9", 5000))
    other.post("/auth/login", json={"person_id": "sara"})
    assert len(links(runtime, "sara")) == 1
    clock.set(clock.now() + timedelta(minutes=10, seconds=1))
    client.post("/auth/login", json={"person_id": "tom"})
    assert len(links(runtime, "tom")) == 1


# --- hostile input ------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(person=st.one_of(st.text(max_size=300), st.integers(), st.none(), st.lists(st.text(max_size=5))),
       token=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=300))
def test_hostile_sign_in_input_never_errors(client: TestClient, person: Any, token: str) -> None:
    login = client.post("/auth/login", json={"person_id": person})
    assert login.status_code in (202, 400, 422), login.text  # 400: a NUL, which no person id holds
    magic = client.get("/auth/magic/" + quote(token, safe=""), follow_redirects=False)
    # 400: control characters; 401: an empty path segment; 307: a token ending in "/" is sent to the slashless path
    assert magic.status_code in (307, 400, 401, 404, 410), magic.text
    garbage = client.get("/api/exceptions", headers={"Authorization": b"Bearer " + token.encode(),
                                                     "Cookie": f"{SESSION_COOKIE}={'x' * len(token)}"})
    assert garbage.status_code == 401


# --- the demo -----------------------------------------------------------------------------------


def test_the_demo_needs_no_sign_in_and_says_it_is_the_demo(runtime: Runtime) -> None:
    with TestClient(create_app(runtime, demo=True)) as demo:
        assert demo.get("/api/session").json()["demo"] is True
        assert demo.post("/api/messages", json={"person_id": "ravi", "text": REPORT}).status_code == 200
        assert demo.get("/api/people/tom/messages").status_code == 200
        assert "session.js" in demo.get("/").text
        assert demo.post("/api/messages", json={"text": "who am I?"}).status_code == 422
    with signed_in_client(runtime, "sara") as serve:
        assert serve.get("/api/session").json() == {
            "demo": False, "kind": "session", "token": None, "scope": None,
            "person": {"id": "sara", "name": "Sara Khan", "roles": ["supervisor"], "language": "en"}}


def test_a_cross_site_form_post_cannot_act(runtime: Runtime) -> None:
    """Besides SameSite=Lax: the API takes JSON bodies only, which a plain HTML form cannot send."""
    ravi = signed_in_client(runtime, "ravi")
    for content_type, body in (("text/plain", b'{"text": "grinder 2 stopped"}'),
                               ("application/x-www-form-urlencoded", b"text=grinder+2+stopped")):
        answer = ravi.post("/api/messages", content=body, headers={"Content-Type": content_type})
        assert answer.status_code == 422, (content_type, answer.text)
    with Session(runtime.engine) as session:
        assert session.exec(select(Signal)).all() == []


def test_someone_taken_out_of_the_plant_file_is_signed_out(runtime: Runtime, tmp_path: Path) -> None:
    sara = signed_in_client(runtime, "sara")
    assert sara.get("/api/exceptions").status_code == 200
    data = yaml.safe_load(DEMO_PLANT.read_text())
    data["people"] = [p for p in data["people"] if p["id"] != "sara"]
    (tmp_path / "plant.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    runtime.load_plant(tmp_path / "plant.yaml")
    assert sara.get("/api/exceptions").status_code == 401


def raw_status(app: Any, method: str, path: str) -> int:
    """Call the ASGI app with `path` exactly as a server could pass it on (no client normalises it)."""
    sent: list[dict[str, Any]] = []
    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        while not sent or sent[-1].get("more_body", False) or sent[-1]["type"] != "http.response.body":
            await asyncio.sleep(0.001)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(), "query_string": b"",
             "headers": [], "client": ("198.51.100.7", 4000), "server": ("testserver", 80), "scheme": "http",
             "http_version": "1.1", "root_path": ""}
    asyncio.run(asyncio.wait_for(app(scope, receive, send), 10))
    return sent[0]["status"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.from_regex(r"/(auth/\.\./|auth/\.\.%2[fF]|static/\.\./|static/login\.js/\.\./|/)?[A-Za-z0-9_./%-]{0,50}",
                          fullmatch=True),
       method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]))
def test_no_path_gets_past_the_gate_anonymously(client: TestClient, path: str, method: str) -> None:
    """Whatever the path (dot segments, encodings, doubled slashes), anonymous callers reach only
    the public routes."""
    status = raw_status(client.app, method, path)
    if is_public(path) or (method == "GET" and path == "/"):
        assert status != 500
    else:  # 400: the guard refused a control character (`%00`) before the gate saw the request
        assert status in (400, 401), (method, path, status)
    assert raw_status(client.app, "GET", "/auth/../api/plant") == 401
