"""Single sign-on end to end: the app (Authlib inside) against a fake OpenID Connect provider over
real HTTP, the browser's redirects followed by hand."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlmodel import Session, select

from mfgos.auth import SESSION_COOKIE, sign_in_routers
from mfgos.config import DEMO_PLANT, Settings
from mfgos.runtime import Runtime
from mfgos.web import CONSOLE, ConsoleChannel, create_app
from models import WebSession
from models.plant_file import check
from tests.fakes.oidc import CLIENT_ID, CLIENT_SECRET, FakeOidc, other_key


@pytest.fixture
def provider() -> Iterator[FakeOidc]:
    server = FakeOidc().start()
    yield server
    server.stop()


def plant_with_emails(tmp_path: Path, emails: dict[str, str]) -> Path:
    data = yaml.safe_load(DEMO_PLANT.read_text())
    for person in data["people"]:
        if person["id"] in emails:
            person["email"] = emails[person["id"]]
    path = tmp_path / "plant.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def make_runtime(database_url: str, tmp_path: Path, provider: FakeOidc | None, **extra: Any) -> Runtime:
    oidc = {"oidc_issuer": provider.url, "oidc_client_id": CLIENT_ID,
            "oidc_client_secret": SecretStr(CLIENT_SECRET)} if provider else {}
    settings = Settings(_env_file=None, database_url=database_url,  # type: ignore[call-arg]
                        plant_file=plant_with_emails(tmp_path, {"sara": "Sara.Khan@example.com"}), erp="ledger",
                        **oidc, **extra)
    return Runtime(settings, channels={CONSOLE: ConsoleChannel()})


@pytest.fixture
def runtime(tmp_path: Path, provider: FakeOidc) -> Iterator[Runtime]:
    built = make_runtime(f"sqlite:///{tmp_path / 'oidc.db'}", tmp_path, provider)
    yield built
    built.engine.dispose()


def single_sign_on(client: TestClient) -> httpx.Response:
    """The browser's trip: our login route, the provider's authorize page, back to our callback."""
    start = client.get("/auth/oidc/login", follow_redirects=False)
    assert start.status_code == 302, start.text
    at_provider = httpx.get(start.headers["location"], follow_redirects=False)
    assert at_provider.status_code == 302, at_provider.text
    back = urlsplit(at_provider.headers["location"])
    assert back.path == "/auth/oidc/callback"
    return client.get(f"{back.path}?{back.query}", follow_redirects=False)


def test_single_sign_on_signs_in_the_person_with_that_email(database_url: str, tmp_path: Path,
                                                            provider: FakeOidc) -> None:
    runtime = make_runtime(database_url, tmp_path, provider)
    try:
        with TestClient(create_app(runtime)) as browser:
            assert browser.get("/auth/options").json() == {"demo": False, "oidc": True}
            start = browser.get("/auth/oidc/login", follow_redirects=False)
            query = dict(httpx.URL(start.headers["location"]).params)
            assert query["code_challenge_method"] == "S256" and query["nonce"] and query["state"]
            assert query["redirect_uri"] == "http://testserver/auth/oidc/callback"
            at_provider = httpx.get(start.headers["location"], follow_redirects=False)
            back = urlsplit(at_provider.headers["location"])
            done = browser.get(f"{back.path}?{back.query}", follow_redirects=False)
            assert done.status_code == 303 and done.headers["location"] == "/"
            assert {"httponly", "samesite=lax"} <= {p.strip().lower() for p in done.headers["set-cookie"].split(";")}
            assert browser.get("/api/session").json()["person"]["id"] == "sara"
            assert provider.token_requests[-1]["code_verifier"], "PKCE verifier sent with the code"

            # The same callback again (a replayed state) signs nobody in.
            replay = TestClient(create_app(runtime)).get(f"{back.path}?{back.query}", follow_redirects=False)
            assert replay.status_code == 410 and "did not work" in replay.text and SESSION_COOKIE not in replay.headers.get("set-cookie", "")
        with Session(runtime.engine) as session:
            assert [(s.person_id, s.method) for s in session.exec(select(WebSession))] == [("sara", "oidc")]
    finally:
        runtime.engine.dispose()


@pytest.mark.parametrize("trick", ["unknown email", "unverified email", "forged signature", "other nonce",
                                   "refused at the provider", "no email"])
def test_single_sign_on_refuses(runtime: Runtime, provider: FakeOidc, trick: str) -> None:
    if trick == "unknown email":
        provider.user = {**provider.user, "email": "mallory@example.com"}
    elif trick == "unverified email":
        provider.user = {**provider.user, "email_verified": False}
    elif trick == "forged signature":
        provider.signing_key = other_key()
    elif trick == "other nonce":
        provider.nonce_override = "minted-for-another-sign-in"
    elif trick == "no email":
        provider.user = {"sub": "u-2"}
    else:
        provider.error = "access_denied"
    with TestClient(create_app(runtime)) as browser:
        answer = single_sign_on(browser)
        assert answer.status_code == 403 and "did not work" in answer.text, answer.text
        assert "set-cookie" not in answer.headers
        assert browser.get("/api/exceptions").status_code == 401
    with Session(runtime.engine) as session:
        assert session.exec(select(WebSession)).all() == []


def test_a_made_up_callback_is_refused_without_calling_the_provider(runtime: Runtime, provider: FakeOidc) -> None:
    with TestClient(create_app(runtime)) as browser:
        for query in ("", "?state=x", "?code=y", "?state=made-up&code=y", f"?state={'s' * 5000}&code=y"):
            answer = browser.get(f"/auth/oidc/callback{query}", follow_redirects=False)
            assert answer.status_code in (400, 410) and "did not work" in answer.text, query
    assert provider.token_requests == []


def test_single_sign_on_is_off_unless_configured(tmp_path: Path, provider: FakeOidc) -> None:
    plain = make_runtime(f"sqlite:///{tmp_path / 'plain.db'}", tmp_path, None)
    try:
        with TestClient(create_app(plain)) as browser:
            assert browser.get("/auth/options").json() == {"demo": False, "oidc": False}
            assert browser.get("/auth/oidc/login", follow_redirects=False).status_code == 404
        half = plain.settings.model_copy(update={"oidc_issuer": provider.url})
        with pytest.raises(ValueError, match="MFGOS_OIDC_CLIENT_ID and MFGOS_OIDC_CLIENT_SECRET"):
            sign_in_routers(create_app(plain).state.auth, half)
    finally:
        plain.engine.dispose()


def test_serve_refuses_half_a_single_sign_on_configuration(tmp_path: Path) -> None:
    env = {**os.environ, "MFGOS_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
           "MFGOS_OIDC_ISSUER": "https://login.example.com", "MFGOS_OIDC_CLIENT_ID": "mfgos",
           "MFGOS_PLANT_FILE": str(Path(__file__).parents[1] / "mfgos" / "data" / "demo_plant.yaml")}
    env.pop("MFGOS_OIDC_CLIENT_SECRET", None)
    done = subprocess.run([sys.executable, "-m", "mfgos.cli", "serve", "--host", "127.0.0.1", "--port", "0"],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "cannot start: single sign-on needs MFGOS_OIDC_CLIENT_SECRET" in done.stderr


def test_people_emails_are_checked_in_the_plant_file(tmp_path: Path) -> None:
    path = plant_with_emails(tmp_path, {"sara": "not-an-address", "tom": "tom@example.com",
                                        "lena": "TOM@example.com"})
    reasons = [p.reason for p in check(path)]
    assert any("bad e-mail address 'not-an-address'" in r for r in reasons), reasons
    assert any("e-mail 'TOM@example.com' is already used by person 'tom'" in r for r in reasons), reasons
