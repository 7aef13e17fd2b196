from __future__ import annotations

import json

import pytest

from tzurot.gateway.imports import ImportFormat, seed_from_document
from tzurot.runtime.errors import InvalidArgument


def test_a_v1_json_card_is_a_seed() -> None:
    card = {"name": "Ada", "description": "Counts.", "personality": "", "scenario": "",
            "first_mes": "", "mes_example": ""}  # fmt: skip
    seed = seed_from_document(ImportFormat.CHARACTER_CARD_JSON, json.dumps(card).encode())
    assert (seed.name, seed.effective_slug, seed.character.description) == ("Ada", "ada", "Counts.")


def test_an_empty_or_wrong_document_is_refused_by_name() -> None:
    with pytest.raises(InvalidArgument, match="empty"):
        seed_from_document(ImportFormat.CHARACTER_CARD_JSON, b"  ")
    with pytest.raises(InvalidArgument) as bad:
        seed_from_document(ImportFormat.CHARACTER_CARD_JSON, b'{"spec": "nope"}')
    assert bad.value.field == "spec"


def test_a_seed_yaml_still_imports() -> None:
    seed = seed_from_document(ImportFormat.SEED_YAML, b"name: Sage\nsystem_prompt: hi\n")
    assert seed.name == "Sage"
