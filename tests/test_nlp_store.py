"""Master data read from the store (SQLite, migrated with the real schema) feeds the extractor."""

from __future__ import annotations

from pathlib import Path

from models import CustomerOrder, Machine, Material, Plant, WorkOrder, make_engine, migrate, session_scope
from nlp import Extractor, master_data_from_store


def test_master_data_from_store_reads_only_its_plant(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    migrate(engine)
    with session_scope(engine) as session:
        session.add(Plant(id="p1", name="Plant 1"))
        session.add(Plant(id="p2", name="Plant 2"))
        session.flush()
        session.add(Machine(plant_id="p1", id="PRS-12", name="Stamping press 12", area_id="press", aliases=["p12"]))
        session.add(Machine(plant_id="p2", id="OTHER-1", name="Press 14", area_id="x"))
        session.add(Material(plant_id="p1", id="COIL-DC04", name="Steel coil DC04", aliases=["dc04"]))
        session.add(CustomerOrder(plant_id="p1", id="SO-1", customer="ACME"))
        session.add(WorkOrder(plant_id="p1", id="WO-24017", machine_id="PRS-12", material_id="COIL-DC04",
                              customer_order_id="SO-1"))
    with session_scope(engine) as session:
        master = master_data_from_store(session, "p1")
    assert [m.id for m in master.machines] == ["PRS-12"]
    assert master.machines[0].aliases == ("p12",)
    assert master.work_orders[0].customer_order == "SO-1"
    assert master.customer_orders == ("SO-1",)
    got = Extractor(master).extract("prensa 12 se paró, orden 24017, falta dc04")
    assert (got.machine, got.work_order, got.material) == ("PRS-12", "WO-24017", "COIL-DC04")
    engine.dispose()
