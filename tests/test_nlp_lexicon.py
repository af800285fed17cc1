"""The lexicon file: loads, no key written twice, questions in every language."""

from __future__ import annotations

import yaml

from nlp.classify import PROBLEM_TYPES
from nlp.langid import LANGUAGES
from nlp.lexicon import LEXICON_FILE, load_lexicon


def test_no_key_is_written_twice() -> None:
    duplicates: list[str] = []

    class Loader(yaml.SafeLoader):
        pass

    def mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if key in seen:
                duplicates.append(f"{key} (line {key_node.start_mark.line + 1})")
            seen.add(key)
        return yaml.SafeLoader.construct_mapping(loader, node, deep)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    yaml.load(LEXICON_FILE.read_text(encoding="utf-8"), Loader=Loader)  # noqa: S506 - SafeLoader subclass
    assert duplicates == []


def test_words_like_no_and_on_stay_words() -> None:
    lexicon = load_lexicon()
    assert "no" in lexicon.negations
    assert ("on", "my", "way") in lexicon.cues["intent"]
    assert lexicon.units[lexicon.canon.words("Stück")[0]] == "pcs"


def test_cue_labels_and_questions_are_complete() -> None:
    lexicon = load_lexicon()
    assert {label for entries in lexicon.cues["exception_type"].values() for label, _ in entries} == set(PROBLEM_TYPES)
    assert {label for entries in lexicon.cues["intent"].values() for label, _ in entries} == {
        "ack", "approve", "reject", "query", "update", "other"}
    for question, texts in lexicon.questions.items():
        assert set(texts) == set(LANGUAGES), question


def test_synonyms_meet_in_one_canonical_form() -> None:
    canon = load_lexicon().canon
    assert canon.words("Drehmaschine 11") == canon.words("torno 11") == canon.words("lathe 11")
    assert canon.words("sellos") == canon.words("seals")
    assert canon.words("Ofen 1") == canon.words("furnace 1")


def test_canonical_forms_are_stable() -> None:
    """Rewriting twice changes nothing ("moulding machine" inside "injection moulding machine")."""
    lexicon = load_lexicon()
    canon = lexicon.canon
    for kind in lexicon.machine_classes:
        assert canon.words(" ".join(kind)) == kind
