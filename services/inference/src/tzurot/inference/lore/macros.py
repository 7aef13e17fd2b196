"""Card macros (curly-braced syntax), expanded when the prompt is built, never at import.

From the V3 spec: `{{char}}` (the nickname, else the name; also the legacy `<BOT>`,
`<bot>`, `<char>`), `{{user}}` (the user's persona or display name; also `<USER>`,
`<user>`), `{{random:A,B}}` (`\\,` escapes a comma; SillyTavern's `{{random::A::B}}` too),
`{{pick:A,B}}` (the same choice for the same prompt), `{{roll:N}}`/`{{roll:dN}}` (N of at
most nine digits 0-9), `{{// A}}`, `{{hidden_key:A}}` and `{{comment: A}}` (removed from the
prompt), `{{reverse:A}}`; and V2's `{{original}}` (the system prompt the character replaces: there
is no global one here, so it is empty). Names are matched case-insensitively; an unknown
macro is left as written.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tzurot.inference.domain import Character

_MACRO = re.compile(r"\{\{((?:(?!\}\}|\{\{).)*+)\}\}", re.DOTALL)
"""A macro's body runs to the first `}}` and holds no `{{`: the scan from one `{{` stops at
the next, and the possessive `*+` never backtracks, so a text is read about once whatever
it holds (`.*?` read to the end of the text from every unclosed `{{`: quadratic). In
`{{a {{char}}` the first `{{` is text and `{{char}}` a macro."""
MAX_ROLL_DIGITS = 9
"""`{{roll:N}}` rolls at most 999,999,999 sides; more, or digits other than 0-9, and it is
left as written."""
_LEGACY_CHAR = re.compile(r"<(?:BOT|bot|char)>")
_LEGACY_USER = re.compile(r"<(?:USER|user)>")
_SPLIT = re.compile(r"(?<!\\),")


@dataclass(frozen=True)
class MacroContext:
    char: str
    user: str
    seed: str = ""
    """Makes `{{pick}}`, `{{random}}` and `{{roll}}` repeat within one reply (a retry asks
    the same prompt, so provider caching still works)."""


def _choices(body: str) -> list[str]:
    if body.startswith(":"):  # SillyTavern's {{random::A::B}}
        return [part for part in body[1:].split("::")]
    return [part.replace("\\,", ",") for part in _SPLIT.split(body)]


def expand(text: str, ctx: MacroContext) -> str:
    if not text or ("{{" not in text and "<" not in text):
        return text
    digest = hashlib.sha256(f"{ctx.seed}\0{text}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))  # noqa: S311  # not cryptography

    def one(match: re.Match[str]) -> str:  # noqa: PLR0911  # one answer per macro
        inner = match.group(1)
        name, sep, body = inner.partition(":")
        key = name.strip().lower()
        if inner.strip().startswith("//"):
            return ""
        if not sep:
            if key == "char":
                return ctx.char
            if key == "user":
                return ctx.user
            if key == "original":
                return ""
            return match.group(0)
        if key in ("random", "pick"):
            options = _choices(body)
            return rng.choice(options) if options else ""
        if key == "roll":
            sides = body.strip().lower().removeprefix("d")
            whole = sides.isascii() and sides.isdigit() and len(sides) <= MAX_ROLL_DIGITS
            return str(rng.randint(1, int(sides))) if whole and int(sides) > 0 else match.group(0)
        if key in ("hidden_key", "comment"):
            return ""
        if key == "reverse":
            return body[::-1]
        return match.group(0)

    expanded = _MACRO.sub(one, text)
    # Functions, not strings: a name is text, never a replacement template (a backslash in
    # it, "\\o/" or a typed "\\n", would be read as an escape, or refused as a bad one).
    expanded = _LEGACY_CHAR.sub(lambda _match: ctx.char, expanded)
    return _LEGACY_USER.sub(lambda _match: ctx.user, expanded)


def expand_character(character: Character, ctx: MacroContext) -> Character:
    """The character with the macros of every prompt text expanded."""
    return replace(
        character,
        system_prompt=expand(character.system_prompt, ctx),
        description=expand(character.description, ctx),
        personality=expand(character.personality, ctx),
        scenario=expand(character.scenario, ctx),
        example_dialogues=expand(character.example_dialogues, ctx),
        post_history_instructions=expand(character.post_history_instructions, ctx),
        author_note=expand(character.author_note, ctx),
    )
