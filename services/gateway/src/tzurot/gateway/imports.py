"""What ImportPersonality accepts: each document format becomes a personality seed here.

`seed_from_document` is the one entry point; a new format adds an `ImportFormat` member and a
reader below (cards/ does the decoding of character cards).
"""

from __future__ import annotations

from enum import Enum

from tzurot.gateway.cards.codec import decode
from tzurot.gateway.cards.mapping import draft_from_card
from tzurot.gateway.personalities import PersonalitySeed, parse_seed_yaml
from tzurot.runtime.errors import InvalidArgument


class ImportFormat(Enum):
    SEED_YAML = "seed_yaml"
    CHARACTER_CARD_JSON = "character_card_json"


def seed_from_document(fmt: ImportFormat, document: bytes) -> PersonalitySeed:
    """The personality a document describes; InvalidArgument naming what is wrong."""
    if not document.strip():
        raise InvalidArgument("document", "the document is empty")
    if fmt is ImportFormat.SEED_YAML:
        return parse_seed_yaml(document)
    return card_seed(document)


def card_seed(document: bytes) -> PersonalitySeed:
    """A JSON character card (V1, V2 or V3) as a seed: name, prompts, character fields and
    Tzurot's own extension (slug, aliases…)."""
    decoded = decode(document)
    if decoded.container != "json":
        raise InvalidArgument(
            "format",
            f"this is a {decoded.container.upper()} character card, not a JSON one",
            reason="UNSUPPORTED_FORMAT",
        )
    return draft_from_card(decoded).seed
