"""Replicas starting together on a fresh PostgreSQL database all migrate it (models.db.migrate).

Separate processes, as replicas are: Alembic keeps its migration context in a module global, so
threads of one process would not be a faithful stand-in.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect

from models.db import make_engine, migrate
from tests.conftest import _fresh_schema

REPLICAS = 4
ROOT = Path(__file__).resolve().parent.parent

# Each replica waits for the same start file, then migrates: the race is in CREATE TYPE / CREATE TABLE.
REPLICA = """
import os, sys, time
from models.db import make_engine, migrate
engine = make_engine(sys.argv[1], schema=sys.argv[2])
with engine.connect():
    pass  # connected and imported before the start signal, so the replicas really overlap
print("ready", flush=True)
while not os.path.exists(sys.argv[3]):
    time.sleep(0.005)
migrate(engine)
"""


@pytest.fixture
def fresh_schema() -> Iterator[tuple[str, str]]:
    with _fresh_schema() as (url, schema):
        yield url, schema


def test_replicas_migrating_one_fresh_schema_at_once_all_succeed(fresh_schema: tuple[str, str],
                                                                  tmp_path: Path) -> None:
    url, schema = fresh_schema
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    replicas = [subprocess.Popen([sys.executable, "-c", REPLICA, url, schema, str(go)], env=env, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(REPLICAS)]
    try:
        for replica in replicas:
            assert replica.stdout is not None and replica.stdout.readline().strip() == "ready"
        go.touch()
        results = [(replica.wait(timeout=120), replica.stderr.read() if replica.stderr else "")
                   for replica in replicas]
    finally:
        for replica in replicas:
            if replica.poll() is None:
                replica.kill()
    assert [code for code, _ in results] == [0] * REPLICAS, "\n".join(err for _, err in results if err)
    engine = make_engine(url, schema=schema)
    try:
        assert "signals" in inspect(engine).get_table_names(schema=schema)
        migrate(engine)  # the next start finds nothing to do
    finally:
        engine.dispose()
