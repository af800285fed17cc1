"""Who is asking, and may they: sign-in by chat link, console sessions, API tokens, one gate for every route.

People already have a verified identity on their chat platform, so the console signs them in
by sending a one-time link to that chat (`POST /auth/login`, then `GET /auth/magic/{token}`).
Machines and scripts use API tokens (`mfgos token create`) sent as `Authorization: Bearer`.

Every request passes `SignInGate`, an ASGI middleware installed once on the whole app: it
works out the `Principal` (a session cookie, a bearer token, or the demo's "anyone") and
decides with the table `ACCESS` below, default deny. Only the routes in `PUBLIC` pass
without one: the health check, the sign-in routes, the page's sign-in assets and the platform
webhooks, which check their own signatures. Routes read the principal from
`request.state.principal` to know WHO acts; what that person may do to an exception is the
lifecycle's decision (routing/), not this module's.

Secrets (link tokens, session ids, API tokens) are stored only as SHA-256 digests.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import delete, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from mfgos.config import Settings
from models import ApiToken, Notification, Person, Plant, SignInRequest, WebSession, session_scope
from routing import messages
from routing import workflow as wf
from routing.clock import Clock

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
SESSION_COOKIE = "mfgos_session"
TOKEN_PREFIX = "mfgos_"  # API tokens start with it, so secret scanners and people recognise one
LINK_MINUTES = 10
LINK_KIND = "sign_in_link"  # the notification kind of a sign-in link (never shown by the API)
LIMIT_WINDOW = timedelta(minutes=10)
LINKS_PER_PERSON = 3  # sign-in links sent to one person per window
REQUESTS_PER_CLIENT = 20  # sign-in requests from one address per window
KEEP_REQUESTS = timedelta(days=1)  # sign-in requests older than this are deleted
SECRET_MAX = 200  # longer than any secret we hand out: refused before hashing


def link_token() -> str:
    """A sign-in link's secret: 256 bits as hex. Letters and digits only, because the link travels
    inside chat text, where `_` and `-` next to each other could be taken for formatting markers and
    broken with an invisible character by the channel's escaping, which would cut the link."""
    return secrets.token_hex(32)
TOUCH_EVERY = timedelta(minutes=1)  # an API token's `last_used_at` is written at most this often
LOGIN_SENT = {"detail": "If this person is registered, a sign-in link was sent to their chat. "
                        f"It works once, for {LINK_MINUTES} minutes."}
# Link-preview robots of the chat apps open every URL in a message; they must not spend the link.
PREVIEW_AGENTS = re.compile(r"Slackbot|TelegramBot|WhatsApp|facebookexternalhit|Discordbot|Twitterbot|"
                            r"LinkedInBot|Googlebot|bingbot|Teams", re.IGNORECASE)

SCOPES: tuple[str, ...] = ("signals", "read", "act")

# Routes anyone may call: each checks its own credentials (platform signatures) or needs none.
PUBLIC_PATHS = frozenset({
    "/healthz", "/readyz",
    "/slack/events", "/telegram/webhook", "/whatsapp/webhook", "/bridge/inbound",  # signed by the platform
    "/signals/mes",  # HMAC signed (or a `signals` token, checked by the route)
    "/static/login.js", "/static/login.css", "/static/favicon.svg",  # what the sign-in page needs
})
PUBLIC_PREFIXES = ("/auth/",)

# What each kind of principal may call: (methods, path prefix) pairs; anything else is refused.
# A session (a person in the browser) may call every route; the routes themselves make sure
# the person acts and reads only as themselves.
READ = (frozenset({"GET", "HEAD"}), "/api/")
ACCESS: dict[str, tuple[tuple[frozenset[str], str], ...]] = {
    "session": ((frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}), "/"),),
    "read": (READ, (frozenset({"GET"}), "/metrics")),  # a Prometheus scraper holds a read token
    "act": (READ, (frozenset({"POST"}), "/api/messages"), (frozenset({"POST"}), "/api/actions")),
    "signals": ((frozenset({"POST"}), "/signals/"),),
}


