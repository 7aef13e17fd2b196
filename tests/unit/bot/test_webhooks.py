"""Webhook usernames Discord accepts, checked with the fake Discord's copy of Discord's rule
(zero-width and non-rendering characters are dropped before the checks)."""

from hypothesis import given
from hypothesis import strategies as st

from tzurot.bot.webhooks import HAIR_SPACE, USERNAME_LIMIT, sanitize_username
from tzurot.testing.fake_discord.rules import username_error


def test_an_ordinary_name_is_kept() -> None:
    assert sanitize_username("Lilith") == "Lilith"


def test_names_are_cut_to_80_characters() -> None:
    assert len(sanitize_username("x" * 200)) == USERNAME_LIMIT


def test_forbidden_words_are_broken_with_a_hair_space_like_pluralkit() -> None:
    name = sanitize_username("Clyde of Discord ```")
    assert name.replace(HAIR_SPACE, "") == "Clyde of Discord ```"
    assert username_error(name) is None


def test_zero_width_padding_would_not_survive_discords_stripping() -> None:
    # The old trick: Discord drops U+200B before checking, so "c\u200blyde" is still refused.
    assert username_error("c\u200blyde") is not None
    assert username_error(sanitize_username("c\u200blyde")) is None


def test_reserved_and_empty_names_are_made_acceptable() -> None:
    assert username_error(sanitize_username("everyone")) is None
    assert username_error(sanitize_username("HERE")) is None
    assert sanitize_username("A") == "A"  # 1 character is allowed for webhooks
    assert sanitize_username("   ") == "Personality"
    assert sanitize_username("\u200b\u200b") == "Personality"


@given(st.text(max_size=200))
def test_any_name_becomes_acceptable(name: str) -> None:
    clean = sanitize_username(name)
    assert username_error(clean) is None, (name, clean)
    assert 1 <= len(clean) <= USERNAME_LIMIT
