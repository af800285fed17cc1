"""Text on a photo of paper (a deviation form, a handwritten note, a label), read by Tesseract.

A photo sent on any channel is a message like a typed one: the runtime reads its text here
(mfgos/runtime.py, before the message is processed) and the conversation reads that text
with the NLP. Everything about the image is hostile input, so each step is capped before it
costs anything:

- bytes: a file over `OcrLimits.max_bytes` is not opened;
- pixels: the header is read first (Pillow decodes nothing yet) and an image over
  `OcrLimits.max_pixels` is refused, so a decompression bomb (a few kB of PNG that inflate to
  gigabytes) is never decoded; Pillow's own `DecompressionBombError` is caught as a refusal too;
- time: Tesseract runs as a child process that pytesseract kills after `OcrLimits.timeout`
  seconds, so a pathological image cannot hold a worker;
- anything else that goes wrong (not an image, a truncated file, a Tesseract error) is a
  result with status `refused` or `failed`, never an exception: the message is still read
  (its caption, if any) and the sender is told the photo could not be read.

Languages. Tesseract reads better with fewer models: the sender's language model and English
(machine ids, part numbers and many labels on the floor are English). Hindi at our plants is
written in Latin script ("hobber 1 band ho gaya"), which the English model reads well; the
`hin` model is trained on Devanagari and turns Latin words into Devanagari look-alikes, so it
is used only when the plant asks for it (`MFGOS_OCR_DEVANAGARI`, docs/channels.md).

Preprocessing: EXIF rotation applied, grayscale, a small image upscaled (Tesseract wants
letters about 30 px high; phone thumbnails and label close-ups are often less), the shadow of
a hand or a clipboard taken out (`flatten`) and the contrast stretched; Tesseract then
thresholds the page itself (Otsu). pytesseract and Pillow are imported on first use, not at import.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL.Image import Image

MAX_BYTES = 20 * 1024 * 1024  # as a fetched photo (bot/fetch.py MAX_MEDIA)
MAX_PIXELS = 40_000_000  # a 40 MP photo; a phone's largest is about 50 MP, mostly 12
MAX_OCR_PIXELS = 16_000_000  # after upscaling: what Tesseract is given at most
TIMEOUT = 20.0  # seconds of Tesseract per photo
MIN_SIDE = 1400  # px: a photo whose longer side is shorter is upscaled towards it
MAX_UPSCALE = 3.0
MIN_CONFIDENCE = 45  # Tesseract's word confidence (0-100) below which a word is noise
MIN_WORDS = 2  # a photo with fewer confident words than this has nothing readable
MAX_TEXT = 3000  # characters kept from one photo (a chat message is at most 4,000)
# Our languages (routing/messages.py) -> Tesseract's models.
MODELS = {"en": "eng", "es": "spa", "de": "deu", "hi": "eng"}
DEVANAGARI = "hin"
_WORD = re.compile(r"\w", re.UNICODE)


@dataclass(frozen=True)
class OcrLimits:
    """How much one photo may cost (`MFGOS_OCR_*` settings)."""

    max_bytes: int = MAX_BYTES
    max_pixels: int = MAX_PIXELS
    timeout: float = TIMEOUT
    devanagari: bool = False  # also load Tesseract's `hin` model (Hindi in Devanagari script)


@dataclass(frozen=True)
class OcrResult:
    """What was read from one photo: `status` read | unreadable (nothing confident) | refused (too big,
    not an image) | failed (Tesseract missing, timed out or broke); `text` only when read."""

    status: str
    text: str = ""
    confidence: float = 0.0  # mean word confidence of the kept words, 0-100
    words: int = 0
    reason: str = ""

    @property
    def readable(self) -> bool:
        return self.status == "read"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def models_for(languages: Iterable[str | None], limits: OcrLimits = OcrLimits()) -> str:
    """Tesseract's `-l` argument for these languages (the sender's first): their models and English."""
    chosen: list[str] = []
    for language in (*languages, "en"):
        model = MODELS.get((language or "").split("-")[0].lower())
        if model and model not in chosen:
            chosen.append(model)
    if limits.devanagari and DEVANAGARI not in chosen:
        chosen.append(DEVANAGARI)
    return "+".join(chosen)


def read_file(path: Path, languages: Iterable[str | None], limits: OcrLimits = OcrLimits()) -> OcrResult:
    """`read_bytes` of a stored file; a file that is gone or too big is refused without reading it."""
    try:
        size = path.stat().st_size
        if size > limits.max_bytes:
            return OcrResult("refused", reason=f"{size} bytes is more than the {limits.max_bytes} read")
        data = path.read_bytes()
    except OSError as error:
        return OcrResult("refused", reason=f"file not readable: {error.strerror or error}")
    return read_bytes(data, languages, limits)


def read_bytes(data: bytes, languages: Iterable[str | None], limits: OcrLimits = OcrLimits()) -> OcrResult:
    """The text on an image; never raises for anything the image's bytes can do."""
    if len(data) > limits.max_bytes:
        return OcrResult("refused", reason=f"{len(data)} bytes is more than the {limits.max_bytes} read")
    try:
        image = prepare(data, limits)
    except Exception as error:  # Pillow raises many kinds for hostile bytes: each is "not an image we read"
        return OcrResult("refused", reason=f"not a readable image: {type(error).__name__}: {str(error)[:150]}")
    return recognise(image, models_for(languages, limits), limits)


