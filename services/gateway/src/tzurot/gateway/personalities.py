"""The personality seed format (`personalities/*.yaml`) and its validation.

A seed file describes one personality::

    slug: lilith                      # optional; derived from name
    name: Lilith
    aliases: [lil, the night queen]
    avatar_url: https://example.com/lilith.png
    system_prompt: |
      You are Lilith...
    character: {description: ..., personality: ..., scenario: ..., example_dialogues: ...,
                post_history_instructions: ...,
                author_note: "Stay terse.", author_note_depth: 3}   # depth 2-4 from the bottom
    cleanup_rules:                    # applied in order to every answer (Python regex)
      - {pattern: '\\*\\*(.+?)\\*\\*', replacement: '\1'}
    llm: {provider: openrouter, model: anthropic/claude-sonnet-4.5, free_use: false}
    error_message: "*Lilith's candle gutters.* Something went wrong."
    birthday: "10-31"
    public: true
    nsfw: false
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tzurot.gateway.domain import CleanupRule
from tzurot.gateway.rules import AUTHOR_NOTE_DEPTHS, check_cleanup_rules
from tzurot.runtime.errors import InvalidArgument, quoted

SLUG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
BIRTHDAY_PATTERN = re.compile(r"^(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$")
AVATAR_URL_LIMIT = 2048


def avatar_url_problem(url: str) -> str | None:
    """Why Discord would refuse `url` as a webhook avatar (it must be a well formed http(s)
    URL), or None; "" (no avatar) is fine."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return "avatar_url must be an http(s) URL, e.g. https://example.com/avatar.png"
    if len(url) > AVATAR_URL_LIMIT or any(c.isspace() or ord(c) < 32 for c in url):
        return "avatar_url is not a well formed URL"
    return None


MAX_SEED_BYTES = 256 * 1024


def slugify(name: str) -> str:
    """'The Oracle of Delphi' -> 'the-oracle-of-delphi'.

    A name mostly in another script (fewer than half of its letters and digits are a-z or
    0-9: 'Алиса', 'アリス', 'Алиса 2') becomes 'char-' and 8 hex digits of a hash of the name,
    whatever its case and spacing: the same name always gets the same slug (a card imported
    again updates its personality, as 'Alice' does at 'alice'). '' for a name without letters
    or digits ('!!!')."""
    lowered = name.lower()
    slug = re.sub(r"[^a-z0-9]+", "-", lowered).strip("-")[:63]
    latin = sum(c.isascii() and c.isalnum() for c in lowered)
    if latin * 2 < sum(c.isalnum() for c in lowered):
        key = unicodedata.normalize("NFC", " ".join(name.casefold().split()))
        return f"char-{hashlib.sha256(key.encode()).hexdigest()[:8]}"
    return slug


def normalize_alias(alias: str) -> str:
    """Aliases match case-insensitively and ignore surrounding whitespace and a leading '@'.
    This is the form stored (`personality_aliases.alias`, `personal_aliases.alias`): compare
    two of them by `same_key`."""
    return " ".join(alias.strip().lstrip("@").lower().split())


FINAL_SIGMA, SIGMA = "\u03c2", "\u03c3"


def same_key(key: str) -> str:
    """`key` (lowered) as two keys are compared: the Greek final sigma (U+03C2) as a sigma
    (U+03C3). How `str.lower()` lowers a capital sigma depends on what is around it (the
    last one of "ΣΟΦΟΣ" lowers to a final sigma, that of "ΣΟΦΟΣ's" does not, and `fold`
    lowers a character at a time), so the two are one letter in a key. Stored aliases keep
    their final sigma (a change to `normalize_alias` would need their rows rewritten), so
    each side is mapped where they are compared (in SQL by `translate`, store/name_lookups.py);
    one character for one, so offsets are kept."""
    return key.replace(FINAL_SIGMA, SIGMA)


def continues_word(char: str) -> bool:
    """Whether `char` carries on the word before it, so that a name just before it is not
    mentioned there (`@lil-y`, `@lilx`): a letter, a combining mark (the vowel signs ending
    many Indic names), a digit, '_' or '-'."""
    return char in "_-" or unicodedata.category(char)[0] in "LMN"


def word_prefixes(key: str) -> list[str]:
    """The shorter names a normalized name or alias begins with, as an @mention reads them:
    each part of it that ends where a word does ('sage please' and "sage's" begin with
    'sage'; 'sagebrush' and 'sage-bot' do not)."""
    found: list[str] = []
    for index in range(1, len(key)):
        if not continues_word(key[index]):
            prefix = key[:index].rstrip()
            if prefix and prefix not in found:
                found.append(prefix)
    return found


def _begins_word(char: str) -> bool:
    return unicodedata.category(char)[0] in "LN"


def _ends_word(char: str) -> bool:
    return unicodedata.category(char)[0] in "LMN"


def mention_key(name: str) -> str:
    """What a display name is @mentioned by, and compared as in the alias rules: the name
    normalized (`normalize_alias`), what cannot begin a word trimmed from its start and what
    cannot end one from its end ('Dr. Who?' -> 'dr. who', '✨Luna✨' -> 'luna', 'Sage 🌙' ->
    'sage', 'Sage (beta)' -> 'sage (beta'), as keys are compared (`same_key`: 'Σοφος' ->
    'σοφοσ'). A name may be anything; '' when nothing in it is a letter or digit (nothing to
    mention it by)."""
    key = same_key(normalize_alias(name))
    start, end = 0, len(key)
    while start < end and not _begins_word(key[start]):
        start += 1
    while end > start and not _ends_word(key[end - 1]):
        end -= 1
    return key[start:end]


