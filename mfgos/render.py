"""`mfgos replay SCENARIO` without --json: the replay result as tables a plant engineer can read."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

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


def _status(status: str | None) -> Text:
    return Text(status or "-", style=STATUS_STYLE.get(status or "", ""))


def _cells(*values: Any) -> list[Text]:
    """Plain text cells: chat text may hold brackets that rich would read as markup."""
    return [v if isinstance(v, Text) else Text("-" if v is None else str(v)) for v in values]


def _value(value: Any) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def _join(values: list[str] | None) -> str:
    return ", ".join(values) if values else "-"


def _fields(fields: dict[str, Any]) -> str:
    """The fields people check first, then the rest, without long free text."""
    first = ("machine", "work_order", "material", "action", "quantity", "unit", "priority", "downtime_minutes")
    ordered = [k for k in first if fields.get(k) not in (None, "")]
    ordered += [k for k in fields if k not in first and k not in ("description", "reason", "exception")
                and fields[k] not in (None, "")]
    return ", ".join(f"{k}={fields[k]}" for k in ordered)


def exceptions_table(result: dict[str, Any]) -> Table:
    table = Table(title="Exceptions", box=box.SIMPLE_HEAVY, title_justify="left")
    for name in ("#", "code", "type", "machine", "status", "work orders", "customer orders at risk", "summary"):
        table.add_column(name, overflow="fold")
    for exc in result.get("exceptions", []):
        table.add_row(*_cells(exc.get("id"), exc.get("code"), exc.get("type"), exc.get("machine"),
                              _status(exc.get("status")), _join(exc.get("work_orders")),
                              _join(exc.get("customer_orders_at_risk")), exc.get("summary") or _opened_text(exc)))
    return table


def _opened_text(exc: dict[str, Any]) -> str:
    for event in exc.get("timeline", []):
        if event.get("kind") == "opened":
            return str(event.get("text") or "-")
    return "-"


def timeline_table(exc: dict[str, Any]) -> Table:
    table = Table(title=f"Timeline of {exc.get('code') or exc.get('id')}", box=box.SIMPLE, title_justify="left")
    for name in ("at", "event", "person", "text"):
        table.add_column(name, overflow="fold")
    for event in exc.get("timeline", []):
        data = event.get("data") or {}
        detail = event.get("text") or ", ".join(f"{k}={_value(v)}" for k, v in data.items() if v not in (None, "", [], {}))
        table.add_row(*_cells(_elapsed(event.get("elapsed_s")), event.get("kind"), event.get("person") or "",
                              detail))
    return table


def notifications_table(result: dict[str, Any]) -> Table:
    table = Table(title="Notifications", box=box.SIMPLE_HEAVY, title_justify="left")
    for name in ("at", "to", "role", "channel", "exc", "kind", "text"):
        table.add_column(name, overflow="fold")
    for note in result.get("notifications", []):
        exception = note.get("exception")
        table.add_row(*_cells(_elapsed(note.get("elapsed_s")), note.get("to"), note.get("role"),
                              note.get("channel"), exception, note.get("kind"), note.get("text") or ""))
    return table


def erp_table(result: dict[str, Any]) -> Table:
    table = Table(title="ERP transactions", box=box.SIMPLE_HEAVY, title_justify="left")
    for name in ("exc", "kind", "status", "reference", "fields"):
        table.add_column(name, overflow="fold")
    for txn in result.get("erp_transactions", []):
        exception = txn.get("exception")
        status = txn.get("status")
        table.add_row(*_cells(exception, txn.get("kind"), _status(status), txn.get("reference") or txn.get("error"),
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
