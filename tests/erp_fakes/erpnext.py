"""A fake ERPNext speaking Frappe's REST wire protocol (v1 /api/resource, /api/method; v2 /api/v2).

What it holds to: token auth (401 AuthenticationError), v1 error bodies with `exc_type` and
`_server_messages`, v2 bodies with `errors[]`, 417 ValidationError, 404 DoesNotExistError,
409 DuplicateEntryError when a v2 create names an existing document, naming series when no
name is given, docstatus (Stock Entry is submitted on create with docstatus 1 and moves Bin
quantities; short stock is a 417 NegativeStockError), work order stop/resume/close methods.

Rules seen on a running ERPNext 15.99 (docs/erp.md, "What is verified"): a Downtime Entry
without `operator` is refused ("Value missing for Downtime Entry: Operator"); a Non
Conformance naming a Quality Procedure that does not exist is saved (no link check on that
field); a Stock Entry is dated the day it is posted unless `set_posting_time` is 1 with
`posting_date` / `posting_time`; a Closed work order cannot be stopped or re-opened, yet takes
new planned dates. Items carry `is_stock_item` (a fixed asset's item is not a stock item).
"""

from __future__ import annotations

import base64
import json
import threading
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from erp_adapters.erpnext import ErpNextErp, document_name
from tests.erp_fakes.contract import ErpUnderTest
from tests.erp_fakes.db import seed_plant
from tests.erp_fakes.samples import samples
from tests.erp_fakes.server import FaultMiddleware, Faults, json_body, json_response, serve

SERIES = {
    "Stock Entry": "MAT-STE-2026-",
    "Asset Repair": "ACC-ASR-2026-",
    "Downtime Entry": "DT-",
    "Non Conformance": "QA-NC-",
}
SUBMITTABLE = {"Stock Entry", "Asset Repair", "Work Order", "Sales Order", "Material Request"}
STOP_REASONS = {
    "Excessive machine set up time",
    "Unplanned machine maintenance",
    "On-machine press checks",
    "Machine operator errors",
    "Machine malfunction",
    "Electricity down",
    "Other",
}


class FrappeError(Exception):
    def __init__(self, status: int, exc_type: str, message: str) -> None:
        super().__init__(message)
        self.status, self.exc_type, self.message = status, exc_type, message


def _validation(message: str) -> FrappeError:
    return FrappeError(417, "ValidationError", message)


