"""Run fake platforms in a process of their own (benchmarks: their CPU then does not share our GIL).

    python -m tests.fakes.serve slack telegram whatsapp [--rate-429 0.33] [--rate-5xx 0.1] [--retry-after 1] [--seed 7]

Prints one JSON line `{"slack": "http://127.0.0.1:PORT", ...}` and serves until stdin closes;
`GET <url>/_fake/state` returns what each fake recorded.
"""

from __future__ import annotations

import argparse
import json
import sys

from tests.fakes.server import Faults
from tests.fakes.slack import FakeSlack
from tests.fakes.telegram import FakeTelegram
from tests.fakes.whatsapp import FakeWhatsApp

FAKES = {"slack": FakeSlack, "telegram": FakeTelegram, "whatsapp": FakeWhatsApp}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("platforms", nargs="+", choices=sorted(FAKES))
    parser.add_argument("--rate-429", type=float, default=0.0)
    parser.add_argument("--rate-5xx", type=float, default=0.0)
    parser.add_argument("--retry-after", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=Faults.seed,
                        help="of the generator that draws which requests fail (a run repeats with the same seed)")
    args = parser.parse_args()
    # The benchmarks measure rate limits: WhatsApp recipients count as inside the 24-hour window.
    fakes = {name: (FakeWhatsApp(window_hours=None) if name == "whatsapp" else FAKES[name]()).start()
             for name in args.platforms}
    for fake in fakes.values():
        fake.faults = Faults(rate_429=args.rate_429, rate_5xx=args.rate_5xx, retry_after=args.retry_after, seed=args.seed)
    print(json.dumps({name: fake.url for name, fake in fakes.items()}), flush=True)
    sys.stdin.read()
    for fake in fakes.values():
        fake.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
