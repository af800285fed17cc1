"""What the best possible scheduler achieves on the delivery benchmark's busiest bucket.

    python bench/delivery_bound.py [--mix mixed|telegram] [--runs 40] [--latency 0.004]

`bench_channels.py delivery` compares its time with the floor the configured rate limits
impose. With the fakes answering 429 (Retry-After 1 s) to a third of the requests, no
scheduler reaches that floor: whatever is sent in the last second is refused a third of
the time and must wait a second more, a third of those again, and so on. This simulation
measures how far above the floor an ideal scheduler ends: no database, no event loop, a
fixed network latency, slots taken exactly when a bucket allows them and given back at once
when a request is refused, and the outbox's priority rule (the chat with the most messages
left first, refused messages ahead of first attempts). The chats are those of the benchmark's
Telegram share: three messages per person in two threads (an alert and the acknowledgement
about one exception, the approval request about another), 1/s per chat with a burst of 3,
30/s per bot with a burst of 3. Faults are drawn independently per request, as the fakes do.

Prints one JSON object: the floor, and the ideal time over `--runs` fault draws as a ratio to it.
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import statistics
from dataclasses import dataclass

PER_PERSON = 3
MESSAGES = {"mixed": 600, "telegram": 1000}  # the Telegram share of 1,000 notifications


@dataclass
class Thread:
    chat: int
    left: int
    ready_at: float = 0.0
    tries: int = 0
    failures: int = 0
    in_flight: bool = False


@dataclass(frozen=True)
class Limits:
    bot_rate: float = 30.0
    bot_burst: int = 3
    chat_rate: float = 1.0
    chat_burst: int = 3

    def floor(self, messages: int) -> float:
        return max(0, messages - self.bot_burst) / self.bot_rate


def threads_for(messages: int) -> list[Thread]:
    """The benchmark's layout: per person an alert and its acknowledgement in one thread, an approval in another."""
    threads = []
    for person in range(-(-messages // PER_PERSON)):
        count = min(PER_PERSON, messages - person * PER_PERSON)
        threads.append(Thread(person, min(count, 2)))
        if count > 2:
            threads.append(Thread(person, count - 2))
    return threads


def simulate(messages: int, seed: int, limits: Limits = Limits(), p429: float = 1 / 3, p5xx: float = 0.1,
             retry_after: float = 1.0, backoff: float = 0.1, latency: float = 0.004) -> float:
    """Seconds until the last message is accepted."""
    rng = random.Random(seed)
    threads = threads_for(messages)
    chats = max(t.chat for t in threads) + 1
    bot_interval, chat_interval = 1 / limits.bot_rate, 1 / limits.chat_rate
    bot_tolerance = (limits.bot_burst - 1) * bot_interval
    chat_tolerance = (limits.chat_burst - 1) * chat_interval
    bot_tat = 0.0
    chat_tat = [0.0] * chats
    paused = [0.0] * chats
    left = [0] * chats
    for thread in threads:
        left[thread.chat] += thread.left
    answers: list[tuple[float, int, int, str]] = []  # (at, order, thread index, outcome)
    now, last, order, pending = 0.0, 0.0, 0, messages

    def chat_ready(chat: int) -> float:
        return max(chat_tat[chat] - chat_tolerance, paused[chat])

    while pending:
        candidates = [(i, t) for i, t in enumerate(threads) if t.left and not t.in_flight
                      and t.ready_at <= now and chat_ready(t.chat) <= now]
        if candidates and bot_tat - bot_tolerance <= now:
            index, thread = max(candidates, key=lambda c: (left[c[1].chat] + 10 * c[1].tries, -c[0]))
            bot_tat = max(bot_tat, now) + bot_interval
            chat_tat[thread.chat] = max(chat_tat[thread.chat], now) + chat_interval
            roll = rng.random()
            outcome = "429" if roll < p429 else "5xx" if roll < p429 + p5xx else "ok"
            thread.in_flight = True
            order += 1
            heapq.heappush(answers, (now + latency, order, index, outcome))
            continue
        # Nothing can go now: move to the next moment something can change.
        moments = [answers[0][0]] if answers else []
        if candidates:
            moments.append(bot_tat - bot_tolerance)
        moments += [m for t in threads if t.left and not t.in_flight
                    and (m := max(t.ready_at, chat_ready(t.chat))) > now]
        now = min(moments)
        while answers and answers[0][0] <= now:
            at, _, index, outcome = heapq.heappop(answers)
            thread = threads[index]
            thread.in_flight = False
            if outcome == "ok":
                thread.left -= 1
                left[thread.chat] -= 1
                thread.tries = thread.failures = 0
                pending -= 1
                last = at
                continue
            bot_tat = max(at, bot_tat - bot_interval)  # the platform counted no message: the slot is free again
            chat_tat[thread.chat] = max(at, chat_tat[thread.chat] - chat_interval)
            thread.tries += 1
            if outcome == "429":
                paused[thread.chat] = at + retry_after
            else:
                thread.failures += 1
                thread.ready_at = at + backoff * 2 ** (thread.failures - 1)
    return last


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mix", choices=sorted(MESSAGES), default="mixed")
    parser.add_argument("--runs", type=int, default=40, help="fault draws (seeds 0..runs-1)")
    parser.add_argument("--latency", type=float, default=0.004, help="seconds per request (the fakes answer in ~4 ms)")
    args = parser.parse_args(argv)
    messages = MESSAGES[args.mix]
    floor = Limits().floor(messages)
    ratios = sorted(simulate(messages, seed, latency=args.latency) / floor for seed in range(args.runs))
    print(json.dumps({
        "mix": args.mix, "messages_on_busiest_bucket": messages, "floor_seconds": round(floor, 2), "runs": args.runs,
        "ideal_ratio": {"mean": round(statistics.mean(ratios), 3), "median": round(statistics.median(ratios), 3),
                        "min": round(ratios[0], 3), "max": round(ratios[-1], 3)},
        "share_of_runs_within_1.1": round(sum(r <= 1.1 for r in ratios) / len(ratios), 2),
    }, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
