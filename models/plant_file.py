"""The plant file (docs/plant-file.md): read it, check it, store it.

`check(path)` lists every problem in one pass, each with the file, the YAML path and the
line, so an engineer fixes a file in one round instead of one error per run. `load(path)`
returns the validated `PlantFile` or raises `PlantFileError` with all the problems.
`apply(session, plant_file)` upserts it into the master-data tables and never touches what
happened on the floor (signals, exceptions, notifications, ERP transactions).

Decisions (see docs/plant-file.md):
- Unknown keys are problems, at the top level and inside every entry: a typo such as
  `peopel:` or `aliasses:` would otherwise drop data silently. Keys starting with `x-`
  are extensions and ignored anywhere.
- The YAML reader keeps `06:00`, `2026-11-25T06:00:00`, `+4917...`, `yes`/`no`/`on`/`off`
  as text (YAML 1.1 would turn them into minutes, datetimes, integers and booleans).
- Datetimes without an offset are plant-local (`plant.timezone`); they are stored as UTC.
- A datetime may also be relative to the moment the file is loaded (`now+2h`, `today+1d18h`),
  and a shift's start or end relative to it too (`now-1h`): the demo plant works any day, at
  any hour. Absolute datetimes are unaffected.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from sqlmodel import Session, select

from models import erp_settings
from models.decisions import DECISION_KINDS, PlantApproval
from models.tables import (
    Area,
    ChannelIdentity,
    CustomerOrder,
    ErpSyncState,
    ExceptionType,
    Machine,
    Material,
    Person,
    Plant,
    Role,
    RoutingRule,
    RowOrigin,
    Shift,
    WorkOrder,
    WorkOrderStatus,
)

__all__ = [
    "CONDITIONS",
    "DAYS",
    "PlantChanges",
    "PlantFile",
    "PlantFileError",
    "Problem",
    "SectionChanges",
    "apply",
    "check",
    "format_problems",
    "load",
    "parse_duration",
]

CONDITIONS = ("staging_conflict", "customer_orders_at_risk")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SEVERITIES = ("low", "medium", "high", "critical")
_FULL_DAYS = {"monday": "mon", "tuesday": "tue", "wednesday": "wed", "thursday": "thu",
              "friday": "fri", "saturday": "sat", "sunday": "sun"}
_ROLES = tuple(r.value for r in Role)
_EXCEPTION_TYPES = tuple(t.value for t in ExceptionType)
_STATUSES = tuple(s.value for s in WorkOrderStatus)
_SECRET_KEY = re.compile(r"password|passwd|secret|token|api[_-]?key|credential", re.IGNORECASE)

YamlPath = tuple[str | int, ...]


# --- problems ----------------------------------------------------------------------------


@dataclass
class Problem:
    """One thing wrong with a plant file, pointing at the line to fix."""

    file: str
    location: str  # YAML path, e.g. work_orders[2].machine; "" for the file as a whole
    line: int | None  # 1-based
    reason: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.location}: {self.reason}" if self.location else f"{where}: {self.reason}"


class PlantFileError(Exception):
    """A plant file that cannot be used; `problems` lists everything wrong with it."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(format_problems(problems))
        self.problems = problems


def format_problems(problems: Sequence[Problem]) -> str:
    """One problem per line, in the order given (check() sorts by line)."""
    return "\n".join(str(p) for p in problems)


def _location(path: YamlPath) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _unknown(kind: str, value: object, known: Sequence[str]) -> str:
    """`unknown machine 'HOB-1' (did you mean HOB-01? known: HOB-01, GRD-02, ...)`."""
    shown = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "") if known else "none defined"
    close = difflib.get_close_matches(str(value), list(known), n=2, cutoff=0.75)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    return f"unknown {kind} {value!r} ({hint}known: {shown})"


# --- durations, times, datetimes -----------------------------------------------------------

_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def parse_duration(text: str) -> timedelta:
    """`90s`, `10m`, `1h`, `1h30m`, `2d` (spaces between parts allowed); `10 mins` is an error."""
    match = _DURATION.fullmatch(text.replace(" ", "")) if isinstance(text, str) else None
    if match is None or not any(match.groups()):
        raise ValueError(f"bad duration {text!r}: write it like 90s, 10m, 1h, 1h30m or 2d")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


_RELATIVE = re.compile(r"(now|today)(?:([+-])(.+))?")


def _relative(value: str, zone: tzinfo, now: datetime) -> datetime | None:
    """`now`, `today`, `now+2h`, `now-30m`, `today+1d18h`: a moment relative to when the file is
    loaded, plant-local. `now` is the current hour (minutes dropped), `today` plant-local
    midnight. None when `value` is not of this form."""
    match = _RELATIVE.fullmatch(value.replace(" ", ""))
    if match is None:
        return None
    base, sign, amount = match.groups()
    local = now.astimezone(zone)
    local = local.replace(minute=0, second=0, microsecond=0) if base == "now" else local.replace(
        hour=0, minute=0, second=0, microsecond=0)
    try:
        offset = parse_duration(amount) if amount else timedelta(0)
        moment = local - offset if sign == "-" else local + offset
        moment.astimezone(UTC)  # stored as UTC: that must exist too
        return moment
    except OverflowError:
        raise ValueError(f"bad relative time {value!r}: too far from now") from None


def _local_datetime(value: object, zone: tzinfo, now: datetime | None = None) -> datetime:
    """ISO 8601 date and time; without an offset it is plant-local; or a relative form (`_relative`)
    against `now` (default: the system clock). Returns aware UTC."""
    if isinstance(value, str) and (moment := _relative(value, zone, now or datetime.now(UTC))) is not None:
        return moment.astimezone(UTC)
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError as error:
            raise ValueError(f"bad datetime {value!r} ({error}): write it like 2026-11-25T06:00") from None
        if "T" not in value and " " not in value.strip():
            raise ValueError(f"bad datetime {value!r}: add the time of day, e.g. {value.strip()}T16:00")
    else:
        raise ValueError(f"bad datetime {value!r}: write it like 2026-11-25T06:00")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


def _zone(info: ValidationInfo) -> tzinfo:
    return (info.context or {}).get("timezone", UTC)


def _now(info: ValidationInfo) -> datetime | None:
    """The moment relative dates are resolved against (`load(path, now=...)`)."""
    return (info.context or {}).get("now")


# --- field types -----------------------------------------------------------------------------


def _number_as_text(value: object) -> object:
    # The YAML reader yields int only for canonical decimals, so str() gives back what was written.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _an_id(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    if any(ch.isspace() for ch in value):
        raise ValueError(f"bad id {value!r}: ids may not contain spaces")
    return value


