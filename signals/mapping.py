"""Which machine a topic or an OPC UA node speaks for: the plant file's `signals` section.

```yaml
signals:
  plant_aliases: [pune]                    # other names of this plant in `plants/<plant>/...` topics
  sparkplug_groups: [pune-gears]           # the Sparkplug group ids of this plant (default: every group)
  topics:                                  # MQTT topic filter -> machine id (first match wins)
    "plants/pune-1/hobber-1/state": HOB-01
    "spBv1.0/pune/+/gateway-3/lc300": HOB-01
  opcua:                                   # machine id -> node id of its state variable
    HOB-01: "ns=2;s=HOB-01.State"
  quality:
    topics: ["plants/pune-1/quality"]      # MQTT topic filters carrying inspection results (signals/quality.py)
```

Without a `topics` entry a topic names its machine by id (`plants/<plant>/<machine>/state`,
the Sparkplug device or edge-node id). A `plants/<plant>/...` topic whose plant is neither
the plant id nor one of `plant_aliases` (and that no `topics` entry maps) is another
plant's, and so is a Sparkplug group outside `sparkplug_groups` when that list is given.
The section is validated with the rest of the plant file (`models.plant_file`, and
`mfgos check-plant`): filters, topic levels and machine ids are checked there, once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from models.plant_file import PlantFileError, format_problems, load


class SignalMapError(ValueError):
    """A plant file whose signals section cannot be used: says the file, the key and what is wrong."""


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT filter matching: `+` is one level, a final `#` any number (including none)."""
    want, have = topic_filter.split("/"), topic.split("/")
    for index, part in enumerate(want):
        if part == "#":
            return True
        if index >= len(have) or (part != "+" and part != have[index]):
            return False
    return len(want) == len(have)


@dataclass(frozen=True)
class SignalMap:
    """Topic filters and OPC UA nodes per machine, checked against the plant's machines."""

    plant_id: str = ""
    machines: frozenset[str] = frozenset()
    topics: dict[str, str] = field(default_factory=dict)
    opcua: dict[str, str] = field(default_factory=dict)
    plant_aliases: frozenset[str] = frozenset()
    sparkplug_groups: tuple[str, ...] = ()  # empty: every group
    quality_topics: tuple[str, ...] = ()  # MQTT topic filters carrying quality inspection results

    def machine_for_topic(self, topic: str) -> str | None:
        return next((machine for pattern, machine in self.topics.items() if topic_matches(pattern, topic)), None)


def load_signal_map(plant_file: Path) -> SignalMap:
    """The signals section of a valid plant file; a file with problems raises SignalMapError listing them."""
    try:
        loaded = load(plant_file)
    except PlantFileError as error:
        raise SignalMapError(f"{plant_file}: the plant file has problems:\n{format_problems(error.problems)}") \
            from error
    section = loaded.signals
    return SignalMap(plant_id=loaded.plant.id, machines=frozenset(m.id for m in loaded.machines),
                     topics=dict(section.topics), opcua=dict(section.opcua),
                     plant_aliases=frozenset(section.plant_aliases), sparkplug_groups=tuple(section.sparkplug_groups),
                     quality_topics=tuple(section.quality.topics) if section.quality else ())
