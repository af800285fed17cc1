"""The `mfgos` command (README.md, "Commands")."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from mfgos.config import Settings

if TYPE_CHECKING:
    from mfgos.auth import Auth


def _extract(args: argparse.Namespace) -> int:
    from mfgos.offline import extractor_for_plant

    plant = Path(args.plant) if args.plant else Settings().plant_file
    try:
        reader = extractor_for_plant(plant)
    except Exception as error:  # a bad plant file: say which and why
        print(f"mfgos extract: {error}", file=sys.stderr)
        return 2
    if args.text:
        print(json.dumps(reader.extract(" ".join(args.text), language=args.lang).to_json(), ensure_ascii=False))
        return 0
    for number, line in enumerate(sys.stdin, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            text = item["text"] if isinstance(item, dict) else str(item)
        except (json.JSONDecodeError, KeyError) as error:
            print(f"mfgos extract: stdin line {number}: expected a JSON object with 'text' ({error})", file=sys.stderr)
            return 2
        lang = item.get("language") if isinstance(item, dict) else None
        sys.stdout.write(json.dumps(reader.extract(text, language=lang or args.lang).to_json(), ensure_ascii=False))
        sys.stdout.write("\n")
    return 0


def _check_plant(args: argparse.Namespace) -> int:
    from models.plant_file import check, format_problems

    problems = check(Path(args.file))
    if problems:
        print(format_problems(problems), file=sys.stderr)
        print(f"{args.file}: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"{args.file}: ok")
    return 0


def _replay(args: argparse.Namespace) -> int:
    from mfgos.replay import ScenarioError, replay
    from models.plant_file import PlantFileError, format_problems

    try:
        result = replay(Path(args.scenario), database_url=args.database, pause_after=args.pause_after)
    except ScenarioError as error:
        print(f"mfgos replay: {error}", file=sys.stderr)
        return 2
    except PlantFileError as error:
        print(f"mfgos replay: bad plant file\n{format_problems(error.problems)}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2, default=str))
    else:
        from mfgos.render import print_replay

        print_replay(result)
    return 0


def _demo(args: argparse.Namespace) -> int:
    simulated = [flag for flag, value in (("--faults", args.faults), ("--seed", args.seed), ("--broker", args.broker))
                 if value is not None]
    if simulated and not args.simulate:
        print(f"mfgos demo: {', '.join(simulated)} only apply with --simulate", file=sys.stderr)
        return 2
    from mfgos.server import run_server

    settings = Settings()
    if args.database:
        settings = settings.model_copy(update={"database_url": args.database})
    if args.reset:
        from mfgos.demo import DemoResetError, reset_demo_database

        try:
            removed = reset_demo_database(settings.database_url)
        except DemoResetError as error:
            print(f"mfgos demo --reset: {error}", file=sys.stderr)
            return 2
        print(f"mfgos demo: removed {removed}; starting fresh" if removed else "mfgos demo: nothing to reset",
              flush=True)
    simulation = None
    if args.simulate:
        from mfgos.simulate import demo_simulation

        simulation = demo_simulation(faults=DEMO_FAULTS if args.faults is None else args.faults,
                                     seed=1 if args.seed is None else args.seed, broker=args.broker)
    return run_server(settings, host=args.host, port=args.port, demo=True, simulation=simulation)


DEMO_FAULTS = 12.0  # faults per machine-hour in `demo --simulate`: a few breakdowns a minute on the demo plant

# --- simulate (issue 12) ----------------------------------------------------------------------

SIMULATE_OPCUA_PORT = 4840


def add_simulate_arguments(parser: argparse.ArgumentParser) -> None:
    """`mfgos simulate`'s options (docs/signals.md, "The plant simulator"); mfgos/simulate.py runs it."""
    parser.add_argument("--plant", help="plant file (default: MFGOS_PLANT_FILE or the demo plant)")
    parser.add_argument("--machines", type=int, help="how many machines: the plant's first N, or more named "
                                                     "SIM-<n>, numbered on from the plant's count (default: the plant's)")
    parser.add_argument("--rate", type=float, default=10.0,
                        help="periodic reports per second over all machines (state changes come on top); 0: none")
    parser.add_argument("--faults", type=float, default=6.0, help="faults per machine per hour of running")
    parser.add_argument("--seed", type=int, default=1, help="the same seed makes the same changes")
    parser.add_argument("--protocol", choices=("mixed", "json", "sparkplug"), default="mixed",
                        help="MQTT protocol of machines the plant file does not map (mixed: alternately)")
    parser.add_argument("--broker", help="MQTT broker URL (default: MFGOS_MQTT_URL or mqtt://127.0.0.1:1883); "
                                         "'none': no MQTT")
    parser.add_argument("--qos", type=int, choices=(0, 1), default=1)
    parser.add_argument("--opcua-port", type=int, default=SIMULATE_OPCUA_PORT,
                        help=f"OPC UA server port on 127.0.0.1 (default {SIMULATE_OPCUA_PORT}); 0: no OPC UA")
    parser.add_argument("--duration", type=float, help="seconds to run (default: until Ctrl-C)")
    parser.add_argument("--quiet", action="store_true", help="do not print each state change")


