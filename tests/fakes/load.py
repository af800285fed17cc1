"""A load generator acting as Slack, Telegram and WhatsApp at once: signed webhooks at a steady rate.

    python -m tests.fakes.load URL PLANT_FILE --rate 50 --count 1000 [--first 0] [--new-every 25]

Operators of the plant file (people with the operator role) report problems with machines,
and every fifth message asks "what is down?". A new machine comes into play every `--new-every`
messages (a new breakdown; 25 at 50 messages/s is two a second); the other reports join an open
exception. Each request goes to the
platform's webhook on URL, signed as the platform signs it (secrets as in the tests:
slack-secret, wa-secret, the Telegram secret bench-secret). Prints one JSON object:
{"sent": {event key: CLOCK_MONOTONIC start of the request}, "statuses": {status: count}};
the event key is the signal key mfgos stores (`<channel>:<event id>`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from collections import Counter
from typing import Any

import aiohttp
import yaml

from tests.fakes.slack import FakeSlack
from tests.fakes.telegram import FakeTelegram
from tests.fakes.whatsapp import FakeWhatsApp

PROBLEMS = ("stopped, hydraulic leak", "is down, motor overheated", "stopped, spindle noise", "down, sensor fault",
            "band hai, awaaz aa rahi hai", "parada, fuga de aceite")


async def run(url: str, plant: dict[str, Any], rate: float, count: int, first: int, new_every: int) -> dict[str, Any]:
    slack, telegram, whatsapp = FakeSlack(), FakeTelegram(), FakeWhatsApp()  # payload builders only
    operators = [p for p in plant["people"] if "operator" in p["roles"]]
    machines = plant["machines"]
    rng = random.Random(first or 42)
    sent: dict[str, float] = {}
    statuses: Counter[int] = Counter()

    def request(n: int) -> tuple[str, bytes, dict[str, str], str]:
        person = operators[n % len(operators)]
        machine = rng.choice(machines[: 1 + (n - first) // new_every])
        text = f"{machine['aliases'][0]} {rng.choice(PROBLEMS)}" if n % 5 else "what is down?"
        platform, address = next(iter(person["channels"].items()))
        if platform == "whatsapp":
            raw = json.dumps(whatsapp.text_message(address, text, message_id=f"wamid.L{n}")).encode()
            headers = {"Content-Type": "application/json", "X-Hub-Signature-256": whatsapp.sign(raw)}
            return "/whatsapp/webhook", raw, headers, f"whatsapp:wamid.L{n}"
        if platform == "slack":
            ts = f"{1_800_000_000 + n}.{n:06d}"
            raw = json.dumps(slack.message_event(address, text, "D" + address[1:], ts)).encode()
            return "/slack/events", raw, {"Content-Type": "application/json", **slack.sign(raw)}, \
                f"slack:D{address[1:]}:{ts}"
        update = telegram.message(int(address), text, message_id=n + 1)
        raw = json.dumps(update).encode()
        headers = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": "bench-secret"}
        return "/telegram/webhook", raw, headers, f"telegram:{address}:{n + 1}"

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as session:

        async def fire(path: str, raw: bytes, headers: dict[str, str], key: str) -> None:
            sent[key] = time.monotonic()
            async with session.post(url + path, data=raw, headers=headers) as response:
                await response.read()
                statuses[response.status] += 1

        begin = time.monotonic()
        tasks = []
        for i in range(count):
            delay = begin + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(fire(*request(first + i))))
        await asyncio.gather(*tasks)
        took = time.monotonic() - begin
    return {"sent": sent, "statuses": dict(statuses), "seconds": took}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("plant")
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--new-every", type=int, default=25)
    args = parser.parse_args()
    with open(args.plant, encoding="utf-8") as handle:
        plant = yaml.safe_load(handle)
    print(json.dumps(asyncio.run(run(args.url, plant, args.rate, args.count, args.first, args.new_every))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
