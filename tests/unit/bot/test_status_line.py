"""A status line under a half answer (`StreamedAnswer.show_status`) never outlives the answer,
and a 429 the stream sees holds its next request for Discord's `retry_after`.

It used to stay when the answer's final edit failed (the message kept "picking the answer up
again…" for good), and when the edit that added it reached Discord though the bot never heard
back (the final text, equal to what the bot thought was shown, was never sent). A 429 on the
status edit held nothing back, and one discord.py had already waited out (its own retries)
held the stream only until `retry_after` after the request began, so already past.
"""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
import discord
import pytest

from tzurot.bot.posting import FINAL_ATTEMPTS, LONGEST_WAIT, StreamedAnswer

LINE = "-# ⏳ picking it up again…"


class _Response:
    def __init__(self, status: int, retry_after: float | None = None) -> None:
        self.status, self.reason = status, "refused"
        self.headers = {} if retry_after is None else {"Retry-After": str(retry_after)}


def refusal(status: int, code: int = 0, retry_after: float | None = None) -> discord.HTTPException:
    response = _Response(status, retry_after)
    return discord.HTTPException(response, {"code": code, "message": "refused"})  # type: ignore[arg-type]  # the fields HTTPException reads


class Discord:
    """Messages as Discord shows them; `failures` are raised by the next edits, in order (a
    `(error, applied)` pair: whether Discord made the edit all the same)."""

    def __init__(self, clock: list[float]) -> None:
        self.shown: dict[int, str] = {}
        self.clock = clock
        self.failures: list[tuple[BaseException, bool]] = []
        self.requests: list[tuple[float, str]] = []  # (when, what) of every edit asked
        self.sleeps: list[float] = []
        self.edit_takes = 0.0  # seconds an edit takes (discord.py waiting out 429s inside)

    async def send(self, text: str) -> int:
        self.shown[len(self.shown) + 1] = text
        return len(self.shown)

    async def edit(self, message_id: int, text: str) -> None:
        self.requests.append((self.clock[0], text))
        self.clock[0] += self.edit_takes
        if self.failures:
            error, applied = self.failures.pop(0)
            if applied:
                self.shown[message_id] = text
            raise error
        self.shown[message_id] = text

    async def delete(self, message_id: int) -> None:
        del self.shown[message_id]

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock[0] += seconds


def stream_on(discord_: Discord, interval: float = 0.0) -> StreamedAnswer:
    return StreamedAnswer(
        discord_.send,
        discord_.edit,
        discord_.delete,
        interval=interval,
        clock=lambda: discord_.clock[0],
        sleep=discord_.sleep,
    )


async def shown_with_line(text: str, interval: float = 0.0) -> tuple[Discord, StreamedAnswer]:
    discord_ = Discord([0.0])
    stream = stream_on(discord_, interval)
    await stream.update(text)
    assert await stream.show_status(LINE)
    assert discord_.shown[max(discord_.shown)].endswith(LINE)
    return discord_, stream


LOST: list[Callable[[], BaseException]] = [
    aiohttp.ServerDisconnectedError,
    TimeoutError,
    lambda: refusal(503),  # discord.py's own retries ran out
]


@pytest.mark.parametrize("lost", LOST)
async def test_a_final_edit_that_failed_once_is_made_again_and_the_line_is_gone(
    lost: Callable[[], BaseException],
) -> None:
    discord_, stream = await shown_with_line("Once upon")
    discord_.failures = [(lost(), False)]
    assert await stream.finish("Once upon a time.") == [1]
    assert discord_.shown == {1: "Once upon a time."}


async def test_a_final_edit_discord_refuses_for_good_still_takes_the_line_away() -> None:
    """The earlier message refused its final piece: the one under it goes back to what it
    showed before the line (the half answer, whole), and the refusal is raised (told)."""
    discord_, stream = await shown_with_line("a" * 1500 + " " + "b" * 1000)
    assert set(discord_.shown) == {1, 2}
    half = discord_.shown[2].removesuffix(f"\n{LINE}")
    discord_.failures = [(refusal(400, 50035), False)]
    with pytest.raises(discord.HTTPException):
        await stream.finish("c" * 1500 + " " + "d" * 1000)
    assert discord_.shown == {1: "a" * 1500, 2: half}


async def test_a_final_edit_refused_by_rate_limits_past_every_attempt_takes_the_line_away() -> None:
    discord_, stream = await shown_with_line("Once upon")
    discord_.failures = [(refusal(429, retry_after=2), False)] * FINAL_ATTEMPTS
    assert await stream.finish("Once upon a time.") == [1]
    assert discord_.shown == {1: "Once upon a time."}
    assert discord_.sleeps == [2.0] * FINAL_ATTEMPTS  # each 429 waited out, never hammered