def digest(secret: str) -> str:
    """What the store keeps of a secret: its SHA-256 (the secrets are random, so no salt is needed)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def aware(at: datetime | None) -> datetime | None:
    """SQLite hands datetimes back without their zone; they are UTC."""
    return at if at is None or at.tzinfo else at.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Principal:
    """Who a request comes from: a signed-in person, an API token, or anyone (the demo)."""

    kind: Literal["demo", "session", "token"]
    person_id: str | None = None  # the person a session or an `act`/bound token acts as
    scope: str | None = None  # a token's scope
    name: str | None = None  # a token's name

    @property
    def access(self) -> str | None:
        return self.scope if self.kind == "token" else self.kind

    def acting_as(self, requested: str | None) -> str:
        """The person this request acts (or reads) as: the demo acts as anyone it names, everyone
        else only as themselves (403 otherwise)."""
        if self.kind == "demo":
            if not requested:
                raise HTTPException(422, "person_id: give the person to act as")
            return requested
        if self.person_id is None:
            raise HTTPException(403, "this token acts as nobody; create an act token with --as PERSON")
        if requested and requested != self.person_id:
            raise HTTPException(403, f"signed in as {self.person_id!r}: you act and read only as yourself")
        return self.person_id


def is_public(path: str) -> bool:
    """Exact paths, or under a public prefix; never a path with dot segments or empty ones
    (`/auth/../api/plant` must not pass as `/auth/`, whatever a router behind us makes of it)."""
    if "/." in path or "//" in path:
        return False
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def allowed(principal: Principal, method: str, path: str) -> bool:
    """The access table: may this principal call `method path`? (the demo may call anything)"""
    if principal.kind == "demo":
        return True
    grants = ACCESS.get(principal.access or "", ())
    return any(method in methods and (path == prefix or path.startswith(prefix.rstrip("/") + "/"))
               for methods, prefix in grants)


def principal_of(request: Request) -> Principal:
    """The principal `SignInGate` found (routes behind the gate always have one)."""
    principal = getattr(request.state, "principal", None)
    if principal is None:
        raise HTTPException(401, "sign in first")
    return principal


def is_https(url: str | None) -> bool:
    return bool(url) and urlsplit(url or "").scheme == "https"


def client_address(request: Request) -> str:
    return (request.client.host if request.client else "unknown")[:100]


class Auth:
    """Sign-in links, sessions and API tokens on one plant's store; time from the injected clock."""

    def __init__(self, engine: Engine, plant_id: str, clock: Clock, *, session_hours: float = 12.0,
                 public_url: str | None = None) -> None:
        self.engine = engine
        self.plant_id = plant_id
        self.clock = clock
        self.session_lifetime = timedelta(hours=session_hours)
        self.public_url = public_url.rstrip("/") if public_url else None

    # --- sign-in by chat link ---------------------------------------------------------------

    def request_link(self, person_id: str, client: str, base_url: str) -> str:
        """Send a one-time sign-in link to the person's chat, within the limits; says what happened
        (`sent`, `unknown`, `limited`) for the log only: the caller answers the same either way."""
        now = self.clock.now()
        since = now - LIMIT_WINDOW
        with session_scope(self.engine) as session:
            session.exec(delete(SignInRequest).where(SignInRequest.requested_at < now - KEEP_REQUESTS))
            if self.client_over_limit(session, client, now):
                return "limited"
            person = session.get(Person, (self.plant_id, person_id))
            if person is None:
                session.add(SignInRequest(plant_id=self.plant_id, person_id=person_id, client=client,
                                          requested_at=now, outcome="unknown"))
                return "unknown"
            sent = session.exec(select(func.count()).select_from(SignInRequest).where(
                SignInRequest.person_id == person_id, SignInRequest.outcome == "sent",
                SignInRequest.requested_at >= since)).one()
            if sent >= LINKS_PER_PERSON:
                log.warning("sign-in link for %r not sent: %d links in %s already", person_id, sent, LIMIT_WINDOW)
                return "limited"
            token = link_token()
            row = SignInRequest(plant_id=self.plant_id, person_id=person_id, client=client, requested_at=now,
                                outcome="sent", token_hash=digest(token),
                                expires_at=now + timedelta(minutes=LINK_MINUTES))
            session.add(row)
            session.flush()
            plant = session.get(Plant, self.plant_id)
            assert plant is not None, "plant loaded at start"
            ctx = wf.Context(session=session, plant=plant, now=now, cause=f"sign-in:{row.id}", new_cause=True)
            url = f"{self.public_url or base_url.rstrip('/')}/auth/magic/{token}"
            note = wf.notify(ctx, person, LINK_KIND, messages.render(
                LINK_KIND, person.language, url=url, minutes=LINK_MINUTES))
            session.flush()
            row.notification_id = note.id
            session.add(row)
            return "sent"

    def redeem_link(self, token: str) -> str | None:
        """Spend a sign-in link (once: one atomic update that checks it is unused and fresh) and
        start a session; returns the session secret, or None for a link that is unknown, used or old."""
        if not token or len(token) > SECRET_MAX:
            return None
        now = self.clock.now()
        with session_scope(self.engine) as session:
            spent = session.exec(update(SignInRequest).where(
                SignInRequest.token_hash == digest(token), SignInRequest.outcome == "sent",
                SignInRequest.used_at.is_(None), SignInRequest.expires_at > now,  # type: ignore[union-attr]
                SignInRequest.plant_id == self.plant_id,
            ).values(used_at=now).returning(SignInRequest.person_id, SignInRequest.notification_id)).first()
            if spent is None:
                return None
            person_id, notification_id = spent
            if notification_id is not None:
                # The link is spent: the copy in the outbox row need not stay readable.
                note = session.get(Notification, notification_id)
                if note is not None:
                    note.text = note.text.replace(token, "(used)")
                    session.add(note)
            return self._start_session(session, person_id, "chat_link", now)

    def client_over_limit(self, session: Session, client: str, now: datetime) -> bool:
        """Sign-in requests (links and single sign-on starts) from one address in the window."""
        count = session.exec(select(func.count()).select_from(SignInRequest).where(
            SignInRequest.client == client, SignInRequest.requested_at >= now - LIMIT_WINDOW)).one()
        if count >= REQUESTS_PER_CLIENT:
            log.warning("sign-in request refused: %d requests from %s in %s", count, client, LIMIT_WINDOW)
            return True
        return False

    def _start_session(self, session: Session, person_id: str, method: str, now: datetime) -> str:
        secret = secrets.token_urlsafe(32)
        session.exec(delete(WebSession).where(WebSession.expires_at < now))
        session.add(WebSession(session_hash=digest(secret), plant_id=self.plant_id, person_id=person_id,
                               created_at=now, expires_at=now + self.session_lifetime, method=method))
        return secret

    def start_session(self, person_id: str, method: str) -> str:
        with session_scope(self.engine) as session:
            return self._start_session(session, person_id, method, self.clock.now())

    def end_session(self, secret: str) -> None:
        if not secret or len(secret) > SECRET_MAX:
            return
        with session_scope(self.engine) as session:
            session.exec(update(WebSession).where(WebSession.session_hash == digest(secret),
                                                  WebSession.ended_at.is_(None))  # type: ignore[union-attr]
                         .values(ended_at=self.clock.now()))

    def end_sessions(self, person_id: str | None = None) -> int:
        """Sign out one person everywhere, or everyone (`person_id=None`); returns how many sessions ended."""
        with session_scope(self.engine) as session:
            query = update(WebSession).where(WebSession.ended_at.is_(None),  # type: ignore[union-attr]
                                             WebSession.expires_at > self.clock.now())
            if person_id is not None:
                query = query.where(WebSession.person_id == person_id)
            return session.exec(query.values(ended_at=self.clock.now())).rowcount  # type: ignore[attr-defined]

    # --- who is asking ------------------------------------------------------------------------

    def identify(self, cookie: str | None, authorization: str | None) -> Principal | None:
        """The principal of a session cookie or a bearer token (the token wins), or None."""
        now = self.clock.now()
        if authorization:
            kind, _, secret = authorization.partition(" ")
            if kind.lower() != "bearer" or not secret.strip() or len(secret) > SECRET_MAX:
                return None
            with Session(self.engine) as session:
                token = session.exec(select(ApiToken).where(ApiToken.token_hash == digest(secret.strip()),
                                                            ApiToken.plant_id == self.plant_id)).first()
                if token is None or not self._in_plant(session, token.person_id):
                    return None
                last = aware(token.last_used_at)
                if last is None or now - last >= TOUCH_EVERY:
                    token.last_used_at = now
                    session.add(token)
                    session.commit()
                return Principal(kind="token", person_id=token.person_id, scope=token.scope, name=token.name)
        if cookie and len(cookie) <= SECRET_MAX:
            with Session(self.engine) as session:
                row = session.exec(select(WebSession).where(WebSession.session_hash == digest(cookie),
                                                            WebSession.plant_id == self.plant_id)).first()
                if row is None or row.ended_at is not None or (aware(row.expires_at) or now) <= now \
                        or not self._in_plant(session, row.person_id):
                    return None
                return Principal(kind="session", person_id=row.person_id)
        return None

    def _in_plant(self, session: Session, person_id: str | None) -> bool:
        """Someone taken out of the plant file loses the console and their tokens at once."""
        return person_id is None or session.get(Person, (self.plant_id, person_id)) is not None

    # --- API tokens ---------------------------------------------------------------------------

    def create_token(self, name: str, scope: str, person_id: str | None) -> str:
        """A new token (returned once; only its digest is kept). ValueError says what is wrong."""
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}: use one of {', '.join(SCOPES)}")
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,100}", name):
            raise ValueError(f"bad token name {name!r}: use 1-100 letters, digits or . _ -")
        if scope == "act" and not person_id:
            raise ValueError("an act token acts as one person: give --as PERSON")
        if scope == "signals" and person_id:
            raise ValueError("a signals token acts as nobody: leave out --as")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with session_scope(self.engine) as session:
            if person_id and session.get(Person, (self.plant_id, person_id)) is None:
                raise ValueError(f"unknown person {person_id!r} in plant {self.plant_id}")
            if session.exec(select(ApiToken).where(ApiToken.name == name)).first() is not None:
                raise ValueError(f"a token named {name!r} exists; revoke it first or pick another name")
            session.add(ApiToken(name=name, plant_id=self.plant_id, scope=scope, person_id=person_id,
                                 token_hash=digest(secret), created_at=self.clock.now()))
        return secret

    def tokens(self) -> list[ApiToken]:
        with Session(self.engine) as session:
            return list(session.exec(select(ApiToken).where(ApiToken.plant_id == self.plant_id)
                                     .order_by(ApiToken.name)))

    def revoke_token(self, name: str) -> bool:
        with session_scope(self.engine) as session:
            gone = session.exec(delete(ApiToken).where(ApiToken.name == name, ApiToken.plant_id == self.plant_id))
            return bool(gone.rowcount)  # type: ignore[attr-defined]


