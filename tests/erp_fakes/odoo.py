"""A fake Odoo speaking JSON-2 (`POST /json/2/<model>/<method>`, Odoo 19) and JSON-RPC (`/jsonrpc`).

What it holds to: bearer API key + X-Odoo-Database (401 otherwise); JSON-2 errors as HTTP 4xx
with {name, message, arguments, context, debug} (UserError/ValidationError/ValueError 422,
MissingError 404, AccessError 403); JSON-RPC errors as HTTP 200 with
`error: {code: 200, message: "Odoo Server Error", data: {name, message, ...}}`;
`common.version` / `common.authenticate` / `object.execute_kw`; search domains in Polish
notation; many2one values read as [id, display_name]; x2many commands (0, 0, vals) and
(6, 0, ids); `web_save` (17+); buttons that answer with a wizard action (backorder on
`button_mark_done` when less was produced than planned, SMS confirmation on `button_validate`
when enabled, the insufficient-quantity warning on `stock.scrap.action_validate`) until the
context skips it.

Transfers follow addons/stock/models/stock_picking.py (17+): `action_assign` confirms a draft
and reserves what is free, a part if not all (the move's `quantity`); `button_validate`
confirms a draft and takes its whole demand as done, refuses when nothing is reserved or
done, marks the moves picked when none is, and asks about a backorder when less than the
demand is picked and the operation type's `create_backorder` is `ask` (otherwise it moves the
part). Odoo 16 keeps `quantity_done` and the immediate-transfer wizard.
"""

from __future__ import annotations

import itertools
import threading
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from erp_adapters.odoo import OdooErp, marker
from tests.erp_fakes.contract import ErpUnderTest
from tests.erp_fakes.db import seed_plant
from tests.erp_fakes.samples import samples
from tests.erp_fakes.server import FaultMiddleware, Faults, json_body, json_response, serve

MANY2ONE = {
    "product_id": "product.product",
    "uom_id": "uom.uom",
    "product_uom": "uom.uom",
    "product_uom_id": "uom.uom",
    "location_id": "stock.location",
    "location_dest_id": "stock.location",
    "scrap_location_id": "stock.location",
    "lot_id": "stock.lot",
    "picking_type_id": "stock.picking.type",
    "picking_id": "stock.picking",
    "equipment_id": "maintenance.equipment",
    "workcenter_id": "mrp.workcenter",
    "loss_id": "mrp.workcenter.productivity.loss",
    "production_id": "mrp.production",
    "partner_id": "res.partner",
}
MUTATING = {"create", "write", "unlink", "web_save"}
KNOWN_FIELDS: dict[str, set[str]] = {
    "maintenance.request": {
        "name",
        "description",
        "priority",
        "maintenance_type",
        "equipment_id",
        "maintenance_team_id",
        "schedule_date",
    },
    "mrp.workcenter.productivity": {
        "workcenter_id",
        "loss_id",
        "date_start",
        "date_end",
        "description",
        "workorder_id",
    },
    # scheduled_date is writable; date_done is set by validation (stock.picking._action_done).
    "stock.picking": {"picking_type_id", "location_id", "location_dest_id", "origin", "move_ids", "scheduled_date",
                      "priority"},
    "stock.move": {
        "name",
        "product_id",
        "product_uom_qty",
        "product_uom",
        "location_id",
        "location_dest_id",
        "lot_ids",
        "quantity",
        "picked",
        "quantity_done",
    },
    "stock.scrap": {
        "product_id",
        "scrap_qty",
        "product_uom_id",
        "location_id",
        "scrap_location_id",
        "origin",
        "lot_id",
        "production_id",
    },
    "quality.alert": {"title", "description", "product_id", "lot_id", "workcenter_id", "production_id"},
    "mrp.production": {
        "name",
        "product_id",
        "product_qty",
        "origin",
        "date_start",
        "date_finished",
        "date_planned_start",
        "date_planned_finished",
        "qty_producing",
    },
    "mrp.workorder": {"workcenter_id"},
}


class OdooError(Exception):
    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name, self.message = name, message

    @property
    def status(self) -> int:
        return {"MissingError": 404, "AccessError": 403, "AccessDenied": 401}.get(
            self.name.rsplit(".", 1)[-1], 422
        )


