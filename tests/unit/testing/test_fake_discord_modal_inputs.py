"""A modal's text inputs, as components/reference.mdx bounds them: refused (400, 50035 at the
field) past a limit, taken at it; in a Label and in an Action Row (discord.py's way)."""

from __future__ import annotations

from typing import Any

import discord
import pytest

from tests.unit.testing.test_fake_discord_interactions import form_error, modal, responding
from tzurot.testing.fake_discord import Json


def labelled(**changes: Any) -> Json:
    text_input: Json = {"type": 4, "custom_id": "name", "style": 1, **changes}
    return {"type": 18, "label": "Name", "component": text_input}


@pytest.mark.parametrize(
    ("field", "refused", "taken", "code"),
    [
        ("custom_id", "x" * 101, "x" * 100, "BASE_TYPE_BAD_LENGTH"),
        ("custom_id", "", "x", "BASE_TYPE_BAD_LENGTH"),
        ("min_length", 4001, 4000, "BASE_TYPE_MAX_VALUE"),
        ("min_length", -1, 0, "BASE_TYPE_MIN_VALUE"),
        ("max_length", 0, 1, "BASE_TYPE_MIN_VALUE"),
        ("max_length", 4001, 4000, "BASE_TYPE_MAX_VALUE"),
        ("placeholder", "x" * 101, "x" * 100, "BASE_TYPE_MAX_LENGTH"),
        ("value", "x" * 4001, "x" * 4000, "BASE_TYPE_MAX_LENGTH"),
        ("style", 3, 2, "BASE_TYPE_CHOICES"),
    ],
)
async def test_a_text_input_in_a_label_is_held_to_its_limits(
    field: str, refused: object, taken: object, code: str
) -> None:
    async with responding() as http:
        bad = modal(components=[labelled(**{field: refused})])
        status, body = await http.call("POST", http.callback, bad)
        assert status == 400
        assert form_error(body, "data", "components", 0, "component", field) == code
        good = modal(components=[labelled(**{field: taken})])
        assert (await http.call("POST", http.callback, good))[0] == 200


async def test_a_labels_label_is_at_most_45_characters_and_its_description_100() -> None:
    async with responding() as http:
        for key, size in (("label", 46), ("description", 101)):
            component = {**labelled(), key: "x" * size}
            status, body = await http.call("POST", http.callback, modal(components=[component]))
            assert status == 400
            assert form_error(body, "data", "components", 0, key) == "BASE_TYPE_MAX_LENGTH"
        component = {**labelled(), "label": "x" * 45, "description": "x" * 100}
        assert (await http.call("POST", http.callback, modal(components=[component])))[0] == 200


async def test_a_text_input_in_an_action_row_as_discord_py_sends_it() -> None:
    """discord.py wraps a TextInput in an Action Row, with the (deprecated) `label`."""
    item = discord.ui.TextInput[discord.ui.Modal](label="x" * 46, custom_id="key")
    row = {"type": 1, "components": [item.to_component_dict()]}
    async with responding() as http:
        status, body = await http.call("POST", http.callback, modal(components=[row]))
        assert status == 400
        assert form_error(body, "data", "components", 0, "components", 0, "label") == (
            "BASE_TYPE_MAX_LENGTH"
        )
        item = discord.ui.TextInput[discord.ui.Modal](label="API key", custom_id="key")
        row = {"type": 1, "components": [item.to_component_dict()]}
        assert (await http.call("POST", http.callback, modal(components=[row])))[0] == 200
