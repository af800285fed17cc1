"""A fake SAP S/4HANA speaking OData V2 under /sap/opu/odata/sap/<SERVICE>/.

What it holds to: Basic auth (401 with WWW-Authenticate); CSRF tokens handed out on a GET with
`X-CSRF-Token: Fetch`, bound to the session cookie, required on every POST/PATCH/MERGE
(403 with `x-csrf-token: Required` otherwise); ETags on production orders (from
LastChangeDateTime) with If-Match required on PATCH (428 without, 412 on a mismatch); SAP's
error body {"error": {code, message: {lang, value}, innererror: {transactionid, errordetails}}};
`{"d": {...}}` entities and `{"d": {"results": [...]}}` collections with $filter (eq/ge/...
joined by `and`), $expand, $top and $skip; /Date(ms)/ and PTxxHxxMxxS literals; the material
document deep insert with movement types 344/343/551/555 moving stock between unrestricted
(01) and blocked (07) stock, short stock answered as M7/021; function imports ReleaseOrder and
TechlyCmpltOrder; quality notifications (Q1-Q3) under API_QUALITYNOTIFICATION with the entity
and property names the adapter assumes (no public EDMX was found; see docs/erp.md), unknown
properties refused as SAP Gateway does.
"""

from __future__ import annotations

import base64
import itertools
import re
import threading
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from erp_adapters import kinds
from erp_adapters.sap_odata import SapODataErp
from tests.erp_fakes.contract import ErpUnderTest
from tests.erp_fakes.db import seed_plant
from tests.erp_fakes.samples import samples
from tests.erp_fakes.server import FaultMiddleware, Faults, json_body, json_response, serve

SESSION_COOKIE = "SAP_SESSIONID_S4H_100"
MOVEMENTS = {  # movement type -> (from stock type, to stock type); None leaves the plant
    "344": ("01", "07"),
    "343": ("07", "01"),
    "551": ("01", None),
    "555": ("07", None),
}
STOCK_NAMES = {"01": ("SL", "Unrestricted-use"), "07": ("BS", "Blocked stock")}
KEYS = {
    "MaintenanceNotification": ("MaintenanceNotification",),
    "QualityNotification": ("QualityNotification",),
    "A_MaterialDocumentHeader": ("MaterialDocumentYear", "MaterialDocument"),
    "A_ProductionOrder_2": ("ManufacturingOrder",),
    "A_ProductionOrderOperation_2": ("ManufacturingOrder", "ManufacturingOrderOperation"),
    "A_PurchaseRequisitionHeader": ("PurchaseRequisition",),
    "A_SalesOrder": ("SalesOrder",),
}


class ODataError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def date_literal(when: datetime) -> str:
    return f"/Date({int(when.timestamp() * 1000)})/"


def stamp_literal(when: datetime) -> str:
    return f"/Date({int(when.timestamp() * 1000)}+0000)/"


