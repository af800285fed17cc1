"""Photos of paper that the OCR tests and bench/bench_ocr.py render themselves with Pillow.

Three kinds of paper per language (en, es, de, and Hindi as the plant writes it, in Latin
script): a deviation form with printed fields, a label, and a "handwritten-like" note — an
oblique font, each word on its own slightly tilted baseline, the whole page rotated a little,
a grey shadow across it and JPEG compression, as a phone photo of a note on a clipboard looks.
The fonts are the DejaVu and Liberation fonts Debian ships (fonts-dejavu-core,
fonts-liberation); nothing is downloaded. Every page is made from a seed, so a run is repeatable.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont

FONTS = Path("/usr/share/fonts/truetype")
PRINT = ("dejavu/DejaVuSans.ttf", "liberation/LiberationSans-Regular.ttf")
BOLD = ("dejavu/DejaVuSans-Bold.ttf", "liberation/LiberationSans-Bold.ttf")
HAND = ("dejavu/DejaVuSans-Oblique.ttf", "liberation/LiberationSerif-Italic.ttf", "dejavu/DejaVuSerif-Italic.ttf")


@dataclass(frozen=True)
class Paper:
    """One page: what is written on it and what the NLP should find in it."""

    kind: str  # form | label | note
    language: str
    lines: tuple[str, ...]
    machine: str | None = None
    work_order: str | None = None
    material: str | None = None
    exception_type: str | None = None
    caption: str = ""  # what the sender types with the photo (a label says little by itself)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


# The plant of tests/data/channels_plant.yaml: HOB-01 "hobber 1", ASM-01 "line 1", FRG-20 "blanks".
PAPERS: tuple[Paper, ...] = (
    Paper("form", "en", ("DEVIATION REPORT", "Machine: HOB-01 Gear hobber 1", "Work order: WO-1042",
                         "Problem: machine stopped, spindle bearing noise", "Reported by: Carlos Ruiz"),
          machine="HOB-01", work_order="WO-1042", exception_type="breakdown"),
    Paper("form", "es", ("INFORME DE DESVIACIÓN", "Máquina: HOB-01 fresadora", "Orden de trabajo: WO-1042",
                         "Problema: máquina parada, ruido en el husillo", "Informado por: Carlos Ruiz"),
          machine="HOB-01", work_order="WO-1042", exception_type="breakdown"),
    Paper("form", "de", ("ABWEICHUNGSMELDUNG", "Maschine: HOB-01 Wälzfräsmaschine", "Auftrag: WO-1042",
                         "Problem: Maschine steht, Spindellager macht Geräusche", "Gemeldet von: Tom Fischer"),
          machine="HOB-01", work_order="WO-1042", exception_type="breakdown"),
    Paper("form", "hi", ("DEVIATION REPORT", "Machine: HOB-01", "Work order: WO-1042",
                         "Problem: machine band ho gaya, spindle se awaaz aa rahi hai", "Reported by: Ravi Kumar"),
          machine="HOB-01", work_order="WO-1042", exception_type="breakdown"),
    Paper("label", "en", ("MATERIAL FRG-20", "Gear blank forging", "Qty 400 pcs", "For WO-1042"),
          material="FRG-20", work_order="WO-1042", exception_type="material",
          caption="these blanks are missing"),
    Paper("label", "es", ("MATERIAL FRG-20", "Forja en bruto", "Cantidad 400 uds", "Para WO-1042"),
          material="FRG-20", work_order="WO-1042", exception_type="material", caption="falta este material"),
    Paper("label", "de", ("MATERIAL FRG-20", "Schmiederohling", "Menge 400 Stück", "Für WO-1042"),
          material="FRG-20", work_order="WO-1042", exception_type="material", caption="dieses Material fehlt"),
    Paper("label", "hi", ("MATERIAL FRG-20", "Gear blank forging", "Qty 400 pcs", "WO-1042 ke liye"),
          material="FRG-20", work_order="WO-1042", exception_type="material", caption="ye material khatam ho gaya"),
    Paper("note", "en", ("line 1 stopped", "conveyor motor broken", "WO-1077 waiting"),
          machine="ASM-01", work_order="WO-1077", exception_type="breakdown"),
    Paper("note", "es", ("línea 1 parada", "motor de la cinta roto", "WO-1077 esperando"),
          machine="ASM-01", work_order="WO-1077", exception_type="breakdown"),
    Paper("note", "de", ("Linie 1 steht", "Motor vom Förderband kaputt", "WO-1077 wartet"),
          machine="ASM-01", work_order="WO-1077", exception_type="breakdown"),
    Paper("note", "hi", ("line 1 band ho gayi", "conveyor motor kharab hai", "WO-1077 ruka hua"),
          machine="ASM-01", work_order="WO-1077", exception_type="breakdown"),
)


def papers(kind: str | None = None, language: str | None = None) -> list[Paper]:
    return [p for p in PAPERS if (kind is None or p.kind == kind) and (language is None or p.language == language)]


def _font(names: tuple[str, ...], size: int, rng: random.Random) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONTS / rng.choice(names)), size)


def render(paper: Paper, seed: int = 0, fmt: str = "PNG") -> bytes:
    """The page as a photo's bytes (PNG, or JPEG as phones send it)."""
    rng = random.Random(f"{paper.kind}:{paper.language}:{seed}")
    if paper.kind == "form":
        image = _form(paper, rng)
    elif paper.kind == "label":
        image = _label(paper, rng)
    else:
        image = _note(paper, rng)
    out = io.BytesIO()
    image.convert("RGB").save(out, format=fmt, **({"quality": 80} if fmt == "JPEG" else {}))
    return out.getvalue()


