"""A forward and the message that may be its comment (tzurot.bot.forwards): through
`MessageFlow.on_message` with a gateway stub, a claimer that addresses nobody, or fails, lets
the forward go at once (`ForwardComments.release`), not after the claim's cap; PluralKit's
repost of a comment takes the forward that comment took, and only that repost does, while the
author's next forward waits for its own comment."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from tzurot.bot.forwards import ForwardComments
from tzurot.v1 import gateway_pb2 as gw

from .test_forwards import World, as_repost, forward_and, sent_at, world
from .test_gateway_away import _away, flow_with

__all__ = ["world"]  # the fixture, used by name

CAP = 5.0
"""The claim's cap in these tests: far longer than any wait they allow."""


class SlowPlans:
    """A gateway stub: PlanChannelReply finds no activated personality, `delays[content]`
    seconds late; a content in `failing` fails as a gateway away does."""

    def __init__(self, delays: Mapping[str, float], failing: frozenset[str] = frozenset()) -> None:
        self.planned: list[str] = []
        self._delays, self._failing = delays, failing

    def __getattr__(self, method: str) -> Any:
        async def rpc(request: Any, **_: Any) -> Any:
            if method != "PlanChannelReply":
                raise AssertionError(f"unexpected {method}")
            self.planned.append(request.content)
            await asyncio.sleep(self._delays.get(request.content, 0.0))
            if request.content in self._failing:
                raise _away(method)
            return gw.PlanChannelReplyResponse()

        return rpc


async def forward_waiting_on(world: World, comment: str, stub: SlowPlans) -> None:
    """Alice's forward, then `comment` read while the forward waits, its gateway call longer
    than the forward's hold: the forward is asked about (answered itself) well within the
    claim's cap once the comment is done."""
    flow = flow_with(stub)  # type: ignore[arg-type]  # a stub gateway
    flow._forwards = ForwardComments(hold=0.05, cap=CAP)
    forward, said = await forward_and(world, comment)
    answering = asyncio.create_task(flow.on_message(forward))
    await asyncio.sleep(0)  # the forward waits for its comment
    await flow.on_message(said)  # claims it as it is read, then addresses nobody (or fails)
    await asyncio.wait_for(answering, 1)  # not held until the cap
    assert stub.planned == [comment, ""]  # the comment's call, then the forward's own


async def test_a_claimer_addressing_nobody_lets_the_forward_go_at_once(world: World) -> None:
    await forward_waiting_on(world, "just saying", SlowPlans({"just saying": 0.2}))


async def test_a_claimer_that_fails_lets_the_forward_go_at_once(world: World) -> None:
    stub = SlowPlans({"just saying": 0.2}, failing=frozenset({"just saying"}))
    await forward_waiting_on(world, "just saying", stub)  # logged, never raised


async def test_a_repost_takes_what_its_original_took_and_the_next_forward_stays(
    world: World,
) -> None:
    """The comment took the first forward; the author's next forward came before PluralKit's
    repost of the comment: the repost takes the first (named by its original), the second
    waits for its own comment. Neither is lost (review 295)."""
    comments = ForwardComments()
    alice = str(world.alice["id"])
    first, said = await forward_and(world)
    comments.posted(first, alice)
    assert comments.take(said, alice) is first
    second, own = await forward_and(world, "@Lilith and this?")
    comments.posted(second, alice)
    posted = await world.fake.say(world.general, world.alice, "@Lilith what of it?")
    repost = as_repost(sent_at(world, posted, second, 0.5))  # sent with the second
    assert comments.take(repost, alice, original=said.id) is first
    assert comments.taken_by(repost.id) is first  # for its edits
    assert comments.take(own, alice) is second


async def test_only_the_repost_of_the_comment_takes_its_forward(world: World) -> None:
    """A webhook message of the author's that PluralKit made of another message of hers takes
    nothing the comment took, even sent with the forward; the comment's own repost does
    (review 295: any webhook message of hers took it)."""
    comments = ForwardComments()
    alice = str(world.alice["id"])
    forward, said = await forward_and(world)
    comments.posted(forward, alice)
    assert comments.take(said, alice) is forward
    other = await world.fake.say(world.general, world.alice, "@Lilith hm")
    posted = await world.fake.say(world.general, world.alice, "@Lilith hm")
    other_repost = as_repost(sent_at(world, posted, forward, 0.5))
    assert comments.take(other_repost, alice, original=other.id) is None
    posted = await world.fake.say(world.general, world.alice, "@Lilith what of it?")
    assert comments.take(as_repost(world.read(posted)), alice, original=said.id) is forward
