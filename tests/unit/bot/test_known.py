"""The personalities each user may use, cached per user: someone else's private personality
never in a user's list, their own always, one ListPersonalities per user and ttl."""

from __future__ import annotations

from tzurot.bot.known import KnownPersonalities
from tzurot.v1 import common_pb2 as common

LILITH = common.Personality(id="1", slug="lilith", public=True)
WREN = common.Personality(id="2", slug="wren", public=False)  # Alice's private one
SAGE = common.Personality(id="3", slug="sage", public=True)
ALICE, BOB = common.Actor(user_id="10"), common.Actor(user_id="20")


class Gateway:
    """ListPersonalities as the gateway answers it: public ones, plus the asker's own."""

    def __init__(self) -> None:
        self.public = [LILITH]
        self.owned = {"10": [WREN]}
        self.asked: list[str] = []

    async def personalities(self, actor: common.Actor) -> list[common.Personality]:
        self.asked.append(actor.user_id)
        return [*self.public, *self.owned.get(actor.user_id, [])]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def known(gateway: Gateway, clock: Clock, capacity: int = 10) -> KnownPersonalities:
    return KnownPersonalities(gateway.personalities, ttl=30, capacity=capacity, clock=clock)


def slugs(personalities: list[common.Personality]) -> list[str]:
    return [p.slug for p in personalities]


async def test_each_user_gets_their_own_list_whoever_asked_first() -> None:
    gateway = Gateway()
    cache = known(gateway, Clock())
    assert slugs(await cache.usable_by(ALICE)) == ["lilith", "wren"]
    assert slugs(await cache.usable_by(BOB)) == ["lilith"]  # not her private one
    assert slugs(await cache.usable_by(ALICE)) == ["lilith", "wren"]  # hers, after his


async def test_one_list_per_user_and_ttl() -> None:
    gateway, clock = Gateway(), Clock()
    cache = known(gateway, clock)
    await cache.usable_by(ALICE)
    await cache.usable_by(BOB)
    clock.now = 30
    await cache.usable_by(ALICE)
    await cache.usable_by(BOB)
    assert gateway.asked == ["10", "20"]
    clock.now = 30.5
    gateway.owned["10"] = []  # deleted
    assert slugs(await cache.usable_by(ALICE)) == ["lilith"]
    assert gateway.asked == ["10", "20", "10"]


async def test_the_public_ones_are_kept_once_from_the_latest_list() -> None:
    gateway, clock = Gateway(), Clock()
    cache = known(gateway, clock)
    await cache.usable_by(BOB)
    clock.now = 20
    gateway.public = [LILITH, SAGE]
    await cache.usable_by(ALICE)
    # Bob's own list is still fresh; the public ones are as Alice's list had them.
    assert slugs(await cache.usable_by(BOB)) == ["lilith", "sage"]
    assert gateway.asked == ["20", "10"]


async def test_a_personality_made_public_is_listed_once() -> None:
    gateway, clock = Gateway(), Clock()
    cache = known(gateway, clock)
    await cache.usable_by(ALICE)
    gateway.public, gateway.owned = (
        [LILITH, common.Personality(id="2", slug="wren", public=True)],
        {},
    )
    await cache.usable_by(BOB)  # lists Wren as public now; Alice's list still has it private
    assert slugs(await cache.usable_by(ALICE)) == ["lilith", "wren"]


async def test_only_the_users_who_asked_last_are_kept() -> None:
    gateway = Gateway()
    cache = known(gateway, Clock(), capacity=1)
    await cache.usable_by(ALICE)
    await cache.usable_by(BOB)
    await cache.usable_by(ALICE)
    assert gateway.asked == ["10", "20", "10"]
