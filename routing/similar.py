"""Similar past exceptions: what fixed the same symptom on this machine, or on one of its kind, before.

The third time the same spindle alarm stops the same lathe, the technician should hear what
fixed it the last two times, in the alert itself, not after asking around. So when an exception
opens, the fixed ones of the same type on the same machine or on a machine of the same kind
(`kind` in the plant file) are ranked by how alike their reports read, and the best ones go into
the alert of every role that answers for the exception (those with `ack_within`) and onto the
timeline (the console's thread shows it).

Alike is measured on symptom words: each report is rewritten to the lexicon's canonical words
(so "awaaz", "Geräusch" and "noise" meet), the words that only carry grammar or the language
("the", "hai", "ist") and the machine's own name are dropped, and two reports score the Dice
overlap of what remains, a word counting as shared when rapidfuzz finds it at 85 % or better
(a typo still meets its word). The same machine adds a bonus over a sister machine, and among
equals the more recent fix wins. docs/nlp.md records how often the top suggestion names the
fix that was really made, on a labelled history the tests generate.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache, lru_cache
from typing import Any

from rapidfuzz import fuzz, process
from sqlmodel import Session, col, select

from models import Machine, PlantException
from nlp.lexicon import load_lexicon, read_lexicon_file, stem
from nlp.text import is_number, split

FIXED = ("approved", "posted", "closed")  # a proposal was accepted: its text is what fixed it
CANDIDATES = 200  # the most recent fixed exceptions looked at; older ones rarely help and cost time
SAME_MACHINE_BONUS = 0.15
MIN_SCORE = 0.3  # below this the reports share too little to call the fix relevant
MAX_TEXT = 500  # an exception's summary is cut there too
WORD_MATCH = 85  # rapidfuzz ratio at which two words count as the same (a typo still meets its word)


@dataclass(frozen=True)
class PastFix:
    """A fixed exception like the new one: what fixed it, where and when, and how long it took."""

    code: str
    fix: str
    machine_id: str | None
    fixed_at: datetime
    minutes: int | None  # opened → fix proposed
    score: float

    def as_data(self, now: datetime) -> dict[str, Any]:
        """What the alert and the timeline say of it (messages.past_fixes), as JSON the timeline keeps."""
        return {"code": self.code, "fix": self.fix[:200], "ago_s": int((now - self.fixed_at).total_seconds()),
                "minutes": self.minutes, "score": self.score}


@cache
def _grammar_words() -> frozenset[str]:
    """Words that tell the language rather than the symptom; a canonical synonym target stays
    (awaaz and Geräusch become "noise", which is a symptom even though English uses it often)."""
    lexicon = load_lexicon()
    kept = {word for canonical in read_lexicon_file()["synonyms"] for word in lexicon.canon.words(canonical)}
    kept |= {phrase[0] for phrase in lexicon.cues.get("exception_type", {}) if len(phrase) == 1}  # "leak", "noise"
    return frozenset((lexicon.common_words | lexicon.generic_words) - kept)


def symptom_words(text: str, leave_out: Iterable[str] = ()) -> frozenset[str]:
    """The report's canonical words that can describe a symptom."""
    return _symptom_words(text[:MAX_TEXT]) - frozenset(leave_out)


@lru_cache(maxsize=4096)  # the same past reports are read again for every new exception
def _symptom_words(text: str) -> frozenset[str]:
    words = (t.text for t in load_lexicon().canon.tokens(split(text)))
    dropped = _grammar_words()
    return frozenset(stem(w) for w in words if len(w) > 2 and not is_number(w) and w not in dropped)


def machine_words(machine: Machine | None) -> frozenset[str]:
    """The canonical words of a machine's name and aliases: shared by every report about it, so no evidence."""
    if machine is None:
        return frozenset()
    lexicon = load_lexicon()
    return frozenset(stem(w) for name in (machine.name, machine.id, *machine.aliases)
                     for w in lexicon.canon.words(name))


def alike(a: frozenset[str], b: frozenset[str]) -> float:
    """Dice overlap of two word sets, a word shared when rapidfuzz finds it in the other set."""
    if not a or not b:
        return 0.0
    others = list(b)
    shared = sum(1 for word in a if process.extractOne(word, others, scorer=fuzz.ratio, score_cutoff=WORD_MATCH))
    return 2 * shared / (len(a) + len(b))


def rank(summary: str, machine_id: str | None, candidates: Sequence[PlantException],
         leave_out: Iterable[str] = (), limit: int = 2) -> list[PastFix]:
    """The best `limit` fixes among `candidates` for a report, best first."""
    words = symptom_words(summary, leave_out)
    scored: list[PastFix] = []
    for past in candidates:
        fix = str((past.proposal or {}).get("text") or "").strip()
        fixed_at = past.approved_at or past.proposed_at
        if not fix or fixed_at is None:
            continue
        score = alike(words, symptom_words(past.summary, leave_out))
        if score < MIN_SCORE:
            continue
        score += SAME_MACHINE_BONUS if machine_id and past.machine_id == machine_id else 0.0
        minutes = int((past.proposed_at - past.opened_at).total_seconds() // 60) if past.proposed_at else None
        scored.append(PastFix(past.code, fix, past.machine_id, fixed_at, minutes, round(score, 3)))
    scored.sort(key=lambda f: (f.score, f.fixed_at), reverse=True)
    return scored[:limit]


def past_fixes(session: Session, exc: PlantException, limit: int = 2) -> list[PastFix]:
    """Fixes of exceptions of the same type on the same machine or a sister machine, best first."""
    if exc.machine_id is None:
        return []
    machine = session.get(Machine, (exc.plant_id, exc.machine_id))
    machines = [exc.machine_id]
    if machine is not None and machine.kind:
        machines += list(session.exec(select(Machine.id).where(
            Machine.plant_id == exc.plant_id, Machine.kind == machine.kind, Machine.id != exc.machine_id)))
    candidates = list(session.exec(select(PlantException).where(
        PlantException.plant_id == exc.plant_id, PlantException.type == exc.type,
        col(PlantException.machine_id).in_(machines), col(PlantException.status).in_(FIXED),
        PlantException.id != exc.id,
    ).order_by(col(PlantException.opened_at).desc()).limit(CANDIDATES)))
    return rank(exc.summary, exc.machine_id, candidates, machine_words(machine), limit)
