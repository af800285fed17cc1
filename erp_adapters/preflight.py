"""The preflight: every `erp:` setting and reference of a plant checked against its ERP.

A wrong warehouse or a missing Employee otherwise surfaces as a rejected transaction in the
thread of the first breakdown that needs it. `mfgos check-erp` runs this on demand; `serve`
runs it at start and with every master-data sync and logs what it finds.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from erp_adapters.base import ErpAdapter, PlantNeeds, SettingProblem
from models.tables import Machine, Person, Plant, WorkOrder, WorkOrderStatus

DEFAULT_UNIT = "pcs"  # the unit routing gives a disposition that names none


def plant_needs(engine: Engine, plant_id: str) -> tuple[dict[str, Any], PlantNeeds]:
    """The plant's `erp:` block and what its transactions will name: every machine, every unit the
    block maps (and the default), the materials of the work orders not done, the people."""
    with Session(engine) as session:
        plant = session.get(Plant, plant_id)
        settings = dict(plant.erp or {}) if plant is not None else {}
        machines = session.exec(select(Machine.id).where(Machine.plant_id == plant_id).order_by(Machine.id)).all()
        materials = session.exec(
            select(WorkOrder.material_id)
            .where(WorkOrder.plant_id == plant_id, WorkOrder.status != WorkOrderStatus.done)
            .distinct()
        ).all()
        people = session.exec(select(Person.id).where(Person.plant_id == plant_id).order_by(Person.id)).all()
    units = sorted({DEFAULT_UNIT, *(str(u) for u in (settings.get("units") or {}))})
    return settings, PlantNeeds(
        machines=tuple(machines),
        units=tuple(units),
        materials=tuple(sorted(m for m in materials if m)),
        people=tuple(people),
    )


async def check_plant(engine: Engine, adapter: ErpAdapter, plant_id: str) -> list[SettingProblem]:
    """Every problem the adapter finds; raises the ERP error family when the ERP cannot be asked."""
    settings, needs = await asyncio.to_thread(plant_needs, engine, plant_id)
    return await adapter.check(settings, needs)
