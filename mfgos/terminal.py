"""`mfgos chat --as PERSON`: chat with the bot in the terminal as one person of the plant.

Each line goes through the same pipeline as a Slack or WhatsApp message (stored as a
console signal, then processed); after it the outboxes are drained and every bot message
addressed to the person since the last line is printed, whatever its channel, so an
escalation that came due in between shows up too. Works with piped stdin (no TTY).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TextIO

from rich.console import Console
from rich.text import Text
from sqlmodel import Session, select

from mfgos.config import Settings
from mfgos.runtime import Runtime
from mfgos.web import CONSOLE, ConsoleChannel
from models import Notification, Person, PlantException
from routing.inbound import Inbound

RECENT = 5  # messages shown again when a chat starts
BUTTON_COMMANDS = ("ack", "approve", "reject", "propose")
HELP = """commands:
  /thread E-0001   write in the thread of E-0001 (/thread alone shows it, /thread none leaves it)
  /open            list the open exceptions
  /ack             press "ack" on the current thread
  /approve [note]  approve the proposal on the current thread
  /reject [reason] reject it, with a reason
  /propose [fix]   propose a fix on the current thread
  (empty line)     show messages that arrived since
  /help, /quit"""


@dataclass
class ChatState:
    """What the prompt loop remembers between lines."""

    person: Person
    thread: str | None = None
    last_seen: int = 0
    button_threads: dict[str, str] = field(default_factory=dict)  # button -> code of the latest offer


def _lines(stream: TextIO, prompt: str, console: Console) -> Iterator[str]:
    """Lines from a terminal (with a prompt and line editing) or from a pipe (plain reads)."""
    if stream is sys.stdin and stream.isatty():
        with contextlib.suppress(ImportError):
            import readline  # noqa: F401  (arrow keys and history for input())
        while True:
            try:
                yield console.input(Text(prompt, style="bold cyan"))
            except EOFError:
                return
    while line := stream.readline():
        yield line.rstrip("\r\n")


class TerminalChat:
    def __init__(self, runtime: Runtime, person: Person, console: Console) -> None:
        self.runtime = runtime
        self.console = console
        self.state = ChatState(person=person)
        self._loop = asyncio.new_event_loop()
        with Session(runtime.engine) as session:
            recent = session.exec(select(Notification.id).where(Notification.person_id == person.id)
                                  .order_by(Notification.id.desc()).limit(RECENT)).all()  # type: ignore[union-attr]
        # Start just before the last few messages, so a chat opens with what the person missed.
        self.state.last_seen = min(recent) - 1 if recent else 0

    def close(self) -> None:
        self._loop.run_until_complete(self.runtime.aclose())
        self._loop.close()

    # --- output ------------------------------------------------------------------------------

    def show_new(self) -> None:
        """Drain the outboxes, then print every bot message to this person not shown yet."""
        self._loop.run_until_complete(self.runtime.drain())
        rows = self.runtime.notifications_for(self.state.person.id, self.state.last_seen)
        if not rows:
            return
        with Session(self.runtime.engine) as session:
            ids = {r.exception_id for r in rows if r.exception_id}
            codes = dict(session.exec(select(PlantException.id, PlantException.code)
                                      .where(PlantException.id.in_(ids))).all()) if ids else {}  # type: ignore[union-attr]
        for row in rows:
            code = codes.get(row.exception_id) if row.exception_id else None
            line = Text()
            line.append("bot ", style="bold green")
            line.append(f"[{row.channel}] ", style="magenta")
            if code:
                line.append(f"{code} ", style="bold yellow")
            line.append(f"({row.kind}) ", style="dim")
            line.append(row.text)
            if row.buttons:
                line.append("  buttons: " + " ".join(f"/{b}" for b in row.buttons), style="cyan")
                for button in row.buttons:
                    if code:
                        self.state.button_threads[button] = code
            self.console.print(line)
            self.state.last_seen = max(self.state.last_seen, row.id or 0)

    def note(self, message: str, style: str = "dim") -> None:
        self.console.print(Text(message, style=style))

    # --- input -------------------------------------------------------------------------------

    def send(self, text: str, action: str | None = None, thread: str | None = None) -> None:
        self.runtime.accept(Inbound(
            source=CONSOLE, event_id=uuid.uuid4().hex, address=self.state.person.id, person_id=self.state.person.id,
            text=text, exception_ref=thread or self.state.thread, action=action))

    def command(self, line: str) -> bool:
        """Run one /command; False means quit."""
        name, _, rest = line[1:].partition(" ")
        name, rest = name.lower(), rest.strip()
        if name in ("quit", "exit", "q"):
            return False
        if name == "help":
            self.note(HELP, style="")
        elif name == "thread":
            self.set_thread(rest)
        elif name == "open":
            self.list_open()
        elif name in BUTTON_COMMANDS:
            thread = self.state.thread or self.state.button_threads.get(name)
            if thread is None:
                self.note(f"no thread for /{name}: use /thread E-0001 first", style="red")
            else:
                self.send(rest, action=name, thread=thread)
                exc = self.exception(thread)
                self.note(f"/{name} on {thread}: now {exc.status if exc else '?'}")
        else:
            self.note(f"unknown command /{name}; /help lists them", style="red")
        return True

    def set_thread(self, code: str) -> None:
        if not code:
            self.note(f"thread: {self.state.thread or 'none'}")
            return
        if code.lower() == "none":
            self.state.thread = None
            self.note("left the thread")
            return
        exc = self.exception(code)
        if exc is None:
            self.note(f"unknown exception {code}; /open lists the open ones", style="red")
            return
        self.state.thread = exc.code
        self.note(f"thread {exc.code}: {exc.type} on {exc.machine_id or exc.area_id or '-'} [{exc.status}]")

    def exception(self, code: str) -> PlantException | None:
        with Session(self.runtime.engine) as session:
            return session.exec(select(PlantException).where(
                PlantException.plant_id == self.runtime.plant_id, PlantException.code == code.upper())).first()

    def list_open(self) -> None:
        with Session(self.runtime.engine) as session:
            rows = session.exec(select(PlantException).where(
                PlantException.plant_id == self.runtime.plant_id, PlantException.status != "closed")
                .order_by(PlantException.id)).all()
        if not rows:
            self.note("no open exceptions")
        for exc in rows:
            self.note(f"{exc.code} {exc.type} on {exc.machine_id or exc.area_id or '-'} [{exc.status}] "
                      f"WOs {', '.join(exc.work_orders) or '-'}", style="")

    def run(self, stream: TextIO) -> int:
        who = self.state.person
        self.note(f"chatting as {who.name} ({', '.join(who.roles)}) in plant {self.runtime.plant_id}; "
                  "/help lists commands", style="bold")
        self.show_new()
        for line in _lines(stream, f"{who.id}> ", self.console):
            text = line.strip()
            if text.startswith("/"):
                if not self.command(text):
                    break
            elif text:
                self.send(text)
            self.show_new()
        return 0


def chat(settings: Settings, person_id: str, stream: TextIO | None = None, console: Console | None = None) -> int:
    """Run the prompt loop until /quit or end of input; exit code 2 for an unknown person."""
    console = console or Console(highlight=False, soft_wrap=True)
    try:
        runtime = Runtime(settings, channels={CONSOLE: ConsoleChannel()})
    except Exception as error:  # a bad plant file or database: say which, then stop
        print(f"mfgos chat: cannot start: {error}", file=sys.stderr)
        return 1
    with Session(runtime.engine) as session:
        person = session.get(Person, (runtime.plant_id, person_id))
        people = session.exec(select(Person).where(Person.plant_id == runtime.plant_id).order_by(Person.id)).all()
    if person is None:
        runtime.engine.dispose()
        listing = "\n".join(f"  {p.id:<10} {p.name} ({', '.join(p.roles)})" for p in people)
        print(f"mfgos chat: unknown person {person_id!r} in plant {runtime.plant_id}; choose one of:\n{listing}",
              file=sys.stderr)
        return 2
    terminal = TerminalChat(runtime, person, console)
    try:
        return terminal.run(stream or sys.stdin)
    except KeyboardInterrupt:
        return 0
    finally:
        terminal.close()
