"""Turns an update ("scrap 40 pcs, release the other 160") into a structured proposal."""

from __future__ import annotations

from dataclasses import dataclass

from nlp.classify import find_phrases
from nlp.extraction import DispositionLine, Resolution
from nlp.lexicon import Lexicon


@dataclass(frozen=True)
class PlacedQuantity:
    """A quantity and the canonical token it starts at (to find the clause it belongs to)."""

    value: float
    unit: str | None
    position: int


def parse_resolution(words: list[str], clause_of: list[int], quantities: list[PlacedQuantity],
                     material: str | None, material_at: dict[int, str], lot: str | None,
                     lexicon: Lexicon) -> Resolution:
    """`clause_of[i]` is the clause of canonical token i; `material_at` maps token index -> material id."""
    lines: list[DispositionLine] = []
    used: set[int] = set()
    last_unit: str | None = None
    for start, end, action in find_phrases(words, lexicon.dispositions):
        if not action:
            continue
        clause = clause_of[start]
        in_clause = [q for q in quantities if clause_of[q.position] == clause and q.position not in used]
        after = [q for q in in_clause if q.position >= end]
        before = [q for q in in_clause if q.position < start]
        chosen = after[0] if after else (before[-1] if before else None)
        unit = None
        if chosen:
            used.add(chosen.position)
            unit = chosen.unit or last_unit
            last_unit = unit
        clause_materials = [m for i, m in material_at.items() if clause_of[i] == clause]
        lines.append(DispositionLine(
            action=str(action),
            quantity=chosen.value if chosen else None,
            unit=unit,
            material=clause_materials[0] if clause_materials else material,
            lot=lot,
        ))
    running = None
    for _, _, state in find_phrases(words, lexicon.running):
        running = bool(state)
    return Resolution(machine_running=running, dispositions=tuple(lines), summary=_summary(running, lines))


def _summary(running: bool | None, lines: list[DispositionLine]) -> str:
    parts = []
    for line in lines:
        amount = "the rest" if line.quantity is None else f"{line.quantity:g} {line.unit or ''}".strip()
        target = f" of {line.material}" if line.material else ""
        lot = f" lot {line.lot}" if line.lot else ""
        parts.append(f"{line.action} {amount}{target}{lot}")
    if running is True:
        parts.append("machine running again")
    elif running is False:
        parts.append("machine still down")
    return "; ".join(parts)
