"""Load generator: many staff sending photos and pressing buttons at once, through the fake Bot API.

Each simulated staff member behaves like a person with a phone: sends a photo, waits for the bot's
answer (it quotes the photo), presses one of the breed buttons it offers, waits for the toast, and
moves on to their next photo. All staff do this at the same time. The clock for a photo runs from
the moment its update is available to the bot to the moment the answer reaches the server; for a
press, to the moment its callback query is answered.

Used by the scaled-down load test (test_load.py) and by bench/bench_load.py (1,000 + 1,000).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from fake_telegram import ApiCall, FakeTelegram, Sent

# Buttons that are not breeds: the question's specials, a dog card's details and its Same dog? row.
CHOICES = (
    "Mixed breed", "Not a dog", "Other…", "Skip",
    "♂ Male", "♀ Female", "Puppy", "Adult", "Senior", "Same dog", "New dog",
)  # fmt: skip


class LoadServer(FakeTelegram):
    """The fake server, plus O(1) waiting for "the answer to message m" and "the toast for query q"."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._arrived: dict[tuple, Any] = {}
        self._waiting: dict[tuple, asyncio.Future] = {}
        self.answers_to: dict[tuple[int, int], int] = {}  # (chat, user message id) -> answers sent

    def _deliver(self, key: tuple, value: Any) -> None:
        future = self._waiting.pop(key, None)
        if future is not None and not future.done():
            future.set_result(value)
        else:
            self._arrived[key] = value

    async def _take(self, key: tuple, timeout: float) -> Any:
        if key in self._arrived:
            return self._arrived.pop(key)
        future = asyncio.get_running_loop().create_future()
        self._waiting[key] = future
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise AssertionError(f"no {key[0]} for {key[1:]} within {timeout} s") from None

    def _record(self, call: ApiCall, message: dict[str, Any], markup, stored=None) -> None:
        super()._record(call, message, markup, stored)
        quoted = (message.get("reply_to_message") or {}).get("message_id")
        if call.method.startswith("send") and quoted is not None:
            key = (message["chat"]["id"], quoted)
            self.answers_to[key] = self.answers_to.get(key, 0) + 1
            self._deliver(("answer", *key), self.sent[-1])

    async def _answer_callback_query(self, call: ApiCall) -> bool:
        result = await super()._answer_callback_query(call)
        self._deliver(("toast", call.params.get("callback_query_id")), call)
        return result

    async def answer_to(self, chat_id: int, message_id: int, timeout: float) -> Sent:
        return await self._take(("answer", chat_id, message_id), timeout)

    async def toast_for(self, query_id: str, timeout: float) -> ApiCall:
        return await self._take(("toast", query_id), timeout)


@dataclass
class LoadResult:
    photo_latencies: list[float] = field(default_factory=list)
    press_latencies: list[float] = field(default_factory=list)
    photo_messages: list[tuple[int, int]] = field(default_factory=list)  # (staff id, message id)
    presses: list[tuple[int, str]] = field(default_factory=list)  # (staff id, breed button pressed)
    toasts: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict[str, float]:
        return {
            "photos": len(self.photo_latencies),
            "presses": len(self.press_latencies),
            "photo_p50": percentile(self.photo_latencies, 0.50),
            "photo_p95": percentile(self.photo_latencies, 0.95),
            "photo_p99": percentile(self.photo_latencies, 0.99),
            "photo_max": max(self.photo_latencies, default=float("nan")),
            "press_p50": percentile(self.press_latencies, 0.50),
            "press_p95": percentile(self.press_latencies, 0.95),
            "press_p99": percentile(self.press_latencies, 0.99),
            "press_max": max(self.press_latencies, default=float("nan")),
            "seconds": self.seconds,
            "photos_per_s": len(self.photo_latencies) / self.seconds if self.seconds else float("nan"),
            "presses_per_s": len(self.press_latencies) / self.seconds if self.seconds else float("nan"),
            "photo_mean": statistics.fmean(self.photo_latencies) if self.photo_latencies else float("nan"),
        }


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run_load(
    server: LoadServer,
    staff: list[int],
    photos: list[bytes],
    *,
    presses: int | None = None,
    timeout: float = 300.0,
) -> LoadResult:
    """``staff`` share ``photos`` round robin and work through them at once; the first ``presses``
    answers (all by default) get a breed button pressed."""
    presses = len(photos) if presses is None else presses
    result = LoadResult()
    share = {user: [i for i in range(len(photos)) if i % len(staff) == n] for n, user in enumerate(staff)}

    async def person(user: int) -> None:
        for i in share[user]:
            update_id = await server.send_photo(user, photos[i])
            started = time.perf_counter()
            message_id = server.update(update_id)["message"]["message_id"]
            result.photo_messages.append((user, message_id))
            answer = await server.answer_to(user, message_id, timeout)
            result.photo_latencies.append(time.perf_counter() - started)
            if i >= presses:
                continue
            breed = next(text for text, _ in answer.buttons if text not in CHOICES)
            update_id = await server.press_button(user, answer, server.find_button(answer, breed))
            started = time.perf_counter()
            toast = await server.toast_for(server.update(update_id)["callback_query"]["id"], timeout)
            result.press_latencies.append(time.perf_counter() - started)
            result.presses.append((user, breed))
            result.toasts.append(toast.params.get("text") or "")

    started = time.perf_counter()
    await asyncio.gather(*(person(user) for user in staff))
    result.seconds = time.perf_counter() - started
    return result


# Settings that make every photo a question (a generated picture is "a dog" the model is unsure of),
# so that every answer carries breed buttons and every press records a label.
ALWAYS_ASK = {"dog_threshold": 0.0, "auto_accept_threshold": 1.1}
