"""Quality inspection results: `POST /signals/quality` and the plant file's quality MQTT topics.

One JSON object per result of one characteristic of one inspection lot:

    {"lot": "IL-4711", "characteristic": "bore diameter", "result": "fail", "value": 25.043,
     "lower": 24.98, "upper": 25.02, "nominal": 25.0, "unit": "mm", "inspected": 50, "rejected": 6,
     "material": "FRG-20MNCR5", "work_order": "WO-1050", "machine": "GRD-02", "id": "QM-88121"}

`lot` and `characteristic` are required, and `result` (pass or fail, in the words inspection
systems use) unless it follows from `value` and a limit. The rest is optional. The source key
is `quality:id:<id>` with an `id`, else `quality:lot:<lot>#<digest of lot and characteristic>`,
the same through HTTP and MQTT: a result sent again, by either way, is stored once and applied
once. What it does is decided in routing/quality.py (a failed lot, drift).

`read_result(value)` is total: a `QualityResult` or an `Unreadable` with the reason, whatever
the value holds, so a bad message on a quality topic is kept as `unreadable` and the next one
flows. The route is behind the app's sign-in gate (mfgos/auth.py): an API token of scope
`signals`, as `Authorization: Bearer`; anything else gets 401 or 403 there, before this module.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, ValidationError, model_validator
from starlette.concurrency import run_in_threadpool

from models import Machine, Material, Signal, WorkOrder
from routing import workflow as wf
from routing.quality import Inspection, record
from routing.workflow import Context
from signals.base import SignalSink, digest
from signals.decoding import Unreadable, json_value, storable_problem
from signals.webhooks import keep_unreadable, read_capped, signal_error

SOURCE = "quality"  # the signal source of `POST /signals/quality` (MQTT results are the `mqtt` source's)
KIND = "quality"  # the signal kind
MAX_BODY = 64 * 1024  # one result is a few hundred bytes
PASS_WORDS = frozenset({"pass", "passed", "ok", "good", "accept", "accepted", "conforming", "in_spec", "in_tolerance",
                        "released", "i.o.", "io"})
FAIL_WORDS = frozenset({"fail", "failed", "nok", "not_ok", "n.i.o.", "nio", "bad", "reject", "rejected",
                        "nonconforming", "non_conforming", "out_of_spec", "out_of_tolerance", "blocked"})

Number = Annotated[StrictFloat | StrictInt, Field(allow_inf_nan=False)]
Count = Annotated[StrictInt, Field(ge=0, le=10**12)]
Ref = Annotated[str, Field(min_length=1, max_length=200)]


class QualityResult(BaseModel):
    """One inspection result as the inspection system sends it (extra keys are kept with the signal)."""

    model_config = ConfigDict(extra="allow", strict=True)

    id: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:/-]+$")
    lot: str = Field(min_length=1, max_length=100)
    characteristic: str = Field(min_length=1, max_length=200)
    result: str | bool | None = Field(default=None)
    value: Number | None = None
    lower: Number | None = None
    upper: Number | None = None
    nominal: Number | None = None
    unit: str | None = Field(default=None, max_length=20)
    inspected: Count | None = None
    rejected: Count | None = None
    material: Ref | None = None
    work_order: Ref | None = None
    machine: Ref | None = None
    ts: str | int | float | None = None

    @model_validator(mode="after")
    def _consistent(self) -> QualityResult:
        if not self.lot.strip() or not self.characteristic.strip():
            raise ValueError("'lot' and 'characteristic' must not be blank")
        if self.lower is not None and self.upper is not None and self.lower > self.upper:
            raise ValueError(f"the lower limit {self.lower} is above the upper limit {self.upper}")
        if self.nominal is not None and not ((self.lower is None or self.lower <= self.nominal)
                                             and (self.upper is None or self.nominal <= self.upper)):
            raise ValueError(f"the nominal {self.nominal} is outside the limits")
        if self.inspected is not None and self.rejected is not None and self.rejected > self.inspected:
            raise ValueError(f"{self.rejected} rejected of {self.inspected} inspected")
        if self.result is not None and _passed(self.result) is None:
            raise ValueError(f"unknown result {str(self.result)[:50]!r}: send pass or fail")
        if self.result is None and (self.value is None or (self.lower is None and self.upper is None)):
            raise ValueError("send 'result' (pass or fail), or 'value' with 'lower' and/or 'upper'")
        return self

    @property
    def passed(self) -> bool:
        """The result as sent; without one, whether the value is within the limits."""
        if self.result is not None:
            return bool(_passed(self.result))
        assert self.value is not None
        return (self.lower is None or self.value >= self.lower) and (self.upper is None or self.value <= self.upper)

    @property
    def source_key(self) -> str:
        if self.id:
            return f"{KIND}:id:{self.id}"
        return f"{KIND}:lot:{self.lot[:100]}#{digest(self.lot, self.characteristic)}"

    def payload(self) -> dict[str, Any]:
        """What is stored on the signal: the fields by name, `result` as pass or fail, extra keys kept."""
        fields = self.model_dump(exclude_none=True)
        return {**fields, "result": "pass" if self.passed else "fail"}

    def inspection(self) -> Inspection:
        return Inspection(
            lot=self.lot, characteristic=self.characteristic, passed=self.passed,
            value=_float(self.value), lower=_float(self.lower), upper=_float(self.upper),
            nominal=_float(self.nominal), unit=self.unit, inspected=self.inspected, rejected=self.rejected,
            material=self.material, work_order=self.work_order, machine=self.machine)


def _passed(result: object) -> bool | None:
    """pass / fail in the words inspection systems use (`OK`, `NOK`, `i.O.`, `rejected`, true/false)."""
    if isinstance(result, bool):
        return result
    word = str(result).strip().lower().replace("-", "_").replace(" ", "_")
    return True if word in PASS_WORDS else False if word in FAIL_WORDS else None


def _float(value: float | int | None) -> float | None:
    return None if value is None else float(value)


def read_result(value: Any) -> QualityResult | Unreadable:
    """A result from decoded JSON, or why it is not one (total: never raises)."""
    if not isinstance(value, dict):
        return Unreadable("expected a JSON object with lot, characteristic and result")
    try:
        result = QualityResult.model_validate(value)
    except ValidationError as error:
        return Unreadable("; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}"
                                    for e in error.errors(include_url=False))[:2000])
    except (ValueError, TypeError, RecursionError) as error:  # a validator's own bug must not stop a source
        return Unreadable(f"not a quality result ({type(error).__name__})")
    if problem := storable_problem(result.payload()):
        return Unreadable(f"a value the store cannot keep: {problem}")
    return result


def read_bytes(data: bytes, *, limit: int = MAX_BODY) -> QualityResult | Unreadable:
    """A result from the raw bytes of a request or an MQTT message."""
    value = json_value(data, limit=limit)
    return value if isinstance(value, Unreadable) else read_result(value)


# --- processing -----------------------------------------------------------------------------


def handle_quality_signal(ctx: Context, signal: Signal) -> None:
    """A stored result -> routing/quality.py, once its machine, work order and material are the plant's."""
    found = read_result({k: v for k, v in signal.payload.items() if k != "topic"})
    if isinstance(found, Unreadable):
        signal.error = f"not a quality result: {found.reason}"
        return
    for model, value, what in ((Machine, found.machine, "machine"), (WorkOrder, found.work_order, "work order"),
                               (Material, found.material, "material")):
        if value is not None and wf.master_row(ctx, model, value) is None:  # type: ignore[arg-type]
            signal.error = f"unknown {what} {value!r} in plant {ctx.plant.id}"
            return
    record(ctx, found.inspection(), source=signal.source, signal_id=signal.id)


