"""Which personality a Discord message addresses: `@Name` at the start or anywhere.

The gateway resolves names and aliases; here we only find candidate names. Multi-word names
are tried longest first, so `@the night queen hi` asks for "the night queen" before "the".
"""

from __future__ import annotations

import re

_MENTION = re.compile(r"(?:^|\s)@([^\s@<>][^@<>\n]*)")
MAX_NAME_WORDS = 4


def candidate_names(content: str) -> list[tuple[str, str]]:
    """(name, remaining text) candidates for each `@…` in the message, longest name first."""
    candidates: list[tuple[str, str]] = []
    for match in _MENTION.finditer(content):
        words = match.group(1).split()
        for count in range(min(MAX_NAME_WORDS, len(words)), 0, -1):
            name = " ".join(words[:count]).rstrip(",.:;!?")
            rest = (content[: match.start()] + " " + " ".join(words[count:])).strip()
            candidates.append((name, rest))
    return candidates
