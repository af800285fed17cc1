"""The one ERP protocol every adapter implements, and the typed errors at that edge."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Protocol, runtime_checkable

import httpx

log = logging.getLogger(__name__)


class ErpError(Exception):
    """Base of the ERP error family."""


class AuthFailed(ErpError):
    """Credentials refused: pause posting and tell an admin; retrying will not help."""


class Unavailable(ErpError):
    """The ERP is down, slow or rate-limiting: retry later (after `retry_after` seconds if given)."""

    def __init__(self, message: str = "ERP unavailable", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Rejected(ErpError):
    """The ERP refused the document (validation): tell the thread, never retry unchanged."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Transaction:
    """A neutral ERP transaction (the kinds of docs/erp.md) with its idempotency key."""

    kind: str
    fields: dict[str, Any]
    idempotency_key: str
    exception_code: str | None = None
    plant_settings: dict[str, Any] = field(default_factory=dict)  # the plant file's `erp:` block
    # The outbox's first try of this key: no earlier attempt can have left a document or half a
    # flow in the ERP, so an adapter may skip its search-before-create (one round trip less).
    first_attempt: bool = False
    # When the decision was taken (the outbox row's creation): documents are dated by it, not by
    # when a retry finally posts them. None: now.
    decided_at: datetime | None = None


@dataclass(frozen=True)
class ErpMachine:
    """A machine as the ERP knows it (ERPNext Workstation, Odoo work center, SAP work center)."""

    id: str
    name: str
    area: str | None = None


@dataclass(frozen=True)
class ErpMaterial:
    id: str
    name: str
    unit: str | None = None


@dataclass(frozen=True)
class ErpWorkOrder:
    """A production order; `status` is already in our words (planned/released/running/held/done)."""

    id: str
    status: str
    machine: str | None = None
    material: str | None = None
    quantity: float | None = None
    start: datetime | None = None
    end: datetime | None = None
    customer_order: str | None = None
    modified: datetime | None = None


@dataclass(frozen=True)
class ErpCustomerOrder:
    id: str
    customer: str
    due: datetime | None = None
    modified: datetime | None = None


@dataclass(frozen=True)
class StockLine:
    """A quantity of a material (or lot) in one place, and whether it may be used."""

    material: str
    quantity: float
    location: str
    blocked: bool = False
    lot: str | None = None
    unit: str | None = None


# A stock read (`read_stocks`) asks for at most this many materials per request (SAP and ERPNext put
# them in the URL) and takes at most MAX_STOCK_LINES lines back: a bigger answer is junk or a wrong
# filter, refused rather than held in memory.
STOCK_CHUNK = 40
MAX_STOCK_LINES = 20_000


def stock_quantity(erp: str, value: Any) -> float:
    """A stock quantity from an ERP answer (a number or numeric text, as OData V2 sends decimals),
    or `Unavailable` naming the junk: a stock watch then opens nothing on data it cannot read."""
    if isinstance(value, bool):
        value = None
    try:
        number = float(value if value not in (None, "") else 0)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise Unavailable(f"{erp}: the ERP's stock answer holds a quantity that is no number: {str(value)[:40]!r}")
    return number


def stock_rows(erp: str, rows: Any) -> list[dict[str, Any]]:
    """The rows of a stock answer, or `Unavailable` when the answer is no list of records or too long."""
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise Unavailable(f"{erp}: the ERP's stock answer is not a list of records")
    if len(rows) > MAX_STOCK_LINES:
        raise Unavailable(f"{erp}: the ERP answered {len(rows)} stock lines, more than {MAX_STOCK_LINES}")
    return rows


def chunks(materials: Iterable[str], size: int = STOCK_CHUNK) -> list[list[str]]:
    """The distinct materials in requests of at most `size`."""
    distinct = sorted(set(materials))
    return [distinct[start : start + size] for start in range(0, len(distinct), size)]


@dataclass(frozen=True)
class SettingProblem:
    """One thing `mfgos check-erp` found: where (`erp.company`, `material FRG-20MNCR5`), what is
    wrong, and how to fix it."""

    where: str
    what: str
    fix: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}: {self.fix}"


@dataclass(frozen=True)
class PlantNeeds:
    """What the plant's transactions will name in the ERP, from the store: the preflight checks
    each one exists before a breakdown at 3 a.m. finds out."""

    machines: tuple[str, ...] = ()
    units: tuple[str, ...] = ("pcs",)
    materials: tuple[str, ...] = ()  # of the open work orders
    people: tuple[str, ...] = ()


