"""The generic REST MES adapter's own edges: its URL, its auth header, redirects and oversized answers.

Against small real HTTP servers (tests/erp_fakes/server.py `serve`); the behaviour every MES
adapter shares is in the contract suite (tests/test_mes_contract.py).
"""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from mes_adapters.base import Rejected, Transaction
from mes_adapters.registry import create_adapter
from mes_adapters.rest import MAX_ANSWER, RestMes
from mfgos.config import Settings
from tests.erp_fakes.server import serve
from tests.mes_fakes.contract import SAMPLES, SETTINGS

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def hold(key: str = "k/1") -> Transaction:
    return Transaction("work_order_hold", SAMPLES["work_order_hold"], key, plant="pune-1", exception_code="E-0001",
                       plant_settings=SETTINGS)


@pytest.mark.parametrize(("url", "words"), [
    ("", "is not set"),
    ("ftp://mes.plant.local/in", "http:// or https://"),
    ("https://user:pw@mes.plant.local/in", "must not carry credentials"),
    ("https://mes.plant.local:http/in", "is not a URL"),
    ("https://mes.plant.local/in#x", "#fragment"),
    ("mes.plant.local/in", "http:// or https://"),
])
def test_a_bad_url_is_refused_at_start_with_the_reason(url: str, words: str) -> None:
    with pytest.raises(ValueError, match="MFGOS_MES_URL") as refused:
        RestMes(url)
    assert words in str(refused.value) and "pw" not in str(refused.value)


def test_the_settings_build_the_adapter_and_a_bad_header_name_is_refused() -> None:
    settings = Settings(mes="rest", mes_url="https://mes.plant.local/in", mes_token="t0k", mes_timeout=3)
    adapter = create_adapter("rest", engine=None, settings=settings)  # type: ignore[arg-type]
    assert isinstance(adapter, RestMes) and adapter.auth_headers() == {"Authorization": "Bearer t0k"}
    assert "t0k" not in repr(adapter)
    with pytest.raises(ValueError, match="MFGOS_MES_AUTH_HEADER"):
        RestMes("https://mes.plant.local/in", auth_header="X Api: Key")
    with pytest.raises(ValueError, match="unknown MES 'sap'"):
        create_adapter("sap", engine=None, settings=settings)  # type: ignore[arg-type]


async def test_a_header_of_the_mes_own_carries_the_token_as_it_stands() -> None:
    seen: list[dict[str, Any]] = []

    async def receive(request: Request) -> Response:
        seen.append(dict(request.headers))
        return Response(status_code=204)  # no body: the key is the reference

    with serve(Starlette(routes=[Route("/in", receive, methods=["POST"])])) as url:
        adapter = RestMes(url + "/in", token="k-123", auth_header="X-Api-Key")
        try:
            assert await adapter.post(hold("plain/1")) == "plain/1"
        finally:
            await adapter.aclose()
    assert seen[0]["x-api-key"] == "k-123" and "authorization" not in seen[0]
    assert seen[0]["idempotency-key"] == "plain/1"


async def test_a_redirect_is_not_followed_and_the_token_stays_home() -> None:
    elsewhere: list[str] = []

    async def moved(_request: Request) -> Response:
        return RedirectResponse("/stolen", status_code=307)

    async def stolen(request: Request) -> Response:
        elsewhere.append(request.headers.get("authorization", ""))
        return JSONResponse({"reference": "X"})

    app = Starlette(routes=[Route("/in", moved, methods=["POST"]), Route("/stolen", stolen, methods=["POST"])])
    with serve(app) as url:
        adapter = RestMes(url + "/in", token="secret-9")
        try:
            with pytest.raises(Rejected, match="redirect .* not followed"):
                await adapter.post(hold())
        finally:
            await adapter.aclose()
    assert elsewhere == []


async def test_an_endless_answer_is_read_only_up_to_the_cap() -> None:
    async def flood(_request: Request) -> Response:
        return Response(b'{"reference": "' + b"R" * (4 * MAX_ANSWER) + b'"}', 200, media_type="application/json")

    async def refuse(_request: Request) -> Response:
        return JSONResponse({"message": "bad machine " + "x" * 5000}, 422)

    app = Starlette(routes=[Route("/in", flood, methods=["POST"]), Route("/no", refuse, methods=["POST"])])
    with serve(app) as url:
        adapter, refusing = RestMes(url + "/in"), RestMes(url + "/no")
        try:
            assert await adapter.post(hold("flood/1")) == "flood/1"  # cut JSON: no reference, the key stands
            with pytest.raises(Rejected) as refused:
                await refusing.post(hold())
        finally:
            await adapter.aclose()
            await refusing.aclose()
    assert "HTTP 422" in refused.value.reason and "bad machine" in refused.value.reason
    assert len(refused.value.reason) < 400
