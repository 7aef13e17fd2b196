"""What a rename adds to a personality's @mentions (`new_names`), and what a slug means
(`is_slug_of`)."""

from tzurot.gateway.personality_access import is_slug_of
from tzurot.gateway.store.name_rules import Names, new_names

from .personality_support import personality


def test_a_rename_that_keeps_the_key_adds_only_its_name_as_written() -> None:
    kept = personality("old-sage", "Sage 🌙")
    assert new_names(kept, display_name="Sage 🌟") == Names(None, "Sage 🌟", written_only=True)
    assert new_names(kept, display_name="SAGE 🌙") == Names()  # the same name as written


def test_a_rename_to_the_key_itself_or_to_a_new_key_is_new_whole() -> None:
    assert new_names(personality("old-sage", "Sage!"), display_name="Sage") == Names(None, "Sage")
    assert new_names(personality("old-sage", "Sage 🌙"), display_name="Herb 🌙") == Names(
        None, "Herb 🌙"
    )


def test_a_slug_names_only_its_own_personality() -> None:
    nova = personality("nova", "✨Nova✨")
    assert is_slug_of(nova, "nova")
    assert is_slug_of(nova, " @Nova ")
    assert not is_slug_of(nova, "✨Nova✨")
    assert not is_slug_of(personality("nova-prime", "Nova"), "nova")
