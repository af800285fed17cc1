"""`mfgos replay SCENARIO` without --json: the replay result as tables a plant engineer can read."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from routing import messages
from routing.timeline import Line, sentences

STATUS_STYLE = {"open": "red", "acknowledged": "yellow", "proposed": "cyan", "approved": "blue",
                "posted": "green", "closed": "dim green", "pending": "yellow", "failed": "red",
                "rejected": "red", "sent": "green"}


def _elapsed(elapsed_s: float | None) -> str:
    """Scenario time the way scenario files write offsets: +4m, +1h30m, +2m30s."""
    if elapsed_s is None:
        return "-"
    hours, rest = divmod(int(round(elapsed_s)), 3600)
    minutes, seconds = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes or hours else "") + (f"{seconds}s" if seconds else "")
    return f"+{text or '0m'}"


def _status(status: str | None, words: bool = False) -> Text:
    """An exception's status as people say it; `words`: an outbox status (pending, posted...) as it is."""
    label = (messages.words(status) if words else messages.status_name(status, "en")) if status else "-"
    return Text(label, style=STATUS_STYLE.get(status or "", ""))


def _cells(*values: Any) -> list[Text]:
    """Plain text cells: chat text may hold brackets that rich would read as markup."""
    return [v if isinstance(v, Text) else Text("-" if v is None else str(v)) for v in values]


def _value(value: Any) -> str:
    if isinstance(value, dict):
        return " ".join(_value(v) for v in value.values() if v not in (None, "", [], {}))
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def _join(values: list[str] | None) -> str:
    return ", ".join(values) if values else "-"


def _fields(fields: dict[str, Any]) -> str:
    """The fields people check first, then the rest, without long free text."""
    first = ("machine", "work_order", "material", "action", "quantity", "unit", "priority", "downtime_minutes")
    ordered = [k for k in first if fields.get(k) not in (None, "")]
    ordered += [k for k in fields if k not in first and k not in ("description", "reason", "exception")
                and fields[k] not in (None, "")]
    return " · ".join(f"{messages.words(k)}: {_value(fields[k])}" for k in ordered)


def exceptions_table(result: dict[str, Any]) -> Table:
    table = Table(title="Exceptions", box=box.SIMPLE_HEAVY, title_justify="left")
    for name in ("#", "code", "type", "machine", "status", "work orders", "customer orders at risk", "summary"):
        table.add_column(name, overflow="fold")
    for exc in result.get("exceptions", []):
        table.add_row(*_cells(exc.get("id"), exc.get("code"), messages.type_name(str(exc.get("type") or "other"), "en"),
                              exc.get("machine"),
                              _status(exc.get("status")), _join(exc.get("work_orders")),
                              _join(exc.get("customer_orders_at_risk")), exc.get("summary") or _opened_text(exc)))
    return table


def _opened_text(exc: dict[str, Any]) -> str:
    for event in exc.get("timeline", []):
        if event.get("kind") == "opened":
            return str(event.get("text") or "-")
    return "-"


def timeline_table(exc: dict[str, Any]) -> Table:
    """One sentence per event (the console's, in English); events that say nothing are left out."""
    table = Table(title=f"Timeline of {exc.get('code') or exc.get('id')}", box=box.SIMPLE, title_justify="left")
    for name in ("at", "what happened"):
        table.add_column(name, overflow="fold")
    events = exc.get("timeline", [])
    said = sentences([Line(kind=str(e.get("kind") or ""), person=e.get("person"), text=str(e.get("text") or ""),
                           data=e.get("data") or {}) for e in events],
                     "en", machine=exc.get("machine"), where=exc.get("machine") or exc.get("area"))
    for event, sentence in zip(events, said, strict=True):
        if sentence:
            table.add_row(*_cells(_elapsed(event.get("elapsed_s")), sentence))
    return table


def notifications_table(result: dict[str, Any]) -> Table:
    table = Table(title="Notifications", box=box.SIMPLE_HEAVY, title_justify="left")
    for name in ("at", "to", "role", "channel", "exc", "kind", "text"):
        table.add_column(name, overflow="fold")
    for note in result.get("notifications", []):
        exception = note.get("exception")
        role = note.get("role")
        table.add_row(*_cells(_elapsed(note.get("elapsed_s")), note.get("to"),
                              messages.role_name(role, "en") if role else None, note.get("channel"), exception,
                              messages.words(str(note.get("kind") or "")), note.get("text") or ""))
    return table


def erp_table(result: dict[str, Any]) -> Table:
    table = Table(title="ERP transactions", box=box.SIMPLE_HEAVY, title_justify="left")
    for name in ("exc", "kind", "status", "reference", "fields"):
        table.add_column(name, overflow="fold")
    for txn in result.get("erp_transactions", []):
        exception = txn.get("exception")
        status = txn.get("status")
        table.add_row(*_cells(exception, messages.kind_name(str(txn.get("kind") or ""), "en"), _status(status, words=True),
                              txn.get("reference") or txn.get("error"),
                              _fields(txn.get("fields") or {})))
    return table


def print_replay(result: dict[str, Any], console: Console | None = None) -> None:
    """Print exceptions (with their timelines), notifications and ERP transactions of a replay."""
    console = console or Console(highlight=False)
    exceptions = result.get("exceptions", [])
    notes = result.get("notifications", [])
    txns = result.get("erp_transactions", [])
    console.print(Text(f"Replay of {result.get('scenario', '?')} on plant {result.get('plant', '?')}, "
                       f"start {result.get('start', '?')}", style="bold"))
    console.print(exceptions_table(result))
    for exc in exceptions:
        console.print(timeline_table(exc))
    console.print(notifications_table(result))
    console.print(erp_table(result))
    posted = sum(1 for t in txns if t.get("status") == "posted")
    console.print(Text(f"{len(exceptions)} exception(s), {len(notes)} notification(s), "
                       f"{len(txns)} ERP transaction(s), {posted} posted."))
    labels = {"erp_transactions": "ERP transaction(s)", "notifications": "notification(s)",
              "timers": "escalation timer(s)"}
    waiting = {what: count for what, count in (result.get("pending") or {}).items() if count}
    if waiting:
        listed = ", ".join(f"{count} {labels.get(what, what)}" for what, count in waiting.items())
        console.print(Text(f"Still pending at the end ({result.get('end', '?')}): {listed}.", style="yellow"))
