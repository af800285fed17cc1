"""A fake MES taking the generic REST adapter's webhook (docs/mes.md, "Wire format").

A real HTTP server (starlette under uvicorn, tests/erp_fakes/server.py) that does what the
documentation asks of an MES: it checks the bearer token, stores each transaction once per
Idempotency-Key and answers a repeated key with the first answer, refuses a key reused with
another body and equipment it does not know (422, with its words). `Faults` makes it fail:
503 / 429 before it stores, a lost answer (502) or a hang past the client's timeout after it
stored.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mes_adapters.rest import RestMes
from tests.erp_fakes.server import FaultMiddleware, Faults, serve
from tests.mes_fakes.contract import SETTINGS, MesUnderTest, seed

PATH = "/api/mfgos/transactions"
KINDS = ("machine_status", "work_order_hold", "work_order_resume", "downtime_reason")


@dataclass
class FakeMesState:
    token: str = "mes-token-5f1c9a"
    equipment: set[str] = field(default_factory=lambda: {"EQ-HOB1", "CNC-07", "HOB-01", "GRD-02"})
    received: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> the body it stored
    references: dict[str, str] = field(default_factory=dict)  # key -> the reference it answered
    faults: Faults = field(default_factory=Faults)

    def count(self, key: str) -> int:
        return 1 if key in self.received else 0

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        """The stored bodies of one kind, in the order they arrived."""
        return [body for body in self.received.values() if body["kind"] == kind]


def make_app(state: FakeMesState) -> FaultMiddleware:
    async def receive(request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {state.token}":
            return JSONResponse({"message": "invalid token"}, 401)
        key = request.headers.get("idempotency-key")
        if not key:
            return JSONResponse({"message": "Idempotency-Key header required"}, 400)
        try:
            body = json.loads(await request.body())
        except ValueError:
            return JSONResponse({"message": "body is not JSON"}, 400)
        if not isinstance(body, dict) or body.get("id") != key or body.get("kind") not in KINDS \
                or not isinstance(body.get("data"), dict):
            return JSONResponse({"message": "not an mfgos transaction"}, 400)
        if key in state.received:
            if state.received[key] != body:
                return JSONResponse({"message": f"key {key} was used for another transaction"}, 422)
            return JSONResponse({"reference": state.references[key]}, 200)  # the first answer, again
        equipment = body["data"].get("equipment")
        if equipment not in state.equipment:
            return JSONResponse({"message": f"unknown equipment {equipment}"}, 422)
        state.received[key] = body
        state.references[key] = f"MES-{len(state.received):05d}"
        return await state.faults.after_save(JSONResponse({"reference": state.references[key]}, 201))

    return FaultMiddleware(Starlette(routes=[Route(PATH, receive, methods=["POST"])]), state.faults)


class RestFixtures:
    """The generic REST adapter against the fake MES, over real HTTP."""

    @pytest.fixture
    def mes(self, engine: Engine) -> Iterator[MesUnderTest]:
        seed(engine)
        state = FakeMesState()
        state.faults.hang_seconds = 4.0  # past the adapter's 2 s timeout below

        def stored(key: str) -> dict[str, Any]:
            data = dict(state.received[key]["data"])
            assert data.pop("equipment") == SETTINGS["machines"].get(data["machine"], data["machine"])
            return data

        with serve(make_app(state)) as url:
            def make(**overrides: Any) -> RestMes:
                return RestMes(url + PATH, **{"token": state.token, "timeout": 2.0, **overrides})

            yield MesUnderTest(name="rest", make=make, engine=engine, count=state.count, stored=stored,
                               refused=({"machine": "XX-99"}, "unknown equipment XX-99"),
                               bad_credentials={"token": "not-the-token-77"}, secrets=(state.token,),
                               faults=state.faults)