@dataclass
class SapState:
    user: str = "MFGOS_COMM"
    password: str = "s4-secret"
    faults: Faults = field(default_factory=Faults)
    notifications: dict[str, dict[str, Any]] = field(default_factory=dict)
    quality_notifications: dict[str, dict[str, Any]] = field(default_factory=dict)
    requisitions: dict[str, dict[str, Any]] = field(default_factory=dict)
    material_documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    stock: dict[tuple[str, str, str, str, str], float] = field(default_factory=lambda: defaultdict(float))
    sessions: dict[str, str] = field(default_factory=dict)  # session id -> CSRF token
    bump_etag_on_read: int = 0  # the next N order reads are followed by someone else's change
    csrf_fetches: int = 0
    calls: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    changed_at: datetime = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)

    def tick(self) -> datetime:
        self.changed_at += timedelta(seconds=1)
        return self.changed_at

    def seed(self) -> None:
        self.materials = {"AL-6061-BAR": ("Aluminium bar 6061", "PC"), "HOUSING-A": ("Pump housing A", "PC")}
        self.work_centers = [
            {"WorkCenter": "CNC-07", "Plant": "1010", "WorkCenterDesc": "CNC mill 7"},
            {"WorkCenter": "PRESS-02", "Plant": "1010", "WorkCenterDesc": "Press 2"},
        ]
        self.equipment = {"10000007"}
        self.sales_orders = [
            {
                "SalesOrder": "SO-9001",
                "SoldToParty": "17100001",
                "RequestedDeliveryDate": date_literal(datetime(2026, 11, 27, tzinfo=UTC)),
                "_changed": self.tick(),
            }
        ]
        self.stock[("AL-6061-BAR", "1010", "0001", "", "01")] = 1000.0
        for name, released, confirmed, center in (
            ("WO-4471", True, True, "CNC-07"),
            ("WO-4472", True, False, "PRESS-02"),
            ("WO-4480", True, True, "CNC-07"),
        ):
            self.orders[name] = {
                "ManufacturingOrder": name,
                "ProductionPlant": "1010",
                "Material": "HOUSING-A",
                "TotalQuantity": "500",
                "OrderIsReleased": released,
                "OrderIsPartiallyConfirmed": confirmed,
                "OrderIsConfirmed": False,
                "OrderIsTechnicallyCompleted": name == "WO-4480",
                "OrderIsClosed": False,
                "MfgOrderPlannedStartDate": date_literal(datetime(2026, 11, 25, tzinfo=UTC)),
                "MfgOrderPlannedStartTime": "PT07H00M00S",
                "MfgOrderPlannedEndDate": date_literal(datetime(2026, 11, 25, tzinfo=UTC)),
                "MfgOrderPlannedEndTime": "PT19H00M00S",
                "SalesOrder": "SO-9001" if name == "WO-4471" else "",
                "_changed": self.tick(),
                "_operations": [
                    {"ManufacturingOrder": name, "ManufacturingOrderOperation": "0010", "WorkCenter": center}
                ],
            }

    def etag(self, order: dict[str, Any]) -> str:
        return f"W/\"datetimeoffset'{order['_changed'].strftime('%Y-%m-%dT%H%%3A%M%%3A%S')}.0000000Z'\""

    def render_order(self, order: dict[str, Any], expand: bool) -> dict[str, Any]:
        out = {k: v for k, v in order.items() if not k.startswith("_")}
        out["LastChangeDateTime"] = stamp_literal(order["_changed"])
        out["__metadata"] = {
            "type": "API_PRODUCTION_ORDER_2_SRV.A_ProductionOrder_2Type",
            "etag": self.etag(order),
        }
        out["to_ProductionOrderOperation"] = (
            {"results": order["_operations"]}
            if expand
            else {"__deferred": {"uri": "to_ProductionOrderOperation"}}
        )
        return out

    # --- business logic ------------------------------------------------------------------

    def create_notification(self, body: dict[str, Any]) -> dict[str, Any]:
        for name in ("NotificationText", "NotificationType", "MaintenancePlanningPlant", "TechnicalObject"):
            if not body.get(name):
                raise ODataError(400, "IWO_BAPI2/001", f"Enter a value for field {name}")
        if len(body["NotificationText"]) > 40:
            raise ODataError(
                400,
                "/IWBEP/CM_MGW_RT/022",
                "Property NotificationText has invalid value: longer than 40 characters",
            )
        if len(body.get("MaintNotifExtReferenceNumber") or "") > 20:
            raise ODataError(
                400,
                "/IWBEP/CM_MGW_RT/022",
                "Property MaintNotifExtReferenceNumber has invalid value: longer than 20 characters",
            )
        if body["TechnicalObject"] not in self.equipment:
            raise ODataError(400, "IM/101", f"Equipment {body['TechnicalObject']} does not exist")
        number = f"{10000000 + next(self.numbers)}"
        saved = {**body, "MaintenanceNotification": number}
        self.notifications[number] = saved
        return saved

    def create_requisition(self, body: dict[str, Any]) -> dict[str, Any]:
        """API_PURCHASEREQ_PROCESS_SRV: a purchase requisition with its items (deep insert)."""
        kind = body.get("PurchaseRequisitionType")
        if kind not in ("NB", "UB"):
            raise ODataError(400, "06/010", f"Document type {kind} is not defined for purchase requisitions")
        items = (body.get("to_PurchaseReqnItem") or {}).get("results") or []
        if not items:
            raise ODataError(400, "06/100", "Purchase requisition has no items")
        for item in items:
            if item.get("Material") not in self.materials:
                raise ODataError(400, "M3/305", f"Material {item.get('Material')} does not exist")
            if item.get("Plant") != "1010" or not item.get("DeliveryDate"):
                raise ODataError(400, "06/101", "Plant and delivery date are mandatory")
            if float(item.get("RequestedQuantity") or 0) <= 0:
                raise ODataError(400, "06/102", "Enter a quantity")
        number = f"{10000000 + len(self.requisitions) + 1}"
        saved = {**body, "PurchaseRequisition": number, "_changed": self.tick()}
        self.requisitions[number] = saved
        return {k: v for k, v in saved.items() if not k.startswith("_")}

    def patch_sales_order(self, name: str, if_match: str | None, body: dict[str, Any]) -> None:
        order = next((o for o in self.sales_orders if o["SalesOrder"] == name), None)
        if order is None:
            raise ODataError(404, "/IWBEP/CM_MGW_RT/020", f"Sales order {name} not found")
        if not if_match:
            raise ODataError(428, "/IWBEP/CM_MGW_RT/176", "Precondition required: send If-Match")
        if set(body) - {"RequestedDeliveryDate"}:
            raise ODataError(400, "/IWBEP/CM_MGW_RT/022", "Only RequestedDeliveryDate can be changed here")
        order.update(body)
        order["_changed"] = self.tick()

    def create_quality_notification(self, body: dict[str, Any]) -> dict[str, Any]:
        """API_QUALITYNOTIFICATION as assumed in erp_adapters/sap_odata.py (QUALITY_FIELDS)."""
        known = {
            "NotificationType",
            "NotificationText",
            "NotificationLongText",
            "Plant",
            "Material",
            "ManufacturingOrder",
            "QltyNotifExtReferenceNumber",
        }
        unknown = sorted(set(body) - known)
        if unknown:
            raise ODataError(
                400, "/IWBEP/CM_MGW_RT/021", f"Property '{unknown[0]}' is invalid for QualityNotificationType"
            )
        for name in ("NotificationType", "NotificationText", "Plant"):
            if not body.get(name):
                raise ODataError(400, "QM/010", f"Enter a value for field {name}")
        if body["NotificationType"] not in ("Q1", "Q2", "Q3"):
            raise ODataError(400, "QM/023", f"Notification type {body['NotificationType']} is not defined")
        for name, limit in (("NotificationText", 40), ("QltyNotifExtReferenceNumber", 20)):
            if len(body.get(name) or "") > limit:
                raise ODataError(
                    400,
                    "/IWBEP/CM_MGW_RT/022",
                    f"Property {name} has invalid value: longer than {limit} characters",
                )
        if body["Plant"] != "1010":
            raise ODataError(400, "QM/031", f"Plant {body['Plant']} does not exist")
        if body.get("Material") and body["Material"] not in self.materials:
            raise ODataError(400, "M3/305", f"Material {body['Material']} does not exist")
        if body.get("ManufacturingOrder") and body["ManufacturingOrder"] not in self.orders:
            raise ODataError(400, "CO/027", f"Order {body['ManufacturingOrder']} does not exist")
        number = f"{20000000 + next(self.numbers)}"
        saved = {**body, "QualityNotification": number}
        self.quality_notifications[number] = saved
        return saved

    def post_material_document(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("GoodsMovementCode") not in ("03", "04"):
            raise ODataError(
                400, "M7/001", f"Goods movement code {body.get('GoodsMovementCode')} is not supported"
            )
        if len(body.get("MaterialDocumentHeaderText") or "") > 25:
            raise ODataError(
                400,
                "/IWBEP/CM_MGW_RT/022",
                "Property MaterialDocumentHeaderText has invalid value: longer than 25 characters",
            )
        items = (body.get("to_MaterialDocumentItem") or {}).get("results")
        if not items:
            raise ODataError(400, "M7/021", "No items transferred")
        changes: list[tuple[tuple[str, str, str, str, str], float]] = []
        for item in items:
            material, plant, sloc = item.get("Material"), item.get("Plant"), item.get("StorageLocation")
            if material not in self.materials:
                raise ODataError(400, "M7/001", f"Material {material} does not exist")
            if plant != "1010" or sloc != "0001":
                raise ODataError(400, "M7/001", f"Storage location {plant} {sloc} does not exist")
            movement = MOVEMENTS.get(item.get("GoodsMovementType"))
            if movement is None:
                raise ODataError(
                    400, "M7/002", f"Movement type {item.get('GoodsMovementType')} is not allowed here"
                )
            quantity = float(item.get("QuantityInEntryUnit") or 0)
            unit = self.materials[material][1]
            if item.get("EntryUnit") != unit:
                raise ODataError(
                    400,
                    "M7/046",
                    f"Unit of entry {item.get('EntryUnit')} is not defined for material {material}",
                )
            source, target = movement
            batch = item.get("Batch") or ""
            available = self.stock[(material, plant, sloc, batch, source)]
            if available < quantity:
                short, long_name = STOCK_NAMES[source]
                raise ODataError(
                    400,
                    "M7/021",
                    f"Deficit of {short} {long_name} {quantity - available:g} {unit} : {material} {plant} {sloc}",
                )
            changes.append(((material, plant, sloc, batch, source), -quantity))
            if target:
                changes.append(((material, plant, sloc, batch, target), quantity))
        for stock_key, delta in changes:
            self.stock[stock_key] += delta
        number = f"{4900000000 + next(self.numbers)}"
        saved = {**body, "MaterialDocument": number, "MaterialDocumentYear": "2026"}
        self.material_documents[number] = saved
        return saved

    def order(self, name: str) -> dict[str, Any]:
        if name not in self.orders:
            raise ODataError(
                404,
                "/IWBEP/CM_MGW_RT/020",
                f"Resource not found for segment 'A_ProductionOrder_2Type' with key {name}",
            )
        return self.orders[name]

    def call_function(self, function: str, params: dict[str, str]) -> dict[str, Any]:
        name = (params.get("ManufacturingOrder") or "").strip("'")
        order = self.order(name)
        if function == "ReleaseOrder":
            if order["OrderIsReleased"]:
                raise ODataError(400, "CO/093", f"Order {name} is already released")
            order["OrderIsReleased"] = True
        elif function == "TechlyCmpltOrder":
            if order["OrderIsTechnicallyCompleted"]:
                raise ODataError(400, "CO/094", f"Order {name} is already technically completed")
            order["OrderIsTechnicallyCompleted"] = True
        else:
            raise ODataError(404, "/IWBEP/CM_MGW_RT/021", f"Function import {function} not found")
        order["_changed"] = self.tick()
        return order

    def patch_order(self, name: str, if_match: str | None, body: dict[str, Any]) -> None:
        order = self.order(name)
        if not if_match:
            raise ODataError(428, "/IWBEP/CM_MGW_RT/176", "Precondition required: send If-Match")
        if if_match != self.etag(order):
            raise ODataError(
                412, "/IWBEP/CM_MGW_RT/098", "The entity has been changed by another user; read it again"
            )
        allowed = {
            "MfgOrderPlannedStartDate",
            "MfgOrderPlannedStartTime",
            "MfgOrderPlannedEndDate",
            "MfgOrderPlannedEndTime",
            "TotalQuantity",
        }
        if set(body) - allowed:
            raise ODataError(
                400, "/IWBEP/CM_MGW_RT/022", f"Property {sorted(set(body) - allowed)[0]} cannot be changed"
            )
        order.update(body)
        order["_changed"] = self.tick()

    def create_order(self, body: dict[str, Any]) -> dict[str, Any]:
        """A production order with an external number (`ManufacturingOrder` given); its operations
        come from the material's routing: here, those of another order of the same material."""
        name = str(body.get("ManufacturingOrder") or "")
        if not name or name in self.orders:
            raise ODataError(400, "CO/017", f"Order number {name or '(none)'} is not free")
        if body.get("Material") not in self.materials:
            raise ODataError(400, "CO/016", f"Material {body.get('Material')} does not exist")
        routing = next((o["_operations"] for o in self.orders.values() if o["Material"] == body["Material"]), [])
        order = {
            "ProductionPlant": "1010", "OrderIsReleased": False, "OrderIsPartiallyConfirmed": False,
            "OrderIsConfirmed": False, "OrderIsTechnicallyCompleted": False, "OrderIsClosed": False,
            **{k: v for k, v in body.items() if not k.startswith("_")},
            "_changed": self.tick(),
            "_operations": [{**op, "ManufacturingOrder": name} for op in routing],
        }
        self.orders[name] = order
        return order

    def patch_operation(self, keys: dict[str, str], body: dict[str, Any]) -> None:
        order = self.order(keys.get("ManufacturingOrder", ""))
        operation = next((op for op in order["_operations"]
                          if op["ManufacturingOrderOperation"] == keys.get("ManufacturingOrderOperation")), None)
        if operation is None:
            raise ODataError(404, "/IWBEP/CM_MGW_RT/020", "Resource not found for segment 'A_ProductionOrderOperation_2'")
        if set(body) - {"WorkCenter"}:
            raise ODataError(400, "/IWBEP/CM_MGW_RT/022", f"Property {sorted(set(body) - {'WorkCenter'})[0]} cannot be changed")
        if not any(w["WorkCenter"] == body.get("WorkCenter") for w in self.work_centers):
            raise ODataError(400, "CR/010", f"Work center {body.get('WorkCenter')} does not exist in plant 1010")
        operation.update(body)
        order["_changed"] = self.tick()

    def stock_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "Material": m,
                "Plant": p,
                "StorageLocation": s,
                "Batch": b,
                "InventoryStockType": t,
                "MaterialBaseUnit": self.materials[m][1],
                "MatlWrhsStkQtyInMatlBaseUnit": f"{q:g}",
            }
            for (m, p, s, b, t), q in sorted(self.stock.items())
        ]