# --- POST /signals/quality --------------------------------------------------------------------


def quality_router(sink: SignalSink) -> APIRouter:
    """`POST /signals/quality`, mounted on every `serve`; the sign-in gate admits `signals` tokens only."""
    router = APIRouter(tags=["signals"])

    @router.post("/signals/quality", summary="A quality inspection result (API token of scope signals)")
    async def quality_result(request: Request) -> JSONResponse:
        body = await read_capped(request, MAX_BODY)
        if body is None:
            return JSONResponse({"detail": f"body larger than {MAX_BODY} bytes"}, status_code=413)
        value = json_value(body, limit=MAX_BODY)
        if isinstance(value, Unreadable):
            return await keep_unreadable(sink, SOURCE, body, f"body is {value.reason}", 400)
        found = read_result(value)
        if isinstance(found, Unreadable):
            return await keep_unreadable(sink, SOURCE, body, found.reason, 422)
        received = await run_in_threadpool(sink.receive, source=SOURCE, source_key=found.source_key, kind=KIND,
                                           payload=found.payload())
        error = await run_in_threadpool(signal_error, sink, received.signal_id)
        answer = {"signal_id": received.signal_id, "duplicate": received.duplicate, "stored": True}
        if error:
            return JSONResponse({**answer, "detail": error}, status_code=422)
        return JSONResponse(answer)

    return router
