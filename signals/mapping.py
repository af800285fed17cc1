"""Which machine a topic or an OPC UA node speaks for: the plant file's `x-signals` section.

```yaml
x-signals:
  plant_aliases: [pune]                    # other names of this plant in `plants/<plant>/...` topics
  sparkplug_groups: [pune-gears]           # the Sparkplug group ids of this plant (default: every group)
  topics:                                  # MQTT topic filter -> machine id (first match wins)
    "plants/pune-1/hobber-1/state": HOB-01
    "spBv1.0/pune/+/gateway-3/lc300": HOB-01
  opcua:                                   # machine id -> node id of its state variable
    HOB-01: "ns=2;s=HOB-01.State"
```

Without a `topics` entry a topic names its machine by id (`plants/<plant>/<machine>/state`,
the Sparkplug device or edge-node id). A `plants/<plant>/...` topic whose plant is neither
the plant id nor one of `plant_aliases` (and that no `topics` entry maps) is another
plant's, and so is a Sparkplug group outside `sparkplug_groups` when that list is given.
The section is read under `signals` too, the name proposed for the plant-file contract;
until the plant-file checker knows that key, `x-` keeps the file valid (extension keys are
ignored by the checker).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SECTION_NAMES = ("signals", "x-signals")
SECTION_KEYS = ("topics", "opcua", "plant_aliases", "sparkplug_groups")


class SignalMapError(ValueError):
    """A signals section that cannot be used: says the file, the key and what is wrong."""


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT filter matching: `+` is one level, a final `#` any number (including none)."""
    want, have = topic_filter.split("/"), topic.split("/")
    for index, part in enumerate(want):
        if part == "#":
            return True
        if index >= len(have) or (part != "+" and part != have[index]):
            return False
    return len(want) == len(have)


def _check_filter(topic_filter: str) -> str | None:
    parts = topic_filter.split("/")
    if not topic_filter:
        return "empty topic filter"
    for index, part in enumerate(parts):
        if "#" in part and (part != "#" or index != len(parts) - 1):
            return "'#' must be a whole last level"
        if "+" in part and part != "+":
            return "'+' must be a whole level"
    return None


@dataclass(frozen=True)
class SignalMap:
    """Topic filters and OPC UA nodes per machine, checked against the plant's machines."""

    plant_id: str = ""
    machines: frozenset[str] = frozenset()
    topics: dict[str, str] = field(default_factory=dict)
    opcua: dict[str, str] = field(default_factory=dict)
    plant_aliases: frozenset[str] = frozenset()
    sparkplug_groups: tuple[str, ...] = ()  # empty: every group

    def machine_for_topic(self, topic: str) -> str | None:
        return next((machine for pattern, machine in self.topics.items() if topic_matches(pattern, topic)), None)


def load_signal_map(plant_file: Path) -> SignalMap:
    """Read the signals section of a plant file (the rest of the file is the plant-file checker's job)."""
    try:
        data = yaml.safe_load(Path(plant_file).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise SignalMapError(f"{plant_file}: cannot read the signals section: {error}") from error
    if not isinstance(data, dict):
        raise SignalMapError(f"{plant_file}: not a plant file (expected a mapping)")
    plant = data.get("plant") if isinstance(data.get("plant"), dict) else {}
    machines = frozenset(str(m["id"]) for m in data.get("machines") or [] if isinstance(m, dict) and "id" in m)
    name = next((n for n in SECTION_NAMES if n in data), None)
    if name is None:
        return SignalMap(plant_id=str(plant.get("id", "")), machines=machines)
    section = data[name] or {}
    where = f"{plant_file}: {name}"
    if not isinstance(section, dict):
        raise SignalMapError(f"{where}: expected a mapping with 'topics' and/or 'opcua'")
    unknown = sorted(set(section) - set(SECTION_KEYS))
    if unknown:
        raise SignalMapError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))} "
                             f"(known: {', '.join(SECTION_KEYS)})")
    topics = _mapping(section.get("topics"), f"{where}.topics")
    opcua = _mapping(section.get("opcua"), f"{where}.opcua")
    aliases = _levels(section.get("plant_aliases"), f"{where}.plant_aliases")
    groups = _levels(section.get("sparkplug_groups"), f"{where}.sparkplug_groups")
    problems = [f"{where}.topics[{k!r}]: {p}" for k in topics if (p := _check_filter(k))]
    problems += [f"{where}.topics[{k!r}]: {_unknown_machine(v, machines)}" for k, v in topics.items()
                 if v not in machines]
    problems += [f"{where}.opcua[{k!r}]: {_unknown_machine(k, machines)}" for k in opcua if k not in machines]
    if problems:
        raise SignalMapError("\n".join(problems))
    return SignalMap(plant_id=str(plant.get("id", "")), machines=machines, topics=topics, opcua=opcua,
                     plant_aliases=frozenset(aliases), sparkplug_groups=tuple(groups))


def _levels(value: Any, where: str) -> list[str]:
    """A list of single topic levels (no `/`, `+` or `#`)."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str | int) and str(v) for v in value):
        raise SignalMapError(f"{where}: expected a list of names, like [pune]")
    bad = [str(v) for v in value if any(c in str(v) for c in "/+#")]
    if bad:
        raise SignalMapError(f"{where}: {bad[0]!r} is not one topic level (no '/', '+' or '#')")
    return [str(v) for v in value]


def _mapping(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str | int) for v in value.values()):
        raise SignalMapError(f"{where}: expected a mapping of text to text")
    return {str(k): str(v) for k, v in value.items()}


def _unknown_machine(machine: str, machines: frozenset[str]) -> str:
    return f"unknown machine {machine!r} (known: {', '.join(sorted(machines)) or 'none defined'})"
