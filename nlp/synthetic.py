"""A large, deterministic synthetic plant and messages about it, for benchmarks and scale tests.

5,000 machines, 20,000 materials and 50,000 open work orders by default: the size issue 3
asks the matcher to stay fast at. Names follow real plants' habits (brand + kind + number,
short aliases) so the indexes hold as many phrases as a real plant of that size would.
"""

from __future__ import annotations

import random

from nlp.extraction import MachineRef, MasterData, MaterialRef, WorkOrderRef

KINDS = (
    ("LTH", "lathe", "torno"), ("MIL", "mill", "fresadora"), ("GRD", "grinder", "Schleifmaschine"),
    ("PRS", "press", "prensa"), ("IMM", "injection moulding machine", "inyectora"), ("WLD", "welding robot cell", "celda"),
    ("FUR", "furnace", "Ofen"), ("WSH", "parts washer", "lavadora"), ("CNV", "conveyor", "Förderband"),
    ("CMP", "compressor", "Kompressor"), ("SAW", "band saw", "sierra"), ("DRL", "drill", "taladro"),
    ("HOB", "gear hobber", "Wälzfräsmaschine"), ("LSR", "laser cutter", "laser"), ("TST", "test bench", "Prüfstand"),
    ("PNT", "paint booth", "cabina de pintura"), ("EXT", "extruder", "extrusora"), ("PCK", "packer", "empacadora"),
    ("BLR", "boiler", "caldera"), ("CRN", "crane", "grúa"),
)
BRANDS = ("Mazak", "Okuma", "DMG", "Haas", "Trumpf", "Engel", "Arburg", "Schuler", "Liebherr", "Kuka", "Fanuc",
          "Bosch", "Heller", "Index", "Emag", "Gleason", "Amada", "Bystronic", "Husky", "Krauss")
MATERIAL_WORDS = ("steel bar", "aluminium sheet", "bearing", "shaft seal", "screw", "gasket", "granulate",
                  "paint", "wire", "coil", "forging", "casting", "bolt", "nut", "spring", "bushing", "tube",
                  "carton", "label", "resin")
GRADES = ("C45", "42CrMo4", "S235", "AlMg3", "PA66", "PP", "DC04", "16MnCr5", "6061", "304", "M8", "M10",
          "RAL9005", "GF30", "6205", "6305", "D40", "D60", "2RS", "X5")


def synthetic_master(machines: int = 5_000, materials: int = 20_000, work_orders: int = 50_000,
                     seed: int = 7) -> MasterData:
    rng = random.Random(seed)
    machine_refs = []
    for k in range(machines):
        code, kind, local = KINDS[k % len(KINDS)]
        number = k // len(KINDS) + 1
        brand = BRANDS[rng.randrange(len(BRANDS))]
        machine_refs.append(MachineRef(
            id=f"{code}-{number:03d}",
            name=f"{brand} {kind} {number}",
            area=f"hall-{number % 12 + 1}",
            aliases=(f"{kind} {number}", f"{local} {number}", f"{code.lower()}{number}"),
        ))
    material_refs = []
    for k in range(materials):
        word = MATERIAL_WORDS[k % len(MATERIAL_WORDS)]
        grade = GRADES[rng.randrange(len(GRADES))]
        material_refs.append(MaterialRef(
            id=f"MAT-{k:06d}",
            name=f"{word} {grade} {k}",
            aliases=(f"{grade.lower()} {word} {k}", f"m{k}"),
        ))
    customer_orders = tuple(f"SO-{90000 + k}" for k in range(work_orders // 10))
    order_refs = tuple(
        WorkOrderRef(
            id=f"WO-{100000 + k}",
            machine=machine_refs[rng.randrange(machines)].id if machines else None,
            material=material_refs[rng.randrange(materials)].id if materials else None,
            customer_order=customer_orders[rng.randrange(len(customer_orders))] if customer_orders else None,
        )
        for k in range(work_orders)
    )
    return MasterData(machines=tuple(machine_refs), materials=tuple(material_refs), work_orders=order_refs,
                      customer_orders=customer_orders)


_TEMPLATES = (
    ("en", "{machine} stopped, spindle alarm. wo {wo}"),
    ("en", "{machine} making noise, parts oversize, 12 pcs scrapped"),
    ("en", "out of {material} at {machine}, wo {wo} will stop"),
    ("en", "status wo {wo}?"),
    ("en", "fixed, replaced the pump bearing on {machine}, running again"),
    ("en", "scrap 40 pcs, release the other 160"),
    ("en", "on my way"),
    ("es", "{machine} se paró, ruido feo en el husillo. orden {wo}"),
    ("es", "no hay {material} para la {wo}"),
    ("es", "ya quedó la {machine}, era un sensor"),
    ("de", "{machine} steht, Störung Hydraulik, Auftrag {wo}"),
    ("de", "Teile mit Lunker ca 200 Stück an {machine}"),
    ("de", "bin unterwegs"),
    ("hi", "{machine} band ho gaya, spindle se awaaz aa rahi hai. wo {wo}"),
    ("hi", "{material} khatam ho gaya, line ruk jayegi"),
    ("hi", "theek hai, approve kar diya"),
)


def synthetic_messages(master: MasterData, count: int, seed: int = 11) -> list[tuple[str, str]]:
    """(text, language) pairs naming the plant's machines, materials and work orders."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        language, template = _TEMPLATES[rng.randrange(len(_TEMPLATES))]
        machine = master.machines[rng.randrange(len(master.machines))] if master.machines else None
        material = master.materials[rng.randrange(len(master.materials))] if master.materials else None
        order = master.work_orders[rng.randrange(len(master.work_orders))] if master.work_orders else None
        out.append((template.format(
            machine=machine.aliases[rng.randrange(len(machine.aliases))] if machine and machine.aliases else "mill 2",
            material=material.aliases[0] if material and material.aliases else "bearings",
            wo=order.id.split("-")[-1] if order else "1042",
        ), language))
    return out
