"""When a decision means: "tomorrow 6am", "mañana a las 6", "morgen früh um 6", "kal subah 6 baje".

dateparser reads the dates and times, in the plant's timezone and relative to the injected
clock's now. What it does not read is rewritten first, word for word, by the small tables
below: the hour idioms of Spanish ("a las 6") and German ("um 6", "früh"), and Hindi written
in Latin script ("kal", "subah", "baje"), which dateparser does not know. Codes such as
WO-1043 or GRD-02 are taken out before, so their digits never read as a day.

"After the repair" (in the four languages) is not a moment but a reference: `AFTER_REPAIR`,
which the caller turns into the repair's end (the technician's estimate or the machine's MTTR).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

AFTER_REPAIR = "after_repair"

# Phrases meaning "once the machine is repaired".
_AFTER_REPAIR = re.compile(
    r"\b(after the repair|after repair|once (it is|it's) (fixed|repaired)|when (it is|it's) (fixed|repaired)"
    r"|después de la reparación|despues de la reparacion|tras la reparación|nach der reparatur"
    r"|repair ke baad|theek hone ke baad|thik hone ke baad)\b", re.I)
# Codes (WO-1043, GRD-02, SO-7002, E-0001) and bare numbers too large to be an hour or a day.
_CODES = re.compile(r"\b[a-z]+[-_/]?[a-z]*-\d+[a-z0-9-]*\b|\b\d{3,}\b", re.I)

# Word-for-word rewrites, in order, per language: the idiom -> what dateparser reads.
_REWRITES: dict[str, tuple[tuple[str, str], ...]] = {
    "es": (
        (r"\b(a|para|el|hasta)\s+(?=(mañana|manana|pasado|hoy|lunes|martes|miércoles|miercoles|jueves|viernes|sábado|sabado|domingo)\b)", ""),
        (r"\ba las (\d{1,2})(?::(\d{2}))? de la (tarde|noche)\b", r"\1:\2 pm"),
        (r"\ba las (\d{1,2})(?::(\d{2}))? de la mañana\b", r"\1:\2 am"),
        (r"\ba las (\d{1,2}):(\d{2})\b", r"\1:\2"),
        (r"\ba las (\d{1,2})\b", r"\1:00"),
    ),
    "de": (
        (r"\b(früh|frueh|morgens)\s+um\s+(\d{1,2})(?::(\d{2}))?(\s*uhr)?\b", r"\2:\3 am"),
        (r"\babends\s+um\s+(\d{1,2})(?::(\d{2}))?(\s*uhr)?\b", r"\1:\2 pm"),
        (r"\bum\s+(\d{1,2}):(\d{2})(\s*uhr)?\b", r"\1:\2"),
        (r"\bum\s+(\d{1,2})(\s*uhr)?\b", r"\1:00"),
        (r"\b(früh|frueh)\b", ""),
    ),
    "hi": (
        (r"\b(shaam|sham|raat)\s+(?:ko\s+)?(\d{1,2})(?::(\d{2}))?\s*baje\b", r"\2:\3 pm"),
        (r"\b(subah|savere)\s+(?:ko\s+)?(\d{1,2})(?::(\d{2}))?\s*baje\b", r"\2:\3 am"),
        (r"\b(\d{1,2})(?::(\d{2}))?\s*baje\b", r"\1:\2"),
        (r"\bparso(n)?\b", "in 2 days"),
        (r"\bkal\b", "tomorrow"),
        (r"\baaj\b", "today"),
        (r"\b(somvar|somwar)\b", "monday"),
        (r"\b(mangalvar|mangalwar)\b", "tuesday"),
        (r"\b(budhvar|budhwar)\b", "wednesday"),
        (r"\b(guruvar|guruwar|brihaspativar)\b", "thursday"),
        (r"\b(shukravar|shukrawar)\b", "friday"),
        (r"\b(shanivar|shaniwar)\b", "saturday"),
        (r"\b(ravivar|raviwar|itwar)\b", "sunday"),
        (r"\b(subah|savere|ko|tak|se|pe|par)\b", ""),
    ),
}
# A "+4h" or "+30m" on its own: dateparser reads it, given as "in 4 hours".
_PLUS = re.compile(r"(?<![\w:])\+\s*(\d{1,3})\s*(h|hours?|m|min|minutes?|d|days?)\b", re.I)
_HOUR_WORDS = ("am", "pm", "a.m.", "p.m.", "uhr", "h", "hours", "hour", "horas", "stunden", "ghante", "minutes")
MAX_WORDS = 5
_TIME_ONLY = re.compile(r"(at\s+)?\d{1,2}(:\d{2})?\s*(am|pm|a\.m\.|p\.m\.|uhr|h)?", re.I)  # the longest time phrase tried ("in 2 days 6:00 am")
_UNITS = {"h": "hours", "m": "minutes", "min": "minutes", "d": "days"}
# Sentences: a full stop, question or exclamation mark, or semicolon before a space or the end
# (not the dot of "a.m." nor a colon of "14:00").
_CLAUSES = re.compile(r"(?<!\ba)(?<!\bp)[.;!?]+(?=\s|$)")
# The words of three letters or fewer that may stand alone for a day; dateparser reads others too
# ("mit" as Mittwoch, "an" as a month), which in a sentence they are not.
_SHORT_DAYS = frozenset({"mon", "tue", "wed", "thu", "fri", "sat", "sun", "hoy", "lun", "mié", "jue", "vie",
                         "sáb", "dom"})


def _plus(match: re.Match[str]) -> str:
    unit = match.group(2).lower()
    return f" in {match.group(1)} {_UNITS.get(unit, unit if unit.endswith('s') else unit + 's')} "


def normalise(text: str, language: str) -> str:
    """The text as dateparser reads it: codes out, idioms of `language` rewritten."""
    out = _CODES.sub(" ", text.lower())
    out = _PLUS.sub(_plus, out)
    for pattern, replacement in _REWRITES.get(language, ()):
        out = re.sub(pattern, lambda m, r=replacement: m.expand(r).replace(":\x00", ":00"), out)
    out = re.sub(r"(\d):(?=\s|$| [ap]m)", r"\1:00", out)  # "6: am" from an idiom without minutes
    return re.sub(r"\s+", " ", out).strip()


def read_when(text: str, language: str, now: datetime, timezone: str) -> datetime | str | None:
    """The moment `text` names, aware UTC; `AFTER_REPAIR`; or None when it names none."""
    if _AFTER_REPAIR.search(text):
        return AFTER_REPAIR
    import dateparser  # imported when first needed: it loads its language data

    zone = ZoneInfo(timezone)
    settings = {
        "TIMEZONE": timezone, "RETURN_AS_TIMEZONE_AWARE": True, "PREFER_DATES_FROM": "future",
        "RELATIVE_BASE": now.astimezone(zone).replace(tzinfo=None),
    }
    normalised = normalise(text, language)
    if not normalised:
        return None
    languages = [language, "en"] if language in ("en", "es", "de") and language != "en" else ["en"]
    # The longest run of words that reads as a moment ("tomorrow 6:00 am", not "tomorrow" alone),
    # inside one sentence: "the part comes tomorrow. Ready tomorrow at 14:00" is tomorrow 14:00,
    # and a run across the full stop ("tomorrow .") would be tomorrow at this minute.
    found: tuple[int, str, datetime] | None = None
    for clause in _CLAUSES.split(normalised):
        words = [w for w in clause.split() if w.strip(" ,.;:!?")]
        # A later sentence wins a tie: people correct themselves ("6am. no, 8am").
        for length in range(min(len(words), MAX_WORDS), 0 if found is None else found[0] - 1, -1):
            for start in range(len(words) - length + 1):
                span = words[start:start + length]
                if span[0].isdigit() and (len(span) == 1 or span[1] not in _HOUR_WORDS):
                    continue  # "2 tomorrow" of "hobber 2 tomorrow", "6" alone: a name's number, a quantity
                phrase = " ".join(span).strip(" ,.;:!?")
                if not phrase or (length == 1 and len(phrase) <= 3 and phrase not in _SHORT_DAYS):
                    continue  # "mit" (Mittwoch to dateparser), "an": words of a sentence, not days
                moment = dateparser.parse(phrase, languages=languages, settings=settings)  # type: ignore[arg-type]
                if moment is not None:
                    found = (length, phrase, moment)
                    break
            if found is not None and found[0] == length:
                break
    if found is None:
        return None
    _, phrase, moment = found
    base = now.astimezone(zone)
    if _TIME_ONLY.fullmatch(phrase) and moment.date() > base.date() and \
            moment.replace(tzinfo=None) - timedelta(days=1) > base.replace(tzinfo=None):
        # dateparser puts a bare "14:00" on tomorrow even when today's is still ahead ("6 pm" not).
        moment -= timedelta(days=1)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)
