"""Folding, tokenising and canonicalising text, the same way for messages and master data.

Matching works on canonical tokens: lower case, accents stripped, numbers without leading
zeros, plural -s dropped and every lexicon synonym rewritten to one form. Because a plant's
names go through the same steps, "Drehmaschine 11" and the alias "lathe 11" meet.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

_TOKEN = re.compile(r"\d+(?:[.,]\d+)?|[a-z]+(?:'[a-z]+)?|[?#%]")
_SPECIAL = str.maketrans({"ß": "ss", "ø": "o", "æ": "ae", "œ": "oe", "ł": "l", "’": "'", "`": "'"})


CLOCK_WORDS = frozenset({"am", "pm", "uhr", "baje", "bje", "oclock"})  # "2 pm" is a time, not a count or a machine

_LENGTHS: dict[int, tuple[object, dict[str, tuple[int, ...]]]] = {}


def lengths_by_first(table: dict[tuple[str, ...], object]) -> dict[str, tuple[int, ...]]:
    """For a phrase table that never changes: first word -> phrase lengths, longest first.
    Lets scans skip the many positions where no phrase can start."""
    cached = _LENGTHS.get(id(table))
    if cached is not None and cached[0] is table:
        return cached[1]
    lengths: dict[str, set[int]] = {}
    for phrase in table:
        if phrase:
            lengths.setdefault(phrase[0], set()).add(len(phrase))
    result = {w: tuple(sorted(ls, reverse=True)) for w, ls in lengths.items()}
    _LENGTHS[id(table)] = (table, result)
    return result


@lru_cache(maxsize=1 << 16)
def fold(text: str) -> str:
    """Lower case without accents or umlauts ("Störung" -> "storung")."""
    if text.isascii():
        return text.lower().replace("`", "'")
    text = text.lower().translate(_SPECIAL)
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def split(text: str) -> list[str]:
    """Folded word and number tokens; letters and digits are split ("wo1042" -> wo, 1042)."""
    return [t.replace("'", "") for t in _TOKEN.findall(fold(text))]


@lru_cache(maxsize=1 << 16)
def split_word(text: str) -> tuple[str, ...]:
    """`split` for one spaCy token, cached: chat reuses the same few thousand words."""
    return tuple(split(text))


def is_number(token: str) -> bool:
    return token[:1].isdigit()


def number_value(token: str) -> float:
    return float(token.replace(",", "."))


def canonical_number(token: str) -> str:
    """"01" and "1" are the same machine number; "6.8" stays as written."""
    if token.isdigit():
        return token.lstrip("0") or "0"
    return token.replace(",", ".")


def singular(token: str) -> str:
    if len(token) > 4 and token.endswith("s") and not token.endswith(("ss", "us", "is")):
        return token[:-1]
    return token


@dataclass(frozen=True, slots=True)
class Token:
    """One canonical token and the raw tokens it came from (start, end: indexes into raw)."""

    text: str
    start: int
    end: int


class Canonicalizer:
    """Rewrites lexicon variants (single words and phrases) to their canonical form."""

    def __init__(self, synonyms: dict[str, list[str]]) -> None:
        self._phrases: dict[tuple[str, ...], tuple[str, ...]] = {}
        for canonical, variants in synonyms.items():
            target = tuple(split(canonical))
            for variant in [canonical, *variants]:
                key = tuple(self._basic(t) for t in split(variant))
                if key:  # the canonical form maps to itself, so a shorter variant inside it is left alone
                    self._phrases.setdefault(key, target)
        self._longest = max((len(k) for k in self._phrases), default=1)

    @staticmethod
    @lru_cache(maxsize=1 << 16)
    def _basic(token: str) -> str:
        return canonical_number(token) if is_number(token) else singular(token)

    def tokens(self, raw: list[str]) -> list[Token]:
        basic = [self._basic(t) for t in raw]
        lengths = lengths_by_first(self._phrases)
        out: list[Token] = []
        i, n = 0, len(basic)
        while i < n:
            for size in lengths.get(basic[i], ()):
                target = self._phrases.get(tuple(basic[i : i + size])) if i + size <= n else None
                if target is not None:
                    out.extend(Token(t, i, i + size) for t in target)
                    i += size
                    break
            else:
                out.append(Token(basic[i], i, i + 1))
                i += 1
        return out

    def words(self, text: str) -> tuple[str, ...]:
        """The canonical form of a phrase from the lexicon or the plant file."""
        basic = [self._basic(t) for t in split(text)]
        lengths = lengths_by_first(self._phrases)
        out: list[str] = []
        i, n = 0, len(basic)
        while i < n:
            for size in lengths.get(basic[i], ()):
                target = self._phrases.get(tuple(basic[i : i + size])) if i + size <= n else None
                if target is not None:
                    out.extend(target)
                    i += size
                    break
            else:
                out.append(basic[i])
                i += 1
        return tuple(out)