# --- OData plumbing ------------------------------------------------------------------------

CONDITION = re.compile(r"(\w+) (eq|ne|ge|gt|le|lt) (datetimeoffset'[^']*'|'(?:[^']|'')*'|true|false|[\d.]+)")


def parse_filter(text: str | None) -> list[tuple[str, str, Any]]:
    conditions = []
    for part in re.split(r"\s+and\s+", text or ""):
        if not part.strip():
            continue
        part = part.strip()
        if part.startswith("(") and part.endswith(")"):  # (Material eq 'A' or Material eq 'B'): one of
            alternatives = [
                condition for alternative in re.split(r"\s+or\s+", part[1:-1]) for condition in parse_filter(alternative)
            ]
            if len({name for name, _op, _value in alternatives}) != 1 or any(op != "eq" for _n, op, _v in alternatives):
                raise ODataError(400, "/IWBEP/CM_MGW_RT/004", f"Invalid filter expression: {part}")
            conditions.append((alternatives[0][0], "in", [value for _n, _op, value in alternatives]))
            continue
        found = CONDITION.fullmatch(part)
        if not found:
            raise ODataError(400, "/IWBEP/CM_MGW_RT/004", f"Invalid filter expression: {part}")
        name, op, raw = found.groups()
        if raw.startswith("datetimeoffset'"):
            value: Any = datetime.fromisoformat(raw[len("datetimeoffset'") : -1].replace("Z", "+00:00"))
        elif raw.startswith("'"):
            value = raw[1:-1].replace("''", "'")
        elif raw in ("true", "false"):
            value = raw == "true"
        else:
            value = float(raw)
        conditions.append((name, op, value))
    return conditions