def user_error(message: str) -> OdooError:
    return OdooError("odoo.exceptions.UserError", message)


def wizard(model: str, name: str) -> dict[str, Any]:
    return {
        "type": "ir.actions.act_window",
        "res_model": model,
        "name": name,
        "view_mode": "form",
        "target": "new",
        "context": {},
    }


@dataclass
class OdooState:
    database: str = "berlin"
    login: str = "mfgos"
    api_key: str = "odoo-api-key"
    version: str = "19.0"
    enterprise: bool = True  # the Quality app (quality.alert) is installed
    ask_sms: bool = False  # button_validate first answers with the SMS confirmation wizard
    faults: Faults = field(default_factory=Faults)
    records: dict[str, dict[int, dict[str, Any]]] = field(default_factory=lambda: defaultdict(dict))
    wizards: list[str] = field(default_factory=list)  # wizards answered, in order
    calls: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    clock: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    sequences: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    # --- data ----------------------------------------------------------------------------

    def add(self, model: str, **values: Any) -> int:
        record_id = next(self.ids)
        self.records[model][record_id] = {"id": record_id, "write_date": self.stamp(), **values}
        return record_id

    def stamp(self) -> str:
        tick = next(self.clock)
        return f"2026-11-25 08:{tick // 60 % 60:02d}:{tick % 60:02d}"

    def seed(self) -> None:
        units = self.add("uom.uom", name="Units")
        self.add("uom.uom", name="kg")
        bar = self.add("product.product", default_code="AL-6061-BAR", name="Aluminium bar 6061", uom_id=units)
        housing = self.add("product.product", default_code="HOUSING-A", name="Pump housing A", uom_id=units)
        self.add("stock.lot", name="LOT-77", product_id=bar)
        stock = self.add("stock.location", name="Stock", complete_name="WH/Stock", usage="internal")
        self.add("stock.location", name="Quarantine", complete_name="WH/Quarantine", usage="internal")
        self.add("stock.location", name="Staging", complete_name="WH/Staging", usage="internal")
        self.add("stock.location", name="Scrap", complete_name="Virtual Locations/Scrap", usage="inventory")
        self.add(
            "stock.quant",
            product_id=bar,
            location_id=stock,
            lot_id=False,
            quantity=1000.0,
            product_uom_id=units,
        )
        self.add("stock.picking.type", name="Internal Transfers", code="internal", create_backorder="ask")
        self.add("maintenance.equipment", name="CNC mill 7")
        cnc = self.add("mrp.workcenter", name="CNC mill 7", code="CNC-07")
        press = self.add("mrp.workcenter", name="Press 2", code="PRESS-02")
        self.add("mrp.workcenter.productivity.loss", name="Equipment Failure", loss_type="availability")
        acme = self.add("res.partner", name="ACME Pumps")
        self.add(
            "sale.order", name="SO-9001", partner_id=acme, state="sale", commitment_date="2026-11-27 15:00:00"
        )
        for name, state, center, producing in (
            ("WO-4471", "progress", cnc, 300.0),
            ("WO-4472", "confirmed", press, 0.0),
            ("WO-4480", "cancel", cnc, 0.0),
        ):
            production = self.add(
                "mrp.production",
                name=name,
                state=state,
                product_id=housing,
                product_qty=500.0,
                qty_producing=producing,
                date_start="2026-11-25 06:00:00",
                date_finished="2026-11-25 18:00:00",
                origin="SO-9001" if name == "WO-4471" else False,
            )
            self.add(
                "mrp.workorder",
                name="Milling",
                production_id=production,
                workcenter_id=center,
                state="progress" if state == "progress" else "ready",
                working=state == "progress",
            )

    def display(self, model: str, record_id: Any) -> Any:
        if not record_id:
            return False
        record = self.records[model].get(record_id, {})
        return [record_id, record.get("complete_name") or record.get("name") or f"{model},{record_id}"]

    def render(self, model: str, record: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
        names = fields or [k for k in record if k != "write_date"] + ["write_date"]
        out: dict[str, Any] = {"id": record["id"]}
        for name in names:
            value = record.get(name, False)
            out[name] = self.display(MANY2ONE[name], value) if name in MANY2ONE else value
        return out

    def matches(self, model: str, record: dict[str, Any], domain: list[Any]) -> bool:
        def leaf(term: list[Any]) -> bool:
            name, op, value = term
            if "." in name:  # a path through a many2one, e.g. location_id.usage
                relation, _, rest = name.partition(".")
                target = self.records[MANY2ONE[relation]].get(record.get(relation), {})
                actual = target.get(rest, False)
            else:
                actual = record.get(name, False)
            if op == "=":
                return actual == value
            if op == "!=":
                return actual != value
            if op == "in":
                return actual in value
            if op == "not in":
                return actual not in value
            if op in ("ilike", "like"):
                folded = (lambda s: str(s).lower()) if op == "ilike" else str
                return folded(value) in folded(actual or "")
            if actual is False or actual is None:
                return False
            return {">": actual > value, ">=": actual >= value, "<": actual < value, "<=": actual <= value}[
                op
            ]

        def evaluate(items: list[Any]) -> tuple[bool, list[Any]]:
            head, rest = items[0], items[1:]
            if head in ("|", "&"):
                left, rest = evaluate(rest)
                right, rest = evaluate(rest)
                return (left or right) if head == "|" else (left and right), rest
            if head == "!":
                inner, rest = evaluate(rest)
                return not inner, rest
            return leaf(head), rest

        terms = list(domain)
        while terms:
            ok, terms = evaluate(terms)
            if not ok:
                return False
        return True

    # --- ORM methods ---------------------------------------------------------------------

    def execute(self, model: str, method: str, ids: list[int] | None, params: dict[str, Any]) -> Any:
        with self.lock:
            self.calls.append((model, method))
            if model == "quality.alert" and not self.enterprise:
                raise OdooError("builtins.KeyError", f"Object {model} doesn't exist")
            table = self.records[model]
            context = params.pop("context", None) or {}
            if method == "search_read":
                rows = [
                    r
                    for r in sorted(table.values(), key=lambda r: r["id"])
                    if self.matches(model, r, params.get("domain") or [])
                ]
                rows = rows[params.get("offset") or 0 :]
                if params.get("limit"):
                    rows = rows[: params["limit"]]
                return [self.render(model, r, params.get("fields")) for r in rows]
            if method == "read":
                missing = [i for i in ids or [] if i not in table]
                if missing:
                    raise OdooError(
                        "odoo.exceptions.MissingError",
                        f"Record does not exist or has been deleted. (Record: {model}({missing[0]},))",
                    )
                return [self.render(model, table[i], params.get("fields")) for i in ids or []]
            if method == "create":
                return [self.create(model, dict(values)) for values in params.get("vals_list") or []]
            if method == "web_save" and self.newer:
                # web/models/models.py (17+): write the records, or create one, then web_read.
                if ids:
                    self.check_fields(model, params.get("vals") or {})
                    for record_id in ids:
                        table[record_id].update(params.get("vals") or {}, write_date=self.stamp())
                else:
                    ids = [self.create(model, dict(params.get("vals") or {}))]
                spec = list(params.get("specification") or {})
                return [{"id": i, **{f: table[i].get(f, False) for f in spec if f != "id"}} for i in ids]
            if method == "write":
                self.check_fields(model, params.get("vals") or {})
                for record_id in ids or []:
                    table[record_id].update(params.get("vals") or {}, write_date=self.stamp())
                return True
            if method == "unlink":
                for record_id in ids or []:
                    if model == "stock.scrap" and table[record_id]["state"] == "done":
                        raise user_error("You cannot delete a scrap which is done.")
                    del table[record_id]
                return True
            handler = getattr(self, f"{model.replace('.', '_')}__{method}", None)
            if handler is None:
                raise OdooError(
                    "builtins.AttributeError", f"The method '{method}' does not exist on the model '{model}'"
                )
            return handler(ids or [], context)

    def check_fields(self, model: str, values: dict[str, Any]) -> None:
        unknown = set(values) - KNOWN_FIELDS.get(model, set(values))
        if unknown:
            raise OdooError("builtins.ValueError", f"Invalid field {sorted(unknown)[0]!r} on model {model!r}")

    def create(self, model: str, values: dict[str, Any]) -> int:
        self.check_fields(model, values)
        if model == "maintenance.request":
            if values.get("priority", "0") not in ("0", "1", "2", "3"):
                raise OdooError(
                    "odoo.exceptions.ValidationError",
                    f"Wrong value for maintenance.request.priority: {values['priority']!r}",
                )
            if not values.get("name"):
                raise OdooError(
                    "odoo.exceptions.ValidationError",
                    "The operation cannot be completed: Subject is required",
                )
            values.setdefault("stage_id", "New Request")
        if model == "stock.picking":
            moves = values.pop("move_ids", [])
            self.sequences["picking"] += 1
            picking = self.add(model, name=f"WH/INT/{self.sequences['picking']:05d}", state="draft", **values)
            for command, _zero, move in moves:
                assert command == 0
                move = dict(move)
                self.check_fields("stock.move", move)
                lots = move.pop("lot_ids", [])
                lot = lots[0][2][0] if lots else False
                self.add(
                    "stock.move",
                    picking_id=picking,
                    state="draft",
                    quantity=0.0,
                    reserved=0.0,
                    picked=False,
                    quantity_done=0.0,
                    lot_id=lot,
                    **move,
                )
            return picking
        if model == "stock.scrap":
            if values.get("scrap_qty", 0) <= 0:
                raise OdooError("odoo.exceptions.ValidationError", "Scrap quantity should be positive")
            self.sequences["scrap"] += 1
            values.setdefault("scrap_location_id", self.location("Virtual Locations/Scrap"))
            return self.add(model, name=f"SP/{self.sequences['scrap']:05d}", state="draft", **values)
        if model == "quality.alert":
            self.sequences["alert"] += 1
            return self.add(model, name=f"QA{self.sequences['alert']:05d}", **values)
        if model == "mrp.production":
            if not values.get("product_id") or not values.get("product_qty"):
                raise OdooError("odoo.exceptions.ValidationError", "The product and its quantity are required")
            self.sequences["production"] += 1
            values.setdefault("name", f"WH/MO/{self.sequences['production']:05d}")
            return self.add(model, state="draft", qty_producing=0.0, **values)
        return self.add(model, **values)

    def location(self, complete_name: str) -> int:
        return next(
            i for i, r in self.records["stock.location"].items() if r["complete_name"] == complete_name
        )

    def available(self, product: int, location: int, lot: Any = False) -> float:
        return sum(
            q["quantity"] - q.get("reserved", 0.0)
            for q in self.records["stock.quant"].values()
            if q["product_id"] == product and q["location_id"] == location and (not lot or q["lot_id"] == lot)
        )

    def move_quantity(self, product: int, source: int, target: int, quantity: float, unreserve: float) -> None:
        quants = self.records["stock.quant"]
        for quant in quants.values():
            if quant["product_id"] == product and quant["location_id"] == source:
                quant["quantity"] -= quantity
                quant["reserved"] = max(0.0, quant.get("reserved", 0.0) - unreserve)
                break
        else:
            self.add("stock.quant", product_id=product, location_id=source, lot_id=False, quantity=-quantity)
        for quant in quants.values():
            if quant["product_id"] == product and quant["location_id"] == target:
                quant["quantity"] += quantity
                return
        units = self.records["product.product"][product]["uom_id"]
        self.add(
            "stock.quant",
            product_id=product,
            location_id=target,
            lot_id=False,
            quantity=quantity,
            product_uom_id=units,
        )

    def unreserve(self, move: dict[str, Any]) -> None:
        for quant in self.records["stock.quant"].values():
            if quant["product_id"] == move["product_id"] and quant["location_id"] == move["location_id"]:
                quant["reserved"] = max(0.0, quant.get("reserved", 0.0) - move["reserved"])
                break
        move["reserved"] = 0.0
        if self.newer:
            move["quantity"] = 0.0

    @property
    def newer(self) -> bool:
        """Odoo 17+: a move's `quantity` is what is reserved or done, `picked` marks it done."""
        return int(self.version.split(".")[0]) >= 17

    def moves(self, picking: int) -> list[dict[str, Any]]:
        return [m for m in self.records["stock.move"].values() if m["picking_id"] == picking]

    def stock_picking__action_confirm(self, ids: list[int], context: dict[str, Any]) -> bool:
        for picking in ids:
            self.records["stock.picking"][picking]["state"] = "confirmed"
            for move in self.moves(picking):
                move["state"] = "confirmed"
        return True

    def stock_picking__action_assign(self, ids: list[int], context: dict[str, Any]) -> bool:
        """Confirms a draft first, then reserves what is free, a part if not all (stock_picking.py)."""
        for picking in ids:
            record = self.records["stock.picking"][picking]
            if record["state"] == "draft":
                self.stock_picking__action_confirm([picking], context)
            moves = [m for m in self.moves(picking) if m["state"] not in ("draft", "cancel", "done")]
            if not moves:
                raise user_error("Nothing to check the availability for.")
            for move in moves:
                if move["state"] not in ("confirmed", "partially_available"):
                    continue
                wanted = move["product_uom_qty"] - move["reserved"]
                take = min(wanted, max(0.0, self.available(move["product_id"], move["location_id"], move["lot_id"])))
                if take <= 0:
                    continue
                for quant in self.records["stock.quant"].values():
                    if quant["product_id"] == move["product_id"] and quant["location_id"] == move["location_id"]:
                        quant["reserved"] = quant.get("reserved", 0.0) + take
                        break
                move["reserved"] += take
                move["state"] = "assigned" if move["reserved"] >= move["product_uom_qty"] else "partially_available"
                if self.newer:
                    move["quantity"] = move["reserved"]
            states = {m["state"] for m in self.moves(picking)}
            # move_type "direct" (the default): ready as soon as anything is reserved
            record["state"] = "assigned" if states & {"assigned", "partially_available"} else "confirmed"
        return True

    def stock_picking__action_cancel(self, ids: list[int], context: dict[str, Any]) -> bool:
        for picking in ids:
            self.records["stock.picking"][picking]["state"] = "cancel"
            for move in self.moves(picking):
                if move["state"] != "done":
                    self.unreserve(move)
                    move["state"] = "cancel"
        return True

    def stock_picking__button_validate(self, ids: list[int], context: dict[str, Any]) -> Any:
        newer = self.newer
        for picking in ids:
            record = self.records["stock.picking"][picking]
            if record["state"] == "done":
                continue  # Odoo 17+ filters done transfers out
            if record["state"] == "cancel":
                raise user_error(f"Transfer {record['name']} is already cancelled")
            moves = self.moves(picking)
            if newer and record["state"] == "draft":
                # Odoo 17+ confirms a draft and takes the whole demand as done, reserved or not.
                self.stock_picking__action_confirm([picking], context)
                for move in moves:
                    if not move["quantity"] and move["product_uom_qty"]:
                        move["quantity"] = move["product_uom_qty"]
            if newer:
                done = [m["quantity"] for m in moves]
                if not any(done):
                    raise user_error("You cannot validate a transfer if no quantities are reserved nor done.")
            else:
                done = [m["quantity_done"] for m in moves]
                if not any(done):
                    if not context.get("skip_immediate"):
                        self.wizards.append("stock.immediate.transfer")
                        return wizard("stock.immediate.transfer", "Immediate Transfer?")
                    raise user_error("You cannot validate a transfer if no quantities are reserved nor done.")
            if self.ask_sms and not context.get("skip_sms"):
                self.wizards.append("confirm.stock.sms")
                return wizard("confirm.stock.sms", "SMS")
            if newer and not any(m["picked"] for m in moves):
                for move in moves:
                    move["picked"] = True
            picking_type = self.records["stock.picking.type"].get(record["picking_type_id"], {})
            short = any(d < m["product_uom_qty"] for d, m in zip(done, moves, strict=True))
            if short and picking_type.get("create_backorder", "ask") == "ask" and not context.get("skip_backorder"):
                self.wizards.append("stock.backorder.confirmation")
                return wizard("stock.backorder.confirmation", "Create Backorder?")
            for move, quantity in zip(moves, done, strict=True):
                self.move_quantity(
                    move["product_id"], move["location_id"], move["location_dest_id"], quantity, move["reserved"]
                )
                move["state"], move["reserved"] = "done", 0.0
            record["state"] = "done"
            record["date_done"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        return True

    def stock_scrap__action_validate(self, ids: list[int], context: dict[str, Any]) -> Any:
        for scrap_id in ids:
            scrap = self.records["stock.scrap"][scrap_id]
            if scrap["state"] == "done":
                return True
            if (
                self.available(scrap["product_id"], scrap["location_id"], scrap.get("lot_id"))
                < scrap["scrap_qty"]
            ):
                self.wizards.append("stock.warn.insufficient.qty.scrap")
                return wizard("stock.warn.insufficient.qty.scrap", "Insufficient Quantity")
            self.move_quantity(
                scrap["product_id"],
                scrap["location_id"],
                scrap["scrap_location_id"],
                scrap["scrap_qty"],
                0.0,
            )
            scrap["state"] = "done"
        return True

    def mrp_production__action_confirm(self, ids: list[int], context: dict[str, Any]) -> bool:
        for production in ids:
            record = self.records["mrp.production"][production]
            record["state"] = "confirmed"
            steps = [w for w in self.records["mrp.workorder"].values() if w["production_id"] == production]
            if not steps:
                # Odoo plans the work orders from the bill of materials' operations: here, the
                # first work center, where the product's routing starts.
                center = min(self.records["mrp.workcenter"])
                self.add("mrp.workorder", name="Operation", production_id=production, workcenter_id=center,
                         state="ready", working=False)
        return True

    def mrp_production__button_mark_done(self, ids: list[int], context: dict[str, Any]) -> Any:
        for production_id in ids:
            production = self.records["mrp.production"][production_id]
            if production["state"] in ("draft", "cancel"):
                raise user_error(
                    f"You cannot mark as done the manufacturing order {production['name']}: it is {production['state']}."
                )
            if 0 < production["qty_producing"] < production["product_qty"] and not context.get(
                "skip_backorder"
            ):
                self.wizards.append("mrp.production.backorder")
                return wizard("mrp.production.backorder", "You produced less than initially planned")
            production["state"] = "done"
            production["write_date"] = self.stamp()
            for step in self.records["mrp.workorder"].values():
                if step["production_id"] == production_id:
                    step["state"], step["working"] = "done", False
        return True

    def mrp_workorder__button_pending(self, ids: list[int], context: dict[str, Any]) -> bool:
        for step in ids:
            self.records["mrp.workorder"][step]["working"] = False
        return True

    def with_marker(
        self,
        key: str,
        models: tuple[str, ...] = ("maintenance.request", "stock.picking", "stock.scrap", "quality.alert"),
    ) -> list[tuple[str, dict[str, Any]]]:
        """The documents an idempotency key produced (downtime records are counted apart)."""
        tag = marker(key)
        found = []
        for model in models:
            table = self.records[model]
            for record in table.values():
                if tag in str(record.get("origin") or "") or tag in str(record.get("description") or ""):
                    found.append((model, record))
        return found


# --- wire protocol -------------------------------------------------------------------------


def make_app(state: OdooState) -> Any:
    async def json2(request: Request) -> Response:
        header = request.headers.get("authorization", "")
        if header.lower() != f"bearer {state.api_key}".lower() or request.headers.get(
            "x-odoo-database"
        ) not in (None, state.database):
            return json_response(
                {
                    "name": "werkzeug.exceptions.Unauthorized",
                    "message": "Invalid apikey",
                    "arguments": [],
                    "context": {},
                    "debug": "",
                },
                401,
            )
        body = await json_body(request)
        if not isinstance(body, dict):
            return json_response(
                {
                    "name": "werkzeug.exceptions.BadRequest",
                    "message": "Invalid JSON body",
                    "arguments": [],
                    "context": {},
                    "debug": "",
                },
                400,
            )
        ids = body.pop("ids", None)
        model, method = request.path_params["model"], request.path_params["method"]
        try:
            result = state.execute(model, method, ids, body)
        except OdooError as error:
            return json_response(
                {
                    "name": error.name,
                    "message": error.message,
                    "arguments": [error.message],
                    "context": {},
                    "debug": "Traceback (most recent call last): ...",
                },
                error.status,
            )
        response = json_response(result)
        return (
            await state.faults.after_save(response)
            if method in MUTATING or method.startswith(("action_", "button_"))
            else response
        )

    async def jsonrpc(request: Request) -> Response:
        body = await json_body(request)
        call_id = body.get("id") if isinstance(body, dict) else None
        params = (body or {}).get("params") or {}
        service, method, args = params.get("service"), params.get("method"), params.get("args") or []

        def error(name: str, message: str) -> Response:
            data = {
                "name": name,
                "message": message,
                "arguments": [message],
                "context": {},
                "debug": "Traceback (most recent call last): ...",
            }
            return json_response(
                {
                    "jsonrpc": "2.0",
                    "id": call_id,
                    "error": {"code": 200, "message": "Odoo Server Error", "data": data},
                }
            )

        if service == "common" and method == "version":
            major = int(state.version.split(".")[0])
            return json_response(
                {
                    "jsonrpc": "2.0",
                    "id": call_id,
                    "result": {
                        "server_version": state.version,
                        "server_version_info": [major, 0, 0, "final", 0, ""],
                        "protocol_version": 1,
                    },
                }
            )
        if service == "common" and method == "authenticate":
            database, login, key = args[0], args[1], args[2]
            uid = 2 if (database, login, key) == (state.database, state.login, state.api_key) else False
            return json_response({"jsonrpc": "2.0", "id": call_id, "result": uid})
        if service == "object" and method == "execute_kw":
            database, uid, key, model, model_method = args[:5]
            positional = args[5] if len(args) > 5 else []
            kwargs = dict(args[6]) if len(args) > 6 else {}
            if (database, uid, key) != (state.database, 2, state.api_key):
                return error("odoo.exceptions.AccessDenied", "Access Denied")
            ids = positional[0] if positional else None
            try:
                result = state.execute(model, model_method, ids, kwargs)
            except OdooError as failure:
                return error(failure.name, failure.message)
            response = json_response({"jsonrpc": "2.0", "id": call_id, "result": result})
            mutating = model_method in MUTATING or model_method.startswith(("action_", "button_"))
            return await state.faults.after_save(response) if mutating else response
        return error("werkzeug.exceptions.NotFound", f"unknown service {service}.{method}")

    routes = [
        Route("/json/2/{model}/{method}", json2, methods=["POST"]),
        Route("/jsonrpc", jsonrpc, methods=["POST"]),
    ]
    return FaultMiddleware(Starlette(routes=routes), state.faults)


SETTINGS = {
    "stock_location": "WH/Stock",
    "quarantine_location": "WH/Quarantine",
    "staging_location": "WH/Staging",
    "units": {"pcs": "Units"},
}


class OdooFixtures:
    """Joins the contract suite: a fresh fake Odoo 19 per test, spoken to over JSON-2."""

    api = "json2"
    version = "19.0"

    @pytest.fixture
    def odoo(self) -> OdooState:
        state = OdooState(version=self.version)
        state.seed()
        return state

    @pytest.fixture
    def erp(self, sqlite_engine: Engine, odoo: OdooState) -> Iterator[ErpUnderTest]:
        settings = dict(SETTINGS)
        engine = sqlite_engine
        seed_plant(engine, erp=settings)
        with serve(make_app(odoo)) as url:

            def make(**overrides: Any) -> OdooErp:
                options = {"user": odoo.login, "token": odoo.api_key, "timeout": 0.5, **overrides}
                return OdooErp(f"{url}/?db={odoo.database}&api={self.api}", **options)

            yield ErpUnderTest(
                name="odoo",
                make=make,
                settings=settings,
                engine=engine,
                count=lambda key: len(odoo.with_marker(key)),
                samples={
                    **samples(),
                    "production_order_status": {
                        "work_order": "WO-4471",
                        "action": "complete",
                        "reason": "done early",
                    },
                },
                refused=(
                    "production_order_status",
                    {"work_order": "WO-4480", "action": "complete"},
                    "You cannot mark as done the manufacturing order WO-4480",
                ),
                required_setting=("stock_status", "quarantine_location"),
                bad_credentials={"token": "stale-key"},
                secrets=(odoo.api_key,),
                faults=odoo.faults,
            )


class OdooJsonRpcFixtures(OdooFixtures):
    """The same contract against Odoo 17 over JSON-RPC execute_kw."""

    api = "jsonrpc"
    version = "17.0"
