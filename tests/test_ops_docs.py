"""The repository stands alone: code, help texts and docs point to docs/ inside it, never to
files outside it, and every docs/ page they name exists."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEXT_FILES = (".py", ".md", ".yaml", ".yml", ".toml", ".html", ".js", ".css", ".service")
OUTSIDE = re.compile(r"\bshared/|\.\./shared\b|\bDESIGN\.md\b|\bSTYLE\.md\b")
DOCS_PAGE = re.compile(r"\bdocs/([\w-]+\.md)\b")


def tracked_text_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [ROOT / name for name in listed.splitlines()
            if name.endswith(TEXT_FILES) and (ROOT / name).is_file() and name != "tests/test_ops_docs.py"]


def test_nothing_refers_to_files_outside_the_repository() -> None:
    found = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
             for path in tracked_text_files()
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
             if OUTSIDE.search(line)]
    assert found == []


def test_every_docs_page_named_exists() -> None:
    missing = sorted({f"{path.relative_to(ROOT)}: docs/{page}"
                      for path in tracked_text_files()
                      for page in DOCS_PAGE.findall(path.read_text(encoding="utf-8"))
                      if not (ROOT / "docs" / page).exists()})
    assert missing == []
