"""ERPNext (Frappe REST): documents through /api/v2/document, lists through /api/resource.

Idempotency: every document we create gets a deterministic name derived from the
idempotency key (`MFGOS-<key>-<digest>`). Frappe keeps a name supplied on a v2 create, so a
repeated create answers 409 DuplicateEntryError and we adopt the existing document. Work
order status changes and reschedules create no document; they are idempotent by state (we
read the work order and only change what is not already so). Mapping table: docs/erp.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx

from erp_adapters import kinds
from erp_adapters.base import (
    MAX_STOCK_LINES,
    ErpCustomerOrder,
    ErpMachine,
    ErpMaterial,
    ErpWorkOrder,
    HttpErpAdapter,
    PlantNeeds,
    Rejected,
    SettingProblem,
    StockLine,
    Transaction,
    Unavailable,
    chunks,
    decision_time,
    require_setting,
    stock_quantity,
    stock_rows,
)

WORK_ORDER_METHODS = "/api/method/erpnext.manufacturing.doctype.work_order.work_order"
# Doctypes we create that are submitted: `lookup` adopts only a submitted one (docstatus 1).
SUBMITTED = {"Stock Entry", "Material Request"}

# A work order in these states is finished in ERPNext: holding, releasing or rescheduling it
# would change nothing (or only dates nobody plans by), so it is refused, never reported done.
FINAL = ("Closed", "Cancelled")
ACTION_WORDS = {"hold": "held", "release": "released"}

STATUS = {
    "Draft": "planned",
    "Submitted": "released",
    "Not Started": "released",
    "Stock Reserved": "released",
    "Stock Partially Reserved": "released",
    "In Process": "running",
    "Material Transferred": "running",
    "Stopped": "held",
    "Completed": "done",
    "Closed": "done",
    "Cancelled": "done",
}


def document_name(key: str) -> str:
    """Deterministic, readable and unique: MFGOS-E-0001-1-ABCDEFGH."""
    readable = re.sub(r"[^A-Za-z0-9]+", "-", key).strip("-")[:60]
    return f"MFGOS-{readable}-{kinds.key_digest(key, 8)}"


def operator(fields: dict[str, Any], settings: dict[str, Any]) -> str:
    """The Employee on a Downtime Entry (ERPNext requires one): the person who fixed it, if
    erp.employees maps them, else erp.operator."""
    employee = (settings.get("employees") or {}).get(fields.get("fixed_by") or "")
    return employee or require_setting(
        settings, "operator", "as the Employee on every Downtime Entry (ERPNext requires one)"
    )


def _doc_path(doctype: str, name: str | None = None, *, version: str = "v2") -> str:
    base = f"/api/v2/document/{quote(doctype)}" if version == "v2" else f"/api/resource/{quote(doctype)}"
    return base if name is None else f"{base}/{quote(name, safe='')}"


def _strip_html(text: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", text).split())


class ErpNextErp(HttpErpAdapter):
    """ERPNext v14+ over Frappe's REST API; `Authorization: token <api key>:<api secret>`."""

    name: ClassVar[str] = "erpnext"

    def __init__(self, base_url: str, *, now: Callable[[], datetime] | None = None, **kwargs: Any) -> None:
        super().__init__(base_url, **kwargs)
        if not self.user or not self._token:
            raise ValueError(
                "erpnext: set MFGOS_ERP_USER to the API key and MFGOS_ERP_TOKEN to the API secret"
            )
        self.now = now or (lambda: datetime.now(UTC))

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.user}:{self._token}"}

    def error_message(self, response: httpx.Response) -> str:
        """Frappe's words: v2 `errors[].message`, v1 `_server_messages`, then `exception`."""
        try:
            body = response.json()
        except ValueError:
            return super().error_message(response)
        messages: list[str] = []
        if isinstance(body, dict):
            for error in body.get("errors") or []:
                if isinstance(error, dict) and error.get("message"):
                    messages.append(str(error["message"]))
            raw = body.get("_server_messages")
            if isinstance(raw, str):
                try:
                    for item in json.loads(raw):
                        entry = json.loads(item) if isinstance(item, str) else item
                        messages.append(
                            str(entry.get("message", entry)) if isinstance(entry, dict) else str(entry)
                        )
                except ValueError:
                    messages.append(raw)
            if not messages and body.get("exception"):
                messages.append(str(body["exception"]))
            if not messages and body.get("exc_type"):
                messages.append(str(body["exc_type"]))
        text = "; ".join(_strip_html(m) for m in messages if m)
        return text or super().error_message(response)

    # --- posting -----------------------------------------------------------------------------

    async def post(self, transaction: Transaction) -> str:
        kinds.validate(transaction.kind, transaction.fields)
        fields, settings = transaction.fields, transaction.plant_settings
        decided = decision_time(transaction, self.now)
        if transaction.kind == "stock_status":
            return await self._create(
                "Stock Entry", self._stock_entry(fields, settings, decided), transaction.idempotency_key
            )
        if transaction.kind == "maintenance_request":
            doctype, doc = self._maintenance(fields, settings, kinds.downtime_window(transaction, self.now))
            return await self._create(doctype, doc, transaction.idempotency_key)
        if transaction.kind == "nonconformance":
            doc = self._nonconformance(fields, settings)
            # ERPNext skips the link check on `procedure`: a wrong name would be saved silently.
            if await self._get("Quality Procedure", doc["procedure"]) is None:
                raise Rejected(
                    f"ERPNext has no Quality Procedure {doc['procedure']}: correct the plant file's "
                    "erp.quality_procedure, then retry"
                )
            return await self._create("Non Conformance", doc, transaction.idempotency_key)
        if transaction.kind == "material_request":
            return await self._create(
                "Material Request", self._material_request(fields, settings, decided), transaction.idempotency_key
            )
        if transaction.kind == "customer_order_date":
            return await self._delivery_date(fields, settings)
        if transaction.kind == "production_order_status":
            return await self._order_status(fields)
        if transaction.kind == "production_order_split":
            return await self._split(fields, settings)
        return await self._reschedule(fields, settings)

    async def lookup(self, transaction: Transaction) -> str | None:
        """Only the doctype this transaction creates: document names are unique per doctype, so a
        document of another kind under the same name is not ours to adopt."""
        doctype = self._doctype(transaction)
        if doctype is None:
            return None  # a status change or reschedule creates no document: idempotent by state
        if transaction.kind == "production_order_split":
            # The second order carries mfgos's name for it; it is ours when it makes the same item.
            original = await self._get("Work Order", transaction.fields.get("work_order") or "")
            doc = await self._get("Work Order", transaction.fields.get("new_order") or "")
            ours = doc is not None and original is not None and doc.get("docstatus") == 1 and \
                doc.get("production_item") == original.get("production_item")
            return str(doc["name"]) if ours else None  # type: ignore[index]
        name = document_name(transaction.idempotency_key)
        doc = await self._get(doctype, name)
        if doc is not None and (doctype not in SUBMITTED or doc.get("docstatus") == 1):
            return name
        return None

    def _doctype(self, transaction: Transaction) -> str | None:
        if transaction.kind == "stock_status":
            return "Stock Entry"
        if transaction.kind == "nonconformance":
            return "Non Conformance"
        if transaction.kind == "material_request":
            return "Material Request"
        if transaction.kind == "production_order_split":
            return "Work Order"
        if transaction.kind == "maintenance_request":
            assets = transaction.plant_settings.get("assets") or {}
            return "Asset Repair" if assets.get(transaction.fields.get("machine")) else "Downtime Entry"
        return None

    async def _get(self, doctype: str, name: str) -> dict[str, Any] | None:
        response = await self.request("GET", _doc_path(doctype, name), allow=(404,))
        if response.status_code == 404:
            return None
        return response.json().get("data")

    async def _create(self, doctype: str, doc: dict[str, Any], key: str) -> str:
        name = document_name(key)
        response = await self.request("POST", _doc_path(doctype), json={**doc, "name": name}, allow=(409,))
        if response.status_code != 409:
            return str(response.json()["data"]["name"])
        # An earlier attempt already created it (its answer was lost): adopt it if it is complete.
        existing = await self._get(doctype, name)
        if existing is None:
            raise Rejected(f"ERPNext reports {doctype} {name} as a duplicate but cannot show it")
        if doctype in SUBMITTED and existing.get("docstatus") != 1:
            state = "cancelled" if existing.get("docstatus") == 2 else "a draft"
            raise Rejected(
                f"{doctype} {name} already exists in ERPNext as {state}; amend or delete it there, then retry"
            )
        return name

    def _site_time(self, when: datetime, settings: dict[str, Any]) -> str:
        """Frappe stores naive datetimes in the site's time zone (erp.timezone, default UTC)."""
        zone = ZoneInfo(settings.get("timezone") or "UTC")
        return when.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")

    def _stock_entry(self, fields: dict[str, Any], settings: dict[str, Any], decided: datetime) -> dict[str, Any]:
        company = require_setting(settings, "company", "on every ERPNext stock entry")
        stock = require_setting(settings, "warehouse", "as the warehouse of usable stock")
        quarantine = require_setting(settings, "quarantine_warehouse", "to block and release stock")
        action = fields["action"]
        unit = (settings.get("units") or {}).get(fields["unit"], fields["unit"])
        item: dict[str, Any] = {"item_code": fields["material"], "qty": fields["quantity"], "uom": unit}
        if action == "block":
            entry_type, item["s_warehouse"], item["t_warehouse"] = "Material Transfer", stock, quarantine
        elif action == "release":
            entry_type, item["s_warehouse"], item["t_warehouse"] = "Material Transfer", quarantine, stock
        else:
            entry_type = "Material Issue"
            item["s_warehouse"] = quarantine if settings.get("scrap_from", "blocked") == "blocked" else stock
        if fields.get("lot"):
            item["batch_no"] = fields["lot"]
            item["use_serial_batch_fields"] = 1
        remarks = " · ".join(
            str(part)
            for part in (
                f"mfgos {action}",
                fields.get("reason"),
                fields.get("work_order") and f"work order {fields['work_order']}",
            )
            if part
        )
        # Without set_posting_time ERPNext dates the entry the day it is posted, not decided.
        posting_date, posting_time = self._site_time(decided, settings).split(" ")
        return {
            "stock_entry_type": entry_type,
            "purpose": entry_type,
            "company": company,
            "set_posting_time": 1,
            "posting_date": posting_date,
            "posting_time": posting_time,
            "items": [item],
            "remarks": remarks,
            "docstatus": 1,
        }

    def _material_request(self, fields: dict[str, Any], settings: dict[str, Any], decided: datetime) -> dict[str, Any]:
        """Expedite: a Purchase request; transfer: a Material Transfer request, into the usable-stock warehouse."""
        company = require_setting(settings, "company", "on every ERPNext material request")
        warehouse = require_setting(settings, "warehouse", "as the warehouse the material is needed in")
        need_by = self._site_time(kinds.parse_time(fields["need_by"]), settings)  # type: ignore[arg-type]
        unit = (settings.get("units") or {}).get(fields["unit"], fields["unit"])
        kind = "Purchase" if (fields.get("action") or "expedite") == "expedite" else "Material Transfer"
        return {
            "material_request_type": kind,
            "company": company,
            "transaction_date": self._site_time(decided, settings).split(" ")[0],
            "schedule_date": need_by.split(" ")[0],
            "set_warehouse": warehouse,
            "items": [{"item_code": fields["material"], "qty": fields["quantity"], "uom": unit,
                       "conversion_factor": 1, "schedule_date": need_by.split(" ")[0], "warehouse": warehouse}],
            "description": " · ".join(str(p) for p in (
                f"mfgos {fields.get('action') or 'expedite'} by {need_by}", fields.get("reason"),
                fields.get("work_order") and f"work order {fields['work_order']}") if p),
            "docstatus": 1,
        }

    async def _delivery_date(self, fields: dict[str, Any], settings: dict[str, Any]) -> str:
        """The Sales Order's delivery date; idempotent by state (set only when it differs)."""
        order = fields["customer_order"]
        date = self._site_time(kinds.parse_time(fields["promised"]), settings).split(" ")[0]  # type: ignore[arg-type]
        response = await self.request("GET", _doc_path("Sales Order", order), allow=(404,))
        if response.status_code == 404:
            raise Rejected(f"ERPNext has no Sales Order {order}")
        current = response.json()["data"]
        if current.get("docstatus") == 2 or current.get("status") in FINAL:
            state = "Cancelled" if current.get("docstatus") == 2 else current.get("status")
            raise Rejected(f"ERPNext Sales Order {order} is {state}: its date cannot be changed")
        if str(current.get("delivery_date"))[:10] != date:
            await self.request("PUT", _doc_path("Sales Order", order, version="v1"), json={"delivery_date": date})
        return f"{order} delivery {date}"

    def _maintenance(
        self, fields: dict[str, Any], settings: dict[str, Any], window: tuple[datetime, datetime]
    ) -> tuple[str, dict[str, Any]]:
        text = f"{fields.get('exception') or ''} {fields['description']}".strip()
        down, up = window
        asset = (settings.get("assets") or {}).get(fields["machine"])
        if asset:
            return "Asset Repair", {
                "asset": asset,
                "failure_date": self._site_time(down, settings),
                "repair_status": "Pending",
                "description": text,
            }
        return "Downtime Entry", {
            "workstation": (settings.get("workstations") or {}).get(fields["machine"], fields["machine"]),
            "operator": operator(fields, settings),
            "from_time": self._site_time(down, settings),
            "to_time": self._site_time(up, settings),
            "stop_reason": settings.get("stop_reason", "Unplanned machine maintenance"),
            "remarks": f"{text} (reported by {fields.get('reported_by') or 'unknown'}, priority {kinds.priority(fields)})",
        }

    def _nonconformance(self, fields: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
        procedure = require_setting(
            settings, "quality_procedure", "because ERPNext links every Non Conformance to one"
        )
        details = [fields["description"]]
        for label in ("machine", "material", "work_order", "quantity", "disposition"):
            if fields.get(label) not in (None, ""):
                unit = f" {fields.get('unit') or ''}" if label == "quantity" else ""
                details.append(f"{label.replace('_', ' ')}: {fields[label]}{unit}")
        return {
            "subject": f"{fields['exception']} {fields['type']}: {fields['description']}"[:140],
            "procedure": procedure,
            "status": "Open",
            "details": "<br>".join(details),
        }

    async def _work_order(self, name: str) -> dict[str, Any]:
        response = await self.request("GET", _doc_path("Work Order", name), allow=(404,))
        if response.status_code == 404:
            raise Rejected(f"ERPNext has no Work Order {name}")
        return response.json()["data"]

    async def _order_status(self, fields: dict[str, Any]) -> str:
        work_order, action = fields["work_order"], fields["action"]
        status = (await self._work_order(work_order)).get("status")
        if status in FINAL and action != "complete":
            raise Rejected(f"ERPNext Work Order {work_order} is {status}: it cannot be {ACTION_WORDS[action]}")
        if action == "hold":
            if status != "Stopped":
                await self.request(
                    "POST",
                    f"{WORK_ORDER_METHODS}.stop_unstop",
                    json={"work_order": work_order, "status": "Stopped"},
                )
            return f"{work_order} Stopped"
        if action == "release":
            if status == "Stopped":
                await self.request(
                    "POST",
                    f"{WORK_ORDER_METHODS}.stop_unstop",
                    json={"work_order": work_order, "status": "Resumed"},
                )
            elif status == "Draft":
                await self.request(
                    "PUT", _doc_path("Work Order", work_order, version="v1"), json={"docstatus": 1}
                )
            return f"{work_order} released"
        if status not in ("Completed", "Closed"):
            await self.request(
                "POST",
                f"{WORK_ORDER_METHODS}.close_work_order",
                json={"work_order": work_order, "status": "Closed"},
            )
        return f"{work_order} Closed" if status != "Completed" else f"{work_order} Completed"

    def _workstation(self, machine: str, settings: dict[str, Any]) -> str:
        return str((settings.get("workstations") or {}).get(machine, machine))

    def _operations_on(self, current: dict[str, Any], workstation: str) -> list[dict[str, Any]] | None:
        """The order's operations moved to `workstation`; None when they are there already."""
        operations = [dict(op) for op in current.get("operations") or []]
        if not operations or all(op.get("workstation") == workstation for op in operations):
            return None
        for op in operations:
            if op.get("status") != "Completed":
                op["workstation"] = workstation
        return operations

    async def _reschedule(self, fields: dict[str, Any], settings: dict[str, Any]) -> str:
        """New planned dates, and on a move the operations' Workstation (erp.workstations maps
        machines to Workstations). Idempotent by state: only what differs is written."""
        work_order = fields["work_order"]
        start = self._site_time(kinds.parse_time(fields["start"]), settings)  # type: ignore[arg-type]
        end = self._site_time(kinds.parse_time(fields["end"]), settings)  # type: ignore[arg-type]
        current = await self._work_order(work_order)
        if current.get("status") in FINAL:
            # ERPNext would take the new dates on a Closed order; nobody would plan by them.
            raise Rejected(f"ERPNext Work Order {work_order} is {current['status']}: it cannot be rescheduled")
        changes: dict[str, Any] = {}
        if (str(current.get("planned_start_date"))[:19], str(current.get("planned_end_date"))[:19]) != (start, end):
            changes.update(planned_start_date=start, planned_end_date=end)
        workstation = self._workstation(fields["machine"], settings) if fields.get("machine") else None
        moved = self._operations_on(current, workstation) if workstation else None
        if moved is not None:
            changes["operations"] = moved
        if changes:
            await self.request("PUT", _doc_path("Work Order", work_order, version="v1"), json=changes)
        return f"{work_order} planned {start} to {end}" + (f" on {workstation}" if workstation else "")

    async def _split(self, fields: dict[str, Any], settings: dict[str, Any]) -> str:
        """The original Work Order keeps `quantity` with its new dates (a PUT, idempotent by state);
        then the second Work Order, named `new_order`, is created and submitted for the rest on the
        split machine's Workstation. The second order comes last: found, it says the split is done."""
        work_order, new_order = fields["work_order"], fields["new_order"]
        current = await self._work_order(work_order)
        if current.get("status") in FINAL:
            raise Rejected(f"ERPNext Work Order {work_order} is {current['status']}: it cannot be split")
        if float(current.get("produced_qty") or 0) > float(fields["quantity"]):
            raise Rejected(f"ERPNext Work Order {work_order} has produced {current['produced_qty']} already: "
                           f"it cannot keep only {fields['quantity']}")
        start = self._site_time(kinds.parse_time(fields["start"]), settings)  # type: ignore[arg-type]
        end = self._site_time(kinds.parse_time(fields["end"]), settings)  # type: ignore[arg-type]
        changes: dict[str, Any] = {}
        if float(current.get("qty") or 0) != float(fields["quantity"]):
            changes["qty"] = float(fields["quantity"])
        if (str(current.get("planned_start_date"))[:19], str(current.get("planned_end_date"))[:19]) != (start, end):
            changes.update(planned_start_date=start, planned_end_date=end)
        if changes:
            await self.request("PUT", _doc_path("Work Order", work_order, version="v1"), json=changes)
        workstation = self._workstation(fields["split_machine"], settings)
        copied = ("company", "production_item", "bom_no", "sales_order", "wip_warehouse", "fg_warehouse",
                  "source_warehouse")
        doc = {key: current[key] for key in copied if current.get(key)}
        operations = [{**{k: v for k, v in op.items() if k in ("operation", "time_in_mins", "bom")},
                       "workstation": workstation} for op in current.get("operations") or []]
        doc.update(
            name=new_order, qty=float(fields["split_quantity"]), operations=operations, docstatus=1,
            planned_start_date=self._site_time(kinds.parse_time(fields["split_start"]), settings),  # type: ignore[arg-type]
            planned_end_date=self._site_time(kinds.parse_time(fields["split_end"]), settings),  # type: ignore[arg-type]
        )
        response = await self.request("POST", _doc_path("Work Order"), json=doc, allow=(409,))
        if response.status_code == 409:
            existing = await self._get("Work Order", new_order)
            if existing is None or existing.get("production_item") != current.get("production_item") or \
                    existing.get("docstatus") != 1:
                raise Rejected(f"ERPNext already has a Work Order {new_order} that is not this split's: "
                               "rename or cancel it there, then retry")
        return str(fields["new_order"])  # the document the split created, as the look-up finds it

    # --- preflight ---------------------------------------------------------------------------

    async def check(self, settings: dict[str, Any], needs: PlantNeeds) -> list[SettingProblem]:
        found: list[SettingProblem] = []

        async def named(where: str, doctype: str, name: Any, fix: str) -> None:
            if await self._get(doctype, str(name)) is None:
                found.append(SettingProblem(where, f"ERPNext has no {doctype} {name!r}", fix))

        for key, doctype, purpose in (
            ("company", "Company", "stock entries and work orders"),
            ("warehouse", "Warehouse", "usable stock"),
            ("quarantine_warehouse", "Warehouse", "blocked stock (ERPNext has no blocked status)"),
            ("quality_procedure", "Quality Procedure", "every Non Conformance"),
            ("operator", "Employee", "Downtime Entries (ERPNext requires an operator)"),
        ):
            value = settings.get(key)
            if value in (None, ""):
                found.append(SettingProblem(f"erp.{key}", "not set", f"name the {doctype} for {purpose}"))
            else:
                await named(f"erp.{key}", doctype, value, f"name an existing {doctype}, or create it in ERPNext")
        for person, employee in (settings.get("employees") or {}).items():
            await named(f"erp.employees.{person}", "Employee", employee, "name an existing Employee")
        assets = settings.get("assets") or {}
        for machine in needs.machines:
            if assets.get(machine):
                await named(f"erp.assets.{machine}", "Asset", assets[machine], "name the machine's Asset")
            else:
                workstation = (settings.get("workstations") or {}).get(machine, machine)
                await named(
                    f"erp.workstations.{machine}",
                    "Workstation",
                    workstation,
                    "map the machine to its Workstation in erp.workstations (or to an Asset in erp.assets)",
                )
        for unit in needs.units:
            uom = (settings.get("units") or {}).get(unit, unit)
            await named(f"erp.units.{unit}", "UOM", uom, f"map the plant's unit {unit!r} to an ERPNext UOM")
        for material in needs.materials:
            item = await self._get("Item", material)
            if item is None:
                found.append(SettingProblem(
                    f"material {material}", f"ERPNext has no Item {material!r}",
                    "create the Item, or correct the work order's material",
                ))
            elif not item.get("is_stock_item"):
                found.append(SettingProblem(
                    f"material {material}", f"Item {material!r} is not a stock item",
                    "stock cannot be blocked or scrapped: tick Maintain Stock on the Item",
                ))
        return found

    # --- reading -----------------------------------------------------------------------------

    async def _list(
        self, doctype: str, fields: list[str], filters: list[list[Any]] | None = None, cap: int | None = None
    ) -> list[dict[str, Any]]:
        """Every row of a v1 list, page by page; more than `cap` rows is `Unavailable` (a site that
        ignores `limit_start` would otherwise page forever)."""
        rows: list[dict[str, Any]] = []
        page = 500
        while True:
            if cap is not None and len(rows) > cap:
                raise Unavailable(f"erpnext: the ERP answered more than {cap} {doctype} rows")
            params = {
                "fields": json.dumps(fields),
                "filters": json.dumps(filters or []),
                "limit_start": len(rows),
                "limit_page_length": page,
                "order_by": "name asc",
            }
            response = await self.request("GET", _doc_path(doctype, version="v1"), params=params)
            batch = response.json().get("data") or []
            rows.extend(batch)
            if len(batch) < page:
                return rows

    def _from_site_time(self, value: Any, settings: dict[str, Any]) -> datetime | None:
        if not value:
            return None
        parsed = datetime.fromisoformat(str(value))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=ZoneInfo(settings.get("timezone") or "UTC"))
        return parsed.astimezone(UTC)

    def _since(self, changed_since: datetime | None, settings: dict[str, Any]) -> list[list[Any]]:
        # ">=" at whole seconds: re-reading a row changed in the same second is harmless (upsert).
        return [] if changed_since is None else [["modified", ">=", self._site_time(changed_since, settings)]]

    async def read_machines(self, settings: dict[str, Any]) -> list[ErpMachine]:
        rows = await self._list("Workstation", ["name", "workstation_name"])
        return [ErpMachine(id=r["name"], name=r.get("workstation_name") or r["name"]) for r in rows]

    async def read_materials(self, settings: dict[str, Any]) -> list[ErpMaterial]:
        # Only stock items are materials: fixed assets and services are Items too.
        rows = await self._list(
            "Item", ["item_code", "item_name", "stock_uom"], [["disabled", "=", 0], ["is_stock_item", "=", 1]]
        )
        return [
            ErpMaterial(id=r["item_code"], name=r.get("item_name") or r["item_code"], unit=r.get("stock_uom"))
            for r in rows
        ]

    async def read_work_orders(
        self, settings: dict[str, Any], changed_since: datetime | None = None
    ) -> list[ErpWorkOrder]:
        filters = self._since(changed_since, settings)
        if settings.get("company"):
            filters.append(["company", "=", settings["company"]])
        rows = await self._list(
            "Work Order",
            [
                "name",
                "status",
                "production_item",
                "qty",
                "planned_start_date",
                "planned_end_date",
                "sales_order",
                "modified",
            ],
            filters,
        )
        orders = []
        for row in rows:
            # The machine lives on the operations child table, which a list cannot return.
            operations = (await self._work_order(row["name"])).get("operations") or []
            machine = next((op.get("workstation") for op in operations if op.get("workstation")), None)
            orders.append(
                ErpWorkOrder(
                    id=row["name"],
                    status=STATUS.get(row.get("status") or "", "planned"),
                    machine=machine,
                    material=row.get("production_item"),
                    quantity=row.get("qty"),
                    start=self._from_site_time(row.get("planned_start_date"), settings),
                    end=self._from_site_time(row.get("planned_end_date"), settings),
                    customer_order=row.get("sales_order") or None,
                    modified=self._from_site_time(row.get("modified"), settings),
                )
            )
        return orders

    async def read_customer_orders(
        self, settings: dict[str, Any], changed_since: datetime | None = None
    ) -> list[ErpCustomerOrder]:
        filters = [["docstatus", "=", 1], *self._since(changed_since, settings)]
        rows = await self._list("Sales Order", ["name", "customer", "delivery_date", "modified"], filters)
        return [
            ErpCustomerOrder(
                id=r["name"],
                customer=r.get("customer") or "",
                due=self._from_site_time(r.get("delivery_date"), settings),
                modified=self._from_site_time(r.get("modified"), settings),
            )
            for r in rows
        ]

    async def read_stock(self, settings: dict[str, Any], material: str) -> list[StockLine]:
        return await self.read_stocks(settings, [material])

    async def read_stocks(self, settings: dict[str, Any], materials: Iterable[str]) -> list[StockLine]:
        """Bins (`actual_qty`: on hand per warehouse) of up to STOCK_CHUNK items a request; the
        quarantine warehouse counts as blocked."""
        quarantine = settings.get("quarantine_warehouse")
        lines: list[StockLine] = []
        for chunk in chunks(materials):
            try:
                rows = await self._list("Bin", ["item_code", "warehouse", "actual_qty", "stock_uom"],
                                        [["item_code", "in", chunk]], cap=MAX_STOCK_LINES)
            except (ValueError, AttributeError, TypeError) as exc:  # not JSON, or no {"data": [...]}
                raise Unavailable(f"erpnext: the ERP's stock answer is not understood ({type(exc).__name__})") from exc
            for r in stock_rows(self.name, rows):
                quantity = stock_quantity(self.name, r.get("actual_qty"))
                if quantity and r.get("item_code") in chunk:
                    lines.append(StockLine(
                        material=str(r["item_code"]),
                        quantity=quantity,
                        location=str(r.get("warehouse") or ""),
                        blocked=r.get("warehouse") == quarantine,
                        unit=r.get("stock_uom"),
                    ))
            if len(lines) > MAX_STOCK_LINES:
                raise Unavailable(f"erpnext: the ERP answered more than {MAX_STOCK_LINES} stock lines")
        return lines
