"""Total decoding: a payload from a machine either decodes or gives a reason, and never raises.

One unreadable message must never stop the intake. An exception out of a decoder would
leave an MQTT message unacknowledged, so the broker would hand it back at every reconnect
and the messages behind it would never be stored. So every decoder in signals/ returns a
value or an `Unreadable(reason)`, and what cannot be read is stored as a signal of kind
`unreadable`: the reason in plain words, and the first 64 KiB of the raw bytes (base64)
with their length, so someone can look at what the machine really sent.

`storable_problem` is the last gate before the store: a decoded value that the database
would refuse (NaN, a NUL character, text that is not valid Unicode, nesting deeper than
`MAX_DEPTH`) is unreadable too, instead of failing the store every time.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from models import Signal
    from routing.workflow import Context

UNREADABLE = "unreadable"  # the signal kind
MAX_DEPTH = 32  # nesting of a machine message; a state message has 1 or 2 levels
STORED_DEPTH = MAX_DEPTH + 4  # a stored payload wraps the message in a few levels of its own
RAW_KEPT = 64 * 1024  # bytes of an unreadable payload kept with its signal
MAX_TEXT = 2000  # characters of a topic or reason kept in an unreadable signal
MAX_INTEGER = 2**64  # Sparkplug's widest integer; anything bigger is not a machine value


@dataclass(frozen=True)
class Unreadable:
    """Why a payload could not be read, in words an integrator understands."""

    reason: str


def nesting_too_deep(data: bytes, limit: int = MAX_DEPTH) -> bool:
    """True when JSON text nests `[`/`{` deeper than `limit` (strings skipped).

    Checked before `json.loads`, whose recursive parser raises RecursionError on deep input.
    """
    depth, in_string, escaped = 0, False, False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return False


def json_value(data: bytes, *, limit: int) -> Any:
    """Any JSON value from at most `limit` bytes of UTF-8 that the store can keep, or an `Unreadable`.

    Reasons read after "the payload is": "not JSON: ...", "JSON nested deeper than 32 levels".
    """
    if len(data) > limit:
        return Unreadable(f"{len(data)} bytes, more than the {limit} a message may have")
    if nesting_too_deep(data):
        return Unreadable(f"JSON nested deeper than {MAX_DEPTH} levels")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        return Unreadable(f"not JSON: the bytes are not UTF-8 text (byte {error.start} is invalid)")
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except ValueError as error:  # JSONDecodeError, and integers longer than Python reads
        return Unreadable(f"not JSON: {error}")
    problem = storable_problem(value)
    return Unreadable(f"JSON the store cannot keep: {problem}") if problem else value


def json_object(data: bytes, *, limit: int) -> dict[str, Any] | Unreadable:
    """A JSON object (a machine message), or the reason `data` is not one."""
    value = json_value(data, limit=limit)
    if isinstance(value, Unreadable | dict):
        return value
    return Unreadable(f'expected a JSON object like {{"state": "RUNNING"}}, got {_json_type(value)}')


def storable_problem(value: Any) -> str | None:
    """Why the database could not keep `value` as JSON, or None when it can."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > STORED_DEPTH:
            return f"nested deeper than {STORED_DEPTH} levels"
        if isinstance(item, str):
            if problem := _text_problem(item):
                return problem
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if abs(item) > MAX_INTEGER:
                return "a number larger than any machine value (more than 64 bits)"
        elif isinstance(item, float):
            if not math.isfinite(item):
                return f"{item} is not a number JSON allows"
        elif isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    return f"a key of type {type(key).__name__}"
                if problem := _text_problem(key):
                    return problem
                stack.append((child, depth + 1))
        elif isinstance(item, list | tuple):
            stack.extend((child, depth + 1) for child in item)
        else:
            return f"a value of type {type(item).__name__}"
    return None


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "text with a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "text that is not valid Unicode (a lone surrogate)"
    return None


def clean_text(text: object, limit: int = MAX_TEXT) -> str:
    """Text from a message made safe to store and show: valid UTF-8, no NUL, at most `limit` characters."""
    value = text if isinstance(text, str) else repr(text)
    value = value[:limit].encode("utf-8", "backslashreplace").decode("utf-8")
    return value.replace("\x00", "\\x00")


def unreadable_payload(reason: str, data: bytes, **context: str | None) -> dict[str, Any]:
    """The payload of an `unreadable` signal: why, where from, and the raw bytes (capped, base64)."""
    return {"reason": clean_text(reason), **{k: clean_text(v) if v is not None else None for k, v in context.items()},
            "raw_base64": base64.b64encode(data[:RAW_KEPT]).decode("ascii"), "raw_bytes": len(data),
            "raw_truncated": len(data) > RAW_KEPT}


def worth_logging(count: int) -> bool:
    """Log the 1st, 2nd, 4th, 8th, ... occurrence: a flood of bad messages cannot fill the log."""
    return count > 0 and count & (count - 1) == 0


def handle_unreadable_signal(ctx: Context, signal: Signal) -> None:
    """Processing an unreadable signal changes nothing: its reason becomes the signal's error."""
    signal.error = str(signal.payload.get("reason") or "unreadable payload")[:MAX_TEXT]


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _json_type(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "true/false", type(None): "null"}.get(type(value), "a number")
