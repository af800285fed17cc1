"""ERP master data into the store: `mfgos sync-erp` and the sync `serve` runs on a schedule;
and the preflight of the plant's `erp:` settings, `mfgos check-erp`, which `serve` runs with
every sync.

Both go through `sync_plant`, which makes `erp_adapters.sync.sync_master_data` incremental
across runs and processes: the watermark of the last run is kept per plant in
`erp_sync_state` and passed as `since` next time. A run that fails part-way leaves the
watermark where it was, so the next run reads the same changes again (the upsert makes that
harmless). On PostgreSQL one process at a time syncs a plant (an advisory lock); replicas
and a `sync-erp` started by hand take turns instead of inserting the same rows twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TextIO

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from erp_adapters.base import AuthFailed, ErpAdapter, ErpError, Rejected, SettingProblem, Unavailable
from erp_adapters.preflight import check_plant
from erp_adapters.sync import STEPS, Progress, SyncReport, sync_master_data
from mfgos.config import Settings
from models.tables import ErpCheck, ErpSyncState

if TYPE_CHECKING:
    from mfgos.runtime import Runtime

log = logging.getLogger(__name__)

Now = Callable[[], datetime]


class SyncBusy(Exception):
    """Another process is syncing this plant right now."""


# Keyed by schema and plant: tenants (and test runs) sharing one PostgreSQL in separate schemas
# do not wait for each other.
_LOCK_KEY = "hashtext('mfgos-erp-sync:' || current_schema() || ':' || :plant)"


@contextlib.contextmanager
def _one_at_a_time(engine: Engine, plant_id: str) -> Iterator[None]:
    """A PostgreSQL session advisory lock for the whole sync (SQLite has one writer anyway)."""
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as connection:
        locked = connection.execute(text(f"SELECT pg_try_advisory_lock({_LOCK_KEY})"), {"plant": plant_id}).scalar()
        connection.commit()  # the lock is the session's; no transaction stays open during the sync
        if not locked:
            raise SyncBusy(f"another process is syncing plant {plant_id} from the ERP right now")
        try:
            yield
        finally:
            connection.execute(text(f"SELECT pg_advisory_unlock({_LOCK_KEY})"), {"plant": plant_id})
            connection.commit()


def sync_state(engine: Engine, plant_id: str) -> ErpSyncState | None:
    with Session(engine, expire_on_commit=False) as session:
        return session.get(ErpSyncState, plant_id)


def _since(state: ErpSyncState | None, erp: str, full: bool) -> datetime | None:
    if full or state is None or state.erp != erp or not state.watermark:
        return None
    return datetime.fromisoformat(state.watermark)


def _store(engine: Engine, report: SyncReport, at: datetime) -> None:
    with Session(engine) as session:
        state = session.get(ErpSyncState, report.plant_id) or ErpSyncState(
            plant_id=report.plant_id, erp=report.erp, synced_at=at
        )
        state.erp = report.erp
        state.watermark = report.watermark.isoformat() if report.watermark else None
        state.synced_at = at
        if report.changed:
            state.changed_at = at
        session.add(state)
        session.commit()


async def sync_plant(
    engine: Engine,
    adapter: ErpAdapter,
    plant_id: str,
    *,
    progress: Progress | None = None,
    full: bool = False,
    unless_synced_within: timedelta | None = None,
    now: Now | None = None,
) -> SyncReport | None:
    """Sync one plant from its stored watermark and store the new one.

    `full` reads everything again. With `unless_synced_within`, a plant some process synced
    that recently is left alone and None comes back (replicas on one schedule). Raises
    `SyncBusy` when another process holds the plant, and the ERP error family as is.
    """
    clock = now or (lambda: datetime.now(UTC))
    erp = getattr(adapter, "name", "erp")
    with _one_at_a_time(engine, plant_id):
        state = await asyncio.to_thread(sync_state, engine, plant_id)
        if (
            unless_synced_within is not None
            and state is not None
            and state.erp == erp
            and clock() - state.synced_at < unless_synced_within
        ):
            return None
        report = await sync_master_data(
            engine, adapter, plant_id, progress, since=_since(state, erp, full), now=clock
        )
        await asyncio.to_thread(_store, engine, report, clock())
    return report


# --- serve: the schedule -------------------------------------------------------------------


async def run_scheduled_sync(runtime: Runtime, stop: asyncio.Event, interval: float) -> None:
    """Sync every `interval` seconds until `stop` is set; the first pass runs at start unless a
    process synced within the interval. After master data changed (here, in another replica or
    by `mfgos sync-erp`) the NLP indexes are rebuilt. An ERP error is logged and retried next time."""
    every = timedelta(seconds=interval)
    seen = await asyncio.to_thread(_changed_at, runtime)
    log.info("ERP master-data sync from %s every %.0f s", runtime.settings.erp, interval)
    while not stop.is_set():
        await log_erp_problems(runtime)
        try:
            report = await sync_plant(
                runtime.engine,
                runtime.erp,
                runtime.plant_id,
                unless_synced_within=every * 0.9,  # replicas started a little apart share one turn
                now=runtime.clock.now,
            )
            if report is not None:
                log.info("ERP sync %s", report.summary())
                for warning in report.warnings:
                    log.warning("ERP sync: %s", warning)
        except SyncBusy as busy:
            log.info("ERP sync skipped: %s", busy)
        except ErpError as error:
            log.warning("ERP sync failed (%s): %s; trying again in %.0f s", type(error).__name__, error, interval)
        except Exception:
            log.exception("ERP sync failed; trying again in %.0f s", interval)
        changed = await asyncio.to_thread(_changed_at, runtime)
        if changed is not None and (seen is None or changed > seen):
            seen = changed
            await asyncio.to_thread(runtime.refresh_master_data)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)


async def log_erp_problems(runtime: Runtime) -> list[SettingProblem] | None:
    """The preflight, logged: one warning per problem (None when the ERP could not be asked)."""
    try:
        problems = await check_plant(runtime.engine, runtime.erp, runtime.plant_id)
    except ErpError as error:
        log.warning("ERP check skipped (%s): %s", type(error).__name__, error)
        await asyncio.to_thread(_keep_check, runtime, None, f"{type(error).__name__}: {error}")
        return None
    except Exception:
        log.exception("ERP check failed")
        await asyncio.to_thread(_keep_check, runtime, None, "the check failed; the server log has the trace")
        return None
    await asyncio.to_thread(_keep_check, runtime, problems, None)
    for problem in problems:
        log.warning("ERP check: %s", problem)
    if not problems:
        log.info("ERP check: every erp: setting and reference of plant %s found in %s", runtime.plant_id,
                 runtime.settings.erp)
    return problems


def _keep_check(runtime: Runtime, problems: list[SettingProblem] | None, error: str | None) -> None:
    """Store the check for the console. When the ERP could not be asked, the last problems found
    stay, with the reason they may be stale."""
    with Session(runtime.engine) as session:
        check = session.get(ErpCheck, runtime.plant_id) or ErpCheck(
            plant_id=runtime.plant_id, erp=runtime.settings.erp, checked_at=runtime.clock.now())
        check.erp, check.checked_at, check.error = runtime.settings.erp, runtime.clock.now(), error
        if problems is not None:
            check.problems = [str(p) for p in problems]
        session.add(check)
        session.commit()


def _changed_at(runtime: Runtime) -> datetime | None:
    state = sync_state(runtime.engine, runtime.plant_id)
    return state.changed_at if state is not None else None


# --- the CLI ---------------------------------------------------------------------------------


def _say(err: TextIO, message: str) -> int:
    print(f"mfgos sync-erp: {message}", file=err)
    return 1


def sync_erp_command(settings: Settings, *, full: bool = False, out: TextIO | None = None,
                     err: TextIO | None = None) -> int:
    """`mfgos sync-erp`: one sync with a progress bar and a summary table; returns the exit code
    (0 done, 1 the ERP refused or is unreachable, 2 a configuration problem)."""
    from rich.console import Console

    from erp_adapters.registry import available
    from mfgos.runtime import Runtime
    from models.plant_file import PlantFileError, format_problems

    out, err = out or sys.stdout, err or sys.stderr
    # The adapters log each refused request; the command says it once, in its own words, below.
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    if settings.erp not in available():
        _say(err, f"unknown ERP {settings.erp!r} (MFGOS_ERP); choose one of: {', '.join(available())}")
        return 2
    if settings.erp == "ledger":
        _say(err, "MFGOS_ERP is ledger, the embedded ERP: it keeps no master data, the plant file is the "
                  "source. Set MFGOS_ERP to erpnext, odoo or sap with MFGOS_ERP_URL, MFGOS_ERP_USER and "
                  "MFGOS_ERP_TOKEN to read from an ERP.")
        return 2
    try:
        runtime = Runtime(settings)
    except PlantFileError as error:
        _say(err, f"bad plant file\n{format_problems(error.problems)}")
        return 2
    except (ValueError, ImportError, OSError) as error:  # no ERP URL, missing credentials, unreadable file
        _say(err, str(error))
        return 2
    try:
        return asyncio.run(_sync_and_show(runtime, full, Console(file=out, highlight=False), Console(file=err), err))
    finally:
        runtime.engine.dispose()


async def _sync_and_show(runtime: Runtime, full: bool, console: Any, status: Any, err: TextIO) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

    bar = Progress(SpinnerColumn(), TextColumn("{task.description:<16}"), BarColumn(), MofNCompleteColumn(),
                   console=status, transient=True, disable=not status.is_terminal)
    tasks = {what: bar.add_task(what.replace("_", " "), total=None, start=False) for what in STEPS}

    def progress(what: str, done: int, total: int) -> None:
        for earlier in STEPS[: STEPS.index(what)]:  # a step is over once the next one starts
            bar.stop_task(tasks[earlier])
        bar.start_task(tasks[what])
        bar.update(tasks[what], total=total or None, completed=done)

    try:
        with bar:
            report = await sync_plant(runtime.engine, runtime.erp, runtime.plant_id, progress=progress,
                                      full=full, now=runtime.clock.now)
    except AuthFailed as error:
        return _say(err, f"the ERP refused the credentials: {error}. Check MFGOS_ERP_USER and MFGOS_ERP_TOKEN.")
    except Unavailable as error:
        wait = f"; it asked to wait {error.retry_after:.0f} s" if error.retry_after else ""
        return _say(err, f"the ERP is unavailable: {error}{wait}. The watermark was not moved: the next run "
                         "reads the same changes again.")
    except Rejected as error:
        return _say(err, f"the ERP refused the read: {error.reason}")
    except SyncBusy as error:
        return _say(err, f"{error}; try again when it is done")
    finally:
        await runtime.aclose()
    assert report is not None  # only a scheduled sync is ever skipped
    _show(console, report)
    return 0


def _show(console: Any, report: SyncReport) -> None:
    from rich.table import Table

    table = Table(title=f"{report.erp} -> plant {report.plant_id}")
    table.add_column("", no_wrap=True)
    for column in ("read", "added", "updated", "unchanged", "kept", "skipped"):
        table.add_column(column, justify="right")
    for what, counts in report.counts.items():
        table.add_row(what.replace("_", " "), str(counts.read), str(counts.created), str(counts.updated),
                      str(counts.unchanged), str(counts.kept), str(counts.skipped))
    console.print(table)
    if any(c.kept for c in report.counts.values()):
        console.print("kept: the plant file lists these ids, so its entries stand (docs/erp.md)")
    since = report.since
    console.print(f"orders read: {'changed since ' + since.isoformat() if since else 'all (full read)'}")
    for warning in report.warnings:
        console.print(f"warning: {warning}", markup=False)
    mark = report.watermark.isoformat() if report.watermark else "none (the next run reads everything)"
    console.print(f"watermark: {mark}", markup=False)


# --- mfgos check-erp -------------------------------------------------------------------------


def check_erp_command(settings: Settings, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """`mfgos check-erp`: the preflight against the configured ERP. Prints every problem as
    `erp.KEY: what is wrong: how to fix it`; 0 all found, 1 problems or the ERP cannot be asked,
    2 a configuration problem."""
    from erp_adapters.registry import available
    from mfgos.runtime import Runtime
    from models.plant_file import PlantFileError, format_problems

    out, err = out or sys.stdout, err or sys.stderr
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")

    def say(message: str, code: int) -> int:
        print(f"mfgos check-erp: {message}", file=err)
        return code

    if settings.erp not in available():
        return say(f"unknown ERP {settings.erp!r} (MFGOS_ERP); choose one of: {', '.join(available())}", 2)
    try:
        runtime = Runtime(settings)
    except PlantFileError as error:
        return say(f"bad plant file\n{format_problems(error.problems)}", 2)
    except (ValueError, ImportError, OSError) as error:  # no ERP URL, missing credentials, unreadable file
        return say(str(error), 2)

    async def run() -> list[SettingProblem]:
        try:
            return await check_plant(runtime.engine, runtime.erp, runtime.plant_id)
        finally:
            await runtime.aclose()

    try:
        problems = asyncio.run(run())
    except AuthFailed as error:
        return say(f"the ERP refused the credentials: {error}. Check MFGOS_ERP_USER and MFGOS_ERP_TOKEN.", 1)
    except ErpError as error:
        return say(f"cannot check against the ERP: {error}", 1)
    finally:
        runtime.engine.dispose()
    for problem in problems:
        print(problem, file=out)
    if problems:
        print(f"{len(problems)} problem(s) in the erp: settings of plant {runtime.plant_id}", file=err)
        return 1
    print(f"plant {runtime.plant_id}: every erp: setting and reference found in {settings.erp}", file=out)
    return 0
