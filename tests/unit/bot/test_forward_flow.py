"""A forward and the message that may be its comment (tzurot.bot.forwards): through
`MessageFlow.on_message` with a gateway stub, a claimer that addresses nobody, or fails, lets
the forward go at once (`ForwardComments.release`), not after the claim's cap; PluralKit's
repost of a comment takes the forward that comment took, and only that repost does, while the
author's next forward waits for its own comment; it claims the forward by its original's id, and
a repost of a reply to the forward (shown by PluralKit's reply embed) takes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from tzurot.bot.forwards import COMMENT_WINDOW_SECONDS, ForwardComments
from tzurot.testing.fake_discord import FakePluralKit
from tzurot.v1 import gateway_pb2 as gw

from .test_forwards import SHARED, Clock, World, as_repost, forward_and, sent_at, world
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


async def test_a_repost_claims_its_forward_by_its_originals_id(world: World) -> None:
    """The comment claims the forward, its gateway call slow; PluralKit's repost of it, sent
    more than the window after the forward (PluralKit's latency) and read later still (its
    lookup), claims it as its original: it takes the forward. Else the comment would, and it
    is not answered (PluralKit proxied it): the forward would be lost (review 298)."""
    clock = Clock()
    comments = ForwardComments(hold=0.05, cap=CAP, clock=clock)
    alice = str(world.alice["id"])
    forward, said = await forward_and(world)
    comments.posted(forward, alice)
    held = asyncio.create_task(comments.commented(forward, alice))
    comments.claim(said, alice)  # the comment, its gateway call slow
    posted = await world.fake.say(world.general, world.alice, "@Lilith what of it?")
    repost = as_repost(sent_at(world, posted, forward, COMMENT_WINDOW_SECONDS + 0.5))
    comments.claim(repost, alice, original=said.id)
    await asyncio.sleep(0.1)  # past the hold: both claims keep the forward waiting
    clock.now += COMMENT_WINDOW_SECONDS + 1  # the repost's own gateway call ends late
    assert comments.take(repost, alice, original=said.id) is forward
    comments.release(repost)
    assert comments.take(said, alice) is None
    comments.release(said)
    assert await asyncio.wait_for(held, 1)  # answered with the repost


async def test_a_repost_of_a_reply_to_the_forward_takes_nothing(world: World) -> None:
    """Alice replies to her forward through PluralKit: her reply takes nothing (its reference
    names the forward), nor does PluralKit's repost of it, which shows the reply by an embed
    only. Neither claims it: the forward is answered itself when its hold is over, as the same
    reply sent without PluralKit leaves it (review 298)."""
    comments = ForwardComments(hold=0.05, cap=CAP)
    alice = str(world.alice["id"])
    source = await world.fake.say(world.memes, world.bob, SHARED)
    posted = await world.fake.forward(source, world.general, world.alice)
    forward = world.read(posted)
    comments.posted(forward, alice)
    async with FakePluralKit() as pk:
        said, reposted = await pk.proxy(
            world.fake, world.general, world.alice, "@Lilith what of it?", "Fox", reply_to=posted
        )
    reply, repost = world.read(said), world.read(reposted)
    assert repost.reference is None  # PluralKit replies by embed only
    for message, original in ((reply, 0), (repost, reply.id)):
        comments.claim(message, alice, original=original)  # never released: no claim to end
        assert comments.take(message, alice, original=original) is None
    assert not await asyncio.wait_for(comments.commented(forward, alice), 1)
