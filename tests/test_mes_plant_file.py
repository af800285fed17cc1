"""The plant file's `mes:` section: what `mfgos check-plant` says about it, and what a load stores.

Also the reason code an approved breakdown gets from it (routing/mes.py `reason_code`), and that
a plant without the section writes nothing for the MES.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from mfgos.cli import main
from mfgos.replay import replay
from models import MesTransaction, Plant, PlantException
from models.db import make_engine, session_scope
from models.plant_file import apply, check, load
from routing.mes import reason_code

ROOT = Path(__file__).parent
GOOD = {
    "site": "PUNE",
    "machines": {"HOB-01": "EQ-HOB1"},
    "reason_codes": [{"code": "DT-110", "types": ["breakdown"], "words": ["bearing", "spindle"]},
                     {"code": "DT-120", "words": ["hydraulic"]},
                     {"code": "DT-100", "types": ["breakdown", "tooling"]}],
    "default_reason": "DT-999",
}


def plant_with(tmp_path: Path, mes: object) -> Path:
    plant = yaml.safe_load((ROOT / "data" / "pune_plant.yaml").read_text(encoding="utf-8"))
    plant["mes"] = mes
    path = tmp_path / "plant.yaml"
    path.write_text(yaml.safe_dump(plant, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def test_a_good_mes_section_passes_check_plant(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = plant_with(tmp_path, GOOD)
    assert main(["check-plant", str(path)]) == 0
    assert capsys.readouterr().out.strip() == f"{path}: ok"


@pytest.mark.parametrize(("mes", "location", "words"), [
    ({**GOOD, "machines": {"HOB-99": "EQ-X"}}, "mes.machines.HOB-99", "unknown machine 'HOB-99'"),
    ({**GOOD, "reason_codes": [{"code": "DT-1", "types": ["brekdown"]}]}, "mes.reason_codes[0].types[0]",
     "unknown exception type 'brekdown'"),
    ({k: v for k, v in GOOD.items() if k != "default_reason"}, "mes:", "missing required key 'default_reason'"),
    ({**GOOD, "token": "abc"}, "mes:", "unknown key 'token'"),  # the token is MFGOS_MES_TOKEN's
    ({**GOOD, "reason_codes": [{"code": "DT 1"}]}, "mes.reason_codes[0].code", "may not contain spaces"),
    ({**GOOD, "reason_codes": [{"code": "DT-1", "words": [""]}]}, "mes.reason_codes[0].words[0]", "must not be empty"),
    ({**GOOD, "default_reason": "X" * 65}, "mes.default_reason", "64"),
    ("yes", "mes", "mapping"),
])
def test_check_plant_names_each_problem_of_the_mes_section(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          mes: object, location: str, words: str) -> None:
    path = plant_with(tmp_path, mes)
    problems = [str(p) for p in check(path)]
    assert len(problems) == 1 and location in problems[0] and words in problems[0], problems
    assert main(["check-plant", str(path)]) == 1
    assert location in capsys.readouterr().err


def test_a_load_stores_the_section_and_a_plant_without_it_stores_none(sqlite_engine: Engine, tmp_path: Path) -> None:
    with session_scope(sqlite_engine) as session:
        apply(session, load(plant_with(tmp_path, GOOD)))
    with Session(sqlite_engine) as session:
        stored = session.get(Plant, "pune-1")
        assert stored is not None and stored.mes["default_reason"] == "DT-999"
        assert stored.mes["machines"] == {"HOB-01": "EQ-HOB1"} and stored.mes["reason_codes"][1]["types"] == []
    with session_scope(sqlite_engine) as session:
        apply(session, load(ROOT / "data" / "pune_plant.yaml"))
    with Session(sqlite_engine) as session:
        stored = session.get(Plant, "pune-1")
        assert stored is not None and stored.mes == {}


@pytest.mark.parametrize(("type_", "fix", "summary", "code"), [
    ("breakdown", "replaced the hob arbor BEARING", "HOB-01 FAULT", "DT-110"),  # words in the fix, any case
    ("breakdown", "reset it", "HOB-01 FAULT: spindle overload", "DT-110"),  # ... or in the report
    ("breakdown", "fixed the hydraulic hose", "HOB-01 FAULT", "DT-120"),  # no types: any exception type
    ("breakdown", "reset it", "HOB-01 FAULT", "DT-100"),  # no words: any breakdown
    ("utility", "reset it", "compressor tripped", "DT-999"),  # nothing fits: the default
])
def test_the_reason_code_is_the_first_that_fits(tmp_path: Path, type_: str, fix: str, summary: str, code: str) -> None:
    settings = load(plant_with(tmp_path, GOOD)).mes
    assert settings is not None
    exc = PlantException(plant_id="pune-1", code="E-0001", type=type_, summary=summary, proposal={"text": fix},
                         opened_at=datetime(2026, 11, 25, tzinfo=UTC))
    assert reason_code(settings.model_dump(mode="json"), exc) == code


def test_without_a_mes_section_the_mes_gets_nothing(tmp_path: Path) -> None:
    """The existing breakdown scenario (no `mes:` in its plant): approved and posted, no MES rows."""
    url = f"sqlite:///{tmp_path / 'r.db'}"
    result = replay(ROOT / "scenarios" / "breakdown_ledger.yaml", url)
    assert result["erp_transactions"] and result["mes_transactions"] == []
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            assert session.exec(select(MesTransaction)).all() == []
    finally:
        engine.dispose()