def edges_problem(alias: str) -> str | None:
    """Why `alias` cannot be a global alias: it must begin with a letter or digit and end
    with one (or a letter's combining mark), in any script; spaces and punctuation inside are
    fine ('Dr. Who', "D'Artagnan"). An alias ending in punctuation would take @mentions from
    the name it extends: '@Sage!' is a mention of 'Sage' followed by '!', which an alias
    'sage!' would win. A display name has no such rule: it is mentioned by its `mention_key`.
    None when it may."""
    key = normalize_alias(alias)
    if not key or (_begins_word(key[0]) and _ends_word(key[-1])):
        return None
    return (
        "an alias must begin and end with a letter or digit (spaces and punctuation inside "
        "are fine, as in 'Dr. Who')"
    )


class CharacterSeed(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = ""
    personality: str = ""
    scenario: str = ""
    example_dialogues: str = ""
    post_history_instructions: str = ""
    author_note: str = ""
    author_note_depth: int = 0

    @field_validator("author_note_depth")
    @classmethod
    def _depth_is_known(cls, value: int) -> int:
        if value not in AUTHOR_NOTE_DEPTHS:
            raise ValueError("author_note_depth is 2, 3 or 4 (0: the default, 3)")
        return value


class CleanupRuleSeed(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pattern: str = Field(min_length=1)
    replacement: str = ""


class LlmSeed(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: str = Field(min_length=1, max_length=64)
    model: str = Field(min_length=1, max_length=200)
    free_use: bool = False
    context_window: int = Field(default=0, ge=0)
    max_referenced_messages: int = Field(default=0, ge=0)
    advanced_parameters: dict[str, Any] = Field(default_factory=dict)


class PersonalitySeed(BaseModel):
    """One personality as the seed files and ImportPersonality describe it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=80)
    slug: str = ""
    aliases: list[str] = Field(default_factory=list, max_length=50)
    avatar_url: str = Field(default="", max_length=2048)
    system_prompt: str = Field(default="", max_length=64_000)
    character: CharacterSeed = Field(default_factory=CharacterSeed)
    cleanup_rules: list[CleanupRuleSeed] = Field(default_factory=list)
    llm: LlmSeed | None = None
    error_message: str = Field(default="", max_length=2000)
    birthday: str = ""
    public: bool = True
    nsfw: bool = False

    @field_validator("slug")
    @classmethod
    def _slug_is_valid(cls, value: str) -> str:
        if value and not SLUG_PATTERN.match(value):
            raise ValueError("a slug is lowercase letters, digits and dashes, at most 63")
        return value

    @field_validator("avatar_url")
    @classmethod
    def _avatar_url_is_http(cls, value: str) -> str:
        problem = avatar_url_problem(value.strip())
        if problem is not None:
            raise ValueError(problem)
        return value.strip()

    @field_validator("birthday")
    @classmethod
    def _birthday_is_month_day(cls, value: str) -> str:
        if value and not BIRTHDAY_PATTERN.match(value):
            raise ValueError("birthday is MM-DD")
        return value

    @field_validator("aliases")
    @classmethod
    def _aliases_are_names(cls, value: list[str]) -> list[str]:
        for alias in value:
            if not normalize_alias(alias) or len(alias) > 80:
                raise ValueError(f"alias {quoted(alias)} must be 1 to 80 characters")
        return value

    @field_validator("cleanup_rules")
    @classmethod
    def _rules_compile(cls, value: list[CleanupRuleSeed]) -> list[CleanupRuleSeed]:
        try:
            check_cleanup_rules(cls.rules_of(value), field="cleanup_rules")
        except InvalidArgument as exc:
            raise ValueError(str(exc)) from None
        return value

    @staticmethod
    def rules_of(rules: list[CleanupRuleSeed]) -> tuple[CleanupRule, ...]:
        return tuple(CleanupRule(r.pattern, r.replacement) for r in rules)

    @property
    def rules(self) -> tuple[CleanupRule, ...]:
        return self.rules_of(self.cleanup_rules)

    @property
    def effective_slug(self) -> str:
        return self.slug or slugify(self.name)


def parse_seed_yaml(document: bytes | str, *, source: str = "document") -> PersonalitySeed:
    """Parses and validates one seed; any problem is an InvalidArgument naming the field."""
    if len(document) > MAX_SEED_BYTES:
        raise InvalidArgument("document", f"{source} is larger than {MAX_SEED_BYTES} bytes")
    try:
        data = yaml.safe_load(document)
    except yaml.YAMLError as exc:
        raise InvalidArgument("document", f"{source} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidArgument("document", f"{source} must be a YAML mapping of personality fields")
    try:
        seed = PersonalitySeed.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "document"
        raise InvalidArgument(field, f"{source}: {field}: {first['msg']}") from None
    if not SLUG_PATTERN.match(seed.effective_slug):
        raise InvalidArgument(
            "slug", f"{source}: cannot derive a slug from name {quoted(seed.name)}"
        )
    return seed
