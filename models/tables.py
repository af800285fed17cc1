"""The store: plant master data, signals, exceptions and the two outboxes.

All timestamps are timezone-aware and stored as UTC (SQLModel's `UTCDateTime` enforces it
on SQLite and PostgreSQL alike). Plant-local time exists only at the edges: the plant file,
shifts and rendered messages.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel


def _json(**kw: Any) -> Any:
    return Field(default_factory=kw.pop("factory", dict), sa_column=Column(JSON, nullable=False), **kw)


class ExceptionType(StrEnum):
    breakdown = "breakdown"
    quality = "quality"
    material = "material"
    safety = "safety"
    tooling = "tooling"
    utility = "utility"
    staffing = "staffing"
    other = "other"


class Intent(StrEnum):
    report = "report"
    update = "update"
    ack = "ack"
    approve = "approve"
    reject = "reject"
    query = "query"
    other = "other"


class Role(StrEnum):
    operator = "operator"
    supervisor = "supervisor"
    maintenance = "maintenance"
    maintenance_lead = "maintenance_lead"
    planner = "planner"
    materials = "materials"
    quality = "quality"
    customer_service = "customer_service"
    manager = "manager"


class ExceptionStatus(StrEnum):
    open = "open"
    acknowledged = "acknowledged"
    proposed = "proposed"
    approved = "approved"
    posted = "posted"
    closed = "closed"


class WorkOrderStatus(StrEnum):
    planned = "planned"
    released = "released"
    running = "running"
    held = "held"
    done = "done"


class ErpKind(StrEnum):
    maintenance_request = "maintenance_request"
    production_order_status = "production_order_status"
    production_order_reschedule = "production_order_reschedule"
    stock_status = "stock_status"
    nonconformance = "nonconformance"


class RowOrigin(StrEnum):
    """Where a master-data row came from: a plant-file load deletes only its own rows."""

    plant_file = "plant_file"
    erp = "erp"  # created by an ERP master-data sync


def _origin() -> Any:
    # The server default lets the migration fill rows that existed before the column.
    return Field(default=RowOrigin.plant_file.value, sa_column_kwargs={"server_default": RowOrigin.plant_file.value})


class OutboxStatus(StrEnum):
    pending = "pending"
    sent = "sent"  # notifications: handed to the platform; ERP: posted
    failed = "failed"  # permanent: recorded on the timeline, never retried by itself
    rejected = "rejected"  # ERP said no (validation); correct and retry from the thread
    not_configured = "not_configured"  # notifications: the person's channel is not set up in this process


# --- plant master data -------------------------------------------------------------------


class Plant(SQLModel, table=True):
    __tablename__ = "plants"
    id: str = Field(primary_key=True)
    name: str
    timezone: str = "UTC"
    source_file: str | None = None
    content_hash: str | None = None
    erp: dict[str, Any] = _json()
    signals: dict[str, Any] = _json()  # the plant file's `signals` section, as validated
    mes: dict[str, Any] = _json()  # the plant file's `mes` section, as validated; empty: no MES write-back
    loaded_at: datetime | None = None
    digests: dict[str, Any] = _json()  # the plant file's `digests` section, as validated (routing/digests.py)
    remind_every_s: float | None = None  # `decisions.remind_every`: how often an open decision part reminds
    stock_watch: dict[str, Any] = _json()  # the plant file's `stock_watch` section; empty: no stock watch
    baseline: dict[str, Any] = _json()  # the plant file's `baseline` section: its figures before mfgos (routing/outcomes.py)


class Area(SQLModel, table=True):
    __tablename__ = "areas"
    plant_id: str = Field(primary_key=True, foreign_key="plants.id")
    id: str = Field(primary_key=True)
    name: str


class Machine(SQLModel, table=True):
    __tablename__ = "machines"
    plant_id: str = Field(primary_key=True, foreign_key="plants.id")
    id: str = Field(primary_key=True)
    name: str
    area_id: str
    aliases: list[str] = _json(factory=list)
    running: bool = True  # last known state from signals or a confirmed fix
    kind: str | None = None  # machines of one kind can take each other's work orders (sister machines)
    mttr_minutes: int | None = None  # mean time to repair: a repair's expected length without an estimate
    origin: str = _origin()
    min_down_s: float | None = None  # the plant file's `min_down`: a shorter stop opens no breakdown
    down_since: datetime | None = None  # when state signals last took it down (None while running)
    breakdown_due_at: datetime | None = None  # a stop held back by `min_down`: the breakdown opens then
    stops: list[str] = _json(factory=list)  # ISO times of its recent stops, for the flapping limit


class Material(SQLModel, table=True):
    __tablename__ = "materials"
    plant_id: str = Field(primary_key=True, foreign_key="plants.id")
    id: str = Field(primary_key=True)
    name: str
    aliases: list[str] = _json(factory=list)
    area_id: str | None = None
    origin: str = _origin()
    # The plant file's `lead_time`: how long a new supply takes, when a shortage's options wait for it.
    lead_time_minutes: int | None = None


class CustomerOrder(SQLModel, table=True):
    __tablename__ = "customer_orders"
    plant_id: str = Field(primary_key=True, foreign_key="plants.id")
    id: str = Field(primary_key=True)
    customer: str
    due: datetime | None = None
    origin: str = _origin()


class WorkOrder(SQLModel, table=True):
    __tablename__ = "work_orders"
    __table_args__ = (Index("ix_work_orders_plant_end", "plant_id", "end"),)  # due in a period (KPIs)
    plant_id: str = Field(primary_key=True, foreign_key="plants.id")
    id: str = Field(primary_key=True)
    machine_id: str
    material_id: str | None = None
    quantity: float | None = None
    start: datetime | None = None
    end: datetime | None = None
    customer_order_id: str | None = None
    status: str = WorkOrderStatus.planned
    origin: str = _origin()


class ErpSyncState(SQLModel, table=True):
    """Per plant: how far the ERP master-data sync got, so the next run reads only what changed."""

    __tablename__ = "erp_sync_state"
    plant_id: str = Field(primary_key=True, foreign_key="plants.id")
    erp: str  # the adapter that set the watermark; another ERP's watermark means nothing
    watermark: str | None = None  # ISO 8601, the latest change the ERP reported; None: read everything
    synced_at: datetime
    changed_at: datetime | None = None  # the last sync that changed master data: processes refresh their NLP


class ErpCheck(SQLModel, table=True):
    """Per plant: the last preflight of its `erp:` settings (`mfgos check-erp`), which `serve` runs at
    start and before every sync; kept in the store so the console of every replica shows it."""

    __tablename__ = "erp_checks"
    plant_id: str = Field(primary_key=True, foreign_key="plants.id")
    erp: str
    checked_at: datetime
    problems: list[str] = _json(factory=list)  # "erp.KEY: what is wrong: how to fix it"
    error: str | None = None  # the ERP could not be asked: why (the problems are then the last known)


class Shift(SQLModel, table=True):
    __tablename__ = "shifts"
    plant_id: str = Field(primary_key=True, foreign_key="plants.id")
    id: str = Field(primary_key=True)
    start: str  # "HH:MM" plant-local
    end: str
    days: list[str] = _json(factory=list)


class Person(SQLModel, table=True):
    __tablename__ = "people"
    plant_id: str = Field(primary_key=True, foreign_key="plants.id")
    id: str = Field(primary_key=True)
    name: str
    roles: list[str] = _json(factory=list)
    areas: list[str] = _json(factory=list)
    shifts: list[str] = _json(factory=list)
    language: str = "en"
    channels: dict[str, str] = _json()
    email: str | None = None  # lower case; single sign-on (OpenID Connect) finds the person by it


class ChannelIdentity(SQLModel, table=True):
    """Maps an address on a chat platform to a person, so inbound messages find their sender."""

    __tablename__ = "channel_identities"
    __table_args__ = (UniqueConstraint("channel", "address"),)
    id: int | None = Field(default=None, primary_key=True)
    plant_id: str = Field(foreign_key="plants.id")
    person_id: str
    channel: str
    address: str


class RoutingRule(SQLModel, table=True):
    __tablename__ = "routing_rules"
    plant_id: str = Field(primary_key=True, foreign_key="plants.id")
    position: int = Field(primary_key=True)
    when: dict[str, Any] = _json()
    notify: list[dict[str, Any]] = _json(factory=list)
    approver: str = Role.supervisor


# --- what happens ------------------------------------------------------------------------


class Signal(SQLModel, table=True):
    """Every inbound event, stored before it is processed. Append-only; `source_key` dedupes."""

    __tablename__ = "signals"
    # Work-order status reports, for schedule adherence (routing/kpis.py); partial: chat and machine
    # signals, nearly all of them, do not pay for it.
    __table_args__ = (Index("ix_signals_work_orders", "received_at", postgresql_where=text("kind = 'work_order'"),
                            sqlite_where=text("kind = 'work_order'")),
                      # What inbound workers and the sweep look for (Runtime.process_waiting): a few
                      # rows, found without reading the millions processed (migration 0014).
                      Index("ix_signals_unprocessed", "id", postgresql_where=text("processed_at IS NULL"),
                            sqlite_where=text("processed_at IS NULL")),
                      # What a person sent (the console): chat and actions only, machine signals have no person.
                      Index("ix_signals_person", "person_id", "id", postgresql_where=text("person_id IS NOT NULL"),
                            sqlite_where=text("person_id IS NOT NULL")))
    id: int | None = Field(default=None, primary_key=True)
    plant_id: str = Field(foreign_key="plants.id", index=True)
    source: str  # slack, telegram, whatsapp, console, replay, mqtt, opcua, webhook, ...
    source_key: str = Field(unique=True)
    kind: str  # chat | action | machine
    received_at: datetime
    person_id: str | None = None
    payload: dict[str, Any] = _json()
    processed_at: datetime | None = None
    error: str | None = None


class PlantException(SQLModel, table=True):
    """One exception (a problem on the floor) and its thread."""

    __tablename__ = "exceptions"
    __table_args__ = (Index("ix_exceptions_plant_status", "plant_id", "status"),
                      Index("ix_exceptions_plant_opened", "plant_id", "opened_at"))  # KPIs and export by period
    id: int | None = Field(default=None, primary_key=True)
    plant_id: str = Field(foreign_key="plants.id")
    code: str = Field(unique=True)  # E-0042, shown on channels without threads
    type: str
    status: str = ExceptionStatus.open
    severity: str = "medium"
    summary: str = ""
    language: str = "en"
    machine_id: str | None = None
    area_id: str | None = None
    material_id: str | None = None
    reporter_id: str | None = None
    rule_position: int | None = None
    approver_role: str = Role.supervisor
    work_orders: list[str] = _json(factory=list)
    customer_orders_at_risk: list[str] = _json(factory=list)
    staging_conflict: dict[str, Any] = _json()
    proposal: dict[str, Any] = _json()
    opened_at: datetime
    acknowledged_at: datetime | None = None
    proposed_at: datetime | None = None
    approved_at: datetime | None = None
    posted_at: datetime | None = None
    closed_at: datetime | None = None


class TimelineEvent(SQLModel, table=True):
    __tablename__ = "timeline_events"
    id: int | None = Field(default=None, primary_key=True)
    exception_id: int = Field(foreign_key="exceptions.id", index=True)
    at: datetime = Field(index=True)  # KPIs and export read a period's events (routing/kpis.py)
    kind: str
    person_id: str | None = None
    text: str = ""
    data: dict[str, Any] = _json()


class Notification(SQLModel, table=True):
    """Outbox row for one chat message to one person; a worker delivers it."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_pending", "status", "next_attempt_at"),)
    id: int | None = Field(default=None, primary_key=True)
    plant_id: str = Field(foreign_key="plants.id")
    dedupe_key: str = Field(unique=True)
    exception_id: int | None = Field(default=None, foreign_key="exceptions.id", index=True)
    person_id: str
    role: str | None = None
    kind: str  # alert, escalation, reply, question, refusal, confirmation, erp_reference, ...
    channel: str
    address: str
    language: str = "en"
    text: str
    buttons: list[str] = _json(factory=list)
    created_at: datetime = Field(index=True)  # KPIs read a period's messages
    status: str = OutboxStatus.pending
    attempts: int = 0
    next_attempt_at: datetime | None = None
    sent_at: datetime | None = None
    platform_message_id: str | None = None
    error: str | None = None
    # A `buttons_update` row edits the buttons of this earlier notification (its platform message):
    # written by the lifecycle when an action is no longer allowed, delivered by the channel.
    updates_id: int | None = Field(default=None, foreign_key="notifications.id")
    # An answer that is better as a chart (a trend, a ranking): its figures (routing/queries.py `Chart`);
    # the channels and the console draw the same PNG from them (bot/charts.py).
    chart: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON(none_as_null=True), nullable=True))


