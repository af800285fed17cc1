"""Shared test fixtures: migrated stores on SQLite and PostgreSQL.

Fixtures
- `engine`: a migrated, empty store, parametrised over ``sqlite`` and ``postgresql``
  (test ids ``[sqlite]`` / ``[postgresql]``, so ``-k sqlite`` picks one).
  * sqlite: a fresh database file under the test's ``tmp_path``.
  * postgresql: the server at ``MFGOS_TEST_DATABASE_URL``; every test gets a schema of its
    own (``t_<random>``) that is created before and dropped (CASCADE) after the test, and
    every connection of the engine uses it through ``search_path``
    (``models.db.make_engine(url, schema=...)``). Tests running in parallel on one database
    therefore never see each other's rows.
    Skipped when ``MFGOS_TEST_DATABASE_URL`` is unset or the server is unreachable, unless
    ``MFGOS_REQUIRE_SERVICES=1``: then the test fails instead.
- `sqlite_engine`: the sqlite variant alone, for tests that need no second database.
- `database_url`: the same two databases as a URL, for code that builds its own engine
  (`Runtime`, `mfgos replay`, subprocesses); `postgres_schema_url()` gives the PostgreSQL one.

`service_unavailable(reason)` is the same skip-or-fail rule for any other server a test needs
(MQTT broker, ...): call it when the service cannot be reached.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from models.db import make_engine, migrate
from tests.fakes.stack import Fakes

DATABASE_URL_VARIABLE = "MFGOS_TEST_DATABASE_URL"


def service_unavailable(reason: str) -> NoReturn:
    """Skip the test, or fail it when MFGOS_REQUIRE_SERVICES=1 (CI with every service up)."""
    if os.environ.get("MFGOS_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (MFGOS_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(reason)


def _sqlite_engine(directory: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{directory / 'mfgos-test.db'}")
    try:
        migrate(engine)
        yield engine
    finally:
        engine.dispose()


@contextmanager
def _fresh_schema() -> Iterator[tuple[str, str]]:
    """Create a uniquely named schema on the test PostgreSQL; drop it (CASCADE) afterwards."""
    url = os.environ.get(DATABASE_URL_VARIABLE)
    if not url:
        service_unavailable(f"{DATABASE_URL_VARIABLE} is not set")
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = make_engine(url)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as error:
        admin.dispose()
        service_unavailable(f"PostgreSQL at {DATABASE_URL_VARIABLE} is unreachable: {error.orig}")
    try:
        yield url, schema
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _postgres_engine() -> Iterator[Engine]:
    with _fresh_schema() as (url, schema):
        engine = make_engine(url, schema=schema)
        try:
            migrate(engine)
            yield engine
        finally:
            engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated, empty store on SQLite and on PostgreSQL (see the module docstring)."""
    if request.param == "sqlite":
        yield from _sqlite_engine(tmp_path)
    else:
        yield from _postgres_engine()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    """A migrated, empty SQLite store in a temporary file."""
    yield from _sqlite_engine(tmp_path)


def postgres_schema_url() -> Iterator[str]:
    """A URL to a fresh, uniquely named schema on the test PostgreSQL (dropped afterwards).

    For code that takes a database URL rather than an engine (Runtime, `mfgos replay`, a
    subprocess): the schema travels in the URL as libpq `options=-csearch_path=...`.
    """
    with _fresh_schema() as (url, schema):
        separator = "&" if "?" in url else "?"
        yield f"{url}{separator}options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL (not yet migrated): a fresh SQLite file, or a fresh schema on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'mfgos-test.db'}"
    else:
        yield from postgres_schema_url()


@pytest.fixture
def anyio_backend() -> str:
    """Async tests (`pytest.mark.anyio`) run on asyncio, the loop the product runs on."""
    return "asyncio"


@pytest.fixture
def fakes() -> Iterator[Fakes]:
    """Slack, Telegram and WhatsApp wire fakes, started for the test and stopped after it."""
    started = Fakes.start()
    yield started
    started.stop()
