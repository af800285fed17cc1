"""The shop-floor lexicon (nlp/data/lexicon.yaml), loaded once per process on first use."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from nlp.text import Canonicalizer, singular, split

LEXICON_FILE = Path(__file__).parent / "data" / "lexicon.yaml"
MACHINE_KINDS_FILE = Path(__file__).parent / "data" / "machine_kinds.yaml"


class _WordsLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe YAML where words stay words: "no", "on", "yes" are not booleans in a lexicon."""


_WordsLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

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
    cue_stems: dict[str, dict[str, tuple[tuple[str, float], ...]]]  # one-word cues by stem ("crashing" -> crash)
    negations: frozenset[str]
    corrections: frozenset[Phrase]
    questions: dict[str, dict[str, str]]
    dispositions: dict[Phrase, str]  # "verschrotten" -> scrap; "" for states ("on hold")
    rest_words: dict[Phrase, str]  # "the other", "baaki" -> "rest"
    lot_words: frozenset[Phrase]
    running: dict[Phrase, bool]  # "running again" -> True, "still down" -> False
    severity: dict[Phrase, str]
    language_words: dict[str, dict[str, float]]  # word -> {language: weight}
    vocabulary: frozenset[str]  # every canonical word the lexicon knows (never a typo)
    common_words: frozenset[str]
    number_words: dict[str, float]
    shortage: dict[Phrase, str]
    people_words: frozenset[str]
    surface_words: frozenset[str]  # every word as written in the lexicon, before canonical rewriting


_HINDI_FORMS = (("gaya", "gayi", "gaye"), ("raha", "rahi", "rahe"), ("hua", "hui", "hue"), ("hoon", "hu", "hun"),
                ("karta", "karti", "karte"), ("aata", "aati", "aate"), ("chala", "chali", "chale"))
_HINDI_VARIANTS = {form: group for group in _HINDI_FORMS for form in group}
_STEM_SUFFIXES = ("ing", "ed", "es", "en", "s", "e")


def stem(word: str) -> str:
    """A crude suffix strip so one-word cues meet their inflections ("crashing", "crashed")."""
    if len(word) >= 6:
        for suffix in _STEM_SUFFIXES:
            if word.endswith(suffix) and len(word) - len(suffix) >= 4:
                return word[: -len(suffix)]
    return word


def _inflections(phrase: Phrase) -> list[Phrase]:
    """A Hindi cue in every gender/number form: "ho gaya" also as "ho gayi", "ho gaye"."""
    out: list[Phrase] = [phrase] if phrase else []
    for i, word in enumerate(phrase):
        for form in _HINDI_VARIANTS.get(word, ()):
            if form != word:
                out.append((*phrase[:i], form, *phrase[i + 1 :]))
    return out


def _surface(data: Any) -> set[str]:
    """All words the lexicon file spells out, folded, singular (for compound splitting)."""
    words: set[str] = set()
    if isinstance(data, dict):
        for key, value in data.items():
            words |= _surface(key) | _surface(value)
    elif isinstance(data, list):
        for item in data:
            words |= _surface(item)
    elif isinstance(data, str):
        words.update(singular(w) for w in split(data) if w.isalpha())
    return words


def _phrases(canon: Canonicalizer, items: list[str]) -> frozenset[Phrase]:
    return frozenset(p for p in (canon.words(i) for i in items) if p)


def read_lexicon_file(path: Path = LEXICON_FILE, kinds_path: Path | None = MACHINE_KINDS_FILE) -> dict[str, Any]:
    """The lexicon YAML as data, words kept as words, with the machine-kind dictionary
    (`machine_kinds.yaml`: an English kind -> what operators call it in four languages) merged
    into its synonyms and machine classes. A variant claimed by two kinds is an error: it would
    send "freidora 2" to whichever kind loaded last."""
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=_WordsLoader)  # noqa: S506 - a SafeLoader
    if kinds_path is None:
        return data
    kinds = yaml.load(kinds_path.read_text(encoding="utf-8"), Loader=_WordsLoader)  # noqa: S506
    synonyms: dict[str, list[Any]] = data["synonyms"]
    owner = {" ".join(split(str(v))): k for k, vs in synonyms.items() for v in (k, *vs)}
    for kind, variants in kinds.items():
        for variant in (kind, *variants):
            key = " ".join(split(str(variant)))
            if owner.setdefault(key, kind) != kind:
                raise ValueError(f"{kinds_path.name}: {variant!r} of {kind!r} already means {owner[key]!r}")
        listed = synonyms.setdefault(kind, [])
        listed.extend(v for v in variants if v not in listed and v != kind)
    data["machine_classes"] = [*data["machine_classes"], *(k for k in kinds if k not in data["machine_classes"])]
    return data


@cache
def load_lexicon(path: Path = LEXICON_FILE) -> Lexicon:
    data = read_lexicon_file(path)
    canon = Canonicalizer({k: [str(v) for v in vs] for k, vs in data["synonyms"].items()})
    cues: dict[str, dict[Phrase, list[tuple[str, float]]]] = {}
    vocabulary: set[str] = set()
    for field, labels in data["cues"].items():
        table: dict[Phrase, list[tuple[str, float]]] = {}
        for label, phrases in labels.items():
            for phrase, weight in phrases.items():
                for key in _inflections(canon.words(str(phrase))):
                    entries = table.setdefault(key, [])
                    if all(existing != label for existing, _ in entries):
                        entries.append((label, float(weight)))
                    vocabulary.update(key)
        cues[field] = table
    stems: dict[str, dict[str, list[tuple[str, float]]]] = {}
    for field, table in cues.items():
        stems[field] = {}
        for key, entries in table.items():
            if len(key) == 1 and len(key[0]) >= 5 and stem(key[0]) != key[0]:
                stems[field].setdefault(stem(key[0]), list(entries))
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
    dispositions = dict.fromkeys(_phrases(canon, data["disposition_states"]), "")
    dispositions.update({p: action for action, items in data["dispositions"].items() for p in _phrases(canon, items)})
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
        cue_stems={f: {w: tuple(v) for w, v in t.items()} for f, t in stems.items()},
        negations=frozenset(w for x in data["negations"] for w in canon.words(str(x))),
        corrections=lists["corrections"],
        questions=data["questions"],
        dispositions=dispositions,
        rest_words=dict.fromkeys(_phrases(canon, data["rest_words"]), "rest"),
        lot_words=_phrases(canon, data["lot_words"]),
        running=running,
        severity=severity,
        language_words=language_words,
        vocabulary=frozenset(vocabulary),
        common_words=frozenset(owners),
        shortage=dict.fromkeys(_phrases(canon, data["shortage"]), "short"),
        people_words=frozenset(w for x in data["people_words"] for w in canon.words(str(x))),
        number_words={w: float(n) for n, items in data["number_words"].items() for w in map(str, items)},
        surface_words=frozenset(_surface(data)),
    )
