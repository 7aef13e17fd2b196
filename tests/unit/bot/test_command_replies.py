"""What a command answers when it changed nothing (a switch already so), and how it names a
personality: formatting only (the commands run through the fake Discord in
tests/e2e/test_discord_command_replies.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import cast

import grpc
import pytest

from tzurot.bot.commands.freewill import switched_off_text, switched_on_text
from tzurot.bot.commands.lookups import lorebook_choices
from tzurot.bot.commands.memory import fresh_text, incognito_text
from tzurot.bot.commands.names import display_name
from tzurot.bot.gateway_client import GatewayClient
from tzurot.runtime.errors import TzurotError
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

LILITH = common.Personality(id="p1", slug="lilith", display_name="Lilith")


def status(*, enabled: bool, payer: str = "111", reason: str = "") -> gw.FreeWillStatus:
    return gw.FreeWillStatus(
        personality=LILITH,
        enabled=enabled,
        payer_user_id=payer,
        disabled_reason=reason,
        timezone="UTC",
        quiet_hours="23-8",
        daily_budget=3,
    )


def test_freewill_on_tells_a_switch_from_one_already_on() -> None:
    now = status(enabled=True)
    assert switched_on_text(None, now).startswith("**Lilith** may now speak up here")
    assert switched_on_text(status(enabled=False), now).startswith("**Lilith** may now")
    again = switched_on_text(status(enabled=True), now)
    assert again == (
        "**Lilith** already speaks up here on its own: at most 3 times a day, never during "
        "23-8 (UTC). Each message is paid with your key. `/freewill off` stops it."
    )
    # Someone else paid until now: the one thing this call changed is said.
    assert "is now paid with your key" in switched_on_text(status(enabled=True, payer="2"), now)


def test_freewill_off_tells_a_switch_from_one_already_off_and_why() -> None:
    now = status(enabled=False)
    assert switched_off_text(status(enabled=True), now) == (
        "**Lilith** no longer speaks up on its own here."
    )
    assert switched_off_text(status(enabled=False), now) == (
        "Free will was already off for **Lilith** here; nothing changed."
    )
    assert switched_off_text(status(enabled=False, reason="NO_API_KEY"), now) == (
        "Free will was already off for **Lilith** here (switched off by Tzurot: NO_API_KEY); "
        "nothing changed."
    )


def _stats(*, incognito_until: datetime | None = None) -> gw.GetMemoryStatsResponse:
    stats = gw.GetMemoryStatsResponse()
    if incognito_until is not None:
        stats.incognito_until.FromDatetime(incognito_until)
    return stats


def test_incognito_off_after_its_end_passed_was_not_on() -> None:
    off = gw.SetIncognitoResponse()
    past = _stats(incognito_until=datetime.now(UTC) - timedelta(hours=1))
    future = _stats(incognito_until=datetime.now(UTC) + timedelta(hours=1))
    assert incognito_text(off, "Echo", before=past) == (
        "Incognito was not on with Echo; it remembers as before."
    )
    assert incognito_text(off, "Echo", before=future) == "Incognito is off: Echo remembers again."
    # Not known (the modes could not be read): told as the switch it asked for.
    assert incognito_text(off, "Echo") == "Incognito is off: Echo remembers again."


def test_fresh_undone_without_a_fresh_start_says_so() -> None:
    undone = gw.StartFreshResponse()
    had = gw.GetMemoryStatsResponse()
    had.fresh_since.FromDatetime(datetime.now(UTC))
    assert fresh_text(undone, "Echo", before=had) == "Echo uses all its memories of you again."
    assert fresh_text(undone, "Echo", before=gw.GetMemoryStatsResponse()) == (
        "There was no fresh start with Echo; it already uses all its memories of you."
    )


class _Gateway:
    """GetPersonality refused, ListLorebooks with `books`: all these lookups need."""

    def __init__(self, books: list[common.Lorebook]) -> None:
        self.books = books

    async def personality(self, actor: common.Actor, name: str) -> common.Personality | None:
        raise TzurotError("down", code=grpc.StatusCode.UNAVAILABLE)

    async def call(self, rpc: object) -> object:
        return await rpc  # type: ignore[misc]  # the stub's coroutine

    @property
    def stub(self) -> _Gateway:
        return self

    async def ListLorebooks(self, request: gw.ListLorebooksRequest) -> gw.ListLorebooksResponse:
        return gw.ListLorebooksResponse(lorebooks=self.books)


class _User:
    def __init__(self, user_id: int) -> None:
        self.id = user_id
        self.name = self.display_name = "alice"
        self.bot = False


class _Interaction:
    def __init__(self, user_id: int) -> None:
        self.user = _User(user_id)


async def test_a_name_that_cannot_be_looked_up_is_told_as_typed() -> None:
    gateway = cast(GatewayClient, _Gateway([]))
    assert await display_name(gateway, _Interaction(1), "echo") == "echo"  # type: ignore[arg-type]
    assert await display_name(gateway, _Interaction(1), "") == ""  # type: ignore[arg-type]


@pytest.mark.parametrize(("count", "label"), [(1, "Moor (1 entry)"), (2, "Moor (2 entries)")])
async def test_lorebook_choices_name_the_book_and_choose_it_by_id(count: int, label: str) -> None:
    books = [common.Lorebook(id=f"b{count}", name="Moor", entry_count=count)]
    gateway = cast(GatewayClient, _Gateway(books))
    found = await lorebook_choices(gateway, _Interaction(100 + count), "mo")  # type: ignore[arg-type]
    assert [(c.name, c.value) for c in found] == [(label, f"b{count}")]
