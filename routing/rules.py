"""The plant's routing rules: the first rule whose `when` matches decides who is told and who approves.

Rules change only with the plant file, so they are read and parsed once per plant version
(`load_rules`) and matched in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlmodel import Session, select

from models import RoutingRule
from models.plant_file import parse_duration


@dataclass(frozen=True)
class NotifyStep:
    role: str
    ack_within: timedelta | None = None
    escalate_to: str | None = None
    condition: str | None = None


@dataclass(frozen=True)
class Rule:
    position: int
    steps: tuple[NotifyStep, ...]
    approver: str


def _matches(when: dict[str, Any], facts: dict[str, Any]) -> bool:
    for key, wanted in when.items():
        have = facts.get(key)
        options = wanted if isinstance(wanted, list) else [wanted]
        if have not in options:
            return False
    return True


@dataclass(frozen=True)
class RuleEntry:
    """One stored rule, parsed: its `when` and what it decides."""

    when: dict[str, Any]
    rule: Rule


def load_rules(session: Session, plant_id: str) -> tuple[RuleEntry, ...]:
    """The plant's rules in order, parsed (durations, defaults)."""
    rows = session.exec(
        select(RoutingRule).where(RoutingRule.plant_id == plant_id).order_by(RoutingRule.position)
    ).all()
    return tuple(RuleEntry(when=dict(row.when or {}), rule=_parse(row)) for row in rows)


def _parse(row: RoutingRule) -> Rule:
    steps = tuple(
        NotifyStep(
            role=step["role"],
            ack_within=parse_duration(step["ack_within"]) if step.get("ack_within") else None,
            escalate_to=step.get("escalate_to"),
            condition=step.get("if"),
        )
        for step in row.notify
    )
    return Rule(position=row.position, steps=steps, approver=row.approver or "supervisor")


def matching_rule(session: Session, plant_id: str, facts: dict[str, Any],
                  rules: tuple[RuleEntry, ...] | None = None) -> Rule | None:
    """`facts`: type, area, machine, severity of the exception. `rules`: as `load_rules` gives them
    (read here without)."""
    for entry in rules if rules is not None else load_rules(session, plant_id):
        if _matches(entry.when, facts):
            return entry.rule
    return None