def _form(paper: Paper, rng: random.Random) -> Image.Image:
    """A printed form: a bold title, ruled field rows, a little grey and a slight skew."""
    image = Image.new("L", (1240, 900), 246)
    draw = ImageDraw.Draw(image)
    title, body = _font(BOLD, 44, rng), _font(PRINT, 32, rng)
    draw.text((60, 50), paper.lines[0], font=title, fill=20)
    y = 150
    for line in paper.lines[1:]:
        draw.text((70, y), line, font=body, fill=rng.randint(10, 50))
        draw.line((60, y + 50, 1180, y + 50), fill=150, width=2)
        y += 110
    draw.rectangle((40, 30, 1200, y), outline=90, width=3)
    return image.rotate(rng.uniform(-1.5, 1.5), resample=Image.Resampling.BICUBIC, fillcolor=246)


def _label(paper: Paper, rng: random.Random) -> Image.Image:
    """A small sticker photographed close: low resolution (the OCR upscales it), a border."""
    image = Image.new("L", (520, 260), 255)
    draw = ImageDraw.Draw(image)
    big, small = _font(BOLD, 30, rng), _font(PRINT, 22, rng)
    draw.rectangle((8, 8, 511, 251), outline=0, width=4)
    draw.text((24, 22), paper.lines[0], font=big, fill=0)
    for i, line in enumerate(paper.lines[1:]):
        draw.text((24, 80 + i * 50), line, font=small, fill=30)
    return image.rotate(rng.uniform(-2, 2), resample=Image.Resampling.BICUBIC, fillcolor=255, expand=True)


def _note(paper: Paper, rng: random.Random) -> Image.Image:
    """A handwritten-like note: an oblique font, words on tilted baselines, a shadow, a blur."""
    image = Image.new("L", (1200, 700), 238)
    y = 80
    for line in paper.lines:
        x = 60 + rng.randint(0, 40)
        for word in line.split():
            font = _font(HAND, rng.randint(42, 50), rng)
            box = font.getbbox(word)
            tile = Image.new("L", (box[2] + 20, box[3] + 30), 0)
            ImageDraw.Draw(tile).text((10, 10), word, font=font, fill=255)
            tile = tile.rotate(rng.uniform(-4, 4), resample=Image.Resampling.BICUBIC, expand=True)
            ink = Image.new("L", tile.size, rng.randint(20, 60))
            image.paste(ink, (x, y + rng.randint(-6, 6)), tile)
            x += tile.width + rng.randint(6, 18)
        y += 140 + rng.randint(-10, 10)
    shadow = Image.linear_gradient("L").rotate(90).resize(image.size).point(lambda v: 255 - v // 3)
    image = ImageChops.multiply(image, shadow)  # darker towards one side, as under a hand
    image = image.filter(ImageFilter.GaussianBlur(0.8))
    return image.rotate(rng.uniform(-3, 3), resample=Image.Resampling.BICUBIC, fillcolor=230)