def _a_name(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    return value


def _one_of(kind: str, allowed: Sequence[str]) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in allowed:
            raise ValueError(_unknown(kind, value, allowed))
        return value

    return check


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        close = difflib.get_close_matches(value, sorted(available_timezones()), n=2, cutoff=0.6)
        hint = f"did you mean {' or '.join(close)}?" if close else "use an IANA name like Europe/Berlin"
        raise ValueError(f"unknown timezone {value!r} ({hint})") from None
    return value


def _clock(value: object) -> str:
    if isinstance(value, str) and re.fullmatch(r"\d{1,2}:\d{2}", value.strip()):
        hours, minutes = (int(part) for part in value.strip().split(":"))
        if hours < 24 and minutes < 60:
            return time(hours, minutes).strftime("%H:%M")
    raise ValueError(f"bad time {value!r}: write a plant-local time from 00:00 to 23:59, like \"06:00\"")


def _day(value: str) -> str:
    day = value.strip().lower()
    day = _FULL_DAYS.get(day, day)
    if day not in DAYS:
        raise ValueError(_unknown("day", value, DAYS))
    return day


def _duration(value: object) -> str:
    if isinstance(value, str) and parse_duration(value) > timedelta(0):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(f"bad duration {value!r}: give a unit, e.g. {value}m")
    if isinstance(value, str):
        raise ValueError(f"bad duration {value!r}: must be longer than zero")
    raise ValueError(f"bad duration {value!r}: write it like 90s, 10m, 1h, 1h30m or 2d")


def _language(value: str) -> str:
    if not re.fullmatch(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})?", value):
        raise ValueError(f"bad language {value!r}: use a code like en, de, es, hi")
    return value


def _email(value: str) -> str:
    """Compared without case: single sign-on finds the person by the e-mail the provider vouches for."""
    value = value.strip()
    if len(value) > 254 or not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
        raise ValueError(f"bad e-mail address {value!r}: write it like name@example.com")
    return value.lower()


def _channel_name(value: str) -> str:
    if value == "console":
        raise ValueError("'console' is implicit: every person can log in to the console by their id")
    if not re.fullmatch(r"[a-z][a-z0-9_]*", value):
        raise ValueError(f"bad channel name {value!r}: use a lower-case name like slack, telegram, whatsapp")
    return value


def _one_or_many(kind: str, allowed: Sequence[str] | None) -> Callable[[object], object]:
    """`when` values are one name or a list of names (routing matches either)."""

    def check(value: object) -> object:
        values = value if isinstance(value, list) else [value]
        if not values:
            raise ValueError(f"empty list: name at least one {kind}")
        for item in values:
            if not isinstance(item, str | int) or isinstance(item, bool):
                raise ValueError(f"expected a {kind} name or a list of them, got {_describe(item)}")
            if allowed is not None and str(item) not in allowed:
                raise ValueError(_unknown(kind, item, allowed))
        return [str(v) for v in value] if isinstance(value, list) else str(value)

    return check


def _topic_level(value: str) -> str:
    """One MQTT topic level: a plant's other name in `plants/<plant>/...`, or a Sparkplug group id."""
    if not value or any(c in value for c in "/+#"):
        raise ValueError(f"{value!r} is not one topic level (no '/', '+' or '#')")
    return value


def _topic_filter(value: str) -> str:
    """An MQTT topic filter: `+` is a whole level, `#` a whole last level."""
    parts = value.split("/")
    if not value:
        raise ValueError("empty topic filter")
    for index, part in enumerate(parts):
        if "#" in part and (part != "#" or index != len(parts) - 1):
            raise ValueError("'#' must be a whole last level")
        if "+" in part and part != "+":
            raise ValueError("'+' must be a whole level")
    return value


def _node_id(value: str) -> str:
    """An OPC UA node id as written in the server's address space, like `ns=2;s=HOB-01.State`."""
    if not value.strip():
        raise ValueError("empty OPC UA node id")
    return value.strip()


Id = Annotated[str, BeforeValidator(_number_as_text), AfterValidator(_an_id)]
Name = Annotated[str, BeforeValidator(_number_as_text), AfterValidator(_a_name)]
RoleName = Annotated[str, AfterValidator(_one_of("role", _ROLES))]
Timezone = Annotated[str, AfterValidator(_timezone)]
Clock = Annotated[str, BeforeValidator(_clock)]
Day = Annotated[str, AfterValidator(_day)]
Duration = Annotated[str, BeforeValidator(_duration)]
Language = Annotated[str, AfterValidator(_language)]
ChannelName = Annotated[str, AfterValidator(_channel_name)]
Email = Annotated[str, AfterValidator(_email)]
Address = Annotated[str, BeforeValidator(_number_as_text), AfterValidator(_a_name)]
Condition = Annotated[str, AfterValidator(_one_of("condition", CONDITIONS))]
Status = Annotated[str, AfterValidator(_one_of("status", _STATUSES))]
TopicLevel = Annotated[str, BeforeValidator(_number_as_text), AfterValidator(_topic_level)]
TopicFilter = Annotated[str, AfterValidator(_topic_filter)]
NodeId = Annotated[str, AfterValidator(_node_id)]
ExceptionTypeName = Annotated[str, AfterValidator(_one_of("exception type", _EXCEPTION_TYPES))]
OneOrMany = str | list[str]


# --- the plant file's shape ------------------------------------------------------------------


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _drop_extensions(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not (isinstance(k, str) and k.startswith("x-"))}
        return data


class PlantSpec(_Entry):
    id: Id
    name: Name
    timezone: Timezone


class AreaSpec(_Entry):
    id: Id
    name: Name