# --- the gate ---------------------------------------------------------------------------------


def _refusal(status: int, detail: str) -> Response:
    return JSONResponse({"detail": detail}, status_code=status,
                        headers={"WWW-Authenticate": "Bearer"} if status == 401 else None)


class SignInGate:
    """ASGI middleware on the whole app: every request is identified and checked against `ACCESS`
    here, and only here. Without a principal the console page answers with the sign-in page and
    everything else with 401; a principal calling beyond its scope gets 403."""

    def __init__(self, app: ASGIApp, auth: Auth, demo: bool = False) -> None:
        self.app = app
        self.auth = auth
        self.demo = demo

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # no websockets are served; refuse what is not HTTP
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            return
        request = Request(scope)
        path, method = request.url.path, request.method
        principal: Principal | None
        if self.demo:
            principal = Principal(kind="demo")
        else:
            cookie = request.cookies.get(SESSION_COOKIE)
            authorization = request.headers.get("authorization")
            principal = None
            if cookie or authorization:
                principal = await run_in_threadpool(self.auth.identify, cookie, authorization)
        scope.setdefault("state", {})["principal"] = principal
        if is_public(path):
            await self.app(scope, receive, send)
            return
        if principal is None:
            if method in ("GET", "HEAD") and path == "/":
                response: Response = FileResponse(STATIC / "login.html", headers={"Cache-Control": "no-cache"})
            else:
                response = _refusal(401, "sign in first: open the console to get a link in your chat, "
                                         "or send an API token as 'Authorization: Bearer <token>'")
        elif not allowed(principal, method, path):
            response = _refusal(403, f"a {principal.access} token may not call {method} {path}")
        else:
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)


