"""A denylist entry's guild or channel scope, and a denied server, are named by a Discord id
(review: `/admin deny add scope_id` took any text up to 6000 characters and stored it, an
entry that could never match). The gateway takes an id as Discord writes one and refuses
anything else with INVALID_ARGUMENT, before anything is stored; a personality scope is a
personality's name, and a user target is any platform user's id ("cli:<name>" too)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest

from tzurot.gateway.admin.base import Principal
from tzurot.gateway.admin.channels import ModerationAdmin
from tzurot.gateway.domain import User
from tzurot.gateway.domain_channels import DenyEntry, DenyMode, DenyScope, DenyTarget
from tzurot.gateway.ids import is_snowflake
from tzurot.runtime.errors import InvalidArgument

OPERATOR = Principal(user=None)
LARGEST = str(2**64 - 1)  # 18446744073709551615: 20 digits
FULL_WIDTH = "\uff11\uff12\uff13"  # "123" in full-width digits


class Stored(Exception):
    """The entry passed the checks and went on to the store (or a personality lookup)."""


class Beyond:
    def __getattr__(self, name: str) -> Callable[..., Any]:
        def reached(*args: Any, **kwargs: Any) -> Any:
            raise Stored(name)

        return reached


class Checks(ModerationAdmin):
    def __init__(self) -> None:  # only the checks run; whatever comes after is `Stored`
        beyond: Any = Beyond()
        self._db = self._store = self._gateway = beyond


def entry(
    scope: DenyScope, scope_id: str, target: DenyTarget = DenyTarget.USER, target_id: str = "1"
) -> DenyEntry:
    return DenyEntry("", target, target_id, scope, scope_id, DenyMode.BLOCK, "", datetime.now(UTC))


@pytest.mark.parametrize("value", ["1", "123456789012345678", LARGEST])
def test_discord_ids_are_snowflakes(value: str) -> None:
    assert is_snowflake(value)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "0",
        "00",
        "0123",  # Discord never writes a leading zero: it would never match
        str(2**64),  # beyond 64 bits
        "1" * 21,
        "abc",
        "guild-1",
        "12 34",
        "-5",
        "+5",
        FULL_WIDTH,  # str.isdigit() says yes
        "١٢٣",  # Arabic-Indic digits: so does it
        "1e5",
    ],
)
def test_anything_else_is_not(value: str) -> None:
    assert not is_snowflake(value)


@pytest.mark.parametrize(
    ("scope", "of"), [(DenyScope.GUILD, "server"), (DenyScope.CHANNEL, "channel")]
)
@pytest.mark.parametrize("bad", ["abc", "0", "0123", str(2**64), "x" * 6000, FULL_WIDTH])
async def test_a_malformed_guild_or_channel_scope_is_refused_and_never_stored(
    scope: DenyScope, of: str, bad: str
) -> None:
    with pytest.raises(InvalidArgument) as refused:
        await Checks().add_deny(OPERATOR, entry(scope, bad))
    assert refused.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.field == "entry.scope_id"  # for API clients (BadRequest)
    message = str(refused.value)
    assert f" is not a Discord {of} id: one is digits only, at most 20 and not starting with 0" in (
        message
    )
    assert "entry." not in message  # what was typed is told of, not a field nobody typed in
    assert len(message) < 300  # a 6000-character value is not echoed whole


@pytest.mark.parametrize("scope", [DenyScope.GUILD, DenyScope.CHANNEL])
@pytest.mark.parametrize("good", ["1", "123456789012345678", LARGEST, " 123456789012345678 "])
async def test_a_discord_id_scope_goes_on_to_be_stored(scope: DenyScope, good: str) -> None:
    with pytest.raises(Stored, match="add_deny"):
        await Checks().add_deny(OPERATOR, entry(scope, good))


async def test_a_denied_server_is_a_discord_id_too() -> None:
    with pytest.raises(InvalidArgument) as refused:
        await Checks().add_deny(OPERATOR, entry(DenyScope.BOT, "", DenyTarget.GUILD, "my-guild"))
    assert refused.value.field == "entry.target_id"
    assert str(refused.value) == (
        "'my-guild' is not a Discord server id: one is digits only, at most 20 and not "
        "starting with 0 (like 123456789012345678)"
    )
    with pytest.raises(Stored, match="add_deny"):
        await Checks().add_deny(OPERATOR, entry(DenyScope.BOT, "", DenyTarget.GUILD, LARGEST))


async def test_a_user_target_and_a_personality_scope_are_not_ids_of_discord() -> None:
    with pytest.raises(Stored, match="add_deny"):
        await Checks().add_deny(OPERATOR, entry(DenyScope.BOT, "", DenyTarget.USER, "cli:ops"))
    # A personality scope is looked up by name (the store is not reached before).
    with pytest.raises(Stored, match="find_personality_for"):
        await Checks().add_deny(OPERATOR, entry(DenyScope.PERSONALITY, "lilith"))


async def test_a_member_is_refused_before_the_id_is_read() -> None:
    member = Principal(
        User("u1", "1", "Bob", "UTC", superuser=False, nsfw_verified=False,
             created_at=datetime.now(UTC))
    )  # fmt: skip
    with pytest.raises(Exception, match="only superusers"):
        await Checks().add_deny(member, entry(DenyScope.GUILD, "abc"))