def _simulate(args: argparse.Namespace) -> int:
    from mfgos.simulate import simulate_command

    return simulate_command(args)


# --- end simulate ------------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    from mfgos.server import run_server

    settings = Settings()
    if args.plant:
        settings = settings.model_copy(update={"plant_file": Path(args.plant)})
    elif "plant_file" not in settings.model_fields_set:
        # Production never falls back to the demo plant: it would page demo people with demo rules.
        print("mfgos serve: no plant file: set MFGOS_PLANT_FILE or pass --plant FILE "
              "(`mfgos demo` runs the demo plant)", file=sys.stderr)
        return 2
    if not settings.database_url.strip():
        # Set but empty, as the container image does: several replicas must share one database, and a
        # SQLite file inside each container would split the plant's data between them without a word.
        print("mfgos serve: MFGOS_DATABASE_URL is empty: set it to the shared database, "
              "postgresql://USER:PASSWORD@HOST:5432/DB (sqlite:///PATH only for a single process)",
              file=sys.stderr)
        return 2
    return run_server(settings, host=args.host, port=args.port, demo=False)


def _chat(args: argparse.Namespace) -> int:
    from mfgos.terminal import chat

    return chat(Settings(), args.person)


def _sync_erp(args: argparse.Namespace) -> int:
    from mfgos.sync import sync_erp_command

    return sync_erp_command(Settings(), full=args.full)


def _auth(settings: Settings) -> Auth:
    """The sign-in store of the configured database and plant (the plant file is loaded, as `serve` does)."""
    from mfgos.auth import Auth
    from models import make_engine, migrate, session_scope
    from models.plant_file import apply, load
    from routing.clock import SystemClock

    plant_file = load(Path(settings.plant_file))
    engine = make_engine(settings.database_url)
    migrate(engine)
    with session_scope(engine) as session:
        apply(session, plant_file, source_file=str(settings.plant_file))
    return Auth(engine, plant_file.plant.id, SystemClock(), session_hours=settings.session_hours)


