"""`mfgos demo --reset`: start the demo afresh by deleting its SQLite file, and nothing else.

The file is deleted only when every plant stored in it is the demo plant (loaded from the
shipped `demo_plant.yaml`): a `--database` pointing at a real plant's store is refused.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url

from mfgos.config import DEMO_PLANT
from models.db import normalise_url


class DemoResetError(Exception):
    """The database is not the demo's SQLite file; the message says why nothing was deleted."""


def reset_demo_database(url: str) -> Path | None:
    """Delete the demo's SQLite file (with its WAL and shared-memory files); the path deleted, or
    None when there was no file yet."""
    parsed = make_url(normalise_url(url))
    shown = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        raise DemoResetError(f"--reset deletes the demo's SQLite file; {shown} is not one, nothing deleted")
    path = Path(parsed.database)
    if not path.exists():
        return None
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            plants = connection.execute("SELECT id, source_file FROM plants").fetchall()
        finally:
            connection.close()
    except sqlite3.Error as error:
        raise DemoResetError(f"{path} is not an mfgos database ({error}); nothing deleted") from error
    foreign = sorted(plant for plant, source in plants if Path(source or "").name != DEMO_PLANT.name)
    if foreign:
        raise DemoResetError(f"{path} holds plant {', '.join(foreign)}, not the demo plant; nothing deleted")
    for suffix in ("-wal", "-shm", "-journal"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    path.unlink()
    return path
