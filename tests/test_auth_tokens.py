"""API tokens end to end: created, listed and revoked with the real `mfgos token` command, used as
`Authorization: Bearer` against the app on the same database, each scope held to its routes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlmodel import Session, select

from mfgos.auth import TOKEN_PREFIX
from mfgos.config import DEMO_PLANT, Settings
from mfgos.runtime import Runtime
from mfgos.web import CONSOLE, ConsoleChannel, create_app
from models import ApiToken, Signal
from routing.clock import SystemClock
from signals.registry import build_routers

REPORT = "hobber 1 band ho gaya, spindle se awaaz aa rahi hai. wo 1042"


def mfgos(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MFGOS_DATABASE_URL": database_url, "MFGOS_PLANT_FILE": str(DEMO_PLANT)}
    return subprocess.run([sys.executable, "-m", "mfgos.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def create(database_url: str, name: str, scope: str, person: str | None = None) -> str:
    done = mfgos(database_url, "token", "create", name, "--scope", scope, *(["--as", person] if person else []))
    assert done.returncode == 0, done.stderr
    secret = done.stdout.strip()
    assert secret.startswith(TOKEN_PREFIX) and len(secret) > 40 and "shown only now" in done.stderr
    return secret


@pytest.fixture
def runtime(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    settings = Settings(_env_file=None, database_url=database_url, plant_file=DEMO_PLANT, erp="ledger",  # type: ignore[call-arg]
                        signals_webhook_secret=SecretStr("mes-secret"), attachments_dir=tmp_path / "attachments")
    built = Runtime(settings, clock=SystemClock(), channels={CONSOLE: ConsoleChannel()})
    yield built
    built.engine.dispose()


@pytest.fixture
def app(runtime: Runtime):  # type: ignore[no-untyped-def]
    return create_app(runtime, extra_routers=build_routers(runtime, runtime.settings))


def bearer(app, secret: str) -> TestClient:  # type: ignore[no-untyped-def]
    return TestClient(app, headers={"Authorization": f"Bearer {secret}"})


def test_tokens_are_created_listed_and_revoked_by_the_cli(database_url: str, runtime: Runtime, app) -> None:  # type: ignore[no-untyped-def]
    reader = create(database_url, "quality-dashboard", "read")
    before = datetime.now().astimezone()
    assert bearer(app, reader).get("/api/exceptions").status_code == 200

    listed = mfgos(database_url, "token", "list")
    assert listed.returncode == 0 and "quality-dashboard" in listed.stdout and reader not in listed.stdout
    [row] = json.loads(mfgos(database_url, "token", "list", "--json").stdout)
    assert (row["name"], row["scope"], row["person"]) == ("quality-dashboard", "read", None)
    assert datetime.fromisoformat(row["last_used"]) >= before.replace(microsecond=0)
    with Session(runtime.engine) as session:
        [stored] = session.exec(select(ApiToken)).all()
    assert reader not in stored.token_hash, "only the digest is stored"

    assert mfgos(database_url, "token", "revoke", "quality-dashboard").returncode == 0
    assert bearer(app, reader).get("/api/exceptions").status_code == 401
    assert mfgos(database_url, "token", "revoke", "quality-dashboard").returncode == 1


def test_the_cli_refuses_bad_tokens(database_url: str) -> None:
    unbound = mfgos(database_url, "token", "create", "script", "--scope", "act")
    assert unbound.returncode == 2 and "--as PERSON" in unbound.stderr
    stranger = mfgos(database_url, "token", "create", "script", "--scope", "act", "--as", "nobody")
    assert stranger.returncode == 2 and "unknown person 'nobody'" in stranger.stderr
    create(database_url, "mes", "signals")
    twice = mfgos(database_url, "token", "create", "mes", "--scope", "signals")
    assert twice.returncode == 2 and "exists" in twice.stderr


def test_a_read_token_reads_and_does_nothing_else(database_url: str, app) -> None:  # type: ignore[no-untyped-def]
    client = bearer(app, create(database_url, "dashboard", "read"))
    for path in ("/api/plant", "/api/exceptions", "/api/erp", "/api/kpis"):
        assert client.get(path).status_code == 200, path
    assert client.post("/api/messages", json={"person_id": "ravi", "text": REPORT}).status_code == 403
    assert client.post("/api/actions", json={"person_id": "sara", "action": "approve",
                                             "exception": "E-0001"}).status_code == 403
    assert client.get("/api/people/ravi/messages").status_code == 403, "messages are a person's own"
    assert client.get("/attachments/1").status_code == 403
    assert client.get("/").status_code == 403


def test_an_act_token_acts_only_as_its_person(database_url: str, runtime: Runtime, app) -> None:  # type: ignore[no-untyped-def]
    client = bearer(app, create(database_url, "ravi-terminal", "act", "ravi"))
    sent = client.post("/api/messages", json={"text": REPORT})
    assert sent.status_code == 200, sent.text
    code = sent.json()["replies"][0]["exception"]
    assert client.get("/api/people/ravi/messages").status_code == 200
    assert client.post("/api/actions", json={"person_id": "sara", "action": "approve",
                                             "exception": code}).status_code == 403
    assert client.get("/api/people/sara/messages").status_code == 403
    assert client.get("/attachments/1").status_code == 403, "attachments: signed-in people only"
    with Session(runtime.engine) as session:
        assert {s.person_id for s in session.exec(select(Signal))} == {"ravi"}


def test_a_signals_token_sends_machine_events_and_nothing_else(database_url: str, runtime: Runtime,
                                                              app) -> None:  # type: ignore[no-untyped-def]
    secret = create(database_url, "mes-line-2", "signals")
    client = bearer(app, secret)
    event = {"event_id": "mes-1", "machine": "HOB-01", "state": "FAULT"}
    answer = client.post("/signals/mes", json=event)  # no HMAC signature: the token stands in for it
    assert answer.status_code == 200, answer.text
    assert client.get("/api/exceptions").status_code == 403
    # Without the token (or with another kind of token) the signature is still required.
    reader = bearer(app, create(database_url, "dashboard", "read"))
    assert reader.post("/signals/mes", json={**event, "event_id": "mes-2"}).status_code == 401
    assert TestClient(app).post("/signals/mes", json={**event, "event_id": "mes-3"}).status_code == 401
    with Session(runtime.engine) as session:
        assert [s.source_key for s in session.exec(select(Signal))] == ["mes:mes-1"]