def keep(row: dict[str, Any], conditions: list[tuple[str, str, Any]]) -> bool:
    for name, op, value in conditions:
        actual = row.get("_changed") if name == "LastChangeDateTime" else row.get(name)
        if actual is None:
            return False
        if op == "in":
            if actual not in value:
                return False
            continue
        if not {
            "eq": actual == value,
            "ne": actual != value,
            "ge": actual >= value,
            "gt": actual > value,
            "le": actual <= value,
            "lt": actual < value,
        }[op]:
            return False
    return True


def parse_key(segment: str) -> tuple[str, dict[str, str]]:
    found = re.fullmatch(r"(\w+)(?:\((.*)\))?", segment)
    if not found:
        raise ODataError(404, "/IWBEP/CM_MGW_RT/020", f"Resource not found for segment {segment}")
    entity, raw = found.groups()
    keys: dict[str, str] = {}
    if raw:
        for part in re.findall(r"(?:(\w+)=)?'((?:[^']|'')*)'", raw):
            keys[part[0] or KEYS.get(entity, ("key",))[0]] = part[1].replace("''", "'")
    return entity, keys


def error_response(error: ODataError) -> Response:
    body = {
        "error": {
            "code": error.code,
            "message": {"lang": "en", "value": error.message},
            "innererror": {
                "transactionid": uuid.uuid4().hex.upper(),
                "errordetails": [
                    {"code": error.code, "message": error.message, "severity": "error", "target": ""}
                ],
            },
        }
    }
    return json_response(body, error.status)