@runtime_checkable
class ErpAdapter(Protocol):
    name: str

    async def post(self, transaction: Transaction) -> str:
        """Create the document in the ERP and return its reference (document number)."""
        ...

    async def lookup(self, transaction: Transaction) -> str | None:
        """Return the reference of the document this transaction already created (its key, and
        only the document type or model its kind creates), or None."""
        ...

    async def read_machines(self, settings: dict[str, Any]) -> list[ErpMachine]:
        """Machines / work centers of the plant that `settings` (the plant's `erp:` block) names."""
        ...

    async def read_materials(self, settings: dict[str, Any]) -> list[ErpMaterial]: ...

    async def read_work_orders(
        self, settings: dict[str, Any], changed_since: datetime | None = None
    ) -> list[ErpWorkOrder]:
        """Production orders, only those changed since `changed_since` when given."""
        ...

    async def read_customer_orders(
        self, settings: dict[str, Any], changed_since: datetime | None = None
    ) -> list[ErpCustomerOrder]: ...

    async def read_stock(self, settings: dict[str, Any], material: str) -> list[StockLine]:
        """Where the material is and how much of it is blocked."""
        ...

    async def read_stocks(self, settings: dict[str, Any], materials: Iterable[str]) -> list[StockLine]:
        """The stock lines of many materials in as few requests as the ERP allows (the stock watch,
        routing/stock_watch.py); a material without a line has none on hand. Junk or a huge answer
        is `Unavailable`."""
        ...

    async def check(self, settings: dict[str, Any], needs: PlantNeeds) -> list[SettingProblem]:
        """Every `erp:` setting and reference the adapter will use, checked against the ERP;
        empty when all is well. Raises the error family when the ERP cannot be asked."""
        ...

    async def aclose(self) -> None: ...


