"""An answer's text deltas merged so that at most one goes out per interval.

A provider streams a token or a word per chunk (hundreds per answer); each became a gRPC
message to gateway and another to the bot, each framed, logged and converted on the way,
while the bot edits Discord at most every 1.5 s. Here the first delta goes out at once
(first-token latency is unchanged) and later ones are merged for at most `interval`
seconds: text waiting is sent when the interval is up even if the provider pauses. Other
events (skill activity, the finish) go out in order, after the text before them; an error
goes out after the text received before it.

The answer is read by its own task, so waiting for the interval never cancels a pending
read of the provider; closing this generator cancels that task, which closes the answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import aclosing

from tzurot.inference.domain import ReplyEvent, TextDelta

_END = object()


async def coalesced(
    events: AsyncGenerator[ReplyEvent, None], interval: float
) -> AsyncGenerator[ReplyEvent, None]:
    """`events` with runs of TextDelta merged (see the module); `interval` <= 0: unchanged."""
    if interval <= 0:
        async with aclosing(events):
            async for event in events:
                yield event
        return
    queue: asyncio.Queue[object] = asyncio.Queue()
    reader = asyncio.create_task(_read(events, queue))
    loop = asyncio.get_running_loop()
    waiting: list[str] = []
    sent_at = -interval
    try:
        while True:
            if waiting:
                try:
                    async with asyncio.timeout_at(sent_at + interval):
                        item = await queue.get()
                except TimeoutError:
                    yield TextDelta("".join(waiting))
                    waiting.clear()
                    sent_at = loop.time()
                    continue
            else:
                item = await queue.get()
            if isinstance(item, TextDelta):
                waiting.append(item.text)
                if loop.time() - sent_at >= interval:
                    yield TextDelta("".join(waiting))
                    waiting.clear()
                    sent_at = loop.time()
                continue
            if waiting:
                yield TextDelta("".join(waiting))
                waiting.clear()
                sent_at = loop.time()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]  # a ReplyEvent: only they and _END are queued
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)


async def _read(events: AsyncGenerator[ReplyEvent, None], queue: asyncio.Queue[object]) -> None:
    try:
        async with aclosing(events):
            async for event in events:
                queue.put_nowait(event)
    except asyncio.CancelledError:
        raise
    except BaseException as exc:  # handed to the consumer, which raises it
        queue.put_nowait(exc)
        return
    queue.put_nowait(_END)
