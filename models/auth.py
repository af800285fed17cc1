"""Who may use the console and the REST API: sign-in requests (chat links), console sessions, API tokens.

Secrets are never stored: every token, link and session id is kept as its SHA-256 hex digest,
so a copy of the database signs nobody in. The rules live in `mfgos/auth.py`.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel


class SignInRequest(SQLModel, table=True):
    """One `POST /auth/login`: kept for the rate limits and, when a link was sent, as that link.

    `person_id` is what was typed (an unknown id has `outcome="unknown"` and no link);
    a link is spent when `used_at` is set, by one atomic update.
    """

    __tablename__ = "sign_in_requests"
    id: int | None = Field(default=None, primary_key=True)
    plant_id: str = Field(foreign_key="plants.id")
    person_id: str = Field(max_length=200, index=True)
    client: str = Field(max_length=100, index=True)  # the address the request came from
    requested_at: datetime = Field(index=True)
    outcome: str  # sent | unknown | oidc
    token_hash: str | None = Field(default=None, unique=True)
    expires_at: datetime | None = None
    used_at: datetime | None = None
    notification_id: int | None = Field(default=None, foreign_key="notifications.id")
    # OpenID Connect sign-in: the state is the token above; the id_token must carry the nonce,
    # and the code exchange proves the PKCE verifier.
    nonce: str | None = None
    code_verifier: str | None = None


class WebSession(SQLModel, table=True):
    """A signed-in browser: the cookie holds the secret, the row its hash and its end."""

    __tablename__ = "web_sessions"
    id: int | None = Field(default=None, primary_key=True)
    session_hash: str = Field(unique=True)
    plant_id: str = Field(foreign_key="plants.id")
    person_id: str = Field(index=True)
    created_at: datetime
    expires_at: datetime
    ended_at: datetime | None = None  # signed out, or revoked by an administrator
    method: str = "chat_link"  # chat_link | oidc


class ApiToken(SQLModel, table=True):
    """A bearer token for an MES, a quality system or a script (`mfgos token create`); revoking deletes it."""

    __tablename__ = "api_tokens"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=100)
    plant_id: str = Field(foreign_key="plants.id")
    scope: str  # signals | read | act
    person_id: str | None = None  # an `act` token acts as this person only
    token_hash: str = Field(unique=True)
    created_at: datetime
    last_used_at: datetime | None = None
