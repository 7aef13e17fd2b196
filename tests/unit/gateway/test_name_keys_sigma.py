"""Keys compared whatever the context lowered them in: the Greek final sigma is a sigma in a
name's key, in @mentions and in the names a rename keeps (`new_names`: as written, not by
key)."""

from dataclasses import replace
from datetime import timedelta

from tzurot.gateway.mentions import find_mentions
from tzurot.gateway.personalities import mention_key, same_key
from tzurot.gateway.personality_access import names_itself
from tzurot.gateway.store.name_rules import Names, new_names

from .personality_support import NOW, personality


def test_a_final_sigma_is_a_sigma_in_a_key() -> None:
    assert mention_key("ΣΟΦΟΣ") == mention_key("Σοφοσ") == mention_key("σοφος!")
    assert same_key("σοφος") == same_key("σοφοσ")
    assert names_itself(personality("sofos", "ΣΟΦΟΣ"), "σοφοσ")


def test_a_mention_finds_the_name_whatever_lowered_its_sigma() -> None:
    """ "ΣΟΦΟΣ's" lowers to a sigma (no final one before a letter after the apostrophe), and
    a message with 'İ' is lowered a character at a time: both still mention ΣΟΦΟΣ, the
    older of two, not the newer "Σοφοσ" (a tie from before the rules)."""
    older = personality("sofos", "ΣΟΦΟΣ", created_at=NOW - timedelta(days=1))
    newer = personality("sofos2", "Σοφοσ")
    for text in ("@ΣΟΦΟΣ's words", "İ @ΣΟΦΟΣ hello", "@ΣΟΦΟΣ hello"):
        found = find_mentions(text, [newer, older], 5)
        assert [p.slug for p, _, _ in found] == ["sofos"], text
        assert all(text[at : at + len(m)] == m == "@ΣΟΦΟΣ" for _, m, at in found), text
    own = find_mentions("@σοφος μεγας", [older], 5, personal=[("Σοφοσ Μεγας", newer)])
    assert [(p.slug, m) for p, m, _ in own] == [("sofos2", "@σοφος μεγας")]


def test_a_rename_keeps_a_name_only_as_written() -> None:
    sage = personality("old-sage", "Sage!")
    assert new_names(sage, display_name="Sage") == Names(None, "Sage")
    assert new_names(sage, display_name="SAGE!") == Names()
    assert new_names(sage, display_name="old-sage") == Names()
    assert new_names(sage, slug="old-sage", display_name="Sage!") == Names()
    assert new_names(None, slug="sage", display_name="Sage") == Names("sage", "Sage")
    assert new_names(replace(sage, display_name="ΣΟΦΟΣ"), display_name="Σοφοσ") == Names()
