"""The plant's routing rules: the first rule whose `when` matches decides who is told and who approves."""

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


def matching_rule(session: Session, plant_id: str, facts: dict[str, Any]) -> Rule | None:
    """`facts`: type, area, machine, severity of the exception."""
    rows = session.exec(
        select(RoutingRule).where(RoutingRule.plant_id == plant_id).order_by(RoutingRule.position)
    ).all()
    for row in rows:
        if _matches(row.when or {}, facts):
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
    return None