def prepare(data: bytes, limits: OcrLimits = OcrLimits()) -> Image:
    """The image as Tesseract reads it best: upright, grayscale, large enough, black on white."""
    from PIL import Image as PILImage
    from PIL import ImageOps

    with PILImage.open(io.BytesIO(data)) as opened:  # reads the header only
        width, height = opened.size
        if width < 1 or height < 1 or width * height > limits.max_pixels:
            raise ValueError(f"{width}x{height} pixels is more than the {limits.max_pixels} read")
        opened.draft("L", (width, height))  # JPEG: decode straight to grayscale
        if opened.mode in ("RGBA", "LA", "PA") or "transparency" in opened.info:
            # A screenshot or a cut-out label: transparent means paper, not black.
            rgba = opened.convert("RGBA")
            image = PILImage.alpha_composite(PILImage.new("RGBA", rgba.size, "white"), rgba).convert("L")
        else:
            image = opened.convert("L")
        image = ImageOps.exif_transpose(image)
    scale = min(MAX_UPSCALE, MIN_SIDE / max(image.size))
    if scale > 1.1:
        scale = min(scale, (MAX_OCR_PIXELS / (image.width * image.height)) ** 0.5)
        image = image.resize((round(image.width * scale), round(image.height * scale)), PILImage.Resampling.LANCZOS)
    return ImageOps.autocontrast(flatten(image), cutoff=1)


def flatten(image: Image) -> Image:
    """The page with its shadows taken out: the paper's brightness, estimated as the brightest
    pixels around each point (ink is thin, paper is wide), is subtracted, so a shadow across a
    note leaves white paper and dark ink. A single threshold over the whole page measured worse
    (bench/bench_ocr.py): it cuts the words in the shadow away; Tesseract binarises the result."""
    from PIL import ImageChops, ImageFilter

    paper = image.reduce(4).filter(ImageFilter.MaxFilter(7)).filter(ImageFilter.GaussianBlur(8)).resize(image.size)
    return ImageChops.invert(ImageChops.subtract(paper, image))


def recognise(image: Image, models: str, limits: OcrLimits = OcrLimits()) -> OcrResult:
    """Tesseract's words on a prepared image, lines kept, words below `MIN_CONFIDENCE` dropped."""
    import pytesseract

    try:
        data = pytesseract.image_to_data(image, lang=models, config="--psm 3", timeout=limits.timeout,
                                         output_type=pytesseract.Output.DICT)
    except RuntimeError as error:  # pytesseract's timeout: the child was killed
        return OcrResult("failed", reason=f"Tesseract took more than {limits.timeout} s: {error}")
    except (pytesseract.TesseractError, pytesseract.TesseractNotFoundError, OSError) as error:
        return OcrResult("failed", reason=f"Tesseract failed: {str(error)[:200]}")
    lines: dict[tuple[int, int, int], list[str]] = {}
    confidences: list[float] = []
    for word, confidence, block, paragraph, line in zip(data["text"], data["conf"], data["block_num"],
                                                        data["par_num"], data["line_num"], strict=False):
        word = str(word).strip()
        if not word or float(confidence) < MIN_CONFIDENCE or not _WORD.search(word):
            continue
        lines.setdefault((block, paragraph, line), []).append(word)
        confidences.append(float(confidence))
    text = "\n".join(" ".join(words) for _, words in sorted(lines.items()))[:MAX_TEXT]
    if len(confidences) < MIN_WORDS:
        return OcrResult("unreadable", words=len(confidences))
    return OcrResult("read", text=text, confidence=round(sum(confidences) / len(confidences), 1),
                     words=len(confidences))
