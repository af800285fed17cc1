"""Decision times read from chat in four languages, in the plant's timezone, on an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from nlp.when import AFTER_REPAIR, read_when

PUNE = "Asia/Kolkata"
# Evening in Pune (19:30), so "6 am" is tomorrow and "6 pm" is tomorrow too.
NOW = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)
TOMORROW_6AM = datetime(2026, 12, 8, 6, 0, tzinfo=ZoneInfo(PUNE))


@pytest.mark.parametrize(("text", "language"), [
    ("move WO-1043 to tomorrow 6am", "en"),
    ("mueve WO-1043 a mañana a las 6", "es"),
    ("WO-1043 auf morgen früh um 6 verschieben", "de"),
    ("WO-1043 kal subah 6 baje", "hi"),
    ("expedite 300 forgings by tomorrow 6am", "en"),
    ("move WO-1043 to GRD-02 tomorrow 6am", "en"),
])
def test_tomorrow_six_in_the_morning_in_every_language(text: str, language: str) -> None:
    assert read_when(text, language, NOW, PUNE) == TOMORROW_6AM


def test_relative_forms_and_weekdays() -> None:
    assert read_when("+4h", "en", NOW, PUNE) == NOW + timedelta(hours=4)
    assert read_when("move WO-1043 +4h", "en", NOW, PUNE) == NOW + timedelta(hours=4)
    friday = datetime(2026, 12, 11, 0, 0, tzinfo=ZoneInfo(PUNE))
    for text, language in (("Fri", "en"), ("SO-7002 nueva fecha viernes", "es"),
                           ("SO-7002 neuer Termin Freitag", "de"), ("SO-7002 nayi date shukravar", "hi")):
        assert read_when(text, language, NOW, PUNE) == friday, text
    assert read_when("WO-1043 shaam 6 baje", "hi", NOW, PUNE) == datetime(2026, 12, 8, 18, 0, tzinfo=ZoneInfo(PUNE))


def test_the_plant_timezone_decides_what_tomorrow_is() -> None:
    # 23:30 UTC on the 7th is already the 8th in Pune ("tomorrow" is the 9th), still the 7th in Chicago.
    late = datetime(2026, 12, 7, 23, 30, tzinfo=UTC)
    assert read_when("tomorrow 6am", "en", late, PUNE) == datetime(2026, 12, 9, 6, 0, tzinfo=ZoneInfo(PUNE))
    assert read_when("tomorrow 6am", "en", late, "America/Chicago") == \
        datetime(2026, 12, 8, 6, 0, tzinfo=ZoneInfo("America/Chicago"))


@pytest.mark.parametrize(("text", "language"), [
    ("after the repair", "en"), ("después de la reparación", "es"), ("nach der Reparatur", "de"),
    ("repair ke baad", "hi"),
])
def test_after_the_repair_is_a_reference_not_a_moment(text: str, language: str) -> None:
    assert read_when(text, language, NOW, PUNE) == AFTER_REPAIR


@pytest.mark.parametrize("text", ["move WO-1043", "ok", "300 blanks", "move it to grinder 2"])
def test_no_moment_is_none_and_codes_or_quantities_are_never_days(text: str) -> None:
    assert read_when(text, "en", NOW, PUNE) is None


def test_a_bare_time_still_ahead_today_is_today() -> None:
    morning = datetime(2026, 11, 25, 3, 30, tzinfo=UTC)  # 09:00 in Pune
    assert read_when("wieder um 14 Uhr", "de", morning, PUNE) == datetime(2026, 11, 25, 14, 0, tzinfo=ZoneInfo(PUNE))
    assert read_when("8:00", "en", morning, PUNE) == datetime(2026, 11, 26, 8, 0, tzinfo=ZoneInfo(PUNE))


def test_the_longest_run_is_read_within_one_sentence_and_a_later_one_wins_a_tie() -> None:
    friday = datetime(2026, 12, 11, 9, 35, tzinfo=UTC)  # 10:35 in Berlin
    berlin = ZoneInfo("Europe/Berlin")
    text = ("Hauptspindellager ist hin, das Ersatzteil kommt erst morgen früh. "
            "Maschine ist voraussichtlich morgen um 14 Uhr wieder fertig.")
    assert read_when(text, "de", friday, "Europe/Berlin") == datetime(2026, 12, 12, 14, 0, tzinfo=berlin)
    assert read_when("tomorrow 6am. no, tomorrow 8am", "en", NOW, PUNE) == TOMORROW_6AM + timedelta(hours=2)
    assert read_when("tomorrow 6 a.m. please", "en", NOW, PUNE) == TOMORROW_6AM


@pytest.mark.parametrize(("text", "language"), [
    ("schau ich mir an", "de"),  # dateparser reads "an" as a month
    ("Habe mit Deccan Tractors telefoniert, Kunde informiert.", "de"),  # and "mit" as Mittwoch
    ("voy para allá", "es"),
])
def test_short_words_of_a_sentence_are_not_days(text: str, language: str) -> None:
    assert read_when(text, language, NOW, PUNE) is None