@dataclass
class ErpNextState:
    api_key: str = "mfgos-key"
    api_secret: str = "mfgos-secret"
    faults: Faults = field(default_factory=Faults)
    docs: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: defaultdict(dict))
    created: list[tuple[str, str]] = field(default_factory=list)  # (doctype, name) in creation order
    bins: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    counters: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    lock: threading.Lock = field(default_factory=threading.Lock)
    clock: int = 0
    # A stock site allows only a Work Order's planned dates after submission (the doctype's
    # Allow on Submit); a split and a move need `qty` and the operations' Workstation too, which
    # the site's Customize Form allows (a Property Setter). False: the stock site.
    work_order_customised: bool = True

    def tick(self) -> str:
        self.clock += 1
        return f"2026-11-25 09:{self.clock // 60 % 60:02d}:{self.clock % 60:02d}.{self.clock:06d}"

    def put(self, doctype: str, doc: dict[str, Any]) -> dict[str, Any]:
        doc = {"doctype": doctype, "docstatus": 0, "modified": self.tick(), **doc}
        self.docs[doctype][doc["name"]] = doc
        return doc

    def seed(self) -> None:
        """The demo plant as an ERPNext site holds it."""
        self.put("Company", {"name": "Berlin GmbH"})
        for warehouse in ("Stores - BG", "Quarantine - BG", "Scrap - BG"):
            self.put("Warehouse", {"name": warehouse})
        for name, title in (("CNC-07", "CNC mill 7"), ("PRESS-02", "Press 2")):
            self.put("Workstation", {"name": name, "workstation_name": title})
        self.put(
            "Item",
            {
                "name": "AL-6061-BAR",
                "item_code": "AL-6061-BAR",
                "item_name": "Aluminium bar 6061",
                "stock_uom": "Nos",
                "uoms": ["Nos"],
                "disabled": 0,
                "is_stock_item": 1,
            },
        )
        self.put(
            "Item",
            {
                "name": "HOUSING-A",
                "item_code": "HOUSING-A",
                "item_name": "Pump housing A",
                "stock_uom": "Nos",
                "uoms": ["Nos"],
                "disabled": 0,
                "is_stock_item": 1,
            },
        )
        # The item behind the CNC's Asset: a fixed asset, not a material.
        self.put(
            "Item",
            {
                "name": "CNC-MILL",
                "item_code": "CNC-MILL",
                "item_name": "CNC mill (fixed asset)",
                "stock_uom": "Nos",
                "uoms": ["Nos"],
                "disabled": 0,
                "is_stock_item": 0,
                "is_fixed_asset": 1,
            },
        )
        self.put("Batch", {"name": "LOT-77", "item": "AL-6061-BAR"})
        self.put("Asset", {"name": "AST-0007", "item_code": "CNC-MILL"})
        self.put("Quality Procedure", {"name": "QP-Deviation"})
        self.put("UOM", {"name": "Nos"})
        self.put("Employee", {"name": "HR-EMP-0001"})
        self.put(
            "Sales Order",
            {"name": "SO-9001", "customer": "ACME Pumps", "delivery_date": "2026-11-27", "docstatus": 1},
        )
        for name, status, machine in (
            ("WO-4471", "In Process", "CNC-07"),
            ("WO-4472", "Not Started", "PRESS-02"),
            ("WO-4480", "Closed", "CNC-07"),
            ("WO-4481", "Cancelled", "CNC-07"),
        ):
            self.put(
                "Work Order",
                {
                    "name": name,
                    "status": status,
                    "docstatus": 2 if status == "Cancelled" else 1,
                    "company": "Berlin GmbH",
                    "production_item": "HOUSING-A",
                    "qty": 500.0,
                    "planned_start_date": "2026-11-25 07:00:00",
                    "planned_end_date": "2026-11-25 19:00:00",
                    "sales_order": "SO-9001" if name == "WO-4471" else "",
                    "operations": [{"operation": "Milling", "workstation": machine}],
                },
            )
        self.bins[("AL-6061-BAR", "Stores - BG")] = 1000.0
        self.bins[("AL-6061-BAR", "Quarantine - BG")] = 0.0

    # --- document logic --------------------------------------------------------------------

    def exists(self, doctype: str, name: Any) -> bool:
        return isinstance(name, str) and name in self.docs[doctype]

    def link(self, doctype: str, name: Any, label: str) -> None:
        if not self.exists(doctype, name):
            raise _validation(f"Could not find {label}: {name}")

    def insert(self, doctype: str, doc: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            name = doc.get("name")
            if name and self.exists(doctype, name):
                raise FrappeError(409, "DuplicateEntryError", f"{doctype} {name} already exists")
            self.validate(doctype, doc)
            if not name:
                self.counters[doctype] += 1
                name = f"{SERIES.get(doctype, doctype.upper() + '-')}{self.counters[doctype]:05d}"
            docstatus = int(doc.get("docstatus") or 0)
            if docstatus == 1 and doctype not in SUBMITTABLE:
                raise _validation(f"Cannot submit {doctype}: it is not submittable")
            if docstatus == 1 and doctype == "Stock Entry":
                self.move_stock(doc)
            if docstatus == 1 and doctype == "Work Order":
                doc = {**doc, "status": "Not Started"}
            if doctype == "Stock Entry" and not doc.get("set_posting_time"):
                # ERPNext's own today, whatever posting_date the request carried.
                now = datetime.now()
                doc = {**doc, "posting_date": now.strftime("%Y-%m-%d"), "posting_time": now.strftime("%H:%M:%S")}
            saved = self.put(doctype, {**doc, "name": name, "docstatus": docstatus})
            self.created.append((doctype, name))
            return saved

    def validate(self, doctype: str, doc: dict[str, Any]) -> None:
        def mandatory(*names: str) -> None:
            missing = [n for n in names if doc.get(n) in (None, "", [])]
            if missing:
                raise FrappeError(417, "MandatoryError", f"[{doctype}]: {', '.join(missing)}")

        if doctype == "Stock Entry":
            mandatory("stock_entry_type", "company", "items")
            self.link("Company", doc["company"], "Company")
            if doc["stock_entry_type"] not in ("Material Transfer", "Material Issue", "Material Receipt"):
                raise _validation(f"Stock Entry Type {doc['stock_entry_type']} not supported here")
            for row, item in enumerate(doc["items"], 1):
                if not self.exists("Item", item.get("item_code")):
                    raise _validation(f"Row {row}: Could not find Item: {item.get('item_code')}")
                if item.get("uom") not in self.docs["Item"][item["item_code"]]["uoms"]:
                    raise _validation(
                        f"Row {row}: UOM Conversion factor required for UOM: {item.get('uom')} in Item: {item['item_code']}"
                    )
                for key in ("s_warehouse", "t_warehouse"):
                    if item.get(key):
                        self.link("Warehouse", item[key], "Warehouse")
                if doc["stock_entry_type"] == "Material Transfer" and not (
                    item.get("s_warehouse") and item.get("t_warehouse")
                ):
                    raise _validation(
                        f"Row {row}: Source and target warehouse are mandatory for a Material Transfer"
                    )
                if (
                    item.get("batch_no")
                    and self.docs["Batch"].get(item["batch_no"], {}).get("item") != item["item_code"]
                ):
                    raise _validation(
                        f"Row {row}: Batch {item['batch_no']} does not belong to Item {item['item_code']}"
                    )
                if not isinstance(item.get("qty"), int | float) or item["qty"] <= 0:
                    raise _validation(f"Row {row}: Quantity must be greater than zero")
        elif doctype == "Asset Repair":
            mandatory("asset", "failure_date", "repair_status")
            self.link("Asset", doc["asset"], "Asset")
        elif doctype == "Downtime Entry":
            mandatory("workstation", "from_time", "to_time", "stop_reason")
            self.link("Workstation", doc["workstation"], "Workstation")
            if doc["stop_reason"] not in STOP_REASONS:
                raise _validation(f"Stop Reason cannot be {doc['stop_reason']}")
            if not doc.get("operator"):
                raise FrappeError(417, "MandatoryError", "Value missing for Downtime Entry: Operator")
            self.link("Employee", doc["operator"], "Employee")
            if doc["to_time"] < doc["from_time"]:
                raise _validation("To Time must be greater than From Time")
        elif doctype == "Material Request":
            mandatory("material_request_type", "company", "schedule_date", "items")
            if doc["material_request_type"] not in ("Purchase", "Material Transfer", "Material Issue", "Manufacture"):
                raise _validation(f"Material Request Type {doc['material_request_type']} is not valid")
            self.link("Company", doc["company"], "Company")
            for item in doc["items"]:
                self.link("Item", item.get("item_code"), "Item")
                self.link("Warehouse", item.get("warehouse"), "Warehouse")
                if not item.get("qty") or item["qty"] <= 0 or not item.get("schedule_date"):
                    raise _validation("Material Request Item: qty and Required By are mandatory")
        elif doctype == "Work Order":
            mandatory("company", "production_item", "qty", "planned_start_date")
            self.link("Company", doc["company"], "Company")
            self.link("Item", doc["production_item"], "Item")
            for op in doc.get("operations") or []:
                self.link("Workstation", op.get("workstation"), "Workstation")
            if doc.get("sales_order"):
                self.link("Sales Order", doc["sales_order"], "Sales Order")
        elif doctype == "Non Conformance":
            # ERPNext 15 saves a `procedure` naming no Quality Procedure: no link check here.
            mandatory("subject", "procedure", "status")

    def move_stock(self, doc: dict[str, Any]) -> None:
        for item in doc["items"]:
            source = item.get("s_warehouse")
            if source and self.bins[(item["item_code"], source)] < item["qty"]:
                short = item["qty"] - self.bins[(item["item_code"], source)]
                raise FrappeError(
                    417,
                    "NegativeStockError",
                    f"{short} units of Item {item['item_code']} needed in Warehouse {source} to complete this transaction.",
                )
        for item in doc["items"]:
            if item.get("s_warehouse"):
                self.bins[(item["item_code"], item["s_warehouse"])] -= item["qty"]
            if item.get("t_warehouse"):
                self.bins[(item["item_code"], item["t_warehouse"])] += item["qty"]

    def update(self, doctype: str, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            doc = self.get(doctype, name)
            if doc["docstatus"] == 2:
                raise FrappeError(417, "UpdateAfterSubmitError", f"Cannot edit cancelled document {name}")
            if doc["docstatus"] == 1 and doctype in ("Work Order", "Sales Order"):
                # Fields allowed on submit: a work order's plan, a sales order's delivery date.
                allowed = {"planned_start_date", "planned_end_date"} if doctype == "Work Order" else {"delivery_date"}
                if doctype == "Work Order" and self.work_order_customised:
                    allowed |= {"qty", "operations"}
                if set(changes) - allowed:
                    raise FrappeError(
                        417,
                        "UpdateAfterSubmitError",
                        f"Not allowed to change {', '.join(sorted(set(changes) - allowed))} after submission",
                    )
            if changes.get("docstatus") == 1 and doctype == "Work Order":
                changes = {**changes, "status": "Not Started"}
            for op in changes.get("operations") or []:
                self.link("Workstation", op.get("workstation"), "Workstation")
            doc.update(changes, modified=self.tick())
            return doc

    def get(self, doctype: str, name: str) -> dict[str, Any]:
        if not self.exists(doctype, name):
            raise FrappeError(404, "DoesNotExistError", f"{doctype} {name} not found")
        return self.docs[doctype][name]

    def stop_unstop(self, work_order: str, status: str) -> str:
        with self.lock:
            doc = self.get("Work Order", work_order)
            if doc["status"] == "Closed":
                raise _validation("Closed Work Order can not be stopped or Re-opened")
            if status not in ("Stopped", "Resumed"):
                raise _validation(f"Invalid status {status}")
            doc["status"] = "Stopped" if status == "Stopped" else "In Process"
            doc["modified"] = self.tick()
            return doc["status"]

    def close_work_order(self, work_order: str, status: str) -> str:
        with self.lock:
            doc = self.get("Work Order", work_order)
            if doc["status"] in ("Draft", "Cancelled"):
                raise _validation(f"Cannot close a {doc['status']} Work Order")
            doc["status"] = status
            doc["modified"] = self.tick()
            return status

    def documents_named(self, name: str) -> list[tuple[str, dict[str, Any]]]:
        return [(doctype, docs[name]) for doctype, docs in self.docs.items() if name in docs]


# --- wire protocol -------------------------------------------------------------------------


def _v1_error(error: FrappeError) -> Response:
    messages = json.dumps([json.dumps({"message": error.message, "title": "Message", "indicator": "red"})])
    return json_response({"exc_type": error.exc_type, "_server_messages": messages}, error.status)


def _v2_error(error: FrappeError) -> Response:
    return json_response(
        {"errors": [{"type": error.exc_type, "message": error.message, "title": "Message"}], "messages": []},
        error.status,
    )


def _matches(doc: dict[str, Any], condition: list[Any]) -> bool:
    field_name, op, value = condition[-3:]
    actual = doc.get(field_name)
    if op == "=":
        return actual == value
    if op == "!=":
        return actual != value
    if op == "in":
        return actual in value
    if op == "like":
        return str(value).strip("%") in str(actual or "")
    if actual is None:
        return False
    return {">": actual > value, "<": actual < value, ">=": actual >= value, "<=": actual <= value}[op]


def make_app(state: ErpNextState) -> Any:
    def authorised(request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if header == f"token {state.api_key}:{state.api_secret}":
            return True
        expected = base64.b64encode(f"{state.api_key}:{state.api_secret}".encode()).decode()
        return header == f"Basic {expected}"

    def guarded(handler: Any, render: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            if not authorised(request):
                return render(FrappeError(401, "AuthenticationError", "Invalid API key or secret"))
            try:
                return await handler(request)
            except FrappeError as error:
                return render(error)

        return endpoint

    async def v2_create(request: Request) -> Response:
        doctype = request.path_params["doctype"]
        body = await json_body(request)
        if not isinstance(body, dict):
            raise _validation("Request body must be a JSON object")
        doc = state.insert(doctype, body)
        return await state.faults.after_save(json_response({"data": doc}))

    async def v2_get(request: Request) -> Response:
        return json_response({"data": state.get(request.path_params["doctype"], request.path_params["name"])})

    async def v1_list(request: Request) -> Response:
        doctype = request.path_params["doctype"]
        fields = json.loads(request.query_params.get("fields") or '["name"]')
        filters = json.loads(request.query_params.get("filters") or "[]")
        if isinstance(filters, dict):
            filters = [[k, "=", v] for k, v in filters.items()]
        start = int(request.query_params.get("limit_start") or 0)
        length = int(request.query_params.get("limit_page_length") or 20)
        if doctype == "Bin":
            rows = [
                {
                    "name": f"{item}-{warehouse}",
                    "item_code": item,
                    "warehouse": warehouse,
                    "actual_qty": qty,
                    "stock_uom": "Nos",
                }
                for (item, warehouse), qty in sorted(state.bins.items())
            ]
        else:
            rows = sorted(state.docs[doctype].values(), key=lambda d: d["name"])
        rows = [r for r in rows if all(_matches(r, c) for c in filters)]
        page = rows[start : start + length] if length else rows[start:]
        return json_response({"data": [{f: r.get(f) for f in fields} for r in page]})

    async def v1_get(request: Request) -> Response:
        return json_response({"data": state.get(request.path_params["doctype"], request.path_params["name"])})

    async def v1_update(request: Request) -> Response:
        body = await json_body(request)
        doc = state.update(request.path_params["doctype"], request.path_params["name"], body or {})
        return await state.faults.after_save(json_response({"data": doc}))

    async def method(request: Request) -> Response:
        path = request.path_params["method"]
        args = await json_body(request) or dict(await request.form())
        prefix = "erpnext.manufacturing.doctype.work_order.work_order."
        if path == prefix + "stop_unstop":
            result = state.stop_unstop(args.get("work_order"), args.get("status"))
        elif path == prefix + "close_work_order":
            result = state.close_work_order(args.get("work_order"), args.get("status", "Closed"))
        else:
            raise FrappeError(404, "DoesNotExistError", f"Method {path} not found")
        return await state.faults.after_save(json_response({"message": result}))

    routes = [
        Route("/api/v2/document/{doctype}", guarded(v2_create, _v2_error), methods=["POST"]),
        Route("/api/v2/document/{doctype}/{name:path}", guarded(v2_get, _v2_error), methods=["GET"]),
        Route("/api/resource/{doctype}", guarded(v1_list, _v1_error), methods=["GET"]),
        Route("/api/resource/{doctype}/{name:path}", guarded(v1_get, _v1_error), methods=["GET"]),
        Route("/api/resource/{doctype}/{name:path}", guarded(v1_update, _v1_error), methods=["PUT"]),
        Route("/api/method/{method:path}", guarded(method, _v1_error), methods=["POST"]),
    ]
    return FaultMiddleware(Starlette(routes=routes), state.faults)


class ErpNextFixtures:
    """Joins the contract suite: a fresh fake ERPNext site per test, driven over HTTP."""

    @pytest.fixture
    def site(self) -> ErpNextState:
        state = ErpNextState()
        state.seed()
        return state

    @pytest.fixture
    def erp(self, sqlite_engine: Engine, site: ErpNextState) -> Iterator[ErpUnderTest]:
        state = site
        settings = {
            "company": "Berlin GmbH",
            "warehouse": "Stores - BG",
            "quarantine_warehouse": "Quarantine - BG",
            "quality_procedure": "QP-Deviation",
            "operator": "HR-EMP-0001",
            "assets": {"CNC-07": "AST-0007"},
            "units": {"pcs": "Nos"},
            "timezone": "Europe/Berlin",
        }
        engine = sqlite_engine
        seed_plant(engine, erp=settings)
        with serve(make_app(state)) as url:

            def make(**overrides: Any) -> ErpNextErp:
                options = {"user": state.api_key, "token": state.api_secret, "timeout": 0.5, **overrides}
                return ErpNextErp(url, **options)

            yield ErpUnderTest(
                name="erpnext",
                make=make,
                settings=settings,
                engine=engine,
                count=lambda key: len(state.documents_named(document_name(key))),
                samples=samples(),
                refused=(
                    "stock_status",
                    {"action": "block", "quantity": 5000},
                    "needed in Warehouse Stores - BG",
                ),
                required_setting=("stock_status", "quarantine_warehouse"),
                bad_credentials={"token": "wrong-secret"},
                secrets=(state.api_secret,),
                faults=state.faults,
            )
