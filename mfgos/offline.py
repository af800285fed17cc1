"""Helpers for commands that need a plant but no running system (`mfgos extract`)."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session

from models import make_engine, migrate, session_scope
from models.plant_file import apply, load
from nlp.extractor import Extractor, master_data_from_store


def extractor_for_plant(path: Path) -> Extractor:
    """Load the plant file into a throw-away in-memory store and build the extractor from it."""
    plant_file = load(path)
    engine = make_engine("sqlite://")
    migrate(engine)
    with session_scope(engine) as session:
        apply(session, plant_file, source_file=str(path))
    with Session(engine) as session:
        reader = Extractor(master_data_from_store(session, plant_file.plant.id))
    engine.dispose()
    return reader
