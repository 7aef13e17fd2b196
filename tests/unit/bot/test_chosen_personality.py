"""What a command that removes something for good takes as the user's choice: only the exact
slug of the personality the gateway found (a display name, an alias, the slug in another case
may mean another personality than the user has in mind), and what it says otherwise."""

from __future__ import annotations

import pytest

from tzurot.bot.commands.chosen import (
    CANNOT_UNDO,
    REPLACES,
    code_span,
    exact,
    gone_text,
    in_code,
    is_slug,
    unsure_text,
    with_slug,
)
from tzurot.bot.commands.personality_delete import warning_text
from tzurot.v1 import common_pb2 as common

OLD = common.Personality(slug="old", display_name="Old")


@pytest.mark.parametrize("typed", ["old", " old ", "@old", "@ old"])
def test_the_slug_as_typed_or_picked_is_the_choice(typed: str) -> None:
    assert is_slug(typed, OLD)


@pytest.mark.parametrize("typed", ["Old", "OLD", "luna moon", "old-2", "ol", "", "@Old"])
def test_any_other_name_is_not(typed: str) -> None:
    assert not is_slug(typed, OLD)


def test_a_personality_without_a_slug_is_never_chosen_by_name() -> None:
    assert not is_slug("", common.Personality(display_name="Old"))


def test_the_refusal_names_what_the_name_means_and_the_slug_to_type() -> None:
    again = with_slug("/history clear", OLD)
    text = unsure_text("Nothing cleared", "Luna `Moon`", OLD, again, CANNOT_UNDO)
    assert text == (
        "Nothing cleared: `Luna 'Moon'` means **Old** (`old`) for you. This cannot be undone, "
        "so it is done only to a personality named by its slug (picking it from the list gives "
        "it). If **Old** (`old`) is the one, run `/history clear` with `personality: old`."
    )


def test_an_overwrite_gives_its_own_reason() -> None:
    """An avatar, a voice or a field can be set again: it is not "cannot be undone"."""
    again = with_slug("/character avatar", OLD)
    text = unsure_text("Avatar not changed", "Luna", OLD, again, REPLACES)
    assert text.startswith(
        "Avatar not changed: `Luna` means **Old** (`old`) for you. This replaces what is there "
        "now, so it is done only to a personality named by its slug"
    ), text
    assert "cannot be undone" not in text


def test_a_long_name_is_cut_in_the_refusal() -> None:
    again = with_slug("/history clear", OLD)
    text = unsure_text("Nothing cleared", "x" * 500, OLD, again, CANNOT_UNDO)
    assert f"`{'x' * 99}…`" in text
    assert "x" * 100 not in text


def test_a_long_name_is_cut_between_characters_as_a_reader_sees_them() -> None:
    """Never between a thumb and its skin tone (review: a code point cut)."""
    typed = "x" * 98 + "👍🏽" + "y" * 10
    assert in_code(typed) == "x" * 98 + "…"
    assert in_code("x" * 100) == "x" * 100


def test_the_delete_warning_names_the_command_with_the_slug() -> None:
    assert warning_text(OLD).endswith(
        "Its owner (or a superuser) deletes it with `/personality delete` with "
        "`personality: old` and `confirm: DELETE`."
    )


def test_the_act_names_the_checked_personality_by_its_id() -> None:
    assert exact(common.Personality(id="4b0c-id", slug="old")) == "4b0c-id"
    assert exact(OLD) == "old"  # no id known: its slug


def test_one_gone_between_check_and_act_is_said_so() -> None:
    assert gone_text("Nothing cleared", OLD) == (
        "Nothing cleared: **Old** (`old`) is no longer there for you "
        "(deleted or made private just now)."
    )


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("alias: moon", "`alias: moon`"),
        ("alias: x`y", "`` alias: x`y ``"),  # Discord shows it whole, to copy as is
        ("alias: x``y", "`alias: x''y`"),  # no span holds it: quotes instead
    ],
)
def test_a_code_span_holds_a_backtick(text: str, shown: str) -> None:
    assert code_span(text) == shown