async def test_a_status_edit_discord_made_unheard_is_edited_away_by_the_same_text() -> None:
    """The bot never heard back from the edit adding the line (a timeout), yet Discord made
    it; the answer taken up again ends exactly as the half answer showed it."""
    discord_ = Discord([0.0])
    stream = stream_on(discord_)
    await stream.update("The whole answer.")
    discord_.failures = [(TimeoutError(), True)]
    with pytest.raises(TimeoutError):
        await stream.show_status(LINE)
    assert discord_.shown[1].endswith(LINE)
    assert await stream.finish("The whole answer.") == [1]
    assert discord_.shown == {1: "The whole answer."}


async def test_an_intermediate_refusal_takes_the_line_away_before_it_is_raised() -> None:
    """A refused sync stops the stream (the generation finishes unposted): what shows must not
    say the answer is being picked up."""
    discord_, stream = await shown_with_line("Once upon")
    discord_.failures = [(refusal(403, 50013), False)]
    with pytest.raises(discord.HTTPException):
        await stream.update("Once upon a time")
    assert discord_.shown == {1: "Once upon a time"}


async def test_a_status_edit_refused_leaves_nothing_to_take_away() -> None:
    discord_ = Discord([0.0])
    stream = stream_on(discord_)
    await stream.update("The whole answer.")
    discord_.failures = [(refusal(400, 50035), False)]
    with pytest.raises(discord.HTTPException):
        await stream.show_status(LINE)
    assert await stream.finish("The whole answer.") == [1]
    assert len(discord_.requests) == 1  # Discord refused it: no edit to take it away


async def test_a_rate_limited_status_edit_holds_the_next_sync_for_retry_after() -> None:
    discord_ = Discord([0.0])
    stream = stream_on(discord_, interval=1.0)
    await stream.update("Once upon")
    discord_.clock[0] = 1.0
    discord_.failures = [(refusal(429, retry_after=5), False)]
    assert not await stream.show_status(LINE)
    discord_.clock[0] = 3.0  # the interval passed, not the retry_after
    await stream.update("Once upon a time")
    assert len(discord_.requests) == 1
    discord_.clock[0] = 6.0
    await stream.update("Once upon a time")
    assert [when for when, _ in discord_.requests] == [1.0, 6.0]


async def test_a_429_discord_py_waited_out_holds_from_the_refusal_not_the_request() -> None:
    """discord.py retries a 429 itself, sleeping `retry_after` each time; when its retries run
    out the request began long before the refusal the bot sees."""
    discord_ = Discord([0.0])
    stream = stream_on(discord_, interval=1.0)
    await stream.update("Once")
    discord_.clock[0] = 2.0
    discord_.edit_takes = 8.0  # four waits of 2 s inside discord.py
    discord_.failures = [(refusal(429, retry_after=2), False)]
    await stream.update("Once upon")  # refused at 10.0
    discord_.edit_takes = 0.0
    discord_.clock[0] = 11.0
    await stream.update("Once upon a")
    assert len(discord_.requests) == 1  # held until 12.0
    discord_.clock[0] = 12.0
    await stream.update("Once upon a time")
    assert [when for when, _ in discord_.requests] == [2.0, 12.0]


async def test_the_final_sync_waits_out_a_rate_limit_first() -> None:
    discord_ = Discord([0.0])
    stream = stream_on(discord_)
    await stream.update("Once")
    discord_.failures = [(refusal(429, retry_after=3), False)]
    await stream.update("Once upon")  # refused at 0.0
    assert await stream.finish("Once upon a time.") == [1]
    assert [when for when, _ in discord_.requests] == [0.0, 3.0]
    assert discord_.shown == {1: "Once upon a time."}


async def test_a_status_line_waits_out_a_rate_limit_first() -> None:
    discord_ = Discord([0.0])
    stream = stream_on(discord_)
    await stream.update("Once")
    discord_.failures = [(refusal(429, retry_after=4), False)]
    await stream.update("Once upon")  # refused at 0.0
    assert await stream.show_status(LINE)
    assert [when for when, _ in discord_.requests] == [0.0, 4.0]


async def test_a_long_retry_after_is_refused_not_slept_on() -> None:
    """A 429 asking for an hour (a Cloudflare ban discord.py hands over at once) ends the
    final edit at once, and the line's removal after it waits no hour either: the stream
    never sleeps past `LONGEST_WAIT` at a time, nor `FINAL_ATTEMPTS` times that in all."""
    discord_, stream = await shown_with_line("hello")
    discord_.failures = [(refusal(429, retry_after=3600), False)] * 10
    with pytest.raises(discord.HTTPException):
        await stream.finish("hello world!")
    assert all(seconds <= LONGEST_WAIT for seconds in discord_.sleeps)
    assert sum(discord_.sleeps) <= FINAL_ATTEMPTS * LONGEST_WAIT