class ErpAdapterBase:
    """Defaults for the read side: an ERP that offers no master data (the plant file stays the
    source). Adapters that can read override these."""

    name: ClassVar[str] = "erp"

    async def read_machines(self, settings: dict[str, Any]) -> list[ErpMachine]:
        return []

    async def read_materials(self, settings: dict[str, Any]) -> list[ErpMaterial]:
        return []

    async def read_work_orders(
        self, settings: dict[str, Any], changed_since: datetime | None = None
    ) -> list[ErpWorkOrder]:
        return []

    async def read_customer_orders(
        self, settings: dict[str, Any], changed_since: datetime | None = None
    ) -> list[ErpCustomerOrder]:
        return []

    async def read_stock(self, settings: dict[str, Any], material: str) -> list[StockLine]:
        return []

    async def read_stocks(self, settings: dict[str, Any], materials: Iterable[str]) -> list[StockLine]:
        """One read per material: an adapter whose ERP can filter on many at once overrides this."""
        return [line for material in sorted(set(materials)) for line in await self.read_stock(settings, material)]

    async def check(self, settings: dict[str, Any], needs: PlantNeeds) -> list[SettingProblem]:
        return []  # an ERP that needs no settings (the ledger): nothing can be wrong


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date (RFC 9110 10.2.3)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class HttpErpAdapter(ErpAdapterBase):
    """Shared work of every ERP reached over HTTP; a subclass implements only the vendor calls.

    The base owns the `httpx.AsyncClient` (built at first use, so constructing an adapter does
    no I/O), the timeouts, the auth headers, the mapping of HTTP outcomes to the error family
    and the request log. Secrets never reach the log: only method, path, status and duration.
    """

    name: ClassVar[str] = "http"
    default_timeout: ClassVar[float] = 30.0  # keep well below the outbox lease (120 s)

    def __init__(
        self,
        base_url: str,
        *,
        user: str | None = None,
        token: str | None = None,
        timeout: float | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = 16,
    ) -> None:
        if not base_url:
            raise ValueError(f"{self.name}: the ERP URL is not set (MFGOS_ERP_URL)")
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(
                f"{self.name}: the ERP URL must start with http:// or https://, got {base_url!r}"
            )
        self.base_url = base_url.rstrip("/")
        self.user = user
        self._token = token
        self._timeout = timeout if timeout is not None else self.default_timeout
        self._transport = transport
        self._max_connections = max_connections
        self._client: httpx.AsyncClient | None = None

    @classmethod
    def from_settings(cls, settings: Any, *, engine: Any = None, **kwargs: Any) -> HttpErpAdapter:
        """Build from the app settings (erp_url, erp_user, erp_token); the engine is the ledger's only."""
        return cls(
            getattr(settings, "erp_url", None) or "",
            user=getattr(settings, "erp_user", None),
            token=_secret(getattr(settings, "erp_token", None)),
            **kwargs,
        )

    def __repr__(self) -> str:  # never shows the token
        return f"{type(self).__name__}({self.base_url!r}, user={self.user!r})"

    # --- hooks for subclasses --------------------------------------------------------------

    def auth_headers(self) -> dict[str, str]:
        """Headers that authenticate every request (e.g. `Authorization: token key:secret`)."""
        return {}

    def error_message(self, response: httpx.Response) -> str:
        """The ERP's own words for a refused request; subclasses parse their error body."""
        try:
            body = response.json()
        except ValueError:
            return _clip(response.text) or f"HTTP {response.status_code}"
        if isinstance(body, dict):
            for key in ("message", "error", "detail"):
                value = body.get(key)
                if isinstance(value, str) and value:
                    return _clip(value)
        return _clip(response.text) or f"HTTP {response.status_code}"

    # --- the shared machinery ----------------------------------------------------------------

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self.base_url,
                timeout=httpx.Timeout(self._timeout, connect=min(10.0, self._timeout)),
                transport=self._transport,
                limits=httpx.Limits(max_connections=self._max_connections),
                headers={"Accept": "application/json", "User-Agent": "mfgos-erp"},
            )
        return self._client

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        allow: Iterable[int] = (),
    ) -> httpx.Response:
        """Send one request; return the response if it succeeded or its status is in `allow`.

        Anything else becomes the error family: 401/403 `AuthFailed`; 408, 429, 5xx, timeouts
        and network errors `Unavailable` (with Retry-After); other 4xx `Rejected` with the
        ERP's message. A timeout after the request was sent is ambiguous (the ERP may have
        saved the document), which is why the outbox looks a key up before posting it again.
        """
        started = time.perf_counter()
        try:
            response = await self.client.request(
                method, path, params=params, json=json, headers={**self.auth_headers(), **(headers or {})}
            )
        except httpx.TimeoutException as exc:
            log.warning(
                "%s %s %s timed out after %.1f s", self.name, method, path, time.perf_counter() - started
            )
            raise Unavailable(f"{self.name}: {method} {path} timed out") from exc
        except httpx.TransportError as exc:
            log.warning("%s %s %s failed: %s", self.name, method, path, type(exc).__name__)
            raise Unavailable(f"{self.name}: cannot reach the ERP ({type(exc).__name__})") from exc
        elapsed_ms = (time.perf_counter() - started) * 1000
        log.debug("%s %s %s -> %s in %.0f ms", self.name, method, path, response.status_code, elapsed_ms)
        if response.is_success or response.status_code in set(allow):
            return response
        error = self.error_for(response)
        log.warning("%s %s %s -> %s: %s", self.name, method, path, response.status_code, error)
        raise error

    def error_for(self, response: httpx.Response) -> ErpError:
        """Map a failed response to the error family."""
        status = response.status_code
        if status in (401, 403):
            return AuthFailed(
                f"{self.name}: the ERP refused our credentials (HTTP {status}): {self.error_message(response)}"
            )
        if status in (408, 429) or status >= 500:
            return Unavailable(
                f"{self.name}: the ERP answered HTTP {status}: {self.error_message(response)}",
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        return Rejected(self.error_message(response))

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _secret(value: Any) -> str | None:
    """Accept a plain string or a pydantic SecretStr."""
    if value is None:
        return None
    reveal = getattr(value, "get_secret_value", None)
    return reveal() if callable(reveal) else str(value)


def _clip(text: str, limit: int = 500) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def decision_time(transaction: Transaction, now: Callable[[], datetime]) -> datetime:
    """When the decision was taken (aware), or now for a transaction that does not say: the
    time every ERP document is dated by, however late a retry posts it."""
    when = transaction.decided_at or now()
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def require_setting(settings: dict[str, Any], name: str, purpose: str) -> Any:
    """A value of the plant file's `erp:` block, or `Rejected` saying which key to set and why.

    Rejected rather than a crash: the transaction stays in the thread, the plant engineer adds
    the key, and the planner retries it.
    """
    value = settings.get(name)
    if value in (None, "", {}, []):
        raise Rejected(f"the plant file's erp.{name} is not set; it is needed {purpose}")
    return value
