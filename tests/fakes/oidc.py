"""A fake OpenID Connect provider speaking the real protocol: discovery document, JWKS, the
authorization endpoint (it signs in `user` at once and redirects back with a code) and the token
endpoint (client secret, redirect URI and PKCE checked; an RS256-signed id_token issued).

Knobs for the failure cases: `user` (the claims of whoever "signs in"), `signing_key` (sign with
a key that is not in the JWKS: a forged token), `nonce_override` (a token minted for another
sign-in), `error` (the user refuses at the provider).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.fakes.server import FakeServer

CLIENT_ID = "mfgos-console"
CLIENT_SECRET = "oidc-client-secret"


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    nonce: str | None
    challenge: str | None
    method: str | None


class FakeOidc(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.key = RSAKey.generate_key(2048, parameters={"kid": "fake-1", "use": "sig", "alg": "RS256"})
        self.signing_key: RSAKey | None = None  # None: sign with `key` (the one in the JWKS)
        self.user: dict[str, Any] = {"sub": "u-1", "email": "sara.khan@example.com", "email_verified": True}
        self.nonce_override: str | None = None
        self.error: str | None = None
        self.grants: dict[str, Grant] = {}
        self.token_requests: list[dict[str, str]] = []
        self.app.router.add_get("/.well-known/openid-configuration", self._discovery)
        self.app.router.add_get("/jwks", self._jwks)
        self.app.router.add_get("/authorize", self._authorize)
        self.app.router.add_post("/token", self._token)

    async def _discovery(self, _request: web.Request) -> web.Response:
        return web.json_response({
            "issuer": self.url, "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token", "jwks_uri": f"{self.url}/jwks",
            "response_types_supported": ["code"], "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"], "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": ["openid", "email"]})

    async def _jwks(self, _request: web.Request) -> web.Response:
        return web.json_response({"keys": [self.key.as_dict(private=False)]})

    async def _authorize(self, request: web.Request) -> web.Response:
        query = request.query
        redirect_uri = query.get("redirect_uri", "")
        if query.get("response_type") != "code" or query.get("client_id") != CLIENT_ID or not redirect_uri:
            return web.Response(status=400, text="bad authorization request")
        if "openid" not in query.get("scope", "").split():
            return web.Response(status=400, text="scope must include openid")
        back = {"state": query.get("state", "")}
        if self.error:
            back["error"] = self.error
        else:
            code = secrets.token_urlsafe(16)
            self.grants[code] = Grant(CLIENT_ID, redirect_uri, query.get("nonce"), query.get("code_challenge"),
                                      query.get("code_challenge_method"))
            back["code"] = code
        raise web.HTTPFound(f"{redirect_uri}?{urlencode(back)}")

    async def _token(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        self.token_requests.append({k: str(v) for k, v in form.items()})
        client_id, client_secret = _client_credentials(request, form)
        if (client_id, client_secret) != (CLIENT_ID, CLIENT_SECRET):
            return web.json_response({"error": "invalid_client"}, status=401)
        grant = self.grants.pop(str(form.get("code", "")), None)
        if form.get("grant_type") != "authorization_code" or grant is None:
            return web.json_response({"error": "invalid_grant"}, status=400)
        if form.get("redirect_uri") != grant.redirect_uri:
            return web.json_response({"error": "invalid_grant", "error_description": "redirect_uri"}, status=400)
        verifier = str(form.get("code_verifier", ""))
        expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if grant.method != "S256" or grant.challenge != expected:
            return web.json_response({"error": "invalid_grant", "error_description": "PKCE"}, status=400)
        now = int(time.time())
        claims = {"iss": self.url, "aud": grant.client_id, "iat": now, "exp": now + 300, **self.user,
                  "nonce": self.nonce_override or grant.nonce}
        id_token = jwt.encode({"alg": "RS256", "kid": "fake-1"}, claims, self.signing_key or self.key)
        return web.json_response({"access_token": secrets.token_urlsafe(16), "token_type": "Bearer",
                                  "expires_in": 300, "id_token": id_token})


def _client_credentials(request: web.Request, form: dict[str, Any]) -> tuple[str, str]:
    header = request.headers.get("Authorization", "")
    if header.startswith("Basic "):
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return user, password
    return str(form.get("client_id", "")), str(form.get("client_secret", ""))


def other_key() -> RSAKey:
    """A key the provider never published: what a forger would sign with."""
    return RSAKey.generate_key(2048, parameters={"kid": "fake-1", "use": "sig", "alg": "RS256"})
