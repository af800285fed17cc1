"""Bad input never crashes the extractor, and whatever comes out stays in the contract."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nlp import Extractor
from nlp.evaluate import master_data_from_plant_file

DEMO = Path(__file__).resolve().parents[1] / "nlp" / "data" / "plants" / "demo.yaml"
INTENTS = {"report", "update", "ack", "approve", "reject", "query", "other"}
TYPES = {"breakdown", "quality", "material", "safety", "tooling", "utility", "staffing", "other", None}
SEVERITIES = {"low", "medium", "high", "critical"}

_extractor: Extractor | None = None


def extractor() -> Extractor:
    global _extractor
    if _extractor is None:
        _extractor = Extractor(master_data_from_plant_file(DEMO))
    return _extractor


def check(text: str, language: str | None = None) -> None:
    got = extractor().extract(text, language)
    data = got.to_json()
    assert data["intent"] in INTENTS
    assert data["exception_type"] in TYPES
    assert data["severity"] in SEVERITIES
    assert 0.0 <= data["confidence"] <= 1.0
    assert data["language"] in {"en", "es", "de", "hi"}
    assert data["machine"] is None or data["machine"] in extractor().index.machines
    assert data["clarify"] is None or isinstance(data["clarify"], str)
    for quantity in data["quantities"]:
        assert isinstance(quantity["value"], float) and math.isfinite(quantity["value"])
    json.dumps(data, allow_nan=False)


shop_words = st.sampled_from(["hobber", "1", "wo", "1042", "band", "ho", "gaya", "scrap", "40", "pcs", ",",
                              "release", "Störung", "¿", "la", "2", "#", "🔥", "\x00", "\u202e", "नमस्ते", "\n"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300), st.sampled_from([None, "en", "es", "de", "hi", "xx"]))
def test_any_text_is_read_without_error(text: str, language: str | None) -> None:
    check(text, language)


@settings(max_examples=200, deadline=None)
@given(st.lists(shop_words, max_size=40).map(" ".join))
def test_shop_floor_fragments_are_read_without_error(text: str) -> None:
    check(text)
    extractor().match_machine(text, ["HOB-01", "GRD-02"])


@pytest.mark.parametrize("text", [
    "", " ", "🔥🔥🔥", "\x00\x01\x02\x1b[31m", "hobber 1 " * 2000, "x" * 10_000, "wo " + "9" * 5000,
    "हॉबर 1 बंद हो गया", "hobber 1 बंद ho gaya wo 1042", "‮1 rebboh", "\ufeffstatus wo 1042?",
    "scrap -40 pcs", "scrap 1e9999 pcs", "lot", "la", "#", "wo", "1,5,6,7,8,9,0" * 300,
])
def test_edge_cases(text: str) -> None:
    check(text)


def test_long_input_is_read_quickly() -> None:
    import time

    started = time.perf_counter()
    check("hobber 1 band ho gaya, spindle se awaaz aa rahi hai. wo 1042 " * 200)
    assert time.perf_counter() - started < 0.5


def test_importing_nlp_does_no_spacy_work() -> None:
    code = "import sys, nlp; assert 'spacy' not in sys.modules, 'spaCy imported at import time'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
