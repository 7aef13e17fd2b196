"""Which reasoning the client is sent with an answer (reply_requests.shown_reasoning)."""

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
from tzurot.gateway.reply_requests import keep_reasoning, shown_reasoning
from tzurot.gateway.settings import resolve

FINISHED = ReplyFinished(
    content="Yes.",
    usage=cast(Usage, None),
    finish_reason="stop",
    reasoning="Because.",
)


def _command(*, turn_id: str = "", include_reasoning: bool = False) -> GenerateCommand:
    return GenerateCommand(
        actor=Actor(platform_user_id="1", display_name="Alice"),
        location=Location(guild_id="g", channel_id="c"),
        personality="lilith",
        content="hi",
        idempotency_key="k",
        include_reasoning=include_reasoning,
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
        (_command(include_reasoning=True), _prepared(), "Because."),
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
        (_command(include_reasoning=True), _prepared(), True),
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