def make_app(state: SapState) -> Any:
    def authorised(request: Request) -> bool:
        expected = base64.b64encode(f"{state.user}:{state.password}".encode()).decode()
        return request.headers.get("authorization") == f"Basic {expected}"

    def refuse() -> Response:
        return PlainTextResponse(
            "<html><body>Logon failed</body></html>",
            401,
            headers={"WWW-Authenticate": 'Basic realm="SAP NetWeaver Application Server [S4H/100]"'},
        )

    def session_of(request: Request) -> str | None:
        sid = request.cookies.get(SESSION_COOKIE)
        return sid if sid in state.sessions else None

    async def service_root(request: Request) -> Response:
        if not authorised(request):
            return refuse()
        headers: dict[str, str] = {}
        response = json_response({"d": {"EntitySets": sorted(KEYS)}})
        if request.headers.get("x-csrf-token", "").lower() == "fetch":
            with state.lock:
                state.csrf_fetches += 1
                sid = session_of(request) or uuid.uuid4().hex
                token = state.sessions.get(sid) or base64.b64encode(uuid.uuid4().bytes).decode()
                state.sessions[sid] = token
            headers["x-csrf-token"] = token
            response = json_response({"d": {"EntitySets": sorted(KEYS)}}, headers=headers)
            response.set_cookie(SESSION_COOKIE, sid, path="/", httponly=True)
        return response

    async def resource(request: Request) -> Response:
        if not authorised(request):
            return refuse()
        service, path = request.path_params["service"], request.path_params["resource"]
        method = request.method
        if method in ("POST", "PATCH", "MERGE", "PUT", "DELETE"):
            sid = session_of(request)
            if sid is None or request.headers.get("x-csrf-token") != state.sessions[sid]:
                return PlainTextResponse(
                    "CSRF token validation failed", 403, headers={"x-csrf-token": "Required"}
                )
        try:
            entity, keys = parse_key(path)
            state.calls.append(f"{method} {service}/{entity}")
            if method == "GET":
                with state.lock:
                    return read(service, entity, keys, request)
            if method == "POST":
                body = await json_body(request) if entity in KEYS else {}
                with state.lock:
                    saved = create(service, entity, body or {}, dict(request.query_params))
                return await state.faults.after_save(saved)
            if method in ("PATCH", "MERGE") and entity == "A_ProductionOrder_2":
                body = await json_body(request) or {}
                with state.lock:
                    state.patch_order(keys["ManufacturingOrder"], request.headers.get("if-match"), body)
                return await state.faults.after_save(Response(status_code=204))
            if method in ("PATCH", "MERGE") and entity == "A_ProductionOrderOperation_2":
                body = await json_body(request) or {}
                with state.lock:
                    state.patch_operation(keys, body)
                return await state.faults.after_save(Response(status_code=204))
            if method in ("PATCH", "MERGE") and entity == "A_SalesOrder":
                body = await json_body(request) or {}
                with state.lock:
                    state.patch_sales_order(keys["SalesOrder"], request.headers.get("if-match"), body)
                return await state.faults.after_save(Response(status_code=204))
            raise ODataError(405, "/IWBEP/CM_MGW_RT/005", f"Method {method} not allowed on {entity}")
        except ODataError as error:
            return error_response(error)

    def read(service: str, entity: str, keys: dict[str, str], request: Request) -> Response:
        query = request.query_params
        expand = "to_ProductionOrderOperation" in (query.get("$expand") or "")
        if entity == "A_ProductionOrder_2" and keys:
            order = state.order(keys["ManufacturingOrder"])
            rendered = state.render_order(order, expand)
            if state.bump_etag_on_read > 0:
                state.bump_etag_on_read -= 1
                order["_changed"] = state.tick()  # another user saves right after our read
            return json_response({"d": rendered}, headers={"ETag": rendered["__metadata"]["etag"]})
        rows: list[dict[str, Any]]
        if entity == "A_ProductionOrder_2":
            rows = [dict(o) for o in state.orders.values()]
        elif entity == "MaintenanceNotification":
            rows = list(state.notifications.values())
        elif entity == "QualityNotification" and service == "API_QUALITYNOTIFICATION":
            rows = list(state.quality_notifications.values())
        elif entity == "A_MaterialDocumentHeader":
            rows = list(state.material_documents.values())
        elif entity == "A_WorkCenters":
            rows = state.work_centers
        elif entity == "A_Product":
            rows = [
                {
                    "Product": p,
                    "BaseUnit": unit,
                    "to_Description": {
                        "results": [{"Product": p, "Language": "EN", "ProductDescription": name}]
                    },
                }
                for p, (name, unit) in state.materials.items()
            ]
        elif entity == "A_SalesOrder":
            rows = state.sales_orders
        elif entity == "A_PurchaseRequisitionHeader":
            rows = list(state.requisitions.values())
        elif entity == "A_MatlStkInAcctMod":
            rows = state.stock_rows()
        else:
            raise ODataError(404, "/IWBEP/CM_MGW_RT/020", f"Resource not found for segment '{entity}'")
        rows = [r for r in rows if keep(r, parse_filter(query.get("$filter")))]
        skip, top = int(query.get("$skip") or 0), query.get("$top")
        rows = rows[skip : skip + int(top)] if top else rows[skip:]
        if entity == "A_ProductionOrder_2":
            rows = [state.render_order(state.orders[r["ManufacturingOrder"]], expand) for r in rows]
        else:
            rows = [{k: (stamp_literal(v) if k == "_changed" else v) for k, v in r.items()} for r in rows]
            rows = [{("LastChangeDateTime" if k == "_changed" else k): v for k, v in r.items()} for r in rows]
        return json_response({"d": {"results": rows}})

    def create(service: str, entity: str, body: dict[str, Any], params: dict[str, str]) -> Response:
        if entity == "MaintenanceNotification":
            saved = state.create_notification(body)
        elif entity == "QualityNotification" and service == "API_QUALITYNOTIFICATION":
            saved = state.create_quality_notification(body)
        elif entity == "A_MaterialDocumentHeader":
            saved = state.post_material_document(body)
        elif entity == "A_PurchaseRequisitionHeader":
            saved = state.create_requisition(body)
        elif entity == "A_ProductionOrder_2":
            saved = state.render_order(state.create_order(body), False)
        elif service == "API_PRODUCTION_ORDER_2_SRV":
            saved = state.render_order(state.call_function(entity, params), False)
        else:
            raise ODataError(405, "/IWBEP/CM_MGW_RT/005", f"Create not supported on {entity}")
        return json_response({"d": saved}, 201 if entity in KEYS else 200)

    routes = [
        Route("/sap/opu/odata/sap/{service}/", service_root, methods=["GET"]),
        Route(
            "/sap/opu/odata/sap/{service}/{resource:path}",
            resource,
            methods=["GET", "POST", "PATCH", "MERGE", "PUT", "DELETE"],
        ),
    ]
    return FaultMiddleware(Starlette(routes=routes), state.faults)