class AckTimer(SQLModel, table=True):
    """An escalation timer: if `role` has not acknowledged by `due_at`, page `escalate_to`."""

    __tablename__ = "ack_timers"
    __table_args__ = (UniqueConstraint("exception_id", "role"),)
    id: int | None = Field(default=None, primary_key=True)
    exception_id: int = Field(foreign_key="exceptions.id", index=True)
    role: str
    due_at: datetime = Field(index=True)
    escalate_to: str | None = None
    status: str = "pending"  # pending | acknowledged | fired
    settled_at: datetime | None = None


class Approval(SQLModel, table=True):
    __tablename__ = "approvals"
    id: int | None = Field(default=None, primary_key=True)
    exception_id: int = Field(foreign_key="exceptions.id", index=True)
    person_id: str
    decision: str  # approve | reject
    accepted: bool
    reason: str = ""
    at: datetime


class ErpTransaction(SQLModel, table=True):
    """Outbox row for one ERP transaction, written in the same DB transaction as its approval."""

    __tablename__ = "erp_transactions"
    __table_args__ = (Index("ix_erp_transactions_pending", "status", "next_attempt_at"),)
    id: int | None = Field(default=None, primary_key=True)
    plant_id: str = Field(foreign_key="plants.id")
    exception_id: int | None = Field(default=None, foreign_key="exceptions.id", index=True)
    sequence: int = 0  # order within the exception
    kind: str
    fields: dict[str, Any] = _json()
    idempotency_key: str = Field(unique=True)
    # What buttons and the console name the row by (`erp_retry:<public_id>`): random, so a button
    # says nothing about other rows and nobody presses one by counting.
    public_id: str = Field(default_factory=lambda: secrets.token_hex(10), max_length=32, unique=True)
    status: str = OutboxStatus.pending
    attempts: int = 0
    next_attempt_at: datetime | None = None
    created_at: datetime = Field(index=True)  # KPIs read a period's transactions
    posted_at: datetime | None = None
    reference: str | None = None
    error: str | None = None


class LedgerDocument(SQLModel, table=True):
    """The embedded ledger ERP's own book: what a real ERP would hold."""

    __tablename__ = "ledger_documents"
    id: int | None = Field(default=None, primary_key=True)
    reference: str = Field(unique=True)
    idempotency_key: str = Field(unique=True)
    kind: str
    fields: dict[str, Any] = _json()
    posted_at: datetime


class Attachment(SQLModel, table=True):
    """A photo or voice note sent with a chat message, linked to the exception's timeline."""

    __tablename__ = "attachments"
    id: int | None = Field(default=None, primary_key=True)
    # What links use (GET /attachments/{public_id}): random, so one file's link says nothing about another's.
    public_id: str = Field(default_factory=lambda: secrets.token_urlsafe(16), max_length=64, unique=True)
    signal_id: int = Field(foreign_key="signals.id")
    exception_id: int | None = Field(default=None, foreign_key="exceptions.id")
    kind: str  # photo | voice | file
    content_type: str | None = None
    path: str
    created_at: datetime
