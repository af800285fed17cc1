"""Quality inspection results -> quality exceptions, and drift warnings before parts fail.

An inspection system reports one result per lot and characteristic (signals/quality.py reads
them from `POST /signals/quality` and MQTT). Two decisions are made here:

- **A failed lot** opens a `quality` exception the way a chat report of a quality problem does
  (`routing.workflow.open_exception`: the plant's rule for `type: quality`, the affected work
  orders and customer orders, the planner's options). A further failed result of a lot that
  already has an open exception joins it; so does a failed lot on a machine whose quality
  exception is open (one problem on one machine is one thread, as with chat reports).
- **Drift**: per machine and characteristic, `RUN` results in a row (the plant file's
  `signals.quality.run`) on the same side of the centre line (the nominal when given, else the
  middle of the two limits) open one quality *warning* (severity `low`), before any part is out
  of tolerance. One per run: it resets when a result lands on the other side or on the line.
  Likewise `TREND` results in a row (`signals.quality.trend`) each higher, or each lower, than
  the one before. These are the classic control-chart run rules (Western Electric / Nelson),
  counted over the results in the order they are processed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import select

from models import PlantException, TimelineEvent, WorkOrder
from models.quality import QualityChart
from routing import messages
from routing import workflow as wf
from routing.options import offer as offer_options
from routing.workflow import Context

RUN = 7  # results in a row on one side of the centre line that open a drift warning (plant file: `run`)
TREND = 7  # results in a row rising, or falling, that open a trend warning (plant file: `trend`)
FAILED_SEVERITY = "high"
WARNING_SEVERITY = "low"
RESULT_EVENT = "quality_result"  # timeline kind of an inspection result on an exception
DRIFT_EVENT = "quality_drift"  # timeline kind of a drift or trend warning


@dataclass(frozen=True)
class Inspection:
    """One inspection result, as checked by `signals.quality` (a typed event of kind `quality`)."""

    lot: str
    characteristic: str
    passed: bool
    value: float | None = None
    lower: float | None = None
    upper: float | None = None
    nominal: float | None = None
    unit: str | None = None
    inspected: int | None = None
    rejected: int | None = None
    material: str | None = None
    work_order: str | None = None
    machine: str | None = None

    @property
    def centre(self) -> float | None:
        """The centre line drift is measured against: the nominal, else the middle of the limits."""
        if self.nominal is not None:
            return self.nominal
        if self.lower is not None and self.upper is not None:
            return (self.lower + self.upper) / 2
        return None

    def facts(self) -> dict[str, Any]:
        """What goes on the timeline (and into the exception's context): every field, by name."""
        return {key: value for key, value in asdict(self).items() if key != "passed"} | \
            {"result": "pass" if self.passed else "fail"}


def record(ctx: Context, inspection: Inspection, *, source: str, signal_id: int | None = None) -> None:
    """Apply one result: a failed lot opens (or joins) a quality exception; every measured value
    moves its characteristic's chart, which may open a drift warning."""
    machine_id = inspection.machine or _machine_of_work_order(ctx, inspection.work_order)
    charted = bool(machine_id) and inspection.value is not None and inspection.centre is not None
    # The chart's row is locked before anything of the machine's (`find_correlated` may lock the
    # machine's row): every result takes them in this order, so two results never wait for each other.
    chart = _locked_chart(ctx, str(machine_id), inspection.characteristic) if charted else None
    if not inspection.passed:
        _failed(ctx, inspection, machine_id, source, signal_id)
    if chart is not None:
        _chart(ctx, chart, inspection, str(machine_id), source, signal_id)


def summary(inspection: Inspection) -> str:
    """The failed lot in one line, for the alert (English, as signals open exceptions)."""
    parts = [f"lot {inspection.lot} failed inspection: {inspection.characteristic}"]
    if inspection.value is not None:
        parts[0] += f" {_number(inspection.value, inspection.unit)}"
    if (limits := _limits(inspection)) is not None:
        parts.append(f"limits {limits}")
    if inspection.rejected is not None and inspection.inspected is not None:
        parts.append(f"{inspection.rejected} of {inspection.inspected} rejected")
    elif inspection.rejected is not None:
        parts.append(f"{inspection.rejected} rejected")
    for named in (inspection.work_order, inspection.material):
        if named:
            parts.append(named)
    return "; ".join(parts)


# --- a failed lot ----------------------------------------------------------------------------


def _failed(ctx: Context, inspection: Inspection, machine_id: str | None, source: str,
            signal_id: int | None) -> None:
    area_id = wf.area_for(ctx, machine_id, inspection.material, inspection.work_order, None)
    exc = _with_lot(ctx, inspection.lot)
    new_lot = exc is None
    if exc is None:
        exc = wf.find_correlated(ctx, exception_type="quality", machine_id=machine_id, area_id=area_id,
                                 work_order_id=inspection.work_order)
    if exc is None:  # under the opening lock now (`find_correlated`): a replica may have opened it meanwhile
        exc = _with_lot(ctx, inspection.lot)
        new_lot = exc is None
    if exc is None:
        exc = wf.open_exception(ctx, exception_type="quality", text=summary(inspection), reporter=None,
                                machine_id=machine_id, work_order_id=inspection.work_order,
                                material_id=inspection.material, severity=FAILED_SEVERITY, source=source)
        wf.log(ctx, exc, RESULT_EVENT, "", None, signal_id=signal_id, **inspection.facts())
        offer_options(ctx, exc)
        return
    wf.log(ctx, exc, RESULT_EVENT, "", None, signal_id=signal_id, **inspection.facts())
    if inspection.work_order and inspection.work_order not in exc.work_orders:
        exc.work_orders = [*exc.work_orders, inspection.work_order]
    if not new_lot:
        return  # another characteristic of a lot the thread has: on the timeline, nobody paged again
    if exc.severity == WARNING_SEVERITY:  # a drift warning whose parts now fail
        exc.severity = FAILED_SEVERITY
    ctx.session.add(exc)
    for who in wf.thread_people(ctx, exc):
        wf.notify(ctx, who, "note", messages.render("quality_lot_failed", who.language, code=exc.code,
                                                    summary=summary(inspection)), exc=exc)


def _with_lot(ctx: Context, lot: str) -> PlantException | None:
    """The open quality exception that already has a result of this lot (open ones are few)."""
    # With autoflush: a result of the same lot earlier in this batch (`Runtime.process_signals`) counts.
    rows = ctx.session.exec(
        select(TimelineEvent.exception_id, TimelineEvent.data)
        .join(PlantException, PlantException.id == TimelineEvent.exception_id)  # type: ignore[arg-type]
        .where(PlantException.plant_id == ctx.plant.id, PlantException.type == "quality",
               PlantException.status.in_(wf.OPEN_STATUSES),  # type: ignore[attr-defined]
               TimelineEvent.kind == RESULT_EVENT)
        .order_by(TimelineEvent.exception_id.desc())).all()  # type: ignore[attr-defined]
    for exception_id, data in rows:
        if isinstance(data, dict) and data.get("lot") == lot:
            return ctx.session.get(PlantException, exception_id)
    return None


def _machine_of_work_order(ctx: Context, work_order_id: str | None) -> str | None:
    order = wf.master_row(ctx, WorkOrder, work_order_id) if work_order_id else None
    return order.machine_id if order else None


# --- drift -----------------------------------------------------------------------------------


def _chart(ctx: Context, chart: QualityChart, inspection: Inspection, machine_id: str, source: str,
           signal_id: int | None) -> None:
    """Move the characteristic's chart by one result; at the `RUN`th (`TREND`th) result of a run, warn once."""
    value, centre = float(inspection.value), float(inspection.centre)  # type: ignore[arg-type]
    side = 0 if math.isclose(value, centre, rel_tol=0, abs_tol=1e-12) else (1 if value > centre else -1)
    if side != 0 and side == chart.side:
        chart.run += 1
    else:
        chart.side, chart.run, chart.run_warned = side, 1 if side else 0, False
    last = chart.last_value
    direction = 0 if last is None or value == last else (1 if value > last else -1)
    if direction != 0 and direction == chart.direction:
        chart.trend += 1
    else:
        chart.direction, chart.trend, chart.trend_warned = direction, 2 if direction else 1, False
    chart.last_value, chart.results, chart.updated_at = value, chart.results + 1, ctx.now
    limits = (ctx.plant.signals or {}).get("quality") or {}  # the plant file's `signals.quality`
    run_limit, trend_limit = limits.get("run", RUN), limits.get("trend", TREND)  # 0: that rule is off
    if run_limit and chart.run >= run_limit and not chart.run_warned:
        chart.run_warned = True
        _warn(ctx, inspection, machine_id, source, signal_id, rule="run", count=chart.run, side=chart.side,
              centre=centre)
    if trend_limit and chart.trend >= trend_limit and not chart.trend_warned:
        chart.trend_warned = True
        _warn(ctx, inspection, machine_id, source, signal_id, rule="trend", count=chart.trend,
              side=chart.direction, centre=centre)
    ctx.session.add(chart)


def _locked_chart(ctx: Context, machine_id: str, characteristic: str) -> QualityChart:
    """The chart's row, locked until the commit: two results of one characteristic are counted one after
    the other, even by two workers. A new chart's row is inserted first (`ON CONFLICT DO NOTHING`), so
    two first results at once both find the row instead of one failing on the primary key."""
    key = (ctx.plant.id, machine_id, characteristic)
    chart = ctx.session.get(QualityChart, key, with_for_update=True)
    if chart is not None:
        return chart
    table = QualityChart.__table__  # type: ignore[attr-defined]
    insert = pg_insert if ctx.session.get_bind().dialect.name == "postgresql" else sqlite_insert
    ctx.session.execute(insert(table).values(
        plant_id=ctx.plant.id, machine_id=machine_id, characteristic=characteristic, side=0, run=0,
        run_warned=False, direction=0, trend=0, trend_warned=False, results=0).on_conflict_do_nothing())
    found = ctx.session.get(QualityChart, key, with_for_update=True)
    assert found is not None
    return found


def _warn(ctx: Context, inspection: Inspection, machine_id: str, source: str, signal_id: int | None, *,
          rule: str, count: int, side: int, centre: float) -> None:
    """Open the warning, or put it on the machine's open quality exception (a chat report, a failed lot)."""
    facts = {"rule": rule, "count": count, "side": "above" if side > 0 else "below", "centre": centre,
             "characteristic": inspection.characteristic, "value": inspection.value, "unit": inspection.unit,
             "machine": machine_id, "lot": inspection.lot, "signal_id": signal_id}
    area_id = wf.area_for(ctx, machine_id, inspection.material, inspection.work_order, None)
    exc = wf.find_correlated(ctx, exception_type="quality", machine_id=machine_id, area_id=area_id,
                             work_order_id=inspection.work_order)
    if exc is None:
        exc = wf.open_exception(ctx, exception_type="quality", text=_drift_text(inspection, machine_id, facts),
                                reporter=None, machine_id=machine_id, work_order_id=inspection.work_order,
                                material_id=inspection.material, severity=WARNING_SEVERITY, source=source)
    wf.log(ctx, exc, DRIFT_EVENT, "", None, **facts)


def _drift_text(inspection: Inspection, machine_id: str, facts: dict[str, Any]) -> str:
    unit = inspection.unit
    if facts["rule"] == "run":
        how = f"{facts['count']} results in a row {facts['side']} the centre line {_number(facts['centre'], unit)}"
    else:
        how = f"{facts['count']} results in a row {'rising' if facts['side'] == 'above' else 'falling'}"
    return (f"drift warning: {inspection.characteristic} on {machine_id}: {how} "
            f"(last {_number(inspection.value, unit)}, lot {inspection.lot})")


def _number(value: float | None, unit: str | None) -> str:
    text = "-" if value is None else f"{value:g}"
    return f"{text} {unit}" if unit and value is not None else text


def _limits(inspection: Inspection) -> str | None:
    unit = inspection.unit
    if inspection.lower is None and inspection.upper is None:
        return None
    if inspection.lower is None:
        text = f"at most {_number(inspection.upper, unit)}"
    elif inspection.upper is None:
        text = f"at least {_number(inspection.lower, unit)}"
    else:
        text = f"{inspection.lower:g} to {_number(inspection.upper, unit)}"
    return text + (f" (nominal {_number(inspection.nominal, unit)})" if inspection.nominal is not None else "")
