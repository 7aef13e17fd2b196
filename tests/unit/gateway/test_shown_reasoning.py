"""Which reasoning the client is sent with an answer (reply_requests.shown_reasoning), and
which is kept for Inspect (keep_reasoning: the user's own setting only)."""

from __future__ import annotations

from typing import Any, cast

import pytest

from tzurot.gateway.domain import (
    Actor,
    ConfigSource,
    GenerateCommand,
    Location,
    ReplyFinished,
    Usage,
)
from tzurot.gateway.gateway_core import Prepared
from tzurot.gateway.message_convert import generate_command
from tzurot.gateway.reply_requests import keep_reasoning, shown_reasoning
from tzurot.gateway.settings import resolve
from tzurot.v1 import gateway_pb2 as gw

FINISHED = ReplyFinished(
    content="Yes.",
    usage=cast(Usage, None),
    finish_reason="stop",
    reasoning="Because.",
)


def _command(*, turn_id: str = "", show_reasoning: bool = False) -> GenerateCommand:
    return GenerateCommand(
        actor=Actor(platform_user_id="1", display_name="Alice"),
        location=Location(guild_id="g", channel_id="c"),
        personality="lilith",
        content="hi",
        idempotency_key="k",
        show_reasoning=show_reasoning,
        turn_id=turn_id,
    )


def _prepared(level: ConfigSource = ConfigSource.USER, **values: Any) -> Prepared:
    settings = resolve({level: values})
    return Prepared(config=cast(Any, None), settings=settings, persona=None, request_type="text")


@pytest.mark.parametrize(
    ("command", "prepared", "shown"),
    [
        (_command(), _prepared(), ""),
        (_command(), _prepared(show_reasoning=True), "Because."),
        (_command(show_reasoning=True), _prepared(), "Because."),
        # keep_reasoning keeps it for Inspect: it does not show it.
        (_command(), _prepared(keep_reasoning=True), ""),
        # A scheduled turn is said to nobody: its payer's setting does not show it.
        (_command(turn_id="t-1"), _prepared(show_reasoning=True), ""),
        (_command(), _prepared(ConfigSource.USER_PERSONALITY, show_reasoning=True), "Because."),
        # Stored at a level no one may set it at now: not the user's, not applied.
        (_command(), _prepared(ConfigSource.PERSONALITY, show_reasoning=True), ""),
        (_command(), _prepared(ConfigSource.CHANNEL, show_reasoning=True), ""),
    ],
)
def test_reasoning_is_sent_when_asked_or_set_not_for_scheduled_turns(
    command: GenerateCommand, prepared: Prepared, shown: str
) -> None:
    assert shown_reasoning(FINISHED, command, prepared) == shown


@pytest.mark.parametrize(
    ("command", "prepared", "kept"),
    [
        (_command(), _prepared(), False),
        (_command(), _prepared(keep_reasoning=True), True),
        (_command(), _prepared(ConfigSource.USER_PERSONALITY, keep_reasoning=True), True),
        # The client's show_reasoning only shows it: kept reasoning may restate memories and
        # the prompt, for superusers to read, so only the user's own setting keeps it.
        (_command(show_reasoning=True), _prepared(), False),
        (_command(show_reasoning=True), _prepared(keep_reasoning=True), True),
        # show_reasoning shows it: it does not keep it.
        (_command(), _prepared(show_reasoning=True), False),
        # Stored at a level no one may set it at now (before it was each user's own): the
        # owner's, a channel's or everyone's value keeps nobody's reasoning.
        (_command(), _prepared(ConfigSource.PERSONALITY, keep_reasoning=True), False),
        (_command(), _prepared(ConfigSource.CHANNEL, keep_reasoning=True), False),
        (_command(), _prepared(ConfigSource.GLOBAL, keep_reasoning=True), False),
        # A scheduled turn is said to nobody: its payer's setting does not keep it.
        (_command(turn_id="t-1"), _prepared(keep_reasoning=True), False),
    ],
)
def test_reasoning_is_kept_for_inspect_by_the_users_own_setting_only(
    command: GenerateCommand, prepared: Prepared, kept: bool
) -> None:
    assert keep_reasoning(command, prepared) is kept


@pytest.mark.parametrize(
    "request_",
    [
        gw.GenerateRequest(show_reasoning=True),
        # An older client's name for it: it shows the reasoning and, now, no longer keeps it.
        gw.GenerateRequest(include_reasoning=True),
    ],
)
def test_a_request_asking_for_reasoning_is_shown_it_and_keeps_nothing(
    request_: gw.GenerateRequest,
) -> None:
    command = generate_command(request_)
    assert command.show_reasoning
    assert shown_reasoning(FINISHED, command, _prepared()) == "Because."
    assert keep_reasoning(command, _prepared()) is False
    assert keep_reasoning(command, _prepared(keep_reasoning=True)) is True
