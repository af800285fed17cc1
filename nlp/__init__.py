"""Chat text -> `Extraction`: intent, exception type, machine, work order, material, quantities."""

from nlp.extraction import (
    DispositionLine,
    Extraction,
    MachineRef,
    MasterData,
    MaterialRef,
    Quantity,
    Resolution,
    WorkOrderRef,
)
from nlp.extractor import Extractor, master_data_from_store

__all__ = [
    "DispositionLine",
    "Extraction",
    "Extractor",
    "MachineRef",
    "MasterData",
    "MaterialRef",
    "Quantity",
    "Resolution",
    "WorkOrderRef",
    "master_data_from_store",
]
