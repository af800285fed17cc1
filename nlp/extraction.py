"""What the NLP layer hands to routing: a neutral, JSON-ready reading of one message."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Quantity:
    value: float
    unit: str | None = None


@dataclass(frozen=True)
class DispositionLine:
    """One line of a proposed resolution: what to do with how many of which material/lot."""

    action: str  # scrap | release | block | rework
    quantity: float | None = None
    unit: str | None = None
    material: str | None = None
    lot: str | None = None


@dataclass(frozen=True)
class Resolution:
    """A structured proposal parsed from an update ("scrap 40 pcs, release the other 160")."""

    machine_running: bool | None = None
    dispositions: tuple[DispositionLine, ...] = ()
    summary: str = ""


@dataclass
class Extraction:
    text: str
    language: str = "en"
    intent: str = "other"
    exception_type: str | None = None
    machine: str | None = None
    work_order: str | None = None
    material: str | None = None
    customer_order: str | None = None
    quantities: list[Quantity] = field(default_factory=list)
    severity: str = "medium"
    confidence: float = 0.0
    clarify: str | None = None
    machine_candidates: list[str] = field(default_factory=list)  # set when ambiguous
    resolution: Resolution | None = None
    # A report that reads much like small talk ("lunch truck is here"): ask the sender before paging.
    unsure_problem: bool = False

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["quantities"] = [asdict(q) for q in self.quantities]
        return data


@dataclass(frozen=True)
class MachineRef:
    id: str
    name: str
    area: str | None = None
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class MaterialRef:
    id: str
    name: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class WorkOrderRef:
    id: str
    machine: str | None = None
    material: str | None = None
    customer_order: str | None = None


@dataclass(frozen=True)
class MasterData:
    """The plant's names that messages are matched against; indexes are built from it once per load."""

    machines: tuple[MachineRef, ...] = ()
    materials: tuple[MaterialRef, ...] = ()
    work_orders: tuple[WorkOrderRef, ...] = ()
    customer_orders: tuple[str, ...] = ()