def _token(args: argparse.Namespace) -> int:
    from models.plant_file import PlantFileError, format_problems

    try:
        auth = _auth(Settings())
    except PlantFileError as error:
        print(f"mfgos token: bad plant file\n{format_problems(error.problems)}", file=sys.stderr)
        return 2
    try:
        if args.action == "create":
            try:
                secret = auth.create_token(args.name, args.scope, args.person)
            except ValueError as error:
                print(f"mfgos token create: {error}", file=sys.stderr)
                return 2
            who = f", acting as {args.person}" if args.person else ""
            print(f"token {args.name!r} ({args.scope}{who}); it is shown only now, store it safely:", file=sys.stderr)
            print(secret)
            return 0
        if args.action == "revoke":
            if not auth.revoke_token(args.name):
                print(f"mfgos token revoke: no token named {args.name!r}", file=sys.stderr)
                return 1
            print(f"token {args.name!r} revoked")
            return 0
        rows = [(t.name, t.scope, t.person_id, _when(t.created_at), _when(t.last_used_at))
                for t in auth.tokens()]
        if args.json:
            print(json.dumps([dict(zip(("name", "scope", "person", "created", "last_used"), r, strict=True))
                              for r in rows], indent=2))
            return 0
        header = ("NAME", "SCOPE", "PERSON", "CREATED", "LAST USED")
        widths = [max(len(r[i] or "-") for r in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            print("  ".join((cell or "-").ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        return 0
    finally:
        auth.engine.dispose()


def _when(at: datetime | None) -> str | None:
    from mfgos.auth import aware

    moment = aware(at)
    return moment.isoformat(timespec="seconds") if moment is not None else None


def _sessions(args: argparse.Namespace) -> int:
    if not args.all and not args.person:
        print("mfgos sessions end: give --person PERSON or --all", file=sys.stderr)
        return 2
    auth = _auth(Settings())
    try:
        ended = auth.end_sessions(None if args.all else args.person)
    finally:
        auth.engine.dispose()
    print(f"{ended} console session(s) ended")
    return 0


# --- check-erp (issue 17) ---------------------------------------------------------------------


def _check_erp(args: argparse.Namespace) -> int:
    from mfgos.sync import check_erp_command

    return check_erp_command(Settings())


def _add_check_erp(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    check_erp = sub.add_parser(
        "check-erp", help="check the plant file's erp: settings and references against the ERP (MFGOS_ERP)"
    )
    check_erp.set_defaults(func=_check_erp)


# --- end check-erp ---------------------------------------------------------------------------


# --- kpi and export (issue 13) ----------------------------------------------------------------


def _kpi(args: argparse.Namespace) -> int:
    from mfgos.insight import kpi_command

    return kpi_command(args)


def _export(args: argparse.Namespace) -> int:
    from mfgos.insight import export_command

    return export_command(args)


def _add_insight(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    for name, helptext, func in (
        ("kpi", "print the KPIs of a period (docs/kpis.md)", _kpi),
        ("export", "print the exceptions of a period with their timelines, as CSV or JSON", _export),
    ):
        command = sub.add_parser(name, help=helptext)
        command.add_argument("--since", help="ISO date or time (UTC unless it has an offset), or a span back "
                                             "from now: 7d, 24h, 90m (default: 7d)")
        command.add_argument("--until", help="ISO date or time, or a span back from now (default: now)")
        command.add_argument("--database", help="database URL (default: MFGOS_DATABASE_URL)")
        command.add_argument("--plant", help="plant id (default: the database's only plant)")
        if name == "kpi":
            command.add_argument("--json", action="store_true", help="print one JSON object")
        else:
            command.add_argument("--format", choices=("csv", "json"), default="csv")
        command.set_defaults(func=func)


# --- end kpi and export ------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mfgos", description="A chat-first Manufacturing OS.")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run everything on embedded defaults and print the console URL")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--database", help="database URL (default: a SQLite file in the working directory)")
    demo.add_argument("--reset", action="store_true",
                      help="start fresh: delete the demo's SQLite file first (refused if it holds another plant)")
    demo.add_argument("--simulate", action="store_true",
                      help="simulated machines run, fail and flap, and open exceptions on their own")
    demo.add_argument("--faults", type=float, help=f"with --simulate: faults per machine-hour (default {DEMO_FAULTS:g})")
    demo.add_argument("--seed", type=int, help="with --simulate: the same seed, the same faults (default 1)")
    demo.add_argument("--broker", help="with --simulate: go through this MQTT broker (default: OPC UA, in-process)")
    demo.set_defaults(func=_demo)

    serve = sub.add_parser("serve", help="serve the configured channels, sources and the console")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--plant", help="the plant file (required here or as MFGOS_PLANT_FILE)")
    serve.set_defaults(func=_serve)

    chat = sub.add_parser("chat", help="chat in the terminal as one person of the plant")
    chat.add_argument("--as", dest="person", required=True, help="person id from the plant file")
    chat.set_defaults(func=_chat)

    extract = sub.add_parser("extract", help="print what the NLP reads in a message, as JSON")
    extract.add_argument("--plant", help="plant file (default: MFGOS_PLANT_FILE or the demo plant)")
    extract.add_argument("--lang", help="the sender's language as a hint (en, es, de, hi)")
    extract.add_argument("text", nargs="*", help="the message; without it, JSON lines on stdin")
    extract.set_defaults(func=_extract)

    replay = sub.add_parser("replay", help="replay a scenario on a simulated clock")
    replay.add_argument("scenario")
    replay.add_argument("--json", action="store_true", help="print one JSON object (docs/architecture.md, \"Time\")")
    replay.add_argument("--database", help="replay into this database (resumes a replay that was killed)")
    replay.add_argument("--pause-after", type=int, help=argparse.SUPPRESS)  # test hook for kill -9 tests
    replay.set_defaults(func=_replay)

    sync_erp = sub.add_parser("sync-erp", help="read machines, materials and orders from the ERP (MFGOS_ERP)")
    sync_erp.add_argument("--full", action="store_true",
                          help="read every order again, not only those changed since the last sync")
    sync_erp.set_defaults(func=_sync_erp)

    token = sub.add_parser("token", help="API tokens for an MES, a quality system or a script")
    token_sub = token.add_subparsers(dest="action", required=True)
    create = token_sub.add_parser("create", help="create a token and print it once")
    create.add_argument("name", help="a name for the token (letters, digits, . _ -), e.g. mes-line-2")
    create.add_argument("--scope", required=True, choices=("signals", "read", "act"),
                        help="signals: send machine events; read: GET /api/*; act: chat and act as --as PERSON")
    create.add_argument("--as", dest="person", help="the person an act token acts as (required for act)")
    listing = token_sub.add_parser("list", help="name, scope, person, created and last used (never the secret)")
    listing.add_argument("--json", action="store_true")
    revoke = token_sub.add_parser("revoke", help="revoke a token at once")
    revoke.add_argument("name")
    token.set_defaults(func=_token)

    sessions = sub.add_parser("sessions", help="sign people out of the console")
    sessions_sub = sessions.add_subparsers(dest="action", required=True)
    end = sessions_sub.add_parser("end", help="end the console sessions of one person, or of everyone")
    end.add_argument("--person", help="person id from the plant file")
    end.add_argument("--all", action="store_true", help="every person")
    sessions.set_defaults(func=_sessions)

    simulate = sub.add_parser("simulate", help="simulate the plant's machines on MQTT and OPC UA (docs/signals.md)")
    add_simulate_arguments(simulate)
    simulate.set_defaults(func=_simulate)

    check = sub.add_parser("check-plant", help="validate a plant file and report every problem")
    check.add_argument("file")
    check.set_defaults(func=_check_plant)
    _add_check_erp(sub)
    _add_insight(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
