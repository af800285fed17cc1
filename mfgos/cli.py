"""The `mfgos` command (DESIGN.md section 6)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mfgos.config import Settings


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
    from mfgos.server import run_server

    settings = Settings()
    if args.database:
        settings = settings.model_copy(update={"database_url": args.database})
    return run_server(settings, host=args.host, port=args.port, demo=True)


def _serve(args: argparse.Namespace) -> int:
    from mfgos.server import run_server

    return run_server(Settings(), host=args.host, port=args.port, demo=False)


def _chat(args: argparse.Namespace) -> int:
    from mfgos.terminal import chat

    return chat(Settings(), args.person)


def _sync_erp(args: argparse.Namespace) -> int:
    from mfgos.sync import sync_erp_command

    return sync_erp_command(Settings(), full=args.full)


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mfgos", description="A chat-first Manufacturing OS.")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run everything on embedded defaults and print the console URL")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--database", help="database URL (default: a SQLite file in the working directory)")
    demo.set_defaults(func=_demo)

    serve = sub.add_parser("serve", help="serve the configured channels, sources and the console")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=8000)
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
    replay.add_argument("--json", action="store_true", help="print one JSON object (DESIGN.md section 5)")
    replay.add_argument("--database", help="replay into this database (resumes a replay that was killed)")
    replay.add_argument("--pause-after", type=int, help=argparse.SUPPRESS)  # test hook for kill -9 tests
    replay.set_defaults(func=_replay)

    sync_erp = sub.add_parser("sync-erp", help="read machines, materials and orders from the ERP (MFGOS_ERP)")
    sync_erp.add_argument("--full", action="store_true",
                          help="read every order again, not only those changed since the last sync")
    sync_erp.set_defaults(func=_sync_erp)

    check = sub.add_parser("check-plant", help="validate a plant file and report every problem")
    check.add_argument("file")
    check.set_defaults(func=_check_plant)
    _add_check_erp(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