# --- the sign-in routes -----------------------------------------------------------------------


class LoginIn(BaseModel):
    person_id: str = Field(min_length=1, max_length=200)


def auth_router(auth: Auth, *, demo: bool = False, oidc: bool = False) -> APIRouter:
    """`/auth/login`, `/auth/magic/{token}`, `/auth/logout`, `/auth/options` (all public: the gate
    lets `/auth/*` through)."""
    router = APIRouter(prefix="/auth", tags=["sign-in"])

    @router.get("/options")
    def options() -> dict[str, bool]:
        """What the sign-in page offers."""
        return {"demo": demo, "oidc": oidc}

    @router.post("/login", status_code=202)
    def login(body: LoginIn, request: Request) -> dict[str, Any]:
        """Always the same answer, whether or not the person exists or the limits were reached."""
        if not demo:
            auth.request_link(body.person_id.strip(), client_address(request), str(request.base_url))
        return LOGIN_SENT

    @router.get("/magic/{token}", include_in_schema=False)
    def magic(token: str, request: Request) -> Response:
        if PREVIEW_AGENTS.search(request.headers.get("user-agent", "")):
            return FileResponse(STATIC / "login-preview.html", headers={"Cache-Control": "no-store"})
        secret = auth.redeem_link(token)
        if secret is None:
            return FileResponse(STATIC / "login-expired.html", status_code=410,
                                headers={"Cache-Control": "no-store"})
        return signed_in(secret, auth)

    @router.post("/logout")
    def logout(request: Request) -> Response:
        auth.end_session(request.cookies.get(SESSION_COOKIE, ""))
        response = JSONResponse({"detail": "signed out"})
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax",
                               secure=is_https(auth.public_url))
        return response

    return router


