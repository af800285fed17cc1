"""Charts as PNG: the `Chart` an answer carries (routing/queries.py) drawn with matplotlib.

Drawn the same way everywhere (Slack, Telegram, WhatsApp, the console), so one chart is one
file: a fixed size and resolution, the DejaVu Sans font that ships with matplotlib, and no
metadata that changes between runs (no software version, no time), so the same figures give
the same bytes (`sha256` names them). The title and labels are plant and user text: mathtext
is off (a "$" stays a dollar sign), control characters are dropped and long labels cut, so
no text can break a drawing. matplotlib is imported on the first drawing, with the Agg
backend, never at import time; drawings are serialised (matplotlib's font cache is shared).
"""

from __future__ import annotations

import hashlib
import io
import threading
import unicodedata
import warnings
from collections import OrderedDict
from typing import Any

WIDTH, HEIGHT, DPI = 8.0, 4.5, 100  # inches and dots per inch: 800 x 450 pixels
SIZE = (int(WIDTH * DPI), int(HEIGHT * DPI))
MAX_LABEL = 24  # characters of an axis label
MAX_TITLE = 90  # characters of the title
MAX_POINTS = 400  # values drawn (366 days fit)
MAX_VALUE = 1e12  # larger figures are not counts or minutes of a plant: drawn at this height
CACHE = 64  # drawings kept by their figures' hash: a retry or the console's second look draws nothing
BAR = "#2f6f9f"
LINE = "#c0392b"
STYLE = {
    "text.parse_math": False,  # "$5 part" is text, never mathtext
    "text.usetex": False,
    "font.family": "DejaVu Sans",
    "svg.hashsalt": "mfgos",
    "path.simplify": True,
    "axes.unicode_minus": True,
}

_lock = threading.Lock()
_cache: OrderedDict[str, bytes] = OrderedDict()


def clean(text: Any, limit: int) -> str:
    """User text as a label: printable characters only (no control, format or surrogate characters),
    whitespace runs as one space, cut to `limit` with an ellipsis."""
    kept = "".join(ch if unicodedata.category(ch)[0] not in "CZ" else " " for ch in str(text))
    kept = " ".join(kept.split())
    return kept if len(kept) <= limit else kept[: limit - 1] + "…"


def _number(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    if number != number or abs(number) == float("inf"):
        return 0.0
    return min(max(number, 0.0), MAX_VALUE)  # counts and minutes: never below zero


def spec_of(chart: dict[str, Any]) -> dict[str, Any]:
    """The chart as drawn: cleaned text, numbers that are finite, as many labels as values."""
    chart = chart if isinstance(chart, dict) else {}
    values = [_number(v) for v in list(chart.get("values") or [])[:MAX_POINTS]]
    labels = [clean(v, MAX_LABEL) for v in list(chart.get("labels") or [])[: len(values)]]
    labels += [""] * (len(values) - len(labels))
    kind = chart.get("kind") if chart.get("kind") in ("trend", "pareto") else "trend"
    return {"kind": kind, "title": clean(chart.get("title") or "", MAX_TITLE), "labels": labels, "values": values,
            "unit": clean(chart.get("unit") or "", 8)}


def digest(chart: dict[str, Any]) -> str:
    """The name of a chart's drawing: the same figures, the same name."""
    import json

    return hashlib.sha256(json.dumps(spec_of(chart), sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def render(chart: dict[str, Any]) -> bytes:
    """The chart as a PNG of `SIZE` pixels; the same chart gives the same bytes."""
    key = digest(chart)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
        data = _draw(spec_of(chart))
        _cache[key] = data
        if len(_cache) > CACHE:
            _cache.popitem(last=False)
        return data


def _draw(spec: dict[str, Any]) -> bytes:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    # A character DejaVu Sans lacks (CJK, emoji) is drawn as a box: matplotlib's warning says only that.
    with matplotlib.rc_context(STYLE), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        figure = Figure(figsize=(WIDTH, HEIGHT), dpi=DPI)
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        labels, values = spec["labels"], spec["values"]
        positions = list(range(len(values)))
        if spec["kind"] == "pareto":
            axes.bar(positions, values, color=BAR)
            total = sum(values)
            if total > 0:
                running, shares = 0.0, []
                for value in values:
                    running += value
                    shares.append(100 * running / total)
                share_axes = axes.twinx()
                share_axes.plot(positions, shares, color=LINE, marker="o")
                share_axes.set_ylim(0, 105)
                share_axes.yaxis.set_major_formatter(PercentFormatter())
        else:
            axes.plot(positions, values, color=BAR, marker="o" if len(values) <= 60 else None)
            axes.fill_between(positions, values, color=BAR, alpha=0.15)
        axes.set_ylim(0, max(values, default=0) * 1.1 or 1)
        axes.yaxis.set_major_locator(MaxNLocator(integer=not spec["unit"]))
        if spec["unit"]:
            axes.set_ylabel(spec["unit"])
        step = max(1, len(positions) // 15)  # at most about 15 labels under the axis
        axes.set_xticks(positions[::step], [labels[i] for i in positions[::step]], rotation=45, ha="right",
                        fontsize=8)
        axes.set_title(spec["title"], fontsize=10)
        axes.grid(axis="y", alpha=0.3)
        figure.tight_layout()
        out = io.BytesIO()
        figure.savefig(out, format="png", dpi=DPI, metadata={"Software": None})
        return out.getvalue()
