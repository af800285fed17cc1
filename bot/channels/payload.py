"""Total accessors for platform payloads: whatever shape arrives, a parse function gets the type
it expects or an empty value, never an exception (a signed delivery the platform sends again
and again until it is answered 200 must not fail in our parser)."""

from __future__ import annotations

import re
from typing import Any

CONTROL = re.compile(r"[\x00-\x1f\x7f]")
NUL = "\x00"
MAX_ID = 200  # characters of a platform id (user, chat, message, event)


def obj(value: Any) -> dict[str, Any]:
    """`value` when it is an object, else an empty one."""
    return value if isinstance(value, dict) else {}


def objects(value: Any) -> list[dict[str, Any]]:
    """The objects of a list (anything else in it is skipped); an empty list for a non-list."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def text(value: Any) -> str:
    """A string as sent, without NUL characters (PostgreSQL stores none); anything else is empty."""
    return value.replace(NUL, "") if isinstance(value, str) else ""


def ident(value: Any, limit: int = MAX_ID) -> str | None:
    """A platform id (a string or an integer, as platforms send them), or None when it is missing,
    too long or holds control characters."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str) or not value or len(value) > limit or CONTROL.search(value):
        return None
    return value
