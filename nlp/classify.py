"""Intent, exception type and severity from lexicon cues plus a few structural rules."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from nlp.lexicon import Lexicon, Phrase, stem
from nlp.text import lengths_by_first

_LEADING_NO = re.compile(r"^\W*(no|nope|nein|nee|nahi|nahin|na|not yet|noch nicht|todavia no|aun no)\b\s*[,.!:;-]", re.I)
_QUESTION_START = frozenset({
    "is", "are", "does", "when", "how", "what", "which", "why", "where",
    "any", "who", "wie", "wann", "was", "welche", "welcher", "wieviel", "wieviele",
    "warum", "wo", "cuando", "cuanto", "cuantos", "cuantas", "que", "donde", "cual", "como", "hay", "kab", "kitna",
    "kitne", "kya", "kaun", "kaunsi", "kyun", "kaise", "kidhar", "status",
})
_QUESTION_END = frozenset({"kya", "na"})
PROBLEM_TYPES = ("breakdown", "quality", "material", "safety", "tooling", "utility", "staffing", "other")
# On a tie the more specific reading wins: "wifi down" is a utility problem, not a breakdown.
_TIE_ORDER = ("safety", "tooling", "utility", "quality", "material", "staffing", "breakdown", "other")


@dataclass
class Cues:
    intent: dict[str, float] = field(default_factory=dict)
    exception_type: dict[str, float] = field(default_factory=dict)
    severity: set[str] = field(default_factory=set)


def score_cues(words: list[str], skip: list[bool], lexicon: Lexicon) -> Cues:
    """Sum cue weights; at each position only the longest cue counts. Numbers match "num"
    in a cue ("num rejected": "15 rejected" is a count of bad parts, not a decision)."""
    cues = Cues()
    words = ["num" if w[:1].isdigit() else w for w in words]
    tables = (("intent", lexicon.cues["intent"], cues.intent), ("exception_type", lexicon.cues["exception_type"],
              cues.exception_type))
    n = len(words)
    for name, table, out in tables:
        stems = lexicon.cue_stems[name]
        i = 0
        while i < n:
            size = _longest_at(words, i, table, skip)
            entries = table[tuple(words[i : i + size])] if size else None
            if entries and name == "intent" and i > 0 and words[i - 1] in lexicon.negations:
                # "not delivered", "nicht freigeben": a negated update or approval is something else
                entries = tuple(e for e in entries if e[0] in ("reject", "query"))
            if entries is None and not skip[i]:
                root = stem(words[i])
                entries = stems.get(root) if root != words[i] else None
                if entries and name == "intent" and i > 0 and words[i - 1] in lexicon.negations:
                    entries = tuple(e for e in entries if e[0] in ("reject", "query"))  # "won't restart"
            for label, weight in entries or ():
                out[label] = out.get(label, 0.0) + weight
            i += size or 1
    for _, _, level in find_phrases(words, lexicon.severity):
        cues.severity.add(str(level))
    return cues


def _longest_at(words: list[str], i: int, table: dict, skip: list[bool]) -> int:
    if skip[i]:
        return 0
    n = len(words)
    for size in lengths_by_first(table).get(words[i], ()):
        if i + size <= n and not skip[i + size - 1] and tuple(words[i : i + size]) in table:
            return size
    return 0


def is_question(text: str, words: list[str], first_free: bool) -> bool:
    """Ends in '?', starts with a question word ("is the mazak running"), or ends in Hindi "kya"."""
    if text.rstrip().endswith("?"):
        return True
    return bool(words) and ((first_free and words[0] in _QUESTION_START) or words[-1] in _QUESTION_END)


def decide_intent(text: str, words: list[str], first_free: bool, cues: Cues, problem: float,
                  names_something: bool) -> tuple[str, float]:
    """(intent, how sure 0..1). `words` are the tokens that name nothing in the plant;
    `first_free` says the message starts with one of them; `problem` is the top type score."""
    score = dict(cues.intent)
    if _LEADING_NO.match(text):
        score["reject"] = score.get("reject", 0.0) + 4.0
    question = is_question(text, words, first_free)
    if question:
        score["query"] = score.get("query", 0.0) + 3.0
    approve, reject = score.get("approve", 0.0), score.get("reject", 0.0)
    update, ack, other = score.get("update", 0.0), score.get("ack", 0.0), score.get("other", 0.0)
    query = score.get("query", 0.0)
    decision = max(approve, reject)
    if other >= 3 and other > max(problem, update, decision, ack):
        return "other", 0.8  # small talk outweighs what it borrows: "anyone seen my jacket?", "fyi fire drill tomorrow"
    if question and query >= 3 and query > decision:
        return "query", 0.85  # "if2 kab tak chalega?": a question, whatever words it borrows
    # A decision rarely names a machine or counts parts; "go ahead and scrap" names a disposition.
    # A strong problem outweighing it is a report that mentions a decision ("parts warped,
    # customer will reject these").
    if decision >= 3 and decision >= update and (decision >= problem or (not names_something and problem < 5)):
        return ("approve" if approve > reject else "reject"), 0.9
    if question and query >= 3:
        return "query", 0.85
    if update >= 3:
        return "update", 0.85 if update >= 4 else 0.7
    if ack >= 3 and ack > problem:
        return "ack", 0.85
    if problem >= 2:
        return "report", min(0.95, 0.55 + 0.1 * problem)
    if ack >= 2:
        return "ack", 0.85
    if max(approve, reject) >= 2:
        return ("approve" if approve > reject else "reject"), 0.6
    if query >= 2:
        return "query", 0.6
    if update >= 2:
        return "update", 0.55
    if other >= 2:
        return "other", 0.8
    if problem > 0:
        return "report", 0.4
    return "other", 0.4


def best_type(scores: dict[str, float]) -> tuple[str | None, float, float]:
    """(type, its score, runner-up score); ties go to the earlier type in PROBLEM_TYPES."""
    ranked = sorted(((scores.get(t, 0.0), -k, t) for k, t in enumerate(_TIE_ORDER)), reverse=True)
    top, second = ranked[0], ranked[1]
    if top[0] <= 0:
        return None, 0.0, 0.0
    return top[2], top[0], second[0]


def top_type(scores: dict[str, float]) -> str:
    """The best-scoring type whatever the sign of the scores; ties as in `best_type`."""
    return max(_TIE_ORDER, key=lambda t: scores.get(t, float("-inf")))


def find_phrases(words: list[str], table: dict[Phrase, Any]) -> list[tuple[int, int, Any]]:
    """Non-overlapping (start, end, value) hits of a phrase table, longest first at each position."""
    hits = []
    lengths = lengths_by_first(table)
    i, n = 0, len(words)
    while i < n:
        for size in lengths.get(words[i], ()):
            value = table.get(tuple(words[i : i + size])) if i + size <= n else None
            if value is not None:
                hits.append((i, i + size, value))
                i += size
                break
        else:
            i += 1
    return hits
