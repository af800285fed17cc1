"""Odoo: JSON-2 (`/json/2/<model>/<method>`, bearer API key, Odoo 19+) or JSON-RPC execute_kw (16-18).

MFGOS_ERP_URL is the site root with the database (and, for Odoo 16-18, the protocol) in the
query: `https://odoo.example.com/?db=prod` or `...?db=prod&api=jsonrpc`. MFGOS_ERP_TOKEN is
the API key; JSON-RPC also needs MFGOS_ERP_USER (the login).

Idempotency: Odoo has none natively, so every record we create carries the marker
`mfgos:<key>` (in `origin` for transfers and scraps, in `description` for maintenance requests,
downtime and quality alerts), and we search for it before creating. Multi-step flows (create,
confirm, reserve, validate) resume from whatever step an earlier attempt reached; a record
counts as posted only once it is done. Mapping table: docs/erp.md.
"""

from __future__ import annotations

import html
import itertools
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit, urlunsplit

import httpx

from erp_adapters import kinds
from erp_adapters.base import (
    MAX_STOCK_LINES,
    AuthFailed,
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

PRIORITY = {"low": "0", "medium": "1", "high": "2", "critical": "3"}
STATE = {
    "draft": "planned",
    "confirmed": "released",
    "progress": "running",
    "to_close": "running",
    "done": "done",
    "cancel": "done",
}
# Wizards a button may return instead of finishing, and the context that skips each one.
WIZARD_SKIPS: dict[str, dict[str, Any]] = {
    "stock.backorder.confirmation": {"skip_backorder": True, "cancel_backorder": True},
    "stock.immediate.transfer": {"skip_immediate": True},
    "confirm.stock.sms": {"skip_sms": True},
    "mrp.production.backorder": {"skip_backorder": True, "mo_ids_to_backorder": []},
    "mrp.consumption.warning": {"skip_consumption": True},
    "mrp.production.split.multi": {"skip_split": True},
}
# A transfer's validation must not skip the backorder question: a backorder means Odoo had
# only part of the quantity, and we refuse rather than move a part.
VALIDATE_SKIPS = {k: v for k, v in WIZARD_SKIPS.items() if k != "stock.backorder.confirmation"}
ODOO_TIME = "%Y-%m-%d %H:%M:%S"


class WizardReturned(Rejected):
    """A button answered with a wizard we do not skip: it did not finish."""

    def __init__(self, wizard: str, reason: str) -> None:
        super().__init__(reason)
        self.wizard = wizard


def marker(key: str) -> str:
    return f"mfgos:{key}"


# A manufacturing order in these states is finished: holding, releasing or rescheduling it would
# change nothing, so it is refused, never reported done.
FINISHED = {"done": "done", "cancel": "cancelled"}
ORDER_WORDS = {"hold": "held", "release": "released"}


def refuse_finished(production: dict[str, Any], words: str) -> None:
    state = FINISHED.get(production.get("state") or "")
    if state:
        raise Rejected(f"Odoo manufacturing order {production['name']} is {state}: it cannot be {words}")


def _name(value: Any) -> str | None:
    """The display name of a many2one value ([id, name] or False)."""
    return value[1] if isinstance(value, list | tuple) and len(value) == 2 else None


def _id(value: Any) -> int | None:
    return value[0] if isinstance(value, list | tuple) and value else None


def _utc(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.strptime(str(value)[:19], ODOO_TIME).replace(tzinfo=UTC)


def _odoo_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime(ODOO_TIME)


class OdooErp(HttpErpAdapter):
    """Odoo 16+ Community/Enterprise with mrp, stock and maintenance installed."""

    name: ClassVar[str] = "odoo"

    def __init__(
        self,
        base_url: str,
        *,
        database: str | None = None,
        api: str | None = None,
        now: Callable[[], datetime] | None = None,
        **kwargs: Any,
    ) -> None:
        parts = urlsplit(base_url or "")
        query = parse_qs(parts.query)
        super().__init__(urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")), **kwargs)
        self.database = database or (query.get("db") or [None])[0]
        self.api = api or (query.get("api") or ["json2"])[0]
        if self.api not in ("json2", "jsonrpc"):
            raise ValueError(f"odoo: api must be json2 (Odoo 19+) or jsonrpc (Odoo 16-18), got {self.api!r}")
        if not self._token:
            raise ValueError("odoo: set MFGOS_ERP_TOKEN to an Odoo API key")
        if self.api == "jsonrpc" and not (self.database and self.user):
            raise ValueError(
                "odoo: JSON-RPC needs the database (?db= in MFGOS_ERP_URL) and the login (MFGOS_ERP_USER)"
            )
        self.now = now or (lambda: datetime.now(UTC))
        self._uid: int | None = None
        self._version: int | None = None
        self._ids = itertools.count(1)
        self._cache: dict[tuple[str, str, tuple[str, ...]], dict[str, Any]] = {}

    def auth_headers(self) -> dict[str, str]:
        if self.api != "json2":
            return {}
        headers = {"Authorization": f"bearer {self._token}"}
        if self.database:
            headers["X-Odoo-Database"] = self.database
        return headers

    def error_message(self, response: httpx.Response) -> str:
        """JSON-2 answers errors as {name, message, arguments, context, debug}."""
        try:
            body = response.json()
        except ValueError:
            return super().error_message(response)
        if isinstance(body, dict) and body.get("message"):
            return str(body["message"])
        return super().error_message(response)

    # --- transport ---------------------------------------------------------------------------

    async def call(
        self,
        model: str,
        method: str,
        ids: list[int] | None = None,
        context: dict[str, Any] | None = None,
        **params: Any,
    ) -> Any:
        """One ORM method call, over JSON-2 or JSON-RPC execute_kw."""
        if self.api == "json2":
            body: dict[str, Any] = dict(params)
            if ids is not None:
                body["ids"] = ids
            if context:
                body["context"] = context
            response = await self.request("POST", f"/json/2/{model}/{method}", json=body)
            return response.json()
        uid = await self._login()
        kwargs = dict(params)
        if context:
            kwargs["context"] = context
        args = [ids] if ids is not None else []
        return await self._rpc(
            "object", "execute_kw", [self.database, uid, self._token, model, method, args, kwargs]
        )

    async def _rpc(self, service: str, method: str, args: list[Any]) -> Any:
        payload = {
            "jsonrpc": "2.0",
            "method": "call",
            "params": {"service": service, "method": method, "args": args},
            "id": next(self._ids),
        }
        body = (await self.request("POST", "/jsonrpc", json=payload)).json()
        error = body.get("error")
        if not error:
            return body.get("result")
        data = error.get("data") or {}
        name, message = (
            str(data.get("name") or ""),
            str(data.get("message") or error.get("message") or "Odoo error"),
        )
        if any(n in name for n in ("AccessDenied", "AccessError", "SessionExpired")):
            raise AuthFailed(f"odoo: {message}")
        if any(
            n in name
            for n in ("UserError", "ValidationError", "MissingError", "RedirectWarning", "ValueError")
        ):
            raise Rejected(message)
        raise Unavailable(f"odoo: server error {name or error.get('code')}: {message}")

    async def _login(self) -> int:
        if self._uid is None:
            version = await self._rpc("common", "version", [])
            found = re.search(r"\d+", str((version or {}).get("server_version", "")))
            self._version = int(found.group()) if found else 17
            uid = await self._rpc("common", "authenticate", [self.database, self.user, self._token, {}])
            if not uid:
                raise AuthFailed("odoo: the login or API key was refused")
            self._uid = int(uid)
        return self._uid

    async def _odoo_version(self) -> int:
        if self.api == "json2":
            return 19
        await self._login()
        return self._version or 17

    async def _search_read(
        self,
        model: str,
        domain: list[Any],
        fields: list[str],
        limit: int | None = None,
        order: str | None = None,
    ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"domain": domain, "fields": fields}
        if limit:
            params["limit"] = limit
        if order:
            params["order"] = order
        return await self.call(model, "search_read", **params) or []

    async def _create(self, model: str, values: dict[str, Any]) -> int:
        created = await self.call(model, "create", vals_list=[values])
        return int(created[0] if isinstance(created, list) else created)

    async def _press(
        self,
        model: str,
        method: str,
        ids: list[int],
        context: dict[str, Any] | None = None,
        skips: dict[str, dict[str, Any]] = WIZARD_SKIPS,
    ) -> None:
        """Press a button; when Odoo answers with a wizard in `skips`, press again skipping it.

        Any other wizard is `WizardReturned`: the button did not finish, and a person must."""
        context = dict(context or {})
        for _ in range(len(skips) + 1):
            result = await self.call(model, method, ids=ids, context=context or None)
            if not (isinstance(result, dict) and result.get("res_model")):
                return
            wizard = result["res_model"]
            if wizard not in skips or all(context.get(k) == v for k, v in skips[wizard].items()):
                raise WizardReturned(
                    wizard,
                    f"Odoo asks for {result.get('name') or wizard} ({wizard}) on {model} {ids}; finish it in Odoo",
                )
            context.update(skips[wizard])
        raise Rejected(f"Odoo kept returning wizards for {model}.{method}")

    async def _cached_record(
        self, model: str, domain: list[Any], fields: tuple[str, ...] = ("id",)
    ) -> dict[str, Any] | None:
        """The first match; a found record (a product, location, work center) is kept for the
        adapter's life, a miss is asked again next time."""
        cache_key = (model, repr(domain), fields)
        if cache_key not in self._cache:
            found = await self._search_read(model, domain, list(fields), limit=1)
            if not found:
                return None
            self._cache[cache_key] = found[0]
        return self._cache[cache_key]

    async def _cached_id(self, model: str, domain: list[Any]) -> int | None:
        found = await self._cached_record(model, domain)
        return None if found is None else int(found["id"])

    async def _find_id(self, model: str, domain: list[Any], what: str) -> int:
        found = await self._cached_id(model, domain)
        if found is None:
            raise Rejected(f"Odoo has no {what}")
        return found

    async def _product(self, material: str) -> int:
        return await self._find_id(
            "product.product",
            [["default_code", "=", material]],
            f"product with internal reference {material}",
        )

    async def _location(self, settings: dict[str, Any], setting: str, purpose: str) -> int:
        name = require_setting(settings, setting, purpose)
        return await self._find_id(
            "stock.location", [["complete_name", "=", name]], f"location {name} (erp.{setting})"
        )

    async def _uom(self, unit: str, settings: dict[str, Any]) -> int:
        name = (settings.get("units") or {}).get(unit, unit)
        return await self._find_id(
            "uom.uom", [["name", "=", name]], f"unit of measure {name} (map it with erp.units)"
        )

    async def _production(self, work_order: str, fields: list[str]) -> dict[str, Any]:
        found = await self._search_read(
            "mrp.production", [["name", "=", work_order]], ["id", "name", "state", *fields], limit=1
        )
        if not found:
            raise Rejected(f"Odoo has no manufacturing order {work_order}")
        return found[0]

    # --- preflight ---------------------------------------------------------------------------

    async def check(self, settings: dict[str, Any], needs: PlantNeeds) -> list[SettingProblem]:
        """The look-ups posting does, done ahead: each refusal becomes a problem."""
        found: list[SettingProblem] = []

        async def resolve(where: str, fix: str, lookup: Any) -> None:
            try:
                await lookup
            except Rejected as refused:
                found.append(SettingProblem(where, refused.reason, fix))

        for key, purpose in (
            ("stock_location", "as the location of usable stock"),
            ("quarantine_location", "to block and release stock"),
        ):
            await resolve(f"erp.{key}", "give the location's full name, e.g. WH/Stock",
                          self._location(settings, key, purpose))
        if settings.get("scrap_location"):
            await resolve("erp.scrap_location", "give the location's full name",
                          self._location(settings, "scrap_location", "to receive scrap"))
        kind = settings.get("picking_type") or "internal"
        domain = [["code", "=", kind]] if kind == "internal" else [["name", "=", kind]]
        if await self._cached_id("stock.picking.type", domain) is None:
            found.append(SettingProblem("erp.picking_type", f"Odoo has no operation type {kind}",
                                        "name an internal transfer operation type"))
        for machine in needs.machines:
            center = (settings.get("workcenters") or {}).get(machine, machine)
            if await self._cached_id("mrp.workcenter", ["|", ["code", "=", center], ["name", "=", center]]) is None:
                found.append(SettingProblem(f"erp.workcenters.{machine}", f"Odoo has no work center {center}",
                                            "map the machine to its work center's code or name"))
            equipment = (settings.get("equipment") or {}).get(machine)
            if equipment and await self._cached_id("maintenance.equipment", [["name", "=", equipment]]) is None:
                found.append(SettingProblem(f"erp.equipment.{machine}", f"Odoo has no equipment {equipment}",
                                            "name the machine's maintenance equipment as Odoo shows it"))
        for unit in needs.units:
            await resolve(f"erp.units.{unit}", f"map the plant's unit {unit!r} to an Odoo unit of measure",
                          self._uom(unit, settings))
        for material in needs.materials:
            await resolve(f"material {material}", "give the product this internal reference in Odoo",
                          self._product(material))
        return found

    # --- posting -----------------------------------------------------------------------------

    async def post(self, transaction: Transaction) -> str:
        kinds.validate(transaction.kind, transaction.fields)
        try:
            return await self._post(transaction)
        except Rejected:
            self._cache.clear()  # a looked-up id may have gone stale (a record deleted in Odoo)
            raise

    async def _post(self, transaction: Transaction) -> str:
        fields, settings, key = transaction.fields, transaction.plant_settings, transaction.idempotency_key
        fresh = transaction.first_attempt  # nothing of this key can be in Odoo yet: no search first
        if transaction.kind == "maintenance_request":
            return await self._maintenance(fields, settings, key, fresh, kinds.downtime_window(transaction, self.now))
        if transaction.kind == "stock_status":
            if fields["action"] == "scrap":
                return await self._scrap(fields, settings, key, fresh)
            decided = decision_time(transaction, self.now)
            return await self._transfer(fields, settings, key, fresh, decided)
        if transaction.kind == "nonconformance":
            return await self._quality_alert(fields, settings, key)
        if transaction.kind == "material_request":
            return await self._material_request(fields, settings, key, fresh)
        if transaction.kind == "customer_order_date":
            return await self._commitment_date(fields)
        if transaction.kind == "production_order_status":
            return await self._order_status(fields)
        if transaction.kind == "production_order_split":
            return await self._split(fields, settings)
        return await self._reschedule(fields, settings)

    async def lookup(self, transaction: Transaction) -> str | None:
        """Only the model this transaction creates: a record of another kind carrying the same
        marker is not ours to adopt."""
        tag = marker(transaction.idempotency_key)
        if transaction.kind == "stock_status":
            model = "stock.scrap" if transaction.fields.get("action") == "scrap" else "stock.picking"
            done = await self._search_read(
                model, [["origin", "=", tag], ["state", "=", "done"]], ["name"], limit=1
            )
            return str(done[0]["name"]) if done else None
        if transaction.kind == "material_request":
            requested = await self._search_read(
                "stock.picking", [["origin", "=", tag], ["state", "!=", "cancel"]], ["name", "state"], limit=1
            )
            return str(requested[0]["name"]) if requested and requested[0]["state"] != "draft" else None
        if transaction.kind == "maintenance_request":
            requests = await self._search_read(
                "maintenance.request", [["description", "ilike", tag]], ["id"], limit=1
            )
            return f"maintenance.request/{requests[0]['id']}" if requests else None
        if transaction.kind == "nonconformance":
            model = transaction.plant_settings.get("nonconformance_model") or "quality.alert"
            try:
                alerts = await self._search_read(model, [["description", "ilike", tag]], ["name"], limit=1)
            except Rejected:
                return None  # no Quality app (Community): nothing of ours can be there
            return str(alerts[0]["name"]) if alerts else None
        if transaction.kind == "production_order_split":
            return await self._split_order(transaction.fields, transaction.plant_settings)
        return None  # status changes and reschedules create nothing: idempotent by state

    async def _maintenance(
        self,
        fields: dict[str, Any],
        settings: dict[str, Any],
        key: str,
        fresh: bool,
        window: tuple[datetime, datetime],
    ) -> str:
        tag = marker(key)
        # Downtime first: the request is the record that says the whole posting is done.
        if window[1] > window[0]:
            await self._downtime(fields, settings, tag, fresh, window)
        existing = (
            []
            if fresh
            else await self._search_read("maintenance.request", [["description", "ilike", tag]], ["id"], limit=1)
        )
        if existing:
            return f"maintenance.request/{existing[0]['id']}"
        names = [
            (settings.get("equipment") or {}).get(fields["machine"]),
            fields.get("machine_name"),
            fields["machine"],
        ]
        equipment = await self._cached_id("maintenance.equipment", [["name", "in", [n for n in names if n]]])
        details = ", ".join(
            f"{label} {fields[name]}"
            for label, name in (
                ("exception", "exception"),
                ("reported by", "reported_by"),
                ("down for (min)", "downtime_minutes"),
            )
            if fields.get(name) not in (None, "")
        )
        values: dict[str, Any] = {
            "name": f"{fields['machine']}: {fields['description']}"[:120],
            "maintenance_type": "corrective",
            "priority": PRIORITY[kinds.priority(fields)],
            "description": f"<p>{html.escape(fields['description'])}</p><p>{html.escape(details)}</p><p>{tag}</p>",
        }
        if equipment:
            values["equipment_id"] = equipment
        if settings.get("maintenance_team_id"):
            values["maintenance_team_id"] = settings["maintenance_team_id"]
        return f"maintenance.request/{await self._create('maintenance.request', values)}"

    async def _downtime(
        self, fields: dict[str, Any], settings: dict[str, Any], tag: str, fresh: bool, window: tuple[datetime, datetime]
    ) -> None:
        workcenter = (settings.get("workcenters") or {}).get(fields["machine"], fields["machine"])
        center = await self._cached_id(
            "mrp.workcenter", ["|", ["code", "=", workcenter], ["name", "=", workcenter]]
        )
        if center is None:
            return  # a machine without a work center: the maintenance request still records the stop
        if not fresh and await self._search_read(
            "mrp.workcenter.productivity", [["description", "ilike", tag]], ["id"], limit=1
        ):
            return
        loss = await self._find_id(
            "mrp.workcenter.productivity.loss",
            [["loss_type", "=", "availability"]],
            "availability loss reason",
        )
        start, end = window
        await self._create(
            "mrp.workcenter.productivity",
            {
                "workcenter_id": center,
                "loss_id": loss,
                "date_start": _odoo_time(start),
                "date_end": _odoo_time(end),
                "description": f"{fields['description']} ({tag})",
            },
        )

    async def _transfer(
        self, fields: dict[str, Any], settings: dict[str, Any], key: str, fresh: bool, decided: datetime
    ) -> str:
        tag = marker(key)
        stock = await self._location(settings, "stock_location", "as the location of usable stock")
        quarantine = await self._location(settings, "quarantine_location", "to block and release stock")
        source, target = (stock, quarantine) if fields["action"] == "block" else (quarantine, stock)
        kind = settings.get("picking_type") or "internal"
        picking_type = await self._cached_record(
            "stock.picking.type",
            [["code", "=", kind]] if kind == "internal" else [["name", "=", kind]],
            ("id", "create_backorder"),
        )
        if picking_type is None:
            raise Rejected(f"Odoo has no operation type {kind} (erp.picking_type)")
        newer = await self._odoo_version() >= 17
        found = (
            []
            if fresh
            else await self._search_read(
                "stock.picking", [["origin", "=", tag], ["state", "!=", "cancel"]], ["id", "name", "state"], limit=1
            )
        )
        if found:
            picking = found[0]
        else:
            product = await self._product(fields["material"])
            move: dict[str, Any] = {
                "name": f"mfgos {fields['action']} {fields['material']}",
                "product_id": product,
                "product_uom_qty": fields["quantity"],
                "product_uom": await self._uom(fields["unit"], settings),
                "location_id": source,
                "location_dest_id": target,
            }
            if fields.get("lot"):
                move["lot_ids"] = [[6, 0, [await self._lot(fields["lot"], product)]]]
            values = {
                "picking_type_id": picking_type["id"],
                "location_id": source,
                "location_dest_id": target,
                "origin": tag,
                # Odoo stamps date_done itself at validation (a read-only field); the decision's
                # time goes where the model takes it, the scheduled date.
                "scheduled_date": _odoo_time(decided),
                "move_ids": [[0, 0, move]],
            }
            if newer:
                # web_save (Odoo 17+) creates and reads back in one call: the transfer's
                # name (its WH/INT/... number) is given at create.
                [picking] = await self.call(
                    "stock.picking", "web_save", ids=[], vals=values, specification={"name": {}}
                )
                picking["state"] = "draft"
            else:
                picking = {"id": await self._create("stock.picking", values), "state": "draft"}
        if picking["state"] == "done":
            return str(picking["name"])
        if not newer:
            return await self._validate_transfer_16(picking["id"], picking["state"], fields)
        where = settings["stock_location" if fields["action"] == "block" else "quarantine_location"]
        if picking["state"] != "assigned":
            await self.call("stock.picking", "action_assign", ids=[picking["id"]])  # confirms a draft first
        if picking_type.get("create_backorder") != "ask":
            # Without the backorder question Odoo would validate a part silently: check first.
            await self._require_reserved(picking["id"], fields, where)
        try:
            # With all of it reserved, button_validate marks the moves picked and finishes; with
            # a part it asks about a backorder, with none it refuses (stock_picking.py).
            await self._press("stock.picking", "button_validate", [picking["id"]], skips=VALIDATE_SKIPS)
        except Rejected as refused:
            await self.call("stock.picking", "action_cancel", ids=[picking["id"]])  # a retry starts clean
            what = f"{fields['quantity']} {fields['unit']} of {fields['material']}"
            if not isinstance(refused, WizardReturned):
                raise Rejected(
                    f"Odoo refused to validate the transfer of {what} from {where}: {refused.reason}"
                ) from refused
            if refused.wizard != "stock.backorder.confirmation":
                raise
            raise Rejected(
                f"Odoo cannot reserve {what} in {where}: not enough available (only a part is)"
            ) from refused
        return str(picking["name"])  # from web_save, or from the search that found the transfer

    async def _require_reserved(self, picking_id: int, fields: dict[str, Any], where: str) -> None:
        moves = await self._search_read("stock.move", [["picking_id", "=", picking_id]], ["id", "state"])
        if any(m["state"] not in ("assigned", "done") for m in moves):
            await self.call("stock.picking", "action_cancel", ids=[picking_id])
            raise Rejected(
                f"Odoo cannot reserve {fields['quantity']} {fields['unit']} of {fields['material']} in {where}: not enough available"
            )

    async def _validate_transfer_16(self, picking_id: int, state: str, fields: dict[str, Any]) -> str:
        """Odoo 16: reserve, check, set quantity_done, validate, read the result."""
        if state == "draft":
            await self.call("stock.picking", "action_confirm", ids=[picking_id])
        await self.call("stock.picking", "action_assign", ids=[picking_id])
        moves = await self._search_read(
            "stock.move", [["picking_id", "=", picking_id]], ["id", "state", "product_uom_qty", "location_id"]
        )
        if any(m["state"] not in ("assigned", "done") for m in moves):
            # Refuse rather than drive stock negative; cancel so a corrected retry starts clean.
            await self.call("stock.picking", "action_cancel", ids=[picking_id])
            where = _name(moves[0]["location_id"]) if moves else "the source location"
            raise Rejected(
                f"Odoo cannot reserve {fields['quantity']} {fields['unit']} of {fields['material']} in {where}: not enough available"
            )
        for move in moves:
            await self.call("stock.move", "write", ids=[move["id"]], vals={"quantity_done": move["product_uom_qty"]})
        await self._press("stock.picking", "button_validate", [picking_id])
        done = await self.call("stock.picking", "read", ids=[picking_id], fields=["name", "state"])
        if done[0]["state"] != "done":
            raise Rejected(
                f"Odoo left transfer {done[0]['name']} in state {done[0]['state']}; validate it in Odoo"
            )
        return str(done[0]["name"])

    async def _lot(self, lot: str, product: int) -> int:
        return await self._find_id(
            "stock.lot", [["name", "=", lot], ["product_id", "=", product]], f"lot {lot} of that product"
        )

    async def _scrap(self, fields: dict[str, Any], settings: dict[str, Any], key: str, fresh: bool) -> str:
        tag = marker(key)
        found = (
            []
            if fresh
            else await self._search_read("stock.scrap", [["origin", "=", tag]], ["id", "name", "state"], limit=1)
        )
        if found and found[0]["state"] == "done":
            return str(found[0]["name"])
        if found:
            scrap_id = found[0]["id"]
        else:
            product = await self._product(fields["material"])
            from_blocked = settings.get("scrap_from", "blocked") == "blocked"
            setting = "quarantine_location" if from_blocked else "stock_location"
            values: dict[str, Any] = {
                "product_id": product,
                "scrap_qty": fields["quantity"],
                "product_uom_id": await self._uom(fields["unit"], settings),
                "location_id": await self._location(settings, setting, "as the location scrap is taken from"),
                "origin": tag,
            }
            if settings.get("scrap_location"):
                values["scrap_location_id"] = await self._location(
                    settings, "scrap_location", "to receive scrap"
                )
            if fields.get("lot"):
                values["lot_id"] = await self._lot(fields["lot"], product)
            if fields.get("work_order"):
                production = await self._search_read(
                    "mrp.production", [["name", "=", fields["work_order"]]], ["id"], limit=1
                )
                if production:
                    values["production_id"] = production[0]["id"]
            scrap_id = await self._create("stock.scrap", values)
        result = await self.call("stock.scrap", "action_validate", ids=[scrap_id])
        if isinstance(result, dict) and result.get("res_model"):
            # stock.warn.insufficient.qty.scrap: Odoo would scrap stock it does not have.
            await self.call("stock.scrap", "unlink", ids=[scrap_id])
            raise Rejected(
                f"Odoo has not enough {fields['material']} to scrap {fields['quantity']} {fields['unit']} ({result.get('name') or result['res_model']})"
            )
        done = await self.call("stock.scrap", "read", ids=[scrap_id], fields=["name"])
        return str(done[0]["name"])

    async def _quality_alert(self, fields: dict[str, Any], settings: dict[str, Any], key: str) -> str:
        tag = marker(key)
        model = settings.get("nonconformance_model") or "quality.alert"
        try:
            existing = await self._search_read(model, [["description", "ilike", tag]], ["name"], limit=1)
        except Rejected as exc:
            raise Rejected(
                f"Odoo cannot record a non-conformance in {model} (the Quality app is Odoo Enterprise): {exc.reason}"
            ) from exc
        if existing:
            return str(existing[0]["name"])
        lines = [
            f"{label.replace('_', ' ')}: {fields[label]}"
            for label in ("machine", "material", "work_order", "quantity", "disposition")
            if fields.get(label) not in (None, "")
        ]
        values: dict[str, Any] = {
            "title": f"{fields['exception']} {fields['type']}: {fields['description']}"[:120],
            "description": "".join(
                f"<p>{html.escape(str(t))}</p>" for t in [fields["description"], *lines, tag]
            ),
        }
        if fields.get("material"):
            product = await self._cached_id("product.product", [["default_code", "=", fields["material"]]])
            if product is not None:
                values["product_id"] = product
        alert_id = await self._create(model, values)
        created = await self.call(model, "read", ids=[alert_id], fields=["name"])
        return str(created[0]["name"])

    async def _order_status(self, fields: dict[str, Any]) -> str:
        production = await self._production(fields["work_order"], [])
        name, action = production["name"], fields["action"]
        if action != "complete":
            refuse_finished(production, ORDER_WORDS[action])
        if action == "hold":
            running = await self._search_read(
                "mrp.workorder",
                [["production_id", "=", production["id"]], ["state", "=", "progress"]],
                ["id"],
            )
            if running:
                await self.call("mrp.workorder", "button_pending", ids=[w["id"] for w in running])
            return f"{name} held"
        if action == "release":
            if production["state"] == "draft":
                await self.call("mrp.production", "action_confirm", ids=[production["id"]])
            return f"{name} released"
        if production["state"] != "done":
            await self._press("mrp.production", "button_mark_done", [production["id"]])
        state = (await self.call("mrp.production", "read", ids=[production["id"]], fields=["state"]))[0][
            "state"
        ]
        if state != "done":
            raise Rejected(f"Odoo left manufacturing order {name} in state {state}")
        return f"{name} done"

    async def _date_fields(self) -> tuple[str, str]:
        return (
            ("date_start", "date_finished")
            if await self._odoo_version() >= 17
            else ("date_planned_start", "date_planned_finished")
        )

    async def _material_request(self, fields: dict[str, Any], settings: dict[str, Any], key: str, fresh: bool) -> str:
        """An internal transfer from usable stock to the staging location, scheduled for the need and
        confirmed (a request: the warehouse reserves and validates it); starred when it is urgent."""
        tag = marker(key)
        stock = await self._location(settings, "stock_location", "as the location of usable stock")
        staging = await self._location(settings, "staging_location", "as where requested material is needed")
        found = [] if fresh else await self._search_read(
            "stock.picking", [["origin", "=", tag], ["state", "!=", "cancel"]], ["id", "name", "state"], limit=1)
        if found:
            picking = found[0]
        else:
            kind = settings.get("picking_type") or "internal"
            picking_type = await self._cached_record(
                "stock.picking.type", [["code", "=", kind]] if kind == "internal" else [["name", "=", kind]],
                ("id", "create_backorder"))
            if picking_type is None:
                raise Rejected(f"Odoo has no operation type {kind} (erp.picking_type)")
            need_by = _odoo_time(kinds.parse_time(fields["need_by"]))  # type: ignore[arg-type]
            action = fields.get("action") or "expedite"
            picking_id = await self._create("stock.picking", {
                "picking_type_id": picking_type["id"], "location_id": stock, "location_dest_id": staging,
                "origin": tag, "scheduled_date": need_by, "priority": "1" if action == "expedite" else "0",
                "move_ids": [[0, 0, {
                    "name": f"mfgos {action} {fields['material']}", "product_id": await self._product(fields["material"]),
                    "product_uom_qty": fields["quantity"], "product_uom": await self._uom(fields["unit"], settings),
                    "location_id": stock, "location_dest_id": staging,
                }]],
            })
            [picking] = await self.call("stock.picking", "read", ids=[picking_id], fields=["id", "name", "state"])
        if picking["state"] == "draft":
            await self.call("stock.picking", "action_confirm", ids=[picking["id"]])
        return str(picking["name"])

    async def _commitment_date(self, fields: dict[str, Any]) -> str:
        """The sales order's delivery date (`commitment_date`, UTC); idempotent by state."""
        order = fields["customer_order"]
        found = await self._search_read(
            "sale.order", [["name", "=", order]], ["id", "name", "state", "commitment_date"], limit=1)
        if not found:
            raise Rejected(f"Odoo has no sales order {order}")
        if found[0].get("state") == "cancel":
            raise Rejected(f"Odoo sales order {order} is cancelled: its date cannot be changed")
        promised = _odoo_time(kinds.parse_time(fields["promised"]))  # type: ignore[arg-type]
        if found[0].get("commitment_date") != promised:
            await self.call("sale.order", "write", ids=[found[0]["id"]], vals={"commitment_date": promised})
        return f"{order} delivery {promised} UTC"

    async def _workcenter(self, machine: str, settings: dict[str, Any]) -> int:
        center = (settings.get("workcenters") or {}).get(machine, machine)
        return await self._find_id(
            "mrp.workcenter", ["|", ["code", "=", center], ["name", "=", center]],
            f"work center {center} (map the machine with erp.workcenters)")

    async def _move_steps(self, production_id: int, machine: str, settings: dict[str, Any]) -> bool:
        """The order's unfinished work orders (mrp.workorder) to the machine's work center; False
        when they are there already."""
        center = await self._workcenter(machine, settings)
        steps = await self._search_read(
            "mrp.workorder", [["production_id", "=", production_id], ["state", "not in", ["done", "cancel"]]],
            ["id", "workcenter_id"])
        elsewhere = [s["id"] for s in steps if _id(s.get("workcenter_id")) != center]
        if elsewhere:
            await self.call("mrp.workorder", "write", ids=elsewhere, vals={"workcenter_id": center})
        return bool(elsewhere)

    async def _reschedule(self, fields: dict[str, Any], settings: dict[str, Any]) -> str:
        start_field, end_field = await self._date_fields()
        production = await self._production(fields["work_order"], [start_field, end_field])
        refuse_finished(production, "rescheduled")
        start = _odoo_time(kinds.parse_time(fields["start"]))  # type: ignore[arg-type]
        end = _odoo_time(kinds.parse_time(fields["end"]))  # type: ignore[arg-type]
        if (production.get(start_field), production.get(end_field)) != (start, end):
            await self.call(
                "mrp.production", "write", ids=[production["id"]], vals={start_field: start, end_field: end}
            )
        if fields.get("machine"):
            await self._move_steps(production["id"], fields["machine"], settings)
            return f"{production['name']} planned {start} to {end} UTC on {fields['machine']}"
        return f"{production['name']} planned {start} to {end} UTC"

    async def _second_order(self, fields: dict[str, Any]) -> dict[str, Any] | None:
        """The split's second manufacturing order (named `new_order`) when it makes the same product
        as the original; a namesake of another product is not ours."""
        original = await self._search_read(
            "mrp.production", [["name", "=", fields.get("work_order") or ""]], ["product_id"], limit=1)
        second = await self._search_read(
            "mrp.production", [["name", "=", fields.get("new_order") or ""], ["state", "!=", "cancel"]],
            ["id", "name", "state", "product_id"], limit=1)
        if original and second and _id(second[0]["product_id"]) == _id(original[0]["product_id"]):
            return second[0]
        return None

    async def _split_order(self, fields: dict[str, Any], settings: dict[str, Any]) -> str | None:
        """The second order's name once the split is complete: confirmed, its work orders on the
        split machine's work center."""
        second = await self._second_order(fields)
        if second is None or second["state"] == "draft":
            return None
        center = await self._workcenter(fields["split_machine"], settings)
        steps = await self._search_read(
            "mrp.workorder", [["production_id", "=", second["id"]], ["state", "not in", ["done", "cancel"]]],
            ["workcenter_id"])
        return str(second["name"]) if all(_id(s.get("workcenter_id")) == center for s in steps) else None

    async def _split(self, fields: dict[str, Any], settings: dict[str, Any]) -> str:
        """The original keeps `quantity` and its new dates (a write, idempotent by state); the second
        order, named `new_order`, is created and confirmed for the rest, and its work orders go to
        the split machine's work center. Each step is looked for before it is done again."""
        start_field, end_field = await self._date_fields()
        production = await self._production(
            fields["work_order"], [start_field, end_field, "product_id", "product_qty", "qty_producing", "origin"])
        refuse_finished(production, "split")
        if float(production.get("qty_producing") or 0) > float(fields["quantity"]):
            raise Rejected(f"Odoo manufacturing order {production['name']} is producing "
                           f"{production['qty_producing']} already: it cannot keep only {fields['quantity']}")
        changes: dict[str, Any] = {}
        if float(production.get("product_qty") or 0) != float(fields["quantity"]):
            changes["product_qty"] = float(fields["quantity"])
        start = _odoo_time(kinds.parse_time(fields["start"]))  # type: ignore[arg-type]
        end = _odoo_time(kinds.parse_time(fields["end"]))  # type: ignore[arg-type]
        if (production.get(start_field), production.get(end_field)) != (start, end):
            changes.update({start_field: start, end_field: end})
        if changes:
            await self.call("mrp.production", "write", ids=[production["id"]], vals=changes)
        second = await self._second_order(fields)
        if second is None:
            clash = await self._search_read("mrp.production", [["name", "=", fields["new_order"]]], ["id"], limit=1)
            if clash:
                raise Rejected(f"Odoo already has a manufacturing order {fields['new_order']} that is not this "
                               "split's: rename it there, then retry")
            second = {"state": "draft", "id": await self._create("mrp.production", {
                "name": fields["new_order"], "product_id": _id(production["product_id"]),
                "product_qty": float(fields["split_quantity"]), "origin": production.get("origin") or False,
                start_field: _odoo_time(kinds.parse_time(fields["split_start"])),  # type: ignore[arg-type]
                end_field: _odoo_time(kinds.parse_time(fields["split_end"])),  # type: ignore[arg-type]
            })}
        if second["state"] == "draft":
            await self.call("mrp.production", "action_confirm", ids=[second["id"]])
        await self._move_steps(second["id"], fields["split_machine"], settings)
        return str(fields["new_order"])  # the document the split created, as the look-up finds it

    # --- reading -----------------------------------------------------------------------------

    def _since(self, changed_since: datetime | None) -> list[Any]:
        return [] if changed_since is None else [["write_date", ">=", _odoo_time(changed_since)]]

    async def read_machines(self, settings: dict[str, Any]) -> list[ErpMachine]:
        rows = await self._search_read("mrp.workcenter", [], ["name", "code"], order="id")
        return [ErpMachine(id=r.get("code") or r["name"], name=r["name"]) for r in rows]

    async def read_materials(self, settings: dict[str, Any]) -> list[ErpMaterial]:
        rows = await self._search_read(
            "product.product", [["default_code", "!=", False]], ["default_code", "name", "uom_id"], order="id"
        )
        return [ErpMaterial(id=r["default_code"], name=r["name"], unit=_name(r.get("uom_id"))) for r in rows]

    async def read_work_orders(
        self, settings: dict[str, Any], changed_since: datetime | None = None
    ) -> list[ErpWorkOrder]:
        start_field, end_field = await self._date_fields()
        rows = await self._search_read(
            "mrp.production",
            self._since(changed_since),
            ["name", "state", "product_id", "product_qty", start_field, end_field, "origin", "write_date"],
            order="id",
        )
        if not rows:
            return []
        steps = await self._search_read(
            "mrp.workorder",
            [["production_id", "in", [r["id"] for r in rows]]],
            ["production_id", "workcenter_id"],
            order="id",
        )
        centers = {
            r["id"]: r.get("code") or r["name"]
            for r in await self._search_read("mrp.workcenter", [], ["name", "code"])
        }
        machine_of: dict[int, str] = {}
        for step in steps:
            machine_of.setdefault(
                _id(step["production_id"]) or 0, centers.get(_id(step["workcenter_id"]) or 0, "")
            )
        product_ids = list({_id(r["product_id"]) for r in rows if _id(r["product_id"])})
        codes = {
            p["id"]: p.get("default_code")
            for p in await self.call("product.product", "read", ids=product_ids, fields=["default_code"])
        }
        return [
            ErpWorkOrder(
                id=r["name"],
                status=STATE.get(r["state"], "planned"),
                machine=machine_of.get(r["id"]) or None,
                material=codes.get(_id(r["product_id"])) or None,
                quantity=r.get("product_qty"),
                start=_utc(r.get(start_field)),
                end=_utc(r.get(end_field)),
                customer_order=r.get("origin") or None,
                modified=_utc(r.get("write_date")),
            )
            for r in rows
        ]

    async def read_customer_orders(
        self, settings: dict[str, Any], changed_since: datetime | None = None
    ) -> list[ErpCustomerOrder]:
        rows = await self._search_read(
            "sale.order",
            [["state", "in", ["sale", "done"]], *self._since(changed_since)],
            ["name", "partner_id", "commitment_date", "write_date"],
            order="id",
        )
        return [
            ErpCustomerOrder(
                id=r["name"],
                customer=_name(r["partner_id"]) or "",
                due=_utc(r.get("commitment_date")),
                modified=_utc(r.get("write_date")),
            )
            for r in rows
        ]

    async def read_stock(self, settings: dict[str, Any], material: str) -> list[StockLine]:
        return await self.read_stocks(settings, [material])

    async def read_stocks(self, settings: dict[str, Any], materials: Iterable[str]) -> list[StockLine]:
        """stock.quant in internal locations of up to STOCK_CHUNK products a request (two calls: the
        products by internal reference, then their quants); the quarantine location counts as
        blocked. A material Odoo has no product for has no stock."""
        quarantine = settings.get("quarantine_location")
        lines: list[StockLine] = []
        for chunk in chunks(materials):
            try:
                products = stock_rows(self.name, await self._search_read(
                    "product.product", [["default_code", "in", chunk]], ["id", "default_code"]))
                codes = {r.get("id"): r.get("default_code") for r in products if r.get("default_code") in chunk}
                if not codes:
                    continue
                quants = stock_rows(self.name, await self._search_read(
                    "stock.quant",
                    [["product_id", "in", sorted(codes)], ["location_id.usage", "=", "internal"],
                     ["quantity", "!=", 0]],
                    ["product_id", "location_id", "quantity", "lot_id", "product_uom_id"],
                ))
            except (ValueError, AttributeError, TypeError) as exc:  # not JSON, or not JSON-RPC's shape
                raise Unavailable(f"odoo: the ERP's stock answer is not understood ({type(exc).__name__})") from exc
            for r in quants:
                material = codes.get(_id(r.get("product_id")))
                quantity = stock_quantity(self.name, r.get("quantity"))
                if material is None or not quantity:
                    continue
                location = _name(r.get("location_id")) or ""
                lines.append(StockLine(
                    material=str(material),
                    quantity=quantity,
                    location=str(location),
                    blocked=location == quarantine,
                    lot=_name(r.get("lot_id")),
                    unit=_name(r.get("product_uom_id")),
                ))
            if len(lines) > MAX_STOCK_LINES:
                raise Unavailable(f"odoo: the ERP answered more than {MAX_STOCK_LINES} stock lines")
        return lines