def oidc_problem(settings: Settings) -> str | None:
    """What is missing from a half-done single sign-on configuration (None: complete or off)."""
    if not settings.oidc_issuer:
        return None
    missing = [name for name, value in (("MFGOS_OIDC_CLIENT_ID", settings.oidc_client_id),
                                        ("MFGOS_OIDC_CLIENT_SECRET", settings.oidc_client_secret)) if not value]
    return f"single sign-on needs {' and '.join(missing)} with MFGOS_OIDC_ISSUER" if missing else None


def sign_in_routers(auth: Auth, settings: Settings, *, demo: bool = False) -> list[APIRouter]:
    """The sign-in routes; with an identity provider configured (and not in the demo) also single
    sign-on, whose library is imported only then."""
    if (problem := oidc_problem(settings)) is not None:
        raise ValueError(problem)
    oidc = bool(settings.oidc_issuer) and not demo
    routers = [auth_router(auth, demo=demo, oidc=oidc)]
    if oidc:
        from mfgos.oidc import OidcSignIn, oidc_router

        assert settings.oidc_issuer and settings.oidc_client_id and settings.oidc_client_secret
        routers.append(oidc_router(OidcSignIn(auth, settings.oidc_issuer, settings.oidc_client_id,
                                              settings.oidc_client_secret.get_secret_value())))
    return routers


def signed_in(secret: str, auth: Auth) -> Response:
    """303 to the console with the session cookie set."""
    response = RedirectResponse("/", status_code=303, headers={"Cache-Control": "no-store"})
    response.set_cookie(SESSION_COOKIE, secret, max_age=int(auth.session_lifetime.total_seconds()), path="/",
                        httponly=True, samesite="lax", secure=is_https(auth.public_url))
    return response
