"""SAP S/4HANA over OData V2 (`/sap/opu/odata/sap/<SERVICE>/`), Basic auth.

Protocol duties the base does not know: a CSRF token fetched with `X-CSRF-Token: Fetch` and
sent (with the session cookies) on every change, fetched again once when SAP answers
403 `x-csrf-token: Required`; optimistic locking with the ETag and `If-Match`, read again
when SAP answers 412; SAP's error body `error.message.value` + `innererror.errordetails`.

Idempotency: maintenance notifications carry the key in MaintNotifExtReferenceNumber
(20 characters), material documents in MaterialDocumentHeaderText (25 characters), quality
notifications (non-conformances, and holds) in their external reference (20); all are
searched before posting, except on the outbox's first attempt. Order status and reschedule
are idempotent by state. MFGOS_ERP_URL
is the system root, optionally with the client: `https://s4.example.com/?sap-client=100`.
Mapping table: docs/erp.md.
"""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import httpx

from erp_adapters import kinds
from erp_adapters.base import (
    MAX_STOCK_LINES,
    AuthFailed,
    ErpCustomerOrder,
    ErpError,
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

ROOT = "/sap/opu/odata/sap"
NOTIFICATIONS = f"{ROOT}/API_MAINTNOTIFICATION"
QUALITY_NOTIFICATIONS = f"{ROOT}/API_QUALITYNOTIFICATION"
MATERIAL_DOCUMENTS = f"{ROOT}/API_MATERIAL_DOCUMENT_SRV"
PRODUCTION_ORDERS = f"{ROOT}/API_PRODUCTION_ORDER_2_SRV"
# The key of A_ProductionOrderOperation_2, as far as the order's operations carry it.
OPERATION_KEYS = ("ManufacturingOrder", "ManufacturingOrderSequence", "ManufacturingOrderOperation")
WORK_CENTERS = f"{ROOT}/API_WORK_CENTERS"
PRODUCTS = f"{ROOT}/API_PRODUCT_SRV"
SALES_ORDERS = f"{ROOT}/API_SALES_ORDER_SRV"
STOCK = f"{ROOT}/API_MATERIAL_STOCK_SRV"
REQUISITIONS = f"{ROOT}/API_PURCHASEREQ_PROCESS_SRV"
# Purchase requisition document types: NB (standard, from a supplier) to expedite, UB (stock
# transport) to transfer from another plant or storage location; erp.requisition_types renames them.
REQUISITION_TYPES = {"expedite": "NB", "transfer": "UB"}

PRIORITY = {"critical": "1", "high": "2", "medium": "3", "low": "4"}
MOVEMENT_TYPES = {"block": "344", "release": "343", "scrap_blocked": "555", "scrap_unrestricted": "551"}
ORDER_FUNCTIONS = {"release": "ReleaseOrder", "complete": "TechlyCmpltOrder"}
ORDER_DONE_FLAG = {"release": "OrderIsReleased", "complete": "OrderIsTechnicallyCompleted", "hold": "OrderIsLocked"}
# API_QUALITYNOTIFICATION's entity set and property names. No public EDMX of it was found, so
# these are assumed (after API_MAINTNOTIFICATION's, which shares the notification header);
# the plant file's erp.quality_notification_fields renames any of them once the system's
# $metadata has been read. docs/erp.md lists what is verified and what is not.
QUALITY_FIELDS = {
    "entity": "QualityNotification",
    "number": "QualityNotification",
    "type": "NotificationType",
    "text": "NotificationText",
    "long_text": "NotificationLongText",
    "plant": "Plant",
    "material": "Material",
    "order": "ManufacturingOrder",
    "reference": "QltyNotifExtReferenceNumber",
}
BLOCKED_STOCK_TYPES = ("07",)
PAGE = 500


class _CsrfRequired(ErpError):
    """403 with `x-csrf-token: Required`: the token is missing or stale."""


class _EtagMismatch(ErpError):
    """412: someone changed the entity since we read its ETag."""


def odata_date(when: datetime) -> str:
    """Edm.DateTime in OData V2 JSON: /Date(<ms since epoch>)/ at midnight UTC of the date."""
    midnight = datetime(when.year, when.month, when.day, tzinfo=UTC)
    return f"/Date({int(midnight.timestamp() * 1000)})/"


def odata_time(when: datetime) -> str:
    return f"PT{when.hour:02d}H{when.minute:02d}M{when.second:02d}S"


def refuse_finished(order: dict[str, Any], words: str) -> None:
    """A closed or technically completed order: holding, releasing or rescheduling it would
    change nothing (a release of a closed order reads `OrderIsReleased`), so it is refused."""
    for flag, state in (("OrderIsClosed", "closed"), ("OrderIsTechnicallyCompleted", "technically completed")):
        if order.get(flag):
            raise Rejected(f"SAP production order {order.get('ManufacturingOrder')} is {state}: it cannot be {words}")


def parse_odata_date(value: Any) -> datetime | None:
    found = re.match(r"/Date\((-?\d+)([+-]\d{4})?\)/", str(value or ""))
    return datetime.fromtimestamp(int(found.group(1)) / 1000, tz=UTC) if found else None


def parse_odata_time(value: Any) -> timedelta:
    found = re.match(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?", str(value or ""))
    if not found:
        return timedelta(0)
    hours, minutes, seconds = (int(part or 0) for part in found.groups())
    return timedelta(hours=hours, minutes=minutes, seconds=seconds)


def literal(value: str) -> str:
    """An OData string literal."""
    return "'" + value.replace("'", "''") + "'"


class SapODataErp(HttpErpAdapter):
    """S/4HANA (on-premise or cloud communication arrangement) with the standard APIs active."""

    name: ClassVar[str] = "sap"

    def __init__(self, base_url: str, *, now: Callable[[], datetime] | None = None, **kwargs: Any) -> None:
        parts = urlsplit(base_url or "")
        self.client_params = {k: v[0] for k, v in parse_qs(parts.query).items() if k == "sap-client"}
        super().__init__(urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")), **kwargs)
        if not self.user or not self._token:
            raise ValueError(
                "sap: set MFGOS_ERP_USER and MFGOS_ERP_TOKEN (the communication user and its password)"
            )
        self.now = now or (lambda: datetime.now(UTC))
        self._csrf: dict[str, str] = {}
        self._csrf_lock = asyncio.Lock()

    def auth_headers(self) -> dict[str, str]:
        credentials = base64.b64encode(f"{self.user}:{self._token}".encode()).decode()
        return {"Authorization": f"Basic {credentials}"}

    def error_message(self, response: httpx.Response) -> str:
        try:
            error = response.json().get("error") or {}
        except (ValueError, AttributeError):
            return super().error_message(response)
        message = error.get("message")
        text = message.get("value") if isinstance(message, dict) else message
        parts = [str(text)] if text else []
        for detail in (error.get("innererror") or {}).get("errordetails") or []:
            detail_text = detail.get("message")
            if detail_text and detail_text not in parts and detail.get("severity", "error") == "error":
                parts.append(str(detail_text))
        code = error.get("code")
        return (f"{'; '.join(parts)} ({code})" if code else "; ".join(parts)) or super().error_message(
            response
        )

    def error_for(self, response: httpx.Response) -> ErpError:
        if response.status_code == 403 and response.headers.get("x-csrf-token", "").lower() == "required":
            return _CsrfRequired("SAP asks for a fresh CSRF token")
        if response.status_code == 412:
            return _EtagMismatch(self.error_message(response))
        if response.status_code == 428:
            return Rejected(f"SAP requires If-Match on this change: {self.error_message(response)}")
        return super().error_for(response)

    # --- protocol helpers --------------------------------------------------------------------

    async def _get(
        self, path: str, params: dict[str, Any] | None = None, allow: tuple[int, ...] = ()
    ) -> httpx.Response:
        return await self.request(
            "GET", path, params={**self.client_params, "$format": "json", **(params or {})}, allow=allow
        )

    async def _token_for(self, service: str, stale: str | None = None) -> str:
        async with self._csrf_lock:
            if service not in self._csrf or self._csrf[service] == stale:
                response = await self.request(
                    "GET",
                    f"{service}/",
                    params={**self.client_params, "$format": "json"},
                    headers={"X-CSRF-Token": "Fetch"},
                )
                token = response.headers.get("x-csrf-token")
                if not token:
                    raise AuthFailed(
                        f"sap: {service} handed out no CSRF token (check the communication user's authorisations)"
                    )
                self._csrf[service] = token
            return self._csrf[service]

    async def _change(
        self,
        method: str,
        service: str,
        path: str,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
    ) -> httpx.Response:
        """A modifying request with the CSRF token, fetched once more if SAP calls it stale."""
        token = await self._token_for(service)
        for attempt in (1, 2):
            try:
                return await self.request(
                    method,
                    f"{service}/{path}",
                    json=json,
                    params={**self.client_params, **(params or {})},
                    headers={"X-CSRF-Token": token, **(headers or {})},
                )
            except _CsrfRequired:
                if attempt == 2:
                    raise AuthFailed(
                        "sap: SAP rejects every CSRF token we fetch (session or authorisation problem)"
                    ) from None
                token = await self._token_for(service, stale=token)
        raise AssertionError("unreachable")

    async def _collection(
        self, service: str, entity: str, params: dict[str, Any], cap: int | None = None
    ) -> list[dict[str, Any]]:
        """Every entity of a collection, page by page; more than `cap` is `Unavailable` (a service
        that ignores `$skip` would otherwise page forever)."""
        rows: list[dict[str, Any]] = []
        while True:
            if cap is not None and len(rows) > cap:
                raise Unavailable(f"sap: the ERP answered more than {cap} {entity} entities")
            body = (
                await self._get(f"{service}/{entity}", {**params, "$top": PAGE, "$skip": len(rows)})
            ).json()
            batch = (body.get("d") or {}).get("results") or []
            rows.extend(batch)
            if len(batch) < PAGE:
                return rows

    def _local(self, when: datetime, settings: dict[str, Any]) -> datetime:
        return when.astimezone(ZoneInfo(settings.get("timezone") or "UTC"))

    def _from_local(self, date: Any, time: Any, settings: dict[str, Any]) -> datetime | None:
        day = parse_odata_date(date)
        if day is None:
            return None
        naive = day.replace(tzinfo=None) + parse_odata_time(time)
        return naive.replace(tzinfo=ZoneInfo(settings.get("timezone") or "UTC")).astimezone(UTC)

    # --- posting -----------------------------------------------------------------------------

    async def post(self, transaction: Transaction) -> str:
        kinds.validate(transaction.kind, transaction.fields)
        fields, settings, key = transaction.fields, transaction.plant_settings, transaction.idempotency_key
        fresh = transaction.first_attempt
        if transaction.kind == "maintenance_request":
            down, _up = kinds.downtime_window(transaction, self.now)
            return await self._notification(fields, settings, key, fresh, down)
        if transaction.kind == "stock_status":
            return await self._goods_movement(fields, settings, key, fresh, decision_time(transaction, self.now))
        if transaction.kind == "nonconformance":
            return await self._nonconformance(fields, settings, key, fresh)
        if transaction.kind == "material_request":
            return await self._requisition(fields, settings, key, fresh)
        if transaction.kind == "customer_order_date":
            return await self._delivery_date(fields, settings)
        if transaction.kind == "production_order_status":
            return await self._order_status(fields, settings, key, fresh)
        if transaction.kind == "production_order_split":
            return await self._split(fields, settings)
        return await self._reschedule(fields, settings)

    async def lookup(self, transaction: Transaction) -> str | None:
        """Only the document this transaction creates: a maintenance notification, a material
        document, or a quality notification (a non-conformance, or a hold without a function
        import); another kind carrying the same reference is not ours to adopt."""
        key, settings = transaction.idempotency_key, transaction.plant_settings
        if transaction.kind == "maintenance_request":
            return await self._find_notification(kinds.short_reference(key, 20))
        if transaction.kind == "stock_status":
            return await self._find_material_document(kinds.short_reference(key, 25))
        if transaction.kind == "material_request":
            return await self._find_requisition(kinds.short_reference(key, 20))
        if transaction.kind == "production_order_split":
            return await self._split_order(transaction.fields, settings)
        quality = transaction.kind == "nonconformance" or (
            transaction.kind == "production_order_status"
            and transaction.fields.get("action") == "hold"
            and not (settings.get("order_functions") or {}).get("hold")
        )
        if not quality:
            return None  # status changes by function import and reschedules: idempotent by state
        names = {**QUALITY_FIELDS, **(settings.get("quality_notification_fields") or {})}
        try:
            return await self._find_quality_notification(kinds.short_reference(key, 20), names)
        except Rejected:
            return None  # API_QUALITYNOTIFICATION not active here: nothing of ours can be there

    async def _find_notification(self, reference: str) -> str | None:
        params = {
            "$filter": f"MaintNotifExtReferenceNumber eq {literal(reference)}",
            "$select": "MaintenanceNotification",
        }
        rows = (await self._get(f"{NOTIFICATIONS}/MaintenanceNotification", params)).json()["d"]["results"]
        return str(rows[0]["MaintenanceNotification"]) if rows else None

    async def _find_material_document(self, header_text: str) -> str | None:
        params = {
            "$filter": f"MaterialDocumentHeaderText eq {literal(header_text)}",
            "$select": "MaterialDocument,MaterialDocumentYear",
        }
        rows = (await self._get(f"{MATERIAL_DOCUMENTS}/A_MaterialDocumentHeader", params)).json()["d"][
            "results"
        ]
        return f"{rows[0]['MaterialDocument']}/{rows[0]['MaterialDocumentYear']}" if rows else None

    async def _find_quality_notification(self, reference: str, names: dict[str, str]) -> str | None:
        params = {"$filter": f"{names['reference']} eq {literal(reference)}", "$select": names["number"]}
        rows = (await self._get(f"{QUALITY_NOTIFICATIONS}/{names['entity']}", params)).json()["d"]["results"]
        return str(rows[0][names["number"]]) if rows else None

    async def _quality_notification(
        self,
        settings: dict[str, Any],
        key: str,
        fresh: bool,
        text: str,
        details: list[str],
        values: dict[str, Any],
    ) -> str:
        """A quality notification (SAP QM), found by the key in its external reference before
        posting. `values` are by role (material, order), see QUALITY_FIELDS."""
        plant = require_setting(settings, "plant", "on every quality notification")
        names = {**QUALITY_FIELDS, **(settings.get("quality_notification_fields") or {})}
        reference = kinds.short_reference(key, 20)
        existing = None if fresh else await self._find_quality_notification(reference, names)
        if existing:
            return existing
        body: dict[str, Any] = {
            names["type"]: settings.get("quality_notification_type", "Q3"),
            names["text"]: text[:40],
            names["long_text"]: "\n".join(details),
            names["plant"]: plant,
            names["reference"]: reference,
        }
        body.update({names[role]: value for role, value in values.items() if value not in (None, "")})
        created = await self._change("POST", QUALITY_NOTIFICATIONS, names["entity"], json=body)
        return str(created.json()["d"][names["number"]])

    async def _nonconformance(self, fields: dict[str, Any], settings: dict[str, Any], key: str, fresh: bool) -> str:
        details = [
            fields["description"],
            *(
                f"{label.replace('_', ' ')}: {fields[label]}"
                for label in ("exception", "machine", "work_order", "quantity", "unit", "disposition")
                if fields.get(label) not in (None, "")
            ),
        ]
        return await self._quality_notification(
            settings,
            key,
            fresh,
            f"{fields['exception']} {fields['type']}: {fields['description']}",
            details,
            {"material": fields.get("material"), "order": fields.get("work_order")},
        )

    async def _notification(
        self, fields: dict[str, Any], settings: dict[str, Any], key: str, fresh: bool, down: datetime
    ) -> str:
        plant = require_setting(settings, "plant", "as the maintenance planning plant")
        reference = kinds.short_reference(key, 20)
        existing = None if fresh else await self._find_notification(reference)
        if existing:
            return existing
        start = self._local(down, settings)
        body = {
            "NotificationText": f"{fields['machine']}: {fields['description']}"[:40],
            "MaintNotifLongTextForEdit": f"{fields['description']}\n{fields.get('exception') or ''} reported by {fields.get('reported_by') or 'unknown'}",
            "NotificationType": settings.get("notification_type", "M2"),
            "MaintPriority": PRIORITY[kinds.priority(fields)],
            "TechnicalObject": (settings.get("equipment") or {}).get(fields["machine"], fields["machine"]),
            "TechObjIsEquipOrFuncnlLoc": settings.get("technical_object_type", "EAMS_EQUI"),
            "MaintenanceObjectIsDown": True,
            "MalfunctionStartDate": odata_date(start),
            "MalfunctionStartTime": odata_time(start),
            "MaintenancePlanningPlant": plant,
            "MaintNotifExtReferenceNumber": reference,
        }
        if fields.get("reported_by"):
            body["ReportedByUser"] = str(fields["reported_by"])[:12]
        created = await self._change("POST", NOTIFICATIONS, "MaintenanceNotification", json=body)
        return str(created.json()["d"]["MaintenanceNotification"])

    async def _goods_movement(
        self, fields: dict[str, Any], settings: dict[str, Any], key: str, fresh: bool, decided_at: datetime
    ) -> str:
        plant = require_setting(settings, "plant", "on every goods movement")
        storage_location = require_setting(settings, "storage_location", "for blocked stock postings")
        header_text = kinds.short_reference(key, 25)
        existing = None if fresh else await self._find_material_document(header_text)
        if existing:
            return existing
        action = fields["action"]
        types = {**MOVEMENT_TYPES, **(settings.get("movement_types") or {})}
        if action == "scrap":
            movement = types[
                "scrap_blocked"
                if settings.get("scrap_from", "blocked") == "blocked"
                else "scrap_unrestricted"
            ]
        else:
            movement = types[action]
        item: dict[str, Any] = {
            "Material": fields["material"],
            "Plant": plant,
            "StorageLocation": storage_location,
            "GoodsMovementType": str(movement),
            "QuantityInEntryUnit": f"{fields['quantity']}",
            "EntryUnit": (settings.get("units") or {}).get(fields["unit"], fields["unit"]),
        }
        if fields.get("lot"):
            item["Batch"] = fields["lot"]
        if action == "scrap" and settings.get("cost_center"):
            item["CostCenter"] = settings["cost_center"]
        if settings.get("reason_codes", {}).get(action):
            item["GoodsMovementReasonCode"] = settings["reason_codes"][action]
        decided = self._local(decided_at, settings)  # the day of the decision, not of the posting
        body = {
            "GoodsMovementCode": "03" if action == "scrap" else "04",
            "PostingDate": odata_date(decided),
            "DocumentDate": odata_date(decided),
            "MaterialDocumentHeaderText": header_text,
            "to_MaterialDocumentItem": {"results": [item]},
        }
        created = (
            await self._change("POST", MATERIAL_DOCUMENTS, "A_MaterialDocumentHeader", json=body)
        ).json()["d"]
        return f"{created['MaterialDocument']}/{created['MaterialDocumentYear']}"

    async def _order(self, work_order: str) -> httpx.Response:
        response = await self._get(
            f"{PRODUCTION_ORDERS}/A_ProductionOrder_2({literal(work_order)})", allow=(404,)
        )
        if response.status_code == 404:
            raise Rejected(f"SAP has no production order {work_order}")
        return response

    async def _order_status(self, fields: dict[str, Any], settings: dict[str, Any], key: str, fresh: bool) -> str:
        work_order, action = fields["work_order"], fields["action"]
        functions = {**ORDER_FUNCTIONS, **(settings.get("order_functions") or {})}
        function = functions.get(action)
        order = (await self._order(work_order)).json()["d"]
        if action != "complete":
            refuse_finished(order, {"hold": "held", "release": "released"}[action])
        if function is None and action == "hold":
            # API_PRODUCTION_ORDER_2_SRV has no lock or hold import (its function imports are
            # verified), so the hold goes to SAP QM as a quality notification on the order.
            reason = fields.get("reason") or "held"
            return await self._quality_notification(
                settings,
                key,
                fresh,
                f"{work_order} hold: {reason}",
                [f"production order {work_order} on hold: {reason}"],
                {"material": order.get("Material"), "order": work_order},
            )
        if function is None:
            raise Rejected(
                f"SAP's API_PRODUCTION_ORDER_2_SRV has no '{action}' for production orders; set "
                f"erp.order_functions.{action} to a function import your system offers, or {action} "
                f"{work_order} in SAP"
            )
        flag = ORDER_DONE_FLAG.get(action)
        if not (flag and order.get(flag)):
            await self._change(
                "POST", PRODUCTION_ORDERS, function, params={"ManufacturingOrder": literal(work_order)}
            )
        return f"{work_order} {function}"

    async def _find_requisition(self, reference: str) -> str | None:
        params = {"$filter": f"PurReqnDescription eq {literal(reference)}", "$select": "PurchaseRequisition"}
        rows = (await self._get(f"{REQUISITIONS}/A_PurchaseRequisitionHeader", params)).json()["d"]["results"]
        return str(rows[0]["PurchaseRequisition"]) if rows else None

    async def _requisition(self, fields: dict[str, Any], settings: dict[str, Any], key: str, fresh: bool) -> str:
        """A purchase requisition (deep insert header + item), the key in its description, searched
        before posting except on the first attempt."""
        plant = require_setting(settings, "plant", "on every purchase requisition")
        reference = kinds.short_reference(key, 20)
        existing = None if fresh else await self._find_requisition(reference)
        if existing:
            return existing
        action = fields.get("action") or "expedite"
        kind = {**REQUISITION_TYPES, **(settings.get("requisition_types") or {})}[action]
        need_by = self._local(kinds.parse_time(fields["need_by"]), settings)  # type: ignore[arg-type]
        item: dict[str, Any] = {
            "Material": fields["material"],
            "RequestedQuantity": f"{fields['quantity']}",
            "BaseUnit": (settings.get("units") or {}).get(fields["unit"], fields["unit"]),
            "Plant": plant,
            "DeliveryDate": odata_date(need_by),
            "PurchaseRequisitionItemText": " ".join(str(p) for p in (
                f"mfgos {action} by {need_by:%Y-%m-%d %H:%M}", fields.get("work_order")) if p)[:40],
        }
        if settings.get("storage_location"):
            item["StorageLocation"] = settings["storage_location"]
        body = {"PurchaseRequisitionType": kind, "PurReqnDescription": reference,
                "to_PurchaseReqnItem": {"results": [item]}}
        created = await self._change("POST", REQUISITIONS, "A_PurchaseRequisitionHeader", json=body)
        return str(created.json()["d"]["PurchaseRequisition"])

    async def _delivery_date(self, fields: dict[str, Any], settings: dict[str, Any]) -> str:
        """The sales order's requested delivery date (PATCH with the ETag); idempotent by state."""
        order = fields["customer_order"]
        promised = self._local(kinds.parse_time(fields["promised"]), settings)  # type: ignore[arg-type]
        wanted = odata_date(promised)
        for _ in range(3):
            params = {"$filter": f"SalesOrder eq {literal(order)}"}
            rows = (await self._get(f"{SALES_ORDERS}/A_SalesOrder", params)).json()["d"]["results"]
            if not rows:
                raise Rejected(f"SAP has no sales order {order}")
            current = rows[0]
            if current.get("OverallSDProcessStatus") == "C":
                raise Rejected(f"SAP sales order {order} is completed: its date cannot be changed")
            if current.get("RequestedDeliveryDate") == wanted:
                return f"{order} delivery {promised:%Y-%m-%d}"
            etag = (current.get("__metadata") or {}).get("etag") or "*"
            try:
                await self._change("PATCH", SALES_ORDERS, f"A_SalesOrder({literal(order)})",
                                   json={"RequestedDeliveryDate": wanted}, headers={"If-Match": etag})
                return f"{order} delivery {promised:%Y-%m-%d}"
            except _EtagMismatch:
                continue
        raise Unavailable(f"sap: sales order {order} keeps changing while we change its date")

    def _planned(self, start_value: Any, end_value: Any, settings: dict[str, Any]) -> dict[str, Any]:
        start = self._local(kinds.parse_time(start_value), settings)  # type: ignore[arg-type]
        end = self._local(kinds.parse_time(end_value), settings)  # type: ignore[arg-type]
        return {
            "MfgOrderPlannedStartDate": odata_date(start),
            "MfgOrderPlannedStartTime": odata_time(start),
            "MfgOrderPlannedEndDate": odata_date(end),
            "MfgOrderPlannedEndTime": odata_time(end),
        }

    async def _patch_order(self, work_order: str, wanted: dict[str, Any], words: str) -> None:
        """PATCH what differs on the order, with If-Match = its ETag; a 412 reads it again (3 times)."""
        for _ in range(3):
            response = await self._order(work_order)
            order = response.json()["d"]
            refuse_finished(order, words)
            if all(order.get(k) == v for k, v in wanted.items()):
                return
            etag = response.headers.get("etag") or (order.get("__metadata") or {}).get("etag")
            if not etag:
                raise Rejected(f"SAP sent no ETag for production order {work_order}")
            try:
                await self._change(
                    "PATCH",
                    PRODUCTION_ORDERS,
                    f"A_ProductionOrder_2({literal(work_order)})",
                    json={k: v for k, v in wanted.items() if order.get(k) != v},
                    headers={"If-Match": etag},
                )
                return
            except _EtagMismatch:
                continue  # changed under us: read the new ETag and compare again
        raise Unavailable(f"sap: production order {work_order} keeps changing while we change it")

    def _work_center(self, machine: str, settings: dict[str, Any]) -> str:
        return str((settings.get("work_centers") or {}).get(machine, machine))

    async def _operations(self, work_order: str) -> list[dict[str, Any]]:
        response = await self._get(
            f"{PRODUCTION_ORDERS}/A_ProductionOrder_2({literal(work_order)})",
            params={"$expand": "to_ProductionOrderOperation"}, allow=(404,))
        if response.status_code == 404:
            raise Rejected(f"SAP has no production order {work_order}")
        return list((response.json()["d"].get("to_ProductionOrderOperation") or {}).get("results") or [])

    async def _move_operations(self, work_order: str, machine: str, settings: dict[str, Any]) -> None:
        """Each operation of the order not on the machine's work center gets it (a PATCH per operation)."""
        center = self._work_center(machine, settings)
        for operation in await self._operations(work_order):
            if operation.get("WorkCenter") == center:
                continue
            keys = ",".join(f"{name}={literal(str(operation[name]))}" for name in OPERATION_KEYS if name in operation)
            etag = (operation.get("__metadata") or {}).get("etag") or "*"
            await self._change("PATCH", PRODUCTION_ORDERS, f"A_ProductionOrderOperation_2({keys})",
                               json={"WorkCenter": center}, headers={"If-Match": etag})

    async def _reschedule(self, fields: dict[str, Any], settings: dict[str, Any]) -> str:
        work_order = fields["work_order"]
        start = self._local(kinds.parse_time(fields["start"]), settings)  # type: ignore[arg-type]
        end = self._local(kinds.parse_time(fields["end"]), settings)  # type: ignore[arg-type]
        await self._patch_order(work_order, self._planned(fields["start"], fields["end"], settings), "rescheduled")
        reference = f"{work_order} planned {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M}"
        if fields.get("machine"):
            await self._move_operations(work_order, fields["machine"], settings)
            reference += f" on {self._work_center(fields['machine'], settings)}"
        return reference

    async def _split_order(self, fields: dict[str, Any], settings: dict[str, Any]) -> str | None:
        """The split's second order (`new_order`) once complete: it exists for the same material and
        its operations are on the split machine's work center."""
        original = await self._get(
            f"{PRODUCTION_ORDERS}/A_ProductionOrder_2({literal(str(fields.get('work_order') or ''))})", allow=(404,))
        second = await self._get(
            f"{PRODUCTION_ORDERS}/A_ProductionOrder_2({literal(str(fields.get('new_order') or ''))})",
            params={"$expand": "to_ProductionOrderOperation"}, allow=(404,))
        if original.status_code == 404 or second.status_code == 404:
            return None
        order = second.json()["d"]
        if order.get("Material") != original.json()["d"].get("Material"):
            return None
        center = self._work_center(str(fields.get("split_machine") or ""), settings)
        operations = (order.get("to_ProductionOrderOperation") or {}).get("results") or []
        return str(order["ManufacturingOrder"]) if all(op.get("WorkCenter") == center for op in operations) else None

    async def _split(self, fields: dict[str, Any], settings: dict[str, Any]) -> str:
        """The original keeps `quantity` and its new dates (a PATCH with its ETag, idempotent by
        state); the second order is created under `new_order` (an external order number) for the
        rest, and its operations go to the split machine's work center."""
        work_order, new_order = fields["work_order"], fields["new_order"]
        wanted = {"TotalQuantity": f"{float(fields['quantity']):g}",
                  **self._planned(fields["start"], fields["end"], settings)}
        await self._patch_order(work_order, wanted, "split")
        original = (await self._order(work_order)).json()["d"]
        second = await self._get(f"{PRODUCTION_ORDERS}/A_ProductionOrder_2({literal(new_order)})", allow=(404,))
        if second.status_code == 404:
            await self._change("POST", PRODUCTION_ORDERS, "A_ProductionOrder_2", json={
                "ManufacturingOrder": new_order,
                "ManufacturingOrderType": original.get("ManufacturingOrderType") or settings.get("order_type", "YBM1"),
                "Material": original.get("Material"),
                "ProductionPlant": original.get("ProductionPlant") or settings.get("plant"),
                "TotalQuantity": f"{float(fields['split_quantity']):g}",
                "SalesOrder": original.get("SalesOrder") or "",
                **self._planned(fields["split_start"], fields["split_end"], settings),
            })
        elif second.json()["d"].get("Material") != original.get("Material"):
            raise Rejected(f"SAP already has a production order {new_order} that is not this split's: "
                           "rename it there, then retry")
        await self._move_operations(new_order, fields["split_machine"], settings)
        return str(fields["new_order"])  # the document the split created, as the look-up finds it

    # --- reading -----------------------------------------------------------------------------

    def _changed(self, changed_since: datetime | None) -> list[str]:
        if changed_since is None:
            return []
        stamp = changed_since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return [f"LastChangeDateTime ge datetimeoffset'{stamp}Z'"]

    async def read_machines(self, settings: dict[str, Any]) -> list[ErpMachine]:
        plant = require_setting(settings, "plant", "to read the plant's work centers")
        rows = await self._collection(
            WORK_CENTERS,
            "A_WorkCenters",
            {"$filter": f"Plant eq {literal(plant)}", "$select": "WorkCenter,WorkCenterDesc"},
        )
        return [ErpMachine(id=r["WorkCenter"], name=r.get("WorkCenterDesc") or r["WorkCenter"]) for r in rows]

    async def check(self, settings: dict[str, Any], needs: PlantNeeds) -> list[SettingProblem]:
        """The settings every posting needs, and the open orders' materials against
        API_PRODUCT_SRV. Equipment and units have no read API this adapter uses: SAP checks them
        when a notification or posting names them."""
        found = [
            SettingProblem(f"erp.{key}", "not set", fix)
            for key, fix in (
                ("plant", "give the plant code, e.g. 1010"),
                ("storage_location", "give the storage location of the stock postings, e.g. 0001"),
            )
            if settings.get(key) in (None, "")
        ]
        if needs.materials:
            known = {m.id for m in await self.read_materials(settings)}
            found += [
                SettingProblem(f"material {m}", f"SAP has no product {m}", "correct the work order's material")
                for m in needs.materials
                if m not in known
            ]
        return found

    async def read_materials(self, settings: dict[str, Any]) -> list[ErpMaterial]:
        language = settings.get("language", "EN")
        rows = await self._collection(
            PRODUCTS,
            "A_Product",
            {
                "$expand": "to_Description",
                "$select": "Product,BaseUnit,to_Description/ProductDescription,to_Description/Language",
            },
        )
        materials = []
        for row in rows:
            descriptions = (row.get("to_Description") or {}).get("results") or []
            name = next(
                (d["ProductDescription"] for d in descriptions if d.get("Language") == language),
                row["Product"],
            )
            materials.append(ErpMaterial(id=row["Product"], name=name, unit=row.get("BaseUnit")))
        return materials

    async def read_work_orders(
        self, settings: dict[str, Any], changed_since: datetime | None = None
    ) -> list[ErpWorkOrder]:
        plant = require_setting(settings, "plant", "to read the plant's production orders")
        conditions = [f"ProductionPlant eq {literal(plant)}", *self._changed(changed_since)]
        rows = await self._collection(
            PRODUCTION_ORDERS,
            "A_ProductionOrder_2",
            {"$filter": " and ".join(conditions), "$expand": "to_ProductionOrderOperation"},
        )
        orders = []
        for row in rows:
            operations = (row.get("to_ProductionOrderOperation") or {}).get("results") or []
            if row.get("OrderIsClosed") or row.get("OrderIsTechnicallyCompleted"):
                status = "done"
            elif row.get("OrderIsReleased") and (
                row.get("OrderIsConfirmed") or row.get("OrderIsPartiallyConfirmed")
            ):
                status = "running"
            elif row.get("OrderIsReleased"):
                status = "released"
            else:
                status = "planned"
            quantity = row.get("TotalQuantity")
            orders.append(
                ErpWorkOrder(
                    id=row["ManufacturingOrder"],
                    status=status,
                    machine=next((op["WorkCenter"] for op in operations if op.get("WorkCenter")), None),
                    material=row.get("Material"),
                    quantity=float(quantity) if quantity not in (None, "") else None,
                    start=self._from_local(
                        row.get("MfgOrderPlannedStartDate"), row.get("MfgOrderPlannedStartTime"), settings
                    ),
                    end=self._from_local(
                        row.get("MfgOrderPlannedEndDate"), row.get("MfgOrderPlannedEndTime"), settings
                    ),
                    customer_order=row.get("SalesOrder") or None,
                    modified=parse_odata_date(row.get("LastChangeDateTime")),
                )
            )
        return orders

    async def read_customer_orders(
        self, settings: dict[str, Any], changed_since: datetime | None = None
    ) -> list[ErpCustomerOrder]:
        params: dict[str, Any] = {
            "$select": "SalesOrder,SoldToParty,RequestedDeliveryDate,LastChangeDateTime"
        }
        if changed_since is not None:
            params["$filter"] = " and ".join(self._changed(changed_since))
        rows = await self._collection(SALES_ORDERS, "A_SalesOrder", params)
        return [
            ErpCustomerOrder(
                id=r["SalesOrder"],
                customer=r.get("SoldToParty") or "",
                due=parse_odata_date(r.get("RequestedDeliveryDate")),
                modified=parse_odata_date(r.get("LastChangeDateTime")),
            )
            for r in rows
        ]

    async def read_stock(self, settings: dict[str, Any], material: str) -> list[StockLine]:
        return await self.read_stocks(settings, [material])

    async def read_stocks(self, settings: dict[str, Any], materials: Iterable[str]) -> list[StockLine]:
        """`A_MatlStkInAcctMod` of the plant, up to STOCK_CHUNK materials a request
        (`(Material eq 'A' or Material eq 'B') and Plant eq '1010'`), one line per storage
        location, batch and stock type; the `blocked_stock_types` count as blocked."""
        plant = require_setting(settings, "plant", "to read stock")
        blocked_types = tuple(settings.get("blocked_stock_types") or BLOCKED_STOCK_TYPES)
        lines: list[StockLine] = []
        for chunk in chunks(materials):
            wanted = " or ".join(f"Material eq {literal(m)}" for m in chunk)
            params = {"$filter": f"({wanted}) and Plant eq {literal(plant)}"}
            try:
                rows = stock_rows(self.name, await self._collection(STOCK, "A_MatlStkInAcctMod", params,
                                                                  cap=MAX_STOCK_LINES))
            except (ValueError, AttributeError, TypeError) as exc:  # not JSON, or no {"d": {"results": [...]}}
                raise Unavailable(f"sap: the ERP's stock answer is not understood ({type(exc).__name__})") from exc
            for r in rows:
                quantity = stock_quantity(self.name, r.get("MatlWrhsStkQtyInMatlBaseUnit"))
                if not quantity or r.get("Material") not in chunk:
                    continue
                lines.append(StockLine(
                    material=str(r["Material"]),
                    quantity=quantity,
                    location=f"{r.get('Plant')}/{r.get('StorageLocation')}",
                    blocked=r.get("InventoryStockType") in blocked_types,
                    lot=r.get("Batch") or None,
                    unit=r.get("MaterialBaseUnit"),
                ))
            if len(lines) > MAX_STOCK_LINES:
                raise Unavailable(f"sap: the ERP answered more than {MAX_STOCK_LINES} stock lines")
        return lines
