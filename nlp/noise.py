"""Noisy copies of labelled messages: chat as it is typed on a phone with gloves on.

    python -m nlp.noise [--seed 15] [--out DIR] [FILE.jsonl ...]

Why: the labelled sets are written with care, the floor's messages are not. A copy of every
set with letters dropped or swapped, vowels left out ("prss 12", "robt 3", "hrono 2",
"empacaora"), no punctuation, all lower case and emoji added is read beside the clean one
(`python -m nlp.evaluate --noisy`), so a change that only works on tidy text shows.

The copy is a pure function of the text and the seed: the same files give the same copies on
every machine, and the labels stay true. Tokens with a digit in them (work orders, machine
numbers, lots) are left alone; a number mistyped is a different order, not noise. The trainer
(`nlp/train.py`) also learns from a noisy copy of its data, made with another seed.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import zlib
from pathlib import Path

SEED = 15
EMOJI = ("👍", "🙏", "😩", "😡", "‼️", "🤦", "😅", "⚠️", "🔧", "😬")
VOWELS = frozenset("aeiouäöüáéíóú")
WORD_NOISE = 0.25  # share of longer words that get one slip
MIN_LENGTH = 4  # words shorter than this are left as they are ("wo", "la", "is")
_PUNCTUATION = re.compile(r"[.,;:!?¿¡()\"]")


def _slip(word: str, rng: random.Random) -> str:
    """One slip of a thumb: a letter dropped or doubled, two letters swapped, the vowels left out."""
    inner = range(1, len(word) - 1)
    kind = rng.choice(("drop", "drop", "swap", "vowels", "double"))
    if kind == "vowels":
        bare = word[0] + "".join(ch for ch in word[1:] if ch.lower() not in VOWELS)
        if len(bare) >= 3 and bare != word:
            return bare
        kind = "drop"
    k = rng.choice(inner)
    if kind == "drop":
        return word[:k] + word[k + 1 :]
    if kind == "swap":
        return word[:k] + word[k + 1] + word[k] + word[k + 2 :]
    return word[:k] + word[k] + word[k:]


def noisy(text: str, seed: int = SEED) -> str:
    """The noisy copy of one message; the same text and seed always give the same copy."""
    rng = random.Random(zlib.crc32(text.encode("utf-8")) ^ seed)
    text = _PUNCTUATION.sub(" ", text.replace("'", "").replace("’", "")).lower()
    words = []
    marked = False  # inside a [plant name] of the plant-free training sets: kept as written
    for word in text.split():
        marked = marked or word.startswith("[")
        if not marked and word.isalpha() and len(word) >= MIN_LENGTH and rng.random() < WORD_NOISE:
            word = _slip(word, rng)
        words.append(word)
        marked = marked and "]" not in word
    if rng.random() < 0.3:
        words.append(rng.choice(EMOJI))
    return " ".join(words)


def noisy_rows(rows: list[dict], seed: int = SEED) -> list[dict]:
    """The labelled rows with their text made noisy; labels unchanged."""
    return [{**row, "text": noisy(row["text"], seed)} for row in rows]


def main(argv: list[str] | None = None) -> int:
    from nlp.evaluate import CORPUS_PLANTS, DATA, load_labelled

    parser = argparse.ArgumentParser(prog="python -m nlp.noise", description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", help="labelled JSON lines (default: every corpus split)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out", default="noisy", help="directory for the copies (same file names)")
    args = parser.parse_args(argv)
    files = [Path(f) for f in args.files] or [DATA / "corpus" / f"{split}.jsonl" for split in sorted(CORPUS_PLANTS)]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for path in files:
        rows = noisy_rows(load_labelled(path), args.seed)
        target = out / path.name
        target.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        print(f"{path} -> {target} ({len(rows)} messages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
