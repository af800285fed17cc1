"""The shop-floor lexicon (nlp/data/lexicon.yaml), loaded once per process on first use."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from nlp.text import Canonicalizer

LEXICON_FILE = Path(__file__).parent / "data" / "lexicon.yaml"

Phrase = tuple[str, ...]


@dataclass(frozen=True)
class Lexicon:
    canon: Canonicalizer
    machine_classes: frozenset[Phrase]
    utility_classes: frozenset[Phrase]
    generic_words: frozenset[str]
    material_qualifiers: frozenset[str]
    work_order_prefixes: frozenset[Phrase]
    customer_order_prefixes: frozenset[Phrase]
    units: dict[str, str]  # canonical token -> unit
    cues: dict[str, dict[Phrase, tuple[tuple[str, float], ...]]]  # "intent"/"exception_type" -> phrase -> labels
    negations: frozenset[str]
    corrections: frozenset[Phrase]
    questions: dict[str, dict[str, str]]
    dispositions: dict[Phrase, str]  # "verschrotten" -> scrap
    rest_words: frozenset[Phrase]
    lot_words: frozenset[Phrase]
    running: dict[Phrase, bool]  # "running again" -> True, "still down" -> False
    severity: dict[Phrase, str]
    language_words: dict[str, dict[str, float]]  # word -> {language: weight}
    vocabulary: frozenset[str]  # every canonical word the lexicon knows (never a typo)
    common_words: frozenset[str]
    longest_cue: int


def _phrases(canon: Canonicalizer, items: list[str]) -> frozenset[Phrase]:
    return frozenset(p for p in (canon.words(i) for i in items) if p)


@cache
def load_lexicon(path: Path = LEXICON_FILE) -> Lexicon:
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    canon = Canonicalizer({k: [str(v) for v in vs] for k, vs in data["synonyms"].items()})
    cues: dict[str, dict[Phrase, list[tuple[str, float]]]] = {}
    vocabulary: set[str] = set()
    for field, labels in data["cues"].items():
        table: dict[Phrase, list[tuple[str, float]]] = {}
        for label, phrases in labels.items():
            for phrase, weight in phrases.items():
                key = canon.words(str(phrase))
                if key:
                    table.setdefault(key, []).append((label, float(weight)))
                    vocabulary.update(key)
        cues[field] = table
    units: dict[str, str] = {}
    for unit, variants in data["units"].items():
        for variant in [unit, *variants]:
            words = canon.words(str(variant))
            if len(words) == 1:
                units.setdefault(words[0], unit)
    for canonical, variants in data["synonyms"].items():
        vocabulary.update(canon.words(canonical))
        for variant in variants:
            vocabulary.update(canon.words(str(variant)))
    lists = {key: _phrases(canon, [str(x) for x in data[key]]) for key in (
        "machine_classes", "utility_classes", "work_order_prefixes", "customer_order_prefixes", "corrections")}
    for phrases in lists.values():
        for phrase in phrases:
            vocabulary.update(phrase)
    vocabulary.update(units)
    dispositions = {p: action for action, items in data["dispositions"].items() for p in _phrases(canon, items)}
    running = {p: state == "true" for state, items in data["running"].items() for p in _phrases(canon, items)}
    severity = {p: level for level, items in data["severity"].items() for p in _phrases(canon, items)}
    owners: dict[str, set[str]] = {}
    for language, words in data["language_words"].items():
        for word in words:
            for token in canon.words(str(word)):
                owners.setdefault(token, set()).add(language)
    language_words = {w: {lang: 1.0 / len(langs) for lang in langs} for w, langs in owners.items()}
    for table in (dispositions, running, severity):
        for phrase in table:
            vocabulary.update(phrase)
    return Lexicon(
        canon=canon,
        machine_classes=lists["machine_classes"],
        utility_classes=lists["utility_classes"],
        generic_words=frozenset(w for x in data["generic_words"] for w in canon.words(str(x))),
        material_qualifiers=frozenset(w for x in data["material_qualifiers"] for w in canon.words(str(x))),
        work_order_prefixes=lists["work_order_prefixes"],
        customer_order_prefixes=lists["customer_order_prefixes"],
        units=units,
        cues={f: {p: tuple(v) for p, v in t.items()} for f, t in cues.items()},
        negations=frozenset(w for x in data["negations"] for w in canon.words(str(x))),
        corrections=lists["corrections"],
        questions=data["questions"],
        dispositions=dispositions,
        rest_words=_phrases(canon, data["rest_words"]),
        lot_words=_phrases(canon, data["lot_words"]),
        running=running,
        severity=severity,
        language_words=language_words,
        vocabulary=frozenset(vocabulary),
        common_words=frozenset(owners),
        longest_cue=max((len(p) for table in cues.values() for p in table), default=1),
    )
