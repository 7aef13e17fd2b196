"""The seed format: what parses, and the error a bad seed gives."""

from pathlib import Path

import pytest

from tzurot.gateway.domain import CleanupRule
from tzurot.gateway.personalities import normalize_alias, parse_seed_yaml, slugify
from tzurot.runtime.errors import InvalidArgument

SEEDS = Path(__file__).parents[3] / "personalities"


def test_every_shipped_seed_parses() -> None:
    paths = sorted(SEEDS.glob("*.yaml"))
    assert paths, "the repository ships seed personalities"
    for path in paths:
        seed = parse_seed_yaml(path.read_bytes(), source=path.name)
        assert seed.system_prompt.strip()
        assert seed.llm is not None


def test_slug_derived_from_name_and_aliases_kept() -> None:
    seed = parse_seed_yaml("name: The Oracle of Delphi\naliases: ['@Pythia', 'oracle']\n")
    assert seed.effective_slug == "the-oracle-of-delphi"
    assert [normalize_alias(a) for a in seed.aliases] == ["pythia", "oracle"]


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ("name: ''", "name"),
        ("name: X\nbirthday: 31-10", "birthday"),
        ("name: X\nslug: Not A Slug", "slug"),
        ("name: X\nunknown_field: 1", "unknown_field"),
        ("name: X\nllm: {provider: openrouter}", "llm.model"),
        ("- just\n- a list", "document"),
        ("name: [unclosed", "document"),
        ("name: '!!!'", "slug"),
        ("name: X\ncharacter: {author_note_depth: 7}", "character.author_note_depth"),
        ("name: X\ncleanup_rules: [{pattern: '(unclosed'}]", "cleanup_rules"),
        ("name: X\ncleanup_rules: [{pattern: 'a', replacement: '\\2'}]", "cleanup_rules"),
        ("name: X\ncleanup_rules: [{replacement: 'x'}]", "cleanup_rules.0.pattern"),
    ],
)
def test_bad_seed_names_the_field(document: str, field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_seed_yaml(document)
    assert info.value.field == field


def test_a_seed_carries_its_author_note_and_cleanup_rules() -> None:
    seed = parse_seed_yaml(
        "name: X\n"
        "character: {author_note: Be brief., author_note_depth: 2}\n"
        "cleanup_rules: [{pattern: '^\\*\\w+\\*\\s*', replacement: ''}, {pattern: 'a(b)'}]\n"
    )
    assert (seed.character.author_note, seed.character.author_note_depth) == ("Be brief.", 2)
    assert seed.rules == (CleanupRule(r"^\*\w+\*\s*", ""), CleanupRule("a(b)", ""))


def test_oversized_seed_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="larger than"):
        parse_seed_yaml("name: X\nsystem_prompt: '" + "a" * 300_000 + "'")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("Lilith", "lilith"), ("  @The  Night Queen ", "the night queen"), ("LIL", "lil")],
)
def test_alias_normalization(raw: str, expected: str) -> None:
    assert normalize_alias(raw) == expected


def test_slugify_collapses_punctuation() -> None:
    assert slugify("  Dr. Who?! ") == "dr-who"