class MachineSpec(_Entry):
    id: Id
    name: Name
    area: Id
    aliases: list[Name] = Field(default_factory=list)
    kind: Id | None = None  # machines of one kind are sister machines: a work order can move between them
    mttr: Duration | None = None  # mean time to repair, the planner's "wait for the repair" without an estimate
    # A stop its state signals report opens a breakdown only once it has lasted this long: a
    # short FAULT (a jam cleared at the machine) pages nobody. None: at once.
    min_down: Duration | None = None

    def mttr_minutes(self) -> int | None:
        return int(parse_duration(self.mttr).total_seconds() // 60) if self.mttr else None


class MaterialSpec(_Entry):
    id: Id
    name: Name
    aliases: list[Name] = Field(default_factory=list)
    area: Id | None = None
    lead_time: Duration | None = None  # how long a new supply takes: a shortage's "wait for the material"

    def lead_time_minutes(self) -> int | None:
        return int(parse_duration(self.lead_time).total_seconds() // 60) if self.lead_time else None


class CustomerOrderSpec(_Entry):
    id: Id
    customer: Name
    due: datetime | None = None  # aware UTC

    @field_validator("due", mode="before")
    @classmethod
    def _plant_local(cls, value: object, info: ValidationInfo) -> object:
        return None if value is None else _local_datetime(value, _zone(info), _now(info))


class WorkOrderSpec(_Entry):
    id: Id
    machine: Id
    material: Id | None = None
    quantity: float | None = Field(default=None, gt=0)
    start: datetime | None = None  # aware UTC
    end: datetime | None = None  # aware UTC
    customer_order: Id | None = None
    status: Status = WorkOrderStatus.planned.value

    @field_validator("start", "end", mode="before")
    @classmethod
    def _plant_local(cls, value: object, info: ValidationInfo) -> object:
        return None if value is None else _local_datetime(value, _zone(info), _now(info))


class ShiftSpec(_Entry):
    id: Id
    start: Clock
    end: Clock  # before start: the shift runs past midnight
    days: list[Day] = Field(default_factory=lambda: list(DAYS))

    @field_validator("start", "end", mode="before")
    @classmethod
    def _relative_clock(cls, value: object, info: ValidationInfo) -> object:
        """`now-1h`: the plant-local time of day of a relative moment (a demo on shift at any hour)."""
        if isinstance(value, str):
            moment = _relative(value, _zone(info), _now(info) or datetime.now(UTC))
            if moment is not None:
                return moment.strftime("%H:%M")
        return value


class PersonSpec(_Entry):
    id: Id
    name: Name
    roles: list[RoleName] = Field(default_factory=list)
    areas: list[Id] = Field(default_factory=list)  # empty: every area
    shifts: list[Id] = Field(default_factory=list)  # empty: reachable at any time
    language: Language = "en"
    channels: dict[ChannelName, Address] = Field(default_factory=dict)
    email: Email | None = None  # single sign-on (OpenID Connect) signs in the person with this e-mail


class NotifySpec(_Entry):
    role: RoleName
    ack_within: Duration | None = None  # kept as written; parse with parse_duration
    escalate_to: RoleName | None = None
    if_: Condition | None = Field(default=None, alias="if")

    def stored(self) -> dict[str, Any]:
        return {"role": self.role, "ack_within": self.ack_within,
                "escalate_to": self.escalate_to, "if": self.if_}


class WhenSpec(_Entry):
    type: Annotated[OneOrMany, BeforeValidator(_one_or_many("exception type", _EXCEPTION_TYPES))] | None = None
    area: Annotated[OneOrMany, BeforeValidator(_one_or_many("area", None))] | None = None
    machine: Annotated[OneOrMany, BeforeValidator(_one_or_many("machine", None))] | None = None
    severity: Annotated[OneOrMany, BeforeValidator(_one_or_many("severity", SEVERITIES))] | None = None


class RuleSpec(_Entry):
    when: WhenSpec = Field(default_factory=WhenSpec)  # empty: every exception
    notify: list[NotifySpec] = Field(min_length=1)
    approver: RoleName = Role.supervisor.value


class ApprovalsSpec(_Entry):
    """Per decision kind, the role that approves it; without an entry the deciding role's word stands."""

    reschedule: RoleName | None = None
    material_request: RoleName | None = None
    customer_order_date: RoleName | None = None

    def stored(self) -> dict[str, str]:
        return {kind: role for kind in DECISION_KINDS if (role := getattr(self, kind))}


class FlappingSpec(_Entry):
    """A machine stopping more than `stops` times `within` a period opens one breakdown, even if every
    stop was shorter than its `min_down`."""

    stops: int = Field(ge=2)
    within: Duration


def filters_overlap(first: str, second: str) -> bool:
    """Whether some topic matches both MQTT filters (`+` one level, a final `#` any number)."""
    a, b = first.split("/"), second.split("/")
    for index in range(max(len(a), len(b))):
        x = a[index] if index < len(a) else None
        y = b[index] if index < len(b) else None
        if x == "#" or y == "#":
            return True
        if x is None or y is None:
            return False
        if x != y and "+" not in (x, y):
            return False
    return True


STATE_TOPICS = "plants/+/+/state"  # the plain-JSON machine states (signals/mqtt.py)
SPARKPLUG_TOPICS = "spBv1.0/#"


def _quality_topic(value: str) -> str:
    """A quality topic filter must not take machine states or Sparkplug messages from their readers."""
    for taken, what in ((STATE_TOPICS, "machine states"), (SPARKPLUG_TOPICS, "Sparkplug B")):
        if filters_overlap(value, taken):
            raise ValueError(f"{value!r} overlaps {taken} ({what}): give quality results a topic of their own, "
                             "like plants/<plant>/quality")
    return value


def _run_length(value: int) -> int:
    if value != 0 and not 3 <= value <= 50:
        raise ValueError(f"must be 0 (off) or 3 to 50 results, got {value}")
    return value


QualityTopic = Annotated[str, AfterValidator(_topic_filter), AfterValidator(_quality_topic)]
RunLength = Annotated[int, AfterValidator(_run_length)]


class QualitySignalsSpec(_Entry):
    """Quality inspection results (docs/signals.md): the MQTT topic filters that carry them, and how many
    results in a row open a drift warning (on one side of the centre line: `run`; rising or falling: `trend`)."""

    topics: list[QualityTopic] = Field(default_factory=list)
    run: RunLength = 7
    trend: RunLength = 7


class SignalsSpec(_Entry):
    """How machine signals name this plant and its machines (MQTT, Sparkplug B, OPC UA); docs/signals.md."""

    plant_aliases: list[TopicLevel] = Field(default_factory=list)  # other names in plants/<plant>/... topics
    sparkplug_groups: list[TopicLevel] = Field(default_factory=list)  # empty: every group
    topics: dict[TopicFilter, Id] = Field(default_factory=dict)  # MQTT topic filter -> machine id
    opcua: dict[Id, NodeId] = Field(default_factory=dict)  # machine id -> node id of its state variable
    flapping: FlappingSpec | None = None
    quality: QualitySignalsSpec | None = None

    @model_validator(mode="after")
    def _quality_topics_own(self) -> SignalsSpec:
        """A topic the `topics` map gives a machine carries its states: it cannot carry quality results too."""
        for quality_topic in self.quality.topics if self.quality else ():
            for state_topic in self.topics:
                if filters_overlap(quality_topic, state_topic):
                    raise ValueError(f"quality topic {quality_topic!r} overlaps the machine state topic "
                                     f"{state_topic!r} in signals.topics")
        return self


class ShiftDigestSpec(_Entry):
    """The digest at each shift's end, covering the shift: for `roles`, over the plant's `shifts` (all of
    them, or those listed), or, in a plant without shifts, between the plant-local times `at`."""

    roles: list[RoleName] = Field(min_length=1)
    shifts: list[Id] | None = Field(default=None, min_length=1)  # None: every shift of the plant file
    at: list[Clock] | None = Field(default=None, min_length=1)  # instead of shifts: the times a period ends

    @model_validator(mode="after")
    def _shifts_or_times(self) -> ShiftDigestSpec:
        if self.shifts is not None and self.at is not None:
            raise ValueError("give either shifts (the plant's shifts) or at (times of day), not both")
        return self


class DailyDigestSpec(_Entry):
    """The digest once a day at the plant-local time `at`, covering the 24 hours before, for `roles`."""

    at: Clock
    roles: list[RoleName] = Field(min_length=1)


class DigestsSpec(_Entry):
    """Which digests the plant sends (routing/digests.py); docs/digests.md."""

    shift: ShiftDigestSpec | None = None
    daily: DailyDigestSpec | None = None

    def stored(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


def _reminder_interval(value: str) -> str:
    if parse_duration(value) < timedelta(minutes=1):
        raise ValueError(f"remind_every {value!r} is too short: at least 1m (people would hear nothing else)")
    return value


class DecisionsSpec(_Entry):
    """Settings of the decision parts (docs/routing.md, "Decisions")."""

    # How often an open part reminds its role; None: every two hours (routing/decisions.py).
    remind_every: Annotated[Duration, AfterValidator(_reminder_interval)] | None = None

    def remind_every_s(self) -> float | None:
        return parse_duration(self.remind_every).total_seconds() if self.remind_every else None


def _watch_interval(value: str) -> str:
    if parse_duration(value) < timedelta(minutes=1):
        raise ValueError(f"every {value!r} is too short: at least 1m (each run reads the ERP)")
    return value


def _watch_horizon(value: str) -> str:
    if parse_duration(value) < timedelta(minutes=1):
        raise ValueError(f"horizon {value!r} is too short: at least 1m (no work order would be checked)")
    return value


class StockWatchSpec(_Entry):
    """The ERP stock watch (routing/stock_watch.py): every `every`, the stock of the materials the work
    orders starting within `horizon` need, against what they need; docs/plant-file.md."""

    every: Annotated[Duration, AfterValidator(_watch_interval)]
    horizon: Annotated[Duration, AfterValidator(_watch_horizon)] = "24h"

    def stored(self) -> dict[str, Any]:
        return {"every_s": parse_duration(self.every).total_seconds(),
                "horizon_s": parse_duration(self.horizon).total_seconds()}


class ReasonCodeSpec(_Entry):
    """One of the plant's downtime reason codes, and when an approved outcome gets it: the exception
    is of one of `types` (empty: any) and its report or approved fix says one of `words` (empty: any)."""

    code: Id = Field(max_length=64)
    types: list[ExceptionTypeName] = Field(default_factory=list)
    words: list[Name] = Field(default_factory=list)


class MesSpec(_Entry):
    """Write-back to the MES (docs/mes.md): how the MES names this plant and its machines, and the
    downtime reason codes. The MES's address and credentials are in the environment, never here."""

    site: Id | None = None  # the plant's name in the MES; default: the plant id
    machines: dict[Id, Id] = Field(default_factory=dict)  # machine id -> the MES's equipment id
    reason_codes: list[ReasonCodeSpec] = Field(default_factory=list)  # the first that fits is sent
    default_reason: Id = Field(max_length=64)  # when none fits


class BaselineFigures(_Entry):
    """The plant's figures from before mfgos, for one exception type or the whole plant: what the four
    outcomes (routing/outcomes.py) are compared with. Each is optional: a figure not given is not compared."""

    mttr_minutes: float | None = Field(default=None, gt=0)  # mean time from a problem to its resolution
    schedule_adherence: float | None = Field(default=None, ge=0, le=1)  # share of work orders finished on time
    status_calls_per_week: float | None = Field(default=None, ge=0)  # status meetings or calls a week
    erp_correction_rate: float | None = Field(default=None, ge=0, le=1)  # share of ERP postings corrected later


class BaselineSpec(BaselineFigures):
    """`baseline:` the plant's figures before mfgos (docs/plant-file.md), overall and per exception type."""

    by_type: dict[ExceptionTypeName, BaselineFigures] = Field(default_factory=dict)

    def stored(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True, exclude_defaults=True)


class PlantFile(_Entry):
    """A validated plant file; datetimes are aware UTC, everything else as written."""

    plant: PlantSpec
    approvals: ApprovalsSpec = Field(default_factory=ApprovalsSpec)
    areas: list[AreaSpec] = Field(default_factory=list)
    machines: list[MachineSpec] = Field(default_factory=list)
    materials: list[MaterialSpec] = Field(default_factory=list)
    customer_orders: list[CustomerOrderSpec] = Field(default_factory=list)
    work_orders: list[WorkOrderSpec] = Field(default_factory=list)
    shifts: list[ShiftSpec] = Field(default_factory=list)
    people: list[PersonSpec] = Field(default_factory=list)
    routing: list[RuleSpec] = Field(default_factory=list)
    erp: dict[str, Any] = Field(default_factory=dict)  # handed to the ERP adapter as is
    signals: SignalsSpec = Field(default_factory=SignalsSpec)
    digests: DigestsSpec = Field(default_factory=DigestsSpec)
    decisions: DecisionsSpec = Field(default_factory=DecisionsSpec)
    mes: MesSpec | None = None  # None: the MES is not written back to
    stock_watch: StockWatchSpec | None = None  # None: no stock watch
    baseline: BaselineSpec | None = None  # None: no figures from before mfgos to compare with
    _file: str = PrivateAttr(default="plant.yaml")
    _lines: dict[YamlPath, int] = PrivateAttr(default_factory=dict)

    def content_hash(self) -> str:
        """Hash of the content (not the text), so comments and layout do not count as changes."""
        canonical = json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()


_LISTS: dict[str, type[_Entry]] = {
    "areas": AreaSpec,
    "machines": MachineSpec,
    "materials": MaterialSpec,
    "customer_orders": CustomerOrderSpec,
    "work_orders": WorkOrderSpec,
    "shifts": ShiftSpec,
    "people": PersonSpec,
    "routing": RuleSpec,
}
_SECTIONS = ("plant", *_LISTS, "approvals", "erp", "signals", "digests", "decisions", "mes", "stock_watch", "baseline")
# Old names of sections: a file that still uses one is refused with the new name to use.
_RENAMED = {"x-signals": "signals"}


# --- reading YAML with line numbers --------------------------------------------------------


class _PlantLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2-like scalars: only true/false are booleans, only plain
    decimals are numbers, and times, timestamps and `+49...` numbers stay text."""

    yaml_implicit_resolvers: dict[str, list[tuple[str, re.Pattern[str]]]] = {}


_PlantLoader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_PlantLoader.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^-?(?:0|[1-9][0-9]*)$"), list("-0123456789"))
_PlantLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:-?(?:0|[1-9][0-9]*)(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?|-?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-0123456789."),
)
_PlantLoader.add_implicit_resolver("tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""])
_PlantLoader.add_implicit_resolver("tag:yaml.org,2002:merge", re.compile(r"^<<$"), ["<"])


def _describe(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


class _Reader:
    """Turns the YAML node tree into plain data plus a map from YAML path to line number."""

    def __init__(self, loader: _PlantLoader, file: str) -> None:
        self.loader = loader
        self.file = file
        self.lines: dict[YamlPath, int] = {}
        self.problems: list[Problem] = []
        self._open: set[int] = set()

    def read(self, node: yaml.Node, path: YamlPath) -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if id(node) in self._open:
            self._problem(path, node, "an alias refers to a node that contains it")
            return None
        self._open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            if isinstance(node, yaml.SequenceNode):
                return [self.read(child, (*path, i)) for i, child in enumerate(node.value)]
            return self.loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as error:
            mark = error.problem_mark or node.start_mark
            self.problems.append(Problem(self.file, _location(path), mark.line + 1, f"YAML: {error.problem}"))
            return None
        finally:
            self._open.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, path: YamlPath) -> dict[str, Any]:
        self.loader.flatten_mapping(node)  # resolves `<<: *anchor` merges
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self._problem(path, key_node, "a key must be plain text, not a list or mapping")
                continue
            key = self.loader.construct_object(key_node)
            key = key if isinstance(key, str) else key_node.value
            key_path = (*path, key)
            if key in result:
                first = self.lines.get(key_path)
                self._problem(key_path, key_node, f"duplicate key {key!r} (first at line {first})")
                continue
            self.lines[key_path] = key_node.start_mark.line + 1
            result[key] = self.read(value_node, key_path)
        return result

    def _problem(self, path: YamlPath, node: yaml.Node, reason: str) -> None:
        self.problems.append(Problem(self.file, _location(path), node.start_mark.line + 1, reason))


def _yaml_problem(file: str, error: yaml.YAMLError) -> Problem:
    if not isinstance(error, yaml.MarkedYAMLError) or error.problem_mark is None:
        return Problem(file, "", None, f"YAML syntax error: {error}")
    mark = error.problem_mark
    reason = f"YAML syntax error: {error.problem} (column {mark.column + 1}"
    if error.context and error.context_mark is not None and error.context_mark.line != mark.line:
        reason += f"; {error.context} at line {error.context_mark.line + 1}"
    return Problem(file, "", mark.line + 1, reason + ")")


# --- checking -----------------------------------------------------------------------------


class _Check:
    """One pass over a plant file's data: shape per entry, then cross-references."""

    def __init__(self, file: str, lines: dict[YamlPath, int], now: datetime | None = None) -> None:
        self.file = file
        self.lines = lines
        self.now = now or datetime.now(UTC)  # one moment for every relative date of the file
        self.problems: list[Problem] = []
        self.valid: dict[str, list[Any]] = {name: [] for name in _LISTS}
        self.plant: PlantSpec | None = None
        self.approvals: ApprovalsSpec | None = None
        self.ids: dict[str, list[str] | None] = {}  # None: the section is unreadable
        self.signals: SignalsSpec | None = None
        self.digests: DigestsSpec | None = None
        self.decisions: DecisionsSpec | None = None
        self.mes: MesSpec | None = None
        self.stock_watch: StockWatchSpec | None = None
        self.baseline: BaselineSpec | None = None

    def line(self, path: YamlPath) -> int | None:
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return None

    def add(self, path: YamlPath, reason: str) -> None:
        self.problems.append(Problem(self.file, _location(path), self.line(path), reason))

    def validate(self, model: type[_Entry], data: object, path: YamlPath, zone: tzinfo) -> Any:
        try:
            return model.model_validate(data, context={"timezone": zone, "now": self.now})
        except ValidationError as error:
            for item in error.errors(include_url=False):
                self._add_validation(model, path, item)
            return None

    def _add_validation(self, model: type[BaseModel], path: YamlPath, error: Any) -> None:
        loc = tuple(part for part in error["loc"] if part != "[key]")
        kind, value = error["type"], error.get("input")
        if kind == "missing":
            self.add((*path, *loc[:-1]), f"missing required key {loc[-1]!r}")
        elif kind == "extra_forbidden":
            known = _keys_of(model, loc[:-1])
            self.add((*path, *loc[:-1]), _unknown("key", loc[-1], known) if known else f"unknown key {loc[-1]!r}")
        elif kind == "value_error":
            self.add((*path, *loc), str(error["msg"]).removeprefix("Value error, "))
        elif kind in _EXPECTED:
            self.add((*path, *loc), f"expected {_EXPECTED[kind]}, got {_describe(value)}")
        elif kind == "too_short":
            self.add((*path, *loc), "must not be empty")
        elif kind == "greater_than":
            self.add((*path, *loc), f"must be greater than {error['ctx']['gt']:g}, got {value!r}")
        elif kind == "greater_than_equal":
            self.add((*path, *loc), f"must be at least {error['ctx']['ge']:g}, got {value!r}")
        else:
            self.add((*path, *loc), str(error["msg"]))

    def run(self, data: object) -> None:
        if not isinstance(data, dict):
            self.add((), f"the top level must be a mapping of sections ({', '.join(_SECTIONS)}), got {_describe(data)}")
            return
        for key in data:
            if key in _RENAMED:
                self.add((key,), f"'{key}' is now the section '{_RENAMED[key]}': rename the key "
                         "(its content stays the same)")
            elif key not in _SECTIONS and not key.startswith("x-"):
                self.add((key,), _unknown("section", key, _SECTIONS))
        zone: tzinfo = UTC
        if "plant" not in data:
            self.add((), "missing required section 'plant'")
        else:
            self.plant = self.validate(PlantSpec, data["plant"], ("plant",), UTC)
            if self.plant is not None:
                zone = ZoneInfo(self.plant.timezone)
        for name, model in _LISTS.items():
            entries = data.get(name)
            if entries is None:
                continue
            if not isinstance(entries, list):
                self.add((name,), f"expected a list, got {_describe(entries)}")
                self.ids[name] = None
                continue
            self._ids(name, entries)
            for index, entry in enumerate(entries):
                spec = self.validate(model, entry, (name, index), zone)
                if spec is not None:
                    self.valid[name].append(spec)
        if data.get("approvals") is not None:
            self.approvals = self.validate(ApprovalsSpec, data["approvals"], ("approvals",), zone)
        self._erp(data.get("erp"))
        if data.get("signals") is not None:
            self.signals = self.validate(SignalsSpec, data["signals"], ("signals",), zone)
        if data.get("digests") is not None:
            self.digests = self.validate(DigestsSpec, data["digests"], ("digests",), zone)
        if data.get("decisions") is not None:
            self.decisions = self.validate(DecisionsSpec, data["decisions"], ("decisions",), zone)
        if data.get("mes") is not None:
            self.mes = self.validate(MesSpec, data["mes"], ("mes",), zone)
        if data.get("stock_watch") is not None:
            self.stock_watch = self.validate(StockWatchSpec, data["stock_watch"], ("stock_watch",), zone)
        if data.get("baseline") is not None:
            self.baseline = self.validate(BaselineSpec, data["baseline"], ("baseline",), zone)
        self._references(data, zone)

    def _ids(self, section: str, entries: list[Any]) -> None:
        """Known ids include entries with other problems, so one mistake is reported once."""
        first: dict[str, int] = {}
        known: list[str] = []
        self.ids[section] = known
        for index, entry in enumerate(entries):
            if section == "routing" or not isinstance(entry, dict):
                continue
            value = _number_as_text(entry.get("id"))
            if not isinstance(value, str):
                continue
            value = value.strip()
            if value in first:
                earlier = self.line((section, first[value], "id"))
                self.add((section, index, "id"), f"duplicate id {value!r} (first at line {earlier})")
            else:
                first[value] = index
                known.append(value)

    def _erp(self, block: object) -> None:
        if block is None:
            return
        if not isinstance(block, dict):
            self.add(("erp",), f"expected a mapping, got {_describe(block)}")
            return

        def walk(value: object, path: YamlPath) -> None:
            if isinstance(value, dict):
                for key, inner in value.items():
                    if _SECRET_KEY.search(str(key)):
                        self.add((*path, key), "looks like a secret: credentials belong in MFGOS_ERP_USER / "
                                 "MFGOS_ERP_TOKEN, never in the plant file")
                    walk(inner, (*path, key))
            elif isinstance(value, list):
                for index, inner in enumerate(value):
                    walk(inner, (*path, index))

        walk(block, ("erp",))
        for path, reason in erp_settings.problems(block):  # keys no adapter reads, wrong shapes
            if not _SECRET_KEY.search(str(path[0])):  # a secret is said once, above
                self.add(("erp", *path), reason)

    def _reference(self, path: YamlPath, value: str | None, section: str, kind: str) -> None:
        known = self.ids.get(section, [])
        if known is not None and value is not None and value not in known:
            self.add(path, _unknown(kind, value, known))

    def _references(self, data: dict[str, Any], zone: tzinfo) -> None:
        """Reads the raw entries, so an entry with a shape problem still has its references checked."""
        for i, machine in _entries(data, "machines"):
            self._reference(("machines", i, "area"), _text(machine.get("area")), "areas", "area")
        for i, material in _entries(data, "materials"):
            self._reference(("materials", i, "area"), _text(material.get("area")), "areas", "area")
        for i, order in _entries(data, "work_orders"):
            for key, section, kind in (("machine", "machines", "machine"), ("material", "materials", "material"),
                                       ("customer_order", "customer_orders", "customer order")):
                self._reference(("work_orders", i, key), _text(order.get(key)), section, kind)
            start, end = (_moment(order.get(key), zone, self.now) for key in ("start", "end"))
            if start is not None and end is not None and end <= start:
                self.add(("work_orders", i, "end"), f"end {order['end']} must be after start {order['start']}")
        addresses: dict[tuple[str, str], tuple[str, YamlPath]] = {}
        for i, person in _entries(data, "people"):
            for key, section, kind in (("areas", "areas", "area"), ("shifts", "shifts", "shift")):
                for j, value in enumerate(_list(person.get(key))):
                    self._reference(("people", i, key, j), _text(value), section, kind)
            channels = person.get("channels")
            for channel, address in (channels.items() if isinstance(channels, dict) else ()):
                path: YamlPath = ("people", i, "channels", channel)
                key = (channel, _text(address))
                if key[1] is None:
                    continue
                if key in addresses:
                    owner, first = addresses[key]
                    self.add(path, f"{channel} address {key[1]!r} is already used by person {owner!r} "
                             f"(line {self.line(first)})")
                else:
                    addresses[key] = (str(_text(person.get("id"))), path)
            email = _text(person.get("email"))
            if email is not None:
                path = ("people", i, "email")
                key = ("email", email.strip().lower())
                if key in addresses:
                    owner, first = addresses[key]
                    self.add(path, f"e-mail {email!r} is already used by person {owner!r} (line {self.line(first)})")
                else:
                    addresses[key] = (str(_text(person.get("id"))), path)
        signals = data.get("signals")
        if isinstance(signals, dict):
            topics, opcua = signals.get("topics"), signals.get("opcua")
            for topic_filter, machine in (topics.items() if isinstance(topics, dict) else ()):
                self._reference(("signals", "topics", topic_filter), _text(machine), "machines", "machine")
            for machine in (opcua if isinstance(opcua, dict) else ()):
                self._reference(("signals", "opcua", machine), _text(machine), "machines", "machine")
        self._digest_shifts(data)
        mes = data.get("mes")
        machines = mes.get("machines") if isinstance(mes, dict) else None
        for machine in (machines if isinstance(machines, dict) else ()):
            self._reference(("mes", "machines", machine), _text(machine), "machines", "machine")
        for i, rule in _entries(data, "routing"):
            when = rule.get("when")
            for key, section in (("area", "areas"), ("machine", "machines")):
                wanted = when.get(key) if isinstance(when, dict) else None
                for value in wanted if isinstance(wanted, list) else [wanted]:
                    self._reference(("routing", i, "when", key), _text(value), section, key)
            for j, step in enumerate(_list(rule.get("notify"))):
                if isinstance(step, dict) and step.get("escalate_to") is not None and step.get("ack_within") is None:
                    self.add(("routing", i, "notify", j, "escalate_to"),
                             "escalate_to needs ack_within (how long to wait before escalating)")


    def _digest_shifts(self, data: dict[str, Any]) -> None:
        """The per-shift digest names shifts of the file, and needs some: the plant's, or its own `at` times."""
        digests = data.get("digests")
        spec = digests.get("shift") if isinstance(digests, dict) else None
        if not isinstance(spec, dict):
            return
        for j, value in enumerate(_list(spec.get("shifts"))):
            self._reference(("digests", "shift", "shifts", j), _text(value), "shifts", "shift")
        if spec.get("shifts") is None and spec.get("at") is None and not _list(data.get("shifts")):
            self.add(("digests", "shift"), "the plant has no shifts: list the times the digest is sent under "
                     "at (e.g. at: [\"06:00\", \"14:00\", \"22:00\"])")


def _entries(data: dict[str, Any], section: str) -> list[tuple[int, dict[str, Any]]]:
    entries = data.get(section)
    return [(i, e) for i, e in enumerate(entries) if isinstance(e, dict)] if isinstance(entries, list) else []


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: object) -> str | None:
    value = _number_as_text(value)
    return value.strip() or None if isinstance(value, str) else None


def _moment(value: object, zone: tzinfo, now: datetime) -> datetime | None:
    try:
        return _local_datetime(value, zone, now)
    except ValueError:
        return None


_EXPECTED = {
    "string_type": "text",
    "list_type": "a list",
    "dict_type": "a mapping (key: value)",
    "model_type": "a mapping (key: value)",
    "model_attributes_type": "a mapping (key: value)",
    "float_type": "a number",
    "float_parsing": "a number",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "bool_type": "true or false",
    "datetime_type": "a datetime like 2026-11-25T06:00",
}


def _keys_of(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys allowed at `loc` inside `model`, for "unknown key" messages."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        fields = {f.alias or name: f for name, f in current.model_fields.items()}
        if part not in fields:
            return []
        current = fields[part].annotation
        # list[X], X | None, dict[K, X] -> X
        while typing.get_origin(current) is not None and typing.get_args(current):
            current = [a for a in typing.get_args(current) if a is not type(None)][-1]
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or name for name, f in current.model_fields.items()]
    return []


def _inspect(path: str | Path, now: datetime | None = None) -> tuple[list[Problem], PlantFile | None]:
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        return [Problem(file, "", None, f"cannot read the file: {error}")], None
    loader = _PlantLoader(text)
    try:
        try:
            root = loader.get_single_node()
        except yaml.YAMLError as error:
            return [_yaml_problem(file, error)], None
        if root is None:
            return [Problem(file, "", None, "the file is empty")], None
        reader = _Reader(loader, file)
        data = reader.read(root, ())
    finally:
        loader.dispose()
    checker = _Check(file, reader.lines, now)
    checker.problems.extend(reader.problems)
    checker.run(data)
    problems = sorted(checker.problems, key=lambda p: (p.line is None, p.line or 0))
    if problems or checker.plant is None:
        return problems, None
    plant_file = PlantFile(plant=checker.plant, erp=data.get("erp") or {}, signals=checker.signals or SignalsSpec(),
                           mes=checker.mes, stock_watch=checker.stock_watch, baseline=checker.baseline,
                           approvals=checker.approvals or ApprovalsSpec(), digests=checker.digests or DigestsSpec(),
                           decisions=checker.decisions or DecisionsSpec(), **checker.valid)
    plant_file._file = file
    plant_file._lines = reader.lines
    return [], plant_file


def check(path: str | Path, now: datetime | None = None) -> list[Problem]:
    """Every problem in the plant file at `path`, sorted by line; empty when it is fine."""
    return _inspect(path, now)[0]


def load(path: str | Path, now: datetime | None = None) -> PlantFile:
    """The validated plant file; raises PlantFileError listing every problem.

    `now`: the moment relative dates (`now+2h`, `today+1d`) are resolved against; the runtime
    passes its clock, so a replay or a test on an injected clock sees the same plant."""
    problems, plant_file = _inspect(path, now)
    if plant_file is None:
        raise PlantFileError(problems)
    return plant_file


# --- storing ------------------------------------------------------------------------------


@dataclass
class SectionChanges:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.updated or self.removed)


@dataclass
class PlantChanges:
    """What `apply` changed, per section (plant, areas, ..., channel_identities, routing)."""

    plant_id: str
    sections: dict[str, SectionChanges] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return any(self.sections.values())

    def summary(self) -> str:
        """`plant pune-1: machines: 1 added (HOB-03), 1 updated (HOB-01); people: ...`."""
        parts = []
        for name, change in self.sections.items():
            words = [f"{len(ids)} {verb} ({', '.join(ids)})"
                     for verb, ids in (("added", change.added), ("updated", change.updated),
                                       ("removed", change.removed)) if ids]
            if words:
                parts.append(f"{name}: {', '.join(words)}")
        return f"plant {self.plant_id}: " + ("; ".join(parts) if parts else "no changes")


_Row = Area | Machine | Material | CustomerOrder | WorkOrder | Shift | Person | PlantApproval | RoutingRule


def _desired(plant_file: PlantFile) -> dict[str, tuple[type[_Row], str, dict[str, dict[str, Any]]]]:
    """Per section: the table, its key column and the wanted column values by key."""
    pid = plant_file.plant.id
    ours = RowOrigin.plant_file.value  # an entry takes over a row the ERP sync created under the same id
    return {
        "areas": (Area, "id", {a.id: {"plant_id": pid, "id": a.id, "name": a.name} for a in plant_file.areas}),
        "machines": (Machine, "id", {
            m.id: {"plant_id": pid, "id": m.id, "name": m.name, "area_id": m.area, "aliases": list(m.aliases),
                   "kind": m.kind, "mttr_minutes": m.mttr_minutes(), "origin": ours,
                   "min_down_s": parse_duration(m.min_down).total_seconds() if m.min_down else None}
            for m in plant_file.machines}),
        "materials": (Material, "id", {
            m.id: {"plant_id": pid, "id": m.id, "name": m.name, "aliases": list(m.aliases), "area_id": m.area,
                   "lead_time_minutes": m.lead_time_minutes(), "origin": ours}
            for m in plant_file.materials}),
        "customer_orders": (CustomerOrder, "id", {
            c.id: {"plant_id": pid, "id": c.id, "customer": c.customer, "due": c.due, "origin": ours}
            for c in plant_file.customer_orders}),
        "work_orders": (WorkOrder, "id", {
            w.id: {"plant_id": pid, "id": w.id, "machine_id": w.machine, "material_id": w.material,
                   "quantity": w.quantity, "start": w.start, "end": w.end,
                   "customer_order_id": w.customer_order, "status": w.status, "origin": ours}
            for w in plant_file.work_orders}),
        "shifts": (Shift, "id", {
            s.id: {"plant_id": pid, "id": s.id, "start": s.start, "end": s.end, "days": list(s.days)}
            for s in plant_file.shifts}),
        "people": (Person, "id", {
            p.id: {"plant_id": pid, "id": p.id, "name": p.name, "roles": list(p.roles), "areas": list(p.areas),
                   "shifts": list(p.shifts), "language": p.language, "channels": dict(p.channels),
                   "email": p.email}
            for p in plant_file.people}),
        "approvals": (PlantApproval, "kind", {
            kind: {"plant_id": pid, "kind": kind, "role": role} for kind, role in plant_file.approvals.stored().items()}),
        "routing": (RoutingRule, "position", {
            str(i): {"plant_id": pid, "position": i, "when": r.when.model_dump(exclude_none=True),
                     "notify": [step.stored() for step in r.notify], "approver": r.approver}
            for i, r in enumerate(plant_file.routing)}),
    }


def _identities(plant_file: PlantFile) -> dict[str, tuple[str, str, str, YamlPath]]:
    """`person:channel` -> (person, channel, address, YAML path); console logs in by person id."""
    wanted: dict[str, tuple[str, str, str, YamlPath]] = {}
    for i, person in enumerate(plant_file.people):
        wanted[f"{person.id}:console"] = (person.id, "console", person.id, ("people", i, "id"))
        for channel, address in person.channels.items():
            wanted[f"{person.id}:{channel}"] = (person.id, channel, address, ("people", i, "channels", channel))
    return wanted


def apply(session: Session, plant_file: PlantFile, source_file: str | None = None) -> PlantChanges:
    """Upsert the plant file into the master-data tables and report what changed.

    Idempotent: the same content twice changes nothing. Rows no longer in the file are
    deleted, except master data an ERP sync brought in (`origin` "erp") and the areas those
    rows still name; an entry with the id of such a row takes it over (it becomes the plant
    file's). Signals, exceptions, notifications and ERP transactions are never touched, and a
    machine keeps its last known `running` state. Flushes, never commits: the caller's
    session_scope decides. Raises PlantFileError if a chat address already belongs to a
    person of another plant in the same database.
    """
    pid = plant_file.plant.id
    changes = PlantChanges(pid)
    content_hash = plant_file.content_hash()
    plant = session.get(Plant, pid)
    if plant is not None and plant.content_hash == content_hash and source_file in (None, plant.source_file):
        return changes

    identities = _identities(plant_file)
    _refuse_foreign_addresses(session, plant_file, identities, source_file)

    plant_changes = changes.sections.setdefault("plant", SectionChanges())
    wanted_plant = {"name": plant_file.plant.name, "timezone": plant_file.plant.timezone, "erp": plant_file.erp,
                    "signals": plant_file.signals.model_dump(mode="json", exclude_defaults=True),
                    "digests": plant_file.digests.stored(), "remind_every_s": plant_file.decisions.remind_every_s(),
                    "mes": plant_file.mes.model_dump(mode="json") if plant_file.mes else {},
                    "stock_watch": plant_file.stock_watch.stored() if plant_file.stock_watch else {},
                    "baseline": plant_file.baseline.stored() if plant_file.baseline else {}}
    if source_file is not None:
        wanted_plant["source_file"] = source_file
    if plant is None:
        plant = Plant(id=pid, **wanted_plant)
        session.add(plant)
        plant_changes.added.append(pid)
    elif _assign(plant, wanted_plant):
        plant_changes.updated.append(pid)
    plant.content_hash = content_hash
    plant.loaded_at = datetime.now(UTC)
    session.flush()

    # Deletes are flushed before inserts so a moved unique chat address never collides.
    pending: list[tuple[SectionChanges, type[_Row], str, dict[str, dict[str, Any]], dict[str, Any]]] = []
    desired = _desired(plant_file)
    kept = _kept_for_erp_rows(session, pid, desired)
    for name, (table, key, wanted) in desired.items():
        section = changes.sections.setdefault(name, SectionChanges())
        existing = {str(getattr(row, key)): row for row in session.exec(select(table).where(table.plant_id == pid))}
        for row_key in sorted(existing.keys() - wanted.keys(), key=_natural):
            if getattr(existing[row_key], "origin", RowOrigin.plant_file) != RowOrigin.plant_file:
                continue  # the ERP sync's row: the sync keeps it up to date
            if name in kept and row_key in kept[name]:
                continue
            session.delete(existing.pop(row_key))
            section.removed.append(row_key)
        pending.append((section, table, key, wanted, existing))
    if changes.sections["work_orders"].removed or changes.sections["customer_orders"].removed:
        _reread_orders_at_next_sync(session, pid)
    identity_changes = changes.sections.setdefault("channel_identities", SectionChanges())
    stored = {f"{row.person_id}:{row.channel}": row
              for row in session.exec(select(ChannelIdentity).where(ChannelIdentity.plant_id == pid))}
    for label, row in stored.items():
        wanted_identity = identities.get(label)
        if wanted_identity is None or wanted_identity[2] != row.address:
            session.delete(row)
            (identity_changes.updated if wanted_identity else identity_changes.removed).append(label)
    session.flush()

    for section, table, _key, wanted, existing in pending:
        for row_key, values in wanted.items():
            row = existing.get(row_key)
            if row is None:
                session.add(table(**values))
                section.added.append(row_key)
            elif _assign(row, values):
                section.updated.append(row_key)
    for label, (person_id, channel, address, _path) in identities.items():
        row = stored.get(label)
        if row is None or row.address != address:
            session.add(ChannelIdentity(plant_id=pid, person_id=person_id, channel=channel, address=address))
            if row is None:
                identity_changes.added.append(label)
    session.flush()
    return changes


def _kept_for_erp_rows(session: Session, pid: str,
                       desired: dict[str, tuple[type[_Row], str, dict[str, dict[str, Any]]]]) -> dict[str, set[str]]:
    """Rows the file no longer lists that must stay because ERP-synced rows name them: areas."""
    areas: set[str] = set()
    for name, table in (("machines", Machine), ("materials", Material)):
        taken_over = desired[name][2].keys()
        areas.update(row.area_id for row in session.exec(select(table).where(
            table.plant_id == pid, table.origin != RowOrigin.plant_file)) if row.area_id and row.id not in taken_over)
    return {"areas": areas}


def _reread_orders_at_next_sync(session: Session, pid: str) -> None:
    """An order the file dropped may still be in the ERP; an incremental sync would not read it
    again until it changes there, so the next sync reads every order once more."""
    state = session.get(ErpSyncState, pid)
    if state is not None and state.watermark is not None:
        state.watermark = None
        session.add(state)


def _natural(key: str) -> tuple[int, str]:
    return (int(key), "") if key.isdigit() else (0, key)


def _assign(row: Any, values: dict[str, Any]) -> bool:
    changed = False
    for column, value in values.items():
        if getattr(row, column) != value:
            setattr(row, column, value)
            changed = True
    return changed


def _refuse_foreign_addresses(session: Session, plant_file: PlantFile,
                              identities: dict[str, tuple[str, str, str, YamlPath]],
                              source_file: str | None) -> None:
    """A chat address maps to one person in the whole database (the table's unique key)."""
    pid = plant_file.plant.id
    wanted = {(channel, address): path for _person, channel, address, path in identities.values()}
    taken = session.exec(select(ChannelIdentity).where(ChannelIdentity.plant_id != pid)).all()
    problems = []
    for row in taken:
        path = wanted.get((row.channel, row.address))
        if path is not None:
            problems.append(Problem(source_file or plant_file._file, _location(path), plant_file._lines.get(path),
                                    f"{row.channel} address {row.address!r} already belongs to person "
                                    f"{row.person_id!r} of plant {row.plant_id!r}"))
    if problems:
        raise PlantFileError(problems)
