"""Optional single sign-on with OpenID Connect (Authlib): `/auth/oidc/login` and `/auth/oidc/callback`.

The authorization code flow with PKCE. The state, nonce and code verifier of a sign-in are
kept in the store (a `SignInRequest` of outcome `oidc`, the state only as its digest), not
in a browser cookie, so any replica can finish a sign-in another one started, and a state
is spent once. Authlib reads the provider's discovery document, exchanges the code and
verifies the `id_token` (signature against the provider's keys, issuer, audience, expiry,
nonce); the `email` claim then picks the person of the plant file with that `email`.
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from typing import Any

from authlib.integrations.starlette_client import OAuth
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from sqlalchemy import update
from sqlmodel import Session, func, select
from starlette.concurrency import run_in_threadpool

from mfgos.auth import (
    LINK_MINUTES,
    SECRET_MAX,
    STATIC,
    Auth,
    client_address,
    digest,
    signed_in,
)
from models import Person, SignInRequest, session_scope

log = logging.getLogger(__name__)

OUTCOME = "oidc"
SCOPE = "openid email"


class OidcSignIn:
    """One identity provider for one plant's console."""

    def __init__(self, auth: Auth, issuer: str, client_id: str, client_secret: str) -> None:
        self.auth = auth
        self.issuer = issuer.rstrip("/")
        registry = OAuth()
        self.client: Any = registry.register(
            "plant", client_id=client_id, client_secret=client_secret,
            server_metadata_url=f"{self.issuer}/.well-known/openid-configuration",
            client_kwargs={"scope": SCOPE, "code_challenge_method": "S256"})

    def redirect_uri(self, request: Request) -> str:
        return f"{self.auth.public_url or str(request.base_url).rstrip('/')}/auth/oidc/callback"

    async def login(self, request: Request) -> Response:
        state = secrets.token_urlsafe(32)
        try:
            started = await self.client.create_authorization_url(self.redirect_uri(request), state=state)
        except Exception as error:  # the provider is down or its discovery document is bad
            log.error("single sign-on: cannot reach the identity provider at %s: %s", self.issuer, error)
            return failed(503)
        if not await run_in_threadpool(self._remember, state, started["nonce"], started["code_verifier"],
                                       client_address(request)):
            return failed(429)
        return RedirectResponse(started["url"], status_code=302, headers={"Cache-Control": "no-store"})

    def _remember(self, state: str, nonce: str, verifier: str, client: str) -> bool:
        """Keep what the callback must check; False when the address asked too often."""
        now = self.auth.clock.now()
        with session_scope(self.auth.engine) as session:
            if self.auth.client_over_limit(session, client, now):
                return False
            session.add(SignInRequest(plant_id=self.auth.plant_id, person_id="", client=client, requested_at=now,
                                      outcome=OUTCOME, token_hash=digest(state), nonce=nonce,
                                      code_verifier=verifier, expires_at=now + timedelta(minutes=LINK_MINUTES)))
        return True

    def _spend(self, state: str) -> tuple[str, str] | None:
        """(nonce, code verifier) of a sign-in this console started, once."""
        now = self.auth.clock.now()
        with session_scope(self.auth.engine) as session:
            row = session.exec(update(SignInRequest).where(
                SignInRequest.token_hash == digest(state), SignInRequest.outcome == OUTCOME,
                SignInRequest.used_at.is_(None), SignInRequest.expires_at > now,  # type: ignore[union-attr]
                SignInRequest.plant_id == self.auth.plant_id,
            ).values(used_at=now).returning(SignInRequest.nonce, SignInRequest.code_verifier)).first()
        return (row[0], row[1]) if row else None

    def _person_with_email(self, email: str) -> str | None:
        with Session(self.auth.engine) as session:
            return session.exec(select(Person.id).where(Person.plant_id == self.auth.plant_id,
                                                        func.lower(Person.email) == email.lower())).first()

    async def callback(self, request: Request) -> Response:
        params = request.query_params
        state, code = params.get("state", ""), params.get("code", "")
        if params.get("error"):
            log.warning("single sign-on refused by the provider: %r", params.get("error")[:200])
            return failed(403)
        if not state or not code or len(state) > SECRET_MAX or len(code) > 2000:
            return failed(400)
        spent = await run_in_threadpool(self._spend, state)
        if spent is None:
            return failed(410)
        nonce, verifier = spent
        try:
            token = await self.client.fetch_access_token(redirect_uri=self.redirect_uri(request), code=code,
                                                         code_verifier=verifier)
            claims = await self.client.parse_id_token(token, nonce=nonce)
        except Exception as error:  # a refused code, a forged or stale id_token, a provider that is down
            log.warning("single sign-on failed: %s: %s", type(error).__name__, error)
            return failed(403)
        email = claims.get("email") if claims else None
        if not isinstance(email, str) or not email or claims.get("email_verified") is False:
            log.warning("single sign-on: the id_token has no verified email claim")
            return failed(403)
        person_id = await run_in_threadpool(self._person_with_email, email)
        if person_id is None:
            log.warning("single sign-on: no person of plant %s has the e-mail %r", self.auth.plant_id, email[:254])
            return failed(403)
        secret = await run_in_threadpool(self.auth.start_session, person_id, OUTCOME)
        return signed_in(secret, self.auth)


def failed(status: int) -> Response:
    """One page for every failure: the reason is in the server's log, not for whoever is asking."""
    return FileResponse(STATIC / "login-failed.html", status_code=status, headers={"Cache-Control": "no-store"})


def oidc_router(sign_in: OidcSignIn) -> APIRouter:
    router = APIRouter(prefix="/auth/oidc", tags=["sign-in"])

    @router.get("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        return await sign_in.login(request)

    @router.get("/callback", include_in_schema=False)
    async def callback(request: Request) -> Response:
        return await sign_in.callback(request)

    return router