SETTINGS = {
    "plant": "1010",
    "storage_location": "0001",
    "units": {"pcs": "PC"},
    "equipment": {"CNC-07": "10000007"},
    "timezone": "Europe/Berlin",
}


class SapFixtures:
    """Joins the contract suite: a fresh fake S/4HANA per test."""

    @pytest.fixture
    def sap(self) -> SapState:
        state = SapState()
        state.seed()
        return state

    @pytest.fixture
    def erp(self, sqlite_engine: Engine, sap: SapState) -> Iterator[ErpUnderTest]:
        settings = dict(SETTINGS)
        engine = sqlite_engine
        seed_plant(engine, erp=settings)
        with serve(make_app(sap)) as url:

            def make(**overrides: Any) -> SapODataErp:
                options = {"user": sap.user, "token": sap.password, "timeout": 0.5, **overrides}
                return SapODataErp(f"{url}/?sap-client=100", **options)

            def count(key: str) -> int:
                notes = [
                    n
                    for n in sap.notifications.values()
                    if n.get("MaintNotifExtReferenceNumber") == kinds.short_reference(key, 20)
                ]
                documents = [
                    d
                    for d in sap.material_documents.values()
                    if d.get("MaterialDocumentHeaderText") == kinds.short_reference(key, 25)
                ]
                quality = [
                    q
                    for q in sap.quality_notifications.values()
                    if q.get("QltyNotifExtReferenceNumber") == kinds.short_reference(key, 20)
                ]
                requisitions = [
                    r
                    for r in sap.requisitions.values()
                    if r.get("PurReqnDescription") == kinds.short_reference(key, 20)
                ]
                return len(notes) + len(documents) + len(quality) + len(requisitions)

            sample = samples()
            sample["production_order_status"] = {
                "work_order": "WO-4471",
                "action": "complete",
                "reason": "done early",
            }
            yield ErpUnderTest(
                name="sap",
                make=make,
                settings=settings,
                engine=engine,
                count=count,
                samples=sample,
                refused=(
                    "stock_status",
                    {"action": "block", "quantity": 5000},
                    "Deficit of SL Unrestricted-use 4000 PC : AL-6061-BAR 1010 0001 (M7/021)",
                ),
                required_setting=("stock_status", "storage_location"),
                bad_credentials={"token": "wrong-password"},
                secrets=(sap.password,),
                faults=sap.faults,
                customer="17100001",
            )
